"""Classification losses: focal loss (Lin et al. 2017) and cross-entropy + focal (the ONFH study)."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def class_weights_from_counts(class_counts: Sequence[int]) -> torch.Tensor:
    """Inverse-frequency class weights ``n / (k * n_c)`` (scikit-learn's ``class_weight="balanced"``).

    >>> class_weights_from_counts([30, 10]).tolist()
    [0.6666666865348206, 2.0]

    Raises:
        ValueError: a class with no cases, or fewer than two classes.
    """
    counts = torch.as_tensor(list(class_counts), dtype=torch.float32)
    if counts.dim() != 1 or len(counts) < 2 or (counts <= 0).any():
        raise ValueError(f"class weights need a positive count for every class; got counts {list(class_counts)}")
    return counts.sum() / (len(counts) * counts)


class FocalLoss(nn.Module):
    """Focal loss on multi-class logits (Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017).

    ``FL = -alpha_t * (1 - p_t) ** gamma * log(p_t)`` with ``p_t`` the softmax probability of the true class.
    ``alpha`` is the weight of the positive class (class 1) and ``1 - alpha`` that of class 0, as in the
    paper's binary form; it needs two classes. ``gamma = 0`` and ``alpha = None`` give cross-entropy.

    Args:
        gamma: focusing parameter (2 in the paper).
        alpha: positive-class weight in (0, 1), or None for no alpha balancing.
        weight: optional per-class weights; the mean is then weighted as in ``nn.CrossEntropyLoss``
            (``sum(w_i * l_i) / sum(w_i)``).

    Raises:
        ValueError: gamma < 0 or alpha outside (0, 1); alpha with more than two classes (at call time).
    """

    def __init__(self, gamma: float = 2.0, alpha: float | None = None, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f"focal gamma must be >= 0; got {gamma}")
        if alpha is not None and not 0 < alpha < 1:
            raise ValueError(f"focal alpha (positive-class weight) must be in (0, 1); got {alpha}")
        self.gamma = float(gamma)
        self.alpha = alpha
        self.register_buffer("weight", None if weight is None else torch.as_tensor(weight, dtype=torch.float32))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.dim() != 2 or target.shape != logits.shape[:1]:
            raise ValueError(f"expected logits [N, C] and target [N]; got {tuple(logits.shape)} and "
                             f"{tuple(target.shape)}")
        log_p = F.log_softmax(logits.float(), dim=1).gather(1, target[:, None]).squeeze(1)
        loss = -((1 - log_p.exp()) ** self.gamma) * log_p
        w = torch.ones_like(loss)
        if self.alpha is not None:
            if logits.shape[1] != 2:
                raise ValueError(f"focal alpha is the positive-class weight of a binary problem; got "
                                 f"{logits.shape[1]} classes")
            w = torch.where(target == 1, self.alpha, 1 - self.alpha).to(loss.dtype)
        loss = loss * w
        if self.weight is not None:
            cw = self.weight.to(loss.device)[target]
            return (loss * cw).sum() / cw.sum()
        return loss.mean()


class CEFocalLoss(nn.Module):
    """Cross-entropy plus ``focal_weight`` times focal loss (the ONFH study's loss against class imbalance)."""

    def __init__(self, focal: FocalLoss, *, focal_weight: float = 1.0, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.ce = nn.CrossEntropyLoss(weight=weight)
        self.focal = focal
        self.focal_weight = float(focal_weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.ce(logits.float(), target) + self.focal_weight * self.focal(logits, target)


def build_loss(train_cfg, class_counts: Sequence[int]) -> nn.Module:
    """The loss ``train.loss`` names: ``"ce"``, ``"focal"`` or ``"ce+focal"``.

    Args:
        train_cfg: ``medlib.config.TrainConfig`` (loss, focal_gamma, focal_alpha, focal_weight, class_weights).
        class_counts: training cases per class, class 0 first; used for ``class_weights: true``
            (inverse-frequency weights on both the cross-entropy and the focal term).

    Raises:
        ValueError: unknown loss name, or class weights asked for with a class that has no training cases.
    """
    weight = class_weights_from_counts(class_counts) if train_cfg.class_weights else None
    name = train_cfg.loss
    if name == "ce":
        return nn.CrossEntropyLoss(weight=weight)
    if name not in ("focal", "ce+focal"):
        raise ValueError(f"Unknown loss {name!r}. Available: ['ce', 'ce+focal', 'focal']")
    focal = FocalLoss(train_cfg.focal_gamma, train_cfg.focal_alpha, weight=weight)
    if name == "focal":
        return focal
    return CEFocalLoss(focal, focal_weight=train_cfg.focal_weight, weight=weight)
