"""Weight files of the model registry: torchvision's ImageNet files and local state dicts (e.g. MedicalNet).

medlib never downloads weights. ``pretrained=True`` reads torchvision's ImageNet file from the local torch hub
cache (:func:`imagenet_weights_file` says where, :func:`require_imagenet_weights` says how to get it when it is
missing); ``weights_path`` reads a local file with :func:`load_weights`. A first-convolution kernel trained on
another number of input channels is adapted (:func:`adapt_conv_weight`). The files are read with
``torch.load(..., weights_only=True)``, so a weight file cannot run code.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import torch
from torch import nn

TORCHVISION_WEIGHTS = {  # registry name → (torchvision builder name, weights enum name)
    "resnet18": ("resnet18", "ResNet18_Weights"),
    "resnet50": ("resnet50", "ResNet50_Weights"),
    "densenet121": ("densenet121", "DenseNet121_Weights"),
}


def adapt_conv_weight(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Adapt a first-conv kernel ``[out, c_old, *k]`` to ``in_channels`` input channels.

    One channel gets the sum over the old channels (a grayscale image seen as R = G = B gives the same
    activations); other counts repeat the mean kernel scaled by ``c_old / in_channels`` (as timm's
    ``adapt_input_conv``), so the expected activation scale is kept.
    """
    c_old = weight.shape[1]
    if in_channels == c_old:
        return weight.clone()
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    mean = weight.mean(dim=1, keepdim=True)
    return mean.repeat(1, in_channels, *([1] * (weight.dim() - 2))) * (c_old / in_channels)


def imagenet_weights_file(name: str) -> Path:
    """Where torchvision keeps the ImageNet weights of a 2D registry model: ``<torch hub>/checkpoints/<file>``.

    Raises:
        KeyError: ``name`` has no ImageNet weights in torchvision.
    """
    import torchvision.models as tvm

    if name not in TORCHVISION_WEIGHTS:
        raise KeyError(f"No ImageNet weights for {name!r}. Models with ImageNet weights: "
                       f"{sorted(TORCHVISION_WEIGHTS)}")
    url = getattr(tvm, TORCHVISION_WEIGHTS[name][1]).IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def _fix_densenet_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Old DenseNet checkpoints name ``norm.1`` what torchvision now calls ``norm1`` (torchvision's own fix)."""
    pattern = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|"
                         r"running_var))$")
    out = {}
    for key, value in state.items():
        match = pattern.match(key)
        out[match.group(1) + match.group(2) if match else key] = value
    return out


def require_imagenet_weights(name: str) -> Path:
    """The local ImageNet weights file of a 2D registry model; it must exist (medlib never downloads).

    Raises:
        KeyError: ``name`` has no ImageNet weights in torchvision.
        FileNotFoundError: the file is not in the torch hub cache (names the file and ``models[].pretrained``).
    """
    path = imagenet_weights_file(name)
    if not path.is_file():
        builder = TORCHVISION_WEIGHTS[name][0]
        raise FileNotFoundError(
            f"ImageNet weights for {name!r} not found: expected {path.name} in {path.parent} (the torch hub "
            f"cache torchvision reads; set TORCH_HOME to move it). They are needed because the study sets "
            f"models[].pretrained: true. medlib never downloads weights. On a machine with internet run "
            f"`python -c \"import torchvision; torchvision.models.{builder}(weights='IMAGENET1K_V1')\"` and copy "
            f"{path.name} into {path.parent}, or set models[].pretrained: false.")
    return path


def load_imagenet_weights(model: nn.Module, name: str) -> None:
    """Load the local ImageNet weights of registry model ``name`` into the torchvision ``model``, in place.

    Raises:
        KeyError: ``name`` has no ImageNet weights in torchvision.
        FileNotFoundError: the file is not in the torch hub cache (see :func:`require_imagenet_weights`).
    """
    path = require_imagenet_weights(name)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if name == "densenet121":
        state = _fix_densenet_keys(state)
    model.load_state_dict(state)


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a local state dict (e.g. MedicalNet 3D weights) into ``model``, in place.

    Accepts a plain state dict or ``{"state_dict": ...}``; strips ``module.`` prefixes (DataParallel); a first
    conv kernel with another input-channel count is adapted (summed / averaged over channels). Keys the model
    lacks, keys the file lacks (e.g. the new classification head) and shape mismatches are reported in one
    ``UserWarning``.

    Raises:
        FileNotFoundError: ``path`` does not exist (names the file and ``models[].weights_path``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path} (models[].weights_path)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    own = model.state_dict()
    usable, mismatched = {}, []
    for key, value in state.items():
        target = own.get(key)
        if target is not None and value.shape != target.shape and value.dim() == target.dim() >= 3 \
                and value.shape[0] == target.shape[0] and value.shape[2:] == target.shape[2:]:
            value = adapt_conv_weight(value, target.shape[1])
        if target is not None and value.shape != target.shape:
            mismatched.append(f"{key} {tuple(value.shape)} vs {tuple(target.shape)}")
            continue
        usable[key] = value
    result = model.load_state_dict(usable, strict=False)
    if result.missing_keys or result.unexpected_keys or mismatched:
        warnings.warn(f"{path.name}: {len(usable) - len(result.unexpected_keys)} tensors loaded; "
                      f"missing from the file: {result.missing_keys}; not in the model: "
                      f"{result.unexpected_keys}; shape mismatches skipped: {mismatched}", UserWarning,
                      stacklevel=2)
    return model
