"""The report's sentences come from the params: every built-in study and a user's own section."""

from __future__ import annotations

import dataclasses
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
    assert "Adam (learning rate 0.002)" in text and "up to 30 epochs" in text


def test_explain_and_reference_paragraphs_say_what_was_not_done():
    off = dataclasses.replace(CFG, explain=ExplainConfig(enabled=False))
    assert "not computed in this run" in narrative.explain_paragraph(off, ["tbl-performance"])
    assert narrative.reference_paragraph(CFG) == ""  # no published results in the params: no comparison


@pytest.mark.parametrize("params", sorted((ROOT / "params").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_built_in_study_tells_its_own_story(params):
    cfg = load_config(params)
    text = narrative.introduction(cfg) + narrative.models_paragraph(cfg) + narrative.reference_paragraph(cfg)
    assert cfg.study.question in text and cfg.study.population in text
    assert "?" not in text.replace(cfg.study.question, "")  # no unanswered placeholders
