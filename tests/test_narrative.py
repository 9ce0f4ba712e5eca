"""The report's sentences come from the params: every built-in study and a user's own section."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pandas as pd
import pytest

from medlib.config import CohortConfig, ExplainConfig, ModelConfig, StudyConfig, StudySection, load_config
from medlib.report import narrative
from medlib.schema import SplitRecord

ROOT = Path(__file__).resolve().parents[1]
STUDY = StudySection(name="wrist", title="Scaphoid fractures", question="Is the scaphoid broken?",
                     population="Adults after a fall.", unit="wrist", positive="fracture", negative="no fracture",
                     inputs={"pa": "PA wrist radiograph"})
CFG = StudyConfig(study=STUDY, cohort=CohortConfig(image_columns=("pa",)), models=(ModelConfig(name="resnet18", label="R18"),
                                       ModelConfig(name="densenet121", label="D121", pretrained=True)))


def _split(n_patients: int, per_patient: int = 1, external: bool = False) -> SplitRecord:
    rows = [{"case_id": f"c{p}-{k}", "patient_id": f"p{p}", "y": p % 2,
             "set": "external" if external and p == 0 else "train"}
            for p in range(n_patients) for k in range(per_patient)]
    return SplitRecord(table=pd.DataFrame(rows), hash="ab" * 32, how="Random split by patient.")


def test_introduction_is_the_params_words():
    text = narrative.introduction(CFG)
    for words in ("Is the scaphoid broken?", "Adults after a fall.", "Positive (*1*): fracture",
                  "Two models compared (R18 and D121)"):
        assert words in text


def test_cohort_paragraph_counts_units_and_patients():
    cfg = CFG
    text = narrative.cohort_paragraph(cfg, _split(3, per_patient=2))
    assert text.startswith("Each wrist contributes PA wrist radiograph (`pa`).")
    assert "6 wrists from 3 patients were included" in text and "There is no external test set." in text
    one = narrative.cohort_paragraph(cfg, _split(1, external=True))
    assert "1 wrist from 1 patient was included" in one and "never used for training" in one


def test_models_paragraph_names_initialisation_and_training():
    text = narrative.models_paragraph(CFG)
    assert "**R18**: resnet18 (2D, random initialisation" in text and "**D121**: densenet121 (2D, ImageNet" in text
    t = CFG.train
    optimizer = "AdamW" if t.optimizer == "adamw" else "Adam"
    assert f"{optimizer} (learning rate 0.001, weight decay" in text  # the 2D default
    assert f"up to {t.epochs} epochs" in text


def test_models_paragraph_gives_the_learning_rate_and_its_3d_rule():
    volumes = dataclasses.replace(CFG, image=dataclasses.replace(CFG.image, size=(16, 16, 16)),
                                  models=(ModelConfig(name="resnet18", label="R18", spatial_dims=3),))
    text = narrative.models_paragraph(volumes)
    assert "(learning rate 0.000333, weight decay" in text
    assert "The learning rate is a third of the 2D rate 0.001: a 3 × 3 × 3 kernel has three times the fan-in" in text
    chosen = dataclasses.replace(volumes, train=dataclasses.replace(CFG.train, lr=2e-3))
    text = narrative.models_paragraph(chosen)
    assert "(learning rate 0.002, weight decay" in text and "a third" not in text  # a set rate, no rule


def test_explain_and_reference_paragraphs_say_what_was_not_done():
    off = dataclasses.replace(CFG, explain=ExplainConfig(enabled=False))
    assert "not computed in this run" in narrative.explain_paragraph(off, ["tbl-performance"])
    assert narrative.reference_paragraph(CFG) == ""  # no published results in the params: no comparison


def test_explain_paragraph_names_the_models_with_hirescam_maps_only():
    """At 64 px both models' maps come from an earlier layer (HiResCAM, named); at 224 px from the last block,
    so the paragraph does not mention HiResCAM."""
    from medlib.config import ImageConfig

    small = dataclasses.replace(CFG, image=ImageConfig(size=(64, 64)))
    text = narrative.explain_paragraph(small, ["fig-cam"])
    assert "The maps of R18 and D121 come from a layer before the model's last block" in text
    assert "HiResCAM's (Draelos & Carin 2020)" in text
    large = dataclasses.replace(CFG, image=ImageConfig(size=(224, 224)))
    assert "HiResCAM" not in narrative.explain_paragraph(large, ["fig-cam"])


@pytest.mark.parametrize("params", sorted((ROOT / "params").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_built_in_study_tells_its_own_story(params):
    cfg = load_config(params)
    text = narrative.introduction(cfg) + narrative.models_paragraph(cfg) + narrative.reference_paragraph(cfg)
    assert cfg.study.question in text and cfg.study.population in text
    assert "?" not in text.replace(cfg.study.question, "")  # no unanswered placeholders


# ------------------------------------------------------------------ what the run did (issue 15.1, 15.3, 15.8)

from medlib.config import ConfigError, RadiomicsConfig  # noqa: E402

FEATURES = StudyConfig(study=STUDY, design="features", cohort=CohortConfig(image_columns=("pa",), mask_column="m"),
                       radiomics=RadiomicsConfig(enabled=True))


def test_feature_methods_say_which_weights_how_habitats_and_tuning_were_made():
    text = narrative.models_paragraph(FEATURES)
    assert "random initialisation" not in text and "trained on the training set's ROI slices only" in text
    assert "numbered by ascending mean intensity" in text and "every patient" in text
    assert "tuned together by cross-validated AUC in folds grouped by patient" in text
    assert "out-of-fold" in text and "never resubstitution" in text
    ablation = dataclasses.replace(FEATURES, radiomics=RadiomicsConfig(enabled=True, deep_weights="random",
                                                                        habitats=0))
    text = narrative.models_paragraph(ablation)
    assert "an ablation" in text and "Habitat" not in text


def test_deep_weights_paragraph_states_source_and_hash():
    from medlib.radiomics.backbone import BackboneWeights

    w = BackboneWeights("imagenet", "resnet50", "torchvision's ImageNet weights for resnet50 (resnet50-0676ba61.pth)",
                        "0676ba61" + "e" * 56)
    text = narrative.deep_weights_paragraph(w)
    assert "resnet50-0676ba61.pth" in text and w.sha256 in text and "Ablation" not in text
    random = narrative.deep_weights_paragraph({**w.as_dict(), "kind": "random", "ablation": True})
    assert "Ablation" in random and narrative.deep_weights_paragraph(None) == ""


def test_statistics_paragraph_describes_the_recorded_methods_only():
    values = pd.DataFrame({"metric": ["auc", "accuracy", "sensitivity", "f1", "auc"],
                           "method": ["DeLong", "Wilson", "Wilson", "stratified bootstrap", "DeLong"]})
    text = narrative.statistics_paragraph(values)
    assert text == "95% confidence intervals: AUC by DeLong; Accuracy and Sensitivity by Wilson; F1 by stratified bootstrap."
    assert "patient" not in text  # no patient-level resampling claimed when none was recorded
    clustered = values.assign(method=["patient-level bootstrap (500 patients)"] * 5)
    assert "by patient-level bootstrap (500 patients)" in narrative.statistics_paragraph(clustered)
    with pytest.raises(ValueError, match="missing"):
        narrative.statistics_paragraph(pd.DataFrame({"metric": ["auc"]}))


def test_deviations_compare_the_config_with_the_published_settings():
    published = {"split.ratios": {"value": [0.8, 0.2], "why": "a validation set chooses the threshold"},
                 "models[*].pretrained": True, "models[R18].name": "resnet18", "train.lr": 1e-3}
    cfg = dataclasses.replace(CFG, study=dataclasses.replace(STUDY, published=published))
    text = narrative.deviations(cfg)
    assert ("- `split.ratios`: published design [0.8, 0.2]; this run [0.7, 0.3, 0] (a validation set chooses "
            "the threshold).") in text
    assert "- `models[R18].pretrained`: published design true; this run false." in text
    assert "models[D121].pretrained" not in text  # D121 is pretrained, as published
    assert "models[R18].name" not in text and "train.lr" not in text  # the same: no deviation
    for bad in ("split.ratio", "models[*].depth", "models[R50].depth"):
        wrong = dataclasses.replace(CFG, study=dataclasses.replace(STUDY, published={bad: 1}))
        with pytest.raises(ConfigError, match=re.escape(bad)):
            narrative.deviations(wrong)
    left_out = dataclasses.replace(CFG, study=dataclasses.replace(STUDY, published={"models[R50].name": "resnet50"}))
    assert "- `models[R50]`: a model of the published design that this run does not train." in (
        narrative.deviations(left_out))
    assert "no published design settings" in narrative.deviations(CFG)


def test_random_deep_features_are_always_listed_as_an_ablation():
    cfg = dataclasses.replace(FEATURES, radiomics=RadiomicsConfig(enabled=True, deep_weights="random"))
    assert "an ablation" in narrative.deviations(cfg)
    assert "ablation" not in narrative.deviations(FEATURES)


@pytest.mark.parametrize("study, expected", [
    ("ich", ["`radiomics.deep_weights`: published design imagenet; this run trained", "`split.ratios`"]),
    ("onfh", ["`models[Both views].pretrained`: published design true; this run false", "`image.size`"]),
    ("glioma", ["`models[ResNet18-3D].name`: published design mresnet; this run resnet18"]),
])
def test_built_in_studies_list_their_deviations_from_the_published_design(study, expected):
    """References: the published designs in ../shared/STUDIES.md (ImageNet ResNet50s in ICH and ONFH, 224 x 224 ONFH
    crops, an 8:2 ICH split, MResNet in the glioma study) against the demo's params."""
    text = narrative.deviations(load_config(ROOT / "params" / f"{study}.yaml"))
    for words in expected:
        assert words in text


def test_run_record_names_the_models_with_hirescam_maps():
    """The record's explainability line (the checklist's answer) names HiResCAM only for the models that use it."""
    from types import SimpleNamespace

    from medlib.config import ImageConfig
    from medlib.pipelines.record import _classifier_summary

    results = SimpleNamespace(parameters={})
    small = _classifier_summary(dataclasses.replace(CFG, image=ImageConfig(size=(64, 64))), results)
    assert small["explainability"] == ("Grad-CAM (pytorch-grad-cam; HiResCAM for R18, D121, at a layer before the "
                                       "last block) with a randomised-weights sanity check")
    large = _classifier_summary(dataclasses.replace(CFG, image=ImageConfig(size=(224, 224))), results)
    assert large["explainability"] == "Grad-CAM (pytorch-grad-cam) with a randomised-weights sanity check"


def test_record_holds_the_learning_rate_used():
    """An unset train.lr is recorded as the rate the run used (1e-3 in 2D, a third in 3D), and the checklist
    answer gives it as the methods paragraph does."""
    from types import SimpleNamespace

    from medlib.config import ImageConfig
    from medlib.pipelines.record import _classifier_summary
    from medlib.report.checklist_answers import _TRAINING

    results = SimpleNamespace(parameters={})
    assert _classifier_summary(CFG, results)["training"]["lr"] == 1e-3
    volumes = dataclasses.replace(CFG, image=ImageConfig(size=(16, 16, 16)),
                                  models=(ModelConfig(name="resnet18", label="R18", spatial_dims=3),))
    rate = _classifier_summary(volumes, results)["training"]["lr"]
    assert rate == pytest.approx(1e-3 / 3)
    assert _TRAINING["lr"][1](rate) == "learning rate 0.000333"
