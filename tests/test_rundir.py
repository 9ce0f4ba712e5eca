"""Run folders: atomic writes (with failures injected mid-write), run ids, readers, hashes, provenance."""

from __future__ import annotations

import getpass
import hashlib
import json
import math
import os
import re
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medlib.config import ModelConfig, ReferenceSection, StudyConfig, StudySection, ThresholdConfig
from medlib.runs import atomic, guard, provenance as provenance_module
from medlib.runs import folder as rundir
from medlib.runs.atomic import (
    atomic_open,
    atomic_write_bytes,
    atomic_write_csv,
    atomic_write_json,
    atomic_write_text,
    file_hash,
    table_hash,
)
from medlib.runs.folder import RunDir, new_run, open_run
from medlib.runs.provenance import collect_provenance, git_commit

RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")


def leftovers(folder: Path) -> list[str]:
    """Temporary files left behind by an atomic write."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def predictions_table() -> pd.DataFrame:
    return pd.DataFrame({"case_id": ["007", "008"], "patient_id": ["0001", "0002"], "model": ["cnn", "cnn"],
                         "set": ["test", "test"], "y_true": [1, 0], "score": [0.9, 0.2]})


# ------------------------------------------------------------------------------------------- atomic writes


def test_atomic_writers_round_trip(tmp_path):
    assert atomic_write_text(tmp_path / "a" / "t.txt", "héllo\n").read_text(encoding="utf-8") == "héllo\n"
    assert atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    df = predictions_table()
    back = pd.read_csv(atomic_write_csv(df, tmp_path / "p.csv"), dtype=str)
    assert back["case_id"].tolist() == ["007", "008"]
    assert b"\r\n" not in (tmp_path / "p.csv").read_bytes()
    obj = {"auc": np.float64(0.8), "n": np.int64(3), "nan": math.nan, "t": (1, 2), "p": Path("x/y"),
           "arr": np.array([1.5, 2.5])}
    data = json.loads(atomic_write_json(obj, tmp_path / "m.json").read_text())
    assert data == {"auc": 0.8, "n": 3, "nan": None, "t": [1, 2], "p": "x/y", "arr": [1.5, 2.5]}
    assert leftovers(tmp_path) == []


def test_atomic_write_overwrites(tmp_path):
    target = atomic_write_text(tmp_path / "t.txt", "old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"


@pytest.mark.parametrize("existing", [None, "old contents"])
def test_failure_mid_write_leaves_target_untouched(tmp_path, existing):
    target = tmp_path / "predictions.csv"
    if existing is not None:
        target.write_text(existing)
    with pytest.raises(RuntimeError, match="disk died"):
        with atomic_open(target) as handle:
            handle.write("case_id,score\nc1,0.")  # half a file...
            raise RuntimeError("disk died")          # ...then the crash
    assert (target.read_text() if target.exists() else None) == existing
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_failure_in_fsync_or_rename_leaves_target_untouched(tmp_path, monkeypatch, step):
    target = tmp_path / "metrics.json"
    target.write_text('{"old": 1}')

    def boom(*args, **kwargs):
        raise OSError(f"injected {step} failure")

    monkeypatch.setattr(atomic.os, step, boom)
    with pytest.raises(OSError, match=f"injected {step} failure"):
        atomic_write_json({"new": 2}, target)
    monkeypatch.undo()
    assert target.read_text() == '{"old": 1}'
    assert leftovers(tmp_path) == []


def test_failure_while_serialising_csv(tmp_path, monkeypatch):
    target = tmp_path / "split.csv"

    def broken_to_csv(self, *args, **kwargs):
        args[0].write("case_id,set\nc1,tr")
        raise MemoryError("injected")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken_to_csv)
    with pytest.raises(MemoryError):
        atomic_write_csv(pd.DataFrame({"case_id": ["c1"], "set": ["train"]}), target)
    assert not target.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("call, message", [
    (lambda p: atomic_write_text(p, b"bytes"), "text must be a str"),
    (lambda p: atomic_write_bytes(p, "text"), "data must be bytes"),
    (lambda p: atomic_write_csv({"a": 1}, p), "df must be a pandas DataFrame"),
    (lambda p: atomic_write_json({"x": object()}, p), "cannot write object to JSON"),
])
def test_writers_reject_wrong_types(tmp_path, call, message):
    with pytest.raises(TypeError, match=message):
        call(tmp_path / "f")
    assert not (tmp_path / "f").exists()


def test_atomic_open_rejects_modes(tmp_path):
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb'; got 'a'"):
        with atomic_open(tmp_path / "f", "a"):
            pass


# ----------------------------------------------------------------------------------------------- hashes


def test_file_hash(tmp_path):
    path = atomic_write_bytes(tmp_path / "x.bin", b"abc" * 1000)
    assert file_hash(path, chunk_size=7) == hashlib.sha256(b"abc" * 1000).hexdigest()
    with pytest.raises(FileNotFoundError, match="cannot hash .*nope"):
        file_hash(tmp_path / "nope")


def test_table_hash_is_canonical_csv():
    df = pd.DataFrame({"case_id": ["c1", "c2"], "set": ["train", "test"]})
    expected = hashlib.sha256(b"case_id,set\nc1,train\nc2,test\n").hexdigest()
    assert table_hash(df) == expected == table_hash(df.copy().set_index(pd.Index([5, 9])))
    assert table_hash(df.iloc[::-1]) != expected
    assert table_hash(df.assign(set=["train", "val"])) != expected
    with pytest.raises(TypeError, match="DataFrame"):
        table_hash([1, 2])


# ------------------------------------------------------------------------------------------- run folders


def test_new_run_layout_and_id(tmp_path):
    run = new_run("nec", runs_dir=tmp_path / "runs")
    assert run.path.parent == tmp_path / "runs" / "nec" and run.path.is_dir()
    assert RUN_ID.match(run.run_id) and run.study == "nec"


def test_run_ids_are_unique(tmp_path):
    ids = {new_run("nec", runs_dir=tmp_path).run_id for _ in range(60)}
    assert len(ids) == 60


def test_new_run_retries_on_collision(tmp_path, monkeypatch):
    ids = iter(["20250101-000000-aaaaaa", "20250101-000000-aaaaaa", "20250101-000000-bbbbbb"])
    monkeypatch.setattr(rundir, "make_run_id", lambda: next(ids))
    assert new_run("nec", runs_dir=tmp_path).run_id == "20250101-000000-aaaaaa"
    assert new_run("nec", runs_dir=tmp_path).run_id == "20250101-000000-bbbbbb"


def test_given_run_id_never_overwrites(tmp_path):
    run = new_run("onfh", runs_dir=tmp_path, run_id="smoke")
    run.write_metrics({"auc": 0.8})
    with pytest.raises(FileExistsError, match=r"run .*smoke already exists.*open_run"):
        new_run("onfh", runs_dir=tmp_path, run_id="smoke")
    assert run.read_metrics() == {"auc": 0.8}


@pytest.mark.parametrize("study, run_id, message", [
    ("../x", None, "study may hold letters"),
    ("", None, "study may hold letters"),
    ("nec", "a/b", "run_id may hold letters"),
    ("nec", "..", "run_id may hold letters"),
])
def test_bad_names(tmp_path, study, run_id, message):
    with pytest.raises(ValueError, match=message):
        new_run(study, runs_dir=tmp_path, run_id=run_id)


def test_open_run(tmp_path):
    run = new_run("ich", runs_dir=tmp_path)
    assert open_run(str(run.path)) == run
    with pytest.raises(FileNotFoundError, match="run folder not found"):
        open_run(tmp_path / "ich" / "missing")


def test_run_files_round_trip(tmp_path):
    run = new_run("nec", runs_dir=tmp_path)
    study = StudySection(name="nec", title="NEC", question="Surgery?", population="Infants with NEC.", unit="infant",
                         positive="needed surgery", negative="no surgery",
                         reference=ReferenceSection(source="Seed paper", results={"ResNet18.accuracy": 0.919}))
    cfg = StudyConfig(study=study, models=(ModelConfig(name="resnet18", label="ResNet18"),),
                      threshold=ThresholdConfig(method="sensitivity", target=0.9))
    run.write_config(cfg)
    assert run.read_config() == cfg
    assert run.read_config(raw=True)["models"][0]["label"] == "ResNet18"
    split = pd.DataFrame({"case_id": ["001", "002"], "patient_id": ["01", "01"], "y": [1, 0], "set": ["train"] * 2})
    run.write_split(split)
    pd.testing.assert_frame_equal(run.read_split(), split, check_dtype=False)
    preds = predictions_table()
    run.write_predictions(preds)
    back = run.read_predictions()
    assert back["case_id"].tolist() == ["007", "008"] and back["patient_id"].tolist() == ["0001", "0002"]
    np.testing.assert_allclose(back["score"], preds["score"])
    run.write_metrics({"auc": np.float32(0.5), "ci": (0.1, math.inf)})
    assert run.read_metrics() == {"auc": 0.5, "ci": [0.1, None]}
    run.write_provenance({"medlib": "0.1.0"})
    assert run.read_provenance() == {"medlib": "0.1.0"}
    assert sorted(p.name for p in run.path.iterdir()) == [".lock", "config.yaml", "metrics.json", "predictions.csv",
                                                         "provenance.json", "split.csv"]


def test_run_folders(tmp_path):
    run = new_run("onfh", runs_dir=tmp_path)
    ckpt = run.checkpoint_dir("Both views / AP+FL")
    digest = hashlib.sha256("Both views / AP+FL".encode()).hexdigest()[:8]  # the name changed: it says so
    assert ckpt == run.path / "checkpoints" / f"Both_views_AP_FL-{digest}" and ckpt.is_dir()
    assert run.checkpoint_dir("ResNet18") == run.path / "checkpoints" / "ResNet18"  # a plain name stays as it is
    assert run.cams_dir == run.path / "cams" and run.cams_dir.is_dir()
    assert run.checkpoint_dir("///").parent == run.path / "checkpoints"
    with pytest.raises(ValueError, match="model name '' is empty or missing"):
        run.checkpoint_dir("")


def test_run_checks(tmp_path):
    run = RunDir(tmp_path)
    with pytest.raises(FileNotFoundError, match="has not written predictions.csv yet"):
        run.read_predictions()
    with pytest.raises(ValueError, match=r"predictions is missing column\(s\) \['patient_id'\]"):
        run.write_predictions(predictions_table().drop(columns="patient_id"))
    with pytest.raises(ValueError, match=r"split is missing column\(s\) \['set'\]"):
        run.write_split(pd.DataFrame({"case_id": ["a"]}))
    with pytest.raises(TypeError, match="config must be a StudyConfig or a mapping"):
        run.write_config("nec.yaml")
    with pytest.raises(TypeError, match="metrics must be a mapping"):
        run.write_metrics([1])
    assert list(tmp_path.iterdir()) == []


# -------------------------------------------------------------------------------------------- provenance


@pytest.fixture(scope="module")
def provenance() -> dict:
    return collect_provenance(seeds={"split": 0, "train": np.int64(1)}, cohort_hash="a" * 64, split_hash="b" * 64,
                              device="CPU (2 threads)", durations={"train ResNet18": 12.3456, "total": 61})


def test_provenance_keys(provenance):
    assert set(provenance) == {"medlib", "python", "packages", "git_commit", "git_dirty", "platform", "machine",
                               "cpu_count", "device", "cuda_device", "seeds", "cohort_hash", "split_hash",
                               "durations_s", "created_utc"}
    assert set(provenance["packages"]) == set(provenance_module.PACKAGES)
    assert provenance["packages"]["pandas"] == pd.__version__
    assert provenance["seeds"] == {"split": 0, "train": 1}
    assert provenance["durations_s"] == {"train ResNet18": 12.346, "total": 61.0}
    assert provenance["cpu_count"] == os.cpu_count()
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$", provenance["created_utc"])
    json.dumps(provenance, allow_nan=False)  # plain JSON


def test_provenance_has_no_host_or_user(provenance):
    text = json.dumps(provenance)
    assert str(Path.home()) not in text
    host = socket.gethostname()
    if len(host) >= 4:
        assert host not in text
    user = getpass.getuser()
    if len(user) >= 4:
        assert user not in text


def test_missing_package_and_no_git(tmp_path):
    assert provenance_module.package_version("surely-not-a-real-package-xyz") == "not installed"
    assert git_commit(tmp_path) == ("unknown", None)


def test_git_commit_of_this_checkout():
    sha, dirty = git_commit()
    assert sha == "unknown" or re.match(r"^[0-9a-f]{40}$", sha)


@pytest.mark.parametrize("kwargs, message", [
    ({"seeds": {"split": "zero"}}, r"seeds\['split'\] must be a number"),
    ({"durations": {"total": None}}, r"durations\['total'\] must be a number"),
    ({"seeds": [0]}, "seeds must be a mapping"),
])
def test_provenance_checks(kwargs, message):
    args = {"seeds": {}, "cohort_hash": "", "split_hash": "", "device": "cpu", "durations": {}, **kwargs}
    with pytest.raises((ValueError, TypeError), match=message):
        collect_provenance(**args)


@pytest.mark.parametrize("module", [rundir, atomic, provenance_module], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    import doctest

    assert doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE).failed == 0


def test_package_face_and_old_import_paths():
    """``medlib.runs`` re-exports each owner's names, and ``medlib.runs.folder`` keeps the ones callers import."""
    import medlib.runs

    for name in medlib.runs.__all__:
        owner = next(m for m in (rundir, atomic, provenance_module, guard) if name in vars(m) and
                     getattr(getattr(m, name), "__module__", m.__name__) == m.__name__)
        assert getattr(medlib.runs, name) is getattr(owner, name)
    for name in ("atomic_write_bytes", "atomic_write_json", "atomic_write_text", "collect_provenance"):
        assert getattr(rundir, name) is getattr(medlib.runs, name)
