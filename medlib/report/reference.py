"""Published results beside this run's: reference keys and the comparison table.

Reference numbers (``StudyConfig.reference``) use the key scheme ``<model label>.<metric>`` or
``<model label>.<set>_<metric>``:

* ``<model label>`` is the model's display name in the Predictions table (``ModelConfig.label``), e.g.
  ``ResNet18`` or ``Both views``; it may contain spaces but the metric is taken after the *last* dot.
* ``<metric>`` is one of ``auc, accuracy, sensitivity, specificity, precision, npv, f1`` (``recall`` means
  sensitivity, ``ppv`` means precision).
* ``<set>_`` (``train_``, ``val_``, ``test_``, ``external_``) picks the set; without it the primary set of
  the run is used (test, else external, else validation).

So ``ResNet18.accuracy: 0.919`` compares with this run's test-set accuracy of ResNet18, and
``Fused.train_auc: 0.968`` with the fused model's training-set AUC (when the training set was evaluated).

This run's numbers come from the numeric long table of :func:`medlib.report.tables.performance_values`,
never from a formatted table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import pandas as pd

from medlib.report.format import METRIC_ALIASES, METRICS, fmt_estimate, fmt_number, is_nan, level_text, set_label
from medlib.schema import PRIMARY_SET_ORDER
from medlib.schema import SETS as SET_ORDER

__all__ = ["ReferenceKey", "VALUE_COLUMNS", "parse_reference_key", "reference_comparison"]

#: the columns :func:`reference_comparison` needs from the numeric long table
VALUE_COLUMNS = ("model", "set", "metric", "value", "lo", "hi")


@dataclass(frozen=True)
class ReferenceKey:
    """A parsed reference key ``<model label>.[<set>_]<metric>``."""

    model: str
    metric: str
    set: str | None


def parse_reference_key(key: str) -> ReferenceKey:
    """Split ``"Both views.test_auc"`` into model ``"Both views"``, set ``"test"``, metric ``"auc"``.

    Args:
        key: a reference key (scheme in the module docstring).

    Returns:
        The model label, the metric (aliases resolved) and the set (None: the run's primary set).

    Raises:
        KeyError: no dot, or an unknown metric (the allowed ones are listed).

    Example:
        >>> parse_reference_key("Fused.train_auc")
        ReferenceKey(model='Fused', metric='auc', set='train')
    """
    if "." not in key:
        raise KeyError(f"reference key {key!r} must look like '<model label>.<metric>' or "
                       f"'<model label>.<set>_<metric>', e.g. 'ResNet18.accuracy' or 'Fused.test_auc'")
    model, metric = key.rsplit(".", 1)
    set_name = None
    prefix, _, rest = metric.partition("_")
    if rest and prefix in SET_ORDER:
        set_name, metric = prefix, rest
    metric = METRIC_ALIASES.get(metric.lower(), metric.lower())
    if metric not in METRICS:
        raise KeyError(f"reference key {key!r}: unknown metric {metric!r}. Available: "
                       f"{sorted(METRICS)} (aliases {sorted(METRIC_ALIASES)}), optionally prefixed by a set "
                       f"({', '.join(s + '_' for s in SET_ORDER)})")
    return ReferenceKey(model.strip(), metric, set_name)


def _check_values(values: pd.DataFrame) -> None:
    if not isinstance(values, pd.DataFrame):
        raise TypeError(f"values must be the DataFrame from performance_values; got {type(values).__name__}")
    missing = [c for c in VALUE_COLUMNS if c not in values.columns]
    if missing:
        raise ValueError(f"values must be the numeric long table from performance_values (columns "
                         f"{list(VALUE_COLUMNS)}); missing column(s) {missing} among {list(map(str, values.columns))}")


def _primary_set(values: pd.DataFrame) -> str | None:
    present = set(values["set"]) if len(values) else set()
    return next((s for s in PRIMARY_SET_ORDER if s in present), None)


def reference_comparison(values: pd.DataFrame, reference: Mapping[str, float], *, level: float = 0.95,
                         digits: int = 3) -> pd.DataFrame:
    """Published headline numbers beside this run's, one row per reference key.

    Args:
        values: the numeric long table from :func:`medlib.report.tables.performance_values` (columns
            ``model, set, metric, value, lo, hi``; others are ignored).
        reference: ``StudyConfig.reference``; keys as in the module docstring.
        level: the confidence level ``values`` were computed at (it titles the interval column).
        digits: decimals.

    Returns:
        Columns ``Model, Set, Metric, Reference, This run (95% CI), Difference, Reference in CI``.
        Difference is this run minus the reference. A model or set this run did not evaluate shows
        ``"not in this run"``. Empty (with these columns) when ``reference`` is empty.

    Raises:
        TypeError: ``values`` is not a DataFrame.
        ValueError: ``values`` lacks a numeric column (e.g. a formatted performance table was passed).
        KeyError: a malformed key or an unknown metric.
    """
    _check_values(values)
    primary = _primary_set(values)
    ci_col = f"This run ({level_text(level)})"
    columns = ["Model", "Set", "Metric", "Reference", ci_col, "Difference", "Reference in CI"]
    rows = []
    for key, ref in reference.items():
        k = parse_reference_key(key)
        set_name = k.set or primary or "test"
        hit = values[(values["model"].astype(str) == k.model) & (values["set"] == set_name)
                     & (values["metric"] == k.metric)]
        row = {"Model": k.model, "Set": set_label(set_name), "Metric": METRICS[k.metric],
               "Reference": fmt_number(ref, digits), ci_col: "not in this run", "Difference": "",
               "Reference in CI": ""}
        if len(hit):
            est = hit.iloc[0]
            row[ci_col] = fmt_estimate((est["value"], est["lo"], est["hi"]), digits)
            if not is_nan(est["value"]):
                row["Difference"] = f"{est['value'] - float(ref):+.{digits}f}"
            if not (is_nan(est["lo"]) or is_nan(est["hi"])):
                row["Reference in CI"] = "yes" if est["lo"] <= float(ref) <= est["hi"] else "no"
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)
