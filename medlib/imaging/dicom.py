"""DICOM readers: single images (2D, multi-frame) and series → one volume.

Pixel pipeline of a single image: stored values → modality LUT (rescale slope/intercept, e.g. to Hounsfield
units) → VOI LUT or window centre/width (from the header, or the ``window`` override from the config) →
MONOCHROME1 inversion, so that high values are always bright. Compressed transfer syntaxes are decoded by
pydicom's plugins (pylibjpeg, pylibjpeg-openjpeg, pylibjpeg-libjpeg); a missing decoder is an error that names
the transfer syntax and the package to install.

Series: slices are sorted by ImagePositionPatient projected on the slice normal (the cross product of the two
ImageOrientationPatient direction cosines), never by InstanceNumber or file name; the slice spacing comes from
those positions, not from SliceThickness. Volumes are (D, H, W): D along the slice normal, H along the column
direction, W along the row direction, i.e. the DICOM pixel order, which ``read_nifti`` reproduces (LPS).

Only technical tags reach ``Image.meta`` (``TECHNICAL_TAGS``, an allow-list): a reader never returns names,
IDs, dates, UIDs or institutions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medlib.imaging.image import Image

TECHNICAL_TAGS = ("Modality", "Manufacturer", "ManufacturerModelName", "Rows", "Columns", "BitsStored",
                  "BitsAllocated", "PhotometricInterpretation", "BodyPartExamined", "ViewPosition",
                  "KVP", "SliceThickness", "ConvolutionKernel", "MagneticFieldStrength", "SeriesDescription")
DECODER_PACKAGES = "pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg (or python-gdcm)"
WINDOWED_MODALITIES = ("CR", "DX", "MG", "RF", "XA", "IO", "PX", "OT")
SLICE_SPACING_TOLERANCE = 0.1  # relative: a gap more than 10% off the median spacing means missing slices


def _dcmread(path: Path, **kwargs: Any):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(str(path), **kwargs)
    except InvalidDicomError as err:
        raise ValueError(f"{path}: not a DICOM file ({err})") from err
    except (EOFError, OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: unreadable or truncated DICOM file ({type(err).__name__}: {err})") from err


def _find(ds, keyword: str, default: Any = None) -> Any:
    """A tag from the dataset, or from the enhanced multi-frame functional groups."""
    if keyword in ds:
        return ds.get(keyword)
    for group_seq in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        for group in ds.get(group_seq, [])[:1]:
            for item in group:
                if item.VR == "SQ":
                    for sub in item.value[:1]:
                        if keyword in sub:
                            return sub.get(keyword)
    return default


def _pixels(ds, path: Path) -> np.ndarray:
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise ValueError(f"{path}: DICOM file has no pixel data (SOP class "
                         f"{getattr(ds, 'SOPClassUID', 'unknown')!s}); expected an image")
    try:
        pixels = ds.pixel_array
        if str(ds.get("PhotometricInterpretation", "")) == "PALETTE COLOR":  # indices, not intensities
            from pydicom.pixels import apply_color_lut
            pixels = apply_color_lut(pixels, ds)
        return pixels
    except (NotImplementedError, RuntimeError) as err:
        syntax = ds.file_meta.get("TransferSyntaxUID", "unknown")
        name = getattr(syntax, "name", str(syntax))
        raise ValueError(f"{path}: cannot decode pixel data with transfer syntax {name} ({syntax}); "
                         f"install a decoder: pip install {DECODER_PACKAGES} ({err})") from err
    except (ValueError, EOFError, OSError, AttributeError, KeyError) as err:
        raise ValueError(f"{path}: corrupt or truncated pixel data ({type(err).__name__}: {err})") from err


def _rescale(ds, pixels: np.ndarray) -> np.ndarray:
    if "ModalityLUTSequence" in ds:  # a lookup table instead of slope/intercept (PS3.3 C.11.1)
        from pydicom.pixels import apply_modality_lut
        return apply_modality_lut(pixels, ds).astype(np.float32)
    slope = float(_find(ds, "RescaleSlope", 1.0) or 1.0)
    intercept = float(_find(ds, "RescaleIntercept", 0.0) or 0.0)
    return pixels.astype(np.float32) * np.float32(slope) + np.float32(intercept)


def _apply_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """Linear window as DICOM PS3.3 C.11.2.1.2 (output 0..1)."""
    width = max(float(width), 1.0)
    if width == 1.0:  # a threshold (C.11.2.1.2.1); the linear formula would divide by zero
        return (values > center - 0.5).astype(np.float32)
    out = (values - (center - 0.5)) / (width - 1.0) + 0.5
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _voi(ds, values: np.ndarray) -> tuple[np.ndarray, str]:
    from pydicom.pixels import apply_voi_lut

    if "VOILUTSequence" in ds:
        # the LUT is indexed by integer modality values; pydicom warns on (and truncates) float input
        out = apply_voi_lut(np.rint(values).astype(np.int64), ds, prefer_lut=True).astype(np.float32)
        return out, "VOI LUT from header"
    center, width = _find(ds, "WindowCenter"), _find(ds, "WindowWidth")
    if center is None or width is None:
        return values, "none"
    center = float(center[0] if hasattr(center, "__len__") and not isinstance(center, str) else center)
    width = float(width[0] if hasattr(width, "__len__") and not isinstance(width, str) else width)
    return _apply_window(values, center, width), f"header window {center:g}/{width:g}"


def _spacing_2d(ds) -> tuple[float, float]:
    """PixelSpacing, else ImagerPixelSpacing, else 1 mm (some CR files store a spacing of 0)."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        spacing = _find(ds, keyword)
        if spacing is not None and len(spacing) == 2 and float(spacing[0]) > 0 and float(spacing[1]) > 0:
            return float(spacing[0]), float(spacing[1])
    return 1.0, 1.0


def _meta(ds, **extra: Any) -> dict:
    meta = {k.lower(): str(ds.get(k)) for k in TECHNICAL_TAGS if k in ds and ds.get(k) not in (None, "")}
    meta["transfer_syntax"] = str(getattr(ds.file_meta.get("TransferSyntaxUID", ""), "name", ""))
    meta.update(extra)
    return meta


def read_dicom(path: str | Path, *, window: tuple[float, float] | None = None,
               apply_voi: bool | None = None) -> Image:
    """Read one DICOM file (a 2D image or a multi-frame volume).

    Args:
        path: the file.
        window: (centre, width) override in modality units (e.g. HU); output scaled to 0..1.
        apply_voi: apply the header's VOI LUT / window. None: yes for projection radiography (CR, DX, MG ...),
            no for CT and MR, whose modality values (HU) are kept.

    Raises:
        ValueError: not DICOM, truncated, no pixel data, or no decoder for the transfer syntax (naming the file).
    """
    path = Path(path)
    ds = _dcmread(path)
    values = _rescale(ds, _pixels(ds, path))
    modality = str(ds.get("Modality", "")) or None
    used = "none"
    if window is not None:
        values, used = _apply_window(values, *window), f"config window {window[0]:g}/{window[1]:g}"
    elif apply_voi or (apply_voi is None and modality in WINDOWED_MODALITIES):
        values, used = _voi(ds, values)
    photometric = str(ds.get("PhotometricInterpretation", "")) or None
    if photometric == "MONOCHROME1":
        values = (values.max() + values.min() - values).astype(np.float32)
    if int(ds.get("SamplesPerPixel", 1)) == 3 or photometric == "PALETTE COLOR":  # colour (multi-frame too)
        values = values[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    row, col = _spacing_2d(ds)
    if values.ndim == 3:
        between = _find(ds, "SpacingBetweenSlices") or _find(ds, "SliceThickness") or 1.0
        spacing: tuple[float, ...] = (float(between), row, col)
    else:
        spacing = (row, col)
    return Image(array=np.ascontiguousarray(values, dtype=np.float32), spacing=spacing, modality=modality,
                 photometric=photometric, source=str(path),
                 meta=_meta(ds, window_used=used, frames=int(values.shape[0]) if values.ndim == 3 else 1))


def _looks_like_dicom(path: Path) -> bool:
    if path.suffix.lower() in (".dcm", ".dicom"):
        return True
    with open(path, "rb") as handle:
        handle.seek(128)
        return handle.read(4) == b"DICM"


def _series_files(folder: Path) -> tuple[list[Path], int]:
    """The folder's DICOM files (by ``.dcm`` suffix or the DICM preamble) and how many other files it holds.

    Files such as a LICENSE or README beside the slices are skipped and counted in ``meta["skipped_files"]``.
    """
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    dicom = [p for p in files if _looks_like_dicom(p)]
    if not dicom:
        raise ValueError(f"{folder}: no DICOM files in the folder; expected the DICOM files of one series")
    return dicom, len(files) - len(dicom)


def _slice_geometry(headers: list, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        orientations = np.array([[float(v) for v in h.ImageOrientationPatient] for h in headers])
        positions = np.array([[float(v) for v in h.ImagePositionPatient] for h in headers])
    except AttributeError as err:
        raise ValueError(f"{folder}: a slice lacks ImageOrientationPatient/ImagePositionPatient; "
                         f"cannot order the series") from err
    if np.abs(orientations - orientations[0]).max() > 1e-4:
        raise ValueError(f"{folder}: mixed slice orientations in one series; expected one orientation")
    return orientations[0], positions


def _check_one_series(headers: list, folder: Path) -> None:
    series = {str(h.get("SeriesInstanceUID", "")) for h in headers}
    if len(series) > 1:
        raise ValueError(f"{folder}: {len(series)} series found in one folder; expected exactly one series")
    sizes = {(int(h.Rows), int(h.Columns)) for h in headers}
    if len(sizes) > 1:
        raise ValueError(f"{folder}: slices of different sizes {sorted(sizes)}; expected one size")


def _ordered_positions(orientation: np.ndarray, positions: np.ndarray, folder: Path) -> tuple[np.ndarray, float]:
    normal = np.cross(orientation[:3], orientation[3:])
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    gaps = np.diff(along[order])
    if len(gaps) and gaps.min() < 1e-3:
        raise ValueError(f"{folder}: two slices share one position; expected one slice per position")
    if not len(gaps):
        return order, 1.0
    spacing = float(np.median(gaps))
    if np.abs(gaps - spacing).max() > SLICE_SPACING_TOLERANCE * spacing:
        raise ValueError(f"{folder}: inconsistent slice spacing (gaps from {gaps.min():.3g} to {gaps.max():.3g} mm, "
                         f"median {spacing:.3g}); missing slices? Expected gaps within "
                         f"{SLICE_SPACING_TOLERANCE:.0%} of the median")
    return order, spacing


def read_dicom_series(folder: str | Path) -> Image:
    """Read a folder holding one DICOM series as a volume (D, H, W), slices ordered along the normal.

    Raises:
        ValueError: empty folder, non-DICOM files, several series, mixed orientations or sizes, duplicate
            positions, or inconsistent slice spacing (naming the folder).
    """
    folder = Path(folder)
    files, skipped = _series_files(folder)
    headers = [_dcmread(p) for p in files]
    _check_one_series(headers, folder)
    orientation, positions = _slice_geometry(headers, folder)
    order, slice_spacing = _ordered_positions(orientation, positions, folder)
    volume = np.stack([_rescale(headers[i], _pixels(headers[i], files[i])) for i in order])
    first = headers[order[0]]
    row, col = _spacing_2d(first)
    return Image(array=np.ascontiguousarray(volume, dtype=np.float32), spacing=(slice_spacing, row, col),
                 modality=str(first.get("Modality", "")) or None,
                 photometric=str(first.get("PhotometricInterpretation", "")) or None, source=str(folder),
                 meta=_meta(first, slices=len(headers), skipped_files=skipped,
                            orientation=[round(float(v), 4) for v in orientation]))
