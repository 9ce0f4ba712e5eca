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
    DELONG_LOGIT_METHOD,
    DELONG_METHOD,
    OBUCHOWSKI_METHOD,
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
    logit_ci,
    obuchowski_var,
)
from medlib.stats.results import Estimate

__all__ = ["DELONG_METHOD", "PAIRED_METHOD", "UNPAIRED_METHOD", "auc", "auc_ci", "bootstrap_auc",
           "compare_models", "delong_cov", "delong_test", "delong_unpaired_test", "delong_var", "has_clusters",
           "logit_ci", "obuchowski_var", "roc_curve"]


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
           groups: Any | None = None, seed: int = 0, transform: str = "logit") -> Estimate:
    """AUC with a confidence interval: DeLong (logit scale by default, clustered when patients repeat) or bootstrap.

    ``method="delong"``: DeLong's variance (Sun & Xu 2014). With ``transform="logit"`` (the default, what the
    reports show) the Wald interval is built on the logit scale and back-transformed, so it never leaves [0, 1]
    (:func:`medlib.stats.delong.logit_ci`); ``transform="none"`` gives pROC's ``ci.auc(roc, method = "delong")``,
    AUC +- z * SE clipped to [0, 1], for comparison. With ``groups`` (patient ids) in which some patient has
    several rows, the variance is Obuchowski's (1997) clustered one (:func:`~medlib.stats.delong.obuchowski_var`);
    with one row per patient it equals DeLong's. ``method="bootstrap"`` matches pROC's ``ci.auc(method =
    "bootstrap", boot.stratified = TRUE)`` (percentile interval, R quantile type 7) in method, not in random
    numbers; with ``groups`` it resamples whole patients.

    Args:
        y_true: Binary labels (0/1 or bool), 1 = case.
        y_score: Finite scores; higher means more likely a case.
        level: Confidence level.
        method: ``"delong"`` or ``"bootstrap"``.
        n_boot: Bootstrap replicates (bootstrap only).
        groups: Patient id per case: clustered variance (DeLong) or patient resampling (bootstrap).
        seed: Seed for the bootstrap.
        transform: ``"logit"`` or ``"none"`` (pROC's interval), DeLong only.

    Returns:
        ``Estimate(value, lo, hi, method)``; all NaN with an ``UndefinedMetricWarning`` for one class, and
        NaN limits for DeLong with fewer than 2 cases or 2 controls.

    Raises:
        ValueError: Bad inputs, unknown method or transform, or ``groups`` of the wrong length.

    Example:
        >>> est = auc_ci([0, 0, 0, 1, 1, 1], [0.1, 0.5, 0.3, 0.4, 0.8, 0.9], transform="none")
        >>> round(est.value, 4), round(est.lo, 4), round(est.hi, 4), est.method
        (0.8889, 0.5809, 1.0, 'DeLong (Sun & Xu 2014)')
        >>> est = auc_ci([0, 0, 0, 1, 1, 1], [0.1, 0.5, 0.3, 0.4, 0.8, 0.9])
        >>> round(est.lo, 4), round(est.hi, 4)
        (0.2614, 0.9945)
    """
    y, s = check_binary_scores(y_true, y_score)
    level = check_level(level)
    if transform not in ("logit", "none"):
        raise ValueError(f"Unknown transform {transform!r}. Available: ['logit', 'none']")
    if groups is not None and len(np.asarray(groups)) != len(y):
        raise ValueError(f"groups must have one patient id per case; got {len(np.asarray(groups))} ids for "
                         f"{len(y)} cases")
    if method == "delong":
        return _delong_ci(y, s, level, groups, transform)
    if method == "bootstrap":
        return _bootstrap_ci(y, s, level, n_boot, groups, seed)
    raise ValueError(f"Unknown method {method!r}. Available: ['bootstrap', 'delong']")


def has_clusters(groups: Any | None) -> bool:
    """True when some patient id occurs on more than one row (cases are then not independent)."""
    if groups is None:
        return False
    g = np.asarray(groups)
    return len(np.unique(g)) < len(g)


def _delong_ci(y: np.ndarray, s: np.ndarray, level: float, groups: Any | None = None,
               transform: str = "logit") -> Estimate:
    clustered = has_clusters(groups)
    name = OBUCHOWSKI_METHOD if clustered else (DELONG_LOGIT_METHOD if transform == "logit" else DELONG_METHOD)
    if not both_classes(y, "The AUC"):
        return Estimate(math.nan, math.nan, math.nan, name)
    aucs, cov = _delong(y, s[None, :])
    value = float(aucs[0])
    var = obuchowski_var(y, s, groups) if clustered else float(cov[0, 0])
    if clustered and transform == "none":
        lo, hi = _normal_ci(value, var, level, 0.0, 1.0)
        name = name.replace(", logit-transformed interval", "")
    elif transform == "logit":
        lo, hi = logit_ci(value, var, level)
    else:
        lo, hi = _normal_ci(value, var, level, 0.0, 1.0)
    return Estimate(value, lo, hi, name)


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
