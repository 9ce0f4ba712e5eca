"""Where files are found (medlib.resources): params named from any folder (a notebook's kernel starts in
notebooks/), relative paths of a params file read against the file, then the workspace, and records that show
paths relative to the workspace."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from medlib import resources
from medlib.resources import display_path, find_params, resolve_input

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def test_the_checkout_is_found_and_its_folders_are_the_bundle():
    assert resources.source_root() == PROJECT_ROOT
    assert resources.bundled("params") == PROJECT_ROOT / "params"
    assert (resources.bundled("notebooks") / "study.ipynb").is_file()


@pytest.mark.parametrize("name", ["params/nec.yaml", "nec.yaml", "nec", "params/smoke/nec.yaml", "smoke/nec"])
def test_params_are_found_from_the_notebooks_folder(name, monkeypatch, tmp_path):
    monkeypatch.chdir(PROJECT_ROOT / "notebooks")
    monkeypatch.setenv(resources.WORKSPACE_ENV, str(tmp_path))  # not even the workspace holds them
    expected = PROJECT_ROOT / "params" / ("smoke/nec.yaml" if "smoke" in name else "nec.yaml")
    assert find_params(name) == expected


def test_a_users_params_file_wins_over_the_built_in_one(monkeypatch, tmp_path):
    (tmp_path / "params").mkdir()
    mine = tmp_path / "params" / "nec.yaml"
    mine.write_text("design: classifier\n")
    monkeypatch.chdir(tmp_path)
    assert find_params("params/nec.yaml") == mine


def test_a_missing_params_file_names_where_it_looked(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"params file not found: mine\.yaml \(looked in .*built-in studies"):
        find_params("mine.yaml")


def test_relative_inputs_are_read_against_the_params_file_then_the_workspace(tmp_path):
    study, root = tmp_path / "study", tmp_path / "ws"
    (study / "data").mkdir(parents=True)
    (study / "data" / "manifest.csv").write_text("x\n")
    assert resolve_input("data/manifest.csv", study, root) == str(study / "data" / "manifest.csv")
    assert resolve_input("data/other.csv", study, root) == str(root / "data" / "other.csv")  # not beside: workspace
    assert resolve_input("/abs/m.csv", study, root) == "/abs/m.csv"
    assert resolve_input(None, study, root) is None


def test_load_study_from_the_notebooks_folder_reads_the_same_files(monkeypatch, tmp_path):
    """The issue's bug: a kernel in notebooks/ could not open params/nec.yaml, and the manifest path was relative
    to the current folder. Now both resolve as from the project root, and relative to a user's params file."""
    from medlib.pipelines.prepare import load_study

    monkeypatch.chdir(PROJECT_ROOT / "notebooks")
    monkeypatch.setenv(resources.WORKSPACE_ENV, str(PROJECT_ROOT))
    cfg = load_study("params/nec.yaml", check=False)
    assert cfg.cohort.manifest == str(PROJECT_ROOT / "data" / "synth" / "nec" / "manifest.csv")
    assert cfg.runs_dir == str(PROJECT_ROOT / "runs")

    study = tmp_path / "mine"
    study.mkdir()
    data = yaml.safe_load((PROJECT_ROOT / "params" / "smoke" / "nec.yaml").read_text())
    data["cohort"]["manifest"] = "manifest.csv"
    (study / "mine.yaml").write_text(yaml.safe_dump(data))
    (study / "manifest.csv").write_text("case_id\n")
    monkeypatch.chdir(tmp_path)
    cfg = load_study("mine/mine.yaml", check=False)
    assert cfg.cohort.manifest == str(study / "manifest.csv")


def test_records_show_paths_relative_to_the_workspace(monkeypatch, tmp_path):
    monkeypatch.setenv(resources.WORKSPACE_ENV, str(tmp_path))
    assert display_path(tmp_path / "data" / "m.csv") == "data/m.csv"
    assert display_path("data/m.csv") == "data/m.csv"
    home = Path.home()
    if not str(tmp_path).startswith(str(home)):
        assert display_path(home / "x" / "m.csv") == os.path.join("~", "x", "m.csv")


def test_the_run_config_holds_no_absolute_path(monkeypatch, tmp_path):
    from medlib.config import config_to_dict
    from medlib.pipelines.prepare import load_study

    monkeypatch.setenv(resources.WORKSPACE_ENV, str(PROJECT_ROOT))
    cfg = load_study(PROJECT_ROOT / "params" / "smoke" / "nec.yaml", check=False)
    assert Path(cfg.cohort.manifest).is_absolute()
    text = yaml.safe_dump(config_to_dict(cfg))
    assert str(PROJECT_ROOT) not in text
    assert "manifest: data/smoke/nec/manifest.csv" in text and "runs_dir: runs" in text
