"""Precision-recall curves, average precision with a bootstrap interval, and a pointwise confidence band of the
ROC curve.

With an imbalanced outcome the ROC curve can look good while most positive calls are wrong; the precision-recall
curve shows that directly, and its chance level is the prevalence, not the diagonal.

- Average precision is scikit-learn's ``average_precision_score`` (AP = sum over thresholds of the recall gained
  times the precision there, no interpolation). Its interval is a stratified percentile bootstrap (cases
  resampled within each class, as the AUC's in :mod:`medlib.stats.bootstrap`). scikit-learn has no weighted
  replicate engine, so the replicates are computed here all at once from resampling counts; the tests check
  each replicate against ``average_precision_score`` of the resampled data.
- The ROC band is pointwise: at each false-positive rate of a grid, the percentile interval of the bootstrap
  replicates' sensitivities (vertical averaging, Fawcett 2006; the sensitivity at a false-positive rate is the
  highest reached at or below it). It is not a simultaneous band: it says how precise each point is, not where
  the whole curve lies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve

from medlib.stats._validate import both_classes, check_binary_scores, check_level
from medlib.stats.results import Estimate

_CHUNK_ELEMENTS = 2_000_000


def pr_curve(y_true: Any, y_score: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's ``precision_recall_curve`` after medlib's checks: ``(precision, recall, thresholds)``."""
    y, s = check_binary_scores(y_true, y_score)
    if not both_classes(y, "The precision-recall curve"):
        return np.array([math.nan]), np.array([math.nan]), np.array([])
    return precision_recall_curve(y, s)


def _resample_counts(rng: np.random.Generator, y: np.ndarray, b: int) -> np.ndarray:
    """``b x n`` draw counts: cases resampled with replacement within each class (a stratified bootstrap)."""
    counts = np.zeros((b, len(y)), dtype=np.int64)
    for cls in (0, 1):
        idx = np.flatnonzero(y == cls)
        k = len(idx)
        draws = rng.integers(0, k, size=(b, k)) + (np.arange(b) * k)[:, None]
        counts[:, idx] = np.bincount(draws.ravel(), minlength=b * k).reshape(b, k)
    return counts


def _order(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cases by descending score, and the last position of each run of tied scores."""
    order = np.argsort(-s, kind="mergesort")
    ss = s[order]
    ends = np.r_[np.flatnonzero(np.diff(ss) != 0), len(ss) - 1]
    return order, ends


def _cumulative(y: np.ndarray, s: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted true and false positives at each distinct threshold (descending), one row per replicate."""
    order, ends = _order(s)
    w = counts[:, order].astype(np.float64)
    tp = np.cumsum(w * y[order], axis=1)[:, ends]
    fp = np.cumsum(w * (1 - y[order]), axis=1)[:, ends]
    return tp, fp


def _ap_replicates(y: np.ndarray, s: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Average precision of each replicate (row of counts), as ``average_precision_score`` of resampled data."""
    tp, fp = _cumulative(y, s, counts)
    gain = np.diff(tp, axis=1, prepend=0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1e-300), 0.0)
        return np.sum(gain * precision, axis=1) / tp[:, -1]


def average_precision_ci(y_true: Any, y_score: Any, *, level: float = 0.95, n_boot: int = 2000,
                         seed: int = 0) -> Estimate:
    """Average precision (scikit-learn) with a stratified percentile bootstrap interval.

    Returns:
        :class:`~medlib.stats.Estimate`; NaN with an ``UndefinedMetricWarning`` when one class is present.

    Example:
        >>> est = average_precision_ci([0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.6], n_boot=200)
        >>> round(est.value, 4)
        0.9167
    """
    y, s = check_binary_scores(y_true, y_score)
    level = check_level(level)
    method = f"stratified bootstrap percentile, {int(n_boot)} replicates"
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be a positive number of replicates; got {n_boot!r}")
    if not both_classes(y, "Average precision"):
        return Estimate(math.nan, math.nan, math.nan, method)
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ELEMENTS // len(y))
    reps = np.concatenate([_ap_replicates(y, s, _resample_counts(rng, y, min(chunk, int(n_boot) - start)))
                           for start in range(0, int(n_boot), chunk)])
    lo, hi = np.quantile(reps, [0.5 - level / 2, 0.5 + level / 2])
    return Estimate(float(average_precision_score(y, s)), float(lo), float(hi), method)


@dataclass(frozen=True)
class RocBand:
    """A pointwise confidence band of the ROC curve on a grid of false-positive rates."""

    fpr: np.ndarray
    tpr: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    level: float
    method: str


def _tpr_at(y: np.ndarray, s: np.ndarray, counts: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Sensitivity at each false-positive rate of ``grid`` (highest reached at or below it), per replicate."""
    tp, fp = _cumulative(y, s, counts)
    out = np.empty((len(counts), len(grid)))
    for i in range(len(counts)):
        fpr = np.r_[0.0, fp[i] / fp[i, -1]]
        tpr = np.r_[0.0, tp[i] / tp[i, -1]]
        out[i] = np.maximum.accumulate(tpr)[np.searchsorted(fpr, grid + 1e-12, side="right") - 1]
    return out


def roc_band(y_true: Any, y_score: Any, *, level: float = 0.95, n_boot: int = 2000, seed: int = 0,
             points: int = 101) -> RocBand:
    """Pointwise percentile band of the ROC curve from a stratified bootstrap (see the module docstring).

    Returns:
        :class:`RocBand` on ``points`` equally spaced false-positive rates; NaN band for one class.
    """
    y, s = check_binary_scores(y_true, y_score)
    level = check_level(level)
    grid = np.linspace(0.0, 1.0, int(points))
    method = f"pointwise stratified bootstrap percentile band, {int(n_boot)} replicates (vertical averaging)"
    if not both_classes(y, "The ROC band"):
        nan = np.full(len(grid), math.nan)
        return RocBand(grid, nan, nan, nan, level, method)
    point = _tpr_at(y, s, np.ones((1, len(y)), dtype=np.int64), grid)[0]
    reps = _tpr_at(y, s, _resample_counts(np.random.default_rng(seed), y, int(n_boot)), grid)
    lo, hi = np.quantile(reps, [0.5 - level / 2, 0.5 + level / 2], axis=0)
    return RocBand(grid, point, lo, hi, level, method)
