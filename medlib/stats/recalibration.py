"""Recalibration fitted on validation data and frozen; calibration measures with intervals; the LOESS curve.

Class weights, focal loss and resampling make a network's predicted risks too high or too extreme. A
recalibration map is fitted on the validation set only, frozen, and applied unchanged to test and external
sets (Van Calster et al. 2019, *BMC Med* 17:230; Steyerberg 2019, ch. 20):

* **logistic** (the default; Platt scaling of logit p, Cox 1958): ``p' = expit(a + b * logit(p))``, fitted by
  statsmodels' unpenalised binomial GLM (the same fit as scikit-learn's ``LogisticRegression(penalty=None)``
  on logit p; both are tested);
* **isotonic** (scikit-learn's ``IsotonicRegression``), only when the validation set is large:
  :data:`ISOTONIC_RULE`. Below that, isotonic regression overfits (Niculescu-Mizil & Caruana 2005).

Calibration is measured by the intercept and slope (:func:`medlib.stats.calibration`), the Brier score, the
integrated calibration index (ICI: mean absolute difference between the LOWESS-smoothed observed risk and the
predicted risk; Austin & Steyerberg 2019, *Stat Med* 38:4051) and the expected calibration error (ECE: the
count-weighted mean of |observed - predicted| over 10 equal-width bins; Naeini et al. 2015). Intervals of the
Brier score, ICI and ECE are stratified bootstrap percentiles (patients resampled when given); the smoothing is
statsmodels' ``lowess`` (frac 0.75 as R's ``loess`` span, no robustness iterations for a 0/1 outcome).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from medlib.stats._validate import (check_labels, check_level, check_probabilities, check_same_length,
                                    UndefinedMetricWarning)
from medlib.stats.bootstrap import resample_weights
from medlib.stats.calibration import CALIBRATION_METHOD as CAL_METHOD
from medlib.stats.calibration import _fit_intercept, _glm, calibration, logit
from medlib.stats.results import Estimate

ISOTONIC_MIN_CASES = 1000
ISOTONIC_MIN_EVENTS = 100
ISOTONIC_RULE = (f"isotonic regression only when the validation set holds at least {ISOTONIC_MIN_CASES} cases "
                 f"and at least {ISOTONIC_MIN_EVENTS} events and {ISOTONIC_MIN_EVENTS} non-events; otherwise "
                 "logistic recalibration")
LOWESS_FRAC = 0.75
ECE_BINS = 10


@dataclass(frozen=True)
class Recalibrator:
    """A recalibration map fitted on one set and frozen.

    Attributes:
        method: ``"logistic"``, ``"isotonic"`` or ``"none"`` (not fitted; :meth:`apply` returns the risks).
        intercept, slope: the logistic map's coefficients (NaN otherwise).
        fitted_on: the set it was fitted on.
        n_cases, n_events: size of that set.
        reason: why this method (the rule applied, or why nothing was fitted).
    """

    method: str
    intercept: float = math.nan
    slope: float = math.nan
    fitted_on: str = "val"
    n_cases: int = 0
    n_events: int = 0
    reason: str = ""
    _isotonic: Any = field(default=None, repr=False, compare=False)

    @property
    def fitted(self) -> bool:
        return self.method != "none"

    def apply(self, y_prob: Any) -> np.ndarray:
        """The recalibrated risks of ``y_prob`` (probabilities in [0, 1])."""
        p = check_probabilities(y_prob)
        if self.method == "logistic":
            return expit(self.intercept + self.slope * logit(p))
        if self.method == "isotonic":
            return np.clip(self._isotonic.predict(p), 0.0, 1.0)
        return p

    def to_record(self) -> dict[str, Any]:
        """The frozen map as plain numbers (what ``metrics.json`` keeps): method, intercept, slope, fitted_on,
        n_cases, n_events, reason; an isotonic map adds its knots ``x`` and ``y`` (step function)."""
        out = {"method": self.method, "intercept": self.intercept, "slope": self.slope, "fitted_on": self.fitted_on,
               "n_cases": self.n_cases, "n_events": self.n_events, "reason": self.reason}
        if self.method == "isotonic":
            out.update(x=[float(v) for v in self._isotonic.X_thresholds_],
                       y=[float(v) for v in self._isotonic.y_thresholds_])
        return out

    def describe(self) -> str:
        """One sentence for the report."""
        if self.method == "logistic":
            return (f"logistic recalibration (Platt scaling of logit p) fitted on the {self.fitted_on} set "
                    f"({self.n_cases} cases, {self.n_events} events) and frozen: p' = expit({self.intercept:.3f} "
                    f"+ {self.slope:.3f} × logit p)")
        if self.method == "isotonic":
            return (f"isotonic recalibration fitted on the {self.fitted_on} set ({self.n_cases} cases, "
                    f"{self.n_events} events) and frozen")
        return f"no recalibration: {self.reason}"


def fit_recalibration(y_true: Any, y_prob: Any, *, method: str = "auto", fitted_on: str = "val") -> Recalibrator:
    """Fit a recalibration map on validation data (to be frozen and applied to every other set).

    Args:
        y_true: Validation outcomes (0/1 or bool).
        y_prob: Validation predicted probabilities.
        method: ``"auto"`` (:data:`ISOTONIC_RULE`), ``"logistic"`` or ``"isotonic"``.
        fitted_on: Name of the set, for the report.

    Returns:
        :class:`Recalibrator`; ``method="none"`` with the reason when the set has one class, fewer than 5
        cases, or the logistic fit does not converge (perfect separation).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> true = rng.uniform(0.05, 0.6, 400)
        >>> y = rng.uniform(size=400) < true
        >>> over = 1 / (1 + np.exp(-(logit(true) * 2 + 1)))  # too high and too extreme
        >>> r = fit_recalibration(y, over)
        >>> r.method, round(r.slope, 1)
        ('logistic', 0.6)
    """
    if method not in ("auto", "logistic", "isotonic"):
        raise ValueError(f"Unknown recalibration method {method!r}. Available: ['auto', 'isotonic', 'logistic']")
    y = check_labels(y_true)
    p = check_probabilities(y_prob)
    check_same_length(y, p, "y_true", "y_prob")
    n, events = len(y), int(y.sum())
    base = {"fitted_on": fitted_on, "n_cases": n, "n_events": events}
    if n < 5 or events in (0, n):
        why = f"fewer than 5 cases (n = {n})" if n < 5 else f"one class only in the {fitted_on} set"
        return Recalibrator("none", reason=why, **base)
    large = n >= ISOTONIC_MIN_CASES and min(events, n - events) >= ISOTONIC_MIN_EVENTS
    if method == "isotonic" or (method == "auto" and large):
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
        return Recalibrator("isotonic", reason=ISOTONIC_RULE, _isotonic=iso, **base)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        fit = _glm(y, np.column_stack([np.ones(n), logit(p)]))
    if fit is None:
        return Recalibrator("none", reason="the logistic fit did not converge (the risks separate the outcomes)",
                            **base)
    return Recalibrator("logistic", float(fit.params[0]), float(fit.params[1]), reason=ISOTONIC_RULE, **base)


# ------------------------------------------------------------------------------------------- measures


def lowess_curve(y: np.ndarray, p: np.ndarray, grid: np.ndarray, frac: float = LOWESS_FRAC) -> np.ndarray:
    """Observed risk smoothed over predicted risk (statsmodels ``lowess``, no robustness steps), at ``grid``."""
    from statsmodels.nonparametric.smoothers_lowess import lowess

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.clip(lowess(y.astype(float), p, frac=frac, it=0, xvals=np.asarray(grid, float)), 0.0, 1.0)


def ici(y: np.ndarray, p: np.ndarray, frac: float = LOWESS_FRAC) -> float:
    """Integrated calibration index (Austin & Steyerberg 2019): mean |LOWESS(y ~ p)(p_i) - p_i|."""
    return float(np.mean(np.abs(lowess_curve(y, p, p, frac) - p)))


def ece(y: np.ndarray, p: np.ndarray, n_bins: int = ECE_BINS, weights: np.ndarray | None = None) -> np.ndarray:
    """Expected calibration error over equal-width bins (as scikit-learn's ``calibration_curve``'s bins).

    With ``weights`` (``B x n``) one value per replicate.
    """
    w = np.ones((1, len(y))) if weights is None else np.asarray(weights, float)
    idx = np.searchsorted(np.linspace(0, 1, n_bins + 1)[1:-1], p)  # scikit-learn's binning, exactly
    onehot = np.zeros((len(p), n_bins))
    onehot[np.arange(len(p)), idx] = 1.0
    obs, pred = (w * y) @ onehot, (w * p) @ onehot
    return np.abs(obs - pred).sum(axis=1) / w.sum(axis=1)


def calibration_measures(y_true: Any, y_prob: Any, *, groups: Any | None = None, n_boot: int = 200,
                         seed: int = 0, level: float = 0.95) -> dict[str, Estimate]:
    """Intercept, slope, Brier score, ICI and ECE with intervals.

    Intercept and slope: Wald intervals of the logistic recalibration models (:func:`medlib.stats.calibration`),
    cluster-robust (sandwich, statsmodels) when ``groups`` has a patient with several rows; Brier, ICI and ECE:
    bootstrap percentiles (patients resampled where given).

    Returns:
        name -> :class:`~medlib.stats.Estimate` for ``intercept, slope, brier, ici, ece``.
    """
    y = check_labels(y_true)
    p = check_probabilities(y_prob)
    check_same_length(y, p, "y_true", "y_prob")
    level = check_level(level)
    clustered = groups is not None and len(np.unique(np.asarray(groups))) < len(y)
    cal = calibration(y, p, level=level)
    w = resample_weights(y, groups=groups, n_boot=n_boot, seed=seed)
    q = [0.5 - level / 2, 0.5 + level / 2]
    boot = f"stratified bootstrap percentile, {n_boot} replicates resampling {'patients' if groups is not None else 'cases'}"
    brier_reps = (w * (p - y) ** 2).sum(1) / w.sum(1)
    ici_reps = np.array([_ici_weighted(y, p, row) for row in w])
    out = {"brier": Estimate(cal.brier, *np.quantile(brier_reps, q), boot),
           "ici": Estimate(ici(y, p), *np.nanquantile(ici_reps, q), boot + "; LOWESS (statsmodels)"),
           "ece": Estimate(float(ece(y, p)[0]), *np.quantile(ece(y, p, weights=w), q),
                           boot + f"; {ECE_BINS} equal-width bins")}
    if clustered and np.isfinite(cal.slope):
        out["intercept"], out["slope"] = _cluster_robust(y, p, groups, level)
    else:
        out["intercept"] = Estimate(cal.intercept, *cal.intercept_ci, "Wald, " + cal.method)
        out["slope"] = Estimate(cal.slope, *cal.slope_ci, "Wald, " + cal.method)
    return {k: Estimate(float(e.value), float(e.lo), float(e.hi), e.method) for k, e in out.items()}


def _ici_weighted(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> float:
    keep = np.repeat(np.arange(len(y)), w)
    yb, pb = y[keep], p[keep]
    if yb.min() == yb.max():
        return math.nan
    return ici(yb, pb)


def _cluster_robust(y: np.ndarray, p: np.ndarray, groups: Any, level: float) -> tuple[Estimate, Estimate]:
    """Calibration intercept and slope with cluster-robust (sandwich) Wald intervals, patients as clusters.

    statsmodels' GLM with ``cov_type="cluster"`` (Liang & Zeger 1986): the same point estimates as
    :func:`medlib.stats.calibration`, standard errors that do not shrink when a patient's rows repeat.
    """
    from scipy import stats as st
    from statsmodels.genmod.families import Binomial
    from statsmodels.genmod.generalized_linear_model import GLM

    codes, _ = pd.factorize(np.asarray(groups))
    z = st.norm.ppf(0.5 + level / 2)
    method = "cluster-robust (sandwich) Wald, patients as clusters; " + CAL_METHOD
    # IRLS starts at calibration's intercept (started at zero it diverges silently when some risks are extreme)
    start = _fit_intercept(y, p, level)[0]
    out = []
    for exog, offset, i, begin in ((np.ones((len(y), 1)), logit(p), 0, [start]),
                                   (np.column_stack([np.ones(len(y)), logit(p)]), None, 1, None)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = GLM(y.astype(float), exog, family=Binomial(), offset=offset).fit(
                start_params=begin, cov_type="cluster", cov_kwds={"groups": codes})
        est, se = float(fit.params[i]), float(fit.bse[i])
        if not (np.isfinite(est) and np.isfinite(se)):
            est = se = math.nan
        out.append(Estimate(est, est - z * se, est + z * se, method))
    return out[0], out[1]


def loess_band(y_true: Any, y_prob: Any, *, grid: Any | None = None, groups: Any | None = None,
               n_boot: int = 200, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """The LOWESS calibration curve on a grid, with a stratified bootstrap percentile band.

    Returns:
        Columns ``predicted, observed, lo, hi``; the grid spans the observed range of predicted risks (a
        smoother says nothing outside it).
    """
    y = check_labels(y_true)
    p = check_probabilities(y_prob)
    check_same_length(y, p, "y_true", "y_prob")
    level = check_level(level)
    grid = np.linspace(p.min(), p.max(), 50) if grid is None else np.asarray(grid, float)
    curve = lowess_curve(y, p, grid)
    reps = []
    for row in resample_weights(y, groups=groups, n_boot=n_boot, seed=seed):
        keep = np.repeat(np.arange(len(y)), row)
        if y[keep].min() != y[keep].max():
            reps.append(lowess_curve(y[keep], p[keep], grid))
    reps_a = np.array(reps) if reps else np.full((1, len(grid)), np.nan)
    lo, hi = np.nanquantile(reps_a, [0.5 - level / 2, 0.5 + level / 2], axis=0)
    return pd.DataFrame({"predicted": grid, "observed": curve, "lo": lo, "hi": hi})
