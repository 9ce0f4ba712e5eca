"""Grad-CAM for 2D images and 3D volumes, through pytorch-grad-cam.

``GradCAMExplainer`` is a context manager, so the hooks are always removed. Inputs are the project's tensors:
``[N, C, H, W]`` or ``[N, C, D, H, W]`` (D = slice axis); maps come back as ``[N, H, W]`` or ``[N, D, H, W]`` in
[0, 1], upsampled to the input so a volume's map lines up slice by slice. pytorch-grad-cam 1.5 supports 5-D
inputs (it averages gradients over the three spatial axes), but it resizes them with ``scipy.ndimage.zoom`` on a
corner-aligned grid, which shifts a map towards the volume's borders; volume maps are therefore upsampled here
(trilinear, voxel centres, as ``cv2.resize`` does for 2-D maps). At a layer before the network's last block the
maps are HiResCAM's, which equals Grad-CAM at the last block and stays faithful before it (``GradCAMExplainer``).

The sanity check follows Adebayo et al. (2018, "Sanity checks for saliency maps"): the maps of the trained
model are compared with those of the same architecture with re-initialised weights; a rank correlation near 1
would mean the maps show the input's edges, not what the model learned.
"""

from __future__ import annotations

import copy
import warnings
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

GROUPS = ("TP", "FN", "FP", "TN")


CAM_METHODS = {"gradcam": "Grad-CAM", "hirescam": "HiResCAM"}  # method key -> its name in a report


def _native_resolution_gradcam(method: str = "gradcam"):
    """pytorch-grad-cam's GradCAM (or HiResCAM), but 5-D (volume) maps are returned at the layer's resolution.

    grad-cam 1.5 resizes volume maps with ``scipy.ndimage.zoom`` (cubic spline, corner-aligned grid), unlike 2-D
    maps (``cv2.resize``: linear, pixel centres): a volume's map would be shifted towards the borders by up to half a
    feature cell (8 voxels for a stride-16 layer) and ring. ``GradCAMExplainer`` upsamples those itself.
    """
    from pytorch_grad_cam import GradCAM, HiResCAM

    if method not in CAM_METHODS:
        raise ValueError(f"CAM method must be one of {sorted(CAM_METHODS)}; got {method!r}")

    class _NativeResolution({"gradcam": GradCAM, "hirescam": HiResCAM}[method]):
        def get_target_width_height(self, input_tensor):
            return None if input_tensor.ndim == 5 else super().get_target_width_height(input_tensor)

    return _NativeResolution


def _upsample_volumes(maps: np.ndarray, size: tuple[int, int, int]) -> np.ndarray:
    """Trilinear upsampling on voxel centres (``align_corners=False``, as cv2 does in 2-D), rescaled to [0, 1]."""
    if maps.shape[1:] == tuple(size):
        return maps
    up = torch.nn.functional.interpolate(torch.from_numpy(np.ascontiguousarray(maps))[:, None], size=tuple(size),
                                         mode="trilinear", align_corners=False)[:, 0].numpy()
    low = up.reshape(len(up), -1).min(axis=1).reshape(-1, 1, 1, 1)
    span = up.reshape(len(up), -1).max(axis=1).reshape(-1, 1, 1, 1) - low
    return (up - low) / np.where(span > 0, span, 1)


def _reshape_for(model: nn.Module, layer_name: str) -> Callable | None:
    from vit_pytorch import SimpleViT

    from medlib.learn.models import vit_reshape_transform

    owner = model
    for part in layer_name.split(".")[:-1]:
        owner = getattr(owner, part) if not part.isdigit() else owner[int(part)]
    if isinstance(model, SimpleViT) or isinstance(owner, SimpleViT):
        return vit_reshape_transform
    return None


class GradCAMExplainer:
    """Grad-CAM (or HiResCAM) maps of a classifier's positive (or chosen) class.

    Grad-CAM weights each channel of the layer by its spatially averaged gradient. That average is the channel's
    contribution only when the layer is followed by global pooling and a linear head (the network's last
    block), where HiResCAM (Draelos & Carin 2020, "Use HiResCAM instead of Grad-CAM for faithful explanations of
    convolutional neural networks", arXiv:2011.08891: gradient times activation per cell, summed over channels)
    gives the same map. At an earlier layer (chosen when the input is too small for the last one,
    ``medlib.learn.sizes.CamLayer.method``) the gradient varies across the map and averaging it discards where
    the evidence is, so HiResCAM is the faithful one there.

    Example:
        >>> with GradCAMExplainer(model, layer="layer4") as cam:   # doctest: +SKIP
        ...     maps = cam(x, targets="predicted")

    Args:
        model: a classifier returning logits ``[N, classes]``.
        layer: dotted layer name (``medlib.learn.models.default_cam_layer`` gives the usual one).
        reshape_transform: for token outputs (SimpleViT); None picks one for SimpleViT automatically.
        method: ``"gradcam"`` or ``"hirescam"`` (``CAM_METHODS``).
    """

    def __init__(self, model: nn.Module, *, layer: str, reshape_transform: Callable | None = None,
                 method: str = "gradcam") -> None:
        from medlib.learn.models import get_layer

        self.cam_class = _native_resolution_gradcam(method)  # an unknown method is refused here
        self.model = model
        self.layer = layer
        self.target_layer = get_layer(model, layer)
        self.reshape_transform = reshape_transform or _reshape_for(model, layer)
        self._cam = None
        self._was_training = model.training

    def __enter__(self) -> "GradCAMExplainer":
        self._was_training = self.model.training
        self.model.eval()
        self._cam = self.cam_class(model=self.model, target_layers=[self.target_layer],
                                   reshape_transform=self.reshape_transform)
        return self

    def __exit__(self, *exc) -> None:
        if self._cam is not None:
            self._cam.activations_and_grads.release()
            self._cam = None
        self.model.train(self._was_training)

    def _classes(self, x: torch.Tensor, targets, y) -> list[int]:
        if isinstance(targets, (list, tuple, np.ndarray)):
            return [int(t) for t in targets]
        if targets in ("positive", "negative"):
            return [int(targets == "positive")] * len(x)
        if targets == "true":
            if y is None:
                raise ValueError("targets='true' needs the labels y")
            return [int(v) for v in torch.as_tensor(y).reshape(-1)]
        if targets == "predicted":
            with torch.no_grad():
                return self.model(x).argmax(dim=1).tolist()
        raise ValueError(f"targets must be 'predicted', 'true', 'positive', 'negative' or a list of classes; "
                         f"got {targets!r}")

    def __call__(self, x: torch.Tensor, *, targets="positive", y=None, batch_size: int = 16) -> np.ndarray:
        """Maps ``[N, *spatial]`` in [0, 1] for ``x`` ``[N, C, *spatial]``; ``x`` is not modified.

        Works inside ``torch.no_grad()`` (gradients are switched on for the call). For a ``MultiViewNet`` with a
        shared backbone the layer sees every view; the map of the first view is returned.

        Raises:
            RuntimeError: called outside the ``with`` block.
            ValueError: ``targets`` unknown, ``targets="true"`` without ``y``, or not one target per case.
        """
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        from medlib.learn.models import MultiViewNet

        if self._cam is None:
            raise RuntimeError("use GradCAMExplainer as a context manager: with GradCAMExplainer(...) as cam")
        device = next(self.model.parameters()).device
        x = torch.as_tensor(x).detach().clone().to(device)
        classes = self._classes(x, targets, y)
        if len(classes) != len(x):
            raise ValueError(f"need one target class per case: {len(x)} cases, {len(classes)} targets")
        shared_views = self.model.views if isinstance(self.model, MultiViewNet) and self.model.shared else 1
        maps = []
        with torch.enable_grad():
            for start in range(0, len(x), batch_size):
                batch = x[start:start + batch_size]
                wanted = [ClassifierOutputTarget(c) for c in classes[start:start + batch_size]]
                batch_maps = self._cam(input_tensor=batch, targets=wanted)
                if batch.ndim == 5:
                    batch_maps = _upsample_volumes(batch_maps, batch.shape[2:])
                maps.append(batch_maps.reshape(len(batch), shared_views, *batch_maps.shape[1:])[:, 0])
        self._warn_if_coarse(x.shape[2:])
        return np.concatenate(maps).astype(np.float32)

    def _warn_if_coarse(self, input_size: Sequence[int]) -> None:
        """Warn when the layer's map has one cell along an axis: it says nothing about location along it (a
        32-slice volume through a stride-32 ``layer4``); a map of one cell overall comes back as zeros."""
        acts = self._cam.activations_and_grads.activations
        cells = tuple(acts[-1].shape[2:]) if acts else ()
        if cells and min(cells) == 1:
            warnings.warn(f"layer {self.layer!r} gives maps of {cells} cells for inputs of {tuple(input_size)}: an "
                          f"axis of one cell carries no location; pick an earlier layer or a larger input",
                          UserWarning, stacklevel=3)


def randomized_copy(model: nn.Module, *, seed: int = 0) -> nn.Module:
    """The same architecture with every layer re-initialised by its own ``reset_parameters`` (the
    'model randomisation' test); the caller's global RNG state is left as it was."""
    clone = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in clone.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return clone


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps; 0 when either is constant.

    A constant map ranks no pixel above another, so it shares no ordering with any map: its correlation is
    undefined, and 0 (no association) is the honest number to average (issue 16: the check must print a
    number). ``random_cam_baseline`` counts such maps and says so.
    """
    from scipy.stats import spearmanr

    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a.ravel(), b.ravel()).statistic)


def random_cam_baseline(model: nn.Module, x: torch.Tensor, *, layer: str, seed: int = 0,
                        targets="positive", method: str = "gradcam") -> pd.DataFrame:
    """Rank correlation between the trained model's maps and a weight-randomised copy's (Adebayo et al. 2018).

    Returns:
        One row: cases, mean and range of the per-case Spearman correlation, how many maps were constant
        (counted as rho = 0, see ``_spearman``), and how to read it. Always a number.
    """
    with GradCAMExplainer(model, layer=layer, method=method) as cam:
        trained = cam(x, targets=targets)
    random_model = randomized_copy(model, seed=seed)
    with GradCAMExplainer(random_model, layer=layer, method=method) as cam:
        randomised = cam(x, targets=targets)
    rhos = np.array([_spearman(a, b) for a, b in zip(trained, randomised)])
    flat = [int((np.ptp(m.reshape(len(m), -1), axis=1) == 0).sum()) for m in (trained, randomised)]
    mean = float(rhos.mean()) if len(rhos) else 0.0
    reading = ("maps depend on the learned weights" if abs(mean) < 0.5 else
               "maps resemble an untrained model's: interpret with caution")
    if flat[0]:
        reading += f"; {flat[0]} of the trained model's maps are constant (no location)"
    return pd.DataFrame([{
        "check": "trained vs randomised weights", "cases": len(x),
        "mean Spearman rho": mean,
        "range": f"{rhos.min():.2f} to {rhos.max():.2f}" if len(rhos) else "–",
        "constant maps (trained, randomised)": f"{flat[0]}, {flat[1]} (counted as rho = 0)",
        "reading": reading,
    }])


def outcome_group(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """TP/FN/FP/TN per case."""
    y_true, y_pred = np.asarray(y_true).astype(int), np.asarray(y_pred).astype(int)
    return np.where(y_true == 1, np.where(y_pred == 1, "TP", "FN"), np.where(y_pred == 1, "FP", "TN"))


def select_gallery_cases(predictions: pd.DataFrame, threshold: float, *, n_per_group: int = 2,
                         model: str | None = None, set_name: str = "test", seed: int = 0,
                         groups: Sequence[str] = GROUPS, min_cases: int = 0) -> pd.DataFrame:
    """Cases for a Grad-CAM gallery: up to ``n_per_group`` of each of ``groups`` (misclassified included
    whenever they exist), the most confident first within each group; when that gives fewer than
    ``min_cases``, more of ``groups`` and then of the other groups (TP, FN, FP, TN order) fill it up.

    Returns:
        case_id, group, score, y_true, in the order of ``groups`` (then any filled-up groups).

    Raises:
        ValueError: no predictions of ``model`` on ``set_name``, several models and ``model`` not given, or an
            unknown group.
    """
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        raise ValueError(f"unknown groups {unknown}; expected some of {list(GROUPS)}")
    preds = predictions[predictions["set"] == set_name]
    if model is not None:
        preds = preds[preds["model"] == model]
    if preds.empty:
        raise ValueError(f"no predictions of model {model!r} on the {set_name} set")
    if preds["model"].nunique() > 1:
        raise ValueError(f"predictions of several models {sorted(preds['model'].unique())} on the {set_name} "
                         f"set; pass model= to pick one")
    preds = preds.assign(group=outcome_group(preds["y_true"], preds["score"] >= threshold))
    preds = preds.assign(confidence=(preds["score"] - threshold).abs())
    rng = np.random.default_rng(seed)
    preds = preds.iloc[rng.permutation(len(preds))]
    ranked = {g: preds[preds["group"] == g].sort_values("confidence", ascending=False, kind="stable")
              for g in GROUPS}
    taken = {g: min(n_per_group, len(ranked[g])) if g in groups else 0 for g in GROUPS}
    order = list(groups) + [g for g in GROUPS if g not in groups]
    for g in order:  # fill up to min_cases: first the asked-for groups, then the others
        missing = min_cases - sum(taken.values())
        if missing <= 0:
            break
        taken[g] += min(missing, len(ranked[g]) - taken[g])
    chosen = [ranked[g].head(taken[g]) for g in order if taken[g]]
    if not chosen:
        return pd.DataFrame(columns=["case_id", "group", "score", "y_true"])
    return pd.concat(chosen)[["case_id", "group", "score", "y_true"]].reset_index(drop=True)


def overlay(image: np.ndarray, cam: np.ndarray, *, alpha: float = 0.4, cmap: str = "jet") -> np.ndarray:
    """An RGB float image: the greyscale image (scaled to [0, 1] by its 1st–99th percentiles) under the map."""
    import matplotlib

    lo, hi = np.percentile(image, [1, 99])
    grey = np.clip((image - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    heat = matplotlib.colormaps[cmap](np.clip(cam, 0, 1))[..., :3]
    return (1 - alpha) * np.repeat(grey[..., None], 3, axis=-1) + alpha * heat


def volume_slices(volume: np.ndarray, cam: np.ndarray | None = None, *, n: int = 3,
                  how: str = "cam_peak") -> list[int]:
    """``n`` slice indices of a (D, H, W) volume, in order: around the map's peak slice, or around the centre.

    A map that is the same on every slice (no peak) gives the centre.
    Near the first or last slice the window is shifted to stay inside the volume, so the indices are distinct
    whenever the volume has at least ``n`` slices.

    Raises:
        ValueError: unknown ``how``.
    """
    depth = volume.shape[0]
    profile = None if cam is None else np.asarray(cam, dtype=np.float64).reshape(depth, -1).sum(axis=1)
    if how == "cam_peak" and profile is not None and np.ptp(profile) > 1e-6 * max(np.abs(profile).max(), 1e-12):
        centre = int(profile.argmax())
    elif how in ("center", "cam_peak"):
        centre = depth // 2
    else:
        raise ValueError(f"how must be 'cam_peak' or 'center'; got {how!r}")
    step = max(1, min(depth // (3 * n), (depth - 1) // max(n - 1, 1)))
    first = int(np.clip(centre - (n // 2) * step, 0, max(depth - 1 - (n - 1) * step, 0)))  # window kept inside
    return [int(min(first + k * step, depth - 1)) for k in range(n)]


def layer_names(model: nn.Module) -> Sequence[str]:
    """Names usable as ``layer``."""
    return [name for name, _ in model.named_modules() if name]
