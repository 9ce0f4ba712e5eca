"""The wheel round trip, as a user installs medlib: build the wheel from this checkout, install it into a fresh
virtual environment (reusing the installed dependencies, without network), and from an empty folder generate a
small cohort and run the smoke study with the installed ``medlib``.

The same run checks what a user sees and gets (issue 19): progress and step lines as plain text when not on a
terminal, files 0644 and folders 0755, and no absolute path of the machine in the report or the run record.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _run(cmd: list[str], cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{cmd}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("hatchling", reason="the wheel is built with hatchling (pip install -e '.[test]')")
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
          str(PROJECT_ROOT)], cwd=out)
    (path,) = out.glob("medlib-*.whl")
    return path


def test_the_wheel_carries_notebooks_params_and_templates(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {"medlib/_bundle/notebooks/study.ipynb", "medlib/_bundle/notebooks/explore.ipynb",
                "medlib/_bundle/params/nec.yaml", "medlib/_bundle/params/smoke/nec.yaml", "medlib/cli/commands.py"}
    assert expected <= names
    top = {p.relative_to(PROJECT_ROOT).as_posix() for p in (PROJECT_ROOT / "params").rglob("*.yaml")}
    assert {f"medlib/_bundle/{t}" for t in top} <= names  # every built-in params file
    templates = {p.relative_to(PROJECT_ROOT).as_posix() for p in (PROJECT_ROOT / "medlib" / "render" / "templates")
                 .rglob("*") if p.is_file()}
    assert templates and templates <= names  # the render templates
    assert not [n for n in names if n.startswith(("tests/", "notebooks/", "params/")) or "__pycache__" in n]


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv that sees this environment's packages (a .pth running site.addsitedir) and holds the wheel."""
    env_dir = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], cwd=env_dir)
    python = env_dir / "bin" / "python"
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=env_dir)
    ours = sysconfig.get_paths()["purelib"]
    Path(site.stdout.strip(), "zz_medlib_test_deps.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
          str(wheel)], cwd=env_dir)
    return env_dir


def _modes(folder: Path) -> tuple[set[str], set[str]]:
    files = {oct(stat.S_IMODE(p.stat().st_mode)) for p in folder.rglob("*") if p.is_file()}
    dirs = {oct(stat.S_IMODE(p.stat().st_mode)) for p in [folder, *folder.rglob("*")] if p.is_dir()}
    return files, dirs


def test_the_installed_medlib_runs_the_smoke_study(venv, tmp_path):
    work = tmp_path / "my work"  # a space, as in many home folders
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDLIB_", "PYTHON"))}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    medlib = str(venv / "bin" / "medlib")
    where = _run([str(venv / "bin" / "python"), "-c", "import medlib; print(medlib.__file__)"], work, env)
    assert where.stdout.strip().startswith(str(venv)), where.stdout  # the wheel, not the checkout
    assert _run([medlib, "--version"], work, env).stdout.strip().startswith("medlib ")

    _run([medlib, "synth", "nec", "--out", "data/smoke", "--scale", "0.1"], work, env)
    result = _run([medlib, "run", "nec", "-f", "params/smoke/nec.yaml", "-p", "train.epochs=1"], work, env, 600)

    out = result.stdout
    assert not CONTROL.search(out) and result.stderr.strip() == "", result.stderr
    assert re.search(r"^done  checked the params, cohort, images, split and models: \d+ cases", out, re.MULTILINE)
    assert re.search(r"^done  Models and training \(", out, re.MULTILINE)
    assert re.search(r"^  train: 1/1 epoch", out, re.MULTILINE)  # the kernel's training progress reached us
    assert re.search(r"^nec: report reports/nec\.ipynb \(\d+ s\); run folder runs/nec/\S+$", out, re.MULTILINE)

    report, runs = work / "reports" / "nec.ipynb", work / "runs"
    nb = json.loads(report.read_text())
    assert not [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    for folder in (work / "reports", runs):
        files, dirs = _modes(folder)
        assert files == {"0o644"} and dirs == {"0o755"}, (folder, files, dirs)
    machine = [str(work), str(venv), str(Path.home()), str(PROJECT_ROOT), sysconfig.get_paths()["purelib"]]
    records = [report, *[p for p in runs.rglob("*") if p.suffix in (".json", ".yaml", ".csv", ".txt")]]
    leaks = [f"{path.relative_to(work)}: ...{text[max(0, i - 80):i + len(m) + 20]}..."
             for path in records for text in [path.read_text(errors="replace")] for m in machine
             for i in [text.find(m)] if i >= 0]
    assert not leaks, "\n".join(leaks)
