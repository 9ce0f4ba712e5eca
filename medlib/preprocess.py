"""Preprocessing (window, crop to ROI, resize, normalise) and its on-disk cache.

Preprocessing runs once per image: ``load_preprocessed`` keys the result by the input file (absolute path,
size, modification time; for a series folder, every file's), the mask's likewise, the settings and a format
version, and stores a ``.npy`` written atomically. A second run, and every epoch, reads the array instead of
decoding DICOM. The cache holds arrays only: no header, no identifier.

Resizing uses ``torch.nn.functional.interpolate`` (bilinear with antialiasing in 2D, trilinear in 3D): it is
fast, already a dependency, and antialiasing avoids aliasing when a 2048-pixel radiograph becomes 64 pixels.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from medlib.imaging import Image, read_image

CACHE_VERSION = 1
SETTING_KEYS = ("size", "window", "crop_to_mask", "margin", "normalize")


def _bounding_box(mask: np.ndarray, margin: float, source: str) -> tuple[slice, ...]:
    if not mask.any():
        raise ValueError(f"{source}: the mask is empty; cannot crop to it")
    coords = np.argwhere(mask)
    lo, hi = coords.min(axis=0), coords.max(axis=0) + 1
    pad = np.ceil((hi - lo) * margin).astype(int)
    lo, hi = np.maximum(lo - pad, 0), np.minimum(hi + pad, mask.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


def resize(array: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Resize a 2D or 3D array to ``size`` (bilinear with antialiasing in 2D, trilinear in 3D)."""
    import torch
    import torch.nn.functional as F

    if tuple(array.shape) == tuple(size):
        return array.astype(np.float32, copy=True)
    x = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
    if array.ndim == 2:
        out = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    else:
        out = F.interpolate(x, size=tuple(size), mode="trilinear", align_corners=False)
    return out[0, 0].numpy()


def normalize_intensity(array: np.ndarray, how: Literal["zscore", "minmax", "none"]) -> np.ndarray:
    """Z-score (mean 0, SD 1), min-max to [0, 1], or nothing. A constant image becomes zeros."""
    if how == "none":
        return array.astype(np.float32, copy=True)
    if how == "zscore":
        sd = float(array.std())
        return ((array - array.mean()) / sd if sd > 0 else array - array.mean()).astype(np.float32)
    if how == "minmax":
        lo, hi = float(array.min()), float(array.max())
        return ((array - lo) / (hi - lo) if hi > lo else np.zeros_like(array)).astype(np.float32)
    raise ValueError(f"normalize must be 'zscore', 'minmax' or 'none'; got {how!r}")


def preprocess(image: Image, *, size: Sequence[int], mask: np.ndarray | None = None, crop_to_mask: bool = False,
               margin: float = 0.1, window: Sequence[float] | None = None,
               normalize: Literal["zscore", "minmax", "none"] = "zscore") -> np.ndarray:
    """Window, crop to the mask's bounding box, resize and normalise one image. Inputs are not modified.

    Args:
        image: from a reader; 2D (H, W) or 3D (D, H, W).
        size: target shape with as many axes as the image.
        mask: ROI on the image's grid (needed for ``crop_to_mask``).
        crop_to_mask: crop to the mask's bounding box plus ``margin`` (relative) before resizing.
        window: (centre, width) clip in image units (e.g. HU), applied before normalisation.
        normalize: intensity normalisation after resizing.

    Raises:
        ValueError: size and image dimensions differ, mask shape differs, or an empty mask (naming the file).
    """
    array = image.array
    if len(size) != array.ndim:
        raise ValueError(f"{image.source}: image has {array.ndim} dimensions {array.shape}, but image.size "
                         f"{list(size)} has {len(size)}; use (H, W) for 2D images and (D, H, W) for volumes")
    if window is not None:
        center, width = float(window[0]), float(window[1])
        array = np.clip(array, center - width / 2, center + width / 2)
    if crop_to_mask:
        if mask is None:
            raise ValueError(f"{image.source}: image.crop_to_mask is set but the case has no mask")
        if mask.shape != array.shape:
            raise ValueError(f"{image.source}: mask shape {mask.shape} differs from image shape {array.shape}")
        array = array[_bounding_box(mask > 0.5, margin, image.source)]
    return normalize_intensity(resize(array, size), normalize)


def _file_state(path: Path) -> list:
    if path.is_dir():
        return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(path.iterdir()) if p.is_file()]
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def cache_key(path: str | Path, settings: dict, mask_path: str | Path | None = None) -> str:
    """sha256 of the input's identity (path, size, mtime), the mask's, the settings and the cache version."""
    path = Path(path).resolve()
    payload = {"version": CACHE_VERSION, "path": str(path), "state": _file_state(path),
               "settings": {k: (list(v) if isinstance(v, (tuple, list)) else v) for k, v in sorted(settings.items())}}
    if mask_path is not None:
        mask = Path(mask_path).resolve()
        payload["mask"] = [str(mask), _file_state(mask)]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _check_settings(settings: dict) -> None:
    unknown = sorted(set(settings) - set(SETTING_KEYS))
    if unknown or "size" not in settings:
        raise ValueError(f"preprocessing settings must hold {list(SETTING_KEYS)} ('size' required); "
                         f"got {sorted(settings)}")


def compute_preprocessed(path: str | Path, settings: dict, mask_path: str | Path | None = None) -> np.ndarray:
    """Read and preprocess one image (no cache)."""
    _check_settings(settings)
    image = read_image(path)
    mask = read_image(mask_path).array if mask_path is not None else None
    return preprocess(image, mask=mask, **settings)


def _atomic_save(array: np.ndarray, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".npy", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, array)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_preprocessed(path: str | Path, settings: dict, *, cache_dir: str | Path,
                      mask_path: str | Path | None = None) -> np.ndarray:
    """The preprocessed image, from the cache when present; otherwise computed and cached.

    Args:
        path: image file or DICOM series folder.
        settings: ``size, window, crop_to_mask, margin, normalize`` (``medlib.data.image_settings``).
        cache_dir: cache folder (``image.cache_dir``).
        mask_path: the case's mask, used when ``crop_to_mask`` is set.
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
    """Preprocess (cached) and stack many images; a process pool when ``workers > 1``."""
    masks = list(mask_paths) if mask_paths is not None else [None] * len(paths)
    if len(masks) != len(paths):
        raise ValueError(f"mask_paths has {len(masks)} entries for {len(paths)} images")
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            arrays = list(pool.map(_load_one, [(p, settings, str(cache_dir), m) for p, m in zip(paths, masks)]))
    else:
        arrays = [load_preprocessed(p, settings, cache_dir=cache_dir, mask_path=m) for p, m in zip(paths, masks)]
    return np.stack(arrays)


def _load_one(args: tuple) -> np.ndarray:
    path, settings, cache_dir, mask = args
    return load_preprocessed(path, settings, cache_dir=cache_dir, mask_path=mask)
