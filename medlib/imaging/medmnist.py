"""MedMNIST ``.npz`` files: the official train/val/test splits as arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SPLITS = ("train", "val", "test")


def read_medmnist(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read a MedMNIST file: ``{"train": (images, labels), "val": ..., "test": ...}``.

    Images are uint8, (N, H, W) in 2D or (N, D, H, W) in 3D; labels (N,) ints.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a split's images or labels are missing, or their lengths differ (naming the key).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MedMNIST file not found: {path}")
    with np.load(path) as data:
        out = {}
        for split in SPLITS:
            for key in (f"{split}_images", f"{split}_labels"):
                if key not in data:
                    raise ValueError(f"{path}: key {key!r} missing; expected {split}_images and {split}_labels")
            images, labels = data[f"{split}_images"], np.asarray(data[f"{split}_labels"]).reshape(-1)
            if len(images) != len(labels):
                raise ValueError(f"{path}: {split} has {len(images)} images but {len(labels)} labels")
            out[split] = (images, labels.astype(int))
    return out
