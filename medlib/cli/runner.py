"""Run a study with papermill: ``notebooks/study.ipynb`` with ``params/<name>.yaml`` → ``reports/<name>.ipynb``.

One notebook template serves every design (``design:`` in the params); the executed report is named after the
params file, so a user's own params file never overwrites a built-in study's report, and it opens with YAML
front matter holding the study's title (``study.title``) for Quarto and the site.

Parameters are validated against the config schema *before* they are injected into the notebook: the
notebook receives only the params file path, a list of ``key=value`` override strings that ``load_config``
has already accepted, and a run id. Nothing a user types becomes code.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from medlib.config import ConfigError, StudyConfig
from medlib.pipelines import NOTEBOOK
from medlib.progress import EVENTS_ENV, QUIET_ENV, Console
from medlib.resources import bundled, display_path, find_params, resolve_inputs, workspace
from medlib.runs.atomic import normal_permissions
from medlib.runs.folder import atomic_write_json, make_run_id

#: The workspace of a checkout (its root), else the current folder at import: where runs/ and reports/ go.
PROJECT_ROOT = workspace()
FAILED_NAME = "failed.json"
#: Words of a ``medlib new`` scaffold's study: section that must be replaced before a run.
PLACEHOLDER = "TODO:"
#: The kernel's own log (ipykernel's TCP-transport warning, 'KeyboardInterrupt caught' when papermill stops it
#: after a failed cell) stays off the user's stderr: a failed run
#: prints one line, and the notebook's errors come back through papermill. Warnings in the report are one line
#: without a file path of this machine (``medlib.progress.plain_warnings``).
_KERNEL_ARGS = ["--IPKernelApp.log_level=CRITICAL",
                "--IPKernelApp.exec_lines=__import__('medlib.progress').progress.plain_warnings()"]
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
    run_dir: Path | None = None


def notebook_path(root: Path | None = None) -> Path:
    """The study notebook template: ``notebooks/study.ipynb`` of ``root`` when given and there, else medlib's
    own (the checkout's, or the copy inside an installed wheel).

    Raises:
        FileNotFoundError: the template is missing.
    """
    for folder in ([root / "notebooks"] if root is not None else []) + [bundled("notebooks")]:
        if (folder / NOTEBOOK).is_file():
            return folder / NOTEBOOK
    raise FileNotFoundError(f"study notebook not found: {bundled('notebooks') / NOTEBOOK}")


def params_path_for(study: str | None, params: str | Path | None, root: Path | None = None) -> Path:
    """The params file of a run: ``params`` when given, else the built-in ``params/<study>.yaml``.

    A relative path is looked for in the current folder, then the workspace ``root``, then among medlib's
    built-in params (:func:`medlib.resources.find_params`).

    Raises:
        ValueError: neither given. FileNotFoundError: the file does not exist (the message lists where it
        looked and the built-in studies).
    """
    if params is None and not study:
        raise ValueError("give a study (medlib run nec → params/nec.yaml) or a params file (-f my_study.yaml)")
    return find_params(params if params else Path("params") / f"{study}.yaml", root=root or workspace())


def run_study(study: str | None = None, *, params: str | Path | None = None, overrides: Sequence[str] = (),
              run_id: str = "", resume: str = "", reports_dir: str | Path = "reports",
              root: Path | None = None, kernel: str = "python3", log_output: bool = False,
              console: Console | None = None) -> StudyRun:
    """Execute the study notebook with papermill into ``reports/<params file name>.ipynb``.

    Args:
        study: a built-in study (``nec``, ``onfh``, ...), read from ``params/<study>.yaml``; with ``params``
            it must match the file's ``study.name`` (or be None).
        params: a params file; default ``params/<study>.yaml``.
        overrides: ``key=value`` strings, validated against the schema first.
        run_id: name of the run folder (default: a new timestamped id).
        resume: an existing run folder to continue from its checkpoints.
        reports_dir: where the executed notebook goes (written under a temporary name, then renamed); relative
            to ``root``.
        root: the workspace: the kernel's working folder, and the folder ``runs_dir`` and ``reports_dir`` are
            relative to (default :func:`medlib.resources.workspace`).
        console: where progress and step summaries go (default: a silent one).

    Before the notebook starts (and before any run folder or report exists) the params, overrides, model names
    and weight files, the cohort manifest (every row, every image probed) and the split are validated, the
    resume folder must exist and a new run id must be free. A run folder the notebook created before failing
    gets ``failed.json`` with the error. The notebook receives paths relative to ``root`` where they lie inside
    it, so the executed report holds no absolute path of the user's machine.

    Raises:
        ConfigError: the params or overrides do not match the schema (nothing is executed).
        CohortError, FileNotFoundError, FileExistsError, KeyError, ValueError: a bad manifest, image, split,
            model, weights file, resume folder or run id (nothing is executed).
        StudyFailed: a cell failed (its error in the message); the partial notebook is kept as
            ``reports/<name>.failed.ipynb``.
    """
    console = console or Console(quiet=True)
    root = Path(root).resolve() if root is not None else workspace()
    params_path = params_path_for(study, params, root)
    if not _RUN_ID.match(run_id) or not _RESUME.match(resume):
        raise ValueError(f"run ids may hold letters, digits, '.', '_' and '-' only (not starting with '.', '_' or "
                         f"'-'), and a resumed run is a folder path; got {run_id or resume!r}")
    out_dir = Path(reports_dir) if Path(reports_dir).is_absolute() else root / reports_dir
    console.line(f"start {params_path.stem}: params {_notebook_path_param(params_path, root)} -> report "
                 f"{display_path(out_dir / f'{params_path.stem}.ipynb', root=root)}")
    with console.step("checked the params, cohort, images, split and models") as step:
        cfg, step["detail"], probed = _preflight(study, params_path, overrides, root)
        run_id = "" if resume else (run_id or make_run_id())
        run_dir = _run_folder(cfg, run_id, resume, root)
        from medlib.pipelines.prepare import check_models

        check_models(cfg, source=str(params_path), root=root)  # model names and weight files; imports torch
    name = params_path.stem
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}.ipynb"
    start = time.perf_counter()
    parameters = {"config_path": _notebook_path_param(params_path, root), "overrides": list(overrides),
                  "run_id": run_id, "resume": display_path(resume, root=root) if resume else ""}
    _execute(cfg, name, parameters, out_dir, target, run_dir, root=root, kernel=kernel, log_output=log_output,
             console=console, probed=probed)
    (run_dir / FAILED_NAME).unlink(missing_ok=True)
    return StudyRun(study=cfg.study.name, params=params_path, report=target, seconds=time.perf_counter() - start,
                    run_dir=run_dir)


def _execute(cfg: StudyConfig, name: str, parameters: dict, out_dir: Path, target: Path, run_dir: Path, *,
             root: Path, kernel: str, log_output: bool, console: Console, probed: str = "") -> None:
    """Run the titled template with papermill into ``target`` (a temporary name first), showing the notebook's
    sections as steps and its kernel's progress events on ``console``."""
    import papermill as pm

    template = notebook_path(root)
    source = _titled_notebook(template, cfg, out_dir)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".ipynb", dir=out_dir)
    os.close(fd)
    steps = console.notebook_hooks(json.loads(source.read_text(encoding="utf-8"))["cells"])
    try:
        with _kernel_environment(console, probed, root) as events, console.follow(events):
            try:
                pm.execute_notebook(str(source), tmp, parameters=parameters, cwd=str(root), kernel_name=kernel,
                                    progress_bar=False, log_output=log_output, extra_arguments=_KERNEL_ARGS,
                                    **steps.hooks)
            finally:
                steps.stop() if sys.exc_info()[0] else steps.finish()
    except pm.PapermillExecutionError as err:
        failed = out_dir / f"{name}.failed.ipynb"
        _own_paths(Path(tmp), template, failed, root)
        os.replace(tmp, failed)
        normal_permissions(failed)
        message = (f"{name}: {err.ename}: {err.evalue} (cell {err.exec_count}; the partial notebook is "
                   f"{display_path(failed, root=root)})")
        _mark_failed(run_dir, message)
        raise StudyFailed(message) from err
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        _mark_failed(run_dir, f"{name}: {type(err).__name__}: {err}")
        raise
    finally:
        source.unlink(missing_ok=True)
    _own_paths(Path(tmp), template, target, root)
    os.replace(tmp, target)
    normal_permissions(target)


def _own_paths(executed: Path, template: Path, target: Path, root: Path) -> None:
    """Papermill records where it read and wrote the notebook (absolute, and temporary names): record the
    template and the report as the user knows them instead, relative to the workspace."""
    nb = json.loads(executed.read_text(encoding="utf-8"))
    record = nb.get("metadata", {}).get("papermill")
    if not isinstance(record, dict):
        return
    bundle = template.parent.resolve() == bundled("notebooks").resolve()
    shown = f"notebooks/{template.name}" if bundle else display_path(template, root=root)
    record.update(input_path=shown, output_path=display_path(target, root=root))
    executed.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


@contextlib.contextmanager
def _kernel_environment(console: Console, probed: str, root: Path) -> Iterator[Path]:
    """What the kernel inherits from ``os.environ`` when it starts: a fresh progress events file, ``MEDLIB_QUIET``
    when the console is quiet, the workspace (so the notebook reads paths as the preflight did) and the hash of
    the manifest whose images the preflight read (the notebook does not read them again); all restored after."""
    from medlib.data.probe import PROBED_ENV
    from medlib.resources import WORKSPACE_ENV

    fd, path = tempfile.mkstemp(prefix="medlib-progress-", suffix=".jsonl")
    os.close(fd)
    saved = {k: os.environ.get(k) for k in (EVENTS_ENV, QUIET_ENV, PROBED_ENV, WORKSPACE_ENV)}
    os.environ[EVENTS_ENV] = path
    os.environ[QUIET_ENV] = "1" if console.quiet else ""
    os.environ[PROBED_ENV] = probed
    os.environ[WORKSPACE_ENV] = str(root)
    try:
        yield Path(path)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        Path(path).unlink(missing_ok=True)


def _notebook_path_param(params_path: Path, root: Path) -> str:
    """The params path the notebook receives: relative to the workspace, or ``params/...`` for a built-in
    file, so no absolute path of the user's machine is written into the report."""
    with contextlib.suppress(ValueError):
        return str(Path("params") / params_path.relative_to(bundled("params").resolve()))
    return display_path(params_path, root=root)


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


def _preflight(study: str | None, params_path: Path, overrides: Sequence[str],
               root: Path) -> tuple[StudyConfig, str, str]:
    """Validate the params and overrides, the cohort manifest (every row, every image) and the split before a
    notebook starts or a run folder exists; returns the config, a summary of the cohort and the manifest's hash."""
    from medlib.pipelines.prepare import load_study, prepare

    cfg = load_study(params_path, list(overrides), root=root, check=False)
    if study and cfg.study.name != study:
        raise ConfigError(f"{params_path}: study.name: expected {study!r}, got {cfg.study.name!r}; pick a params "
                          f"file of {study}, or leave the study out: medlib run -f {params_path}")
    _refuse_placeholders(cfg, params_path)
    cfg = resolve_inputs(cfg, params_path, root=root)
    prepared = prepare(cfg)
    table = prepared.split.table
    sets = ", ".join(f"{s} {int((table['set'] == s).sum())}" for s in prepared.sets)
    return cfg, f"{len(table)} cases of {table['patient_id'].nunique()} patients ({sets})", prepared.cohort.hash


def _refuse_placeholders(cfg: StudyConfig, params_path: Path) -> None:
    """A ``medlib new`` scaffold's study: section must be written before a run: its words become the report."""
    import dataclasses

    left = [f"study.{f.name}" for f in dataclasses.fields(cfg.study)
            if isinstance(getattr(cfg.study, f.name), str) and PLACEHOLDER in getattr(cfg.study, f.name)]
    left += [f"study.inputs.{k}" for k, v in cfg.study.inputs.items() if PLACEHOLDER in v]
    if left:
        raise ConfigError(f"{params_path}: {', '.join(left)}: still the scaffold's {PLACEHOLDER!r} text; write your "
                          f"study's words there (every sentence of the report about the study comes from them)")


def _run_folder(cfg: StudyConfig, run_id: str, resume: str, root: Path) -> Path:
    """The run folder the notebook will write: an existing one to resume, or a new one that must not exist."""
    if resume:
        from medlib.runs.guard import check_resume

        folder = Path(resume) if Path(resume).is_absolute() else root / resume
        return check_resume(folder, cfg)  # another study, other settings, a busy or damaged run: refused here
    runs = Path(cfg.runs_dir) if Path(cfg.runs_dir).is_absolute() else root / cfg.runs_dir
    folder = runs / cfg.study.name / run_id
    if folder.exists():
        shown = display_path(folder, root=root)
        raise FileExistsError(f"run {shown} already exists; choose another --run-id, or continue it with "
                              f"--resume {shown}")
    return folder


def _mark_failed(run_dir: Path, message: str) -> None:
    """Leave ``failed.json`` (the error) in a run folder the failed notebook created, so it is never mistaken
    for a finished run; a successful resume removes it."""
    if run_dir.is_dir():
        atomic_write_json({"status": "failed", "error": message}, run_dir / FAILED_NAME)
