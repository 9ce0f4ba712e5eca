"""How report tables write numbers: estimates with intervals, p-values, counts, durations, set names, plurals.

Every table and checklist of :mod:`medlib.report` formats through these functions, so a number reads the same
everywhere (``"0.842 (0.771–0.897)"``, ``"<0.001"``, ``"62 (33.7%)"``) and NaN always prints ``"NA"``.
Set names come from :func:`medlib.schema.set_label` (``"val"`` -> ``"Validation"``).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Sequence

import numpy as np

from medlib.schema import set_label
from medlib.stats import Estimate, not_estimable

__all__ = ["AUTHOR", "METRICS", "METRIC_ALIASES", "NOT_RECORDED", "N_BOOT", "fmt_count_pct", "fmt_estimate",
           "fmt_number", "fmt_p", "fmt_seconds", "is_nan", "join_words", "level_text", "not_estimable", "plural", "redact",
           "set_label", "set_title", "TUNING_SETS"]

#: metric key -> column title of the performance table (and the metric names of reference keys)
METRICS = {"auc": "AUC", "accuracy": "Accuracy", "sensitivity": "Sensitivity", "specificity": "Specificity",
           "precision": "Precision", "npv": "NPV", "f1": "F1"}
#: other names accepted for a metric in reference keys
METRIC_ALIASES = {"recall": "sensitivity", "ppv": "precision", "tpr": "sensitivity", "tnr": "specificity"}
#: bootstrap replicates of the F1 interval (``medlib.stats.binary_metrics``), as the performance table uses them
N_BOOT = 2000
#: what a checklist says where only the author can answer
AUTHOR = "author to complete"
#: what a report says where the run summary lacks a value
NOT_RECORDED = "not recorded in this run"
#: sets that chose something (the epoch by early stopping, the model, the threshold, the recalibration): every
#: table and figure names them "tuning sets", and no headline number comes from them
TUNING_SETS = ("val",)


def set_title(name: Any, tuning: Sequence[str] = TUNING_SETS) -> str:
    """A set's name as every table and figure shows it: a tuning set says so.

    Example:
        >>> set_title("val"), set_title("test"), set_title("train")
        ('Validation (tuning set)', 'Test', 'Training (fitting set)')
    """
    label = set_label(name)
    if str(name) in tuning:
        return f"{label} (tuning set)"
    if str(name) == "train":
        return f"{label} (fitting set)"
    return label


def is_nan(x: Any) -> bool:
    """True for None and float NaN (the values a table prints as ``"NA"``)."""
    return x is None or (isinstance(x, (float, np.floating)) and math.isnan(x))


def fmt_number(x: Any, digits: int = 3) -> str:
    """A number with ``digits`` decimals; NaN or None as ``"NA"``."""
    return "NA" if is_nan(x) else f"{float(x):.{digits}f}"


def fmt_estimate(est: Estimate | tuple[float, float, float], digits: int = 3) -> str:
    """``"0.842 (0.771–0.897)"``: a point estimate and its interval.

    The limits are joined by an en dash, or by ``" to "`` when a limit is negative (differences), so minus
    signs stay readable. A NaN value prints ``"NA"``; NaN limits print ``"0.842 (NA)"``.

    Args:
        est: an :class:`~medlib.stats.Estimate` (or anything with ``value, lo, hi``) or a ``(value, lo, hi)``
            tuple.
        digits: decimals.

    Returns:
        The formatted estimate.

    Example:
        >>> fmt_estimate(Estimate(0.8421, 0.7712, 0.8969, "DeLong"))
        '0.842 (0.771–0.897)'
        >>> fmt_estimate((-0.05, -0.12, 0.02))
        '-0.050 (-0.120 to 0.020)'
    """
    value, lo, hi = (est.value, est.lo, est.hi) if hasattr(est, "value") else est
    if is_nan(value):
        return "NA"
    if is_nan(lo) or is_nan(hi):
        return f"{value:.{digits}f} (NA)"
    sep = " to " if min(lo, hi) < 0 else "–"
    return f"{value:.{digits}f} ({lo:.{digits}f}{sep}{hi:.{digits}f})"


def fmt_p(p: float, digits: int = 3) -> str:
    """A p-value for a table: ``"<0.001"`` below 0.001, else ``digits`` decimals; NaN as ``"NA"``.

    Example:
        >>> fmt_p(0.0271), fmt_p(0.00001), fmt_p(float("nan"))
        ('0.027', '<0.001', 'NA')
    """
    if is_nan(p):
        return "NA"
    floor = 10.0 ** -digits
    return f"<{floor:.{digits}f}" if p < floor else f"{p:.{digits}f}"


def fmt_count_pct(k: int, n: int, digits: int = 1) -> str:
    """``"62 (33.7%)"``; ``"0 (NA)"`` when ``n`` is 0."""
    return f"{k} ({100 * k / n:.{digits}f}%)" if n else f"{k} (NA)"


def fmt_seconds(s: Any) -> str:
    """A duration: ``"12.3 s"`` under a minute, else ``"2 min 5 s"`` or ``"1 h 2 min 5 s"``; NaN as ``"NA"``.

    Example:
        >>> fmt_seconds(12.34), fmt_seconds(3725)
        ('12.3 s', '1 h 2 min 5 s')
    """
    if is_nan(s):
        return "NA"
    s = float(s)
    if s < 60:
        return f"{s:.1f} s"
    minutes, sec = divmod(round(s), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min {sec} s" if hours else f"{minutes} min {sec} s"


def level_text(level: float) -> str:
    """``"95% CI"`` for ``level=0.95``."""
    return f"{100 * level:g}% CI"


def plural(n: int, singular: str, plural_form: str | None = None, *, thousands: bool = False) -> str:
    """``"1 parameter"``, ``"2 parameters"``: a count with its noun in the right number.

    Args:
        n: the count.
        singular: the noun for one.
        plural_form: the noun for several (default: ``singular + "s"``).
        thousands: write the count with thousands separators (``"11,177,538"``).

    Example:
        >>> plural(1, "parameter"), plural(11177538, "parameter", thousands=True), plural(2, "patient")
        ('1 parameter', '11,177,538 parameters', '2 patients')
    """
    count = f"{int(n):,}" if thousands else f"{int(n)}"
    return f"{count} {singular if int(n) == 1 else (plural_form or singular + 's')}"


def join_words(words: Sequence[str]) -> str:
    """``"a"``, ``"a and b"``, ``"a, b and c"``.

    Example:
        >>> join_words(["validation", "test", "external test"])
        'validation, test and external test'
    """
    words = [str(w) for w in words]
    return f"{', '.join(words[:-1])} and {words[-1]}" if len(words) > 1 else "".join(words)


def redact(text: str) -> str:
    """Replace the home folder, host name and user name in a value bound for a report (reports are public)."""
    import getpass
    import socket
    from pathlib import Path

    pairs = [(str(Path.home()), "~")]
    with contextlib.suppress(Exception):
        pairs.append((socket.gethostname(), "<host>"))
    with contextlib.suppress(Exception):
        pairs.append((getpass.getuser(), "<user>"))
    for secret, token in pairs:
        if secret and len(secret) >= 3 and secret not in ("root", "/"):
            text = text.replace(secret, token)
    return text
