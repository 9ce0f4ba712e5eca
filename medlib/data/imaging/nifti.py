"""NIfTI volumes (nibabel), reoriented so that they line up with DICOM series.

Whatever the file's affine, the volume is first reoriented to the closest canonical RAS orientation
(``nibabel.as_closest_canonical``: voxel axes x → R, y → A, z → S), then transposed to (z, y, x) so that D is the
inferior → superior axis, and finally flipped in-plane to (D, H, W) = (S, P, L): slices from inferior to superior,
rows from anterior to posterior, columns from the patient's right to left. That is the pixel order
``read_dicom_series`` gives for an axial series and the radiological display convention (anterior at the top,
the patient's right on the viewer's left), so a NIfTI mask drawn on a DICOM series lines up with it and
``array[k]`` displays the way a radiologist expects.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medlib.data.imaging.geometry import Geometry, check_affine
from medlib.data.imaging.image import Image

AXES = "D,H,W = S,P,L"
#: Largest volume read (voxels): 1024^3 float32 is 4 GiB; a header claiming more is refused before reading.
MAX_VOXELS = 1024 ** 3
_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _load(path: Path):
    import nibabel as nib

    try:
        img = nib.load(str(path))
        shape = img.shape
    except Exception as err:  # nibabel raises several types for corrupt files; name the file once
        raise ValueError(f"{path}: unreadable NIfTI file ({type(err).__name__}: {err})") from err
    if len(shape) == 4 and shape[3] == 1:
        img = img.slicer[..., 0]
    elif len(shape) != 3:
        raise ValueError(f"{path}: NIfTI image has shape {tuple(shape)}; expected a 3D volume (x, y, z), "
                         f"or 4D (x, y, z, 1) with a single volume")
    _check_size(img, path)
    check_affine(img.affine, path)
    return img


def _check_size(img, path: Path) -> None:
    """Refuse a header that claims an empty or absurd volume, or more bytes than an uncompressed file holds."""
    shape = tuple(int(n) for n in img.shape)
    voxels = int(np.prod(shape, dtype=np.float64))
    if min(shape) < 1 or voxels > MAX_VOXELS:
        raise ValueError(f"{path}: NIfTI header gives shape {shape} ({voxels} voxels); expected a volume of 1 to "
                         f"{MAX_VOXELS} voxels")
    if str(path).lower().endswith(".nii"):
        needed = int(img.header.get_data_offset()) + voxels * img.get_data_dtype().itemsize
        size = path.stat().st_size
        if size < needed:
            raise ValueError(f"{path}: truncated NIfTI file: {size} bytes, its header needs {needed}; expected a "
                             f"complete file")


def _voxels(canonical, path: Path) -> np.ndarray:
    """The voxel values, with a truncated or corrupt data block named as such (gzip and nibabel raise EOFError,
    zlib.error, OSError or ValueError)."""
    import zlib

    try:
        return np.asanyarray(canonical.dataobj, dtype=np.float32)
    except (EOFError, OSError, ValueError, zlib.error) as err:
        raise ValueError(f"{path}: truncated or corrupt NIfTI data ({type(err).__name__}: {err}); expected a "
                         f"complete file") from None


def read_nifti(path: str | Path) -> Image:
    """Read a 3D NIfTI volume as (D, H, W) = (S, P, L) with spacing in mm in the same order.

    Header scaling (scl_slope/scl_inter) is applied. A 4D image holding one volume is accepted.

    Args:
        path: a ``.nii`` or ``.nii.gz`` file.

    Returns:
        An ``Image``; ``meta["orientation"]`` holds the file's own axis codes (e.g. ``"LPS"``), ``meta["axes"]``
        the returned order.

    Raises:
        FileNotFoundError: no such file.
        ValueError: unreadable, truncated or absurdly large file, a sheared or singular affine
            (``geometry.check_affine``), or not 3D (nor 4D with one volume), naming the file.
    """
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"NIfTI file not found: {path}")
    img = _load(path)
    source_axes = "".join(nib.aff2axcodes(img.affine))
    canonical = nib.as_closest_canonical(img)  # x → R, y → A, z → S
    xyz = _voxels(canonical, path)
    zooms = tuple(float(z) for z in canonical.header.get_zooms()[:3])
    sal = xyz.transpose(2, 1, 0)  # (z, y, x) = (S, A, R)
    return Image(array=np.ascontiguousarray(sal[:, ::-1, ::-1]), spacing=(zooms[2], zooms[1], zooms[0]),
                 modality=None, photometric=None, source=str(path),
                 meta={"format": "NIfTI", "axes": AXES, "orientation": source_axes, "slices": int(sal.shape[0]),
                       "datatype": str(img.get_data_dtype())}, affine=_dhw_affine(canonical.affine, xyz.shape))


def _dhw_affine(ras: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Index (d, h, w) of the returned array → LPS mm: (d, h, w) is canonical voxel (nx-1-w, ny-1-h, d)."""
    nx, ny = shape[0], shape[1]
    index = np.array([[0, 0, -1, nx - 1], [0, -1, 0, ny - 1], [1, 0, 0, 0], [0, 0, 0, 1]], float)
    return _LPS @ np.asarray(ras, float) @ index


def nifti_geometry(path: str | Path) -> Geometry:
    """The geometry ``read_nifti`` would give, from the header only (no voxel is read), with the same checks."""
    from nibabel.orientations import inv_ornt_aff, io_orientation

    path = Path(path)
    img = _load(path)
    ornt = io_orientation(img.affine)
    axes = ornt[:, 0].astype(int)
    shape = [0, 0, 0]
    zooms = [0.0, 0.0, 0.0]
    for i, axis in enumerate(axes):
        shape[axis], zooms[axis] = int(img.shape[i]), float(img.header.get_zooms()[i])
    canonical = np.asarray(img.affine, float) @ inv_ornt_aff(ornt, img.shape[:3])
    return Geometry((shape[2], shape[1], shape[0]), (zooms[2], zooms[1], zooms[0]),
                    _dhw_affine(canonical, tuple(shape)), str(path))
