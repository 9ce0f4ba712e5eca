"""Publication tables from the Predictions table and run metadata: frozen thresholds, performance, DeLong,
calibration, split summary, cohort flow and provenance.

Nothing here computes new statistics: every number comes from :mod:`medlib.stats`; this module chooses,
formats (:mod:`medlib.report.format`) and labels. :func:`performance_values` gives the numbers as a long table
(what ``metrics.json`` and :func:`~medlib.report.reference.reference_comparison` read); the other tables come
back as DataFrames of display strings (``"0.842 (0.771–0.897)"``) that the notebook shows as Markdown
(``medlib.report.display.show_table``), so Quarto and pandoc make real tables of them.

The reference comparison (:mod:`medlib.report.reference`), the CLAIM checklist (:mod:`medlib.report.checklist`)
and the formatting helpers are re-exported here, so ``from medlib.report import tables as report`` reaches every
table a notebook shows.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from medlib.report.calibration_tables import calibration_table, recalibration_note, recalibration_table
from medlib.report.checklist import AUTHOR, CLAIM_2024, ChecklistItem, claim_checklist
from medlib.report.format import (METRIC_ALIASES, METRICS, N_BOOT, TUNING_SETS, fmt_count_pct, fmt_estimate,
                                  fmt_number, fmt_p, fmt_seconds, is_nan, level_text, not_estimable, redact, set_label,
                                  set_title)
from medlib.report.reference import ReferenceKey, parse_reference_key, reference_comparison
from medlib.schema import EVALUATION_SETS, FrozenThreshold, check_predictions, ordered_sets
from medlib.stats import (Estimate, Threshold, auc_ci, compare_models, operating_metrics,
                          threshold_uncertainty, threshold_warning)

#: bootstrap replicates of the threshold metrics' intervals (threshold re-chosen on each validation replicate)
N_BOOT_OPERATING = 1000
#: a model's frozen threshold (``medlib.pipelines.record.freeze_thresholds``; ``medlib.stats.Threshold`` too)
AnyThreshold = Threshold | FrozenThreshold

__all__ = [
    "AUTHOR", "CLAIM_2024", "METRICS", "METRIC_ALIASES", "N_BOOT", "ChecklistItem", "ReferenceKey",
    "calibration_table", "claim_checklist", "cohort_flow", "delong_table", "design_note", "recalibration_note",
    "recalibration_table",
    "threshold_table", "threshold_warnings", "fmt_count_pct", "fmt_estimate",
    "fmt_number", "fmt_p", "method_note", "parse_reference_key", "performance_table",
    "performance_values", "provenance_table", "reference_comparison", "set_label", "split_summary",
]


def _models(predictions: pd.DataFrame) -> list[str]:
    return [str(m) for m in pd.unique(predictions["model"])]


def _rows(predictions: pd.DataFrame, model: str, set_name: str) -> pd.DataFrame:
    return predictions[(predictions["model"].astype(str) == model) & (predictions["set"] == set_name)]


def _arrays(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return rows["y_true"].to_numpy(), rows["score"].to_numpy(dtype=np.float64)


# ----------------------------------------------------------------------------------------- thresholds


def _threshold_phrase(t: AnyThreshold, on_set: str, frozen_for: str) -> str:
    where = f"the {set_label(on_set).lower()} set"
    if t.method == "fixed":
        return f"fixed at {t.target:g}, set in advance"
    if t.method == "youden":
        rule = f"Youden index on {where}"
    else:
        rule = f"highest threshold reaching sensitivity ≥ {t.target:g} on {where}"
    return f"{rule}, frozen for {frozen_for}"


def _clustered(predictions: pd.DataFrame | None) -> bool:
    """True when some patient has several rows of one model in one set."""
    if predictions is None or predictions.empty:
        return False
    return bool(predictions.groupby(["model", "set", "patient_id"]).size().max() > 1)


def method_note(thresholds: Mapping[str, AnyThreshold], *, on_set: str = "val", level: float = 0.95,
                n_boot: int = N_BOOT_OPERATING, sets: Sequence[str] | None = None,
                predictions: pd.DataFrame | None = None) -> str:
    """The sentences naming every method behind the performance table.

    Args:
        thresholds: model -> frozen threshold (``medlib.pipelines.record.freeze_thresholds``).
        on_set: the set the thresholds were chosen on.
        level: confidence level.
        n_boot: bootstrap replicates of the threshold metrics' intervals.
        sets: the sets the table reports, named in the sentence; None says "the other sets".
        predictions: the predictions table: says whether patients contribute several cases (clustered
            intervals); without it the note states the rule for both cases.

    Returns:
        The note under the performance table.

    Example:
        >>> t = Threshold(0.41, "youden", None, "")
        >>> method_note({"cnn": t}, sets=("val", "test", "external"))[:72]
        "AUC with DeLong 95% CI on the logit scale (Obuchowski's clustered varian"
    """
    ci = level_text(level)
    others = [str(x) for x in (sets or ()) if str(x) != on_set]
    frozen_for = f"the {' and '.join(others)} set{'s' if len(others) > 1 else ''}" if others else "the other sets"
    groups: dict[str, list[str]] = {}
    for model, t in thresholds.items():
        groups.setdefault(_threshold_phrase(t, on_set, frozen_for), []).append(str(model))
    undefined = [m for m, t in thresholds.items() if t.method != "fixed" and is_nan(t.value)]
    if len(groups) == 1:
        threshold_text = next(iter(groups))
    else:
        threshold_text = "; ".join(f"{', '.join(ms)}: {phrase}" for phrase, ms in groups.items())
    if undefined:
        threshold_text += (f" (undefined for {', '.join(map(str, undefined))}: one class in the "
                           f"{set_label(on_set).lower()} set)")
    data_driven = any(t.method != "fixed" for t in thresholds.values())
    if predictions is None:
        auc = (f"AUC with DeLong {ci} on the logit scale (Obuchowski's clustered variance where a patient "
               "contributes several cases to a set)")
        unit = "patients where a patient contributes several cases, else cases"
    elif _clustered(predictions):
        auc = f"AUC with {ci} from Obuchowski's clustered DeLong variance (patients as clusters), logit scale"
        unit = "patients (a patient contributes several cases)"
    else:
        auc = f"AUC with DeLong {ci} on the logit scale"
        unit = "cases"
    carried = ("; on every replicate the threshold is chosen again on a bootstrap replicate of the "
               f"{set_label(on_set).lower()} set, so the intervals carry the threshold's uncertainty"
               if data_driven else "")
    tuning = (f" The {set_label(on_set).lower()} set chose the threshold (and the training epoch): it is a tuning "
              "set, and its numbers are optimistic." if data_driven else "")
    return (f"{auc}; accuracy, sensitivity, specificity, precision (PPV), NPV and F1 with stratified bootstrap "
            f"percentile {ci}, {n_boot} replicates resampling {unit}{carried}; threshold: {threshold_text}."
            f"{tuning}")


def design_note(sets: Sequence[str]) -> str:
    """Which sets give the headline numbers: untouched sets only; a design without an internal test set says so.

    Example:
        >>> design_note(("val", "external"))  # doctest: +NORMALIZE_WHITESPACE
        'This design has no internal test set: the headline numbers come from the external test set, which no
        step of model building saw. The validation set chose the training epoch, the model and the threshold
        (a tuning set); its numbers are shown for completeness and are optimistic.'
    """
    present = [str(x) for x in sets]
    untouched = [x for x in ("test", "external") if x in present]
    tuning = ("The validation set chose the training epoch, the model and the threshold (a tuning set); its numbers "
              "are shown for completeness and are optimistic." if "val" in present else "")
    if not untouched:
        return ("No set in this run was left untouched: every number comes from a set used for tuning and is "
                "optimistic. " + tuning).strip()
    names = " and the ".join(f"{set_label(x).lower()} set" for x in untouched)
    lead = ("This design has no internal test set: the headline numbers come from the " if "test" not in present
            else "The headline numbers come from the ")
    return f"{lead}{names}, which no step of model building saw. {tuning}".strip()


# ----------------------------------------------------------------------------------------- performance


def performance_values(predictions: pd.DataFrame, thresholds: Mapping[str, AnyThreshold], *,
                       sets: Sequence[str] = EVALUATION_SETS, level: float = 0.95,
                       n_boot: int = N_BOOT_OPERATING, on_set: str = "val") -> pd.DataFrame:
    """The numbers behind :func:`performance_table`, one row per model × set × metric.

    AUC: DeLong interval on the logit scale, Obuchowski's clustered variance when a patient has several rows in
    the set. Threshold metrics: stratified bootstrap percentile intervals resampling patients (or cases), the
    threshold chosen again on each bootstrap replicate of ``on_set`` (:func:`medlib.stats.operating_metrics`).
    A set with fewer than 5 cases or one class gets NaN values and the reason in ``method``
    (:func:`medlib.stats.not_estimable`). This numeric long table is what a run keeps (``metrics.json``) and
    what :func:`~medlib.report.reference.reference_comparison` compares with published results.

    Args:
        predictions: the long Predictions table.
        thresholds: model -> frozen threshold (``medlib.pipelines.record.freeze_thresholds``).
        sets: sets to report, in this order; sets absent from the data are skipped.
        level: confidence level.
        n_boot: bootstrap replicates of the threshold metrics.
        on_set: the set the thresholds were chosen on (a tuning set).

    Returns:
        Columns ``model, set, n, positives, patients, tuning, threshold, metric, value, lo, hi, method``.

    Raises:
        ValueError: missing columns.
        KeyError: a model without a threshold.
    """
    check_predictions(predictions)
    rows = []
    for model in _models(predictions):
        if model not in thresholds:
            raise KeyError(f"no threshold for model {model!r}. Thresholds given for: {sorted(thresholds)}")
        tuning = _rows(predictions, model, on_set)
        for set_name in sets:
            sub = _rows(predictions, model, set_name)
            if not sub.empty:
                rows += _model_set_rows(model, set_name, sub, tuning, thresholds[model], level, n_boot, on_set)
    return pd.DataFrame(rows, columns=["model", "set", "n", "positives", "patients", "tuning", "threshold",
                                       "metric", "value", "lo", "hi", "method"])


def _groups_or_none(rows: pd.DataFrame) -> np.ndarray | None:
    ids = rows["patient_id"].astype(str).to_numpy()
    return ids if len(np.unique(ids)) < len(ids) else None


def _model_set_rows(model: str, set_name: str, sub: pd.DataFrame, tuning: pd.DataFrame, t: AnyThreshold,
                    level: float, n_boot: int, on_set: str) -> list[dict]:
    y, s = _arrays(sub)
    base = {"model": model, "set": set_name, "n": len(sub), "positives": int(np.sum(y == 1)),
            "patients": int(sub["patient_id"].nunique()), "tuning": set_name in TUNING_SETS or set_name == on_set,
            "threshold": t.value}
    problem = (not_estimable(y, "") or "").strip() or None  # "not estimable: no events (0 of 12 ...)"
    nan = Estimate(math.nan, math.nan, math.nan, problem or "undefined threshold")
    estimates: dict[str, Estimate] = {}
    if problem is None:
        estimates["auc"] = auc_ci(y, s, level=level, method="delong", groups=_groups_or_none(sub))
        if not is_nan(t.value):
            estimates.update(_operating(y, s, sub, tuning, t, level, n_boot, same=set_name == on_set))
    return [{**base, "metric": key, **vars(estimates.get(key, nan))} for key in METRICS]


def _operating(y: np.ndarray, s: np.ndarray, sub: pd.DataFrame, tuning: pd.DataFrame, t: AnyThreshold,
               level: float, n_boot: int, same: bool) -> dict[str, Estimate]:
    yv, sv = _arrays(tuning) if not tuning.empty else (None, None)
    usable = yv is not None and not_estimable(yv) is None
    out = operating_metrics(y, s, float(t.value), validation=(yv, sv) if usable and not same else None,
                            method=t.method if (usable or same) else "fixed", target=t.target,
                            groups=_groups_or_none(sub), validation_groups=_groups_or_none(tuning) if usable else None,
                            same_set=same, n_boot=n_boot, level=level)
    out["precision"] = out.pop("ppv")
    return out


def performance_table(predictions: pd.DataFrame, thresholds: Mapping[str, AnyThreshold], *,
                      sets: Sequence[str] = EVALUATION_SETS, level: float = 0.95,
                      threshold_set: str = "val", digits: int = 3, n_boot: int = N_BOOT_OPERATING) -> pd.DataFrame:
    """Per model and set: n, AUC and the threshold metrics with their CIs, as display strings.

    Columns: ``Model, Set, n (pos.), AUC (95% CI), Accuracy, Sensitivity, Specificity, Precision, NPV, F1,
    Threshold``. The set the threshold was chosen on is named a tuning set ("Validation (tuning set)"): its
    numbers are optimistic. A set too small or with one class shows why in place of the numbers. The methods
    are in :func:`method_note`; the numbers are :func:`performance_values` (same arguments, same values).

    Raises:
        ValueError: missing columns.
        KeyError: a model without a threshold.
    """
    values = performance_values(predictions, thresholds, sets=sets, level=level, n_boot=n_boot, on_set=threshold_set)
    ci = level_text(level)
    rows = []
    for (model, set_name), grp in values.groupby(["model", "set"], sort=False):
        first = grp.iloc[0]
        t = thresholds[model]
        tuning = (str(set_name),) if set_name == threshold_set else TUNING_SETS
        row = {"Model": model, "Set": set_title(set_name, tuning),
               "n (pos.)": f"{int(first['n'])} ({int(first['positives'])})"
                           + (f", {int(first['patients'])} patients" if first["patients"] < first["n"] else "")}
        problem = first["method"] if str(first["method"]).startswith("not estimable") else None
        for rec in grp.itertuples():
            title = f"AUC ({ci})" if rec.metric == "auc" else METRICS[rec.metric]
            if problem:
                row[title] = problem if rec.metric == "auc" else "—"
            else:
                row[title] = fmt_estimate((rec.value, rec.lo, rec.hi), digits)
        row["Threshold"] = fmt_number(t.value, digits)
        rows.append(row)
    columns = ["Model", "Set", "n (pos.)", f"AUC ({ci})", *list(METRICS.values())[1:], "Threshold"]
    return pd.DataFrame(rows, columns=columns)


def threshold_table(predictions: pd.DataFrame, thresholds: Mapping[str, AnyThreshold], *, on_set: str = "val",
                    level: float = 0.95, n_boot: int = N_BOOT_OPERATING, digits: int = 3) -> pd.DataFrame:
    """How much each frozen threshold moves when its validation set is resampled (bootstrap).

    Columns: ``Model, Rule, Frozen threshold, Bootstrap median, <level> range, Validation cases (events)``;
    the range is the percentile interval of the thresholds chosen on stratified bootstrap replicates of the
    validation set (patients resampled where a patient has several cases; :func:`medlib.stats.threshold_uncertainty`).
    A validation set too small or with one class shows why.
    """
    check_predictions(predictions)
    rng_title = f"{100 * level:g}% range"
    rows = []
    for model, t in thresholds.items():
        sub = _rows(predictions, str(model), on_set)
        y, s = _arrays(sub)
        rule = _threshold_phrase(t, on_set, "the other sets").split(",")[0]
        base = {"Model": str(model), "Rule": rule, "Frozen threshold": fmt_number(t.value, digits),
                "Validation cases (events)": f"{len(sub)} ({int(np.sum(y == 1))})"}
        problem = not_estimable(y, "threshold uncertainty") if len(sub) else "no validation cases"
        if problem or t.method == "fixed":
            base.update({"Bootstrap median": problem or "fixed in advance: does not move", rng_title: "—"})
        else:
            tu = threshold_uncertainty(y, s, method=t.method, target=t.target, groups=_groups_or_none(sub),
                                       n_boot=n_boot, level=level)
            base.update({"Bootstrap median": fmt_number(tu.median, digits),
                         rng_title: f"{fmt_number(tu.lo, digits)}–{fmt_number(tu.hi, digits)}"})
        rows.append(base)
    return pd.DataFrame(rows, columns=["Model", "Rule", "Frozen threshold", "Bootstrap median", rng_title,
                                       "Validation cases (events)"])


def threshold_warnings(predictions: pd.DataFrame, thresholds: Mapping[str, AnyThreshold], *,
                       on_set: str = "val") -> str:
    """The report's warning when a data-driven threshold rests on fewer than 10 validation events; "" if none."""
    check_predictions(predictions)
    notes = []
    for model, t in thresholds.items():
        y, _ = _arrays(_rows(predictions, str(model), on_set))
        text = threshold_warning(int(np.sum(y == 1)), t.method)
        if text:
            notes.append(f"{model}: {text}")
    return " ".join(dict.fromkeys(notes))


# ------------------------------------------------------------------------------------ DeLong, calibration


def delong_table(predictions: pd.DataFrame, *, set_name: str, adjust: str | None = "holm",
                 digits: int = 3) -> pd.DataFrame:
    """Paired DeLong tests between every pair of models on one set, formatted.

    Columns: ``Model A, Model B, n, AUC A, AUC B, ΔAUC (95% CI), Z, p, Adjusted p (<method>)``; ΔAUC is
    AUC A − AUC B. Empty (with these columns) when the set has fewer than two models.

    Raises:
        ValueError: missing columns, an unknown set, or an unknown ``adjust``.
    """
    check_predictions(predictions)
    raw = compare_models(predictions, adjust=adjust, set_name=set_name)
    adj = f"Adjusted p ({adjust.capitalize()})" if adjust else "Adjusted p (none)"
    columns = ["Model A", "Model B", "n", "AUC A", "AUC B", "ΔAUC (95% CI)", "Z", "p", adj]
    rows = [{"Model A": str(r.model_a), "Model B": str(r.model_b), "n": int(r.n_cases),
             "AUC A": fmt_number(r.auc_a, digits), "AUC B": fmt_number(r.auc_b, digits),
             "ΔAUC (95% CI)": fmt_estimate((r.diff, r.diff_lo, r.diff_hi), digits),
             "Z": fmt_number(r.z, 2), "p": fmt_p(r.p), adj: fmt_p(r.p_adjusted)} for r in raw.itertuples()]
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
    for set_name in ordered_sets(df["set"]):
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
        for set_name in ordered_sets(sets["set"]):
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
            rows += [(f"Duration ({name})", fmt_seconds(sec)) for name, sec in value.items()]
        elif isinstance(value, Mapping):
            rows += [(f"{key}: {k}", v) for k, v in value.items()]
        else:
            if key == "git_dirty":
                value = {True: "yes", False: "no"}.get(value, "unknown")
            rows.append((_PROVENANCE_LABELS.get(key, str(key)), value))
    return pd.DataFrame([{"Item": redact(str(k)), "Value": redact(str(v))} for k, v in rows],
                        columns=["Item", "Value"])
