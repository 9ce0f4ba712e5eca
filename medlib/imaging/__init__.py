"""Imaging readers: DICOM (single, multi-frame, series), NIfTI, PNG/JPEG, MedMNIST.

Every reader returns an ``Image`` (float32 array, spacing in mm, modality, technical metadata) and never a
patient identifier. ``read_image`` picks the reader from the path.
"""

from __future__ import annotations

from pathlib import Path

from medlib.imaging.dicom import read_dicom, read_dicom_series
from medlib.imaging.image import Image
from medlib.imaging.medmnist import read_medmnist
from medlib.imaging.nifti import read_nifti
from medlib.imaging.png import read_png

__all__ = ["Image", "read_image", "read_dicom", "read_dicom_series", "read_nifti", "read_png", "read_medmnist"]

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def _is_dicom(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(128)
        return handle.read(4) == b"DICM"


def read_image(path: str | Path, *, window: tuple[float, float] | None = None) -> Image:
    """Read any supported image: a DICOM file, a DICOM series folder, NIfTI, or PNG/JPEG/TIFF.

    Args:
        path: file or folder.
        window: (centre, width) override for DICOM files (see ``read_dicom``).

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: an unsupported kind of file, or one its reader rejects (naming the file).
    """
    path = Path(path)
    name = path.name.lower()
    if path.is_dir():
        return read_dicom_series(path)
    if not path.exists():
        raise FileNotFoundError(f"image not found: {path}")
    if name.endswith((".nii", ".nii.gz")):
        return read_nifti(path)
    if name.endswith(RASTER_SUFFIXES):
        return read_png(path)
    if name.endswith((".dcm", ".dicom")) or _is_dicom(path):
        return read_dicom(path, window=window)
    raise ValueError(f"{path}: unsupported image file; expected DICOM (.dcm or a DICOM preamble), a DICOM series "
                     f"folder, NIfTI (.nii, .nii.gz) or PNG/JPEG/TIFF")
