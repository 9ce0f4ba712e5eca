"""Focal loss and CE + focal against hand computations."""

from __future__ import annotations

import dataclasses
import types
import math

import pytest
import torch
import torch.nn.functional as F

from medlib.config import TrainConfig
from medlib.learn.losses import CEFocalLoss, FocalLoss, build_loss, class_weights_from_counts

LOGITS = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
TARGET = torch.tensor([0, 0, 1])


def _softmax_true(logits, target):
    return [math.exp(row[t]) / sum(math.exp(v) for v in row) for row, t in zip(logits.tolist(), target.tolist())]


def _hand_focal(gamma, alpha=None, weight=None):
    terms, ws = [], []
    for p, t in zip(_softmax_true(LOGITS, TARGET), TARGET.tolist()):
        a = 1.0 if alpha is None else (alpha if t == 1 else 1 - alpha)
        terms.append(-a * (1 - p) ** gamma * math.log(p))
        ws.append(1.0 if weight is None else weight[t])
    return sum(w * x for w, x in zip(ws, terms)) / sum(ws)


@pytest.mark.parametrize("gamma, alpha", [(0.0, None), (2.0, None), (2.0, 0.25), (1.5, 0.75)])
def test_focal_matches_hand_computation(gamma, alpha):
    assert FocalLoss(gamma, alpha)(LOGITS, TARGET).item() == pytest.approx(_hand_focal(gamma, alpha), rel=1e-6)


def test_focal_known_value():
    # p_t of the first case: e^2 / (e^2 + 1) = 0.880797; (1 - p)^2 * -log p = 0.0142094 * 0.126928
    loss = FocalLoss(2.0)(LOGITS[:1], TARGET[:1]).item()
    assert loss == pytest.approx(0.00180357, abs=1e-7)


def test_focal_gamma_zero_is_cross_entropy():
    assert FocalLoss(0.0)(LOGITS, TARGET).item() == pytest.approx(F.cross_entropy(LOGITS, TARGET).item(), rel=1e-6)


def test_focal_weighted_mean_matches_cross_entropy_convention():
    w = torch.tensor([0.5, 2.0])
    assert FocalLoss(0.0, weight=w)(LOGITS, TARGET).item() == pytest.approx(
        F.cross_entropy(LOGITS, TARGET, weight=w).item(), rel=1e-6)
    assert FocalLoss(2.0, weight=w)(LOGITS, TARGET).item() == pytest.approx(
        _hand_focal(2.0, weight=[0.5, 2.0]), rel=1e-6)


def test_focal_down_weights_easy_cases():
    easy, hard = torch.tensor([[4.0, 0.0]]), torch.tensor([[0.0, 0.5]])
    y = torch.tensor([0])
    ratio_focal = FocalLoss(2.0)(easy, y) / FocalLoss(2.0)(hard, y)
    ratio_ce = F.cross_entropy(easy, y) / F.cross_entropy(hard, y)
    assert ratio_focal < ratio_ce / 10


@pytest.mark.parametrize("kwargs, match", [(dict(gamma=-1.0), "gamma must be >= 0"),
                                           (dict(alpha=1.5), r"must be in \(0, 1\); got 1.5")])
def test_focal_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FocalLoss(**kwargs)


def test_focal_alpha_needs_two_classes():
    with pytest.raises(ValueError, match="got 3 classes"):
        FocalLoss(2.0, 0.25)(torch.zeros(2, 3), torch.tensor([0, 2]))


def test_focal_shape_error():
    with pytest.raises(ValueError, match=r"expected logits \[N, C\] and target \[N\]"):
        FocalLoss()(torch.zeros(2, 2), torch.tensor([0, 1, 1]))


def test_class_weights_balanced():
    torch.testing.assert_close(class_weights_from_counts([30, 10]), torch.tensor([40 / 60, 40 / 20]))
    with pytest.raises(ValueError, match=r"got counts \[5, 0\]"):
        class_weights_from_counts([5, 0])


def test_build_loss_variants():
    ce = build_loss(TrainConfig(loss="ce"), [3, 1])
    assert ce(LOGITS, TARGET).item() == pytest.approx(F.cross_entropy(LOGITS, TARGET).item())
    focal = build_loss(TrainConfig(loss="focal", focal_gamma=2.0, focal_alpha=0.25), [3, 1])
    assert focal(LOGITS, TARGET).item() == pytest.approx(_hand_focal(2.0, 0.25), rel=1e-6)
    both = build_loss(TrainConfig(loss="ce+focal", focal_weight=0.5), [3, 1])
    assert isinstance(both, CEFocalLoss)
    expected = F.cross_entropy(LOGITS, TARGET).item() + 0.5 * _hand_focal(2.0)
    assert both(LOGITS, TARGET).item() == pytest.approx(expected, rel=1e-6)


def test_build_loss_class_weights():
    cfg = TrainConfig(loss="ce+focal", class_weights=True)
    loss = build_loss(cfg, [2, 1])
    w = [3 / 4, 3 / 2]
    expected = F.cross_entropy(LOGITS, TARGET, weight=torch.tensor(w)).item() + _hand_focal(2.0, weight=w)
    assert loss(LOGITS, TARGET).item() == pytest.approx(expected, rel=1e-6)


def test_build_loss_unknown():
    with pytest.raises(ValueError, match="loss"):  # the config refuses it when the params are loaded
        dataclasses.replace(TrainConfig(), loss="dice")
    with pytest.raises(ValueError, match=r"Unknown loss 'dice'"):  # and build_loss, for any other caller
        build_loss(types.SimpleNamespace(**{**dataclasses.asdict(TrainConfig()), "loss": "dice"}), [1, 1])
