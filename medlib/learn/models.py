"""Model registry: 2D and 3D classifiers that output logits ``[N, num_classes]``.

Names per spatial dimension (``available_models()``):

* 2D: ``resnet18``, ``resnet50``, ``densenet121`` (torchvision), ``simplevit`` (vit_pytorch ``SimpleViT``).
* 3D: ``resnet10``, ``resnet18`` (MONAI's MedicalNet-style ResNets), ``vgg16`` (a compact 3D VGG16, below).

Project convention: **the image columns of a case are stacked as channels**. A single-view 2D model has
``in_channels=1``; the glioma 3D model has ``in_channels=3`` (T1, T2, T1ce as channels of one volume); a 2D
model with more than one input column is a ``MultiViewNet`` (one grayscale view per channel, e.g. the ONFH AP
and frog-leg views), with one backbone per view (``"separate"``) or one backbone shared by the views.

Weights are never downloaded: ``pretrained=True`` reads torchvision's ImageNet file from the local torch hub
cache and ``weights_path`` reads a local file (e.g. MedicalNet 3D weights); both are handled by
``medlib.learn.weights``, whose public functions are also importable from here.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Callable, Literal, Sequence

import torch
from torch import nn

from medlib.learn.weights import (TORCHVISION_WEIGHTS, adapt_conv_weight, imagenet_weights_file,
                                  load_imagenet_weights, load_weights, require_imagenet_weights)

__all__ = ["CAM_MIN_CELLS", "MultiView", "MultiViewNet", "NOT_CONVOLUTIONAL", "VGG3D", "VGG16_WIDTHS", "REGISTRY",
           "WIDTH_MODELS", "ZeroPadShortcut", "available_models",
           "build_model", "build_from_config", "cam_layer_candidates", "check_width", "default_cam_layer", "get_layer",
           "layer_output_sizes", "vit_patch_size", "vit_reshape_transform",
           # weight files (medlib.learn.weights), importable from here as before
           "imagenet_weights_file", "require_imagenet_weights", "load_weights"]

MultiView = Literal["separate", "shared"]

CAM_MIN_CELLS = {2: 7, 3: 4}
"""The smallest Grad-CAM map, cells per side: 7 x 7 in 2D (ResNet's last block at 224 px, the usual case) and
4 x 4 x 4 in 3D; a coarser map cannot say where in the image the evidence lies (issue 16)."""


# ---------------------------------------------------------------- helpers for torchvision backbones
def _replace_conv_in(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """A copy of ``conv`` taking ``in_channels`` inputs, its kernel adapted from the original."""
    new = nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                    dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None)
    with torch.no_grad():
        new.weight.copy_(adapt_conv_weight(conv.weight, in_channels))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


def _torchvision_2d(name: str, in_channels: int, num_classes: int, pretrained: bool) -> nn.Module:
    import torchvision.models as tvm

    model = getattr(tvm, TORCHVISION_WEIGHTS[name][0])(weights=None)
    if pretrained:
        load_imagenet_weights(model, name)
    if name.startswith("resnet"):
        model.conv1 = _replace_conv_in(model.conv1, in_channels)
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    else:
        model.features.conv0 = _replace_conv_in(model.features.conv0, in_channels)
        model.classifier = nn.Linear(model.classifier.in_features, num_classes)
    return model


def vit_patch_size(image_size: Sequence[int]) -> int:
    """The SimpleViT patch size for an image: the largest of 16, 8, 4, 2 dividing H and W with at least
    ``CAM_MIN_CELLS[2]`` (7) patches per side (224 → 16, as ViT-B/16; 64 → 8; 32 → 4; 28 → 4).

    Why 7: the token grid is the map Grad-CAM explains (every transformer block keeps it, so no earlier layer
    is finer); a 4 x 4 grid of a 64-pixel image says little about where (issue 16), so the patch shrinks until
    the grid is at least 7 x 7, as for the CNNs' target layers.

    Raises:
        ValueError: no such patch size (e.g. an odd or tiny image).
    """
    h, w = image_size
    for p in (16, 8, 4, 2):
        if h % p == 0 and w % p == 0 and h // p >= CAM_MIN_CELLS[2] and w // p >= CAM_MIN_CELLS[2]:
            return p
    raise ValueError(f"simplevit needs an image size divisible by 2 with at least 14 pixels per side; "
                     f"got image_size {tuple(image_size)} (set image.size to e.g. [64, 64])")


def _simplevit(in_channels: int, num_classes: int, image_size: Sequence[int] | None) -> nn.Module:
    from vit_pytorch import SimpleViT

    if image_size is None or len(image_size) != 2:
        raise ValueError(f"simplevit needs image_size=(H, W) of the 2D input; got {image_size!r}")
    patch = vit_patch_size(image_size)
    return SimpleViT(image_size=tuple(image_size), patch_size=patch, num_classes=num_classes, dim=256, depth=6,
                     heads=8, mlp_dim=512, channels=in_channels, dim_head=32)


# ---------------------------------------------------------------- 3D models
def _monai_resnet(depth: int, in_channels: int, num_classes: int, width: float = 1.0) -> nn.Module:
    """MedicalNet's ResNet layout (7^3 stride-2 first conv, max-pool) through MONAI.

    Shortcut type and downsample bias follow MONAI's ``get_medicalnet_pretrained_resnet_args`` so that the
    MedicalNet weight files load: ResNet10 uses shortcut B (1x1x1 conv + BN) without bias, ResNet18 shortcut A
    (parameter-free) with bias. ``width`` is MONAI's ``widen_factor`` (0.5: 32 to 256 channels instead of 64 to
    512); MedicalNet's files fit width 1.0 only.
    """
    from monai.networks.nets import resnet
    from monai.networks.nets.resnet import get_medicalnet_pretrained_resnet_args

    bias_downsample, shortcut = get_medicalnet_pretrained_resnet_args(depth)
    builder = {10: resnet.resnet10, 18: resnet.resnet18}[depth]
    model = builder(spatial_dims=3, n_input_channels=in_channels, num_classes=num_classes, conv1_t_size=7,
                    conv1_t_stride=2, shortcut_type=shortcut, bias_downsample=bias_downsample, widen_factor=width)
    for block in model.modules():  # shortcut A: MONAI's function detaches it; the same shortcut, differentiable
        if isinstance(getattr(block, "downsample", None), functools.partial):
            block.downsample = ZeroPadShortcut(block.downsample.keywords["planes"], block.downsample.keywords["stride"])
    return model


class ZeroPadShortcut(nn.Module):
    """He et al.'s parameter-free shortcut "A" (strided identity, new channels zero), through which the gradient
    flows.

    Hand-written because MONAI's ``ResNet._downsample_basic_block`` (MedicalNet's code) concatenates
    ``out.data``: the shortcut is cut from the graph, so at every downsampling block the gradient reaches the
    earlier layers through the convolutions only (at initialisation the first convolution of a 3D ResNet18 gets
    less than half the gradient), and the ResNet18-3D of the glioma demo did not learn in its budget. The
    forward values are MONAI's (a 1-voxel average pool with stride ``stride`` is strided sampling) and there
    are no parameters, so MedicalNet's weight files still load.
    """

    def __init__(self, planes: int, stride: int) -> None:
        super().__init__()
        self.planes, self.stride = planes, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stride
        out = x[(slice(None), slice(None)) + (slice(None, None, s),) * (x.dim() - 2)]
        pad = out.new_zeros(out.size(0), self.planes - out.size(1), *out.shape[2:])
        return torch.cat([out, pad], dim=1)


VGG16_WIDTHS = ((32, 32), (64, 64), (128, 128, 128), (256, 256, 256), (256, 256, 256))


class VGG3D(nn.Module):
    """A compact 3D VGG16: 13 convolutions (3x3x3 + BatchNorm + ReLU) in 5 blocks, global average pooling and a
    linear head.

    Hand-written because neither MONAI nor torchvision has a 3D VGG. Compared with the 2D VGG16 the widths are
    halved (32 → 256 instead of 64 → 512; a full-width 3D VGG16 has about 10x the parameters and does not fit a
    few hundred volumes; ``width`` scales them further, e.g. 0.5 for 16 → 128 and a quarter of the compute on a
    CPU), BatchNorm follows every convolution, blocks 1-4 end in a 2x max-pool and the fifth
    block's max-pool and the three fully connected layers are replaced by global average pooling, so any volume
    of at least 16 voxels per side works. ``features.4`` (the last conv block) is the Grad-CAM layer.
    """

    def __init__(self, in_channels: int, num_classes: int, widths: Sequence[Sequence[int]] = VGG16_WIDTHS,
                 dropout: float = 0.5, width: float = 1.0) -> None:
        super().__init__()
        if not width > 0:
            raise ValueError(f"width must be > 0; got {width}")
        widths = [[max(1, round(w * width)) for w in block] for block in widths]
        blocks, channels = [], in_channels
        for i, block in enumerate(widths):
            layers: list[nn.Module] = []
            for width in block:
                layers += [nn.Conv3d(channels, width, 3, padding=1, bias=False), nn.BatchNorm3d(width),
                           nn.ReLU(inplace=True)]
                channels = width
            if i < len(widths) - 1:
                layers.append(nn.MaxPool3d(2, ceil_mode=True))
            blocks.append(nn.Sequential(*layers))
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)))


# ---------------------------------------------------------------- multi-view
def _strip_head(model: nn.Module) -> int:
    """Replace a registry model's classification head by ``Identity``; return the pooled feature size."""
    for attr in ("fc", "classifier", "linear_head"):
        head = getattr(model, attr, None)
        if isinstance(head, nn.Linear):
            setattr(model, attr, nn.Identity())
            return head.in_features
    if isinstance(model, VGG3D):
        features = model.head[-1].in_features
        model.head = nn.Flatten()
        return features
    raise TypeError(f"cannot find the classification head of {type(model).__name__}")


class MultiViewNet(nn.Module):
    """Several 2D views of one case: pooled backbone features of each view, concatenated, then a linear head.

    Input ``x`` is ``[N, V, H, W]``: each channel is one grayscale view (the project's channel-stacking
    convention). ``backbones`` holds one backbone per view (``"separate"``) or one applied to every view
    (``"shared"``); each backbone takes one channel and returns pooled features.

    Args:
        backbones: the feature extractors, their heads already removed (length V or 1).
        feature_dim: features per view.
        views: number of views V.
        num_classes: output logits.
    """

    def __init__(self, backbones: Sequence[nn.Module], *, feature_dim: int, views: int, num_classes: int) -> None:
        super().__init__()
        if len(backbones) not in (1, views):
            raise ValueError(f"expected 1 shared backbone or one per view ({views}); got {len(backbones)}")
        self.views = views
        self.backbones = nn.ModuleList(backbones)
        self.head = nn.Linear(feature_dim * views, num_classes)

    @property
    def shared(self) -> bool:
        return len(self.backbones) == 1 and self.views > 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.views:
            raise ValueError(f"MultiViewNet expects x of shape [N, {self.views}, H, W]; got {tuple(x.shape)}")
        n = x.shape[0]
        if self.shared:  # one pass over all views: [N*V, 1, H, W]
            feats = self.backbones[0](x.reshape(n * self.views, 1, *x.shape[2:]))
            return self.head(feats.reshape(n, -1))
        feats = [net(x[:, v:v + 1]) for v, net in enumerate(self.backbones)]
        return self.head(torch.cat(feats, dim=1))


# ---------------------------------------------------------------- registry
Builder = Callable[..., nn.Module]


def _build_2d(name: str) -> Builder:
    def build(in_channels: int, num_classes: int, pretrained: bool, image_size) -> nn.Module:
        if name == "simplevit":
            if pretrained:
                raise ValueError("simplevit has no ImageNet weights in medlib; set models[].pretrained: false")
            return _simplevit(in_channels, num_classes, image_size)
        return _torchvision_2d(name, in_channels, num_classes, pretrained)
    return build


def _build_3d(name: str) -> Builder:
    def build(in_channels: int, num_classes: int, pretrained: bool, image_size, width: float = 1.0) -> nn.Module:
        if pretrained:
            raise ValueError(f"3D {name} has no ImageNet weights; use models[].weights_path for a local "
                             f"MedicalNet file and pretrained: false")
        if name == "vgg16":
            return VGG3D(in_channels, num_classes, width=width)
        return _monai_resnet(int(name.removeprefix("resnet")), in_channels, num_classes, width)
    return build


NOT_CONVOLUTIONAL = frozenset({"simplevit"})  # registry names of the models that are not CNNs (a vision transformer)
WIDTH_MODELS = {(3, "vgg16"), (3, "resnet10"), (3, "resnet18")}  # (spatial_dims, name) of the models with a
#                                                                  channel-width multiplier

REGISTRY: dict[int, dict[str, Builder]] = {
    2: {n: _build_2d(n) for n in ("resnet18", "resnet50", "densenet121", "simplevit")},
    3: {n: _build_3d(n) for n in ("resnet10", "resnet18", "vgg16")},
}


def check_width(name: str, spatial_dims: int, width: float) -> None:
    """Check a channel-width multiplier: positive, and other than 1.0 only for models that have one.

    Raises:
        ValueError: saying which models scale their widths.
    """
    if not width > 0:
        raise ValueError(f"width must be > 0; got {width}")
    if width != 1.0 and (spatial_dims, name) not in WIDTH_MODELS:
        raise ValueError(f"width {width} is not supported by the {spatial_dims}D model {name!r}: only "
                         f"{[f'{d}D {n}' for d, n in sorted(WIDTH_MODELS)]} scale their widths; use width 1.0")


def available_models(spatial_dims: int | None = None) -> list[str]:
    """Registry names for ``spatial_dims`` (2 or 3), or ``"<name> (<d>D)"`` for every model when None.

    >>> available_models(3)
    ['resnet10', 'resnet18', 'vgg16']
    """
    if spatial_dims is None:
        return [f"{n} ({d}D)" for d in sorted(REGISTRY) for n in sorted(REGISTRY[d])]
    if spatial_dims not in REGISTRY:
        raise ValueError(f"spatial_dims must be one of {sorted(REGISTRY)}; got {spatial_dims!r}")
    return sorted(REGISTRY[spatial_dims])


def build_model(name: str, *, in_channels: int, num_classes: int = 2, spatial_dims: int = 2,
                pretrained: bool = False, weights_path: str | Path | None = None,
                multiview: MultiView | None = "separate",
                image_size: Sequence[int] | None = None, width: float = 1.0) -> nn.Module:
    """Build a registry model that maps ``[N, in_channels, *spatial]`` to logits ``[N, num_classes]``.

    A 2D model with ``in_channels > 1`` and ``multiview`` set is a ``MultiViewNet`` over ``in_channels``
    grayscale views; ``multiview=None`` gives one backbone reading all channels instead. 3D models always read
    the channels together (sequences of one volume).

    Args:
        name: a registry name (``available_models(spatial_dims)``).
        in_channels: image columns stacked as channels.
        num_classes: output logits.
        spatial_dims: 2 or 3.
        pretrained: torchvision ImageNet weights from the local torch hub cache (2D CNNs only).
        weights_path: a local state-dict file loaded after building (see ``load_weights``).
        multiview: ``"separate"`` (one backbone per view), ``"shared"``, or None (no multi-view).
        image_size: (H, W) of the input; required by ``simplevit``.
        width: channel-width multiplier; the 3D ``vgg16``, ``resnet10`` and ``resnet18`` have one (others: 1.0).

    Raises:
        KeyError: unknown name, listing the available ones.
        FileNotFoundError: missing ImageNet or ``weights_path`` file.
        ValueError: bad ``in_channels``, ``num_classes`` or ``multiview``.
    """
    if spatial_dims not in REGISTRY:
        raise ValueError(f"spatial_dims must be one of {sorted(REGISTRY)}; got {spatial_dims!r}")
    if name not in REGISTRY[spatial_dims]:
        raise KeyError(f"Unknown {spatial_dims}D model {name!r}. Available {spatial_dims}D models: "
                       f"{available_models(spatial_dims)}; all models: {available_models()}")
    if in_channels < 1 or num_classes < 2:
        raise ValueError(f"need in_channels >= 1 and num_classes >= 2; got {in_channels}, {num_classes}")
    if multiview not in ("separate", "shared", None):
        raise ValueError(f"multiview must be 'separate', 'shared' or None; got {multiview!r}")
    check_width(name, spatial_dims, width)
    builder = REGISTRY[spatial_dims][name]
    if (spatial_dims, name) in WIDTH_MODELS:
        builder = functools.partial(builder, width=width)
    if spatial_dims == 2 and in_channels > 1 and multiview is not None:
        n_backbones = in_channels if multiview == "separate" else 1
        backbones = [builder(1, num_classes, pretrained, image_size) for _ in range(n_backbones)]
        feature_dim = [_strip_head(b) for b in backbones][0]
        model: nn.Module = MultiViewNet(backbones, feature_dim=feature_dim, views=in_channels,
                                        num_classes=num_classes)
    else:
        model = builder(in_channels, num_classes, pretrained, image_size)
    if weights_path is not None:
        load_weights(model, weights_path)
    return model


def build_from_config(model_cfg, *, in_channels: int, image_size: Sequence[int]) -> nn.Module:
    """Build the model a ``ModelConfig`` describes.

    The multi-view model is used when the model reads more than one image column (``in_channels > 1``) and
    ``spatial_dims == 2``; otherwise one backbone reads the stacked channels (3D sequences).

    Args:
        model_cfg: ``medlib.config.ModelConfig``.
        in_channels: number of image columns the model reads.
        image_size: ``image.size`` of the study (needed by simplevit).
    """
    multiview = model_cfg.multiview if (in_channels > 1 and model_cfg.spatial_dims == 2) else None
    return build_model(model_cfg.name, in_channels=in_channels, spatial_dims=model_cfg.spatial_dims,
                       pretrained=model_cfg.pretrained, weights_path=model_cfg.weights_path,
                       multiview=multiview, image_size=tuple(image_size), width=model_cfg.width)


# ---------------------------------------------------------------- layers for Grad-CAM and features
def cam_layer_candidates(model: nn.Module) -> list[str]:
    """Grad-CAM layers of a registry model, deepest first (for a ``MultiViewNet``, of the first view).

    ``layer4`` … ``layer1`` for ResNets (torchvision and MONAI), ``features`` (after the last dense block) then
    ``features.denseblock3`` … ``denseblock1`` for DenseNet, ``features.4`` … ``features.0`` for ``VGG3D``,
    ``transformer`` for SimpleViT (every block keeps the token grid, so there is no finer layer).

    Raises:
        TypeError: a model this function does not know.
    """
    from vit_pytorch import SimpleViT

    if isinstance(model, MultiViewNet):
        return [f"backbones.0.{name}" for name in cam_layer_candidates(model.backbones[0])]
    if isinstance(model, VGG3D):
        return [f"features.{i}" for i in reversed(range(len(model.features)))]
    if isinstance(model, SimpleViT):
        return ["transformer"]
    if hasattr(model, "layer4"):
        return ["layer4", "layer3", "layer2", "layer1"]
    if hasattr(model, "features") and hasattr(model.features, "denseblock1"):
        return ["features", "features.denseblock3", "features.denseblock2", "features.denseblock1"]
    raise TypeError(f"no default Grad-CAM layer for {type(model).__name__}; set models[].cam_layer")


def cam_map_sizes(model: nn.Module, names: Sequence[str], input_shape: Sequence[int]) -> dict[str, tuple]:
    """The Grad-CAM map size (cells per spatial axis) of each named layer for one input of ``input_shape`` =
    ``(C, *spatial)``: the layer's spatial output, or SimpleViT's token grid (H / patch, W / patch)."""
    from vit_pytorch import SimpleViT

    owner = model.backbones[0] if isinstance(model, MultiViewNet) else model
    if isinstance(owner, SimpleViT):
        patch = vit_patch_size(tuple(input_shape)[1:])
        return {name: tuple(s // patch for s in tuple(input_shape)[1:]) for name in names}
    if isinstance(model, MultiViewNet):
        input_shape = (model.views, *tuple(input_shape)[1:])
    return layer_output_sizes(model, names, input_shape)


def default_cam_layer(model: nn.Module, input_shape: Sequence[int] | None = None) -> str:
    """The default Grad-CAM layer of a registry model: the deepest of ``cam_layer_candidates`` whose map has at
    least ``CAM_MIN_CELLS`` cells along every axis (7 in 2D, 4 in 3D) for one input of ``input_shape``.

    ``layer4`` of a ResNet at 224 px (7 x 7); ``layer2`` at 64 px (8 x 8: ``layer4`` would be 2 x 2);
    ``layer2`` of a 3D ResNet at 32^3 (4^3). Without ``input_shape`` the deepest candidate. When no layer
    reaches the minimum, the finest one (``medlib.learn.sizes.check_input_sizes`` refuses such sizes before
    any work). SimpleViT's layer outputs tokens ``[N, h*w, dim]``: Grad-CAM needs a reshape transform to a
    ``[N, dim, h, w]`` map, ``vit_reshape_transform``. The choice is made by one forward pass of a zero input.

    Raises:
        TypeError: a model this function does not know.
    """
    candidates = cam_layer_candidates(model)
    if input_shape is None or len(candidates) == 1:
        return candidates[0]
    dims = len(tuple(input_shape)) - 1
    sizes = cam_map_sizes(model, candidates, input_shape)
    return next((name for name in candidates if min(sizes[name]) >= CAM_MIN_CELLS.get(dims, 1)), candidates[-1])


def layer_output_sizes(model: nn.Module, names: Sequence[str], input_shape: Sequence[int]) -> dict[str, tuple]:
    """Spatial output size of each named layer for one zero input of ``input_shape`` = ``(C, *spatial)``
    (the model's mode and weights are left as they were)."""
    sizes: dict[str, tuple] = {}
    hooks = [get_layer(model, name).register_forward_hook(
        lambda _m, _i, out, name=name: sizes.__setitem__(name, tuple(out.shape[2:]))) for name in names]
    was_training = model.training
    try:
        param = next(model.parameters())
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), dtype=param.dtype, device=param.device))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return sizes


def vit_reshape_transform(tokens: torch.Tensor, grid: tuple[int, int] | None = None) -> torch.Tensor:
    """Turn SimpleViT tokens ``[N, h*w, dim]`` into a map ``[N, dim, h, w]`` for Grad-CAM.

    Args:
        tokens: the ``transformer`` layer output (SimpleViT has no class token).
        grid: (h, w) patches; None = a square grid (use ``functools.partial`` for non-square images).

    Raises:
        ValueError: the token count is not ``h * w``.
    """
    n, count, dim = tokens.shape
    if grid is None:
        side = math.isqrt(count)
        grid = (side, side)
    if grid[0] * grid[1] != count:
        raise ValueError(f"{count} tokens do not form a {grid[0]}x{grid[1]} grid; pass grid=(H/p, W/p)")
    return tokens.reshape(n, grid[0], grid[1], dim).permute(0, 3, 1, 2)


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule with dotted ``name`` (e.g. ``"layer4"``, ``"backbones.0.layer4"``).

    Raises:
        KeyError: unknown name, listing the layer names of the first two levels.
    """
    modules = dict(model.named_modules())
    if name not in modules or not name:
        valid = [n for n in modules if n and n.count(".") <= 1]
        raise KeyError(f"Unknown layer {name!r} in {type(model).__name__}. Layers (two levels shown): {valid}")
    return modules[name]
