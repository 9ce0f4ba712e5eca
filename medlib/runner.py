"""Run a study notebook with papermill: ``notebooks/<study>.ipynb`` → ``reports/<study>.ipynb``.

Parameters are validated against the config schema *before* they are injected into the notebook: the
notebook receives only the params file path, a list of ``key=value`` override strings that ``load_config``
has already accepted, and a run id. Nothing a user types becomes code.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from medlib.config import load_config

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STUDIES = ("nec", "onfh", "ich", "glioma", "medmnist")
_RUN_ID = re.compile(r"^[A-Za-z0-9_.-]*$")


class StudyFailed(RuntimeError):
    """A cell of the study notebook raised; the message carries the notebook's error."""


@dataclass(frozen=True)
class StudyRun:
    """What ``run_study`` produced."""

    study: str
    params: Path
    report: Path
    seconds: float


def notebook_for(study: str, root: Path = PROJECT_ROOT) -> Path:
    """The source notebook of a study design.

    Raises:
        KeyError: unknown study, listing the notebooks that exist.
    """
    path = root / "notebooks" / f"{study}.ipynb"
    if not path.is_file():
        available = sorted(p.stem for p in (root / "notebooks").glob("*.ipynb"))
        raise KeyError(f"Unknown study {study!r}. Available: {available}")
    return path


def run_study(study: str, *, params: str | Path | None = None, overrides: Sequence[str] = (),
              run_id: str = "", resume: str = "", reports_dir: str | Path = "reports",
              root: Path = PROJECT_ROOT, kernel: str = "python3", log_output: bool = False) -> StudyRun:
    """Execute a study notebook with papermill into ``reports/<study>.ipynb``.

    Args:
        study: notebook name (``nec``, ``onfh``, ...).
        params: params file; default ``params/<study>.yaml``.
        overrides: ``key=value`` strings, validated against the schema first.
        run_id: name of the run folder (default: a new timestamped id).
        resume: an existing run folder to continue from its checkpoints.
        reports_dir: where the executed notebook goes (written under a temporary name, then renamed).

    Raises:
        ConfigError: the params or overrides do not match the schema (nothing is executed).
        StudyFailed: a cell failed (its error in the message); the partial notebook is kept as
            ``reports/<study>.failed.ipynb``.
    """
    import papermill as pm

    source = notebook_for(study, root)
    params_path = Path(params) if params else Path("params") / f"{study}.yaml"
    if not (root / params_path).is_file() and not params_path.is_file():
        raise FileNotFoundError(f"params file not found: {params_path}")
    if not _RUN_ID.match(run_id) or not _RUN_ID.match(resume.replace("/", "")):
        raise ValueError(f"run ids may hold letters, digits, '.', '_' and '-' only; got {run_id or resume!r}")
    load_config(root / params_path if (root / params_path).is_file() else params_path, list(overrides))
    out_dir = root / reports_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{study}.ipynb"
    fd, tmp = tempfile.mkstemp(prefix=f".{study}.", suffix=".ipynb", dir=out_dir)
    os.close(fd)
    start = time.perf_counter()
    try:
        pm.execute_notebook(str(source), tmp, parameters={
            "config_path": str(params_path), "overrides": list(overrides), "run_id": run_id, "resume": resume},
            cwd=str(root), kernel_name=kernel, progress_bar=False, log_output=log_output)
    except pm.PapermillExecutionError as err:
        failed = out_dir / f"{study}.failed.ipynb"
        os.replace(tmp, failed)
        raise StudyFailed(f"{study}: {err.ename}: {err.evalue} (cell {err.exec_count}; the partial notebook is "
                          f"{failed})") from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    os.replace(tmp, target)
    return StudyRun(study=study, params=params_path, report=target, seconds=time.perf_counter() - start)
