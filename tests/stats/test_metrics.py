"""medlib.stats.metrics: Wilson intervals, thresholds chosen on validation data, confusion metrics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import balanced_accuracy_score, f1_score
from statsmodels.stats.proportion import proportion_confint

from medlib.stats import (
    BinaryMetrics,
    Threshold,
    UndefinedMetricWarning,
    binary_metrics,
    choose_threshold,
    metrics_table,
    wilson_ci,
)

Y = np.array([0, 0, 1, 1, 0, 1, 0, 1, 1, 0])
S = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.6, 0.6, 0.9, 0.5, 0.3])


# ------------------------------------------------------------------------------------------------ Wilson


def test_wilson_7_of_50():
    lo, hi = wilson_ci(7, 50)
    assert lo == pytest.approx(0.0695083, abs=5e-8) and hi == pytest.approx(0.2618619, abs=5e-8)


@pytest.mark.parametrize("k, n, level", [(0, 10, 0.95), (10, 10, 0.95), (1, 3, 0.9), (37, 113, 0.99),
                                         (500, 1000, 0.95)])
def test_wilson_matches_statsmodels(k, n, level):
    expected = proportion_confint(k, n, alpha=1 - level, method="wilson")
    assert wilson_ci(k, n, level=level) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def wilson_formula(k: int, n: int, level: float) -> tuple[float, float]:
    """The Wilson (1927) score interval written out: the oracle for the statsmodels call."""
    z = stats.norm.ppf(0.5 + level / 2)
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


@pytest.mark.parametrize("level", [0.5, 0.8, 0.9, 0.95, 0.99])
def test_wilson_matches_the_score_formula(level):
    for n in (1, 2, 3, 7, 10, 50, 113, 1000, 12345):
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            assert wilson_ci(k, n, level=level) == pytest.approx(wilson_formula(k, n, level), rel=1e-12, abs=1e-12)


def test_wilson_edges_are_inside_unit_interval():
    assert wilson_ci(0, 10)[0] == 0.0 and wilson_ci(10, 10)[1] == 1.0


def test_wilson_n0_warns_nan():
    with pytest.warns(UndefinedMetricWarning, match="n = 0 is undefined"):
        assert all(math.isnan(v) for v in wilson_ci(0, 0))


@pytest.mark.parametrize("k, n, match", [
    (8, 7, "successes must not exceed n; got successes=8, n=7"),
    (-1, 7, "successes must be a non-negative whole number; got -1"),
    (1.5, 7, "successes must be a non-negative whole number; got 1.5"),
    (1, True, "n must be a non-negative whole number; got True"),
])
def test_wilson_errors(k, n, match):
    with pytest.raises(ValueError, match=match):
        wilson_ci(k, n)


# ------------------------------------------------------------------------------------------- thresholds


def brute_force_youden(y, s):
    best = max(((np.mean(s[y == 1] >= t) + np.mean(s[y == 0] < t) - 1, t) for t in np.unique(s)),
               key=lambda jt: (jt[0], jt[1]))
    return best[1]


def test_youden_matches_brute_force(rng):
    for _ in range(5):
        y = rng.integers(0, 2, 80)
        s = np.round(rng.normal(size=80) + y, 1)
        t = choose_threshold(y, s)
        assert t.value == brute_force_youden(y, s)
        assert t.method == "youden" and t.target is None
        assert t.description.startswith("Youden index maximised on validation data")


@pytest.mark.parametrize("method, target, value", [
    ("youden", None, 0.5),
    ("sensitivity", 1.0, 0.35),
    ("sensitivity", 0.8, 0.5),
    ("sensitivity", 0.6, 0.6),
    ("fixed", 0.5, 0.5),
])
def test_choose_threshold_cases(method, target, value):
    t = choose_threshold(Y, S, method=method, target=target)
    assert isinstance(t, Threshold) and t.value == value and t.method == method
    if method == "sensitivity":
        assert np.mean(S[Y == 1] >= t.value) >= target
        assert f"sensitivity >= {target:g} on validation data" in t.description


@pytest.mark.parametrize("method, target, match", [
    ("best", None, r"Unknown threshold method 'best'. Available: \['youden', 'sensitivity', 'fixed'\]"),
    ("youden", 0.9, "method='youden' takes no target; got target=0.9"),
    ("sensitivity", None, r"needs a target sensitivity in \(0, 1\]; got None"),
    ("sensitivity", 1.2, r"needs a target sensitivity in \(0, 1\]; got 1.2"),
    ("fixed", None, "method='fixed' needs the threshold as a finite target; got None"),
])
def test_choose_threshold_errors(method, target, match):
    with pytest.raises(ValueError, match=match):
        choose_threshold(Y, S, method=method, target=target)


def test_choose_threshold_one_class_warns_nan():
    with pytest.warns(UndefinedMetricWarning, match="only one class"):
        assert math.isnan(choose_threshold([1, 1, 1], [0.1, 0.2, 0.3]).value)


# ---------------------------------------------------------------------------------------------- metrics


def test_binary_metrics_counts_and_point_values():
    m = binary_metrics(Y, S, 0.5)
    pred = (S >= 0.5).astype(int)  # score equal to the threshold is positive (0.5 is a case here)
    assert (m.tp, m.fp, m.tn, m.fn) == (4, 1, 4, 1)
    assert m.threshold == 0.5
    assert m.accuracy.value == 0.8 and m.sensitivity.value == 0.8 and m.specificity.value == 0.8
    assert m.ppv.value == 0.8 and m.npv.value == 0.8
    assert m.f1.value == pytest.approx(f1_score(Y, pred))
    assert m.balanced_accuracy.value == pytest.approx(balanced_accuracy_score(Y, pred))
    assert (m.sensitivity.lo, m.sensitivity.hi) == wilson_ci(4, 5)
    assert m.sensitivity.method.startswith("Wilson") and "bootstrap" in m.f1.method


def test_binary_metrics_accepts_frozen_threshold():
    t = choose_threshold(Y, S, method="sensitivity", target=1.0)
    assert binary_metrics(Y, S, t) == binary_metrics(Y, S, t.value)


def test_bootstrap_intervals_deterministic_and_contain_value(rng):
    y = rng.integers(0, 2, 300)
    s = rng.normal(size=300) + y
    a, b = binary_metrics(y, s, 0.5, seed=3), binary_metrics(y, s, 0.5, seed=3)
    assert a == b and a != binary_metrics(y, s, 0.5, seed=4)
    for est in (a.f1, a.balanced_accuracy):
        assert est.lo < est.value < est.hi


def test_binomial_bootstrap_equals_case_resampling_in_distribution(rng):
    """Resampling cases within class == binomial draws of correct calls: compare with an explicit loop."""
    y = rng.integers(0, 2, 200)
    pred = rng.uniform(size=200) < np.where(y == 1, 0.7, 0.3)
    fast = binary_metrics(y, pred.astype(float), 0.5, n_boot=4000, seed=1).balanced_accuracy
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    reps = []
    for _ in range(2000):
        tp = pred[rng.choice(pos, len(pos))].mean()
        tn = 1 - pred[rng.choice(neg, len(neg))].mean()
        reps.append((tp + tn) / 2)
    lo, hi = np.quantile(reps, [0.025, 0.975])
    assert fast.lo == pytest.approx(lo, abs=0.015) and fast.hi == pytest.approx(hi, abs=0.015)


def test_to_frame_and_metrics_table():
    m = binary_metrics(Y, S, 0.5)
    frame = m.to_frame()
    assert list(frame.columns) == ["metric", "value", "lo", "hi", "method"]
    assert frame["metric"].tolist() == ["accuracy", "sensitivity", "specificity", "ppv", "npv", "f1",
                                        "balanced_accuracy"]
    table = metrics_table({"cnn": m, "radiomics": binary_metrics(Y, S, 0.35)})
    assert len(table) == 14 and set(table["model"]) == {"cnn", "radiomics"}
    assert isinstance(table, pd.DataFrame) and isinstance(m, BinaryMetrics)


def test_no_positives_warns_and_gives_nan():
    with pytest.warns(UndefinedMetricWarning):
        m = binary_metrics([0, 0, 0], [0.1, 0.7, 0.2], 0.5)
    assert math.isnan(m.sensitivity.value) and math.isnan(m.balanced_accuracy.value)
    assert m.specificity.value == pytest.approx(2 / 3) and m.f1.value == 0.0


@pytest.mark.parametrize("kwargs, match", [
    ({"threshold": float("nan")}, "threshold must be a finite number; got nan"),
    ({"threshold": 0.5, "n_boot": 0}, "n_boot must be a positive number of replicates; got 0"),
    ({"threshold": 0.5, "level": 1.0}, "level must lie strictly between 0 and 1"),
])
def test_binary_metrics_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        binary_metrics(Y, S, **kwargs)


def test_binary_metrics_input_errors():
    with pytest.raises(ValueError, match="got 10 and 9"):
        binary_metrics(Y, S[:-1], 0.5)
    with pytest.raises(ValueError, match=r"y_score has 1 NaN"):
        binary_metrics(Y, np.r_[S[:-1], np.nan], 0.5)
