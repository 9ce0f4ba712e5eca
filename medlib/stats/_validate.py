"""Input checks shared by the statistics modules.

Every public function in :mod:`medlib.stats` calls these at its boundary, so error messages are the same
everywhere: they say what arrived and what was expected. Inputs are never modified; arrays are converted to
new NumPy arrays (or read-only views) and only read.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from medlib.schema import check_predictions


class UndefinedMetricWarning(UserWarning):
    """A statistic is undefined for the data given (e.g. an AUC with one class); NaN is returned.

    Mirrors scikit-learn's ``UndefinedMetricWarning`` but is a separate class: where :mod:`medlib.stats` wraps
    a scikit-learn call, scikit-learn's own warning is replaced by this one, in medlib's words.
    """


def as_1d(values: Any, name: str) -> np.ndarray:
    """Return ``values`` as a 1-D NumPy array, or raise ``ValueError`` naming the shape that arrived."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D with one value per case; got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty; at least one case is needed")
    return arr


def check_finite(values: Any, name: str) -> np.ndarray:
    """Return ``values`` as a 1-D float array; raise ``ValueError`` saying how many are NaN or infinite."""
    arr = as_1d(values, name)
    try:
        arr = arr.astype(np.float64, copy=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numeric; got dtype {arr.dtype}") from err
    bad = int(np.count_nonzero(~np.isfinite(arr)))
    if bad:
        raise ValueError(f"{name} has {bad} NaN or infinite value(s) out of {arr.size}; "
                         "remove or impute them before computing statistics")
    return arr


def check_labels(y_true: Any, name: str = "y_true") -> np.ndarray:
    """Return binary labels as an ``int8`` array of 0/1.

    Accepts bool or numbers equal to 0 and 1. Anything else (strings, 2, -1, NaN) raises ``ValueError``
    listing the values that arrived. A single class is allowed here; callers decide whether it is degenerate.
    """
    arr = as_1d(y_true, name)
    if arr.dtype == bool:
        return arr.astype(np.int8)
    uniq = _unique_preview(arr)
    if arr.dtype.kind not in "iuf" or not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name} must be binary (0/1 or bool); got values {uniq}")
    return arr.astype(np.int8)


def check_same_length(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Raise ``ValueError`` with both lengths when two per-case arrays differ in length."""
    if len(a) != len(b):
        raise ValueError(f"{name_a} and {name_b} must have one entry per case; "
                         f"got {len(a)} and {len(b)}")


def check_binary_scores(y_true: Any, y_score: Any, *, score_name: str = "y_score"
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Validate labels and scores together.

    Args:
        y_true: Binary labels (0/1 or bool), one per case.
        y_score: Finite numeric scores, one per case; higher means more likely positive.
        score_name: Name used for the scores in error messages.

    Returns:
        ``(y, s)``: ``int8`` labels and ``float64`` scores (new arrays or read-only use of the inputs).

    Raises:
        ValueError: Lengths differ (both are given), scores are not finite (the count is given), or labels
            are not binary (the values are given).
    """
    y = check_labels(y_true)
    s = check_finite(y_score, score_name)
    check_same_length(y, s, "y_true", score_name)
    return y, s


def check_probabilities(y_prob: Any, name: str = "y_prob") -> np.ndarray:
    """Return finite probabilities as floats; raise ``ValueError`` when any lies outside [0, 1]."""
    p = check_finite(y_prob, name)
    outside = int(np.count_nonzero((p < 0) | (p > 1)))
    if outside:
        raise ValueError(f"{name} must be probabilities in [0, 1]; {outside} value(s) lie outside "
                         f"(min {p.min():.6g}, max {p.max():.6g})")
    return p


def check_level(level: float) -> float:
    """Return the confidence level, or raise ``ValueError`` unless 0 < level < 1."""
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1 (e.g. 0.95); got {level!r}")
    return float(level)


def both_classes(y: np.ndarray, what: str) -> bool:
    """Return True when ``y`` holds both classes; otherwise warn ``UndefinedMetricWarning`` and return False."""
    n_pos = int(np.count_nonzero(y))
    if 0 < n_pos < len(y):
        return True
    present = "positive (1)" if n_pos else "negative (0)"
    warnings.warn(f"{what} is undefined when only one class is present (all {len(y)} cases are "
                  f"{present}); returning NaN", UndefinedMetricWarning, stacklevel=3)
    return False


#: fewer cases than this in a set and no statistic is reported for it
MIN_CASES = 5


def not_estimable(y_true: Any, what: str = "this statistic", *, min_cases: int = MIN_CASES) -> str | None:
    """Why a statistic cannot be given for these outcomes, as a sentence for the report; None when it can.

    A set with fewer than ``min_cases`` cases, with no event, or with only events gets this message in place
    of the number (never a crash, never ``NaN`` printed as a number).

    Example:
        >>> not_estimable([0, 0, 0, 0, 0, 0], "AUC")
        'AUC not estimable: no events (0 of 6 cases positive)'
        >>> not_estimable([1, 0, 1], "AUC")
        'AUC not estimable: fewer than 5 cases (n = 3)'
        >>> not_estimable([0, 1, 0, 1, 1]) is None
        True
    """
    y = np.asarray(y_true)
    n, events = len(y), int(np.count_nonzero(y == 1))
    if n < min_cases:
        return f"{what} not estimable: fewer than {min_cases} cases (n = {n})"
    if events == 0:
        return f"{what} not estimable: no events (0 of {n} cases positive)"
    if events == n:
        return f"{what} not estimable: one class only (all {n} cases positive)"
    return None


def _unique_preview(arr: np.ndarray, limit: int = 10) -> str:
    """Up to ``limit`` distinct values of ``arr`` as text, for error messages."""
    try:
        uniq = list(dict.fromkeys(arr.tolist()))
    except TypeError:
        uniq = [repr(v) for v in arr[:limit]]
    more = f" ... ({len(uniq)} distinct)" if len(uniq) > limit else ""
    return f"{uniq[:limit]}{more}"


def select_predictions(predictions: pd.DataFrame, set_name: str | None) -> pd.DataFrame:
    """Check the long predictions table (:func:`medlib.schema.check_predictions`) and keep one set if asked.

    Args:
        predictions: Long table with columns ``case_id, patient_id, model, set, y_true, score``.
        set_name: The set to keep (e.g. ``"test"``), or ``None`` for every set.

    Returns:
        The table (not copied) or its rows of ``set_name``.

    Raises:
        ValueError: The table breaks its contract, or no row belongs to ``set_name`` (the sets present are
            listed).
    """
    check_predictions(predictions)
    if set_name is None:
        return predictions
    sub = predictions[predictions["set"] == set_name]
    if sub.empty:
        raise ValueError(f"Unknown set {set_name!r}. Available: {sorted(map(str, predictions['set'].unique()))}")
    return sub
