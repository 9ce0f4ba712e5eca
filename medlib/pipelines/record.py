"""The run record: what a run decided (thresholds frozen on validation), what it measured, and what its report
contains, as plain data that the report's checklist, the viewer and the manuscript read.

- ``freeze_thresholds``: each model's threshold, chosen on the validation set only, before any other set is
  scored (``medlib.stats.choose_threshold``).
- ``freeze_recalibration``: each model's recalibration map, fitted on the validation set only and frozen
  (``medlib.stats.fit_recalibration``); decision curves use the recalibrated risks.
- ``save_metrics``: ``metrics.json`` (``medlib.schema.RunMetrics``); ``record_results`` adds the frozen
  recalibration maps and the Grad-CAM localisation scores to it once they are computed.
- ``report_sections``: the labels of the tables and figures this run's report holds, decided once from the
  config and the data; the notebook shows exactly these, and the checklist points only at these.
- ``run_summary``: everything the checklists need to know about the run.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Mapping

import pandas as pd

from medlib.config import StudyConfig
from medlib.pipelines.features import FeatureResults
from medlib.pipelines.prepare import Prepared, eval_sets, primary_set
from medlib.schema import FrozenThreshold, RunMetrics, check_predictions

#: Every table and figure a study report can hold, in report order, with what it shows.
SECTIONS = {
    "tbl-cohort": "cases, patients and outcomes per set",
    "tbl-table1-set": "baseline characteristics by set",
    "tbl-table1-outcome": "baseline characteristics by outcome",
    "fig-examples": "example images of each class",
    "tbl-duplicates": "identical and near-duplicate images across sets",
    "fig-habitats": "habitat subregions of one case",
    "tbl-features": "feature sets and their sizes",
    "fig-learning": "training curves",
    "tbl-selected": "features selected by LASSO",
    "tbl-performance": "performance with 95% confidence intervals",
    "tbl-threshold": "how much the frozen threshold moves (bootstrap of the validation set)",
    "fig-roc": "ROC curves",
    "fig-pr": "precision-recall curves and ROC curves with pointwise confidence bands",
    "tbl-delong": "paired DeLong tests between models",
    "tbl-sample-size": "sample size (Riley criteria) and expected precision",
    "fig-calibration": "calibration curves",
    "tbl-calibration": "calibration intercept, slope, Brier score, ICI and ECE",
    "tbl-recalibration": "calibration before and after the recalibration frozen on validation",
    "fig-dca": "decision curves",
    "fig-confusion": "confusion matrices",
    "fig-typical-case": "all cases of one patient with predictions",
    "tbl-subgroups": "performance by subgroup with the interaction test",
    "fig-forest": "forest plot of the AUC by subgroup",
    "tbl-shift": "shift between development and external data beside external performance",
    "fig-cam": "Grad-CAM maps of test cases",
    "tbl-cam-sanity": "Grad-CAM randomisation sanity check",
    "tbl-cam-localisation": "Grad-CAM localisation against lesion masks",
    "tbl-reference": "comparison with the published results",
    "tbl-claim": "CLAIM 2024 checklist",
    "tbl-tripod": "TRIPOD+AI checklist",
    "tbl-provenance": "provenance",
}


def freeze_thresholds(predictions: pd.DataFrame, threshold: Any, *, on_set: str = "val"
                      ) -> dict[str, FrozenThreshold]:
    """Choose each model's operating threshold on ``on_set`` (validation), to be frozen for every other set.

    Args:
        predictions: the predictions table.
        threshold: ``StudyConfig.threshold`` (``method``: youden, sensitivity or fixed; ``target``), or a mapping
            with those keys.
        on_set: the set the thresholds are chosen on.

    Returns:
        model → :class:`~medlib.schema.FrozenThreshold` (``medlib.stats.choose_threshold``), in the order the
        models appear. A Youden or sensitivity threshold is NaN (with ``UndefinedMetricWarning``) when that set
        holds one class only.

    Raises:
        ValueError: missing columns, or a model without rows in ``on_set`` (named, with the sets it has).
        TypeError: ``threshold`` is neither a ``ThresholdConfig`` nor a mapping.
    """
    from medlib.stats import choose_threshold

    check_predictions(predictions)
    method, target = _threshold_settings(threshold)
    out = {}
    for model in pd.unique(predictions["model"]):
        rows = predictions[(predictions["model"] == model) & (predictions["set"] == on_set)]
        if rows.empty:
            has = sorted(map(str, pd.unique(predictions.loc[predictions["model"] == model, "set"])))
            raise ValueError(f"model {model!r} has no rows in set {on_set!r}, so no threshold can be chosen on "
                             f"it; its sets: {has}")
        t = choose_threshold(rows["y_true"].to_numpy(), rows["score"].to_numpy(dtype=float), method=method,
                             target=target)
        out[str(model)] = FrozenThreshold(value=t.value, method=t.method, target=t.target, chosen_on=on_set,
                                          description=t.description)
    return out


def freeze_recalibration(predictions: pd.DataFrame, *, on_set: str = "val", method: str = "auto") -> dict[str, Any]:
    """Fit each model's recalibration on ``on_set`` (validation) only, to be frozen for every other set.

    Args:
        predictions: the predictions table (scores are probabilities).
        on_set: the set the maps are fitted on.
        method: ``"auto"`` (logistic; isotonic only on a large validation set, ``medlib.stats.ISOTONIC_RULE``),
            ``"logistic"`` or ``"isotonic"``.

    Returns:
        model → :class:`medlib.stats.Recalibrator`; ``method="none"`` with the reason when the set is too small
        or holds one class (the report says so instead of a recalibration).
    """
    from medlib.stats import fit_recalibration

    check_predictions(predictions)
    out = {}
    for model in pd.unique(predictions["model"]):
        rows = predictions[(predictions["model"] == model) & (predictions["set"] == on_set)]
        if rows.empty:
            raise ValueError(f"model {model!r} has no rows in set {on_set!r}, so no recalibration can be fitted on it")
        out[str(model)] = fit_recalibration(rows["y_true"].to_numpy(), rows["score"].to_numpy(dtype=float),
                                            method=method, fitted_on=on_set)
    return out


def _threshold_settings(threshold: Any) -> tuple[str, float | None]:
    if isinstance(threshold, Mapping):
        return str(threshold.get("method", "youden")), threshold.get("target")
    if hasattr(threshold, "method"):
        return str(threshold.method), getattr(threshold, "target", None)
    raise TypeError("threshold must be a ThresholdConfig or a mapping with 'method' and 'target'; "
                    f"got {type(threshold).__name__}")


def save_metrics(run, thresholds: Mapping[str, FrozenThreshold], values: pd.DataFrame, *,
                 level: float = 0.95) -> RunMetrics:
    """Write ``metrics.json``: the frozen thresholds and the performance values (``performance_values``)."""
    metrics = RunMetrics(thresholds=dict(thresholds), performance=tuple(values.to_dict("records")), level=level)
    run.write_metrics(metrics.to_json())
    return metrics


def record_results(run, *, recalibration: Mapping[str, Any] | None = None,
                   localisation: pd.DataFrame | None = None) -> RunMetrics:
    """Add the frozen recalibration maps (model → ``medlib.stats.Recalibrator``) and the Grad-CAM localisation
    scores (``classifier.localisation_values``) to the run's ``metrics.json``, written by ``save_metrics``."""
    metrics = RunMetrics.from_json(run.read_metrics())
    if recalibration is not None:
        metrics = dataclasses.replace(metrics, recalibration={m: r.to_record() for m, r in recalibration.items()})
    if localisation is not None:
        metrics = dataclasses.replace(metrics, localisation=tuple(localisation.to_dict("records")))
    run.write_metrics(metrics.to_json())
    return metrics


def performance_sets(cfg: StudyConfig, prepared: Prepared) -> tuple[str, ...]:
    """The sets of the performance table: validation, test and external where present; the feature design
    also shows the training set (as its published design does)."""
    return ("train", *eval_sets(prepared)) if cfg.design == "features" else eval_sets(prepared)


def durations(results: Any, started: float) -> dict[str, float]:
    """Seconds per step of the run (training per model, or feature extraction and fitting) and in total."""
    if isinstance(results, FeatureResults):
        steps = {**(results.features.seconds if results.features is not None else {}), **results.seconds}
    else:
        steps = {f"train {m}": s for m, s in results.seconds.items()}
    return {**steps, "total": time.perf_counter() - started}


def report_sections(cfg: StudyConfig, prepared: Prepared) -> list[str]:
    """The labels of the tables and figures this run's report holds (see :data:`SECTIONS`), in report order.

    Decided from the config and the data alone, before anything is trained: Table 1 only with covariates,
    DeLong tests only with two or more models, Grad-CAM only for CNNs with ``explain.enabled``, the typical-case
    figure only when a patient has several cases in the primary set, the comparison with published results only
    when ``study.reference`` gives them.
    """
    features = cfg.design == "features"  # radiomics, deep, fused and habitat models: always several
    primary = prepared.table[prepared.table["set"] == primary_set(prepared)]
    present = {
        "tbl-table1-set": bool(cfg.cohort.covariates), "tbl-table1-outcome": bool(cfg.cohort.covariates),
        "fig-habitats": features and cfg.radiomics.habitats > 0, "tbl-features": features,
        "tbl-selected": features, "fig-learning": not features, "tbl-delong": features or len(cfg.models) > 1,
        "fig-typical-case": not features and bool(primary.groupby("patient_id").size().max() > 1),
        "fig-cam": not features and cfg.explain.enabled, "tbl-cam-sanity": not features and cfg.explain.enabled,
        "tbl-reference": cfg.study.reference is not None,
        "tbl-threshold": cfg.threshold.method != "fixed",
        "tbl-cam-localisation": not features and cfg.explain.enabled and bool(cfg.cohort.lesion_masks),
        "tbl-duplicates": cfg.analysis.duplicates, "tbl-subgroups": bool(cfg.analysis.subgroups),
        "fig-forest": bool(cfg.analysis.subgroups), "tbl-shift": "external" in prepared.sets,
    }
    return [label for label in SECTIONS if present.get(label, True)]


def run_summary(cfg: StudyConfig, prepared: Prepared, results: Any, thresholds: Mapping[str, FrozenThreshold],
                provenance: Mapping[str, Any], sections: list[str], values: pd.DataFrame | None = None
                ) -> dict[str, Any]:
    """What the reporting checklists need to know about this run, as plain data.

    Args:
        results: ``DeepResults`` (classifier design) or ``FeatureResults`` (feature design).
        sections: :func:`report_sections`.
        values: the performance values (``medlib.report.tables.performance_values``); their ``method`` column
            says how each interval was computed (the checklists quote it).
    """
    split = prepared.split.table
    sets = split.groupby("set").agg(cases=("case_id", "size"), patients=("patient_id", "nunique"),
                                    positives=("y", "sum"))
    study = cfg.study
    summary = {
        "study": study.name, "title": study.title, "question": study.question, "population": study.population,
        "unit": study.unit, "design": cfg.design, "manifest": _file_name(cfg.cohort.manifest),
        "image_columns": list(cfg.cohort.image_columns), "positive": cfg.cohort.positive,
        "negative": cfg.cohort.negative, "positive_meaning": study.positive, "negative_meaning": study.negative,
        "n_cases": len(prepared.table), "n_patients": int(prepared.table["patient_id"].nunique()),
        "partitions": sets.reset_index().to_dict("records"), "split": prepared.split.how,
        "split_hash": prepared.split.hash,
        "preprocessing": dict(size=list(cfg.image.size), window=cfg.image.window, normalize=cfg.image.normalize),
        "thresholds": {m: {"value": t.value, "method": t.method, "chosen_on": t.chosen_on}
                       for m, t in thresholds.items()},
        "threshold_method": cfg.threshold.method,
        "provenance": dict(provenance), "sections": list(sections),
        "intervals": {} if values is None else {str(m): sorted(set(map(str, g)))
                                                for m, g in values.groupby("metric")["method"]},
    }
    if cfg.design == "features":
        summary.update(_feature_summary(cfg, results))
    else:
        summary.update(_classifier_summary(cfg, results))
    return summary


def _hirescam_note(cfg: StudyConfig) -> str:
    from medlib.learn.sizes import hirescam_models

    models = hirescam_models(cfg)
    return f"; HiResCAM for {', '.join(models)}, at a layer before the last block" if models else ""


def _classifier_summary(cfg: StudyConfig, results: Any) -> dict[str, Any]:
    from medlib.learn.recipe import study_learning_rate
    from medlib.pipelines.classifier import model_inputs

    t = cfg.train
    return {
        "models": [{"name": m.name, "label": m.display_name, "parameters": results.parameters.get(m.display_name),
                    "pretrained": m.pretrained, "weights_path": m.weights_path, "inputs": list(model_inputs(cfg, m))}
                   for m in cfg.models],
        "training": {"optimizer": t.optimizer, "lr": study_learning_rate(cfg), "epochs": t.epochs,
                     "batch_size": t.batch_size, "loss": t.loss, "patience": t.patience, "augment": t.augment,
                     "seed": t.seed, "class_weights": t.class_weights},
        "explainability": (f"Grad-CAM (pytorch-grad-cam{_hirescam_note(cfg)}) with a randomised-weights sanity "
                           f"check" if cfg.explain.enabled else None),
    }


def _feature_summary(cfg: StudyConfig, results: Any) -> dict[str, Any]:
    from medlib.pipelines.features import summary_fields

    return summary_fields(cfg, results)


def _file_name(path: str) -> str:
    """A manifest's file and folder name, never the user's absolute path."""
    from pathlib import Path

    p = Path(path)
    return f"{p.parent.name}/{p.name}" if p.parent.name else p.name
