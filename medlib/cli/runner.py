"""Run a study notebook with papermill: ``notebooks/<study>.ipynb`` → ``reports/<study>.ipynb``.

Parameters are validated against the config schema *before* they are injected into the notebook: the
notebook receives only the params file path, a list of ``key=value`` override strings that ``load_config``
has already accepted, and a run id. Nothing a user types becomes code.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from medlib.config import ConfigError, StudyConfig
from medlib.runs.folder import CONFIG_NAME, atomic_write_json, make_run_id

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FAILED_NAME = "failed.json"
#: The kernel's own log (ipykernel's TCP-transport warning, 'KeyboardInterrupt caught' when papermill stops it
#: after a failed cell) stays off the user's stderr: a failed run
#: prints one line, and the notebook's errors come back through papermill.
_KERNEL_ARGS = ["--IPKernelApp.log_level=CRITICAL"]
STUDIES = ("nec", "onfh", "ich", "glioma", "medmnist")
_RUN_ID = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)?$")  # as rundir.new_run: no '/', no leading '.'
_RESUME = re.compile(r"^[A-Za-z0-9_./-]*$")


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

    Before the notebook starts (and before any run folder or report exists) the params, overrides, model names
    and weight files, the cohort manifest and the split are validated, the resume folder must exist and a new
    run id must be free. A run folder the notebook created before failing gets ``failed.json`` with the error.

    Raises:
        ConfigError: the params or overrides do not match the schema (nothing is executed).
        CohortError, FileNotFoundError, FileExistsError, KeyError, ValueError: a bad manifest, split, model,
            weights file, resume folder or run id (nothing is executed).
        StudyFailed: a cell failed (its error in the message); the partial notebook is kept as
            ``reports/<study>.failed.ipynb``.
    """
    source = notebook_for(study, root)
    params_path = Path(params) if params else Path("params") / f"{study}.yaml"
    if not (root / params_path).is_file() and not params_path.is_file():
        raise FileNotFoundError(f"params file not found: {params_path}")
    if not _RUN_ID.match(run_id) or not _RESUME.match(resume):
        raise ValueError(f"run ids may hold letters, digits, '.', '_' and '-' only (not starting with '.', '_' or "
                         f"'-'), and a resumed run is a folder path; got {run_id or resume!r}")
    cfg = _preflight(study, root / params_path if (root / params_path).is_file() else params_path, overrides, root)
    run_id = "" if resume else (run_id or make_run_id())
    run_dir = _run_folder(cfg, run_id, resume, root)
    from medlib.pipelines.study import check_models

    check_models(cfg, source=str(params_path), root=root)  # model names and weight files; imports torch
    import papermill as pm

    out_dir = root / reports_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{study}.ipynb"
    fd, tmp = tempfile.mkstemp(prefix=f".{study}.", suffix=".ipynb", dir=out_dir)
    os.close(fd)
    start = time.perf_counter()
    try:
        pm.execute_notebook(str(source), tmp, parameters={
            "config_path": str(params_path), "overrides": list(overrides), "run_id": run_id, "resume": resume},
            cwd=str(root), kernel_name=kernel, progress_bar=False, log_output=log_output,
            extra_arguments=_KERNEL_ARGS)
    except pm.PapermillExecutionError as err:
        failed = out_dir / f"{study}.failed.ipynb"
        os.replace(tmp, failed)
        message = f"{study}: {err.ename}: {err.evalue} (cell {err.exec_count}; the partial notebook is {failed})"
        _mark_failed(run_dir, message)
        raise StudyFailed(message) from err
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        _mark_failed(run_dir, f"{study}: {type(err).__name__}: {err}")
        raise
    os.replace(tmp, target)
    (run_dir / FAILED_NAME).unlink(missing_ok=True)
    return StudyRun(study=study, params=params_path, report=target, seconds=time.perf_counter() - start)


def _rooted(cfg: StudyConfig, root: Path) -> StudyConfig:
    """The config with its input paths (manifest, split file, public source) resolved against ``root``."""
    def at_root(value: str | None) -> str | None:
        return value if not value or Path(value).is_absolute() else str(root / value)

    return dataclasses.replace(
        cfg, cohort=dataclasses.replace(cfg.cohort, manifest=at_root(cfg.cohort.manifest),
                                        source=at_root(cfg.cohort.source)),
        split=dataclasses.replace(cfg.split, split_file=at_root(cfg.split.split_file)))


def _preflight(study: str, params_path: Path, overrides: Sequence[str], root: Path) -> StudyConfig:
    """Validate the params and overrides, the cohort manifest (every row) and the split before a notebook
    starts or a run folder exists."""
    from medlib.pipelines.study import load_study, prepare

    cfg = load_study(params_path, list(overrides), root=root, check=False)
    if cfg.study != study:
        raise ConfigError(f"{params_path}: study: expected {study!r} for the {study} notebook, got {cfg.study!r}; "
                          f"pick a params file of {study} (study: {study})")
    prepare(_rooted(cfg, root))
    return cfg


def _run_folder(cfg: StudyConfig, run_id: str, resume: str, root: Path) -> Path:
    """The run folder the notebook will write: an existing one to resume, or a new one that must not exist."""
    if resume:
        folder = Path(resume) if Path(resume).is_absolute() else root / resume
        if not (folder / CONFIG_NAME).is_file():
            raise FileNotFoundError(f"cannot resume {resume}: not a run folder (expected "
                                    f"{cfg.runs_dir}/{cfg.study}/<run-id>/ holding {CONFIG_NAME})")
        return folder
    runs = Path(cfg.runs_dir) if Path(cfg.runs_dir).is_absolute() else root / cfg.runs_dir
    folder = runs / cfg.study / run_id
    if folder.exists():
        raise FileExistsError(f"run {folder} already exists; choose another --run-id, or continue it with "
                              f"--resume {folder}")
    return folder


def _mark_failed(run_dir: Path, message: str) -> None:
    """Leave ``failed.json`` (the error) in a run folder the failed notebook created, so it is never mistaken
    for a finished run; a successful resume removes it."""
    if run_dir.is_dir():
        atomic_write_json({"status": "failed", "error": message}, run_dir / FAILED_NAME)
