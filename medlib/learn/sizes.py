"""Input sizes that serve the models, checked before any work.

A study names its models and one ``image.size``; some combinations cannot work. DenseNet-121 shrinks its input
32-fold and its last transition pools a 1 x 1 map (it crashes below 32 px, after the images have been read and
preprocessed); a ResNet's last block at 64 px is a 2 x 2 map, which gives Grad-CAM maps that say nothing about
where (issue 16). ``check_input_sizes`` runs every configured model (random weights, no file read) on one zero
input of the configured size, which takes about a second, and

* refuses a size the network cannot run at, naming the model, the size and the smallest size that works;
* picks the Grad-CAM layer: the deepest whose map has at least ``CAM_MIN_CELLS`` cells per side (7 x 7 in
  2D, 4 x 4 x 4 in 3D), an earlier block than the usual last one when the input is small, and says so
  (``CamLayer.describe``, shown in the report's sanity table); when Grad-CAM is on and no layer reaches the
  minimum, the size is refused too.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import torch

from medlib.learn.models import (CAM_MIN_CELLS, build_model, cam_layer_candidates, cam_map_sizes, get_layer,
                                 vit_patch_size)

__all__ = ["CamLayer", "check_input_sizes", "choose_cam_layer", "hirescam_models", "model_size_problem",
           "smallest_side"]

_LARGEST_SIDE = 1024  # the search for the smallest working size stops here


_HIRES = "HiResCAM maps"  # before the last block (``CamLayer.method``)


@dataclass(frozen=True)
class CamLayer:
    """The Grad-CAM layer of one model at one input size.

    Attributes:
        layer: the dotted layer name Grad-CAM hooks.
        cells: its map size, cells per spatial axis (SimpleViT: the token grid).
        usual: the model's usual (deepest) layer.
        usual_cells: that layer's map size at this input.
        explicit: the layer was set by ``models[].cam_layer``.
    """

    layer: str
    cells: tuple[int, ...]
    usual: str
    usual_cells: tuple[int, ...]
    explicit: bool = False

    @property
    def automatic(self) -> bool:
        """An earlier layer than the usual one was chosen because the input is small."""
        return not self.explicit and self.layer != self.usual

    @property
    def method(self) -> str:
        """``"gradcam"`` at the model's last block, else ``"hirescam"``: before the last block Grad-CAM's
        averaged gradient is not where the evidence is (``medlib.explain.gradcam.GradCAMExplainer``)."""
        return "gradcam" if self.layer == self.usual else "hirescam"

    def describe(self) -> str:
        """The layer and why, in words, e.g. ``layer2 (8 × 8 map; layer4 would give 2 × 2 at this input
        size, under the 7 × 7 minimum: an earlier layer was chosen automatically; HiResCAM maps)``."""
        grid = " × ".join(map(str, self.cells))
        if self.explicit:
            how = "" if self.method == "gradcam" else f"; {_HIRES}"
            return f"{self.layer} ({grid} map; models[].cam_layer{how})"
        if self.automatic:
            minimum = " × ".join([str(CAM_MIN_CELLS[len(self.cells)])] * len(self.cells))
            usual = " × ".join(map(str, self.usual_cells))
            return (f"{self.layer} ({grid} map; {self.usual} would give {usual} at this input size, under the "
                    f"{minimum} minimum: an earlier layer was chosen automatically; {_HIRES})")
        return f"{self.layer} ({grid} map; the model's last block)"


def choose_cam_layer(model: torch.nn.Module, input_shape: Sequence[int], *, explicit: str | None = None) -> CamLayer:
    """The Grad-CAM layer of ``model`` for one input of ``input_shape`` = ``(C, *spatial)``: ``explicit`` when
    given, else the deepest candidate (``cam_layer_candidates``) with at least ``CAM_MIN_CELLS`` cells per axis,
    else the finest candidate.

    Raises:
        KeyError: ``explicit`` is not a layer of the model.
    """
    candidates = cam_layer_candidates(model)
    names = list(dict.fromkeys(([explicit] if explicit else []) + candidates))
    if explicit:
        get_layer(model, explicit)
    sizes = cam_map_sizes(model, names, tuple(input_shape))
    minimum = CAM_MIN_CELLS[len(tuple(input_shape)) - 1]
    chosen = explicit or next((n for n in candidates if min(sizes[n]) >= minimum), candidates[-1])
    return CamLayer(layer=chosen, cells=tuple(sizes[chosen]), usual=candidates[0],
                    usual_cells=tuple(sizes[candidates[0]]), explicit=bool(explicit))


def _shape_model(model_cfg, in_channels: int, image_size: Sequence[int]) -> torch.nn.Module:
    """The configured architecture (random weights, eval mode), built once per architecture and reused for every
    size probed; only SimpleViT depends on the size (its patch)."""
    multiview = model_cfg.multiview if (in_channels > 1 and model_cfg.spatial_dims == 2) else None
    size = tuple(image_size) if model_cfg.name == "simplevit" else None
    return _cached_model(model_cfg.name, model_cfg.spatial_dims, in_channels, multiview, model_cfg.width, size)


@functools.lru_cache(maxsize=8)
def _cached_model(name: str, dims: int, in_channels: int, multiview, width: float, size) -> torch.nn.Module:
    # built on the CPU: the "meta" device would allocate nothing but runs DenseNet's many small layers 5-10x
    # slower than a real forward pass of a small zero input
    with torch.random.fork_rng(devices=[]):
        model = build_model(name, in_channels=in_channels, spatial_dims=dims, multiview=multiview, image_size=size,
                            width=width)
    return model.eval()  # BatchNorm in training mode refuses one case of 1 x 1; inference is what matters


def model_size_problem(model_cfg, in_channels: int, image_size: Sequence[int], *,
                       need_cam: bool) -> str | None:
    """Why ``model_cfg`` cannot serve inputs of ``image_size``, or None when it can.

    The network must run (a forward pass of a zero input) and, with ``need_cam`` and no ``cam_layer`` set,
    some Grad-CAM layer must give a map of at least ``CAM_MIN_CELLS`` cells per axis.
    """
    size = tuple(int(s) for s in image_size)
    if len(size) != model_cfg.spatial_dims:
        return (f"a {model_cfg.spatial_dims}D model needs image.size with {model_cfg.spatial_dims} axes; "
                f"got {list(size)}")
    try:
        if model_cfg.name == "simplevit":
            vit_patch_size(size)
        model = _shape_model(model_cfg, in_channels, size)
        with torch.no_grad():
            model(torch.zeros((1, in_channels, *size)))
    except (RuntimeError, ValueError) as err:
        return f"the network cannot run at this size ({str(err).splitlines()[0][:160]})"
    if not need_cam or model_cfg.cam_layer:
        return None
    choice = choose_cam_layer(model, (in_channels, *size))
    minimum = CAM_MIN_CELLS[len(size)]
    if min(choice.cells) < minimum:
        grid = " × ".join(map(str, choice.cells))
        return (f"its finest Grad-CAM layer ({choice.layer}) gives a {grid} map, under the "
                f"{' × '.join([str(minimum)] * len(size))} minimum")
    return None


def smallest_side(model_cfg, in_channels: int, *, need_cam: bool) -> int | None:
    """The smallest side ``s`` such that a square (cube) input of side ``s`` works for ``model_cfg``
    (``model_size_problem`` is None): doubling from 8 until a side works, then bisection (a larger input never
    fails where a smaller one works for these networks); None when no side up to ``_LARGEST_SIDE`` (2D) or a
    quarter of it (3D, to keep the probe's volume small) works."""
    dims = model_cfg.spatial_dims
    largest = _LARGEST_SIDE if dims == 2 else _LARGEST_SIDE // 4

    def works(side: int) -> bool:
        return model_size_problem(model_cfg, in_channels, (side,) * dims, need_cam=need_cam) is None

    low = high = 8
    while not works(high):
        if high >= largest:
            return None
        low, high = high, min(2 * high, largest)
    if high == 8:
        return 8
    while high - low > 1:  # invariant: low fails, high works
        mid = (low + high) // 2
        low, high = (low, mid) if works(mid) else (mid, high)
    if model_cfg.name == "simplevit":  # the patch rule needs even sides: step up to the next that works
        while not works(high):
            high += 1
    return high


def check_input_sizes(cfg, *, source: str = "config") -> dict[str, CamLayer | None]:
    """Check every configured model against ``image.size`` before any work; return each model's Grad-CAM layer.

    Args:
        cfg: ``medlib.config.StudyConfig`` (design ``classifier``; other designs train no CNN and pass).
        source: the params file, for the message.

    Returns:
        model display name → its ``CamLayer`` (None when ``explain.enabled`` is false).

    Raises:
        ValueError: a model cannot run at ``image.size`` or (with Grad-CAM on) has no layer with a map of at
            least 7 x 7 (4 x 4 x 4 in 3D), naming the model, the size and the smallest size that works.
        KeyError: ``models[i].cam_layer`` is not a layer of the model.
    """
    if cfg.design != "classifier":
        return {}
    size = tuple(cfg.image.size)
    need_cam = cfg.explain.enabled
    layers: dict[str, CamLayer | None] = {}
    for i, m in enumerate(cfg.models):
        channels = len(m.inputs or cfg.cohort.image_columns)
        problem = model_size_problem(m, channels, size, need_cam=need_cam)
        if problem is not None:
            raise ValueError(_refusal(source, i, m, channels, size, problem, need_cam))
        if need_cam:
            model = _shape_model(m, channels, size)
            try:
                layers[m.display_name] = choose_cam_layer(model, (channels, *size), explicit=m.cam_layer)
            except KeyError as err:
                raise KeyError(f"{source}: models[{i}].cam_layer: {err.args[0]}") from None
        else:
            layers[m.display_name] = None
    return layers


def hirescam_models(cfg) -> list[str]:
    """The display names of the models whose maps are HiResCAM's (``CamLayer.method``), in config order; empty
    without Grad-CAM or CNNs. The model shapes behind ``check_input_sizes`` are cached, so after the check that
    runs before training this costs nothing."""
    return [name for name, layer in check_input_sizes(cfg).items() if layer is not None and layer.method == "hirescam"]


def _refusal(source: str, i: int, m, channels: int, size: tuple[int, ...], problem: str, need_cam: bool) -> str:
    side = smallest_side(m, channels, need_cam=need_cam) if len(size) == m.spatial_dims else None
    where = f"{source}: models[{i}] ({m.display_name}: {m.name}, {m.spatial_dims}D) at image.size {list(size)}"
    if side is None:
        largest = _LARGEST_SIDE if m.spatial_dims == 2 else _LARGEST_SIDE // 4
        return f"{where}: {problem}; no input of up to {largest} pixels per side works"
    fix = [side] * m.spatial_dims
    why = " with a Grad-CAM map" if need_cam and not m.cam_layer else ""
    return (f"{where}: {problem}. The smallest size that works{why} is {' x '.join(map(str, fix))}: set "
            f"image.size to at least {fix}, or choose another model")
