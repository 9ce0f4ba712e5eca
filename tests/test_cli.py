"""The ``medlib`` command's own logic: --version, --help with examples and exit codes for every command, the exit
codes themselves, ``medlib new`` and the demo's options (the studies themselves are run end to end by
``test_notebooks.py`` and ``test_packaging.py``; bad inputs through the CLI by ``tests/reliability``)."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import pytest
import yaml

from medlib.cli import commands as cli
from medlib.cli.runner import StudyFailed

PROJECT_ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ["new", "synth", "run", "sweep", "render", "manuscript", "demo", "bench"]


def test_version_prints_the_installed_package_version(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"medlib {version('medlib')}"


def test_the_version_has_one_source():
    """pyproject.toml takes the version from medlib/__init__.py (hatch's dynamic version)."""
    import tomllib

    import medlib

    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    assert "version" in project["project"]["dynamic"] and "version" not in project["project"]
    assert project["tool"]["hatch"]["version"]["path"] == "medlib/__init__.py"
    assert version("medlib") == medlib.__version__


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples_and_exit_codes(command, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main([command, "--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    examples = re.findall(rf"^  medlib {command}\b.*$", text, flags=re.MULTILINE)
    assert "examples:" in text and len(examples) >= 2, text
    assert "exit codes: 0 ok; 2 bad input" in text and "1 a failure" in text


def test_the_command_list_is_complete(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = capsys.readouterr().out
    assert all(re.search(rf"^    {c}\s", text, flags=re.MULTILINE) for c in COMMANDS), text


def test_bad_input_exits_2_with_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = cli.main(["run", "-f", "no_such.yaml"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("medlib run: FileNotFoundError: params file not found: no_such.yaml")


def test_argument_errors_exit_2():
    with pytest.raises(SystemExit) as stop:
        cli.main(["run", "--no-such-option"])
    assert stop.value.code == 2


def test_a_failure_while_working_exits_1(capsys, monkeypatch):
    import medlib.cli.runner as runner

    def fail(*args, **kwargs):
        raise StudyFailed("nec: ValueError: boom (cell 12; the partial notebook is reports/nec.failed.ipynb)")

    monkeypatch.setattr(runner, "run_study", fail)
    assert cli.main(["run", "nec"]) == 1
    assert "StudyFailed: nec: ValueError: boom" in capsys.readouterr().err


def test_quiet_and_debug_are_accepted_before_and_after_the_command():
    parser = cli.build_parser()
    assert parser.parse_args(["--quiet", "run", "nec"]).quiet
    assert parser.parse_args(["run", "nec", "-q"]).quiet
    assert not parser.parse_args(["run", "nec"]).quiet
    assert parser.parse_args(["run", "nec", "--debug"]).debug and not parser.parse_args(["run", "nec"]).debug


@pytest.mark.parametrize("jobs", ["0", "-1"])
def test_demo_rejects_jobs_below_one_before_doing_anything(jobs, capsys, tmp_path):
    code = cli.main(["demo", "nec", "--data", str(tmp_path / "data"), "--jobs", jobs,
                     "--reports", str(tmp_path / "r")])
    assert code == 2
    assert f"--jobs must be >= 1; got {jobs}" in capsys.readouterr().err
    assert not (tmp_path / "data").exists() and not (tmp_path / "r").exists()  # no cohort written, no run


def test_demo_default_order_and_jobs():
    args = cli.build_parser().parse_args(["demo"])
    assert args.jobs == 2 and args.studies == []
    assert sorted(cli.DEMO_STUDIES) == ["glioma", "ich", "nec", "onfh"]


def _files(root: Path) -> dict[str, bytes]:
    return {str(f.relative_to(root)): f.read_bytes() for f in sorted(root.rglob("*")) if f.is_file()}


def test_demo_lanes_write_cohorts_side_by_side_as_one_at_a_time(tmp_path):
    """Two cohorts written in two lanes (spawned, thread-limited processes) give the same files as one after the
    other; a cohort folder that exists is refused (the error reaches the caller) and left as it was, and the
    other cohort is still complete, nothing half-written."""
    from medlib.cli.demo import lane_pool, write_cohort

    for study in ("glioma", "onfh"):
        write_cohort(study, tmp_path / "one", 0.1)
    with lane_pool(2) as pool:
        seconds = [pool.submit(write_cohort, study, tmp_path / "two", 0.1) for study in ("glioma", "onfh")]
        assert all(s.result() > 0 for s in seconds)
    assert _files(tmp_path / "one") == _files(tmp_path / "two")
    (tmp_path / "three" / "onfh").mkdir(parents=True)
    (tmp_path / "three" / "onfh" / "mine.txt").write_text("the user's")
    with lane_pool(2) as pool:
        futures = [pool.submit(write_cohort, study, tmp_path / "three", 0.1) for study in ("glioma", "onfh")]
        with pytest.raises(FileExistsError, match="onfh"):
            futures[1].result()
        futures[0].result()
    assert _files(tmp_path / "three" / "glioma") == _files(tmp_path / "one" / "glioma")
    assert _files(tmp_path / "three" / "onfh") == {"mine.txt": b"the user's"}
    assert not list((tmp_path / "three").glob(".*partial"))


def test_demo_refuses_a_foreign_cohort_folder_and_an_unknown_study_before_any_lane(tmp_path, capsys):
    """A data/<study> folder without a manifest (not a cohort) and an unknown study stop the demo before any
    cohort is written or study run: nothing appears under the data or reports folders."""
    data, reports = tmp_path / "data", tmp_path / "reports"
    (data / "onfh").mkdir(parents=True)
    (data / "onfh" / "mine.txt").write_text("the user's")
    assert cli.main(["demo", "nec", "onfh", "--data", str(data), "--reports", str(reports)]) == 2
    assert "onfh exists but holds no manifest.csv" in capsys.readouterr().err
    assert cli.main(["demo", "nec", "nosuch", "--data", str(tmp_path / "d2"), "--reports", str(reports)]) == 2
    assert "params file not found" in capsys.readouterr().err
    assert sorted(p.name for p in data.iterdir()) == ["onfh"] and not reports.exists()
    assert not (tmp_path / "d2").exists()


# ------------------------------------------------------------------------------------------------ medlib new


def test_new_scaffolds_a_study_of_ones_own(capsys, tmp_path, monkeypatch):
    from medlib.config import load_config

    monkeypatch.chdir(tmp_path)
    assert cli.main(["new", "wrist", "--from", "nec"]) == 0
    out = capsys.readouterr().out
    assert "wrist/wrist.yaml" in out and "medlib run -f wrist/wrist.yaml" in out and "reports/wrist.ipynb" in out
    params, manifest = tmp_path / "wrist" / "wrist.yaml", tmp_path / "wrist" / "manifest.csv"
    template = yaml.safe_load((PROJECT_ROOT / "params" / "nec.yaml").read_text())
    cfg = load_config(params)  # a valid params file, the built-in study's settings kept
    assert cfg.study.name == "wrist" and cfg.design == template["design"]
    assert [m.name for m in cfg.models] == [m["name"] for m in template["models"]]
    assert cfg.cohort.manifest == "manifest.csv" and cfg.study.reference is None
    assert all(text.startswith("TODO:") for text in (cfg.study.title, cfg.study.question, cfg.study.unit))
    columns = pd.read_csv(manifest).columns.tolist()
    cohort = template["cohort"]
    assert columns == ["case_id", "patient_id", "label", *cohort["image_columns"], "set", *cohort["covariates"]]
    assert set(pd.read_csv(manifest, dtype=str)["label"]) == {cohort["positive"], cohort["negative"]}
    assert "reports/wrist.ipynb" in (tmp_path / "wrist" / "README.md").read_text()


def test_run_refuses_the_scaffolds_placeholders(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["new", "wrist"]) == 0
    assert cli.main(["run", "-f", "wrist/wrist.yaml", "--reports", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert re.search(r"study\.title, study\.question, .*still the scaffold's 'TODO:' text", err), err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("argv, match", [
    (["new", "bad name"], r"study name 'bad name'"),
    (["new", "x", "--from", "nope"], r"--from nope: no built-in study of that name"),
])
def test_new_bad_input(argv, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    assert re.search(match, capsys.readouterr().err)


def test_new_never_overwrites(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "wrist").mkdir()
    (tmp_path / "wrist" / "mine.txt").write_text("keep")
    assert cli.main(["new", "wrist"]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "wrist").iterdir()] == ["mine.txt"]
