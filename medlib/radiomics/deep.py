"""Deep features of the ICH design: pooled CNN activations of the slices around the largest ROI cross-section.

:func:`select_slices` picks the axial slice with the largest ROI and its neighbours at physical offsets (mm),
crops them to the ROI, windows and resizes them; :func:`extract_features` pools any CNN layer with a forward
hook; :func:`ich_deep_features` combines the two into one feature vector per case.

torch is imported inside the functions that need it, so importing this module does not load it.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Sequence

import numpy as np

from medlib.data.imaging.window import linear_window
from medlib.radiomics._checks import case_label, check_volume

if TYPE_CHECKING:
    import torch
    from torch import nn


class SliceSelection(NamedTuple):
    """Slices chosen around the largest ROI cross-section, cropped, windowed and resized.

    Attributes:
        slices: one (size, size) float32 array per offset, in the order of the offsets.
        indices: the axial (axis 0) index used for each offset; repeated where offsets share a slice.
        centre: the index of the slice with the largest ROI area.
        box: the crop (row0, row1, col0, col1) in pixels, possibly extending past the image (padded).
    """

    slices: list[np.ndarray]
    indices: tuple[int, ...]
    centre: int
    box: tuple[int, int, int, int]


def largest_slice_index(mask: np.ndarray, *, case_id: object | None = None) -> int:
    """The axial slice (axis 0) with the largest ROI area; the first one on ties.

    Raises:
        ValueError: naming the case when the mask is not 3-D or empty.
    """
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise ValueError(f"{case_label(case_id)}: mask must be a 3-D (D, H, W) array; got shape {mask.shape}")
    areas = (mask != 0).sum(axis=(1, 2))
    if not areas.any():
        raise ValueError(f"{case_label(case_id)}: the mask is empty (no ROI voxel on any slice)")
    return int(np.argmax(areas))


def _round_half_away(x: float) -> int:
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def slice_indices(centre: int, n_slices: int, slice_mm: float, offsets_mm: Sequence[float]) -> tuple[int, ...]:
    """The slice nearest each physical offset: ``centre + round(offset / slice_mm)``, clipped to the volume.

    Rounding is half away from zero, so +-offsets map symmetrically. With slices thicker than the offsets,
    several offsets share a slice (e.g. 5 mm slices: offsets -2..2 mm all map to the centre slice).

    >>> slice_indices(10, 20, 2.0, (-2, -1, 0, 1, 2))
    (9, 9, 10, 11, 11)
    """
    return tuple(min(max(centre + _round_half_away(o / slice_mm), 0), n_slices - 1) for o in offsets_mm)


def _square_box(roi: np.ndarray, spacing_hw: Sequence[float], margin: float) -> tuple[int, int, int, int]:
    """A box around the ROI's bounding box, square in mm, with a relative margin (may extend past the image)."""
    rows, cols = np.nonzero(roi)
    centre = ((rows.min() + rows.max() + 1) / 2, (cols.min() + cols.max() + 1) / 2)
    extent_mm = max((rows.max() - rows.min() + 1) * spacing_hw[0], (cols.max() - cols.min() + 1) * spacing_hw[1])
    half_mm = extent_mm * (1 + 2 * margin) / 2
    half = [max(1, math.ceil(half_mm / s)) for s in spacing_hw]
    return (int(math.floor(centre[0] - half[0])), int(math.floor(centre[0] - half[0])) + 2 * half[0],
            int(math.floor(centre[1] - half[1])), int(math.floor(centre[1] - half[1])) + 2 * half[1])


def _crop(image: np.ndarray, box: tuple[int, int, int, int], fill: float) -> np.ndarray:
    r0, r1, c0, c1 = box
    pad = ((max(0, -r0), max(0, r1 - image.shape[0])), (max(0, -c0), max(0, c1 - image.shape[1])))
    padded = np.pad(image, pad, mode="constant", constant_values=fill)
    return padded[r0 + pad[0][0]: r1 + pad[0][0], c0 + pad[1][0]: c1 + pad[1][0]]


def _window(image: np.ndarray, window: tuple[float, float] | None) -> np.ndarray:
    """Clip to (centre - width/2, centre + width/2) and scale to [0, 1]; None = unchanged."""
    return image.astype(np.float32) if window is None else linear_window(image, *window)


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    return F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0, 0].numpy()


def select_slices(volume: np.ndarray, mask: np.ndarray, spacing: Sequence[float],
                  offsets_mm: Sequence[float] = (-2.0, -1.0, 0.0, 1.0, 2.0), *,
                  window: tuple[float, float] | None = (40.0, 80.0), size: int = 64, margin: float = 0.1,
                  case_id: object | None = None) -> SliceSelection:
    """The slice with the largest ROI and its neighbours at physical offsets, cropped to the ROI.

    Slices are chosen by physical distance along axis 0 (``spacing[0]`` mm per slice), nearest slice to each
    offset (:func:`slice_indices`). When the slice spacing is coarser than the offsets, several offsets map to
    the same slice; the duplicates are kept (so every case yields ``len(offsets_mm)`` slices and a fixed
    feature length), the indices used are returned, and a ``UserWarning`` says so (shown once per spacing by
    Python's default warning filter). Offsets past the volume's ends use the end slice, with a warning naming
    the case.

    The crop is the bounding box of the union of the ROI over the chosen slices, made square in mm and enlarged
    by ``margin`` on each side (padded with the window's floor where it passes the image edge); each crop is
    windowed (CT brain window: centre 40, width 80 HU, scaled to [0, 1]) and resized to ``size x size``.

    Raises:
        ValueError: naming the case: shapes or spacing invalid, or the mask is empty.
    """
    label = case_label(case_id)
    volume, roi = np.asarray(volume), np.asarray(mask) != 0
    check_volume(volume, roi, spacing, label)
    centre = largest_slice_index(roi, case_id=case_id)
    indices = slice_indices(centre, volume.shape[0], float(spacing[0]), offsets_mm)
    _warn_shared_slices(indices, centre, volume.shape[0], float(spacing[0]), offsets_mm, label)
    box = _square_box(roi[list(set(indices))].any(axis=0), spacing[1:], margin)
    fill = float(volume.min()) if window is None else -np.inf
    slices = [_resize(_window(_crop(volume[i].astype(np.float32), box, fill), window), size) for i in indices]
    return SliceSelection(slices=slices, indices=indices, centre=centre, box=box)


def _warn_shared_slices(indices: tuple[int, ...], centre: int, n: int, slice_mm: float,
                        offsets_mm: Sequence[float], label: str) -> None:
    shifts = tuple(_round_half_away(o / slice_mm) for o in offsets_mm)
    if len(set(shifts)) < len(shifts):
        warnings.warn(f"slice spacing {slice_mm:g} mm is coarser than the offsets {tuple(offsets_mm)} mm: they map "
                      f"to slice shifts {shifts}, so some slices are used more than once", UserWarning, stacklevel=3)
    if any(not 0 <= centre + s < n for s in shifts):
        warnings.warn(f"{label}: offsets {tuple(offsets_mm)} mm pass the end of the volume ({n} slices, largest ROI "
                      f"on slice {centre}); the end slice is used: indices {indices}", UserWarning, stacklevel=3)


def _default_layer(model: "nn.Module") -> tuple[str, "nn.Module"]:
    from torch import nn

    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("model has no nn.Linear classifier; pass layer= the name of the layer to pool")
    return linears[-1]


class _Capture:
    """Context manager: a forward hook that keeps a module's input (``use_input``) or output; always removed."""

    def __init__(self, module: "nn.Module", use_input: bool) -> None:
        self.module, self.use_input, self.value, self._handle = module, use_input, None, None

    def __enter__(self) -> "_Capture":
        if self.use_input:
            self._handle = self.module.register_forward_pre_hook(self._keep_input)
        else:
            self._handle = self.module.register_forward_hook(self._keep_output)
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()

    def _keep_input(self, module: "nn.Module", args: tuple) -> None:
        self.value = args[0]

    def _keep_output(self, module: "nn.Module", args: tuple, output: Any) -> None:
        self.value = output[0] if isinstance(output, (tuple, list)) else output


def _pool(t: "torch.Tensor") -> "torch.Tensor":
    """Global average pool over every axis after the channel axis: (N, C, ...) -> (N, C)."""
    return t.flatten(2).mean(dim=2) if t.ndim > 2 else t.reshape(t.shape[0], -1)


def extract_features(model: "nn.Module", x: "torch.Tensor", layer: str | None = None, *,
                     batch_size: int = 32) -> np.ndarray:
    """Pooled activations of one layer of any CNN, by forward hook.

    Args:
        model: a torch module; it is run in eval mode under ``torch.no_grad()`` and its mode is restored.
        x: (N, C, ...) input batch, on any device (moved to the model's device).
        layer: name in ``model.named_modules()`` whose output is pooled (global average over spatial axes).
            None = the input of the model's last ``nn.Linear`` (the penultimate features, e.g. ResNet's
            ``fc`` input: 512 for resnet18, 2048 for resnet50).
        batch_size: forward passes of at most this many inputs.

    Returns:
        float32 array (N, channels).

    Raises:
        KeyError: ``layer`` is not a module of the model.
        ValueError: ``layer`` is None and the model has no ``nn.Linear``.
    """
    import torch

    modules = dict(model.named_modules())
    if layer is None:
        _, module = _default_layer(model)
    elif layer in modules:
        module = modules[layer]
    else:
        raise KeyError(f"Unknown layer {layer!r}. Available: {[n for n in modules if n][:40]}")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    out = []
    try:
        model.eval()
        with _Capture(module, use_input=layer is None) as capture, torch.no_grad():
            for start in range(0, len(x), batch_size):
                model(x[start:start + batch_size].to(device))
                out.append(_pool(capture.value).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, 0), dtype=np.float32)


def _input_channels(model: "nn.Module") -> tuple[int, int]:
    """(in_channels, spatial dims) of the model's first convolution."""
    from torch import nn

    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            return m.in_channels, {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}[type(m)]
    raise ValueError("model has no convolution; cannot tell how many input channels it expects")


def ich_deep_features(volume: np.ndarray, mask: np.ndarray, spacing: Sequence[float], model: "nn.Module", *,
                      offsets_mm: Sequence[float] = (-2.0, -1.0, 0.0, 1.0, 2.0),
                      window: tuple[float, float] | None = (40.0, 80.0), size: int = 64,
                      aggregate: Literal["mean", "concat"] = "mean", layer: str | None = None,
                      margin: float = 0.1, batch_size: int = 32, case_id: object | None = None) -> np.ndarray:
    """Deep features of one ICH case: a 2D CNN on the largest-ROI slice and its neighbours (ICH study design).

    Slices come from :func:`select_slices`; a grey slice is repeated to the model's input channels (3 for an
    ImageNet-style backbone). Features are :func:`extract_features` of each slice, then averaged over slices
    (``"mean"``: length = channels) or concatenated in offset order (``"concat"``: length = channels x offsets).

    Returns:
        1-D float32 array.

    Raises:
        ValueError: naming the case, for bad inputs; or a 3D model.
    """
    chosen = select_slices(volume, mask, spacing, offsets_mm, window=window, size=size, margin=margin,
                           case_id=case_id)
    return slice_features(model, np.stack(chosen.slices), aggregate=aggregate, layer=layer, batch_size=batch_size)


def slice_features(model: "nn.Module", slices: np.ndarray, *, aggregate: Literal["mean", "concat"] = "mean",
                   layer: str | None = None, batch_size: int = 32) -> np.ndarray:
    """One case's deep features from its (S, H, W) slices: :func:`extract_features` per slice (a grey slice
    repeated to the model's input channels), averaged (``"mean"``) or concatenated (``"concat"``).

    Raises:
        ValueError: an unknown ``aggregate`` or a model that is not 2D.
    """
    import torch

    if aggregate not in ("mean", "concat"):
        raise ValueError(f"aggregate must be 'mean' or 'concat'; got {aggregate!r}")
    channels, dims = _input_channels(model)
    if dims != 2:
        raise ValueError(f"ich_deep_features needs a 2D CNN; the model's first convolution is {dims}D")
    x = torch.from_numpy(np.ascontiguousarray(slices, dtype=np.float32))[:, None].repeat(1, channels, 1, 1)
    feats = extract_features(model, x, layer, batch_size=batch_size)
    return (feats.mean(axis=0) if aggregate == "mean" else feats.reshape(-1)).astype(np.float32)
