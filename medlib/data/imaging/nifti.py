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

from medlib.data.imaging.image import Image

AXES = "D,H,W = S,P,L"


def _load(path: Path):
    import nibabel as nib

    try:
        img = nib.load(str(path))
        shape = img.shape
    except Exception as err:  # nibabel raises several types for corrupt files; name the file once
        raise ValueError(f"{path}: unreadable NIfTI file ({type(err).__name__}: {err})") from err
    if len(shape) == 4 and shape[3] == 1:
        return img.slicer[..., 0]
    if len(shape) != 3:
        raise ValueError(f"{path}: NIfTI image has shape {tuple(shape)}; expected a 3D volume (x, y, z), "
                         f"or 4D (x, y, z, 1) with a single volume")
    return img


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
        ValueError: unreadable file, or not 3D (nor 4D with one volume), naming the file and its shape.
    """
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"NIfTI file not found: {path}")
    img = _load(path)
    source_axes = "".join(nib.aff2axcodes(img.affine))
    canonical = nib.as_closest_canonical(img)  # x → R, y → A, z → S
    xyz = np.asanyarray(canonical.dataobj, dtype=np.float32)
    zooms = tuple(float(z) for z in canonical.header.get_zooms()[:3])
    sal = xyz.transpose(2, 1, 0)  # (z, y, x) = (S, A, R)
    return Image(array=np.ascontiguousarray(sal[:, ::-1, ::-1]), spacing=(zooms[2], zooms[1], zooms[0]),
                 modality=None, photometric=None, source=str(path),
                 meta={"format": "NIfTI", "axes": AXES, "orientation": source_axes, "slices": int(sal.shape[0]),
                       "datatype": str(img.get_data_dtype())})
