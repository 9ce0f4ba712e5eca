"""Threshold uncertainty carried into the operating metrics (issue 15, item 6)."""

from __future__ import annotations

import numpy as np
import pytest

from medlib.stats import binary_metrics, choose_threshold, operating_metrics, resample_weights, threshold_uncertainty
from medlib.stats.operating import weighted_thresholds


def _data(seed: int, n: int = 60):
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=n) < 0.4).astype(int)
    return y, np.round(y + rng.normal(0, 1, n), 1)


@pytest.mark.parametrize("method, target", [("youden", None), ("sensitivity", 0.8)])
def test_every_replicate_threshold_is_choose_threshold_on_the_resample(method, target):
    y, s = _data(0)
    w = resample_weights(y, n_boot=25, seed=3)
    got = weighted_thresholds(y, s, w, method, target)
    for row, t in zip(w, got):
        keep = np.repeat(np.arange(len(y)), row)
        assert t == choose_threshold(y[keep], s[keep], method=method, target=target).value


def test_replicate_metrics_match_binary_metrics_on_the_resample():
    y, s = _data(1)
    yv, sv = _data(2)
    out = operating_metrics(y, s, 0.5, validation=(yv, sv), n_boot=400, seed=0)
    frozen = binary_metrics(y, s, 0.5)
    assert out["sensitivity"].value == frozen.sensitivity.value
    assert out["ppv"].value == frozen.ppv.value
    assert "chosen again" in out["sensitivity"].method


def test_carrying_the_threshold_widens_the_intervals():
    rng = np.random.default_rng(5)
    yv = np.r_[np.ones(8), np.zeros(30)].astype(int)  # a small validation set: 8 events
    sv = yv + rng.normal(0, 1, len(yv))
    yt = np.r_[np.ones(150), np.zeros(150)].astype(int)
    st = yt + rng.normal(0, 1, len(yt))
    t = choose_threshold(yv, sv).value
    fixed = operating_metrics(yt, st, t, n_boot=1000)
    carried = operating_metrics(yt, st, t, validation=(yv, sv), n_boot=1000)
    for name in ("sensitivity", "specificity"):
        assert carried[name].hi - carried[name].lo > 1.5 * (fixed[name].hi - fixed[name].lo)
    tu = threshold_uncertainty(yv, sv, n_boot=500)
    assert tu.value == t and tu.lo < t < tu.hi
    assert tu.n_events == 8 and "fewer than 10" in tu.warning


def test_duplicated_patients_do_not_narrow_operating_intervals():
    y, s = _data(3, 80)
    g = np.arange(len(y))
    once = operating_metrics(y, s, 0.5, groups=g, n_boot=1000, seed=1)
    twice = operating_metrics(np.repeat(y, 2), np.repeat(s, 2), 0.5, groups=np.repeat(g, 2), n_boot=1000, seed=1)
    for name, est in once.items():
        assert twice[name].value == pytest.approx(est.value)
        assert twice[name].hi - twice[name].lo >= 0.9 * (est.hi - est.lo), name


def test_fixed_threshold_does_not_move():
    y, s = _data(4)
    tu = threshold_uncertainty(y, s, method="fixed", target=0.5, n_boot=50)
    assert tu.lo == tu.hi == 0.5 and tu.warning is None
