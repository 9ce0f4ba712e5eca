"""Run a study with papermill: ``notebooks/study.ipynb`` with ``params/<name>.yaml`` → ``reports/<name>.ipynb``.

One notebook template serves every design (``design:`` in the params); the executed report is named after the
params file, so a user's own params file never overwrites a built-in study's report, and it opens with YAML
front matter holding the study's title (``study.title``) for Quarto and the site.

Parameters are validated against the config schema *before* they are injected into the notebook: the
notebook receives only the params file path, a list of ``key=value`` override strings that ``load_config``
has already accepted, and a run id. Nothing a user types becomes code.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from medlib.config import ConfigError, StudyConfig
from medlib.pipelines import NOTEBOOK
from medlib.runs.folder import CONFIG_NAME, atomic_write_json, make_run_id

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FAILED_NAME = "failed.json"
#: The kernel's own log (ipykernel's TCP-transport warning, 'KeyboardInterrupt caught' when papermill stops it
#: after a failed cell) stays off the user's stderr: a failed run
#: prints one line, and the notebook's errors come back through papermill.
_KERNEL_ARGS = ["--IPKernelApp.log_level=CRITICAL"]
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


def notebook_path(root: Path = PROJECT_ROOT) -> Path:
    """The study notebook template (``notebooks/study.ipynb``).

    Raises:
        FileNotFoundError: the template is missing from ``root``.
    """
    path = root / "notebooks" / NOTEBOOK
    if not path.is_file():
        raise FileNotFoundError(f"study notebook not found: {path}")
    return path


def params_path_for(study: str | None, params: str | Path | None, root: Path = PROJECT_ROOT) -> Path:
    """The params file of a run: ``params`` when given, else ``params/<study>.yaml``.

    Raises:
        ValueError: neither given. FileNotFoundError: the file does not exist (relative paths are tried against
        the current folder, then the project root).
    """
    if params is None and not study:
        raise ValueError("give a study (medlib run nec → params/nec.yaml) or a params file (-f my_study.yaml)")
    path = Path(params) if params else Path("params") / f"{study}.yaml"
    if not path.is_absolute() and not path.is_file() and (root / path).is_file():
        path = root / path
    elif not path.is_absolute() and path.is_file() and Path.cwd().resolve() != root.resolve():
        path = path.resolve()  # the notebook runs in the project root
    if not path.is_file():
        known = sorted(p.stem for p in (root / "params").glob("*.yaml"))
        raise FileNotFoundError(f"params file not found: {path}" + ("" if params else f"; studies: {known}"))
    return path


def run_study(study: str | None = None, *, params: str | Path | None = None, overrides: Sequence[str] = (),
              run_id: str = "", resume: str = "", reports_dir: str | Path = "reports",
              root: Path = PROJECT_ROOT, kernel: str = "python3", log_output: bool = False) -> StudyRun:
    """Execute the study notebook with papermill into ``reports/<params file name>.ipynb``.

    Args:
        study: a built-in study (``nec``, ``onfh``, ...), read from ``params/<study>.yaml``; with ``params``
            it must match the file's ``study.name`` (or be None).
        params: a params file; default ``params/<study>.yaml``.
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
            ``reports/<name>.failed.ipynb``.
    """
    params_path = params_path_for(study, params, root)
    if not _RUN_ID.match(run_id) or not _RESUME.match(resume):
        raise ValueError(f"run ids may hold letters, digits, '.', '_' and '-' only (not starting with '.', '_' or "
                         f"'-'), and a resumed run is a folder path; got {run_id or resume!r}")
    cfg = _preflight(study, params_path, overrides, root)
    run_id = "" if resume else (run_id or make_run_id())
    run_dir = _run_folder(cfg, run_id, resume, root)
    from medlib.pipelines.prepare import check_models

    check_models(cfg, source=str(params_path), root=root)  # model names and weight files; imports torch
    import papermill as pm

    name = params_path.stem
    out_dir = root / reports_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}.ipynb"
    source = _titled_notebook(notebook_path(root), cfg, out_dir)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".ipynb", dir=out_dir)
    os.close(fd)
    start = time.perf_counter()
    try:
        pm.execute_notebook(str(source), tmp, parameters={
            "config_path": str(params_path), "overrides": list(overrides), "run_id": run_id, "resume": resume},
            cwd=str(root), kernel_name=kernel, progress_bar=False, log_output=log_output,
            extra_arguments=_KERNEL_ARGS)
    except pm.PapermillExecutionError as err:
        failed = out_dir / f"{name}.failed.ipynb"
        os.replace(tmp, failed)
        message = f"{name}: {err.ename}: {err.evalue} (cell {err.exec_count}; the partial notebook is {failed})"
        _mark_failed(run_dir, message)
        raise StudyFailed(message) from err
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        _mark_failed(run_dir, f"{name}: {type(err).__name__}: {err}")
        raise
    finally:
        source.unlink(missing_ok=True)
    os.replace(tmp, target)
    (run_dir / FAILED_NAME).unlink(missing_ok=True)
    return StudyRun(study=cfg.study.name, params=params_path, report=target, seconds=time.perf_counter() - start)


def _titled_notebook(template: Path, cfg: StudyConfig, out_dir: Path) -> Path:
    """A temporary copy of the template that opens with YAML front matter holding the study's title (a raw
    cell, as Quarto reads it), so the executed report is titled from ``study.title``."""
    nb = json.loads(template.read_text(encoding="utf-8"))
    front = "---\n" + f"title: {json.dumps(cfg.study.title, ensure_ascii=False)}\n" + "---"
    nb["cells"].insert(0, {"cell_type": "raw", "id": "front-matter", "metadata": {}, "source": front})
    nb.setdefault("metadata", {})["title"] = cfg.study.title
    fd, tmp = tempfile.mkstemp(prefix=".template.", suffix=".ipynb", dir=out_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(nb, f, ensure_ascii=False)
    return Path(tmp)


def _preflight(study: str | None, params_path: Path, overrides: Sequence[str], root: Path) -> StudyConfig:
    """Validate the params and overrides, the cohort manifest (every row) and the split before a notebook
    starts or a run folder exists."""
    from medlib.pipelines.prepare import load_study, prepare, rooted

    cfg = load_study(params_path, list(overrides), root=root, check=False)
    if study and cfg.study.name != study:
        raise ConfigError(f"{params_path}: study.name: expected {study!r}, got {cfg.study.name!r}; pick a params "
                          f"file of {study}, or leave the study out: medlib run -f {params_path}")
    prepare(rooted(cfg, root))
    return cfg


def _run_folder(cfg: StudyConfig, run_id: str, resume: str, root: Path) -> Path:
    """The run folder the notebook will write: an existing one to resume, or a new one that must not exist."""
    if resume:
        folder = Path(resume) if Path(resume).is_absolute() else root / resume
        if not (folder / CONFIG_NAME).is_file():
            raise FileNotFoundError(f"cannot resume {resume}: not a run folder (expected "
                                    f"{cfg.runs_dir}/{cfg.study.name}/<run-id>/ holding {CONFIG_NAME})")
        return folder
    runs = Path(cfg.runs_dir) if Path(cfg.runs_dir).is_absolute() else root / cfg.runs_dir
    folder = runs / cfg.study.name / run_id
    if folder.exists():
        raise FileExistsError(f"run {folder} already exists; choose another --run-id, or continue it with "
                              f"--resume {folder}")
    return folder


def _mark_failed(run_dir: Path, message: str) -> None:
    """Leave ``failed.json`` (the error) in a run folder the failed notebook created, so it is never mistaken
    for a finished run; a successful resume removes it."""
    if run_dir.is_dir():
        atomic_write_json({"status": "failed", "error": message}, run_dir / FAILED_NAME)
