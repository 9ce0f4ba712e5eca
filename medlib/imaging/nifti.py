"""NIfTI volumes (nibabel), reoriented so that they line up with DICOM series.

Whatever the file's affine, the volume is reoriented to LPS (nibabel's ``as_reoriented`` with the closest
axis codes) and returned as (D, H, W) = (S, P, L): slices from inferior to superior, rows from anterior to
posterior, columns from the patient's right to left. That is the pixel order ``read_dicom_series`` gives for
an axial series, so a NIfTI mask drawn on a DICOM series lines up with it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medlib.imaging.image import Image

TARGET_AXES = ("L", "P", "S")


def read_nifti(path: str | Path) -> Image:
    """Read a 3D NIfTI volume as (D, H, W) in LPS order with spacing in mm.

    Raises:
        ValueError: unreadable file, or not 3D (a 4D image with one volume is accepted), naming the file.
    """
    import nibabel as nib
    from nibabel import orientations as ornt

    path = Path(path)
    try:
        img = nib.load(str(path))
        shape = img.shape
    except Exception as err:  # nibabel raises several types for corrupt files; name the file once
        raise ValueError(f"{path}: unreadable NIfTI file ({type(err).__name__}: {err})") from err
    if len(shape) == 4 and shape[3] == 1:
        img = img.slicer[..., 0]
    elif len(shape) != 3:
        raise ValueError(f"{path}: NIfTI image has shape {tuple(shape)}; expected a 3D volume (x, y, z)")
    current = ornt.io_orientation(img.affine)
    transform = ornt.ornt_transform(current, ornt.axcodes2ornt(TARGET_AXES))
    img = img.as_reoriented(transform)
    data = np.asanyarray(img.dataobj, dtype=np.float32)
    zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
    return Image(array=np.ascontiguousarray(data.transpose(2, 1, 0)), spacing=(zooms[2], zooms[1], zooms[0]),
                 modality=None, photometric=None, source=str(path),
                 meta={"format": "NIfTI", "axes": "D,H,W = S,P,L", "datatype": str(img.get_data_dtype())})
