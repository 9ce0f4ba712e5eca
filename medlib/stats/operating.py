"""The operating threshold's uncertainty, and metrics at the threshold whose intervals carry it.

A threshold chosen on a validation set of a few dozen cases moves a lot from sample to sample, and the
sensitivity, specificity, PPV and NPV on the test set move with it. Wilson intervals at the frozen threshold
ignore that. Here the validation set is resampled (bootstrap, patients as units when a patient has several
rows), the threshold is chosen again on every replicate by the same rule (:func:`medlib.stats.choose_threshold`),
and each replicate's threshold is applied to a bootstrap replicate of the evaluation set; the percentile
interval of the metric over the replicates then holds both sources of variation (the approach of Steyerberg,
*Clinical Prediction Models*, 2019, ch. 5, applied to the threshold). The point estimate stays the one at the
frozen threshold.

Our own code: no library re-chooses a threshold inside a bootstrap; all replicates are computed at once from
resampling weights (:func:`medlib.stats.bootstrap.resample_weights`), and the tests check every replicate
against :func:`~medlib.stats.choose_threshold` and :func:`~medlib.stats.binary_metrics` on the materialised
resample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from medlib.stats._validate import check_binary_scores, check_level
from medlib.stats.bootstrap import resample_weights
from medlib.stats.metrics import THRESHOLD_METHODS, binary_metrics
from medlib.stats.results import Estimate

#: fewer validation events than this and the report warns that the threshold is unstable
MIN_EVENTS = 10
OPERATING_METRICS = ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1")


@dataclass(frozen=True)
class ThresholdUncertainty:
    """How much a frozen threshold moves when its validation set is resampled.

    Attributes:
        value: the frozen threshold (chosen on the full validation set).
        replicates: the threshold chosen on each bootstrap replicate (NaN where a replicate had one class).
        lo, hi: percentile interval of the replicates at ``level``.
        median: median of the replicates.
        n_cases, n_events, n_patients: size of the validation set.
        method: how the replicates were drawn, in words.
        warning: a sentence for the report when the validation set has fewer than :data:`MIN_EVENTS` events,
            else ``None``.
    """

    value: float
    replicates: np.ndarray
    lo: float
    hi: float
    median: float
    n_cases: int
    n_events: int
    n_patients: int
    method: str
    warning: str | None


def _boot_method(n_boot: int, groups: Any | None) -> str:
    unit = "patients" if groups is not None else "cases"
    return f"stratified bootstrap percentile, {int(n_boot)} replicates resampling {unit}"


def weighted_thresholds(y: np.ndarray, s: np.ndarray, weights: np.ndarray, method: str,
                        target: float | None) -> np.ndarray:
    """The threshold :func:`~medlib.stats.choose_threshold` picks on each weighted replicate, all at once.

    Candidate thresholds are the distinct scores in descending order; per replicate the weighted ROC point of
    each is a cumulative sum. Youden takes the first maximum of J (the highest threshold among ties); the
    sensitivity rule the first threshold reaching ``target``, as ``choose_threshold``. A score whose rows were
    not drawn gives the same ROC point as the next higher drawn score, which comes first, so the choice equals
    the one on the materialised resample. NaN for a replicate with one class.
    """
    b = weights.shape[0]
    if method == "fixed":
        return np.full(b, float(target))
    order = np.argsort(-s, kind="stable")
    s_desc = s[order]
    starts = np.flatnonzero(np.r_[True, s_desc[1:] != s_desc[:-1]])
    w = weights[:, order].astype(np.float64)
    pos = np.add.reduceat(w * (y[order] == 1), starts, axis=1)
    neg = np.add.reduceat(w * (y[order] == 0), starts, axis=1)
    tps, fps = np.cumsum(pos, axis=1), np.cumsum(neg, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr, fpr = tps / tps[:, -1:], fps / fps[:, -1:]
    if method == "youden":
        idx = np.argmax(np.nan_to_num(tpr - fpr, nan=-np.inf), axis=1)
    else:
        idx = np.argmax(tpr >= target, axis=1)
    out = s_desc[starts][idx]
    undefined = (tps[:, -1] == 0) | (fps[:, -1] == 0)
    return np.where(undefined, np.nan, out)


def threshold_uncertainty(y_true: Any, y_score: Any, *, method: str = "youden", target: float | None = None,
                          groups: Any | None = None, n_boot: int = 1000, seed: int = 0,
                          level: float = 0.95) -> ThresholdUncertainty:
    """Bootstrap the validation set and choose the threshold again on each replicate.

    Args:
        y_true: Validation labels (0/1 or bool).
        y_score: Validation scores.
        method: ``"youden"``, ``"sensitivity"`` or ``"fixed"`` (as :func:`~medlib.stats.choose_threshold`).
        target: Target sensitivity, or the fixed threshold.
        groups: Patient id per row: patients are resampled instead of rows.
        n_boot: Bootstrap replicates.
        seed: Seed of the bootstrap.
        level: Level of the percentile interval of the thresholds.

    Returns:
        :class:`ThresholdUncertainty`; a fixed threshold does not move (every replicate equals it).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> y = np.r_[np.ones(30), np.zeros(30)]
        >>> tu = threshold_uncertainty(y, y + rng.normal(0, 1, 60), n_boot=200)
        >>> tu.lo < tu.value < tu.hi, tu.warning is None
        (True, True)
    """
    from medlib.stats.metrics import choose_threshold

    y, s = check_binary_scores(y_true, y_score)
    level = check_level(level)
    if method not in THRESHOLD_METHODS:
        raise ValueError(f"Unknown threshold method {method!r}. Available: {list(THRESHOLD_METHODS)}")
    frozen = choose_threshold(y, s, method=method, target=target).value
    weights = resample_weights(y, groups=groups, n_boot=n_boot, seed=seed)
    reps = weighted_thresholds(y, s, weights, method, target)
    finite = reps[np.isfinite(reps)]
    lo, hi = (np.quantile(finite, [0.5 - level / 2, 0.5 + level / 2]) if len(finite) else (math.nan, math.nan))
    n_events = int(np.sum(y == 1))
    n_patients = len(np.unique(np.asarray(groups))) if groups is not None else len(y)
    return ThresholdUncertainty(float(frozen), reps, float(lo), float(hi),
                                float(np.median(finite)) if len(finite) else math.nan, len(y), n_events,
                                n_patients, _boot_method(n_boot, groups), threshold_warning(n_events, method))


def threshold_warning(n_events: int, method: str) -> str | None:
    """The report's warning when a data-driven threshold rests on fewer than :data:`MIN_EVENTS` events."""
    if method == "fixed" or n_events >= MIN_EVENTS:
        return None
    return (f"The threshold was chosen on a validation set with only {n_events} event"
            f"{'' if n_events == 1 else 's'} (fewer than {MIN_EVENTS}): it is unstable, and the sensitivity, "
            f"specificity, PPV and NPV at it are uncertain beyond what their intervals can show.")


def _weighted_metrics(y: np.ndarray, s: np.ndarray, weights: np.ndarray, thresholds: np.ndarray
                      ) -> dict[str, np.ndarray]:
    """Operating metrics of every replicate (rows of ``weights``) at its own threshold."""
    pred = s[None, :] >= thresholds[:, None]
    w = weights.astype(np.float64)
    pos, neg = y[None, :] == 1, y[None, :] == 0
    tp, fp = (w * (pred & pos)).sum(1), (w * (pred & neg)).sum(1)
    tn, fn = (w * (~pred & neg)).sum(1), (w * (~pred & pos)).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"accuracy": (tp + tn) / (tp + tn + fp + fn), "sensitivity": tp / (tp + fn),
                "specificity": tn / (tn + fp), "ppv": tp / (tp + fp), "npv": tn / (tn + fn),
                "f1": 2 * tp / (2 * tp + fp + fn)}


def operating_metrics(y_true: Any, y_score: Any, threshold: float, *, validation: tuple[Any, Any] | None = None,
                      method: str = "youden", target: float | None = None, groups: Any | None = None,
                      validation_groups: Any | None = None, same_set: bool = False, n_boot: int = 1000,
                      seed: int = 0, level: float = 0.95) -> dict[str, Estimate]:
    """Accuracy, sensitivity, specificity, PPV, NPV and F1 at a frozen threshold, intervals carrying its uncertainty.

    Every replicate draws the validation set (``validation``: labels and scores) and the evaluation set; the
    threshold is chosen on the validation replicate by ``method`` and applied to the evaluation replicate. With
    ``same_set`` the evaluation set *is* the validation set, and one replicate serves both (the threshold is
    chosen and judged on the same resample). A ``"fixed"`` threshold, or no ``validation``, keeps the threshold
    and resamples the evaluation set only. Patients are resampled where ``groups`` are given.

    Returns:
        metric -> :class:`~medlib.stats.Estimate` (value at the frozen threshold, percentile interval); a metric
        with a zero denominator is NaN.
    """
    y, s = check_binary_scores(y_true, y_score)
    level = check_level(level)
    point = binary_metrics(y, s, float(threshold), level=level, n_boot=10)
    values = {"accuracy": point.accuracy.value, "sensitivity": point.sensitivity.value,
              "specificity": point.specificity.value, "ppv": point.ppv.value, "npv": point.npv.value,
              "f1": point.f1.value}
    w_eval = resample_weights(y, groups=groups, n_boot=n_boot, seed=seed)
    carried = method != "fixed" and (validation is not None or same_set)
    if not carried:
        reps_t = np.full(int(n_boot), float(threshold))
    elif same_set:
        reps_t = weighted_thresholds(y, s, w_eval, method, target)
    else:
        yv, sv = check_binary_scores(*validation)
        w_val = resample_weights(yv, groups=validation_groups, n_boot=n_boot, seed=seed + 7919)
        reps_t = weighted_thresholds(yv, sv, w_val, method, target)
    reps = _weighted_metrics(y, s, w_eval, reps_t)
    how = _boot_method(n_boot, groups) + ("; the threshold chosen again on each validation replicate"
                                         if carried else "")
    out = {}
    for name in OPERATING_METRICS:
        r = reps[name][np.isfinite(reps[name]) & np.isfinite(reps_t)]
        if math.isnan(values[name]) or not len(r):
            out[name] = Estimate(math.nan, math.nan, math.nan, how)
            continue
        lo, hi = np.quantile(r, [0.5 - level / 2, 0.5 + level / 2])
        out[name] = Estimate(float(values[name]), float(lo), float(hi), how)
    return out
