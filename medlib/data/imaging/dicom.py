"""DICOM readers: single images (2D, multi-frame) and series → one volume.

Pixel pipeline of a single image: stored values → colour to grey (palette and RGB, ITU-R 601 luma) → modality
LUT (rescale slope/intercept through ``pydicom.pixels.apply_modality_lut``, per frame for enhanced multi-frame
files, e.g. to Hounsfield units) → VOI LUT or window centre/width (from the header, or the ``window`` override
from the config; output 0..1) → MONOCHROME1 inversion, so that high values are always bright. Compressed
transfer syntaxes are decoded by pydicom's plugins (pylibjpeg, pylibjpeg-openjpeg, pylibjpeg-libjpeg); a missing
decoder is an error that names the transfer syntax and the package to install.

Series: slices are sorted by ImagePositionPatient projected on the slice normal (the cross product of the two
ImageOrientationPatient direction cosines), never by InstanceNumber or file name; the slice spacing comes from
those positions, not from SliceThickness. Volumes are (D, H, W): D along the slice normal, H along the column
direction, W along the row direction, i.e. the DICOM pixel order, which ``read_nifti`` reproduces (LPS).

Only technical tags reach ``Image.meta`` (``TECHNICAL_TAGS``, an allow-list): a reader never returns names,
IDs, dates, UIDs, institutions or free-text descriptions.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from medlib.data.imaging.geometry import Geometry, lps_affine
from medlib.data.imaging.image import Image
from medlib.data.imaging.window import apply_window, check_window

TECHNICAL_TAGS = ("Modality", "Manufacturer", "ManufacturerModelName", "Rows", "Columns", "BitsStored",
                  "BitsAllocated", "PhotometricInterpretation", "BodyPartExamined", "ViewPosition",
                  "KVP", "SliceThickness", "ConvolutionKernel", "MagneticFieldStrength")
DECODER_PACKAGES = "pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg (or python-gdcm)"
WINDOWED_MODALITIES = ("CR", "DX", "MG", "RF", "XA", "IO", "PX", "OT")
SLICE_SPACING_TOLERANCE = 0.1  # relative: a gap more than 10% off the median spacing means missing slices
DUPLICATE_POSITION_MM = 1e-3   # slices closer than this along the normal share one position
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601, as PIL's convert("L")
MAX_PIXELS = 1024 ** 3  # rows x columns x frames decoded at most (a header claiming more is refused)
TILT_TOLERANCE = 0.01   # in-plane shift between slices, as a fraction of the slice spacing (gantry tilt)


# ------------------------------------------------------------------------------------------------ headers
def _dcmread(path: Path, **kwargs: Any):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(str(path), **kwargs)
    except InvalidDicomError as err:
        raise ValueError(f"{path}: not a DICOM file ({err})") from err
    except (EOFError, OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{path}: unreadable or truncated DICOM file ({type(err).__name__}: {err})") from err


def _find(ds, keyword: str, default: Any = None) -> Any:
    """A tag from the dataset, or from the first frame's enhanced multi-frame functional groups."""
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


def _frame_items(ds, macro: str) -> list | None:
    """Per frame, the first item of a functional-group macro (per-frame group first, then shared); None if absent."""
    shared = ds.get("SharedFunctionalGroupsSequence")
    shared_seq = shared[0].get(macro) if shared else None
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    n = int(ds.get("NumberOfFrames", 1) or 1)
    items = []
    for i in range(n):
        seq = per_frame[i].get(macro) if per_frame is not None and i < len(per_frame) else None
        seq = seq or shared_seq
        if not seq:
            return None
        items.append(seq[0])
    return items


def _float(item, keyword: str, default: float) -> float:
    value = item.get(keyword) if item is not None else None
    return default if value is None or value == "" else float(value)


def _first(value: Any) -> float:
    """The first value of a possibly multi-valued tag (e.g. several window centres)."""
    if hasattr(value, "__len__") and not isinstance(value, (str, bytes)):
        value = value[0]
    return float(value)


# ------------------------------------------------------------------------------------------------- pixels
def _missing_pixels_error(ds, path: Path) -> ValueError:
    if "TransferSyntaxUID" not in getattr(ds, "file_meta", {}) or len(ds) == 0:
        return ValueError(f"{path}: truncated or corrupt DICOM file (no data set could be read from its "
                          f"{path.stat().st_size} bytes); expected a complete image file")
    if "Rows" in ds and "Columns" in ds:
        return ValueError(f"{path}: DICOM file has no pixel data although its header describes a "
                          f"{ds.Rows}x{ds.Columns} image (truncated?); expected an image")
    sop = ds.get("SOPClassUID")
    return ValueError(f"{path}: DICOM file has no pixel data (SOP class {getattr(sop, 'name', 'unknown')}); "
                      f"expected an image")


def _decoder_available(syntax: Any) -> bool:
    from pydicom.pixels import get_decoder

    try:
        return bool(get_decoder(syntax).is_available)
    except (NotImplementedError, ValueError, TypeError):
        return False


def _decode_error(ds, path: Path, err: Exception) -> ValueError:
    syntax = ds.file_meta.get("TransferSyntaxUID", "unknown")
    name = getattr(syntax, "name", str(syntax))
    if not _decoder_available(syntax):
        return ValueError(f"{path}: cannot decode pixel data with transfer syntax {name} ({syntax}); "
                          f"install a decoder: pip install {DECODER_PACKAGES} ({err})")
    return ValueError(f"{path}: corrupt or truncated pixel data ({name}; {type(err).__name__}: {err})")


def _pixels(ds, path: Path) -> np.ndarray:
    """Stored pixel values; colour (RGB, palette) converted to grey with ITU-R 601 luma weights."""
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise _missing_pixels_error(ds, path)
    dims = [int(ds.get(k, 1) or 1) for k in ("Rows", "Columns", "NumberOfFrames", "SamplesPerPixel")]
    if min(dims) < 1 or float(np.prod(dims, dtype=np.float64)) > MAX_PIXELS:
        raise ValueError(f"{path}: DICOM header gives {dims[0]} x {dims[1]} pixels x {dims[2]} frames x {dims[3]} "
                         f"samples; expected 1 to {MAX_PIXELS} values")
    try:
        pixels = ds.pixel_array
        if str(ds.get("PhotometricInterpretation", "")) == "PALETTE COLOR":  # indices, not intensities
            from pydicom.pixels import apply_color_lut
            pixels = apply_color_lut(pixels, ds)
    except (NotImplementedError, RuntimeError, ValueError, EOFError, OSError, AttributeError, KeyError) as err:
        raise _decode_error(ds, path, err) from err
    if _is_colour(ds):
        pixels = pixels[..., :3].astype(np.float32) @ LUMA
    return pixels


def _is_colour(ds) -> bool:
    return int(ds.get("SamplesPerPixel", 1)) == 3 or str(ds.get("PhotometricInterpretation", "")) == "PALETTE COLOR"


def _rescale_dataset(item, path: Path | str = ""):
    """Slope and intercept of one image or frame; a slope of 0 (every pixel the intercept: a blank image) or a
    non-finite value is refused, naming the file."""
    from pydicom.dataset import Dataset

    out = Dataset()
    slope, intercept = _float(item, "RescaleSlope", 1.0), _float(item, "RescaleIntercept", 0.0)
    if slope == 0 or not np.isfinite(slope) or not np.isfinite(intercept):
        raise ValueError(f"{path}: RescaleSlope {slope:g} and RescaleIntercept {intercept:g}; expected a finite, "
                         f"non-zero slope (a slope of 0 makes every pixel {intercept:g}: a blank image)")
    out.RescaleSlope, out.RescaleIntercept = slope, intercept
    return out


def _rescale(ds, pixels: np.ndarray, path: Path | str = "") -> np.ndarray:
    """Modality LUT (PS3.3 C.11.1): a LUT sequence, or slope/intercept (per frame in enhanced files)."""
    from pydicom.pixels import apply_modality_lut

    if ds.get("ModalityLUTSequence"):
        return apply_modality_lut(pixels, ds).astype(np.float32)
    items = None if "RescaleSlope" in ds else _frame_items(ds, "PixelValueTransformationSequence")
    if items is None:
        return apply_modality_lut(pixels, _rescale_dataset(ds, path)).astype(np.float32)
    if pixels.ndim == 2:
        return apply_modality_lut(pixels, _rescale_dataset(items[0], path)).astype(np.float32)
    frames = [apply_modality_lut(frame, _rescale_dataset(item, path)) for frame, item in zip(pixels, items)]
    return np.stack(frames).astype(np.float32)


def _modality_range(ds) -> tuple[float, float]:
    """The range of modality values the stored bits allow (for inverting an unwindowed MONOCHROME1 image)."""
    if ds.get("ModalityLUTSequence"):
        return 0.0, float(2 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1)
    bits, signed = int(ds.get("BitsStored", 16)), int(ds.get("PixelRepresentation", 0)) == 1
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
    items = None if "RescaleSlope" in ds else _frame_items(ds, "PixelValueTransformationSequence")
    item = ds if items is None else items[0]
    slope, intercept = _float(item, "RescaleSlope", 1.0), _float(item, "RescaleIntercept", 0.0)
    return tuple(sorted((lo * slope + intercept, hi * slope + intercept)))  # type: ignore[return-value]


def _invert_monochrome1(ds, values: np.ndarray, windowed: bool) -> tuple[np.ndarray, str]:
    """MONOCHROME1 stores bright as low: 1 - v after a window (0..1), else lo + hi - v over the stored range."""
    if windowed:
        return (1.0 - values).astype(np.float32), "1 - v (windowed)"
    lo, hi = _modality_range(ds)
    return (lo + hi - values).astype(np.float32), f"{lo + hi:g} - v (stored range)"


# ---------------------------------------------------------------------------------------------------- VOI
def _voi(ds, values: np.ndarray) -> tuple[np.ndarray, str]:
    """The header's VOI LUT or window, scaled to 0..1; values unchanged when the header has neither."""
    from pydicom.pixels import apply_voi_lut

    if ds.get("VOILUTSequence"):
        # the LUT is indexed by integer modality values; pydicom warns on (and truncates) float input
        lut_bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
        out = apply_voi_lut(np.rint(values).astype(np.int64), ds, prefer_lut=True).astype(np.float32)
        return out / np.float32(2 ** lut_bits - 1), "VOI LUT from header"
    center, width = _find(ds, "WindowCenter"), _find(ds, "WindowWidth")
    if center is None or width is None:
        return values, "none (no window in header)"
    center, width = _first(center), _first(width)
    function = str(_find(ds, "VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
    suffix = "" if function == "LINEAR" else f" {function}"
    return apply_window(values, center, width, function=function), f"header window {center:g}/{width:g}{suffix}"


def _display(ds, values: np.ndarray, window: Any, apply_voi: bool | None) -> tuple[np.ndarray, str]:
    if window is not None:
        center, width = check_window(window)
        return apply_window(values, center, width), f"config window {center:g}/{width:g}"
    if apply_voi is None:
        apply_voi = str(ds.get("Modality", "")) in WINDOWED_MODALITIES
    if not apply_voi:
        return values, "none"
    if _is_colour(ds):
        return values, "none (colour image)"  # VOI applies to greyscale only (PS3.3 C.11.2)
    return _voi(ds, values)


# ----------------------------------------------------------------------------------------------- geometry
def _spacing_2d(ds) -> tuple[float, float]:
    """PixelSpacing, else ImagerPixelSpacing, else 1 mm (some CR files store a spacing of 0)."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        spacing = _find(ds, keyword)
        if spacing is not None and len(spacing) == 2 and float(spacing[0]) > 0 and float(spacing[1]) > 0:
            return float(spacing[0]), float(spacing[1])
    return 1.0, 1.0


def _normal(orientation: Any) -> np.ndarray:
    iop = np.array([float(v) for v in orientation])
    return np.cross(iop[:3], iop[3:])


def _header_slice_spacing(ds) -> tuple[float, str]:
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        value = _find(ds, keyword)
        if value not in (None, "") and float(value) > 0:
            return float(value), keyword
    return 1.0, "default 1 mm (no slice spacing in header)"


def _even_order(along: np.ndarray) -> tuple[np.ndarray, float] | None:
    """Ascending order and spacing of distinct, evenly spaced positions; None otherwise."""
    order = np.argsort(along, kind="stable")
    gaps = np.diff(along[order])
    if not len(gaps) or gaps.min() < DUPLICATE_POSITION_MM:
        return None
    spacing = float(np.median(gaps))
    return (order, spacing) if np.abs(gaps - spacing).max() <= SLICE_SPACING_TOLERANCE * spacing else None


def _multiframe_geometry(ds, values: np.ndarray, path: Path) -> tuple[np.ndarray, float, str]:
    """Frames sorted along the slice normal when the frame positions allow it; else file order."""
    items = _frame_items(ds, "PlanePositionSequence")
    orientation = _find(ds, "ImageOrientationPatient")
    if items is not None and orientation is not None and len(items) == len(values):
        along = np.array([[float(v) for v in item.ImagePositionPatient] for item in items]) @ _normal(orientation)
        found = _even_order(along)
        if found is not None:
            return values[found[0]], found[1], "frame positions"
        if len(np.unique(np.round(along / DUPLICATE_POSITION_MM))) == len(along):  # distinct but uneven
            warnings.warn(f"{path}: frame positions are unevenly spaced; frames kept in file order with the "
                          f"header's slice spacing", stacklevel=3)
    spacing, source = _header_slice_spacing(ds)
    return values, spacing, f"{source} (frames in file order)"


# ------------------------------------------------------------------------------------------ single images
def _meta(ds, **extra: Any) -> dict:
    meta = {k.lower(): str(ds.get(k)) for k in TECHNICAL_TAGS if k in ds and ds.get(k) not in (None, "")}
    meta["transfer_syntax"] = str(getattr(ds.file_meta.get("TransferSyntaxUID", ""), "name", ""))
    orientation = _find(ds, "ImageOrientationPatient")
    if orientation is not None:
        meta["orientation"] = [round(float(v), 4) for v in orientation]
    meta.update(extra)
    return meta


def read_dicom(path: str | Path, *, window: tuple[float, float] | None = None,
               apply_voi: bool | None = None) -> Image:
    """Read one DICOM file (a 2D image, or a multi-frame volume (D, H, W)).

    Args:
        path: the file.
        window: (centre, width) override in modality units (e.g. HU); output scaled to 0..1 (DICOM linear window).
        apply_voi: apply the header's VOI LUT / window (output 0..1). None: yes for projection radiography (CR,
            DX, MG, RF, XA, IO, PX, OT), no for CT, MR and the rest, whose modality values (HU) are kept so that
            a config window in HU means the same thing for a file and a series.

    Returns:
        An ``Image``; ``meta["window_used"]`` says which window was applied, ``meta["inverted"]`` how a
        MONOCHROME1 image was inverted.

    Raises:
        ValueError: not DICOM, truncated, corrupt, no pixel data, or no decoder for the transfer syntax
            (naming the file), or a malformed ``window``.
    """
    path = Path(path)
    ds = _dcmread(path)
    values = _rescale(ds, _pixels(ds, path), path)
    values, used = _display(ds, values, window, apply_voi)
    photometric = str(ds.get("PhotometricInterpretation", "")) or None
    extra: dict[str, Any] = {"window_used": used}
    if photometric == "MONOCHROME1":
        values, extra["inverted"] = _invert_monochrome1(ds, values, windowed=not used.startswith("none"))
    row, col = _spacing_2d(ds)
    spacing: tuple[float, ...] = (row, col)
    if values.ndim == 3:
        values, between, extra["slice_spacing_from"] = _multiframe_geometry(ds, values, path)
        spacing = (between, row, col)
    extra["frames"] = int(values.shape[0]) if values.ndim == 3 else 1
    return Image(array=np.ascontiguousarray(values, dtype=np.float32), spacing=spacing,
                 modality=str(ds.get("Modality", "")) or None, photometric=photometric, source=str(path),
                 meta=_meta(ds, **extra))


# ------------------------------------------------------------------------------------------------- series
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
    if not folder.is_dir():
        raise FileNotFoundError(f"series folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    dicom = [p for p in files if _looks_like_dicom(p)]
    if not dicom:
        raise ValueError(f"{folder}: no DICOM files in the folder; expected the DICOM files of one series")
    return dicom, len(files) - len(dicom)


def _check_one_series(headers: list, files: list[Path], folder: Path) -> None:
    series = {str(h.get("SeriesInstanceUID", "")) for h in headers}
    if len(series) > 1:  # the count only: a UID is an identifier
        raise ValueError(f"{folder}: {len(series)} series found in one folder; expected exactly one series")
    for h, f in zip(headers, files):
        if _is_colour(h) or int(h.get("NumberOfFrames", 1) or 1) > 1 or "Rows" not in h:
            raise ValueError(f"{folder}: {f.name} is not a single-frame greyscale image; a series folder must "
                             f"hold one greyscale slice per file (read multi-frame files with read_dicom)")
    sizes = {(int(h.Rows), int(h.Columns)) for h in headers}
    if len(sizes) > 1:
        raise ValueError(f"{folder}: slices of different sizes {sorted(sizes)}; expected one size")


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


def _ordered_positions(headers: list, orientation: np.ndarray, positions: np.ndarray,
                       folder: Path) -> tuple[np.ndarray, float, str]:
    """Slice order along the normal, the slice spacing and where it came from."""
    along = positions @ _normal(orientation)
    if len(along) == 1:
        spacing, source = _header_slice_spacing(headers[0])
        return np.array([0]), spacing, f"{source} (one slice)"
    order = np.argsort(along, kind="stable")
    gaps = np.diff(along[order])
    if gaps.min() < DUPLICATE_POSITION_MM:
        raise ValueError(f"{folder}: two slices share one position; expected one slice per position")
    spacing = float(np.median(gaps))
    if np.abs(gaps - spacing).max() > SLICE_SPACING_TOLERANCE * spacing:
        raise ValueError(f"{folder}: inconsistent slice spacing (gaps from {gaps.min():.3g} to {gaps.max():.3g} mm, "
                         f"median {spacing:.3g}); missing slices? Expected gaps within "
                         f"{SLICE_SPACING_TOLERANCE:.0%} of the median")
    _check_tilt(positions[order], _normal(orientation), spacing, folder)
    return order, spacing, "positions"


def _check_tilt(positions: np.ndarray, normal: np.ndarray, spacing: float, folder: Path) -> None:
    """Refuse a gantry-tilted series: its slices are shifted in-plane from one to the next, so stacking them as
    (D, H, W) would shear the anatomy."""
    steps = np.diff(positions, axis=0)
    in_plane = steps - np.outer(steps @ normal, normal)
    shift = float(np.linalg.norm(in_plane, axis=1).max())
    if shift > TILT_TOLERANCE * spacing:
        tilt = float(np.degrees(np.arctan2(shift, spacing)))
        raise ValueError(f"{folder}: gantry-tilted series: each slice is shifted {shift:.3g} mm in-plane from the "
                         f"previous one (a tilt of about {tilt:.1f} degrees); expected slices stacked along their "
                         f"normal: resample the series onto an untilted grid first (e.g. dcm2niix corrects tilt)")


def _series_affine(orientation: np.ndarray, first: np.ndarray, slice_spacing: float, pixel: tuple) -> np.ndarray:
    """Index (d, h, w) → LPS mm: d along the normal, h along the column direction, w along the row direction."""
    row_dir, col_dir = orientation[:3], orientation[3:]
    return lps_affine([_normal(orientation) * slice_spacing, col_dir * pixel[0], row_dir * pixel[1]], first)


def read_dicom_series(folder: str | Path, *, window: tuple[float, float] | None = None) -> Image:
    """Read a folder holding one DICOM series as a volume (D, H, W), slices ordered along the normal.

    Values are modality values (HU for CT) unless ``window`` is given; the header's window is not applied.
    Files that are not DICOM (no ``.dcm`` suffix and no DICM preamble) are skipped and counted in
    ``meta["skipped_files"]``.

    Args:
        folder: the series folder.
        window: (centre, width) in modality units; output scaled to 0..1.

    Raises:
        FileNotFoundError: no such folder.
        ValueError: no DICOM files, an unreadable slice, several series, mixed orientations or sizes, colour or
            multi-frame files, duplicate positions, or slice gaps more than ``SLICE_SPACING_TOLERANCE`` (10%)
            off the median gap (naming the folder).
    """
    folder = Path(folder)
    files, skipped = _series_files(folder)
    headers = [_dcmread(p) for p in files]
    _check_one_series(headers, files, folder)
    orientation, positions = _slice_geometry(headers, folder)
    order, slice_spacing, spacing_from = _ordered_positions(headers, orientation, positions, folder)
    values = np.stack([_rescale(headers[i], _pixels(headers[i], files[i]), files[i]) for i in order])
    first = headers[order[0]]
    extra: dict[str, Any] = {"window_used": "none"}
    if window is not None:
        center, width = check_window(window)
        values, extra["window_used"] = apply_window(values, center, width), f"config window {center:g}/{width:g}"
    photometric = str(first.get("PhotometricInterpretation", "")) or None
    if photometric == "MONOCHROME1":
        values, extra["inverted"] = _invert_monochrome1(first, values, windowed=window is not None)
    row, col = _spacing_2d(first)
    return Image(array=np.ascontiguousarray(values, dtype=np.float32), spacing=(slice_spacing, row, col),
                 modality=str(first.get("Modality", "")) or None, photometric=photometric, source=str(folder),
                 meta=_meta(first, slices=len(headers), skipped_files=skipped, slice_spacing_from=spacing_from,
                            **extra), affine=_series_affine(orientation, positions[order[0]], slice_spacing, (row, col)))


def series_geometry(folder: str | Path) -> Geometry:
    """The geometry ``read_dicom_series`` would give, from the headers only (no pixel data is decoded), with the
    same checks (one series, one orientation and size, even spacing, no gantry tilt)."""
    folder = Path(folder)
    files, _ = _series_files(folder)
    headers = [_dcmread(p, stop_before_pixels=True) for p in files]
    _check_one_series(headers, files, folder)
    orientation, positions = _slice_geometry(headers, folder)
    order, slice_spacing, _ = _ordered_positions(headers, orientation, positions, folder)
    first = headers[order[0]]
    row, col = _spacing_2d(first)
    return Geometry((len(headers), int(first.Rows), int(first.Columns)), (slice_spacing, row, col),
                    _series_affine(orientation, positions[order[0]], slice_spacing, (row, col)), str(folder))


def file_geometry(path: str | Path) -> Geometry:
    """Shape and spacing of one DICOM file from its header (frames, rows, columns); no affine."""
    path = Path(path)
    ds = _dcmread(path, stop_before_pixels=True)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    shape = (int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0))
    spacing = _spacing_2d(ds)
    if frames > 1:
        return Geometry((frames, *shape), (_header_slice_spacing(ds)[0], *spacing), None, str(path))
    return Geometry(shape, spacing, None, str(path))
