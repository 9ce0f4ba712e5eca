"""medlib.stats.roc: ROC points (scikit-learn), AUC CIs, degenerate inputs and the messages of bad inputs."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import roc_curve as sk_roc_curve

from medlib.stats import (
    UndefinedMetricWarning,
    auc,
    auc_ci,
    bootstrap_auc,
    delong_cov,
    delong_test,
    delong_unpaired_test,
    delong_var,
    roc_curve,
)


def test_roc_curve_matches_sklearn(rng):
    y = rng.integers(0, 2, 200)
    s = np.round(rng.normal(size=200) + y, 1)
    fpr, tpr, thr = roc_curve(y, s)
    sk_fpr, sk_tpr, sk_thr = sk_roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_allclose(thr[1:], sk_thr[1:])
    assert thr[0] == np.inf and np.trapezoid(tpr, fpr) == pytest.approx(auc(y, s))


def test_roc_curve_one_class_warns_in_our_words_only():
    """scikit-learn's own warning for a missing class is replaced by medlib's UndefinedMetricWarning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fpr, tpr, thr = roc_curve([1, 1, 1], [0.2, 0.5, 0.9])
    assert [(type(w.message), str(w.message)) for w in caught] == [
        (UndefinedMetricWarning, "ROC curve is undefined when only one class is present (all 3 cases are "
                                 "positive (1)); returning NaN")]
    assert np.isnan(fpr).all() and tpr.tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert thr.tolist() == [np.inf, 0.9, 0.5, 0.2]


def test_inputs_not_mutated(asah):
    y, s = asah["y"].to_numpy().copy(), asah["ndka"].to_numpy().copy()
    y_in, s_in = y.copy(), s.copy()
    auc_ci(y_in, s_in, method="bootstrap", n_boot=50)
    delong_test(y_in, s_in, s_in[::-1].copy())
    np.testing.assert_array_equal(y_in, y)
    np.testing.assert_array_equal(s_in, s)


# ------------------------------------------------------------------------------------------ degenerate


@pytest.mark.parametrize("func", [
    lambda y, s: auc(y, s),
    lambda y, s: auc_ci(y, s).value,
    lambda y, s: auc_ci(y, s, method="bootstrap", n_boot=10).lo,
    lambda y, s: delong_var(y, s),
    lambda y, s: delong_test(y, s, s[::-1]).p_value,
    lambda y, s: float(bootstrap_auc(y, s, n_boot=3)[0]),
])
def test_one_class_warns_and_returns_nan(func):
    y, s = np.ones(5, dtype=int), np.linspace(0, 1, 5)
    with pytest.warns(UndefinedMetricWarning, match="only one class is present"):
        assert math.isnan(func(y, s))


def test_single_case_gives_nan_variance_with_warning():
    with pytest.warns(UndefinedMetricWarning, match="at least 2 cases and 2 controls; got 1 and 3"):
        est = auc_ci([0, 0, 0, 1], [0.1, 0.2, 0.3, 0.9])
    assert est.value == 1.0 and math.isnan(est.lo) and math.isnan(est.hi)


def test_perfect_separation_ci_is_clipped():
    est = auc_ci([0, 0, 0, 1, 1, 1], [0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    assert (est.value, est.lo, est.hi) == (1.0, 1.0, 1.0)
    near = auc_ci([0, 0, 0, 1, 1, 1], [0.1, 0.2, 0.75, 0.7, 0.8, 0.9], transform="none")  # pROC: clipped at 1
    assert 0.0 <= near.lo <= near.value <= near.hi == 1.0
    logit = auc_ci([0, 0, 0, 1, 1, 1], [0.1, 0.2, 0.75, 0.7, 0.8, 0.9])  # logit scale: inside (0, 1)
    assert 0.0 < logit.lo < logit.value < logit.hi < 1.0


# ---------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("call, exc, match", [
    (lambda: auc([0, 1, 1], [0.1, np.nan, np.inf]), ValueError, r"y_score has 2 NaN or infinite value\(s\)"),
    (lambda: auc([0, 1, 1], [0.1, 0.2]), ValueError, "got 3 and 2"),
    (lambda: auc([0, 1, 2], [0.1, 0.2, 0.3]), ValueError, r"must be binary .* got values \[0, 1, 2\]"),
    (lambda: auc(["Good", "Poor"], [0.1, 0.2]), ValueError, r"got values \['Good', 'Poor'\]"),
    (lambda: auc([0, 1, np.nan], [0.1, 0.2, 0.3]), ValueError, "must be binary"),
    (lambda: auc([[0, 1]], [[0.1, 0.2]]), ValueError, r"must be 1-D .* got shape \(1, 2\)"),
    (lambda: auc([], []), ValueError, "y_true is empty"),
    (lambda: auc([0, 1], ["a", "b"]), ValueError, "y_score must be numeric"),
    (lambda: auc_ci([0, 1], [0.1, 0.2], method="wald"), ValueError, r"Unknown method 'wald'"),
    (lambda: auc_ci([0, 1], [0.1, 0.2], groups=[1]), ValueError, "got 1 ids for 2 cases"),
    (lambda: auc_ci([0, 1], [0.1, 0.2], transform="probit"), ValueError, "Unknown transform 'probit'"),
    (lambda: auc_ci([0, 1], [0.1, 0.2], level=95), ValueError, "level must lie strictly between 0 and 1"),
    (lambda: bootstrap_auc([0, 1], [0.1, 0.2], n_boot=0), ValueError, "n_boot must be a positive number"),
    (lambda: bootstrap_auc([0, 1], [0.1, 0.2], groups=[1]), ValueError, "got 1 ids for 2 cases"),
    (lambda: bootstrap_auc([0, 1], [0.1, 0.2], groups=["p1", None]), ValueError, r"1 missing patient id\(s\)"),
    (lambda: delong_test([0, 1, 1], [0.1, 0.2, 0.3], [0.1, 0.2]), ValueError, "y_true and score_b .* got 3 and 2"),
    (lambda: delong_cov([0, 1], [0.1, 0.2]), ValueError, r"list of score vectors or a k x N array; got shape \(2,\)"),
    (lambda: delong_cov([0, 1], []), ValueError, "at least one score vector is needed"),
    (lambda: delong_unpaired_test([0, 1], [0.1, np.nan], [0, 1], [0.1, 0.2]), ValueError, "s_a has 1 NaN"),
])
def test_errors_say_what_arrived(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
