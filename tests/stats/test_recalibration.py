"""Recalibration on validation, frozen (statsmodels / scikit-learn references), and calibration measures:
ICI by LOWESS, ECE by scikit-learn's bins, the LOESS band (issue 15, items 5 and 11)."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from sklearn.calibration import calibration_curve
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from statsmodels.nonparametric.smoothers_lowess import lowess

from medlib.stats import ISOTONIC_RULE, calibration_measures, fit_recalibration, loess_band
from medlib.stats.calibration import logit


def _miscalibrated(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    true = rng.uniform(0.05, 0.7, n)
    y = (rng.uniform(size=n) < true).astype(int)
    return y, 1 / (1 + np.exp(-(2 * logit(true) + 1)))  # too high and too extreme (as class weights make them)


def test_logistic_recalibration_matches_statsmodels_and_sklearn():
    y, p = _miscalibrated(300)
    r = fit_recalibration(y, p)
    ref = sm.Logit(y, sm.add_constant(logit(p))).fit(disp=0)
    assert (r.method, r.intercept, r.slope) == ("logistic", pytest.approx(ref.params[0], rel=1e-6),
                                               pytest.approx(ref.params[1], rel=1e-6))
    sk = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(logit(p)[:, None], y)
    np.testing.assert_allclose(r.apply(p), sk.predict_proba(logit(p)[:, None])[:, 1], rtol=1e-5)


def test_recalibration_fixes_a_miscalibrated_test_set():
    yv, pv = _miscalibrated(400, seed=1)
    yt, pt = _miscalibrated(2000, seed=2)
    r = fit_recalibration(yv, pv)
    before, after = calibration_measures(yt, pt, n_boot=20), calibration_measures(yt, r.apply(pt), n_boot=20)
    assert abs(after["slope"].value - 1) < 0.15 < abs(before["slope"].value - 1)
    assert after["ici"].value < before["ici"].value and after["brier"].value < before["brier"].value


def test_isotonic_only_when_validation_is_large():
    y, p = _miscalibrated(300)
    assert fit_recalibration(y, p).method == "logistic" and "isotonic regression only when" in ISOTONIC_RULE
    y, p = _miscalibrated(1500)
    r = fit_recalibration(y, p)
    assert r.method == "isotonic"
    ref = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(p, y)
    np.testing.assert_allclose(r.apply(p), ref.predict(p))


@pytest.mark.parametrize("y, why", [([0, 0, 0, 0, 0, 0], "one class"), ([0, 1, 0], "fewer than 5")])
def test_recalibration_not_fitted_on_bad_validation(y, why):
    r = fit_recalibration(y, np.linspace(0.1, 0.9, len(y)))
    assert r.method == "none" and why in r.reason and why in r.describe()
    np.testing.assert_array_equal(r.apply([0.2, 0.4]), [0.2, 0.4])


def test_ici_and_ece_against_statsmodels_and_sklearn():
    y, p = _miscalibrated(500, seed=3)
    m = calibration_measures(y, p, n_boot=50)
    smooth = lowess(y.astype(float), p, frac=0.75, it=0, return_sorted=False)
    assert m["ici"].value == pytest.approx(np.mean(np.abs(np.clip(smooth, 0, 1) - p)), rel=1e-6)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    counts = np.bincount(np.searchsorted(np.linspace(0, 1, 11)[1:-1], p), minlength=10)
    counts = counts[counts > 0]
    assert m["ece"].value == pytest.approx(np.sum(counts * np.abs(prob_true - prob_pred)) / len(p), rel=1e-9)
    for e in m.values():
        assert e.lo <= e.value <= e.hi


def test_loess_band_contains_the_curve():
    y, p = _miscalibrated(300, seed=4)
    band = loess_band(y, p, n_boot=40)
    assert list(band.columns) == ["predicted", "observed", "lo", "hi"]
    inside = (band["lo"] <= band["observed"] + 1e-9) & (band["observed"] <= band["hi"] + 1e-9)
    assert inside.mean() > 0.9


def test_clustered_calibration_intervals_do_not_narrow_when_patients_repeat():
    y, p = _miscalibrated(300, seed=6)
    g = np.arange(len(y))
    once = calibration_measures(y, p, groups=g, n_boot=100, seed=2)
    twice = calibration_measures(np.repeat(y, 2), np.repeat(p, 2), groups=np.repeat(g, 2), n_boot=100, seed=2)
    for name, est in once.items():
        assert twice[name].value == pytest.approx(est.value, rel=1e-6)
        assert twice[name].hi - twice[name].lo >= 0.85 * (est.hi - est.lo), name
    assert "cluster-robust" in twice["slope"].method
