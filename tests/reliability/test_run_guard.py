"""Run folders under concurrency and kills (issue #20, classes 1 and 2), in real separate processes.

* two processes writing one run folder: the second is refused with the holder's pid, the first's files stay;
* a process SIGKILLed while holding the lock leaves no stale lock: a resume right after succeeds;
* a resume refused for another study or other settings writes nothing, not even the lock file;
* names from data (``../``, separators, control characters, 300 characters, spaces, non-ASCII) become unique
  file names inside the run folder.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from medlib.cli.runner import PROJECT_ROOT
from medlib.config import config_from_dict
from medlib.runs import RunInUse, RunLock, RunMismatch, check_resume, new_run, open_run, safe_name, start_run

STUDY = {"name": "nec", "title": "T", "question": "Q?", "population": "P.", "unit": "infant", "positive": "yes",
         "negative": "no"}


def cfg(tmp_path: Path, **sections):
    return config_from_dict({"study": STUDY, "models": [{"name": "resnet18", "label": "ResNet18"}],
                             "runs_dir": str(tmp_path / "runs"), **sections})


def holder(folder: Path, ready: Path) -> subprocess.Popen:
    """Another process that resumes ``folder`` (takes its lock) and then waits to be killed."""
    code = textwrap.dedent(f"""
        import time, pathlib
        from medlib.runs import RunLock
        RunLock.acquire({str(folder)!r})
        pathlib.Path({str(ready)!r}).write_text("locked")
        time.sleep(120)
    """)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert proc.poll() is None, "the holder process ended early"
        assert time.monotonic() < deadline, "the holder never took the lock"
        time.sleep(0.05)
    return proc


def checksums(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def finished(tmp_path: Path):
    config = cfg(tmp_path)
    run = start_run(config, run_id="r1")
    run.write_metrics({"auc": 0.75})
    RunLock.acquire(run.path).release()  # this test process plays the run that has ended
    return config, run


def test_a_second_process_is_refused_while_the_first_writes(tmp_path):
    config, run = finished(tmp_path)
    before = checksums(run.path)
    proc = holder(run.path, tmp_path / "ready")
    try:
        with pytest.raises(RunInUse, match=rf"run folder .*r1 is in use by another process \(pid {proc.pid}\)"):
            open_run(run.path, config)
        with pytest.raises(RunInUse, match=f"pid {proc.pid}"):
            open_run(run.path).write_config(config)
        assert {k: v for k, v in checksums(run.path).items() if k != ".lock"} == \
            {k: v for k, v in before.items() if k != ".lock"}
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def test_a_killed_writer_leaves_no_stale_lock(tmp_path):
    config, run = finished(tmp_path)
    proc = holder(run.path, tmp_path / "ready")
    os.killpg(proc.pid, signal.SIGKILL)  # no clean-up code runs: the kernel drops the flock
    proc.wait(timeout=30)
    assert (run.path / ".lock").is_file()  # the file stays; it is the lock on it that matters
    resumed = open_run(run.path, config)
    assert resumed.read_metrics() == {"auc": 0.75}
    RunLock.acquire(resumed.path).release()


def test_concurrent_new_runs_get_their_own_folders(tmp_path):
    code = textwrap.dedent(f"""
        from medlib.runs import new_run
        print(new_run("nec", runs_dir={str(tmp_path / 'runs')!r}).path)
    """)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(4)]
    paths = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs) and len(set(paths)) == 4


def test_a_refused_resume_writes_nothing(tmp_path):
    _, run = finished(tmp_path)
    before = checksums(run.path)
    with pytest.raises(RunMismatch, match=r"image\.size \(\[64, 64\] in the run, \[48, 48\] now\)"):
        start_run(cfg(tmp_path, image={"size": [48, 48]}), resume=str(run.path))
    other = dict(STUDY, name="onfh")
    with pytest.raises(RunMismatch, match="it is a run of study 'nec', not 'onfh'"):
        check_resume(run.path, config_from_dict({"study": other, "models": [{"name": "resnet18"}]}))
    assert checksums(run.path) == before
    stranger = tmp_path / "not a run"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(RunMismatch, match="not a run folder"):
        start_run(cfg(tmp_path), resume=str(stranger))
    assert sorted(p.name for p in stranger.iterdir()) == ["notes.txt"]  # not even a lock file


def test_a_resume_with_only_execution_settings_changed_is_accepted(tmp_path):
    config, run = finished(tmp_path)
    other = cfg(tmp_path, train={"threads": 1, "device": "cpu"})
    before = (run.path / "config.yaml").read_bytes()
    resumed = start_run(other, resume=str(run.path))
    assert resumed.write_config(other) == run.path / "config.yaml"
    assert (run.path / "config.yaml").read_bytes() == before  # the run's own config stays


@pytest.mark.parametrize("case_id", ["../../etc/passwd", "a/b", "a\\b", "..", ".hidden", "x" * 300, "tab\there",
                                     "CON", "Fall 12 Müller", "病例-７", "a_b"])
def test_names_from_data_stay_inside_the_run_folder(tmp_path, case_id):
    run = new_run("nec", runs_dir=tmp_path / "runs", run_id="r1")
    path = run.cam_file("Model / v2", case_id)
    path.write_bytes(b"x")
    assert run.path.resolve() in path.resolve().parents
    assert len(path.name.encode()) <= 255 and "/" not in path.name and "\\" not in path.name
    assert not path.name.startswith(".") and all(ord(c) >= 32 for c in path.name)


def test_names_from_data_are_unique_and_keep_legitimate_letters():
    ids = ["a/b", "a_b", "a b", "A_B", "x" * 300, "x" * 301, "é", "e\u0301"]
    names = [safe_name(i) for i in ids]
    assert len(set(names[:6])) == 6  # different ids never share a file
    assert safe_name("a_b") == "a_b" and safe_name("Fall_Müller") == "Fall_Müller"  # unchanged when safe
    assert safe_name("病例7") == "病例7"
    assert names[6] == "é" and names[7].startswith("é-")  # NFC makes them equal-looking; the hash keeps them apart
