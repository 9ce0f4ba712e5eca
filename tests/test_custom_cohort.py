"""A user's own PNG cohort, with its own ``study:`` section, through the study notebook and the renderer: the
report is named after the user's params file and tells the user's study, never the NEC template's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from medlib.cli.runner import run_study
from medlib.config import ConfigError

pytestmark = pytest.mark.slow

TITLE = "Scaphoid fracture on wrist radiographs"
POPULATION = "Adults seen in the emergency department after a fall on the outstretched hand."
NEC_WORDS = re.compile(r"neonat|infant|\bNEC\b|bowel|enterocolitis", re.IGNORECASE)


def write_png_cohort(folder: Path, n: int = 48, seed: int = 0) -> Path:
    """PNG images (a bright oblique line marks the positives), one per patient, and a manifest with covariates."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    rows = []
    for i in range(n):
        y = i % 2
        image = rng.normal(90, 20, size=(40, 40))
        if y:
            r = np.arange(10, 30)
            image[r, r + rng.integers(-4, 5)] += 120
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(folder / "images" / f"w{i:03d}.png")
        rows.append(f"w{i:03d},p{i:03d},{'fracture' if y else 'intact'},images/w{i:03d}.png,"
                    f"{int(rng.integers(18, 90))},{'F' if rng.random() < 0.5 else 'M'}")
    manifest = folder / "manifest.csv"
    manifest.write_text("case_id,patient_id,outcome,wrist,age_years,sex\n" + "\n".join(rows) + "\n")
    return manifest


def write_params(path: Path, manifest: Path, **study_changes) -> Path:
    study = {"name": "scaphoid", "title": TITLE,
             "question": "Does a wrist radiograph show a scaphoid fracture that needs immobilisation?",
             "population": POPULATION, "unit": "wrist", "positive": "fracture confirmed on follow-up imaging",
             "negative": "no fracture on follow-up", "inputs": {"wrist": "posteroanterior wrist radiograph (PNG)"}}
    study.update(study_changes)
    params = {
        "design": "classifier", "study": {k: v for k, v in study.items() if v is not None},
        "cohort": {"manifest": str(manifest), "image_columns": ["wrist"], "label_column": "outcome",
                   "positive": "fracture", "negative": "intact", "covariates": ["age_years", "sex"],
                   "categorical": ["sex"]},
        "split": {"ratios": [0.5, 0.25, 0.25], "seed": 0}, "image": {"size": [32, 32]},
        "models": [{"name": "resnet18", "label": "ResNet18"}],
        "train": {"epochs": 2, "batch_size": 8, "lr": 0.001, "threads": 1}, "explain": {"n_cases": 1},
    }
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def custom_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("custom")
    manifest = write_png_cohort(root / "cohort")
    params = write_params(root / "scaphoid_study.yaml", manifest)
    reports = root / "reports"
    result = run_study(params=params, reports_dir=reports,
                       overrides=[f"runs_dir={root / 'runs'}", f"image.cache_dir={root / 'cache'}"])
    return root, result


def test_report_is_named_after_the_params_file(custom_report):
    root, result = custom_report
    assert result.report == root / "reports" / "scaphoid_study.ipynb" and result.study == "scaphoid"
    assert not (root / "reports" / "nec.ipynb").exists()
    assert list((root / "runs" / "scaphoid").iterdir())


def test_report_tells_the_users_study(custom_report):
    _, result = custom_report
    nb = json.loads(result.report.read_text())
    assert nb["metadata"]["title"] == TITLE
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    shown = json.dumps([c["source"] for c in nb["cells"] if c["cell_type"] == "markdown"] +
                       [o for c in nb["cells"] for o in c.get("outputs", [])])  # what the report shows
    for words in (POPULATION, "Each wrist contributes", "posteroanterior wrist radiograph"):
        assert words in shown
    assert not NEC_WORDS.search(shown)


def test_rendered_report_carries_title_and_population(custom_report, require_quarto):
    from medlib.render.site import render_reports

    root, result = custom_report
    site = root / "site"
    render_reports(result.report.parent, site, pdf=False, manuscripts=False)
    html = (site / "scaphoid_study.html").read_text()
    assert TITLE in html and POPULATION in html
    assert not NEC_WORDS.search(re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize("change, message", [
    ({"population": None}, r"study\.population"),
    ({"species": "human"}, r"study\.species"),
    ({"unit": 3}, r"study\.unit"),
])
def test_bad_study_section_is_refused_before_any_data_is_read(tmp_path, change, message):
    manifest = tmp_path / "never-read.csv"  # does not exist: the params must fail first
    params = write_params(tmp_path / "bad.yaml", manifest, **change)
    with pytest.raises(ConfigError, match=message) as err:
        run_study(params=params, reports_dir=tmp_path / "reports")
    assert "bad.yaml" in str(err.value)
    assert not (tmp_path / "reports").exists()
