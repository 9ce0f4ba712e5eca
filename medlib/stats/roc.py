"""ROC analysis: the ROC curve, the AUC and its confidence interval (matching pROC).

Conventions used throughout :mod:`medlib.stats`:

* Labels are 0/1 (or bool); 1 is a case (positive). A **higher score means more likely positive**, i.e. pROC's
  ``direction = "<"`` (controls < cases). The direction is never flipped automatically (pROC's automatic
  direction choice inflates AUCs of uninformative markers), so an AUC below 0.5 is reported as such.
* Ties between a case and a control count 1/2 (the Mann-Whitney kernel), which is what pROC computes.
* The DeLong variance uses the fast midrank algorithm of Sun & Xu (2014), ``O(n log n)``.

The pieces live in their own modules and are re-exported here, so ``from medlib.stats.roc import ...`` keeps
working: :mod:`medlib.stats.delong` (AUC, DeLong variance, covariance and tests), :mod:`medlib.stats.bootstrap`
(stratified bootstrap) and :mod:`medlib.stats.compare` (pairwise model comparison). The ROC points come from
scikit-learn's ``roc_curve``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning as SklearnUndefinedMetricWarning
from sklearn.metrics import roc_curve as _sklearn_roc_curve

from medlib.stats._validate import UndefinedMetricWarning, both_classes, check_binary_scores, check_level
from medlib.stats.bootstrap import bootstrap_auc
from medlib.stats.compare import compare_models
from medlib.stats.delong import (
    DELONG_METHOD,
    PAIRED_METHOD,
    UNPAIRED_METHOD,
    _delong,
    _normal_ci,
    _placements,
    auc,
    delong_cov,
    delong_test,
    delong_unpaired_test,
    delong_var,
)
from medlib.stats.results import Estimate

__all__ = ["DELONG_METHOD", "PAIRED_METHOD", "UNPAIRED_METHOD", "auc", "auc_ci", "bootstrap_auc",
           "compare_models", "delong_cov", "delong_test", "delong_unpaired_test", "delong_var", "roc_curve"]


def roc_curve(y_true: Any, y_score: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empirical ROC curve: one point per distinct score, a case is called positive when score >= threshold.

    scikit-learn's ``roc_curve(y_true, y_score, drop_intermediate=False)``: the first point is (0, 0) at
    threshold ``+inf``; thresholds then decrease through the distinct scores, ending at (1, 1). Our checks
    run first, so errors and the one-class warning are medlib's.

    Args:
        y_true: Binary labels (0/1 or bool), 1 = case.
        y_score: Finite scores; higher means more likely a case.

    Returns:
        ``(fpr, tpr, thresholds)``. With one class present the undefined rate is NaN
        (``UndefinedMetricWarning``).

    Raises:
        ValueError: Non-binary labels, non-finite scores or mismatched lengths.

    Example:
        >>> fpr, tpr, thr = roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        >>> tpr.tolist(), fpr.tolist()
        ([0.0, 0.5, 0.5, 1.0, 1.0], [0.0, 0.0, 0.5, 0.5, 1.0])
    """
    y, s = check_binary_scores(y_true, y_score)
    both_classes(y, "ROC curve")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SklearnUndefinedMetricWarning)  # already said, in our words
        fpr, tpr, thresholds = _sklearn_roc_curve(y, s, pos_label=1, drop_intermediate=False)
    return fpr, tpr, thresholds


def auc_ci(y_true: Any, y_score: Any, *, level: float = 0.95, method: str = "delong", n_boot: int = 2000,
           groups: Any | None = None, seed: int = 0) -> Estimate:
    """AUC with a confidence interval, by DeLong or by stratified percentile bootstrap.

    ``method="delong"`` matches pROC's ``ci.auc(roc, method = "delong")``: AUC +- z * sqrt(DeLong variance),
    variance by Sun & Xu (2014). ``method="bootstrap"`` matches pROC's ``ci.auc(method = "bootstrap",
    boot.stratified = TRUE)`` (percentile interval, R quantile type 7) in method, not in random numbers;
    with ``groups`` it resamples whole patients. Limits are clipped to [0, 1].

    Args:
        y_true: Binary labels (0/1 or bool), 1 = case.
        y_score: Finite scores; higher means more likely a case.
        level: Confidence level.
        method: ``"delong"`` or ``"bootstrap"``.
        n_boot: Bootstrap replicates (bootstrap only).
        groups: Patient id per case (bootstrap only): resample patients, not cases.
        seed: Seed for the bootstrap.

    Returns:
        ``Estimate(value, lo, hi, method)``; all NaN with an ``UndefinedMetricWarning`` for one class, and
        NaN limits for DeLong with fewer than 2 cases or 2 controls.

    Raises:
        ValueError: Bad inputs, unknown method, or ``groups`` with DeLong.

    Example:
        >>> est = auc_ci([0, 0, 0, 1, 1, 1], [0.1, 0.5, 0.3, 0.4, 0.8, 0.9])
        >>> round(est.value, 4), round(est.lo, 4), round(est.hi, 4), est.method
        (0.8889, 0.5809, 1.0, 'DeLong (Sun & Xu 2014)')
    """
    y, s = check_binary_scores(y_true, y_score)
    level = check_level(level)
    if method == "delong":
        if groups is not None:
            raise ValueError("groups only applies to method='bootstrap'; the DeLong variance treats cases "
                             "as independent")
        return _delong_ci(y, s, level)
    if method == "bootstrap":
        return _bootstrap_ci(y, s, level, n_boot, groups, seed)
    raise ValueError(f"Unknown method {method!r}. Available: ['bootstrap', 'delong']")


def _delong_ci(y: np.ndarray, s: np.ndarray, level: float) -> Estimate:
    if not both_classes(y, "The AUC"):
        return Estimate(math.nan, math.nan, math.nan, DELONG_METHOD)
    aucs, cov = _delong(y, s[None, :])
    lo, hi = _normal_ci(float(aucs[0]), float(cov[0, 0]), level, 0.0, 1.0)
    return Estimate(float(aucs[0]), lo, hi, DELONG_METHOD)


def _bootstrap_ci(y: np.ndarray, s: np.ndarray, level: float, n_boot: int, groups: Any | None,
                  seed: int) -> Estimate:
    unit = "case-level" if groups is None else "patient-level"
    method = f"stratified bootstrap, {int(n_boot)} replicates, {unit}"
    reps = bootstrap_auc(y, s, n_boot=n_boot, groups=groups, seed=seed)
    dropped = int(np.isnan(reps).sum())
    if dropped == len(reps):
        return Estimate(math.nan, math.nan, math.nan, method)
    if dropped:
        warnings.warn(f"{dropped} of {len(reps)} patient-level replicates drew no case or no control; the "
                      "interval uses the others", UndefinedMetricWarning, stacklevel=3)
    lo, hi = np.nanquantile(reps, [0.5 - level / 2, 0.5 + level / 2])
    value = float(_placements(y, s[None, :])[0].mean())
    return Estimate(value, float(max(lo, 0.0)), float(min(hi, 1.0)), method)
