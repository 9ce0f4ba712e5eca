"""The CNN behind the feature design's deep features, and a record of where its weights came from.

The published design pools a pretrained network's activations; which weights a run used changes what its deep
features mean, so the choice is a setting (``radiomics.deep_weights``) and the run keeps a
:class:`BackboneWeights` record (kind, source, SHA-256) that the report states:

* ``"trained"`` (:func:`trained_backbone`): the registry CNN trained from a seeded initialisation to predict the
  outcome from the ROI slices of the **training set only** (validation, test and external cases are never
  seen), then used as a frozen feature extractor. Deterministic for a seed: the initialisation, the batch
  order and the flips come from the run's seed, on the CPU.
* ``"imagenet"`` (:func:`imagenet_backbone`): torchvision's ImageNet file from the local torch cache, whose
  SHA-256 must start with the hash torchvision publishes in the file's name (the check ``torch.hub`` makes
  when it downloads); medlib never downloads. Inputs are normalised with ImageNet's channel means and SDs.
* ``"random"`` (:func:`random_backbone`): a seeded random initialisation, only when asked for: an ablation.

The training loop is written here, not taken from ``medlib.learn.train``, because that loop keeps the epoch
with the best *validation* AUC; a feature extractor whose features are later selected and tested must never
see validation data. torch is imported inside the functions, as in :mod:`medlib.radiomics.deep`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medlib.progress import progress_bar

if TYPE_CHECKING:
    from torch import nn

WEIGHT_KINDS = ("trained", "imagenet", "random")
_IMAGENET_MEAN, _IMAGENET_SD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
_HASH_IN_NAME = re.compile(r"-([a-f0-9]+)\.")  # torch.hub.HASH_REGEX: "resnet50-0676ba61.pth" -> "0676ba61"


@dataclass(frozen=True)
class BackboneWeights:
    """Where a deep-feature backbone's weights came from.

    Attributes:
        kind: ``"trained"``, ``"imagenet"`` or ``"random"`` (``radiomics.deep_weights``).
        model: the registry name (``radiomics.deep_model``).
        source: one sentence for the report: what the weights are and where they came from.
        sha256: the weight file's SHA-256 (imagenet), else the SHA-256 of the state dict's tensors in order.
        details: plain numbers behind the sentence (epochs, cases, slices, seed, file).
    """

    kind: str
    model: str
    source: str
    sha256: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ablation(self) -> bool:
        """Random weights are an ablation, never the design's deep features."""
        return self.kind == "random"

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the run summary."""
        return {"kind": self.kind, "model": self.model, "source": self.source, "sha256": self.sha256,
                "ablation": self.ablation, **self.details}


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def state_sha256(model: "nn.Module") -> str:
    """SHA-256 of a model's state dict: every tensor's name, shape and bytes, in the state dict's order."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()


def published_hash_prefix(path: Path) -> str:
    """The SHA-256 prefix torchvision publishes in a weight file's name ("resnet50-0676ba61.pth" -> "0676ba61").

    Raises:
        ValueError: the name carries no hash.
    """
    match = _HASH_IN_NAME.search(path.name)
    if match is None:
        raise ValueError(f"{path.name}: no published hash in the file name (expected '<name>-<hex>.pth')")
    return match.group(1)


def imagenet_backbone(name: str) -> tuple["nn.Module", BackboneWeights]:
    """torchvision's ImageNet CNN from the local torch cache, its file's SHA-256 checked, inputs normalised.

    Raises:
        KeyError: ``name`` has no ImageNet weights in torchvision (lists those that have).
        FileNotFoundError: the file is not in the torch cache; names the file, the folder and the setting.
        ValueError: the file's SHA-256 does not start with torchvision's published hash (a corrupt or other file).
    """
    import torchvision.models as tvm

    from medlib.learn.weights import TORCHVISION_WEIGHTS, imagenet_weights_file, load_imagenet_weights

    path = imagenet_weights_file(name)
    if not path.is_file():
        raise FileNotFoundError(
            f"radiomics.deep_weights: imagenet needs torchvision's ImageNet file for {name!r}: {path.name} was not "
            f"found in {path.parent} (the torch cache; set TORCH_HOME to move it). medlib never downloads: copy the "
            f"file there from a machine with internet, or set radiomics.deep_weights: trained (a backbone trained "
            f"on the training set's ROI slices) or random (an ablation).")
    digest, prefix = file_sha256(path), published_hash_prefix(path)
    if not digest.startswith(prefix):
        raise ValueError(f"radiomics.deep_weights: imagenet: {path} has SHA-256 {digest}, which does not start with "
                         f"torchvision's published hash {prefix!r} (a corrupt or different file); replace it")
    net = getattr(tvm, TORCHVISION_WEIGHTS[name][0])(weights=None)
    load_imagenet_weights(net, name)
    weights = BackboneWeights("imagenet", name, f"torchvision's ImageNet weights for {name} ({path.name}, read "
                              f"from the local torch cache; SHA-256 checked against torchvision's published hash "
                              f"{prefix})", digest, {"file": path.name, "published_prefix": prefix})
    return _ImageNetInput(net).eval(), weights


def random_backbone(name: str, *, seed: int) -> tuple["nn.Module", BackboneWeights]:
    """The registry CNN with a seeded random initialisation: an ablation of the deep features."""
    net = _seeded_model(name, seed)
    return net.eval(), BackboneWeights("random", name, f"random initialisation of {name} (seed {seed}), no "
                                       f"training: an ablation, not the design's deep features",
                                       state_sha256(net), {"seed": seed})


def trained_backbone(name: str, slices: np.ndarray, labels: np.ndarray, *, epochs: int, seed: int,
                     batch_size: int = 32, lr: float = 1e-3, cases: int | None = None
                     ) -> tuple["nn.Module", BackboneWeights]:
    """Train the registry CNN to predict the outcome from training-set ROI slices; return it frozen.

    Adam, class-weighted cross-entropy (the outcome is often rare), random horizontal flips, every draw from
    ``seed`` on the CPU, so two runs give the same weights and the same features.

    Args:
        name: registry name (2D).
        slices: (N, H, W) float32 slices of **training** cases only (the caller's responsibility; the feature
            pipeline passes the training set's slices).
        labels: (N,) 0/1 outcome of each slice's case.
        epochs: passes over the slices.
        seed: initialisation, batch order and flips.
        cases: number of training cases the slices come from (for the report).

    Raises:
        ValueError: shapes disagree, labels not 0/1, or one class only.
    """
    import torch
    import torch.nn.functional as F

    x, y = _training_tensors(slices, labels)
    counts = torch.bincount(y, minlength=2).double()
    class_weight = (len(y) / (2 * counts)).float()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = _seeded_model(name, seed)
        draws = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.Adam(net.parameters(), lr=lr)
        net.train()
        for _ in progress_bar(range(epochs), desc="training the deep-feature backbone", unit="epoch"):
            order = torch.randperm(len(y), generator=draws)
            for start in range(0, len(y), batch_size):
                idx = order[start:start + batch_size]
                if len(idx) < 2:  # batch norm needs two samples
                    continue
                flip = (torch.rand(len(idx), generator=draws) < 0.5)[:, None, None, None]
                batch = torch.where(flip, x[idx].flip(-1), x[idx])
                loss = F.cross_entropy(net(batch), y[idx], weight=class_weight)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    net.eval()
    n_cases = cases if cases is not None else "the"
    source = (f"{name} trained from a random initialisation (seed {seed}) to predict the outcome from "
              f"{len(y)} ROI slices of {n_cases} training-set cases only ({epochs} epoch{'s' if epochs != 1 else ''}, Adam, learning rate "
              f"{lr:g}, class-weighted cross-entropy); validation, test and external cases never seen")
    return net, BackboneWeights("trained", name, source, state_sha256(net),
                                {"epochs": epochs, "slices": len(y), "cases": cases, "seed": seed, "lr": lr})


def _training_tensors(slices: np.ndarray, labels: np.ndarray):
    import torch

    slices, labels = np.asarray(slices, dtype=np.float32), np.asarray(labels)
    if slices.ndim != 3 or len(slices) != len(labels):
        raise ValueError(f"slices must be (N, H, W) with one label each; got {slices.shape} and {labels.shape}")
    if not np.isin(labels, (0, 1)).all() or len(np.unique(labels)) < 2:
        raise ValueError(f"training the deep-feature backbone needs 0/1 labels of both classes; got "
                         f"{sorted(set(labels.tolist()))}")
    return torch.from_numpy(np.ascontiguousarray(slices))[:, None], torch.from_numpy(labels.astype(np.int64))


def _seeded_model(name: str, seed: int) -> "nn.Module":
    import torch

    from medlib.learn.models import build_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(name, in_channels=1, num_classes=2, spatial_dims=2, pretrained=False)


def _ImageNetInput(net: "nn.Module") -> "nn.Module":
    """``net`` behind ImageNet's per-channel normalisation (inputs in [0, 1], three channels)."""
    import torch
    from torch import nn

    class ImageNetInput(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.net = inner
            self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1))
            self.register_buffer("sd", torch.tensor(_IMAGENET_SD).view(1, 3, 1, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net((x - self.mean) / self.sd)

    return ImageNetInput(net)


def build_backbone(kind: str, name: str, *, seed: int, slices: np.ndarray | None = None,
                   labels: np.ndarray | None = None, epochs: int = 3, cases: int | None = None
                   ) -> tuple["nn.Module", BackboneWeights]:
    """The backbone ``radiomics.deep_weights`` asks for (``trained`` needs the training slices and labels).

    Raises:
        ValueError: an unknown kind, or ``trained`` without training slices.
    """
    if kind == "imagenet":
        return imagenet_backbone(name)
    if kind == "random":
        return random_backbone(name, seed=seed)
    if kind != "trained":
        raise ValueError(f"radiomics.deep_weights must be one of {list(WEIGHT_KINDS)}; got {kind!r}")
    if slices is None or labels is None:
        raise ValueError("deep_weights 'trained' needs the training set's slices and labels")
    return trained_backbone(name, slices, labels, epochs=epochs, seed=seed, cases=cases)
