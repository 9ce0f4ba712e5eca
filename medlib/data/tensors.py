"""In-memory case tensors, batching and on-device augmentation.

Every image is preprocessed once (``medlib.data.preprocess``, cached on disk) and the whole set is held as one
tensor ``x [N, C, *spatial]``: the image columns of a case (views or MRI sequences) are its channels. Epochs
index that tensor (on the GPU when it fits), so training never decodes a file after the first load, and
augmentation runs as batched torch operations on the tensor's device.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class CaseTensors:
    """The images and labels of one set, in case order.

    Attributes:
        x: float32 ``[N, C, *spatial]``; channel ``c`` is the c-th image column.
        y: long ``[N]`` labels (1 = positive class).
        case_id: one id per case.
        patient_id: the patient of each case.
    """

    x: torch.Tensor
    y: torch.Tensor
    case_id: tuple[str, ...]
    patient_id: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.x.dim() not in (4, 5) or self.x.dtype != torch.float32:
            raise ValueError(f"x must be float32 [N, C, H, W] or [N, C, D, H, W]; got {self.x.dtype} "
                             f"{tuple(self.x.shape)}")
        n = self.x.shape[0]
        if self.y.shape != (n,) or self.y.dtype != torch.long:
            raise ValueError(f"y must be long [N] with N = {n}; got {self.y.dtype} {tuple(self.y.shape)}")
        if len(self.case_id) != n or len(self.patient_id) != n:
            raise ValueError(f"need one case_id and patient_id per case ({n}); got {len(self.case_id)} and "
                             f"{len(self.patient_id)}")
        object.__setattr__(self, "case_id", tuple(str(c) for c in self.case_id))
        object.__setattr__(self, "patient_id", tuple(str(p) for p in self.patient_id))

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def spatial_dims(self) -> int:
        """2 for images, 3 for volumes."""
        return self.x.dim() - 2

    @property
    def device(self) -> torch.device:
        return self.x.device

    def class_counts(self, num_classes: int = 2) -> list[int]:
        """Cases per class, class 0 first."""
        return torch.bincount(self.y.cpu(), minlength=num_classes).tolist()

    def subset(self, indices: Sequence[int] | torch.Tensor | np.ndarray) -> "CaseTensors":
        """A new ``CaseTensors`` with the cases at ``indices`` (in that order)."""
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        rows = idx.tolist()
        return CaseTensors(self.x[idx.to(self.x.device)], self.y[idx.to(self.y.device)],
                           tuple(self.case_id[i] for i in rows), tuple(self.patient_id[i] for i in rows))

    def to(self, device: str | torch.device, *, non_blocking: bool = False) -> "CaseTensors":
        """A copy on ``device`` (this object itself when already there)."""
        device = torch.device(device)
        if self.x.device == device:
            return self
        return CaseTensors(self.x.to(device, non_blocking=non_blocking), self.y.to(device),
                           self.case_id, self.patient_id)


def image_settings(image_cfg) -> dict:
    """The preprocessing settings of an ``ImageConfig`` as ``medlib.data.preprocess.load_preprocessed`` takes them."""
    return dict(size=tuple(image_cfg.size), window=image_cfg.window, crop_to_mask=image_cfg.crop_to_mask,
                margin=image_cfg.margin, normalize=image_cfg.normalize)


def _check_table(table: pd.DataFrame, columns: Sequence[str], label_column: str, mask_column: str | None) -> None:
    if not columns:
        raise ValueError("need at least one image column")
    needed = ["case_id", "patient_id", label_column, *columns] + ([mask_column] if mask_column else [])
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise KeyError(f"table lacks columns {missing}; it has {list(table.columns)}")
    bad = sorted(set(table[label_column].tolist()) - {0, 1})
    if bad:
        raise ValueError(f"column {label_column!r} must hold 0/1 labels; found {bad[:5]}")


def load_case_tensors(table: pd.DataFrame, columns: Sequence[str], image_cfg, *, label_column: str = "y",
                      mask_column: str | None = None, workers: int = 1) -> CaseTensors:
    """Preprocess every image of ``table`` once (disk-cached) and stack each case's columns as channels.

    Args:
        table: one row per case with ``case_id``, ``patient_id``, ``label_column`` (0/1) and absolute image
            paths in ``columns`` (and ``mask_column``).
        columns: image columns, in channel order (views, or MRI sequences).
        image_cfg: ``medlib.config.ImageConfig``: size, window, crop, normalisation and ``cache_dir``.
        label_column: the 0/1 outcome column.
        mask_column: a column of ROI mask paths used for cropping, or None.
        workers: threads preprocessing images in parallel.

    Returns:
        ``CaseTensors`` on the CPU, ``x`` of shape ``[N, len(columns), *image_cfg.size]``.

    Raises:
        KeyError: a column is missing. ValueError: labels not 0/1, or an image of the wrong shape.
    """
    from medlib.data.preprocess import load_preprocessed

    _check_table(table, columns, label_column, mask_column)
    settings, size = image_settings(image_cfg), tuple(image_cfg.size)
    jobs = [(str(row[col]), None if mask_column is None else str(row[mask_column]))
            for _, row in table.iterrows() for col in columns]

    def one(job: tuple[str, str | None]) -> np.ndarray:
        path, mask = job
        arr = np.asarray(load_preprocessed(path, settings, cache_dir=image_cfg.cache_dir, mask_path=mask))
        if arr.shape != size:
            squeezed = arr.reshape([s for s in arr.shape if s != 1] or [1])
            if squeezed.shape != size:
                raise ValueError(f"{path}: preprocessed image has shape {arr.shape}; expected {size} "
                                 f"(image.size)")
            arr = squeezed
        return arr.astype(np.float32, copy=False)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        arrays = list(pool.map(one, jobs)) if workers > 1 else [one(j) for j in jobs]
    x = torch.from_numpy(np.stack(arrays).reshape(len(table), len(columns), *size)) if arrays \
        else torch.zeros((0, len(columns), *size), dtype=torch.float32)
    y = torch.tensor(table[label_column].to_numpy(dtype=np.int64))
    return CaseTensors(x, y, tuple(table["case_id"]), tuple(table["patient_id"]))


def iterate_batches(data: CaseTensors, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None,
                    min_batch: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y)`` batches indexed on the data's device.

    Args:
        data: the set.
        batch_size: cases per batch.
        shuffle: a random order from ``generator`` (a CPU ``torch.Generator``) instead of case order.
        generator: required when shuffling, so the order is reproducible.
        min_batch: a last batch smaller than this is dropped (2 in training: BatchNorm cannot train on one case).

    Raises:
        ValueError: ``batch_size < 1``, or shuffling without a generator.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    n = len(data)
    if shuffle:
        if generator is None:
            raise ValueError("shuffle=True needs a torch.Generator (generator=...) for a reproducible order")
        order = torch.randperm(n, generator=generator)
    else:
        order = torch.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        if len(idx) < min_batch:
            return
        idx = idx.to(data.x.device)
        yield data.x.index_select(0, idx), data.y.index_select(0, idx)


def _rotation(angles: torch.Tensor, spatial_dims: int) -> torch.Tensor:
    """In-plane (H-W) rotation matrices ``[N, d, d]``; for volumes the depth axis is kept."""
    c, s = torch.cos(angles), torch.sin(angles)
    n = len(angles)
    rot = torch.eye(spatial_dims).repeat(n, 1, 1)
    rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1] = c, -s, s, c  # grid order is (x=W, y=H, z=D)
    return rot


def augment_batch(x: torch.Tensor, *, generator: torch.Generator, spatial_dims: int, flip: bool = True,
                  max_shift: float = 0.1, max_rotate: float = 10.0, max_scale: float = 0.1) -> torch.Tensor:
    """Random left-right flips and a small random affine (shift, in-plane rotation, zoom) of each case.

    The random parameters are drawn on the CPU from ``generator`` (deterministic for its state) and the
    resampling runs as one ``grid_sample`` on ``x``'s device, so it runs on the GPU when the batch is there.
    Only the left-right axis (W) is flipped: radiographs and head volumes are roughly mirror-symmetric, never
    upside-down. Borders are filled by replicating the edge. All channels (views, sequences) of a case get the
    same transform. ``x`` is not modified.

    Args:
        x: ``[N, C, H, W]`` or ``[N, C, D, H, W]``.
        generator: a CPU ``torch.Generator``.
        spatial_dims: 2 or 3 (must match ``x``).
        flip: flip W with probability 0.5.
        max_shift: largest shift as a fraction of the image side (each of H and W).
        max_rotate: largest in-plane rotation in degrees.
        max_scale: largest relative zoom in or out.

    Returns:
        A new tensor of ``x``'s shape, dtype and device.

    Raises:
        ValueError: ``x`` does not have ``spatial_dims`` spatial axes.
    """
    if x.dim() != spatial_dims + 2:
        raise ValueError(f"expected x with {spatial_dims} spatial axes ([N, C, ...]); got shape {tuple(x.shape)}")
    n, d = x.shape[0], spatial_dims
    u = torch.rand(n, 5, generator=generator)  # flip, angle, scale, shift W, shift H
    mirrored = (u[:, 0] < 0.5) if flip else torch.zeros(n, dtype=torch.bool)
    sign = torch.where(mirrored, -1.0, 1.0)
    angles = (u[:, 1] * 2 - 1) * math.radians(max_rotate)
    scale = 1 + (u[:, 2] * 2 - 1) * max_scale
    theta = _rotation(angles, d) / scale[:, None, None]
    theta[:, :, 0] *= sign[:, None]  # mirror the W coordinate
    shift = torch.zeros(n, d)
    shift[:, :2] = (u[:, 3:5] * 2 - 1) * (2 * max_shift)  # normalised coordinates span 2
    theta = torch.cat([theta, shift[:, :, None]], dim=2).to(device=x.device, dtype=torch.float32)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.to(x.dtype)
