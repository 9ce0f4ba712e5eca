"""Confusion-matrix metrics with confidence intervals, and operating thresholds.

Convention: a case is called **positive when its score >= threshold**. Thresholds are chosen on validation
data (:func:`choose_threshold`) and then frozen and applied unchanged to the test set
(:func:`binary_metrics`); choosing and evaluating on the same data overstates performance.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from medlib.stats._validate import UndefinedMetricWarning, both_classes, check_binary_scores, check_level
from medlib.stats.results import Estimate
from medlib.stats.roc import roc_curve

WILSON_METHOD = "Wilson score interval (Wilson 1927)"
THRESHOLD_METHODS = ("youden", "sensitivity", "fixed")


def wilson_ci(successes: int, n: int, *, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927; Newcombe 1998, method 3).

    statsmodels' ``proportion_confint(successes, n, alpha=1 - level, method="wilson")``, which equals R's
    ``prop.test(x, n, correct = FALSE)$conf.int``. This wrapper checks the counts, returns NaN for ``n == 0``
    and makes the limits exactly 0 when ``successes == 0`` and exactly 1 when ``successes == n`` (the
    formula gives them only up to rounding).

    Args:
        successes: Number of successes (0 <= successes <= n).
        n: Number of trials.
        level: Confidence level.

    Returns:
        ``(lo, hi)``; ``(nan, nan)`` with an ``UndefinedMetricWarning`` when ``n == 0``.

    Raises:
        ValueError: Counts that are not whole numbers, negative, or ``successes > n``.

    Example:
        >>> [round(v, 7) for v in wilson_ci(7, 50)]
        [0.0695083, 0.2618619]
    """
    k, n = _count(successes, "successes"), _count(n, "n")
    if k > n:
        raise ValueError(f"successes must not exceed n; got successes={k}, n={n}")
    level = check_level(level)
    if n == 0:
        warnings.warn("a proportion with n = 0 is undefined; returning NaN", UndefinedMetricWarning,
                      stacklevel=2)
        return math.nan, math.nan
    lo, hi = proportion_confint(k, n, alpha=1 - level, method="wilson")
    return (0.0 if k == 0 else float(lo)), (1.0 if k == n else float(hi))


def _count(value: Any, name: str) -> int:
    """A non-negative whole number, or ``ValueError`` saying what arrived."""
    if isinstance(value, bool) or not float(value).is_integer() or value < 0:
        raise ValueError(f"{name} must be a non-negative whole number; got {value!r}")
    return int(value)


# ------------------------------------------------------------------------------------------- Thresholds


@dataclass(frozen=True)
class Threshold:
    """An operating threshold and where it came from.

    Attributes:
        value: Scores >= value are called positive.
        method: ``"youden"``, ``"sensitivity"`` or ``"fixed"``.
        target: Target sensitivity, or the fixed value; ``None`` for Youden.
        description: One sentence for the report, e.g. "Youden index maximised on validation data ...".
    """

    value: float
    method: str
    target: float | None
    description: str


def choose_threshold(y_true: Any, y_score: Any, *, method: str = "youden",
                     target: float | None = None) -> Threshold:
    """Choose an operating threshold on validation data, to be frozen for the test set.

    * ``"youden"``: maximises Youden's J = sensitivity + specificity - 1 (Youden 1950) over the observed
      scores; among ties the highest threshold (the most specific) is taken. pROC ``coords(best.method =
      "youden")`` picks midpoints between scores instead; here the threshold is an observed score.
    * ``"sensitivity"``: the highest threshold whose sensitivity is >= ``target`` (so specificity is as high
      as the target allows).
    * ``"fixed"``: ``target`` itself (e.g. 0.5 for MedMNIST's protocol); the data are only validated.

    Args:
        y_true: Validation labels (0/1 or bool).
        y_score: Validation scores.
        method: One of ``"youden"``, ``"sensitivity"``, ``"fixed"``.
        target: Target sensitivity in (0, 1] or the fixed threshold; not used by Youden.

    Returns:
        A frozen :class:`Threshold`; value NaN (with an ``UndefinedMetricWarning``) for Youden or sensitivity
        when only one class is present.

    Raises:
        ValueError: Bad inputs, unknown method, or a missing / out-of-range target.

    Example:
        >>> t = choose_threshold([0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.6])
        >>> t.value, t.description
        (0.35, 'Youden index maximised on validation data (J = 0.667; sensitivity 1.000, specificity 0.667 there)')
    """
    y, s = check_binary_scores(y_true, y_score)
    if method not in THRESHOLD_METHODS:
        raise ValueError(f"Unknown threshold method {method!r}. Available: {list(THRESHOLD_METHODS)}")
    _check_target(method, target)
    if method == "fixed":
        return Threshold(float(target), "fixed", float(target), f"fixed threshold {target:g}, set in advance")
    if not both_classes(y, "A data-driven threshold"):
        return Threshold(math.nan, method, target, f"undefined: one class in the validation data ({method})")
    fpr, tpr, thr = roc_curve(y, s)
    fpr, tpr, thr = fpr[1:], tpr[1:], thr[1:]  # drop the +inf point
    if method == "youden":
        i = int(np.argmax(tpr - fpr))
        text = f"Youden index maximised on validation data (J = {tpr[i] - fpr[i]:.3f}; "
    else:
        i = int(np.argmax(tpr >= target))
        text = f"highest threshold with sensitivity >= {target:g} on validation data ("
    text += f"sensitivity {tpr[i]:.3f}, specificity {1 - fpr[i]:.3f} there)"
    return Threshold(float(thr[i]), method, None if target is None else float(target), text)


def _check_target(method: str, target: float | None) -> None:
    if method == "youden" and target is not None:
        raise ValueError(f"method='youden' takes no target; got target={target!r}")
    if method == "sensitivity" and (target is None or not 0.0 < float(target) <= 1.0):
        raise ValueError(f"method='sensitivity' needs a target sensitivity in (0, 1]; got {target!r}")
    if method == "fixed" and (target is None or not math.isfinite(float(target))):
        raise ValueError(f"method='fixed' needs the threshold as a finite target; got {target!r}")


# ---------------------------------------------------------------------------------------------- Metrics


@dataclass(frozen=True)
class BinaryMetrics:
    """Confusion counts at a frozen threshold and the metrics derived from them, each with a CI."""

    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int
    accuracy: Estimate
    sensitivity: Estimate
    specificity: Estimate
    ppv: Estimate
    npv: Estimate
    f1: Estimate
    balanced_accuracy: Estimate

    def to_frame(self) -> pd.DataFrame:
        """Tidy table with columns ``metric, value, lo, hi, method``, one row per metric."""
        rows = [{"metric": f.name, **vars(getattr(self, f.name))} for f in fields(self)
                if isinstance(getattr(self, f.name), Estimate)]
        return pd.DataFrame(rows, columns=["metric", "value", "lo", "hi", "method"])


def binary_metrics(y_true: Any, y_score: Any, threshold: float | Threshold, *, level: float = 0.95,
                   n_boot: int = 2000, seed: int = 0) -> BinaryMetrics:
    """Accuracy, sensitivity, specificity, PPV, NPV, F1 and balanced accuracy at a threshold, with CIs.

    Scores >= threshold are positive. Proportions get Wilson intervals (Wilson 1927). F1 and balanced
    accuracy get stratified percentile bootstrap intervals: resampling cases within each true class is
    exactly binomial resampling of the correct calls (TP ~ Bin(P, TP/P), TN ~ Bin(N, TN/N)), so all
    replicates are drawn at once.

    Args:
        y_true: Labels (0/1 or bool), typically of the test set.
        y_score: Scores of the same cases.
        threshold: A number or a :class:`Threshold` chosen on validation data.
        level: Confidence level.
        n_boot: Bootstrap replicates for F1 and balanced accuracy.
        seed: Seed of the bootstrap.

    Returns:
        :class:`BinaryMetrics`. A metric with a zero denominator (e.g. sensitivity with no positives) is NaN
        with an ``UndefinedMetricWarning``.

    Raises:
        ValueError: Bad inputs or a non-finite threshold.

    Example:
        >>> m = binary_metrics([0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.6], 0.5)
        >>> (m.tp, m.fp, m.tn, m.fn), round(m.sensitivity.value, 3), round(m.specificity.value, 3)
        ((2, 0, 3, 1), 0.667, 1.0)
    """
    y, s = check_binary_scores(y_true, y_score)
    t = float(threshold.value if isinstance(threshold, Threshold) else threshold)
    if not math.isfinite(t):
        raise ValueError(f"threshold must be a finite number; got {t!r}")
    level = check_level(level)
    pred = s >= t
    tp, fp = int(np.sum(pred & (y == 1))), int(np.sum(pred & (y == 0)))
    tn, fn = int(np.sum(~pred & (y == 0))), int(np.sum(~pred & (y == 1)))
    props = {name: _wilson_estimate(k, n, level) for name, (k, n) in {
        "accuracy": (tp + tn, len(y)), "sensitivity": (tp, tp + fn), "specificity": (tn, tn + fp),
        "ppv": (tp, tp + fp), "npv": (tn, tn + fn)}.items()}
    f1, bal = _bootstrap_f1_balanced(tp, fp, tn, fn, level, n_boot, seed)
    return BinaryMetrics(t, tp, fp, tn, fn, f1=f1, balanced_accuracy=bal, **props)


def _wilson_estimate(k: int, n: int, level: float) -> Estimate:
    lo, hi = wilson_ci(k, n, level=level)
    return Estimate(k / n if n else math.nan, lo, hi, WILSON_METHOD)


def _f1_bal(tp: Any, fp: Any, tn: Any, fn: Any) -> tuple[Any, Any]:
    """F1 and balanced accuracy from counts (scalars or arrays); NaN where undefined."""
    with np.errstate(invalid="ignore", divide="ignore"):
        tp, fp, tn, fn = (np.asarray(v, dtype=np.float64) for v in (tp, fp, tn, fn))
        f1 = 2 * tp / (2 * tp + fp + fn)
        bal = (tp / (tp + fn) + tn / (tn + fp)) / 2
    return f1, bal


def _bootstrap_f1_balanced(tp: int, fp: int, tn: int, fn: int, level: float, n_boot: int,
                           seed: int) -> tuple[Estimate, Estimate]:
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be a positive number of replicates; got {n_boot!r}")
    method = f"stratified bootstrap percentile, {int(n_boot)} replicates"
    pos, neg = tp + fn, tn + fp
    rng = np.random.default_rng(seed)
    tp_b = rng.binomial(pos, tp / pos if pos else 0.0, size=int(n_boot))
    tn_b = rng.binomial(neg, tn / neg if neg else 0.0, size=int(n_boot))
    points = _f1_bal(tp, fp, tn, fn)
    reps = _f1_bal(tp_b, neg - tn_b, tn_b, pos - tp_b)
    counts = f"tp={tp}, fp={fp}, tn={tn}, fn={fn}"
    f1, bal = (_percentile_estimate(name, float(point), rep, level, method, counts)
               for name, point, rep in zip(("F1", "balanced accuracy"), points, reps))
    return f1, bal


def _percentile_estimate(name: str, point: float, reps: np.ndarray, level: float, method: str,
                         counts: str) -> Estimate:
    """Point value with a percentile interval; NaN and a warning when the point value is undefined."""
    if math.isnan(point):
        warnings.warn(f"{name} is undefined for these counts ({counts}); returning NaN",
                      UndefinedMetricWarning, stacklevel=4)
        return Estimate(math.nan, math.nan, math.nan, method)
    lo, hi = np.nanquantile(reps, [0.5 - level / 2, 0.5 + level / 2])
    return Estimate(point, float(lo), float(hi), method)


def metrics_table(results: Mapping[str, BinaryMetrics]) -> pd.DataFrame:
    """Stack several :class:`BinaryMetrics` (keyed by model name) into one tidy table.

    Args:
        results: Model name -> metrics.

    Returns:
        Columns ``model, threshold, metric, value, lo, hi, method``.

    Example:
        >>> m = binary_metrics([0, 0, 1, 1], [0.1, 0.6, 0.7, 0.8], 0.5)
        >>> metrics_table({"cnn": m})[["model", "metric", "value"]].head(2)
          model       metric  value
        0   cnn     accuracy   0.75
        1   cnn  sensitivity   1.00
    """
    frames = []
    for name, res in results.items():
        frame = res.to_frame()
        frame.insert(0, "threshold", res.threshold)
        frame.insert(0, "model", name)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
