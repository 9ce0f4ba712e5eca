"""The report's further analyses: near-duplicate images across sets, sample size and precision, subgroups with a
forest plot, precision-recall curves beside a banded ROC, and the shift to the external data.

Every number comes from :mod:`medlib.stats` (``subgroups``, ``samplesize``, ``prcurve``, ``shift``) or
:mod:`medlib.data.duplicates`; this module chooses the rows, formats and draws. Tables come back as DataFrames of
display strings for ``show_table``; figures as matplotlib figures for ``show_figure``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from medlib.report.format import fmt_estimate, fmt_p, set_label
from medlib.stats import auc, auc_ci
from medlib.stats.calibration import logit


def best_model(predictions: pd.DataFrame) -> str:
    """The model with the highest AUC on the validation set (the one the subgroup and shift analyses show)."""
    val = predictions[predictions["set"] == "val"]
    scores = {str(m): auc(r["y_true"].to_numpy(), r["score"].to_numpy(float)) for m, r in val.groupby("model")}
    return max(scores, key=lambda m: (-math.inf if math.isnan(scores[m]) else scores[m]))


def _rows(predictions: pd.DataFrame, model: str, set_name: str) -> pd.DataFrame:
    return predictions[(predictions["model"].astype(str) == model) & (predictions["set"] == set_name)]


# ------------------------------------------------------------------------------------------- duplicates


@dataclass(frozen=True)
class DuplicateCheck:
    """The near-duplicate check of one run: cross-set pairs, per-image statistics and the settings used."""

    pairs: pd.DataFrame
    statistics: pd.DataFrame
    similarity: float
    n_images: int
    planted: pd.DataFrame | None = None
    checked: bool = True
    ndim: int = 2  # 2 for images, 3 for volumes (which method compared them)
    window: tuple[float, float] | None = None  # image.window (centre, width) the images were compared in


def duplicate_check(cfg, prepared, run=None) -> DuplicateCheck:
    """Hash every image, list cross-set pairs, write them to the run record, then stop the run if the config says.

    The pairs are written to ``duplicates.json`` in the run folder before any stop, so a stopped run still
    records why. A cohort with ``near_duplicates.csv`` beside its manifest (the synthetic ones plant copies on
    purpose) is compared with it in :func:`duplicates_paragraph`.

    Raises:
        medlib.data.duplicates.DuplicateImagesError: exact duplicates across sets (unless
            ``analysis.allow_exact_duplicates``) or near duplicates with ``analysis.stop_on_near_duplicates``.
    """
    from medlib.data.duplicates import (PAIR_COLUMNS, check_pairs, cross_set_pairs, describe, fingerprint_table,
                                        image_statistics)

    a = cfg.analysis
    columns = list(cfg.cohort.image_columns)
    table = prepared.table[["case_id", "set", *columns]].reset_index(drop=True)
    if not a.duplicates:
        return DuplicateCheck(pd.DataFrame(columns=list(PAIR_COLUMNS)), pd.DataFrame({"case_id": table["case_id"]}),
                              a.duplicate_similarity, 0, checked=False)
    prints = fingerprint_table(table, columns, window=cfg.image.window)
    pairs = cross_set_pairs(table, prints, min_similarity=a.duplicate_similarity)
    sidecar = prepared.cohort.manifest.parent / "near_duplicates.csv"
    planted = pd.read_csv(sidecar, dtype=str) if sidecar.is_file() else None
    ndim = 3 if any(fp.grid is not None for fps in prints.values() for fp in fps[:1]) else 2
    check = DuplicateCheck(pairs, image_statistics(table, prints), a.duplicate_similarity, len(table) * len(columns),
                           planted, ndim=ndim, window=cfg.image.window)
    if run is not None:
        from medlib.runs.atomic import atomic_write_json

        atomic_write_json({"similarity_threshold": a.duplicate_similarity, "n_images": check.n_images,
                           "method": f"near: {describe(ndim)}; exact: SHA-256 of the decoded pixels",
                           "intensity_window": cfg.image.window,
                           "pairs": pairs.to_dict("records")}, run.path / "duplicates.json")
    check_pairs(pairs, allow_exact=a.allow_exact_duplicates, stop_on_near=a.stop_on_near_duplicates)
    return check


def duplicates_table(check: DuplicateCheck, *, limit: int = 20) -> pd.DataFrame:
    """One row per cross-set pair (case and set of each image, image column, kind, similarity), the ``limit``
    most similar; a last row counts the others (every pair is in the run's ``duplicates.json``)."""
    if check.pairs.empty:
        what = "not run (analysis.duplicates is false)" if not check.checked else \
            f"no pair across sets at similarity >= {check.similarity:g} among {check.n_images} images"
        return pd.DataFrame({"Result": [what]})
    p = check.pairs.head(limit)
    table = pd.DataFrame({"Image A": p["case_a"] + " (" + p["set_a"].map(set_label) + ")",
                          "Image B": p["case_b"] + " (" + p["set_b"].map(set_label) + ")",
                          "Input": p["column"], "Kind": p["kind"].map({"exact": "identical pixels",
                                                                         "near": "near duplicate"}),
                          "Similarity": p["similarity"].map(lambda v: f"{v:.3f}")})
    rest = check.pairs.iloc[limit:]
    if len(rest):
        table.loc[len(table)] = [f"... and {len(rest)} more pairs", "(all in the run's duplicates.json)", "",
                                 f"{int((rest['kind'] == 'exact').sum())} identical, "
                                 f"{int((rest['kind'] == 'near').sum())} near",
                                 f"{rest['similarity'].min():.3f} to {rest['similarity'].max():.3f}"]
    return table


def duplicates_paragraph(check: DuplicateCheck, prepared) -> str:
    """The method and the result in words, and, for a cohort with planted copies, how many were found."""
    from medlib.data.duplicates import describe

    if not check.checked:
        return "The check for duplicate images across sets was switched off (analysis.duplicates: false)."
    text = (f"Every image ({check.n_images}) was compared with every image of the same input in the other sets: "
            f"identical decoded pixels count as exact duplicates; otherwise a pair is flagged when its similarity, "
            f"{describe(check.ndim)}, is >= {check.similarity:g}")
    text += (f", intensities compared in the window of centre {check.window[0]:g} and width {check.window[1]:g} "
             "(image.window). " if check.window else ". ")
    exact = int((check.pairs["kind"] == "exact").sum())
    near = int((check.pairs["kind"] == "near").sum())
    text += (f"{exact} exact and {near} near-duplicate pair(s) span two sets." if exact or near else
             "No pair spans two sets.")
    if check.planted is not None and len(check.planted):
        sets = dict(zip(prepared.table["case_id"].astype(str), prepared.table["set"].astype(str)))
        crossing = {frozenset(p) for p in zip(check.planted["case_id_a"], check.planted["case_id_b"])
                    if sets.get(p[0]) != sets.get(p[1])}
        found = {frozenset(p) for p in zip(check.pairs["case_a"], check.pairs["case_b"])}
        text += (f" The cohort plants {len(crossing)} duplicate pair(s) that cross sets in this split "
                 f"(near_duplicates.csv): {len(crossing & found)} found; {len(found - crossing)} other pair(s) "
                 "flagged.")
    return text


# ------------------------------------------------------------------------------------------ sample size


def sample_size_table(cfg, prepared, results: Any, *, model: str | None = None) -> pd.DataFrame:
    """Riley's development criteria for the training set, and the expected CI widths of each evaluation set.

    Args:
        results: the fitted models (``.predictions``; the feature design's ``.candidates``, model → candidate
            parameters). Without candidates (CNNs: their weights are not candidate parameters of a regression
            model) criteria (i) and (ii) are "not applicable" and only criterion (iii) is shown.
        model: the model whose validation AUC anticipates R2_CS and whose scores give the slope's information
            matrix; default :func:`best_model`.
    """
    from medlib.stats.samplesize import anticipated_r2cs, riley_development, validation_precision

    predictions, candidates = results.predictions, getattr(results, "candidates", None)
    model = model or best_model(predictions)
    train = prepared.table[prepared.table["set"] == "train"]
    n, events = len(train), int(train["y"].sum())
    val = _rows(predictions, model, "val")
    val_auc = auc(val["y_true"].to_numpy(), val["score"].to_numpy(float))
    rows = []
    p = candidates.get(model) if candidates else None
    if 0 < events < n:
        # Riley's R2_CS is anticipated from the validation AUC; an AUC of 1 (perfect separation) or none gives none
        r2 = anticipated_r2cs(max(val_auc, 0.5), events / n) if 0 <= val_auc < 1 else math.nan
        if p and math.isnan(r2):
            rows.append({"Set": "Training (development)", "Criterion": "(i)-(ii) shrinkage and optimism",
                         "Required": "not estimable", "Has": f"n = {n}",
                         "Met": f"the validation AUC ({val_auc:.3f}) gives no anticipated Cox-Snell R2"})
        elif p and r2 > 0:
            dev = riley_development(events / n, p, r2)
            rows += [{"Set": "Training (development)", "Criterion": c, "Required": f"n >= {k}",
                      "Has": f"n = {n}", "Met": "yes" if n >= k else "no"} for c, k, _ in dev.criteria]
        else:
            rows.append({"Set": "Training (development)", "Criterion": "(i)-(ii) shrinkage and optimism",
                         "Required": "not applicable", "Has": f"n = {n}",
                         "Met": "the model is not a regression on a fixed set of candidate parameters"})
            z = 1.959963984540054
            k = math.ceil((z / 0.05) ** 2 * (events / n) * (1 - events / n))
            rows.append({"Set": "Training (development)", "Criterion": "(iii) overall risk within +-0.05",
                         "Required": f"n >= {k}", "Has": f"n = {n}", "Met": "yes" if n >= k else "no"})
    for set_name in [s for s in ("val", "test", "external") if s in set(prepared.table["set"])]:
        r = _rows(predictions, model, set_name)
        y, s = r["y_true"].to_numpy(), r["score"].to_numpy(float)
        prec = validation_precision(len(y), int(y.sum()), auc=_capped_auc(y, s),
                                    lp=logit(np.clip(s, 0, 1)))
        rows.append({"Set": set_label(set_name), "Criterion": "expected 95% CI width: AUC / slope / O/E",
                     "Required": "<= 0.10 / 0.20 / 0.20",
                     "Has": f"{prec.auc_width:.2f} / {prec.slope_width:.2f} / {prec.oe_width:.2f} "
                            f"(n = {prec.n}, {prec.events} events)",
                     "Met": "yes" if prec.auc_width <= 0.1 and prec.slope_width <= 0.2 and prec.oe_width <= 0.2
                     else "no"})
    return pd.DataFrame(rows, columns=["Set", "Criterion", "Required", "Has", "Met"])


def _capped_auc(y: np.ndarray, s: np.ndarray) -> float:
    """The observed AUC for the expected-width formulas, which need 0.5 <= AUC < 1 (0.5 with one class only)."""
    return min(max(auc(y, s), 0.5), 0.999) if 0 < y.sum() < len(y) else 0.5


def sample_size_warnings(prepared, predictions: pd.DataFrame, *, model: str | None = None) -> str:
    """Markdown: one warning per evaluation set too small for its claims (empty when none is)."""
    from medlib.stats.samplesize import precision_warnings, validation_precision

    model = model or best_model(predictions)
    lines = []
    for set_name in [s for s in ("test", "external") if s in set(prepared.table["set"])]:
        r = _rows(predictions, model, set_name)
        y, s = r["y_true"].to_numpy(), r["score"].to_numpy(float)
        prec = validation_precision(len(y), int(y.sum()), auc=_capped_auc(y, s),
                                    lp=logit(np.clip(s, 0, 1)))
        lines += [f"- {set_label(set_name)} set: {w}" for w in precision_warnings(prec)]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ subgroups


@dataclass(frozen=True)
class SubgroupReport:
    """Subgroup results of one model on one set, the heterogeneity tests and how each covariate was banded."""

    model: str
    set_name: str
    results: list
    tests: list
    rules: list[str]
    overall: Any = None
    notes: list[str] = field(default_factory=list)


def subgroup_analysis(cfg, prepared, predictions: pd.DataFrame, thresholds: Mapping[str, Any], *, set_name: str,
                      model: str | None = None) -> SubgroupReport:
    """AUC, sensitivity, specificity and calibration per level of each ``analysis.subgroups`` column."""
    from medlib.stats.subgroups import banding_rule, heterogeneity_test, level_order, subgroup_metrics

    model = model or best_model(predictions)
    rows = _rows(predictions, model, set_name)
    cohort = prepared.table.set_index(prepared.table["case_id"].astype(str))
    levels, rules = {}, []
    for col in cfg.analysis.subgroups:
        lv, rule = banding_rule(cohort[col], col)
        levels[col] = lv.reindex(rows["case_id"].astype(str)).to_numpy()
        rules.append(rule)
    groups = pd.DataFrame(levels)
    y, s = rows["y_true"].to_numpy(), rows["score"].to_numpy(float)
    t = thresholds[model].value
    results = subgroup_metrics(y, s, groups, t, min_events=cfg.analysis.min_events) if len(groups.columns) else []
    columns = list(groups.columns)
    results = sorted(results, key=lambda r: (columns.index(r.covariate), level_order(str(r.level))))
    tests = [heterogeneity_test(y, s, groups[c], covariate=c,
                                keep=[r.level for r in results if r.covariate == c and r.estimable])
             for c in groups.columns]
    return SubgroupReport(model, set_name, results, tests, rules, auc_ci(y, s))


def subgroup_table(report: SubgroupReport) -> pd.DataFrame:
    """Display table: one row per level (not estimable levels say why), heterogeneity p per covariate."""
    p_by = {t.covariate: (fmt_p(t.p_value) if not math.isnan(t.p_value) else t.note) for t in report.tests}
    rows = []
    for r in report.results:
        v = r.values
        rows.append({"Covariate": r.covariate, "Level": r.level, "n (events)": f"{r.n} ({r.events})",
                     "AUC (95% CI)": fmt_estimate(v["auc"]) if r.estimable else r.note,
                     "Sensitivity": fmt_estimate(v["sensitivity"]) if r.estimable else "–",
                     "Specificity": fmt_estimate(v["specificity"]) if r.estimable else "–",
                     "O/E": fmt_estimate(v["oe"], 2) if r.estimable else "–",
                     "Calibration slope": fmt_estimate(v["slope"], 2) if r.estimable else "–",
                     "Interaction p": p_by.get(r.covariate, "")})
    if not rows:
        return pd.DataFrame({"Result": ["no subgroup covariates configured (analysis.subgroups)"]})
    return pd.DataFrame(rows)


def subgroup_paragraph(report: SubgroupReport) -> str:
    """How the subgroups were formed and tested, in words."""
    if not report.rules:
        return "No subgroup covariates were named (analysis.subgroups)."
    return (f"Subgroups of the {set_label(report.set_name).lower()} set for {report.model} (the model with the highest "
            f"validation AUC). Levels: {'; '.join(report.rules)}. A level with fewer than the configured number of "
            "cases with or without the outcome is shown as not estimable. Sensitivity and specificity use the "
            "threshold frozen on validation data. Interaction p: likelihood-ratio test of a score x subgroup "
            "interaction in a logistic model of the outcome on logit(score) and the subgroup (estimable levels).")


def plot_forest(report: SubgroupReport):
    """Forest plot of the AUC with its 95% CI per level, grouped under each covariate; not estimable levels are
    written, not drawn; the counts and the AUC are printed at the right."""
    import matplotlib.pyplot as plt

    from medlib.report.figures import RC

    rows: list[tuple[str, Any]] = []  # (label, result or None for a covariate's heading)
    for r in report.results:
        if not any(h is None and label == r.covariate for label, h in rows):
            rows.append((r.covariate, None))
        rows.append((str(r.level), r))
    n = max(len(rows), 1)
    with plt.rc_context(RC):
        height = 0.3 * n + 1.3
        fig, ax = plt.subplots(figsize=(7.2, height), layout="none")  # margins set below for the labels
        for i, (label, r) in enumerate(rows):
            yy = n - 1 - i
            if r is None:
                ax.text(-0.02, yy, label, transform=ax.get_yaxis_transform(), ha="right", va="center",
                        fontsize=8, fontweight="bold")
                continue
            ax.text(-0.02, yy, f"{label}  ({r.n}; {r.events} events)", transform=ax.get_yaxis_transform(),
                    ha="right", va="center", fontsize=8)
            if r.estimable:
                e = r.values["auc"]
                ax.errorbar(e.value, yy, xerr=[[e.value - e.lo], [e.hi - e.value]], fmt="s", color="#0072B2",
                            ms=4, capsize=2, lw=1.2)
                text = fmt_estimate(e)
            else:
                text = "not estimable"
            ax.text(1.02, yy, text, transform=ax.get_yaxis_transform(), ha="left", va="center", fontsize=7.5,
                    color="black" if r.estimable else "grey")
        title = f"{report.model}, {set_label(report.set_name).lower()} set, by subgroup"
        if report.overall is not None and not math.isnan(report.overall.value):
            ax.axvline(report.overall.value, ls="--", lw=0.9, color="#D55E00")
            title += f"\n(dashed line: all cases, AUC {fmt_estimate(report.overall)})"
        ax.axvline(0.5, lw=0.6, color="grey")
        ax.set(yticks=[], ylim=(-0.7, n - 0.3), xlim=(0.5 - 0.02, 1.0), xlabel="AUC (95% CI, DeLong)")
        ax.set_title(title, fontsize=9)
        widest = max((len(f"{label}  ({r.n}; {r.events} events)") if r is not None else len(label)
                      for label, r in rows), default=10)  # characters of the longest label, about 0.075 in each
        fig.subplots_adjust(left=min(0.6, (0.075 * widest + 0.2) / 7.2), right=0.8, top=1 - 0.6 / height,
                            bottom=0.5 / height)
    return fig


# ------------------------------------------------------------------------------------ PR and ROC bands


def plot_pr_roc(predictions: pd.DataFrame, *, set_name: str, n_boot: int = 1000, seed: int = 0):
    """Two panels per set: ROC curves with pointwise 95% bands, and precision-recall curves with AP (95% CI)."""
    import matplotlib.pyplot as plt

    from medlib.report.figures import RC, model_colors
    from medlib.stats.prcurve import average_precision_ci, pr_curve, roc_band

    part = predictions[predictions["set"] == set_name]
    models = list(dict.fromkeys(predictions["model"].astype(str)))
    colors = model_colors(models)
    with plt.rc_context(RC):
        fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(8.6, 4.1))
        roc_ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey")
        prevalence = float(part.drop_duplicates("case_id")["y_true"].mean()) if len(part) else math.nan
        pr_ax.axhline(prevalence, ls="--", lw=0.8, color="grey", label=f"Prevalence {prevalence:.2f}")
        for m in [m for m in models if m in set(part["model"].astype(str))]:
            r = _rows(part, m, set_name)
            y, s = r["y_true"].to_numpy(), r["score"].to_numpy(float)
            band = roc_band(y, s, n_boot=n_boot, seed=seed)
            roc_ax.fill_between(band.fpr, band.lo, band.hi, color=colors[m], alpha=0.18, lw=0)
            roc_ax.plot(band.fpr, band.tpr, color=colors[m], lw=1.6, drawstyle="steps-post", label=m)
            prec, rec, _ = pr_curve(y, s)
            ap = average_precision_ci(y, s, n_boot=n_boot, seed=seed)
            pr_ax.plot(rec, prec, color=colors[m], lw=1.6, drawstyle="steps-post", label=f"{m}: AP {fmt_estimate(ap)}")
        roc_ax.set(xlabel="1 − specificity", ylabel="Sensitivity", xlim=(0, 1), ylim=(0, 1.01), aspect="equal",
                   title=f"ROC with pointwise 95% band ({n_boot} bootstraps)")
        pr_ax.set(xlabel="Recall (sensitivity)", ylabel="Precision (PPV)", xlim=(0, 1), ylim=(0, 1.01),
                  title=f"Precision-recall, {set_label(set_name).lower()} set")
        roc_ax.legend(loc="lower right", frameon=False)
        pr_ax.legend(loc="lower left", title="AP (95% CI, bootstrap)", frameon=False)
    return fig


# --------------------------------------------------------------------------------------------- shift


def shift_table(cfg, prepared, check: DuplicateCheck, predictions: pd.DataFrame, *, model: str | None = None,
                seed: int = 0) -> pd.DataFrame:
    """Standardised differences (covariates and image statistics) between development and external data, the
    membership model's cross-validated AUC, and the model's AUC on the internal test and external sets."""
    from medlib.stats.shift import membership_auc, membership_design, standardized_differences

    model = model or best_model(predictions)
    table = prepared.table.merge(check.statistics, on="case_id", how="left")
    ext, dev = table[table["set"] == "external"], table[table["set"] != "external"]
    stat_cols = [c for c in check.statistics.columns if c != "case_id"]
    columns = list(dict.fromkeys([*cfg.cohort.covariates, *cfg.analysis.subgroups, *stat_cols]))
    categorical = list(cfg.cohort.categorical)
    smd = standardized_differences(dev, ext, columns, categorical=categorical)
    est, _ = membership_auc(*membership_design(dev, ext, columns, categorical=categorical), seed=seed)
    out = pd.DataFrame({"Variable": smd["variable"], "Development": smd["development"],
                        "External": smd["external"],
                        "SMD": smd["smd"].map(lambda v: "NA" if math.isnan(v) else f"{v:.2f}"),
                        "|SMD| > 0.1": smd["flagged"].map({True: "yes", False: ""})})
    extra = [{"Variable": "membership model AUC (development vs external)", "Development": "", "External": "",
              "SMD": fmt_estimate(est), "|SMD| > 0.1": ""}]
    for set_name in ("test", "external"):
        r = _rows(predictions, model, set_name)
        if len(r):
            extra.append({"Variable": f"{model} AUC, {set_label(set_name).lower()} set", "Development": "",
                          "External": "", "SMD": fmt_estimate(auc_ci(r["y_true"].to_numpy(),
                                                                     r["score"].to_numpy(float))),
                          "|SMD| > 0.1": ""})
    return pd.concat([out, pd.DataFrame(extra)], ignore_index=True)
