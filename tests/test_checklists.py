"""Every checklist answer comes from the run record (issue 15.2): for every study design, each item that names a
method points at a table or figure this run's report holds; no "?", no "not recorded", no wrong counts, no claim
of what was not done; TRIPOD+AI beside CLAIM."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from medlib.config import ExplainConfig, ModelConfig, RadiomicsConfig, StudyConfig, StudySection
from medlib.pipelines import features as feature_pipeline
from medlib.pipelines import record
from medlib.radiomics.backbone import BackboneWeights
from medlib.report.checklist import claim_checklist
from medlib.report.format import NOT_RECORDED
from medlib.report.tables import performance_values
from medlib.report.tripod import TRIPOD_AI, tripod_checklist
from medlib.schema import SplitRecord

#: a method named in an answer -> the report sections that hold its result (one must be pointed at)
METHOD_SECTIONS = {
    r"Grad-CAM": {"fig-cam", "tbl-cam-sanity"},
    r"sanity check": {"tbl-cam-sanity"},
    r"paired DeLong": {"tbl-delong"},
    r"DeLong": {"tbl-performance", "tbl-delong"},
    r"Holm": {"tbl-delong"},
    r"decision curve|net benefit": {"fig-dca"},
    r"\bcalibration\b|Brier": {"tbl-calibration", "fig-calibration", "tbl-recalibration"},
    r"recalibration": {"tbl-recalibration"},
    r"\bROC\b": {"fig-roc"},
    r"confusion": {"fig-confusion"},
    r"habitat subregion": {"fig-habitats", "tbl-features"},
    r"LASSO coefficient": {"tbl-selected"},
    r"Table 1|[Bb]aseline characteristics": {"tbl-table1-set", "tbl-table1-outcome"},
    r"Wilson|bootstrap": {"tbl-performance"},
    r"validation AUC": {"fig-learning"},
}

STUDY = StudySection(name="demo", title="Demo study", question="Does it work?", population="Everyone.",
                     unit="patient", positive="yes", negative="no")
PROVENANCE = {"medlib": "0.1.0", "python": "3.11", "packages": {"torch": "2"}, "git_commit": "a" * 40,
              "cohort_hash": "b" * 64}


def _prepared(external: bool, covariates: bool):
    rng = np.random.default_rng(0)
    sets = ["train"] * 30 + ["val"] * 12 + ["test"] * 12 + (["external"] * 10 if external else [])
    n = len(sets)
    table = pd.DataFrame({"case_id": [f"c{i}" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)],
                          "y": np.array([0, 1] * (n // 2)), "set": sets, "age": rng.normal(60, 9, n)})
    split = SplitRecord(table=table[["case_id", "patient_id", "y", "set"]], hash="c" * 64,
                        how="Random split by patient, stratified by outcome, seed 0.")
    return SimpleNamespace(table=table, split=split, cohort=None, sets=split.sets)


def _predictions(models, prepared):
    rng = np.random.default_rng(1)
    rows = []
    for m in models:
        t = prepared.table
        score = np.clip(0.5 + 0.3 * (t["y"] - 0.5) + rng.normal(0, 0.2, len(t)), 0.01, 0.99)
        rows.append(pd.DataFrame({"case_id": t["case_id"], "patient_id": t["patient_id"], "model": m,
                                  "set": t["set"], "y_true": t["y"], "score": score}))
    return pd.concat(rows, ignore_index=True)


def _summary(cfg: StudyConfig, prepared, models):
    predictions = _predictions(models, prepared)
    thresholds = record.freeze_thresholds(predictions, cfg.threshold)
    values = performance_values(predictions, thresholds, sets=record.performance_sets(cfg, prepared))
    sections = record.report_sections(cfg, prepared)
    if cfg.design == "features":
        weights = BackboneWeights("trained", "resnet18", "resnet18 trained on 30 training-set cases", "d" * 64,
                                  {"epochs": 1})
        results = feature_pipeline.FeatureResults(
            predictions=predictions,
            selected={m: pd.DataFrame({"feature": ["a"], "coefficient": [0.5]}) for m in models},
            candidates={m: 40 for m in models},
            tuning={m: {"lasso_alpha": 3.16, "lasso_C": 0.316, "svm_C": 10.0, "gamma": 0.1, "inner_cv_auc": 0.7,
                        "folds": 5, "selected": 1, "candidates": 40} for m in models},
            features=feature_pipeline.FeatureSet(pd.DataFrame(), pd.DataFrame(), {}, deep_weights=weights))
    else:
        results = SimpleNamespace(parameters={m: 11_000_000 for m in models}, predictions=predictions)
    summary = record.run_summary(cfg, prepared, results, thresholds, PROVENANCE, sections)
    if cfg.design == "features":  # the feature pipeline's own record (record._feature_summary delegates to it)
        summary.update(feature_pipeline.summary_fields(cfg, results))
    summary.setdefault("intervals", {m: sorted(set(g)) for m, g in values.groupby("metric")["method"]})
    return summary


def _config(design: str, n_models: int, explain: bool = True, habitats: int = 3, covariates: bool = True):
    cohort = {"covariates": ("age",) if covariates else (), "mask_column": "mask" if design == "features" else None}
    if design == "features":
        return StudyConfig(study=STUDY, design="features", cohort=cohort,
                           radiomics=RadiomicsConfig(enabled=True, habitats=habitats))
    models = tuple(ModelConfig(name="resnet18", label=f"M{i}") for i in range(n_models))
    return StudyConfig(study=STUDY, cohort=cohort, models=models, explain=ExplainConfig(enabled=explain))


DESIGNS = {
    "one CNN, no external": (dict(design="classifier", n_models=1), False),
    "one CNN, external, no Grad-CAM": (dict(design="classifier", n_models=1, explain=False), True),
    "three CNNs, external": (dict(design="classifier", n_models=3), True),
    "three CNNs, no covariates": (dict(design="classifier", n_models=3, covariates=False), False),
    "features with habitats": (dict(design="features", n_models=0), False),
    "features, no habitats, external": (dict(design="features", n_models=0, habitats=0), True),
}


def _models(cfg):
    if cfg.design == "features":
        return ["Radiomics", "Deep", "Fused"] + [f"Habitat {h + 1}" for h in range(cfg.radiomics.habitats)]
    return [m.display_name for m in cfg.models]


@pytest.fixture(scope="module", params=list(DESIGNS), ids=list(DESIGNS))
def design(request):
    kwargs, external = DESIGNS[request.param]
    cfg = _config(**kwargs)
    prepared = _prepared(external, bool(cfg.cohort.covariates))
    return cfg, _summary(cfg, prepared, _models(cfg))


@pytest.mark.parametrize("make", [claim_checklist, tripod_checklist], ids=["CLAIM", "TRIPOD+AI"])
def test_every_method_named_points_at_a_result_of_this_run(design, make):
    cfg, summary = design
    sections = set(summary["sections"])
    table = make(summary)
    for row in table.itertuples():
        where = {w.lstrip("@") for w in row.where.split(", ") if w.startswith("@")}
        assert where <= sections, (row.item, where - sections)
        for pattern, holders in METHOD_SECTIONS.items():
            if re.search(pattern, row.value):
                assert where & holders & sections, f"item {row.item} names {pattern!r} without its result: {row.value}"


@pytest.mark.parametrize("make", [claim_checklist, tripod_checklist], ids=["CLAIM", "TRIPOD+AI"])
def test_no_question_marks_no_gaps_no_wrong_counts(design, make):
    cfg, summary = design
    values = make(summary)["value"].str.replace(STUDY.question, "the question", regex=False)
    assert not values.str.contains("?", regex=False).any()
    assert not values.str.contains(NOT_RECORDED, regex=False).any()
    assert not values.str.contains(r"\b1 (?:parameters|features|models|epochs)\b").any()
    if cfg.design == "features":  # LASSO + SVM have no "parameters" count; they keep features
        assert not values.str.contains(r"\bparameters?\b").any()


def test_feature_design_states_backbone_weights_tuning_and_out_of_fold_training_auc(design):
    cfg, summary = design
    if cfg.design != "features":
        pytest.skip("feature design only")
    claim = claim_checklist(summary).set_index("item")["value"]
    assert "d" * 64 in claim[24] and "trained on 30 training-set cases" in claim[24]
    assert "1 feature kept by LASSO of 40 candidates" in claim[22] and "SVM C 10" in claim[22]
    assert "grouped by patient" in claim[26] and "out-of-fold" in claim[32]
    tripod = tripod_checklist(summary).set_index("item")["value"]
    assert "hyperparameter" not in tripod["12c"] or "grouped by patient" in tripod["12c"]


def test_single_model_claims_no_comparison(design):
    cfg, summary = design
    if cfg.design == "features" or len(cfg.models) > 1:
        pytest.skip("single-model designs only")
    text = " ".join(claim_checklist(summary)["value"]) + " ".join(tripod_checklist(summary)["value"])
    assert "paired DeLong" not in text and "Holm" not in text
    if not cfg.explain.enabled:
        assert "Grad-CAM" not in text


def test_tripod_has_its_52_items_in_order():
    ids = [it.number for it in TRIPOD_AI]
    assert len(ids) == 52 and len(set(ids)) == 52
    assert ids[:6] == ["1", "2", "3a", "3b", "3c", "4"] and ids[-3:] == ["27a", "27b", "27c"]
    assert sum(1 for i in ids if i.startswith("12")) == 7 and sum(1 for i in ids if i.startswith("18")) == 6
