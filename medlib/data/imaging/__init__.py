"""Imaging readers: DICOM (single, multi-frame, series), NIfTI, PNG/JPEG, MedMNIST.

Every reader returns an ``Image`` (float32 array, spacing in mm, modality, technical metadata) and never a
patient identifier. ``read_image`` picks the reader from the path.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from medlib.data.imaging.dicom import read_dicom, read_dicom_series
from medlib.data.imaging.image import Image
from medlib.data.imaging.medmnist import read_medmnist
from medlib.data.imaging.nifti import read_nifti
from medlib.data.imaging.png import read_png
from medlib.data.imaging.window import apply_window, check_window

__all__ = ["Image", "read_image", "read_dicom", "read_dicom_series", "read_nifti", "read_png", "read_medmnist",
           "apply_window"]

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
SUPPORTED = ("DICOM (.dcm/.dicom or a file with the DICM preamble), a DICOM series folder, NIfTI (.nii, .nii.gz) "
             "or PNG/JPEG/TIFF/BMP")


def _is_dicom(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(128)
        return handle.read(4) == b"DICM"


def _windowed(image: Image, window: tuple[float, float]) -> Image:
    center, width = check_window(window)
    return dataclasses.replace(image, array=apply_window(image.array, center, width),
                               meta={**image.meta, "window_used": f"config window {center:g}/{width:g}"})


def read_image(path: str | Path, *, window: tuple[float, float] | None = None) -> Image:
    """Read any supported image: a DICOM file, a DICOM series folder, NIfTI, or PNG/JPEG/TIFF.

    The kind comes from the suffix (``.dcm``, ``.nii``, ``.nii.gz``, ``.png``, ``.jpg`` ...), a folder is a
    DICOM series, and a file without a known suffix is DICOM when it carries the DICM preamble.

    Args:
        path: file or folder.
        window: (centre, width) in the image's units (HU for CT); output scaled to 0..1 (DICOM linear window).
            For DICOM it replaces the header's window (see ``read_dicom``), before MONOCHROME1 inversion.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: an unsupported kind of file, or one its reader rejects (naming the file).
    """
    path = Path(path)
    name = path.name.lower()
    if path.is_dir():
        return read_dicom_series(path, window=window)
    if not path.exists():
        raise FileNotFoundError(f"image not found: {path}")
    if name.endswith((".dcm", ".dicom")):
        return read_dicom(path, window=window)
    if name.endswith((".nii", ".nii.gz")):
        image = read_nifti(path)
    elif name.endswith(RASTER_SUFFIXES):
        image = read_png(path)
    elif _is_dicom(path):
        return read_dicom(path, window=window)
    else:
        raise ValueError(f"{path}: unsupported image file; expected {SUPPORTED}")
    return image if window is None else _windowed(image, window)
