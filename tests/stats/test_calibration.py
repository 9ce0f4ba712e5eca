"""medlib.stats.calibration: intercept and slope against an independent maximum-likelihood fit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, special
from sklearn.calibration import calibration_curve

from medlib.stats import Calibration, UndefinedMetricWarning, calibration, reliability_curve
from medlib.stats.calibration import logit


def mle(y: np.ndarray, lp: np.ndarray, fix_slope: bool) -> np.ndarray:
    """Logistic MLE by BFGS on the log-likelihood: the oracle for the GLM fits."""
    def nll(theta):
        eta = theta[0] + (lp if fix_slope else theta[1] * lp)
        return np.sum(np.logaddexp(0, eta) - y * eta)
    return optimize.minimize(nll, np.zeros(1 if fix_slope else 2), method="BFGS", options={"gtol": 1e-10}).x


@pytest.fixture(scope="module")
def miscalibrated():
    """Outcomes from true risks; predictions too extreme (x2 on the logit scale) and shifted down by 0.5."""
    rng = np.random.default_rng(2016)
    true_lp = rng.normal(-0.5, 1.0, 3000)
    y = (rng.uniform(size=3000) < special.expit(true_lp)).astype(int)
    return y, special.expit(2 * true_lp - 0.5), true_lp


def test_intercept_and_slope_match_mle(miscalibrated):
    y, p, _ = miscalibrated
    cal = calibration(y, p)
    lp = logit(p)
    assert cal.intercept == pytest.approx(mle(y, lp, True)[0], abs=1e-5)
    assert cal.slope == pytest.approx(mle(y, lp, False)[1], abs=1e-5)
    assert isinstance(cal, Calibration) and "Van Calster" in cal.method


def test_recovers_known_miscalibration(miscalibrated):
    y, p, true_lp = miscalibrated
    cal = calibration(y, p)
    assert cal.slope_ci[0] < 0.5 < cal.slope_ci[1]  # logit(p) = 2 * true_lp - 0.5
    good = calibration(y, special.expit(true_lp))
    assert good.slope_ci[0] < 1 < good.slope_ci[1] and good.intercept_ci[0] < 0 < good.intercept_ci[1]
    assert good.brier < cal.brier


def test_brier_by_hand():
    cal = calibration([0, 1, 1, 0], [0.1, 0.8, 0.3, 0.6])
    assert cal.brier == pytest.approx((0.01 + 0.04 + 0.49 + 0.36) / 4)


def test_quantile_curve(miscalibrated):
    y, p, _ = miscalibrated
    curve = calibration(y, p, n_bins=10).curve
    assert list(curve.columns) == ["bin", "lower", "upper", "n", "events", "mean_predicted", "observed",
                                   "observed_lo", "observed_hi"]
    assert curve["n"].tolist() == [300] * 10 and curve["n"].sum() == len(y)
    assert (curve["observed_lo"] <= curve["observed"]).all() and (curve["observed"] <= curve["observed_hi"]).all()
    assert curve["mean_predicted"].is_monotonic_increasing


def test_uniform_curve_drops_empty_bins():
    curve = reliability_curve([0, 0, 1, 1, 1], [0.05, 0.12, 0.15, 0.95, 1.0], n_bins=10, strategy="uniform")
    assert curve["bin"].tolist() == [1, 2, 10]
    assert curve["n"].tolist() == [1, 2, 2] and curve["observed"].tolist() == [0.0, 0.5, 1.0]


@pytest.mark.parametrize("seed", range(40))
def test_uniform_bins_are_sklearn_calibration_curve(seed):
    """With equal-width bins, observed fractions and mean predictions are scikit-learn's, bit for bit."""
    rng = np.random.default_rng(seed)
    n, n_bins = int(rng.integers(5, 400)), int(rng.integers(1, 20))
    p = np.round(rng.uniform(size=n), int(rng.integers(1, 4)))  # ties, and probabilities on bin edges
    y = (rng.uniform(size=n) < p).astype(int)
    curve = reliability_curve(y, p, n_bins=n_bins, strategy="uniform")
    prob_true, prob_pred = calibration_curve(y, p, n_bins=n_bins, strategy="uniform")
    np.testing.assert_array_equal(curve["observed"], prob_true)
    np.testing.assert_array_equal(curve["mean_predicted"], prob_pred)


def test_quantile_bins_match_sklearn_when_no_probability_lies_on_an_edge(miscalibrated):
    y, p, _ = miscalibrated
    curve = reliability_curve(y, p, n_bins=10)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="quantile")
    np.testing.assert_array_equal(curve["observed"], prob_true)
    np.testing.assert_allclose(curve["mean_predicted"], prob_pred, rtol=1e-13)


def test_quantile_edges_are_np_quantile_not_sklearns_percentile():
    """Why the quantile binning stays ours: scikit-learn's edges come from np.percentile(p, q * 100), and
    the rounding of q * 100 puts the 1/3 quantile 1e-16 below 0.35, so 0.35 moves up a bin."""
    y, p = [0, 1, 0, 1, 0, 1, 0], [0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95]
    curve = reliability_curve(y, p, n_bins=3)
    assert curve["n"].tolist() == [3, 2, 2] and curve["lower"].tolist() == [0.05, 0.35, 0.65]
    assert curve["observed"].tolist() == pytest.approx([1 / 3, 1 / 2, 1 / 2])
    sk_true, _ = calibration_curve(y, p, n_bins=3, strategy="quantile")
    assert sk_true.tolist() == pytest.approx([1 / 2, 1 / 2, 1 / 3])  # bins of 2, 3, 2


def test_zero_and_one_probabilities_are_clipped_not_rejected():
    cal = calibration([0, 1, 0, 1, 1, 0], [0.0, 1.0, 0.3, 0.6, 0.4, 0.5])
    assert math.isfinite(cal.intercept) and math.isfinite(cal.slope)
    assert logit([0.0, 1.0]).tolist() == pytest.approx([-27.631021, 27.631021])


@pytest.mark.parametrize("y, p, match", [
    ([1, 1, 1], [0.2, 0.5, 0.9], "only one class"),
    ([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], "did not converge"),  # perfect separation
])
def test_undefined_fits_warn_and_give_nan(y, p, match):
    with pytest.warns(UndefinedMetricWarning, match=match):
        cal = calibration(y, p)
    assert math.isnan(cal.slope) and math.isfinite(cal.brier)


@pytest.mark.parametrize("kwargs, match", [
    ({"y_prob": [0.2, 1.5, -0.1]}, r"y_prob must be probabilities in \[0, 1\]; 2 value\(s\) lie outside"),
    ({"y_prob": [0.2, np.nan, 0.3]}, r"y_prob has 1 NaN or infinite"),
    ({"y_prob": [0.2, 0.3]}, "got 3 and 2"),
    ({"y_true": [0, 1, 3]}, r"got values \[0, 1, 3\]"),
    ({"n_bins": 0}, "n_bins must be a positive whole number; got 0"),
    ({"strategy": "kmeans"}, r"Unknown strategy 'kmeans'. Available: \['quantile', 'uniform'\]"),
])
def test_calibration_errors(kwargs, match):
    args = {"y_true": [0, 1, 1], "y_prob": [0.2, 0.7, 0.4], **kwargs}
    with pytest.raises(ValueError, match=match):
        calibration(**args)


def test_inputs_not_mutated(miscalibrated):
    y, p, _ = miscalibrated
    p_copy = p.copy()
    calibration(y, p)
    np.testing.assert_array_equal(p, p_copy)


def test_intercept_with_saturated_risks_is_the_score_equations_root():
    """A saturated network's risks of 1e-27 made statsmodels' IRLS (started at 0) return an intercept of 7e13
    without a warning; the intercept is the root of sum(y - expit(a + logit p)) = 0."""
    from scipy.special import expit

    from medlib.stats.calibration import logit

    rng = np.random.default_rng(2)
    tiny = [5.72e-27, 3.11e-17, 4.33e-16, 5.3e-13, 1.56e-12, 2.34e-12, 1.27e-11, 2.33e-06, 2.95e-06, 4.04e-06,
            4.47e-05]  # a validation set's negatives, as a saturated ONFH network scored them
    p = np.r_[tiny, rng.uniform(0.2, 0.98, 53)]
    y = np.r_[np.zeros(11, int), (rng.uniform(size=53) < 0.8).astype(int)]
    cal = calibration(y, p)
    assert np.isfinite(cal.intercept) and abs(cal.intercept) < 10
    assert abs(np.sum(y - expit(cal.intercept + logit(p)))) < 1e-8
    assert cal.intercept_ci[0] < cal.intercept < cal.intercept_ci[1]
