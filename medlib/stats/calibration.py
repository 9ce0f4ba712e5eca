"""Calibration of predicted probabilities: Brier score, calibration intercept and slope, reliability curve.

Follows the calibration hierarchy of Van Calster et al. (2016, *J Clin Epidemiol* 74:167-176) and
Steyerberg (*Clinical Prediction Models*, 2nd ed. 2019, ch. 15): the **calibration intercept**
(calibration-in-the-large) is the intercept of a logistic model of the outcome with logit(p) as an offset
(slope fixed at 1); the **calibration slope** is the coefficient of logit(p) in an unpenalised logistic
recalibration model ``logit P(y=1) = a + b * logit(p)``. Ideal values: intercept 0, slope 1. These equal
R's ``glm(y ~ offset(lp), binomial)`` and ``glm(y ~ lp, binomial)``; the fits use statsmodels' GLM.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.genmod.families import Binomial
from statsmodels.genmod.generalized_linear_model import GLM
from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

from medlib.stats._validate import (
    UndefinedMetricWarning,
    both_classes,
    check_labels,
    check_level,
    check_probabilities,
    check_same_length,
)
from medlib.stats.metrics import wilson_ci

EPS = 1e-12  # probabilities are clipped to [EPS, 1 - EPS] before logit
CALIBRATION_METHOD = "logistic recalibration on logit(p) (Van Calster et al. 2016; Steyerberg 2019)"
STRATEGIES = ("quantile", "uniform")


@dataclass(frozen=True, eq=False)
class Calibration:
    """Calibration summary of predicted probabilities (compared by identity: it holds a DataFrame).

    Attributes:
        n: Number of cases.
        brier: Brier score, mean of (p - y)^2 (Brier 1950).
        intercept: Calibration-in-the-large (ideal 0); > 0 means risks are underestimated.
        intercept_ci: Wald interval of the intercept at the requested level.
        slope: Calibration slope (ideal 1); < 1 means predictions are too extreme (overfitting).
        slope_ci: Wald interval of the slope.
        curve: Reliability table, one row per non-empty bin: ``bin, lower, upper, n, events,
            mean_predicted, observed, observed_lo, observed_hi`` (Wilson interval of the observed fraction).
        method: How intercept and slope were estimated, in words.
    """

    n: int
    brier: float
    intercept: float
    intercept_ci: tuple[float, float]
    slope: float
    slope_ci: tuple[float, float]
    curve: pd.DataFrame
    method: str


def logit(p: Any, eps: float = EPS) -> np.ndarray:
    """log(p / (1 - p)) after clipping p to ``[eps, 1 - eps]`` so 0 and 1 stay finite.

    Example:
        >>> logit([0.5, 0.0]).round(3).tolist()
        [0.0, -27.631]
    """
    q = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return np.log(q / (1 - q))


def calibration(y_true: Any, y_prob: Any, *, n_bins: int = 10, strategy: str = "quantile",
                level: float = 0.95) -> Calibration:
    """Brier score, calibration intercept and slope, and a binned reliability curve.

    Intercept and slope as in Van Calster et al. (2016) / Steyerberg (2019), see the module docstring;
    probabilities of exactly 0 or 1 are clipped to ``[1e-12, 1 - 1e-12]`` before the logit.

    Args:
        y_true: Binary outcomes (0/1 or bool).
        y_prob: Predicted probabilities in [0, 1].
        n_bins: Number of bins of the reliability curve.
        strategy: ``"quantile"`` (equal-count bins; tied probabilities may merge bins) or ``"uniform"``
            (equal-width bins on [0, 1]; empty bins are dropped).
        level: Confidence level of the intervals.

    Returns:
        :class:`Calibration`. Intercept and slope are NaN (``UndefinedMetricWarning``) when one class is
        present.

    Raises:
        ValueError: Probabilities outside [0, 1] or not finite, non-binary outcomes, mismatched lengths,
            ``n_bins < 1`` or an unknown strategy.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> p = rng.uniform(0.05, 0.95, 2000)
        >>> cal = calibration(rng.uniform(size=2000) < p, p)
        >>> round(cal.slope, 2), round(cal.intercept, 2), len(cal.curve)
        (0.98, 0.04, 10)
    """
    y = check_labels(y_true)
    p = check_probabilities(y_prob)
    check_same_length(y, p, "y_true", "y_prob")
    level = check_level(level)
    curve = reliability_curve(y, p, n_bins=n_bins, strategy=strategy, level=level)
    brier = float(np.mean((p - y) ** 2))
    if not both_classes(y, "The calibration intercept and slope"):
        nan2 = (math.nan, math.nan)
        return Calibration(len(y), brier, math.nan, nan2, math.nan, nan2, curve, CALIBRATION_METHOD)
    (a, a_ci), (b, b_ci) = _fit_intercept(y, p, level), _fit_slope(y, p, level)
    return Calibration(len(y), brier, a, a_ci, b, b_ci, curve, CALIBRATION_METHOD)


def _wald(est: float, se: float, level: float) -> tuple[float, float]:
    half = float(stats.norm.ppf(0.5 + level / 2)) * se
    return est - half, est + half


def _fit_intercept(y: np.ndarray, p: np.ndarray, level: float) -> tuple[float, tuple[float, float]]:
    """Intercept of ``glm(y ~ 1 + offset(logit p), binomial)``, with its Wald interval.

    statsmodels' IRLS, started at zero, diverges without a warning when some offsets are extreme (risks of
    1e-27 from a saturated network gave an intercept of 7e13). So it starts at the root of the score equation
    ``sum(y - expit(a + logit p)) = 0`` (one unknown, strictly decreasing in ``a``: the root exists and is
    unique whenever both classes are present), where it has nothing left to do but compute the standard error.
    """
    from scipy.optimize import brentq
    from scipy.special import expit

    offset = logit(p)
    # logit clips p to [1e-12, 1 - 1e-12], so |offset| <= 27.7 and [-100, 100] always brackets the root
    root = brentq(lambda a: float(np.sum(y - expit(a + offset))), -100.0, 100.0, xtol=1e-12)
    return _coef(_glm(y, np.ones((len(y), 1)), offset=offset, start=[root]), 0, level)


def _fit_slope(y: np.ndarray, p: np.ndarray, level: float) -> tuple[float, tuple[float, float]]:
    """Slope of ``glm(y ~ logit p, binomial)``; NaN with a warning when every prediction is the same (the slope
    is then not identifiable: logit p is collinear with the intercept)."""
    if np.ptp(logit(p)) == 0:
        warnings.warn("every predicted probability is the same: the calibration slope is not estimable; "
                      "returning NaN", UndefinedMetricWarning, stacklevel=4)
        return math.nan, (math.nan, math.nan)
    return _coef(_glm(y, np.column_stack([np.ones(len(y)), logit(p)])), 1, level)


def _coef(fit: Any, i: int, level: float) -> tuple[float, tuple[float, float]]:
    if fit is None:
        return math.nan, (math.nan, math.nan)
    est, se = float(fit.params[i]), float(fit.bse[i])
    if not (np.isfinite(est) and np.isfinite(se)) or not getattr(fit, "converged", True):
        warnings.warn("the logistic calibration model did not converge; returning NaN", UndefinedMetricWarning,
                      stacklevel=4)
        return math.nan, (math.nan, math.nan)
    return est, _wald(est, se, level)


def _glm(y: np.ndarray, exog: np.ndarray, offset: np.ndarray | None = None, start: Any = None) -> Any:
    """Unpenalised binomial GLM (IRLS, from ``start``); ``None`` with a warning when it does not converge
    (separation)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=ConvergenceWarning)
        warnings.simplefilter("error", category=PerfectSeparationWarning)
        try:
            return GLM(y.astype(np.float64), exog, family=Binomial(), offset=offset).fit(start_params=start)
        except (ConvergenceWarning, PerfectSeparationWarning) as err:
            problem = str(err).splitlines()[0]
    warnings.warn(f"the logistic recalibration model did not converge ({problem}); the predictions may "
                  "separate the outcomes perfectly; returning NaN", UndefinedMetricWarning, stacklevel=4)
    return None


def reliability_curve(y_true: Any, y_prob: Any, *, n_bins: int = 10, strategy: str = "quantile",
                      level: float = 0.95) -> pd.DataFrame:
    """Binned reliability (calibration) curve: mean predicted vs observed fraction, with Wilson CIs.

    Bins are right-closed except the first, which also holds its lower edge (as ``np.quantile`` edges).
    The per-bin arithmetic is scikit-learn's ``calibration_curve`` (one ``searchsorted``, ``bincount`` sums),
    and with ``strategy="uniform"`` the bins, observed fractions and mean predictions are exactly
    ``calibration_curve(y, p, n_bins=n_bins, strategy="uniform")`` (tested). The binning stays here because
    scikit-learn returns neither the bin edges nor the counts that the table and the Wilson intervals need,
    and because its ``"quantile"`` edges come from ``np.percentile(p, q * 100)``, whose rounding of ``q``
    moves a probability lying exactly on an edge into the next bin (in about one random data set in ten;
    ``tests/stats/test_calibration.py`` pins an example), whereas ours are ``np.quantile(p, q)`` with tied
    edges merged.

    Args:
        y_true: Binary outcomes (0/1 or bool).
        y_prob: Predicted probabilities in [0, 1].
        n_bins: Number of bins requested.
        strategy: ``"quantile"`` or ``"uniform"`` (see :func:`calibration`).
        level: Confidence level of the Wilson intervals.

    Returns:
        One row per non-empty bin: ``bin, lower, upper, n, events, mean_predicted, observed,
        observed_lo, observed_hi``.

    Raises:
        ValueError: Bad inputs, ``n_bins < 1`` or unknown strategy.

    Example:
        >>> reliability_curve([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9], n_bins=2)[["n", "observed"]]
           n  observed
        0  2       0.0
        1  2       1.0
    """
    y = check_labels(y_true)
    p = check_probabilities(y_prob)
    check_same_length(y, p, "y_true", "y_prob")
    edges = _bin_edges(p, n_bins, strategy)
    idx = np.clip(np.searchsorted(edges, p, side="left") - 1, 0, len(edges) - 2)
    n = np.bincount(idx, minlength=len(edges) - 1)
    events = np.bincount(idx, weights=y, minlength=len(edges) - 1).astype(np.int64)
    sums = np.bincount(idx, weights=p, minlength=len(edges) - 1)
    k = np.flatnonzero(n)
    limits = [wilson_ci(e, m, level=level) for e, m in zip(events[k], n[k])]
    return pd.DataFrame({"bin": k + 1, "lower": edges[k], "upper": edges[k + 1], "n": n[k], "events": events[k],
                         "mean_predicted": sums[k] / n[k], "observed": events[k] / n[k],
                         "observed_lo": [lo for lo, _ in limits], "observed_hi": [hi for _, hi in limits]})


def _bin_edges(p: np.ndarray, n_bins: int, strategy: str) -> np.ndarray:
    if isinstance(n_bins, bool) or int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive whole number; got {n_bins!r}")
    if strategy == "quantile":
        edges = np.unique(np.quantile(p, np.linspace(0, 1, int(n_bins) + 1)))
        return edges if len(edges) > 1 else np.array([edges[0], edges[0]])
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, int(n_bins) + 1)
    raise ValueError(f"Unknown strategy {strategy!r}. Available: {list(STRATEGIES)}")
