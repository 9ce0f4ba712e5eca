"""Every bad input of the corpus fails with a clear error, through the Python API and through the CLI.

Clear means: the API raises the documented exception type with a message naming the file, row or key and what
was expected; the CLI exits non-zero with exactly one line on stderr (no traceback unless ``--debug``) carrying
the same information; and nothing is left behind: no report, and either no run folder (rejected before the
notebook starts) or one marked ``failed.json`` without predictions (rejected while the notebook read images).
"""

from __future__ import annotations

import collections
import hashlib
import re
from pathlib import Path

import pytest

from tests.reliability.conftest import run_cli
from medlib.cli.runner import PROJECT_ROOT
from tests.reliability.corpus import CASES, Case, workspace
from tests.reliability.corpus_classes import CLASS_OF

#: Folders under a case's workspace that a refused input may legitimately leave behind: the preprocessing cache.
OUTPUTS = ("cache",)


def build(key: str, base: Path, tmp_path: Path) -> Case:
    study, make = CASES[key]
    return make(workspace(base, tmp_path, study))


def tree(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (links as their target), outside ``OUTPUTS``."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "->"
            for p in sorted(root.rglob("*")) if p.is_file() or p.is_symlink()
            if p.relative_to(root).parts[0] not in OUTPUTS}


def project_outputs() -> dict[str, int]:
    """What a stray write would land in: the project's top level, runs/ and reports/ (names only)."""
    return {str(p): 0 for base in (PROJECT_ROOT, PROJECT_ROOT / "runs", PROJECT_ROOT / "reports")
            if base.is_dir() for p in base.iterdir()}


def test_corpus_is_large_enough():
    """Issue #20: at least 100 cases, several in each of its six classes."""
    assert len(CASES) >= 100
    per_class = collections.Counter(CLASS_OF.get(key, 0) for key in CASES)
    assert all(per_class[k] >= 5 for k in range(1, 7)), per_class


@pytest.mark.parametrize("key", list(CASES))
def test_api_error_is_clear(key, base_cohorts, tmp_path):
    """The error names the culprit, and nothing outside a run folder changed: every file of the workspace
    (cohort, params, other runs, a refused run folder) has the checksum it had before the call."""
    case = build(key, base_cohorts, tmp_path)
    before, project = tree(tmp_path), project_outputs()
    with pytest.raises(case.error, match=case.match):
        case.api()
    assert not (tmp_path / "PWNED").exists() and not Path("PWNED").exists()
    assert tree(tmp_path) == before, "a refused input changed files"
    assert project_outputs() == project, "a refused input wrote into the project"
    if case.stage != "synth":
        assert not (tmp_path / "runs").exists() or CLASS_OF.get(key) == 2 or not any((tmp_path / "runs").rglob("config.yaml"))


def check_cli(case: Case, tmp_path: Path) -> str:
    result = run_cli(case.argv, env=case.env)
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0, result.stdout
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    line = lines[0]
    assert line.startswith(f"medlib {case.argv[0]}: "), line
    assert re.search(case.match, line), f"{case.match!r} not in {line!r}"
    assert not (tmp_path / "PWNED").exists()
    if case.reports is not None:
        assert not (case.reports / f"{case.study}.ipynb").exists()
        assert not list(case.reports.glob(".*.ipynb"))  # no temporary notebook left either
    return line


@pytest.mark.parametrize("key", list(CASES))
def test_cli_error_is_one_clear_line(key, base_cohorts, tmp_path):
    case = build(key, base_cohorts, tmp_path)
    if case.stage == "notebook":
        pytest.skip("read inside the notebook: see test_cli_error_from_notebook (slow)")
    if case.stage == "api":
        pytest.skip("reached through the Python API only")
    line = check_cli(case, tmp_path)
    assert "StudyFailed" not in line  # rejected before any notebook started
    runs = case.runs_dir
    if runs is not None and runs.exists():  # only run_id_exists made one, before the call
        assert [p.name for p in runs.rglob("*") if p.is_file()] == []


@pytest.mark.slow
@pytest.mark.parametrize("key", list(CASES))
def test_cli_error_from_notebook(key, base_cohorts, tmp_path):
    case = build(key, base_cohorts, tmp_path)
    if case.stage != "notebook":
        pytest.skip("rejected before the notebook: see test_cli_error_is_one_clear_line")
    line = check_cli(case, tmp_path)
    assert re.match(rf"medlib run: StudyFailed: {case.study}: {case.error.__name__}: ", line), line
    assert (case.reports / f"{case.study}.failed.ipynb").is_file()
    folders = [p for p in (case.runs_dir / case.study).iterdir()]
    assert len(folders) == 1
    assert (folders[0] / "failed.json").is_file()
    assert not (folders[0] / "predictions.csv").exists()


def test_debug_flag_shows_the_traceback(base_cohorts, tmp_path):
    case = build("params_wrong_type", base_cohorts, tmp_path)
    result = run_cli(["--debug", *case.argv])
    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.stderr
    assert "train.epochs: expected an integer" in result.stderr
