"""End to end on a tiny NEC cohort, through the CLI: interruption and resume, determinism, a cohort folder that is
never written to, NaN covariates, and no planted identifier in any output.

One module fixture makes three runs of the same params (28-pixel images, ResNet18, 3 epochs, one thread):

* ``a``: uninterrupted;
* ``b``: the same params and seed, another run id (determinism);
* ``c``: killed with SIGKILL (the CLI process, its papermill kernel and everything under them) once the
  checkpoint of epoch 1 exists, then continued with ``medlib run nec --resume <run folder>``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
import torch
import yaml

from medlib.cli.runner import PROJECT_ROOT
from medlib.synth import planted_identifier_strings
from tests.reliability.conftest import cli_env, run_cli
from tests.reliability.corpus import SMOKE

pytestmark = pytest.mark.slow

EPOCHS = 3
MODEL = "ResNet18"


def snapshot(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file and folder under ``folder``: bytes, mtime (ns) and mode; folders by name only."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        st = path.stat()
        out[rel] = (path.read_bytes() if path.is_file() else b"<dir>", st.st_mtime_ns, st.st_mode)
    return out


def write_params(root: Path, manifest: Path) -> Path:
    data = yaml.safe_load((SMOKE / "nec.yaml").read_text())
    data["cohort"]["manifest"] = str(manifest)
    data["image"] = {"size": [28, 28], "cache_dir": str(root / "cache")}  # ResNet18 needs 25 px for a 7 x 7 CAM map
    data["models"] = [{"name": "resnet18", "label": MODEL}]
    data["train"] = {**data["train"], "epochs": EPOCHS, "threads": 1, "patience": 0}
    data["runs_dir"] = str(root / "runs")
    path = root / "nec.yaml"  # the report is named after the params file
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the CLI process and all its descendants (the kernel runs in a session of its own)."""
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    os.killpg(proc.pid, signal.SIGKILL)
    for child in children:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    proc.wait(timeout=30)
    psutil.wait_procs(children, timeout=30)


def checkpoint_epoch(path: Path) -> int | None:
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["state"]["epoch"])
    except (OSError, RuntimeError, EOFError, KeyError):
        return None


def interrupted_run(root: Path, params: Path, run_id: str, logs: dict) -> int:
    """Start ``medlib run``; SIGKILL it once epoch 1's checkpoint is on disk; return the checkpoint's epoch."""
    ckpt = root / "runs" / "nec" / run_id / "checkpoints" / MODEL / "checkpoint.pt"
    reports = root / "reports-killed"
    cmd = [sys.executable, "-m", "medlib", "run", "nec", "-f", str(params), "--run-id", run_id,
           "--reports", str(reports)]
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=cli_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 240
    try:
        while not ckpt.is_file():
            assert proc.poll() is None, f"the run ended before its first checkpoint: {proc.stderr.read()}"
            assert time.monotonic() < deadline, "no checkpoint after 240 s"
            time.sleep(0.05)
    finally:
        kill_tree(proc)
    logs["killed"] = (proc.stdout.read() + proc.stderr.read()).decode(errors="replace")
    assert not (reports / "nec.ipynb").exists()
    return checkpoint_epoch(ckpt)


@pytest.fixture(scope="module")
def runs(base_cohorts, tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    cohort = root / "cohort" / "nec"
    shutil.copytree(base_cohorts / "nec", cohort)
    table = pd.read_csv(cohort / "manifest.csv", dtype=str, keep_default_na=False)
    table.loc[::3, "birth_weight_g"] = ""         # NaN covariates: reported as missing in Table 1
    table.loc[1::4, "sex"] = ""
    table.to_csv(cohort / "manifest.csv", index=False)
    before = snapshot(cohort)
    params = write_params(root, cohort / "manifest.csv")
    logs, seconds = {}, {}
    for name in ("a", "b"):
        start = time.perf_counter()
        result = run_cli(["run", "nec", "-f", str(params), "--run-id", name, "--reports", str(root / f"reports-{name}")])
        assert result.returncode == 0, result.stderr
        logs[name] = result.stdout + result.stderr
        seconds[name] = time.perf_counter() - start
    killed_at = interrupted_run(root, params, "c", logs)
    resumed = run_cli(["run", "nec", "-f", str(params), "--resume", str(root / "runs" / "nec" / "c"),
                       "--reports", str(root / "reports-c")])
    assert resumed.returncode == 0, resumed.stderr
    logs["resumed"] = resumed.stdout + resumed.stderr
    return {"root": root, "cohort": cohort, "before": before, "logs": logs, "killed_at": killed_at,
            "seconds": seconds}


def predictions(runs, name: str) -> pd.DataFrame:
    return pd.read_csv(runs["root"] / "runs" / "nec" / name / "predictions.csv", dtype={"case_id": str})


def test_killed_mid_training_then_resumed_matches_an_uninterrupted_run(runs):
    assert runs["killed_at"] is not None and 1 <= runs["killed_at"] < EPOCHS, runs["killed_at"]
    folder = runs["root"] / "runs" / "nec" / "c"
    assert checkpoint_epoch(folder / "checkpoints" / MODEL / "checkpoint.pt") == EPOCHS
    assert not (folder / "failed.json").exists()
    pd.testing.assert_frame_equal(predictions(runs, "c"), predictions(runs, "a"), check_exact=True)
    assert (runs["root"] / "reports-c" / "nec.ipynb").is_file()


def test_same_params_and_seed_give_identical_predictions(runs):
    a, b = predictions(runs, "a"), predictions(runs, "b")
    assert len(a) and set(a["set"]) >= {"train", "val", "external"}
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_cohort_folder_is_never_written(runs):
    after = snapshot(runs["cohort"])
    assert sorted(after) == sorted(runs["before"]), "files were added to or removed from the cohort folder"
    changed = [name for name in after if after[name] != runs["before"][name]]
    assert changed == []


def test_nan_covariates_are_reported_as_missing(runs):
    import json

    nb = json.loads((runs["root"] / "reports-a" / "nec.ipynb").read_text())
    cell = next(c for c in nb["cells"] if "tbl-table1-set" in "".join(c["source"]))
    text = "".join("".join(o.get("data", {}).get("text/markdown", "")) for o in cell["outputs"])
    assert "| missing |" in text.splitlines()[0]
    rows = {line.split("|")[1].strip(): line.split("|")[3].strip() for line in text.splitlines()[2:]}
    assert rows["birth weight g, mean ± SD"] == "13"   # rows 0, 3, ..., 36 of 37 emptied above
    assert int(rows["sex, n (%)"]) >= 9


def test_no_planted_identifier_in_any_output(runs):
    root = runs["root"]
    outputs = [p for p in root.rglob("*") if p.is_file() and "cohort" not in p.relative_to(root).parts]
    assert any(p.suffix == ".pt" for p in outputs) and any(p.suffix == ".npy" for p in outputs)
    blobs = {str(p): p.read_bytes() for p in outputs}
    blobs.update({f"CLI output of run {k}": v.encode() for k, v in runs["logs"].items()})
    for planted in planted_identifier_strings():
        for variant in {planted, planted.replace("^", " ")}:
            found = [name for name, blob in blobs.items() if variant.encode() in blob]
            assert found == [], f"{variant!r} in {found}"
    # the cohort itself does carry them (otherwise the search proves nothing)
    dicom = next((runs["cohort"] / "images").glob("*.dcm")).read_bytes()
    assert any(p.encode() in dicom for p in planted_identifier_strings())
