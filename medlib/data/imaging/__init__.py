"""Imaging readers: DICOM (single, multi-frame, series), NIfTI, PNG/JPEG, MedMNIST.

Every reader returns an ``Image`` (float32 array, spacing in mm, modality, technical metadata) and never a
patient identifier. ``read_image`` picks the reader from the path.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from medlib.data.imaging.dicom import file_geometry, read_dicom, read_dicom_series, series_geometry
from medlib.data.imaging.geometry import Geometry, check_same_grid, geometry_of
from medlib.data.imaging.image import Image
from medlib.data.imaging.medmnist import read_medmnist
from medlib.data.imaging.nifti import nifti_geometry, read_nifti
from medlib.data.imaging.png import read_png
from medlib.data.imaging.window import apply_window, check_window

__all__ = ["Geometry", "Image", "read_image", "read_dicom", "read_dicom_series", "read_nifti", "read_png",
           "read_medmnist", "apply_window", "check_same_grid", "read_geometry", "read_with_mask"]

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


def _finite(image: Image) -> Image:
    """Refuse NaN or infinite pixels here, where the file is known: downstream they surface as a NaN loss that
    blames the learning rate."""
    bad = int(image.array.size - np.count_nonzero(np.isfinite(image.array)))
    if bad:
        raise ValueError(f"{image.source}: {bad} of {image.array.size} pixel values are NaN or infinite; expected "
                         f"finite numbers (fill or mask them in the file first)")
    return image


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
        return _finite(read_dicom_series(path, window=window))
    if not path.exists():
        raise FileNotFoundError(f"image not found: {path}")
    if name.endswith((".dcm", ".dicom")):
        return _finite(read_dicom(path, window=window))
    if name.endswith((".nii", ".nii.gz")):
        image = read_nifti(path)
    elif name.endswith(RASTER_SUFFIXES):
        image = read_png(path)
    elif _is_dicom(path):
        return _finite(read_dicom(path, window=window))
    else:
        raise ValueError(f"{path}: unsupported image file; expected {SUPPORTED}")
    return _finite(image if window is None else _windowed(image, window))


def read_geometry(path: str | Path) -> Geometry:
    """Shape, spacing and (for volumes) the index-to-LPS affine of an image, from its header alone: the checks
    of ``read_image`` that need no pixel (readable header, affine, slice order, gantry tilt) run before any
    long work.

    Raises:
        FileNotFoundError, ValueError: as ``read_image``.
    """
    path = Path(path)
    name = path.name.lower()
    if path.is_dir():
        return series_geometry(path)
    if not path.exists():
        raise FileNotFoundError(f"image not found: {path}")
    if name.endswith((".nii", ".nii.gz")):
        return nifti_geometry(path)
    if name.endswith(RASTER_SUFFIXES):
        return geometry_of(read_png(path))
    if name.endswith((".dcm", ".dicom")) or _is_dicom(path):
        return file_geometry(path)
    raise ValueError(f"{path}: unsupported image file; expected {SUPPORTED}")


def read_with_mask(image_path: str | Path, mask_path: str | Path, *,
                   window: tuple[float, float] | None = None) -> tuple[Image, np.ndarray]:
    """An image and its mask (values > 0.5 inside), after checking that the mask lies on the image's grid
    (``geometry.check_same_grid``: shape, spacing, origin and axes): a flipped, shifted or other-geometry mask
    is refused, naming both files, never used.

    Raises:
        FileNotFoundError, ValueError: as ``read_image``, or a mask off the image's grid.
    """
    image, mask = read_image(image_path, window=window), read_image(mask_path)
    check_same_grid(geometry_of(image), geometry_of(mask), what="mask")
    return image, np.asarray(mask.array) > 0.5
