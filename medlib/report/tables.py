"""Publication tables and the reporting checklist, assembled from the Predictions table and run metadata.

Nothing here computes new statistics: every number comes from :mod:`medlib.stats`; this module chooses,
formats and labels. Tables come back as DataFrames of display strings (``"0.842 (0.771–0.897)"``) that the
notebook shows as Markdown (``medlib.report.display.show_table``), so Quarto and pandoc make real tables of them.

Reference numbers (``StudyConfig.reference``) use the key scheme ``<model label>.<metric>`` or
``<model label>.<set>_<metric>``:

* ``<model label>`` is the model's display name in the Predictions table (``ModelConfig.label``), e.g.
  ``ResNet18`` or ``Both views``; it may contain spaces but the metric is taken after the *last* dot.
* ``<metric>`` is one of ``auc, accuracy, sensitivity, specificity, precision, npv, f1`` (``recall`` means
  sensitivity, ``ppv`` means precision).
* ``<set>_`` (``train_``, ``val_``, ``test_``, ``external_``) picks the set; without it the primary set of
  the performance table is used (test, else external, else validation).

So ``ResNet18.accuracy: 0.919`` compares with this run's test-set accuracy of ResNet18, and
``Fused.train_auc: 0.968`` with the fused model's training-set AUC (when the training set was evaluated).
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from medlib.stats import Estimate, Threshold, auc_ci, binary_metrics, calibration, choose_threshold, compare_models
from medlib.schema import PREDICTION_COLUMNS, SET_LABELS, check_predictions
from medlib.schema import SETS as SET_ORDER

N_BOOT = 2000  # bootstrap replicates for the F1 interval (medlib.stats.binary_metrics)

#: metric key -> column title of the performance table
METRICS = {"auc": "AUC", "accuracy": "Accuracy", "sensitivity": "Sensitivity", "specificity": "Specificity",
           "precision": "Precision", "npv": "NPV", "f1": "F1"}
METRIC_ALIASES = {"recall": "sensitivity", "ppv": "precision", "tpr": "sensitivity", "tnr": "specificity"}
AUTHOR = "author to complete"


# ------------------------------------------------------------------------------------------- formatting


def _is_nan(x: Any) -> bool:
    return x is None or (isinstance(x, (float, np.floating)) and math.isnan(x))


def fmt_number(x: Any, digits: int = 3) -> str:
    """A number with ``digits`` decimals; NaN or None as ``"NA"``."""
    return "NA" if _is_nan(x) else f"{float(x):.{digits}f}"


def fmt_estimate(est: Estimate | tuple[float, float, float], digits: int = 3) -> str:
    """``"0.842 (0.771–0.897)"``: a point estimate and its interval.

    The limits are joined by an en dash, or by ``" to "`` when a limit is negative (differences), so minus
    signs stay readable. A NaN value prints ``"NA"``; NaN limits print ``"0.842 (NA)"``.

    Args:
        est: an :class:`~medlib.stats.Estimate` (or anything with ``value, lo, hi``) or a ``(value, lo, hi)``
            tuple.
        digits: decimals.

    Example:
        >>> fmt_estimate(Estimate(0.8421, 0.7712, 0.8969, "DeLong"))
        '0.842 (0.771–0.897)'
        >>> fmt_estimate((-0.05, -0.12, 0.02))
        '-0.050 (-0.120 to 0.020)'
    """
    value, lo, hi = (est.value, est.lo, est.hi) if hasattr(est, "value") else est
    if _is_nan(value):
        return "NA"
    if _is_nan(lo) or _is_nan(hi):
        return f"{value:.{digits}f} (NA)"
    sep = " to " if min(lo, hi) < 0 else "–"
    return f"{value:.{digits}f} ({lo:.{digits}f}{sep}{hi:.{digits}f})"


def fmt_p(p: float, digits: int = 3) -> str:
    """A p-value for a table: ``"<0.001"`` below 0.001, else ``digits`` decimals; NaN as ``"NA"``.

    Example:
        >>> fmt_p(0.0271), fmt_p(0.00001), fmt_p(float("nan"))
        ('0.027', '<0.001', 'NA')
    """
    if _is_nan(p):
        return "NA"
    floor = 10.0 ** -digits
    return f"<{floor:.{digits}f}" if p < floor else f"{p:.{digits}f}"


def fmt_count_pct(k: int, n: int, digits: int = 1) -> str:
    """``"62 (33.7%)"``; ``"0 (NA)"`` when ``n`` is 0."""
    return f"{k} ({100 * k / n:.{digits}f}%)" if n else f"{k} (NA)"


def set_label(name: str) -> str:
    """Display name of a set (``"val"`` -> ``"Validation"``); unknown names unchanged."""
    return SET_LABELS.get(str(name), str(name))


def _level_text(level: float) -> str:
    return f"{100 * level:g}% CI"


# -------------------------------------------------------------------------------------------- checks


def _check_predictions(predictions: pd.DataFrame) -> None:
    check_predictions(predictions)


def _models(predictions: pd.DataFrame) -> list[str]:
    return [str(m) for m in pd.unique(predictions["model"])]


def _rows(predictions: pd.DataFrame, model: str, set_name: str) -> pd.DataFrame:
    return predictions[(predictions["model"].astype(str) == model) & (predictions["set"] == set_name)]


def _arrays(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return rows["y_true"].to_numpy(), rows["score"].to_numpy(dtype=np.float64)


# ----------------------------------------------------------------------------------------- thresholds


def _threshold_settings(config_threshold: Any) -> tuple[str, float | None]:
    if isinstance(config_threshold, Mapping):
        return str(config_threshold.get("method", "youden")), config_threshold.get("target")
    if hasattr(config_threshold, "method"):
        return str(config_threshold.method), getattr(config_threshold, "target", None)
    raise TypeError("config_threshold must be a ThresholdConfig or a mapping with 'method' and 'target'; "
                    f"got {type(config_threshold).__name__}")


def freeze_thresholds(predictions: pd.DataFrame, config_threshold: Any, *,
                      on_set: str = "val") -> dict[str, Threshold]:
    """Choose each model's operating threshold on one set (validation by default), to freeze for the others.

    Args:
        predictions: the long Predictions table.
        config_threshold: ``StudyConfig.threshold`` (``method``: youden, sensitivity or fixed; ``target``), or
            a mapping with those keys.
        on_set: the set the thresholds are chosen on.

    Returns:
        Model name -> :class:`~medlib.stats.Threshold`, in the order the models appear. A Youden or
        sensitivity threshold is NaN (with ``UndefinedMetricWarning``) when that set holds one class only.

    Raises:
        ValueError: missing columns, or a model with no rows in ``on_set`` (named, with the sets it has).
    """
    _check_predictions(predictions)
    method, target = _threshold_settings(config_threshold)
    out = {}
    for model in _models(predictions):
        rows = _rows(predictions, model, on_set)
        if rows.empty:
            has = sorted(map(str, pd.unique(predictions.loc[predictions["model"].astype(str) == model, "set"])))
            raise ValueError(f"model {model!r} has no rows in set {on_set!r}, so no threshold can be chosen on "
                             f"it; its sets: {has}")
        out[model] = choose_threshold(*_arrays(rows), method=method, target=target)
    return out


def _threshold_phrase(t: Threshold, on_set: str, frozen_for: str) -> str:
    where = f"the {set_label(on_set).lower()} set"
    if t.method == "fixed":
        return f"fixed at {t.target:g}, set in advance"
    if t.method == "youden":
        rule = f"Youden index on {where}"
    else:
        rule = f"highest threshold reaching sensitivity ≥ {t.target:g} on {where}"
    return f"{rule}, frozen for {frozen_for}"


def method_note(thresholds: Mapping[str, Threshold], *, on_set: str = "val", level: float = 0.95,
                n_boot: int = N_BOOT, sets: Sequence[str] | None = None) -> str:
    """One sentence naming every method behind the performance table.

    Args:
        thresholds: from :func:`freeze_thresholds`.
        on_set: the set the thresholds were chosen on.
        level: confidence level.
        n_boot: bootstrap replicates of the F1 interval.
        sets: the sets the table reports (e.g. ``study.eval_sets(prepared)``), named in the sentence; None
            says "the other sets".

    Example:
        >>> t = Threshold(0.41, "youden", None, "")
        >>> method_note({"cnn": t}, sets=("val", "test", "external"))  # doctest: +NORMALIZE_WHITESPACE
        'AUC with DeLong 95% CI; proportions (accuracy, sensitivity, specificity, precision, NPV) with Wilson
        95% CI; F1 with stratified bootstrap percentile 95% CI, 2000 replicates; threshold: Youden index on the
        validation set, frozen for the test and external sets. * Threshold chosen on these validation cases:
        their threshold metrics are optimistic.'
    """
    ci = _level_text(level)
    others = [str(x) for x in (sets or ()) if str(x) != on_set]
    frozen_for = f"the {' and '.join(others)} set{'s' if len(others) > 1 else ''}" if others else "the other sets"
    groups: dict[str, list[str]] = {}
    for model, t in thresholds.items():
        groups.setdefault(_threshold_phrase(t, on_set, frozen_for), []).append(str(model))
    undefined = [m for m, t in thresholds.items() if t.method != "fixed" and _is_nan(t.value)]
    if len(groups) == 1:
        threshold_text = next(iter(groups))
    else:
        threshold_text = "; ".join(f"{', '.join(ms)}: {phrase}" for phrase, ms in groups.items())
    if undefined:
        threshold_text += (f" (undefined for {', '.join(map(str, undefined))}: one class in the "
                           f"{set_label(on_set).lower()} set)")
    same = (f" * Threshold chosen on these {set_label(on_set).lower()} cases: their threshold metrics are "
            f"optimistic." if any(t.method != "fixed" for t in thresholds.values()) else "")
    return (f"AUC with DeLong {ci}; proportions (accuracy, sensitivity, specificity, precision, NPV) with "
            f"Wilson {ci}; F1 with stratified bootstrap percentile {ci}, {n_boot} replicates; "
            f"threshold: {threshold_text}.{same}")


# ----------------------------------------------------------------------------------------- performance


def performance_values(predictions: pd.DataFrame, thresholds: Mapping[str, Threshold], *,
                       sets: Sequence[str] = ("val", "test", "external"), level: float = 0.95) -> pd.DataFrame:
    """The numbers behind :func:`performance_table`, one row per model × set × metric.

    Returns:
        Columns ``model, set, n, positives, threshold, metric, value, lo, hi, method``. Sets a model has no
        rows in are skipped. With a NaN threshold the threshold metrics are NaN.

    Raises:
        ValueError: missing columns; KeyError: a model without a threshold.
    """
    _check_predictions(predictions)
    rows = []
    for model in _models(predictions):
        if model not in thresholds:
            raise KeyError(f"no threshold for model {model!r}. Thresholds given for: {sorted(thresholds)}")
        for set_name in sets:
            sub = _rows(predictions, model, set_name)
            if not sub.empty:
                rows += _model_set_rows(model, set_name, sub, thresholds[model], level)
    return pd.DataFrame(rows, columns=["model", "set", "n", "positives", "threshold", "metric", "value", "lo",
                                       "hi", "method"])


def _model_set_rows(model: str, set_name: str, sub: pd.DataFrame, t: Threshold, level: float) -> list[dict]:
    y, s = _arrays(sub)
    base = {"model": model, "set": set_name, "n": len(sub), "positives": int(np.sum(y == 1)),
            "threshold": t.value}
    estimates = {"auc": auc_ci(y, s, level=level, method="delong")}
    if not _is_nan(t.value):
        m = binary_metrics(y, s, t, level=level, n_boot=N_BOOT)
        estimates.update(accuracy=m.accuracy, sensitivity=m.sensitivity, specificity=m.specificity,
                         precision=m.ppv, npv=m.npv, f1=m.f1)
    out = []
    for key in METRICS:
        est = estimates.get(key, Estimate(math.nan, math.nan, math.nan, "undefined threshold"))
        out.append({**base, "metric": key, "value": est.value, "lo": est.lo, "hi": est.hi, "method": est.method})
    return out


def performance_table(predictions: pd.DataFrame, thresholds: Mapping[str, Threshold], *,
                      sets: Sequence[str] = ("val", "test", "external"), level: float = 0.95,
                      threshold_set: str = "val", digits: int = 3) -> pd.DataFrame:
    """Per model and set: n, AUC with DeLong CI and the threshold metrics with their CIs, as display strings.

    Columns: ``Model, Set, n (pos.), AUC (95% CI), Accuracy, Sensitivity, Specificity, Precision, NPV, F1,
    Threshold``. Proportions carry Wilson intervals and F1 a bootstrap interval (:func:`method_note` says so
    in words, and where the thresholds came from). The set the threshold was chosen on is marked with an
    asterisk: its threshold metrics are optimistic. The numeric values are kept as records in
    ``table.attrs["values"]`` (see :func:`performance_values`), which :func:`reference_comparison` reads.

    Args:
        predictions: the long Predictions table.
        thresholds: from :func:`freeze_thresholds`.
        sets: sets to report, in this order; sets absent from the data are skipped.
        level: confidence level.
        threshold_set: the set the thresholds were chosen on.
        digits: decimals.
    """
    values = performance_values(predictions, thresholds, sets=sets, level=level)
    ci = _level_text(level)
    rows = []
    for (model, set_name), grp in values.groupby(["model", "set"], sort=False):
        first = grp.iloc[0]
        t = thresholds[model]
        same_data = set_name == threshold_set and t.method != "fixed" and not _is_nan(t.value)
        row = {"Model": model, "Set": set_label(set_name) + ("*" if same_data else ""),
               "n (pos.)": f"{int(first['n'])} ({int(first['positives'])})"}
        for rec in grp.itertuples():
            title = f"AUC ({ci})" if rec.metric == "auc" else METRICS[rec.metric]
            row[title] = fmt_estimate((rec.value, rec.lo, rec.hi), digits)
        row["Threshold"] = fmt_number(t.value, digits)
        rows.append(row)
    columns = ["Model", "Set", "n (pos.)", f"AUC ({ci})", *list(METRICS.values())[1:], "Threshold"]
    table = pd.DataFrame(rows, columns=columns)
    table.attrs["values"] = values.to_dict("records")
    table.attrs["level"] = level
    return table


# -------------------------------------------------------------------------------- comparisons, calibration


def delong_table(predictions: pd.DataFrame, *, set_name: str, adjust: str | None = "holm",
                 digits: int = 3) -> pd.DataFrame:
    """Paired DeLong tests between every pair of models on one set, formatted.

    Columns: ``Model A, Model B, n, AUC A, AUC B, ΔAUC (95% CI), Z, p, Adjusted p (<method>)``; ΔAUC is
    AUC A − AUC B. Empty (with these columns) when the set has fewer than two models.

    Raises:
        ValueError: missing columns, an unknown set, or an unknown ``adjust``.
    """
    _check_predictions(predictions)
    raw = compare_models(predictions, adjust=adjust, set_name=set_name)
    adj = f"Adjusted p ({adjust.capitalize()})" if adjust else "Adjusted p (none)"
    columns = ["Model A", "Model B", "n", "AUC A", "AUC B", "ΔAUC (95% CI)", "Z", "p", adj]
    rows = [{"Model A": str(r.model_a), "Model B": str(r.model_b), "n": int(r.n_cases),
             "AUC A": fmt_number(r.auc_a, digits), "AUC B": fmt_number(r.auc_b, digits),
             "ΔAUC (95% CI)": fmt_estimate((r.diff, r.diff_lo, r.diff_hi), digits),
             "Z": fmt_number(r.z, 2), "p": fmt_p(r.p), adj: fmt_p(r.p_adjusted)} for r in raw.itertuples()]
    return pd.DataFrame(rows, columns=columns)


def calibration_table(predictions: pd.DataFrame, *, set_name: str, level: float = 0.95,
                      digits: int = 3) -> pd.DataFrame:
    """Brier score, calibration intercept and slope (with CIs) per model on one set.

    Scores must be probabilities of class 1. Intercept and slope follow Van Calster et al. (2016), computed
    by :func:`medlib.stats.calibration`; ideal values 0 and 1.

    Columns: ``Model, n, Brier, Intercept (95% CI), Slope (95% CI)``.

    Raises:
        ValueError: missing columns, an unknown set, or a model whose scores are not probabilities (named).
    """
    _check_predictions(predictions)
    sub = predictions[predictions["set"] == set_name]
    if sub.empty:
        raise ValueError(f"Unknown set {set_name!r}. Available: {sorted(map(str, predictions['set'].unique()))}")
    ci = _level_text(level)
    rows = []
    for model in _models(sub):
        y, s = _arrays(_rows(sub, model, set_name))
        try:
            cal = calibration(y, s, level=level)
        except ValueError as err:
            raise ValueError(f"model {model!r} on set {set_name!r}: {err}") from err
        rows.append({"Model": model, "n": cal.n, "Brier": fmt_number(cal.brier, digits),
                     f"Intercept ({ci})": fmt_estimate((cal.intercept, *cal.intercept_ci), digits),
                     f"Slope ({ci})": fmt_estimate((cal.slope, *cal.slope_ci), digits)})
    return pd.DataFrame(rows, columns=["Model", "n", "Brier", f"Intercept ({ci})", f"Slope ({ci})"])


# --------------------------------------------------------------------------------- reference comparison


@dataclass(frozen=True)
class ReferenceKey:
    """A parsed reference key ``<model label>.[<set>_]<metric>``."""

    model: str
    metric: str
    set: str | None


def parse_reference_key(key: str) -> ReferenceKey:
    """Split ``"Both views.test_auc"`` into model ``"Both views"``, set ``"test"``, metric ``"auc"``.

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


_ESTIMATE = re.compile(r"^\s*(-?[\d.]+)\s*\((-?[\d.]+)\s*(?:–|-| to )\s*(-?[\d.]+)\)")


def _values_from_table(our: pd.DataFrame) -> pd.DataFrame:
    """Numeric long table from a performance table: its attrs, a numeric table itself, or parsed strings."""
    if our.attrs.get("values") is not None:
        return pd.DataFrame(our.attrs["values"])
    if {"model", "set", "metric", "value"} <= set(our.columns):
        return our
    reverse = {v: k for k, v in SET_LABELS.items()}
    titles = {c: k for c in our.columns for k, title in METRICS.items()
              if c == title or (k == "auc" and str(c).startswith("AUC"))}
    rows = []
    for _, r in our.iterrows():
        for col, key in titles.items():
            m = _ESTIMATE.match(str(r[col]))
            value, lo, hi = (float(x) for x in m.groups()) if m else (math.nan,) * 3
            rows.append({"model": str(r["Model"]), "set": reverse.get(r["Set"], r["Set"]), "metric": key,
                         "value": value, "lo": lo, "hi": hi})
    return pd.DataFrame(rows, columns=["model", "set", "metric", "value", "lo", "hi"])


def _primary_set(values: pd.DataFrame) -> str | None:
    present = set(values["set"]) if len(values) else set()
    return next((s for s in ("test", "external", "val") if s in present), None)


def reference_comparison(our: pd.DataFrame, reference: Mapping[str, float], *, digits: int = 3) -> pd.DataFrame:
    """The seed paper's headline numbers beside this run's, one row per reference key.

    Args:
        our: the table from :func:`performance_table` (or :func:`performance_values`).
        reference: ``StudyConfig.reference``; keys as in the module docstring.
        digits: decimals.

    Returns:
        Columns ``Model, Set, Metric, Reference, This run (95% CI), Difference, Reference in CI``.
        Difference is this run minus the reference. A model or set this run did not evaluate shows
        ``"not in this run"``. Empty (with these columns) when ``reference`` is empty.

    Raises:
        KeyError: a malformed key or an unknown metric.
    """
    values = _values_from_table(our)
    primary = _primary_set(values)
    level = our.attrs.get("level", 0.95)
    ci_col = f"This run ({_level_text(level)})"
    columns = ["Model", "Set", "Metric", "Reference", ci_col, "Difference", "Reference in CI"]
    rows = []
    for key, ref in reference.items():
        k = parse_reference_key(key)
        set_name = k.set or primary or "test"
        hit = values[(values["model"].astype(str) == k.model) & (values["set"] == set_name)
                     & (values["metric"] == k.metric)] if len(values) else values
        row = {"Model": k.model, "Set": set_label(set_name), "Metric": METRICS[k.metric],
               "Reference": fmt_number(ref, digits), ci_col: "not in this run", "Difference": "",
               "Reference in CI": ""}
        if len(hit):
            est = hit.iloc[0]
            row[ci_col] = fmt_estimate((est["value"], est["lo"], est["hi"]), digits)
            if not _is_nan(est["value"]):
                row["Difference"] = f"{est['value'] - float(ref):+.{digits}f}"
            if not (_is_nan(est["lo"]) or _is_nan(est["hi"])):
                row["Reference in CI"] = "yes" if est["lo"] <= float(ref) <= est["hi"] else "no"
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------------------- cohort tables


def _split_with_y(split: pd.DataFrame, cohort_table: pd.DataFrame | None) -> pd.DataFrame:
    missing = [c for c in ("case_id", "patient_id", "set") if c not in split.columns]
    if missing:
        raise ValueError(f"split is missing column(s) {missing}; expected case_id, patient_id, set (and y)")
    if "y" in split.columns:
        return split
    if cohort_table is None or not {"case_id", "y"} <= set(cohort_table.columns):
        raise ValueError("split has no 'y' column; pass the cohort table (with case_id and y) as cohort_table")
    return split.merge(cohort_table[["case_id", "y"]], on="case_id", how="left", validate="1:1")


def _ordered_sets(names: Iterable[str]) -> list[str]:
    names = [str(n) for n in pd.unique(pd.Series(list(names), dtype=object))]
    return [s for s in SET_ORDER if s in names] + sorted(n for n in names if n not in SET_ORDER)


def split_summary(split: pd.DataFrame, cohort_table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Cases, patients and positives per set, with a total row.

    Args:
        split: one row per case with ``case_id, patient_id, set`` and ``y`` (1 = positive class).
        cohort_table: the cohort table, used for ``y`` when the split lacks it.

    Returns:
        Columns ``Set, Cases, Patients, Positive (%)``.
    """
    df = _split_with_y(split, cohort_table)
    rows = []
    for set_name in _ordered_sets(df["set"]):
        sub = df[df["set"] == set_name]
        rows.append({"Set": set_label(set_name), "Cases": len(sub), "Patients": int(sub["patient_id"].nunique()),
                     "Positive (%)": fmt_count_pct(int(sub["y"].sum()), len(sub))})
    rows.append({"Set": "Total", "Cases": len(df), "Patients": int(df["patient_id"].nunique()),
                 "Positive (%)": fmt_count_pct(int(df["y"].sum()), len(df))})
    return pd.DataFrame(rows, columns=["Set", "Cases", "Patients", "Positive (%)"])


def cohort_flow(cohort_table: pd.DataFrame, *, excluded: pd.DataFrame | Mapping[str, int] | None = None,
                split: pd.DataFrame | None = None) -> pd.DataFrame:
    """Flow of cases from the manifest to the sets: assessed, excluded (by reason), included, per set.

    Args:
        cohort_table: the included cases (``case_id, patient_id``; ``set`` if ``split`` is not given).
        excluded: excluded cases as a table with a ``reason`` column (and ``patient_id`` if known), or a
            mapping reason -> number of cases.
        split: the split (``case_id, patient_id, set``), for the per-set rows.

    Returns:
        Columns ``Step, Cases, Patients`` as display strings (patients blank where unknown).
    """
    for col in ("case_id", "patient_id"):
        if col not in cohort_table.columns:
            raise ValueError(f"cohort_table is missing column {col!r}")
    reasons, n_excl = _exclusions(excluded)
    n_in, p_in = len(cohort_table), int(cohort_table["patient_id"].nunique())
    rows = [("Assessed for eligibility", n_in + n_excl, "")]
    rows += [(f"Excluded: {reason}", n, p) for reason, n, p in reasons]
    rows.append(("Included", n_in, p_in))
    sets = split if split is not None else (cohort_table if "set" in cohort_table.columns else None)
    if sets is not None:
        for set_name in _ordered_sets(sets["set"]):
            sub = sets[sets["set"] == set_name]
            rows.append((f"{set_label(set_name)} set", len(sub), int(sub["patient_id"].nunique())))
    return pd.DataFrame([{"Step": s, "Cases": str(c), "Patients": str(p)} for s, c, p in rows],
                        columns=["Step", "Cases", "Patients"])


def _exclusions(excluded: Any) -> tuple[list[tuple[str, int, Any]], int]:
    if excluded is None:
        return [], 0
    if isinstance(excluded, Mapping):
        reasons = [(str(r), int(n), "") for r, n in excluded.items()]
        return reasons, sum(n for _, n, _ in reasons)
    if not isinstance(excluded, pd.DataFrame) or "reason" not in excluded.columns:
        raise ValueError("excluded must be a mapping reason -> count or a DataFrame with a 'reason' column")
    reasons = []
    for reason, grp in excluded.groupby("reason", sort=False):
        patients = int(grp["patient_id"].nunique()) if "patient_id" in grp.columns else ""
        reasons.append((str(reason), len(grp), patients))
    return reasons, len(excluded)


# ------------------------------------------------------------------------------------------ provenance


def _redact(text: str) -> str:
    """Replace the home folder, host name and user name in a provenance value (reports are public)."""
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


def _fmt_seconds(s: Any) -> str:
    if _is_nan(s):
        return "NA"
    s = float(s)
    if s < 60:
        return f"{s:.1f} s"
    minutes, sec = divmod(round(s), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min {sec} s" if hours else f"{minutes} min {sec} s"


_PROVENANCE_LABELS = {
    "medlib": "medlib version", "python": "Python", "git_commit": "Git commit", "git_dirty":
    "Uncommitted changes", "platform": "Platform", "machine": "Architecture", "cpu_count": "CPU count",
    "device": "Training device", "cuda_device": "CUDA device", "cohort_hash": "Cohort manifest sha256",
    "split_hash": "Split hash", "created_utc": "Created (UTC)",
}


def provenance_table(provenance: Mapping[str, Any]) -> pd.DataFrame:
    """The provenance dict (from ``medlib.runs.folder.collect_provenance``) as an ``Item, Value`` table.

    Nested mappings (packages, seeds, durations) become one row each; durations are shown in s/min/h.
    Values are scrubbed of the home folder, user name and host name.
    """
    if not isinstance(provenance, Mapping):
        raise TypeError(f"provenance must be a mapping; got {type(provenance).__name__}")
    rows = []
    for key, value in provenance.items():
        if key == "packages" and isinstance(value, Mapping):
            rows += [(f"{name} version", ver) for name, ver in value.items()]
        elif key == "seeds" and isinstance(value, Mapping):
            rows += [(f"Seed ({name})", seed) for name, seed in value.items()]
        elif key in ("durations_s", "durations") and isinstance(value, Mapping):
            rows += [(f"Duration ({name})", _fmt_seconds(sec)) for name, sec in value.items()]
        elif isinstance(value, Mapping):
            rows += [(f"{key}: {k}", v) for k, v in value.items()]
        else:
            if key == "git_dirty":
                value = {True: "yes", False: "no"}.get(value, "unknown")
            rows.append((_PROVENANCE_LABELS.get(key, str(key)), value))
    return pd.DataFrame([{"Item": _redact(str(k)), "Value": _redact(str(v))} for k, v in rows],
                        columns=["Item", "Value"])


# ------------------------------------------------------------------------------------ CLAIM 2024 checklist
#
# Tejani AS, Klontzas ME, Gatti AA, et al. Checklist for Artificial Intelligence in Medical Imaging (CLAIM):
# 2024 Update. Radiol Artif Intell 2024;6(4):e240300. doi:10.1148/ryai.240300. 44 items; the short texts
# below are our paraphrases, numbered and grouped as in the published checklist.


@dataclass(frozen=True)
class ChecklistItem:
    """One checklist item: its number, section, a short paraphrase, where the report answers it, and the
    key of the filler that answers it from the run (None: the author must answer it)."""

    number: int
    section: str
    topic: str
    where: tuple[str, ...] = ()
    fill: str | None = None
    needs_where: bool = False  # the answer is the referenced table/figure itself


_M, _R = "Methods", "Results"
CLAIM_2024: tuple[ChecklistItem, ...] = (
    ChecklistItem(1, "Title/Abstract", "Title says the study uses AI and names the kind of method", (), "ai_method"),
    ChecklistItem(2, "Title/Abstract", "Abstract summarises design, methods, results and conclusions"),
    ChecklistItem(3, "Introduction", "Scientific and clinical background; intended use and role of the AI"),
    ChecklistItem(4, "Introduction", "Aims, objectives and hypotheses"),
    ChecklistItem(5, f"{_M}: study design", "Prospective or retrospective design"),
    ChecklistItem(6, f"{_M}: study design", "Study goal (e.g. model development, feasibility, non-inferiority)",
                  (), "goal"),
    ChecklistItem(7, f"{_M}: data", "Where the data came from", ("@tbl-cohort",), "sources"),
    ChecklistItem(8, f"{_M}: data", "Inclusion and exclusion criteria", ("@tbl-cohort",), "eligibility"),
    ChecklistItem(9, f"{_M}: data", "Pre-processing of the data", (), "preprocessing"),
    ChecklistItem(10, f"{_M}: data", "How any subsets of the data were selected"),
    ChecklistItem(11, f"{_M}: data", "How the data were de-identified", (), "deidentification"),
    ChecklistItem(12, f"{_M}: data", "How missing data were handled", (), "missing"),
    ChecklistItem(13, f"{_M}: data", "Image acquisition protocol (equipment, parameters)", (), "acquisition"),
    ChecklistItem(14, f"{_M}: reference standard", "How the reference standard was defined and obtained", (),
                  "reference_standard"),
    ChecklistItem(15, f"{_M}: reference standard", "Why this reference standard was chosen"),
    ChecklistItem(16, f"{_M}: reference standard", "Who annotated, with what qualifications and preparation"),
    ChecklistItem(17, f"{_M}: reference standard", "How the test set was annotated"),
    ChecklistItem(18, f"{_M}: reference standard", "Inter- and intra-rater variability of the annotations"),
    ChecklistItem(19, f"{_M}: data partitions", "How data were assigned to partitions, with proportions",
                  ("@tbl-cohort",), "partitions"),
    ChecklistItem(20, f"{_M}: data partitions", "Level at which partitions are disjoint (patient, image, ...)",
                  ("@tbl-cohort",), "disjoint"),
    ChecklistItem(21, f"{_M}: testing data", "Intended sample size of the test data and its justification",
                  ("@tbl-cohort",), "sample_size"),
    ChecklistItem(22, f"{_M}: model", "Detailed model description (inputs, outputs, architecture)", (), "models"),
    ChecklistItem(23, f"{_M}: model", "Software libraries, frameworks and packages, with versions",
                  ("@tbl-provenance",), "software"),
    ChecklistItem(24, f"{_M}: model", "Initialisation of model parameters (random, transfer learning)", (),
                  "initialisation"),
    ChecklistItem(25, f"{_M}: training", "Training details: augmentation, hyperparameters, models trained",
                  ("@fig-learning",), "training"),
    ChecklistItem(26, f"{_M}: training", "How the final model was selected", ("@fig-learning",), "selection"),
    ChecklistItem(27, f"{_M}: training", "Ensembling, if any", (), "ensembling"),
    ChecklistItem(28, f"{_M}: evaluation", "Performance metrics", ("@tbl-performance",), "metrics"),
    ChecklistItem(29, f"{_M}: evaluation", "Statistical significance and uncertainty (e.g. CIs)",
                  ("@tbl-performance", "@tbl-delong"), "statistics"),
    ChecklistItem(30, f"{_M}: evaluation", "Robustness or sensitivity analyses"),
    ChecklistItem(31, f"{_M}: evaluation", "Explainability methods and how they were checked",
                  ("@fig-cam", "@tbl-cam-sanity"), "explainability"),
    ChecklistItem(32, f"{_M}: evaluation", "Evaluation on internal data", ("@tbl-performance",), "internal"),
    ChecklistItem(33, f"{_M}: evaluation", "Testing on external data", ("@tbl-performance",), "external"),
    ChecklistItem(34, f"{_M}: evaluation", "Clinical trial registration, if applicable"),
    ChecklistItem(35, f"{_R}: data", "Numbers of patients and examinations included and excluded",
                  ("@tbl-cohort",), "flow"),
    ChecklistItem(36, f"{_R}: data", "Demographic and clinical characteristics per partition",
                  ("@tbl-table1-set", "@tbl-table1-outcome"), "characteristics", needs_where=True),
    ChecklistItem(37, f"{_R}: model performance", "Performance metrics with statistical uncertainty",
                  ("@tbl-performance", "@fig-roc", "@tbl-delong", "@tbl-calibration", "@fig-dca"), "performance"),
    ChecklistItem(38, f"{_R}: model performance", "Diagnostic performance estimates and their precision",
                  ("@tbl-performance", "@fig-confusion"), "diagnostic"),
    ChecklistItem(39, f"{_R}: model performance", "Failure analysis of incorrect results",
                  ("@fig-cam", "@fig-confusion"), "failures", needs_where=True),
    ChecklistItem(40, "Discussion", "Limitations (bias, statistical uncertainty, generalisability)"),
    ChecklistItem(41, "Discussion", "Implications for practice, intended use and clinical role"),
    ChecklistItem(42, "Other information", "Reference to the full protocol or further technical details",
                  ("@tbl-provenance",), "protocol"),
    ChecklistItem(43, "Other information", "Availability of code, trained model and data",
                  ("@tbl-provenance",), "availability"),
    ChecklistItem(44, "Other information", "Funding and other support; role of funders"),
)


def _partitions(run: Mapping[str, Any]) -> list[dict[str, Any]]:
    parts = list(run.get("partitions") or [])
    order = {s: i for i, s in enumerate(SET_ORDER)}
    return sorted(parts, key=lambda p: order.get(str(p.get("set")), len(order)))


def _partition_text(p: Mapping[str, Any]) -> str:
    text = f"{set_label(p.get('set', '?'))} {p.get('cases', '?')} cases / {p.get('patients', '?')} patients"
    if p.get("positives") is not None and p.get("cases"):
        text += f", {int(p['positives'])} positive ({100 * int(p['positives']) / int(p['cases']):.1f}%)"
    return text


def _find_partition(run: Mapping[str, Any], *names: str) -> Mapping[str, Any] | None:
    parts = {str(p.get("set")): p for p in _partitions(run)}
    return next((parts[n] for n in names if n in parts), None)


def _model_names(run: Mapping[str, Any]) -> str:
    return ", ".join(str(m.get("label") or m.get("name")) for m in run.get("models") or [])


def _model_text(m: Mapping[str, Any]) -> str:
    parts = [f"registry name {m.get('name')}"]
    if m.get("parameters"):
        parts.append(f"{int(m['parameters']):,} parameters")
    if m.get("inputs"):
        parts.append(f"inputs: {', '.join(map(str, m['inputs']))}")
    return f"{m.get('label') or m.get('name')} ({'; '.join(parts)}); output: probability of the positive class"


def _versions(prov: Mapping[str, Any]) -> str:
    pk = prov.get("packages") or {}
    items = [f"medlib {prov['medlib']}"] if prov.get("medlib") else []
    items += [f"Python {prov['python']}"] if prov.get("python") else []
    items += [f"{k} {v}" for k, v in pk.items() if v != "not installed"]
    return ", ".join(items)


def _prov(run: Mapping[str, Any]) -> Mapping[str, Any]:
    return run.get("provenance") or {}


def _commit(run: Mapping[str, Any]) -> str:
    return str(_prov(run).get("git_commit", "unknown"))


def _claim_goal(run: Mapping[str, Any]) -> str | None:
    models = run.get("models") or []
    ext = " and external testing" if _find_partition(run, "external") else ""
    return f"Model development and comparison of {len(models)} model(s), with internal testing{ext}" \
        if models else None


def _claim_sources(run: Mapping[str, Any]) -> str | None:
    if not run.get("manifest"):
        return None
    text = f"Cohort manifest {run['manifest']}"
    if _prov(run).get("cohort_hash"):
        text += f" (sha256 {str(_prov(run)['cohort_hash'])[:12]}…)"
    cols = run.get("image_columns")
    return text + (f"; image inputs: {', '.join(map(str, cols))}" if cols else "")


def _claim_eligibility(run: Mapping[str, Any]) -> str | None:
    if run.get("n_cases") is None:
        return None
    return (f"{run['n_cases']} cases from {run.get('n_patients', '?')} patients; every manifest row passed "
            f"validation (label and all images present). Clinical eligibility criteria: {AUTHOR}")


def _claim_preprocessing(run: Mapping[str, Any]) -> str | None:
    pre = run.get("preprocessing") or {}
    if not pre:
        return None
    size = "×".join(map(str, pre.get("size") or [])) or "?"
    window = pre.get("window")
    window = f"window centre/width {window[0]:g}/{window[1]:g}" if window else "header VOI window or none"
    return (f"Resized to {size}; {window}; intensity normalisation {pre.get('normalize', '?')}; "
            "preprocessed once per image and cached")


def _claim_reference_standard(run: Mapping[str, Any]) -> str | None:
    if run.get("positive") is None:
        return None
    return f"Outcome: {run['positive']} (positive class) vs {run.get('negative', '?')}; how it was established: " \
        f"{AUTHOR}"


def _claim_partitions(run: Mapping[str, Any]) -> str | None:
    parts = "; ".join(_partition_text(p) for p in _partitions(run))
    return "; ".join(filter(None, [str(run.get("split") or "").rstrip(". "), parts])) or None


def _claim_disjoint(run: Mapping[str, Any]) -> str | None:
    if not run.get("split_hash"):
        return None
    return f"Patient level: every patient's cases lie in one set (checked); split hash {str(run['split_hash'])[:12]}"


def _claim_sample_size(run: Mapping[str, Any]) -> str | None:
    test = _find_partition(run, "test", "external")
    return None if test is None else f"{_partition_text(test)}; sample size justification: {AUTHOR}"


def _claim_initialisation(run: Mapping[str, Any]) -> str | None:
    models = run.get("models") or []
    if not models:
        return None
    inits = "; ".join(f"{m.get('label') or m.get('name')}: "
                      f"{'ImageNet-pretrained weights' if m.get('pretrained') else 'random initialisation'}"
                      for m in models)
    seed = (run.get("training") or {}).get("seed")
    return inits + (f" (seed {seed})" if seed is not None else "")


def _claim_training(run: Mapping[str, Any]) -> str | None:
    t = run.get("training") or {}
    if not t:
        return None
    lr = f"{t['lr']:g}" if isinstance(t.get("lr"), (int, float)) else "?"
    return (f"Optimizer {t.get('optimizer', '?')}, learning rate {lr}, up to {t.get('epochs', '?')} epochs, "
            f"batch size {t.get('batch_size', '?')}, loss {t.get('loss', '?')}, augmentation "
            f"{'on' if t.get('augment') else 'off'}, seed {t.get('seed', '?')}; one model trained per "
            f"configuration ({len(run.get('models') or [])})")


def _claim_selection(run: Mapping[str, Any]) -> str | None:
    t = run.get("training") or {}
    return (f"Weights of the epoch with the highest validation AUC (early stopping, patience "
            f"{t.get('patience', '?')} epochs)") if t else None


def _claim_internal(run: Mapping[str, Any]) -> str | None:
    method, test = run.get("threshold_method"), _find_partition(run, "test")
    parts = [f"threshold chosen on the validation set ({method}) and frozen"] if method else []
    parts += [f"held-out internal test set: {_partition_text(test)}"] if test is not None else []
    return "; ".join(parts) or None


def _claim_external(run: Mapping[str, Any]) -> str | None:
    ext = _find_partition(run, "external")
    if ext is not None:
        return f"External test set: {_partition_text(ext)}"
    return "No external test set in this run" if run.get("partitions") else None


def _claim_flow(run: Mapping[str, Any]) -> str | None:
    if run.get("n_cases") is None:
        return None
    parts = "; ".join(_partition_text(p) for p in _partitions(run))
    return f"{run['n_cases']} cases from {run.get('n_patients', '?')} patients included" + \
        (f": {parts}" if parts else "")


def _claim_performance(run: Mapping[str, Any]) -> str:
    sets = [set_label(p.get("set")).lower() for p in _partitions(run) if p.get("set") != "train"]
    if len(sets) > 1:
        where = f"{', '.join(sets[:-1])} and {sets[-1]} sets"
    else:
        where = f"{sets[0]} set" if sets else "evaluation sets"
    return f"All models on the {where} with 95% CIs; ROC curves, paired DeLong tests, calibration and decision curves"


def _claim_diagnostic(run: Mapping[str, Any]) -> str | None:
    th = run.get("thresholds") or {}
    if not th:
        return None
    return "Sensitivity, specificity and predictive values at the frozen thresholds: " + "; ".join(
        f"{m} {fmt_number((v or {}).get('value'))} ({(v or {}).get('method', '?')})" for m, v in th.items())


_CLAIM_FILLERS: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
    "ai_method": lambda run: f"Models compared: {_model_names(run)}" if run.get("models") else None,
    "goal": _claim_goal,
    "sources": _claim_sources,
    "eligibility": _claim_eligibility,
    "preprocessing": _claim_preprocessing,
    "deidentification": lambda run: f"{AUTHOR} (the report shows case ids only, no patient identifiers)",
    "missing": lambda run: ("Cases with a missing image, view or label are rejected when the manifest is "
                            "validated; no imputation"),
    "acquisition": lambda run: None,
    "reference_standard": _claim_reference_standard,
    "partitions": _claim_partitions,
    "disjoint": _claim_disjoint,
    "sample_size": _claim_sample_size,
    "models": lambda run: "; ".join(_model_text(m) for m in run.get("models") or []) or None,
    "software": lambda run: _versions(_prov(run)) or None,
    "initialisation": _claim_initialisation,
    "training": _claim_training,
    "selection": _claim_selection,
    "ensembling": lambda run: "None" if run.get("models") else None,
    "metrics": lambda run: ("AUC, accuracy, sensitivity, specificity, precision, NPV, F1; Brier score, "
                            "calibration intercept and slope; net benefit (decision curves)"),
    "statistics": lambda run: ("95% CIs: AUC by DeLong; proportions by Wilson; F1 by stratified bootstrap "
                               f"({N_BOOT} replicates); paired DeLong tests between models with Holm-adjusted "
                               "p-values"),
    "explainability": lambda run: run.get("explainability") or None,
    "internal": _claim_internal,
    "external": _claim_external,
    "flow": _claim_flow,
    "characteristics": lambda run: "Baseline characteristics by set and by outcome (Table 1)",
    "performance": _claim_performance,
    "diagnostic": _claim_diagnostic,
    "failures": lambda run: "Grad-CAM of true/false positive and negative cases, confusion matrices",
    "protocol": lambda run: ("Resolved configuration (config.yaml) and provenance (provenance.json) saved with "
                             f"the run; git commit {_commit(run)[:12]}"),
    "availability": lambda run: (f"Code: medlib {_prov(run).get('medlib', '?')}, git commit {_commit(run)}; "
                                 f"trained model and data: {AUTHOR}"),
}


def claim_checklist(run: Mapping[str, Any], *, labels: Iterable[str] | None = None) -> pd.DataFrame:
    """The CLAIM 2024 checklist (Tejani et al. 2024, 44 items), filled from the run where it can be.

    Args:
        run: the run's metadata as plain data (``medlib.pipelines.study.run_summary``): ``title, manifest,
            image_columns, positive, negative, n_cases, n_patients, partitions`` (list of ``set, cases,
            patients, positives``), ``split, split_hash, preprocessing, models`` (list of ``name, label,
            parameters, pretrained, inputs``), ``training, thresholds, threshold_method, explainability,
            provenance``. Missing keys leave their items to the author.
        labels: the Quarto labels this report has (``"tbl-performance"`` or ``"@tbl-performance"``);
            references to other labels are dropped, and an item answered only by a missing table goes back
            to the author. None: every standard label is assumed present.

    Returns:
        44 rows with columns ``item, section, topic, where, value``; ``value`` is ``"author to complete"``
        (or starts with it) where the software cannot know the answer.
    """
    if not isinstance(run, Mapping):
        raise TypeError(f"run must be a mapping of run metadata; got {type(run).__name__}")
    present = None if labels is None else {"@" + str(x).lstrip("@") for x in labels}
    rows = []
    for it in CLAIM_2024:
        where = [w for w in it.where if present is None or w in present]
        value = _CLAIM_FILLERS[it.fill](run) if it.fill else None
        if it.needs_where and not where:
            value = None
        rows.append({"item": it.number, "section": it.section, "topic": it.topic,
                     "where": ", ".join(where) if where else ("" if value else "manuscript"),
                     "value": _redact(value) if value else AUTHOR})
    return pd.DataFrame(rows, columns=["item", "section", "topic", "where", "value"])
