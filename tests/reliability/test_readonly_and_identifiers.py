"""ICH end to end through the CLI (head CT DICOM series with planted identifiers, NIfTI masks, radiomics):
the cohort folder is not written to, and no planted identifier reaches any output.

Tests run as root, where ``chmod a-w`` blocks nothing, so "read-only" is checked by snapshotting every file's
bytes, mtime and mode and the folder listing before and after the run. The NEC counterpart (and the interrupted
run's leftovers) is in ``test_resume.py``.
"""

from __future__ import annotations

import shutil

import pytest

from medlib.synth import planted_identifier_strings
from tests.reliability.conftest import run_cli
from tests.reliability.corpus import workspace
from tests.reliability.test_resume import snapshot

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ich_run(tmp_path_factory):
    from medlib import synth

    root = tmp_path_factory.mktemp("ich")
    # the default 96-pixel grid: on the 32-pixel one a habitat subregion can be too small for pyradiomics
    synth.generate("ich", root / "base", seed=0, scale=0.1)
    ws = workspace(root / "base", root, "ich")
    params = ws.params(radiomics={"feature_classes": ["firstorder", "shape", "glcm"]})
    before = snapshot(ws.cohort)
    result = run_cli(ws.run_argv(params, "--run-id", "ich1"))
    assert result.returncode == 0, result.stderr
    return {"root": root, "cohort": ws.cohort, "before": before, "log": result.stdout + result.stderr}


def test_cohort_folder_is_never_written(ich_run):
    after = snapshot(ich_run["cohort"])
    assert sorted(after) == sorted(ich_run["before"])
    assert [name for name in after if after[name] != ich_run["before"][name]] == []


def test_no_planted_identifier_in_any_output(ich_run):
    root = ich_run["root"]
    outputs = [p for p in root.rglob("*") if p.is_file() and not {"cohort", "base"} & set(p.relative_to(root).parts)]
    assert (root / "reports" / "ich.ipynb") in outputs and (root / "runs" / "ich" / "ich1" / "predictions.csv") in outputs
    blobs = {str(p): p.read_bytes() for p in outputs}
    blobs["CLI stdout and stderr"] = ich_run["log"].encode()
    for planted in planted_identifier_strings():
        found = [name for name, blob in blobs.items() if planted.encode() in blob]
        assert found == [], f"{planted!r} in {found}"
    series = next(p for p in (ich_run["cohort"] / "ct").iterdir() if p.is_dir())  # some cases are NIfTI
    header = next(series.iterdir()).read_bytes()
    assert any(p.encode() in header for p in planted_identifier_strings())  # the input does carry them


def test_readonly_copy_is_never_written_either(ich_run, tmp_path):
    """A chmod a-w copy as a user would hand it over: a smoke run's outputs go elsewhere (mode bits unchanged)."""
    copy = tmp_path / "ro"
    shutil.copytree(ich_run["cohort"], copy)
    for path in [copy, *copy.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)
    before = snapshot(copy)
    from medlib.config import load_config
    from medlib.pipelines.prepare import prepare
    from tests.reliability.corpus import SMOKE

    cfg = load_config(SMOKE / "ich.yaml", [f"cohort.manifest={copy / 'manifest.csv'}"])
    prepare(cfg)  # reads the manifest and checks every file
    assert snapshot(copy) == before
