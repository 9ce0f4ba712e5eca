"""MedMNIST ``.npz`` files: the official train/val/test splits as arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medlib.schema import INTERNAL_SETS

SPLITS = INTERNAL_SETS  # MedMNIST's official splits carry medlib's set names


def _labels(path: Path, split: str, labels: np.ndarray) -> np.ndarray:
    """(N,) for single-label files, stored as (N, 1); (N, K) kept for multi-label files (ChestMNIST)."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim not in (1, 2) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: {split}_labels has shape {labels.shape} and dtype {labels.dtype}; expected "
                         f"integer labels of shape (N,), (N, 1) or (N, K)")
    return labels.astype(np.int64)


def read_medmnist(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read a MedMNIST file: ``{"train": (images, labels), "val": ..., "test": ...}`` in the official splits.

    Images are uint8 as stored: (N, H, W) for 2D grey, (N, D, H, W) for 3D, (N, H, W, 3) for the colour 2D
    sets. Labels are int64, (N,) (or (N, K) for multi-label sets).

    Args:
        path: an official MedMNIST ``.npz`` (keys ``train_images``, ``train_labels``, ``val_...``, ``test_...``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a split's images or labels are missing, images are not uint8 with 3 or 4 dimensions, or the
            image and label counts differ (naming the file and the key).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MedMNIST file not found: {path}")
    out = {}
    with np.load(path, allow_pickle=False) as data:
        for split in SPLITS:
            for key in (f"{split}_images", f"{split}_labels"):
                if key not in data:
                    raise ValueError(f"{path}: key {key!r} missing; expected {split}_images and {split}_labels")
            images, labels = data[f"{split}_images"], _labels(path, split, data[f"{split}_labels"])
            if images.dtype != np.uint8 or images.ndim not in (3, 4):
                raise ValueError(f"{path}: {split}_images has shape {images.shape} and dtype {images.dtype}; "
                                 f"expected uint8 (N, H, W) or (N, D, H, W)")
            if len(images) != len(labels):
                raise ValueError(f"{path}: {split} has {len(images)} images but {len(labels)} labels")
            out[split] = (images, labels)
    return out
