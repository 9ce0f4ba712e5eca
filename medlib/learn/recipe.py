"""The one training recipe every study uses: AdamW, linear warm-up then cosine decay per step, augmentation.

Why one recipe: a demo tuned per dataset says nothing about the user's dataset. The choices are the usual ones
for training CNNs and ViTs from scratch on small images, with no knob turned per study:

* **AdamW** (decoupled weight decay, Loshchilov & Hutter 2019), ``train.weight_decay`` 0.05; biases and
  normalisation weights are not decayed (decaying them only shrinks BatchNorm's scale). The learning rate
  (``train.lr``; ``default_lr`` when unset) is 1e-3 for 2D models and a third of that for 3D ones: Adam moves
  every weight by about the learning rate whatever its gradient's scale, so a unit's input changes in
  proportion to its fan-in, and a 3 x 3 x 3 kernel has three times the fan-in of a 3 x 3 one (the fan-in rule
  of Yang et al. 2022, "Tensor Programs V", arXiv:2203.03466: Adam's hidden-layer rate scales as 1/fan-in).
  Measured, 8 epochs: the glioma demo's 3D ResNet18 at 1e-3 stalled (test AUC 0.48 and 0.68 over two seeds,
  the loss jumping when the warm-up ended) and learned at a third (0.95, 0.86 and 0.97 over three seeds);
  AdrenalMNIST3D's 3D ResNet-18 stays above the published AUC at a third (see ``benchmarks/README.md``).
* **Warm-up and cosine decay per optimisation step** (``train.scheduler: warmup_cosine``): the learning rate
  rises linearly over ``train.warmup_epochs`` (from 1/100 of ``lr``), then follows a half cosine to zero at the
  last configured epoch, so BatchNorm statistics settle before large steps and the last epochs fine-tune.
* **Augmentation** on the training set (``train.augment``): left-right flips where the anatomy allows it
  (``train.flip``), a small affine (shift, in-plane rotation, zoom; ``medlib.data.tensors.augment_batch``), and
  an intensity jitter (``intensity_jitter``: contrast, brightness and noise per channel, so radiograph exposure,
  CT reconstruction kernels and MRI scanner scaling vary as between sites).
* **Early stopping on validation AUC** (``train.patience``), keeping the best epoch's weights (``fit``).
* **Batches of 16** (``train.batch_size``): a cohort of a few hundred cases then gets about ten optimisation
  steps per epoch, where 32 gave four on the glioma demo's 140 training volumes and its 3D ResNets did not learn
  in 8 epochs (test AUC 0.59 with 32, 0.81 with 16); small batches also generalise at least as well (Masters &
  Luschi 2018, "Revisiting small batch training for deep neural networks", arXiv:1804.07612, found 2 to 32 best).

The optimizer and scheduler are built here and stepped by ``medlib.learn.train``; checkpoints save their state,
so a resumed run follows the same schedule.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from medlib.data.tensors import augment_batch

__all__ = ["LR_2D", "augment", "build_optimizer", "build_scheduler", "default_lr", "intensity_jitter", "learning_rate",
           "lr_factor", "steps_per_epoch", "study_learning_rate"]

WARMUP_START = 0.01  # the warm-up starts at this fraction of the learning rate
LR_2D = 1e-3         # the peak learning rate of 2D models (default_lr)


def _decay_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Parameter groups: weights of convolutions and linear layers decay; biases and norm scales (1-D) do not."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    keep = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": keep, "weight_decay": 0.0}]


def default_lr(spatial_dims: int) -> float:
    """The recipe's peak learning rate: ``LR_2D`` for 2D models, a third of it for 3D ones (the kernels' fan-in
    ratio, 27 / 9; see the module docstring).

    >>> default_lr(2), round(default_lr(3), 6)
    (0.001, 0.000333)
    """
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3; got {spatial_dims!r}")
    return LR_2D if spatial_dims == 2 else LR_2D / 3


def learning_rate(cfg, spatial_dims: int) -> float:
    """The peak learning rate a run uses: ``train.lr`` when set, else ``default_lr(spatial_dims)``."""
    return cfg.lr if cfg.lr is not None else default_lr(spatial_dims)


def study_learning_rate(cfg) -> float:
    """The peak learning rate of a study's models (a ``StudyConfig``): ``learning_rate`` for the dimensions of its
    images (``image.size``), which the training tensors have. The run record, the methods paragraph and the
    deviations from the published design all read it here."""
    return learning_rate(cfg.train, len(cfg.image.size))


def build_optimizer(model: nn.Module, cfg, spatial_dims: int) -> torch.optim.Optimizer:
    """AdamW (or Adam, ``train.optimizer``) over ``model``'s parameters, with no decay on biases and norms, at
    ``learning_rate(cfg, spatial_dims)``."""
    lr = learning_rate(cfg, spatial_dims)
    fused = _fusable(model)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(_decay_groups(model, cfg.weight_decay), lr=lr, fused=fused)
    return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=cfg.weight_decay, fused=fused)


def _fusable(model: nn.Module) -> bool:
    """Whether torch's fused Adam kernel can step ``model``'s parameters: floating point, on the CPU or a CUDA
    device. It is the same update as the default per-tensor loop in one pass over the parameters; on one CPU
    thread a step of the 3D ResNet18 (33 M parameters) takes 38 ms instead of 156 ms, and a whole training step
    at 32 x 32 x 32 and batch 16 571 ms instead of 670 ms (``benchmarks/bench_optimizer.py``)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)


def steps_per_epoch(n_cases: int, batch_size: int) -> int:
    """Optimisation steps in one epoch of ``n_cases``: full batches plus a last one of at least two cases
    (``iterate_batches(min_batch=2)`` drops a last batch of one)."""
    full, rest = divmod(n_cases, batch_size)
    return max(1, full + (1 if rest >= 2 else 0))


def lr_factor(step: int, *, total: int, warmup: int) -> float:
    """The learning-rate multiplier at optimisation ``step`` (0-based): linear from ``WARMUP_START`` to 1 over
    ``warmup`` steps, then a half cosine from 1 to 0 at ``total`` steps.

    >>> [round(lr_factor(s, total=10, warmup=2), 3) for s in (0, 1, 2, 6, 10)]
    [0.01, 0.505, 1.0, 0.5, 0.0]
    """
    if step < warmup:
        return WARMUP_START + (1 - WARMUP_START) * step / warmup
    span = max(total - warmup, 1)
    return 0.5 * (1 + math.cos(math.pi * min(step - warmup, span) / span))


def build_scheduler(optimizer: torch.optim.Optimizer, cfg, *, steps: int):
    """The learning-rate schedule, stepped once per optimisation step, or None (``train.scheduler: none``).

    ``warmup_cosine``: ``lr_factor`` over ``cfg.epochs * steps`` steps with ``cfg.warmup_epochs * steps`` of
    warm-up; ``cosine``: the same without warm-up. ``steps`` is ``steps_per_epoch`` of this process's share.
    """
    if cfg.scheduler == "none":
        return None
    total = max(cfg.epochs * steps, 1)
    warmup = min(round(cfg.warmup_epochs * steps), total - 1) if cfg.scheduler == "warmup_cosine" \
        else 0
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total=total, warmup=warmup))


def intensity_jitter(x: torch.Tensor, *, generator: torch.Generator, contrast: float = 0.15,
                     brightness: float = 0.1, noise: float = 0.03) -> torch.Tensor:
    """Random contrast, brightness and Gaussian noise per case and channel, in units of the channel's SD.

    Each channel ``c`` of case ``i`` becomes ``m + a (x - m) + b s + e``, with ``m`` and ``s`` its mean and SD,
    ``a ~ U(1 - contrast, 1 + contrast)``, ``b ~ U(-brightness, brightness)`` and ``e ~ N(0, (noise s)^2)``
    per voxel, so the jitter means the same for z-scored and min-max-scaled images. Channels (views,
    sequences) vary independently, as sequences from different scanners do. The random numbers come from
    ``generator`` on the CPU (reproducible); the arithmetic runs on ``x``'s device. ``x`` is not modified.
    """
    n, c = x.shape[:2]
    u = torch.rand(n, c, 2, generator=generator).to(x.device)
    shape = (n, c) + (1,) * (x.dim() - 2)
    a = (1 + (u[..., 0] * 2 - 1) * contrast).reshape(shape)
    b = ((u[..., 1] * 2 - 1) * brightness).reshape(shape)
    flat = x.reshape(n, c, -1)
    mean = flat.mean(dim=2).reshape(shape)
    sd = flat.std(dim=2).clamp_min(1e-6).reshape(shape)
    e = torch.randn(x.shape, generator=generator).to(x.device) * noise
    return mean + a * (x - mean) + (b + e) * sd


def augment(x: torch.Tensor, *, generator: torch.Generator, spatial_dims: int, flip: bool = True) -> torch.Tensor:
    """The recipe's training augmentation: ``augment_batch`` (flip, small affine) then ``intensity_jitter``."""
    x = augment_batch(x, generator=generator, spatial_dims=spatial_dims, flip=flip)
    return intensity_jitter(x, generator=generator)
