"""Preprocessing (window, crop to ROI, resize, normalise) and its on-disk cache.

Preprocessing runs once per image: ``load_preprocessed`` keys the result by the input file (absolute path,
size, modification time; for a series folder, every file's), the mask's likewise, the settings and a format
version, and stores a ``.npy`` written atomically. A second run, and every epoch, reads the array instead of
decoding DICOM. The cache holds arrays only: no header, no identifier.

Resizing uses ``torch.nn.functional.interpolate``: bilinear with antialiasing in 2D, trilinear in 3D after a
Gaussian pre-filter on the axes being shrunk (sigma = (factor - 1) / 2 voxels, the rule of scikit-image's
``resize(anti_aliasing=True)``), because torch has no antialiased trilinear mode. Torch is already a dependency,
is fast on CPU, and antialiasing matters: a 2048-pixel radiograph becomes 64 pixels, a 512x512 CT slice 32x32;
without it each output pixel samples a handful of input pixels and noise and fine structure alias.
``scipy.ndimage.zoom`` (spline, no antialiasing) would alias the same way and is slower.

MONAI is used where it gives today's numbers exactly (bit for bit on the reference images, DICOM and MedMNIST
volumes and on random arrays; ``tests/test_preprocess.py`` checks it against a frozen copy of the previous code):
the mask's bounding box (``monai.transforms.utils.generate_spatial_bounding_box``) and min-max scaling
(``monai.transforms.utils.rescale_array``, the function behind ``ScaleIntensity``). Resizing, centre crop/pad
and z-scoring stay ours; each docstring says which MONAI transform differs and by how much. Windowing is
``medlib.data.imaging.window``'s.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from medlib.data.imaging import Image, read_image, read_with_mask
from medlib.data.imaging.window import clip_window

CACHE_VERSION = 2  # 2: 3D antialiasing, target spacing, MONOCHROME1 inversion as 1 - v
SETTING_KEYS = ("size", "window", "crop_to_mask", "margin", "normalize", "spacing")


def _bounding_box(mask: np.ndarray, margin: float, source: str) -> tuple[slice, ...]:
    """The mask's bounding box enlarged by ``margin`` times its extent per side, clamped at the border.

    MONAI's ``generate_spatial_bounding_box`` finds the box, then adds the margin in voxels and clamps it
    (``allow_smaller=True``); its all-zero box for an empty mask is an error here.
    """
    from monai.transforms.utils import generate_spatial_bounding_box

    if not mask.any():
        raise ValueError(f"{source}: the mask is empty; cannot crop to it")
    start, end = generate_spatial_bounding_box(mask[None])
    pad = [int(np.ceil((int(e) - int(s)) * margin)) for s, e in zip(start, end)]
    start, end = generate_spatial_bounding_box(mask[None], margin=pad, allow_smaller=True)
    return tuple(slice(int(a), int(b)) for a, b in zip(start, end))


def _antialias_3d(array: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Gaussian pre-filter on the axes being shrunk, sigma = (factor - 1) / 2 voxels (scikit-image's rule)."""
    from scipy.ndimage import gaussian_filter

    sigma = [max(0.0, (n / s - 1.0) / 2.0) for n, s in zip(array.shape, size)]
    return gaussian_filter(array, sigma, mode="nearest") if any(sigma) else array


def resize(array: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Resize a 2D or 3D array to ``size``; a new float32 array (the input is never returned or modified).

    2D: bilinear with antialiasing (torch). 3D: Gaussian pre-filter on the shrunk axes, then trilinear (torch).
    Both with ``align_corners=False``: pixel centres, not edges, are aligned, so the field of view is kept.

    Not MONAI's ``Resize(anti_aliasing=True)``: it pre-filters 2D images too with a Gaussian instead of torch's
    antialiased bilinear, and its ``GaussianSmooth`` uses an erf-integrated kernel with zero padding at the
    border where we use scipy's sampled kernel with nearest-edge padding. On the reference images and volumes
    shrunk to 16-224 pixels per axis the outputs differ by up to 19% of the input's range in 2D (9% away from
    the border) and 16% in 3D, so cached tensors and trained models would change. Upsampling agrees to within
    3e-6 of the range.

    Raises:
        ValueError: ``size`` has another number of axes than ``array`` or a size below 1.
    """
    import torch
    import torch.nn.functional as F

    size = tuple(int(s) for s in size)
    if len(size) != array.ndim or array.ndim not in (2, 3) or min(size) < 1:
        raise ValueError(f"size must give one positive length per axis of a 2D or 3D array; got size {size} "
                         f"for shape {array.shape}")
    if tuple(array.shape) == size:
        return array.astype(np.float32, copy=True)
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 3:
        array = _antialias_3d(array, size)
    x = torch.from_numpy(np.ascontiguousarray(array))[None, None]
    if array.ndim == 2:
        out = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    else:
        out = F.interpolate(x, size=size, mode="trilinear", align_corners=False)
    return out[0, 0].numpy().copy()


def resample_to_spacing(array: np.ndarray, spacing: Sequence[float], target: Sequence[float]) -> np.ndarray:
    """Resample to a target spacing in mm: shape becomes round(shape * spacing / target) (at least 1)."""
    if len(target) != array.ndim or min(float(t) for t in target) <= 0:
        raise ValueError(f"spacing must give one positive spacing in mm per axis; got {list(target)} for an "
                         f"array of shape {array.shape}")
    shape = [max(1, int(round(n * float(s) / float(t)))) for n, s, t in zip(array.shape, spacing, target)]
    return resize(array, shape)


def center_crop_or_pad(array: np.ndarray, size: Sequence[int], fill: float) -> np.ndarray:
    """Crop or pad (with ``fill``) each axis symmetrically around the centre to ``size``.

    A crop starts at ``(n - s) // 2``. Not MONAI's ``ResizeWithPadOrCrop``: its padding is the same, but its
    ``CenterSpatialCrop`` starts at ``n // 2 - s // 2``, one pixel later when ``n`` is even and ``s`` odd
    (e.g. 512 → 509), which shifts the image by a pixel.
    """
    out = np.full(tuple(int(s) for s in size), fill, dtype=np.float32)
    src, dst = [], []
    for n, s in zip(array.shape, out.shape):
        if n >= s:
            start = (n - s) // 2
            src.append(slice(start, start + s))
            dst.append(slice(0, s))
        else:
            start = (s - n) // 2
            src.append(slice(0, n))
            dst.append(slice(start, start + n))
    out[tuple(dst)] = array[tuple(src)]
    return out


def normalize_intensity(array: np.ndarray, how: Literal["zscore", "minmax", "none"]) -> np.ndarray:
    """Z-score (mean 0, SD 1), min-max to [0, 1], or nothing; a new float32 array. A constant image becomes zeros.

    ``minmax`` is MONAI's ``rescale_array`` (``ScaleIntensity(minv=0, maxv=1)``), identical to the previous
    code bit for bit; a constant (or NaN-holding) image still gives zeros, where MONAI would give ``-0.0`` or NaN.
    ``zscore`` stays NumPy: MONAI's ``NormalizeIntensity`` computes the mean and SD with torch, whose sums run
    in another order, so its output differs by up to 4.8e-7 (one float32 step) and cached tensors would change.

    Args:
        array: image or volume.
        how: ``"zscore"``, ``"minmax"`` or ``"none"``.

    Raises:
        ValueError: another ``how``.
    """
    if how == "none":
        return array.astype(np.float32, copy=True)
    if how == "zscore":
        sd = float(array.std())
        return ((array - array.mean()) / sd if sd > 0 else array - array.mean()).astype(np.float32)
    if how == "minmax":
        from monai.transforms.utils import rescale_array

        if not float(array.max()) > float(array.min()):
            return np.zeros(array.shape, dtype=np.float32)
        return np.asarray(rescale_array(array, 0.0, 1.0, dtype=None)).astype(np.float32)
    raise ValueError(f"normalize must be 'zscore', 'minmax' or 'none'; got {how!r}")


def _check_mask(image: Image, mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    if mask is None:
        raise ValueError(f"{image.source}: image.crop_to_mask is set but the case has no mask")
    if mask.shape != shape:
        raise ValueError(f"{image.source}: mask shape {mask.shape} differs from image shape {shape}")
    return np.asarray(mask) > 0.5


def preprocess(image: Image, *, size: Sequence[int], mask: np.ndarray | None = None, crop_to_mask: bool = False,
               margin: float = 0.1, window: Sequence[float] | None = None,
               normalize: Literal["zscore", "minmax", "none"] = "zscore",
               spacing: Sequence[float] | None = None) -> np.ndarray:
    """Window, crop to the mask's bounding box, resample and normalise one image. Inputs are not modified.

    Order: window clip → crop to the mask (plus ``margin``) → resample → normalise. Without ``spacing`` the
    (cropped) image is resized to ``size``, so its field of view fills the output whatever its physical size.
    With ``spacing`` it is resampled to that spacing in mm and then cropped or padded symmetrically around the
    centre to ``size`` (padding with the image's minimum, i.e. background), so one output pixel is the same
    number of mm for every case.

    Args:
        image: from a reader; 2D (H, W) or 3D (D, H, W), with ``image.spacing`` in mm.
        size: output shape, with as many axes as the image.
        mask: ROI on the image's grid (needed for ``crop_to_mask``); values > 0.5 are inside.
        crop_to_mask: crop to the mask's bounding box, enlarged by ``margin`` times its extent on each side.
        margin: relative margin around the bounding box (0.1 = 10% of the box per side), clamped at the border.
        window: (centre, width) clip to [centre - width/2, centre + width/2] in image units (e.g. HU).
        normalize: ``"zscore"`` (mean 0, SD 1), ``"minmax"`` (0..1) or ``"none"``, after resampling.
        spacing: target spacing in mm per axis (same order as ``image.spacing``), or None to resize to ``size``.

    Returns:
        A new float32 array of shape ``size``.

    Raises:
        ValueError: size and image dimensions differ, a bad window or spacing, no mask or a mask of another
            shape with ``crop_to_mask``, or an empty mask (naming the file).
    """
    array = image.array
    if len(size) != array.ndim:
        raise ValueError(f"{image.source}: image has {array.ndim} dimensions {array.shape}, but image.size "
                         f"{list(size)} has {len(size)}; use (H, W) for 2D images and (D, H, W) for volumes")
    if window is not None:
        try:
            array = clip_window(array, float(window[0]), float(window[1]))
        except ValueError as err:
            raise ValueError(f"{image.source}: {err}") from err
    pixel_spacing = tuple(image.spacing)
    if crop_to_mask:
        array = array[_bounding_box(_check_mask(image, mask, array.shape), margin, image.source)]
    if spacing is None:
        out = resize(array, size)
    else:
        out = center_crop_or_pad(resample_to_spacing(array, pixel_spacing, spacing), size, float(array.min()))
    return normalize_intensity(out, normalize)


def _file_state(path: Path) -> list:
    if path.is_dir():
        return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(path.iterdir()) if p.is_file()]
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def cache_key(path: str | Path, settings: dict, mask_path: str | Path | None = None) -> str:
    """sha256 of the input's identity (path, size, mtime), the mask's, the settings and the cache version."""
    path = Path(path).resolve()
    payload = {"version": CACHE_VERSION, "path": str(path), "state": _file_state(path),
               "settings": {k: v for k, v in settings.items() if not (k == "spacing" and v is None)}}
    if mask_path is not None:
        mask = Path(mask_path).resolve()
        payload["mask"] = [str(mask), _file_state(mask)]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=_json_value).encode()).hexdigest()


def _json_value(value):
    """numpy scalars and arrays in settings (tuples and lists already serialise as JSON lists)."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"preprocessing setting value {value!r} of type {type(value).__name__} is not JSON-serialisable")


def _check_settings(settings: dict) -> None:
    unknown = sorted(set(settings) - set(SETTING_KEYS))
    if unknown or "size" not in settings:
        raise ValueError(f"preprocessing settings must hold {list(SETTING_KEYS)} ('size' required); "
                         f"got {sorted(settings)}")


def compute_preprocessed(path: str | Path, settings: dict, mask_path: str | Path | None = None) -> np.ndarray:
    """Read and preprocess one image (no cache)."""
    _check_settings(settings)
    if mask_path is None:
        return preprocess(read_image(path), **settings)
    image, mask = read_with_mask(path, mask_path)  # a mask off the image's grid is refused, never cropped to
    return preprocess(image, mask=mask, **settings)


def _atomic_save(array: np.ndarray, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".npy", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, array)
        os.replace(tmp, target)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise OSError(err.errno, f"disk full while writing the preprocessing cache {target} "
                                     f"({os.strerror(err.errno)}); free space or set image.cache_dir elsewhere "
                                     f"(nothing was left half-written)") from err
        raise


def load_preprocessed(path: str | Path, settings: dict, *, cache_dir: str | Path,
                      mask_path: str | Path | None = None) -> np.ndarray:
    """The preprocessed image, from the cache when present; otherwise computed and cached.

    The cache key (``cache_key``) is the sha256 of the absolute input path with its size and modification time
    (every file's for a series folder), the mask's likewise (only when ``crop_to_mask`` uses it), the settings
    as sorted JSON and ``CACHE_VERSION``; editing or touching a file makes a new entry. Entries are ``.npy``
    arrays only (no header, no identifier), written to a temporary name in the same folder and renamed, so a
    crash never leaves a half file; an unreadable entry is recomputed.

    Args:
        path: image file or DICOM series folder.
        settings: ``size`` (required), ``window``, ``crop_to_mask``, ``margin``, ``normalize``, ``spacing``: the
            keyword arguments of ``preprocess`` (``medlib.data.tensors.image_settings`` builds them from the config).
        cache_dir: cache folder (``image.cache_dir``).
        mask_path: the case's mask, used when ``crop_to_mask`` is set.

    Returns:
        A new float32 array of shape ``settings["size"]``.

    Raises:
        ValueError: unknown or missing settings, or any reader or ``preprocess`` error (naming the file).
        FileNotFoundError: the image or mask does not exist.
    """
    _check_settings(settings)
    key = cache_key(path, settings, mask_path if settings.get("crop_to_mask") else None)
    target = Path(cache_dir) / key[:2] / f"{key}.npy"
    if target.is_file():
        try:
            return np.load(target, allow_pickle=False)
        except (ValueError, OSError, EOFError):
            target.unlink(missing_ok=True)  # a damaged cache entry is recomputed, never trusted
    array = compute_preprocessed(path, settings, mask_path if settings.get("crop_to_mask") else None)
    _atomic_save(array, target)
    return array


def preprocess_many(paths: Sequence[str | Path], settings: dict, *, cache_dir: str | Path,
                    mask_paths: Sequence[str | Path | None] | None = None, workers: int = 1) -> np.ndarray:
    """Preprocess (cached, see ``load_preprocessed``) and stack many images: shape ``(N, *settings["size"])``.

    Args:
        paths: image files or series folders.
        settings: as for ``load_preprocessed``.
        cache_dir: cache folder.
        mask_paths: one mask path (or None) per image, or None for no masks.
        workers: processes; with more than 1, a process pool whose workers use one torch thread each.

    Raises:
        ValueError: no paths, or ``mask_paths`` of another length; any error of ``load_preprocessed``.
    """
    if not len(paths):
        raise ValueError("paths is empty; expected at least one image")
    masks = list(mask_paths) if mask_paths is not None else [None] * len(paths)
    if len(masks) != len(paths):
        raise ValueError(f"mask_paths has {len(masks)} entries for {len(paths)} images")
    _check_settings(settings)
    if workers > 1:
        with ProcessPoolExecutor(min(workers, len(paths)), initializer=_init_worker) as pool:
            arrays = list(pool.map(_load_one, [(p, settings, str(cache_dir), m) for p, m in zip(paths, masks)]))
    else:
        arrays = [load_preprocessed(p, settings, cache_dir=cache_dir, mask_path=m) for p, m in zip(paths, masks)]
    return np.stack(arrays)


def _init_worker() -> None:
    """One torch thread per worker process: the pool is the parallelism (and OpenMP is not fork-safe)."""
    import torch

    torch.set_num_threads(1)


def _load_one(args: tuple) -> np.ndarray:
    path, settings, cache_dir, mask = args
    return load_preprocessed(path, settings, cache_dir=cache_dir, mask_path=mask)
