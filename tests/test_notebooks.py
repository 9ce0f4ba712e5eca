"""Every study notebook runs end to end with its smoke params, and the reports render without identifiers.

This is the walking skeleton's proof: synthetic cohort on disk → papermill → executed notebook → rendered
HTML and PDF. The runs are tiny (few cases, 32-pixel images, two epochs).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medlib.cli.runner import run_study

pytestmark = pytest.mark.slow

STUDIES = ("nec", "onfh", "glioma", "ich", "medmnist")
SMOKE_SCALE = 0.15


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, reference_dir):
    from medlib import synth

    root = tmp_path_factory.mktemp("smoke")
    for study in ("nec", "onfh", "glioma", "ich"):
        synth.generate(study, root / "data", seed=0, scale=SMOKE_SCALE)
    return root


def overrides_for(study: str, root: Path, reference_dir: Path) -> list[str]:
    if study == "medmnist":
        return [f"cohort.manifest={root}/data/pneumoniamnist/manifest.csv",
                f"cohort.source={reference_dir}/medmnist/pneumoniamnist.npz",
                f"split.split_file={root}/data/pneumoniamnist/split.csv",
                f"runs_dir={root}/runs", f"image.cache_dir={root}/cache"]
    cache = [] if study == "ich" else [f"image.cache_dir={root}/cache"]  # the features design has no image cache
    return [f"cohort.manifest={root}/data/{study}/manifest.csv", f"runs_dir={root}/runs", *cache]


@pytest.mark.parametrize("study", STUDIES)
def test_notebook_runs_with_smoke_params(study, workspace, reference_dir):
    result = run_study(study, params=Path("params/smoke") / f"{study}.yaml",
                       overrides=overrides_for(study, workspace, reference_dir),
                       reports_dir=workspace / "reports")
    nb = json.loads(result.report.read_text())
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    text = result.report.read_text()
    for label in ("tbl-performance", "fig-roc", "tbl-claim"):
        assert label in text
    assert "image/png" in text
    run_dirs = list((workspace / "runs" / study).iterdir())
    assert any((d / "predictions.csv").is_file() for d in run_dirs)


def test_reports_render_without_identifiers(workspace, require_quarto):
    from medlib.render.site import render_reports
    from medlib.synth import planted_identifier_strings

    reports = workspace / "reports"
    if not list(reports.glob("*.ipynb")):
        pytest.skip("no executed notebooks (the notebook tests did not run)")
    render_reports(reports, reports / "_site", manuscripts=False)
    site = reports / "_site"
    html = {p.name: p.read_text(errors="replace") for p in site.rglob("*.html")}
    assert html, "no HTML pages rendered"
    everything = "\n".join(html.values())
    for planted in planted_identifier_strings():
        assert planted not in everything
    for path in list(workspace.rglob("*.csv")) + list(workspace.rglob("*.json")) + list(reports.glob("*.ipynb")):
        if "data" in path.parts:
            continue  # the synthetic cohort itself carries the planted headers by design
        text = path.read_text(errors="replace")
        for planted in planted_identifier_strings():
            assert planted not in text, f"{planted} found in {path}"
    pdfs = list(site.rglob("*.pdf"))
    assert pdfs and all(p.read_bytes()[:4] == b"%PDF" for p in pdfs)
