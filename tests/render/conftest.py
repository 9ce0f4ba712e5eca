"""Fixtures of the Quarto render tests: real Quarto, pdftotext, and one executed smoke notebook per session.

Quarto and pdftotext are found or the tests are skipped; in CI (``CI=true``) a missing one is a failure: the
real renderer is what these tests prove.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

SMOKE_STUDY = "nec"


def _need(what: str, found: object) -> None:
    if found:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is required in CI")
    pytest.skip(f"{what} not installed")


@pytest.fixture(scope="session")
def quarto() -> Path:
    from medlib.render.quarto import QuartoNotFound, find_quarto

    try:
        path = find_quarto()
    except QuartoNotFound:
        path = None
    _need("Quarto (make setup installs it)", path)
    return path


@pytest.fixture(scope="session")
def pdftotext() -> str:
    path = shutil.which("pdftotext")
    _need("pdftotext (Debian's poppler-utils)", path)
    return path


@pytest.fixture(scope="session")
def smoke_reports(tmp_path_factory) -> Path:
    """A reports folder holding the executed smoke NEC notebook (tiny: 32-pixel images, two epochs) and a copy
    of it that failed (``broken.failed.ipynb``, an error in one cell)."""
    from medlib import synth
    from medlib.cli.runner import run_study

    root = tmp_path_factory.mktemp("render")
    synth.generate(SMOKE_STUDY, root / "data", seed=0, scale=0.1)
    result = run_study(SMOKE_STUDY, params=Path("params/smoke") / f"{SMOKE_STUDY}.yaml",
                       overrides=[f"cohort.manifest={root}/data/{SMOKE_STUDY}/manifest.csv", f"runs_dir={root}/runs",
                                  f"image.cache_dir={root}/cache"],
                       reports_dir=root / "reports")
    nb = json.loads(result.report.read_text())
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code" and "label: fig-roc" in "".join(c["source"]))
    cell["outputs"] = [{"output_type": "error", "ename": "ZeroDivisionError", "evalue": "division by zero",
                        "traceback": []}]
    (result.report.parent / "broken.failed.ipynb").write_text(json.dumps(nb))
    return result.report.parent
