"""Run folders: ``RunDir`` with a writer and a reader for each file of a run, new run ids, safe folder names.

One study run lives in ``runs/<study>/<run-id>/`` (DESIGN.md, "Where a run lives")::

    config.yaml        the resolved StudyConfig
    split.csv          case_id, patient_id, y, set
    predictions.csv    the long Predictions table (case_id, patient_id, model, set, y_true, score)
    metrics.json       whatever numbers the notebook wants to keep
    provenance.json    versions, git commit, seeds, device, cohort and split hashes, durations
    checkpoints/<model>/
    cams/

Files are written atomically (``medlib.runs.atomic``), only inside the run folder, and the folder is locked while a
process writes it (``medlib.runs.guard``): ``config.yaml`` and ``split.csv`` are written once; writing them again
with other content (a resume with other settings) is refused, never an overwrite. ``provenance.json`` holds what
``medlib.runs.provenance.collect_provenance`` returns. The names of both modules that callers import from here
(``atomic_write_json``, ``collect_provenance``, ...) are re-exported.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import re
import secrets
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import yaml

from medlib.runs.guard import CONFIG_NAME, RunLock, RunMismatch, check_resume, inside, safe_name
from medlib.runs.atomic import (atomic_open, atomic_write_bytes, atomic_write_csv, atomic_write_json,
                                atomic_write_text, file_hash, table_hash, to_jsonable)
from medlib.runs.provenance import (NOT_INSTALLED, PACKAGES, UNKNOWN, collect_provenance, cuda_device_name,
                                    git_commit, package_version)
from medlib.schema import ID_COLUMNS, check_predictions

__all__ = ["CAMS_DIR", "CHECKPOINTS_DIR", "CONFIG_NAME", "METRICS_NAME", "PREDICTIONS_NAME", "PROVENANCE_NAME",
           "SPLIT_COLUMNS", "SPLIT_NAME", "RunDir", "cam_file", "make_run_id", "new_run", "open_run", "safe_folder_name",
           "start_run",
           # re-exported from medlib.runs.atomic and medlib.runs.provenance
           "atomic_open", "atomic_write_bytes", "atomic_write_csv", "atomic_write_json", "atomic_write_text",
           "file_hash", "table_hash", "to_jsonable", "NOT_INSTALLED", "PACKAGES", "UNKNOWN", "collect_provenance",
           "cuda_device_name", "git_commit", "package_version"]

SPLIT_NAME = "split.csv"
PREDICTIONS_NAME = "predictions.csv"
METRICS_NAME = "metrics.json"
PROVENANCE_NAME = "provenance.json"
CHECKPOINTS_DIR = "checkpoints"
CAMS_DIR = "cams"

SPLIT_COLUMNS = ("case_id", "set")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _check_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(f"{what} may hold letters, digits, '.', '_' and '-' only (not starting with '.', "
                         f"'_' or '-'); got {value!r}")
    return value


def make_run_id(*, now: _dt.datetime | None = None) -> str:
    """A new run id: UTC timestamp plus 6 random hex digits, e.g. ``20250312-101500-a1b2c3``.

    Ids sort by creation time; the suffix keeps runs started in the same second apart.
    """
    now = now or _dt.datetime.now(_dt.timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def _check_predictions(df: pd.DataFrame) -> None:
    check_predictions(df)


def safe_folder_name(name: str) -> str:
    """A model's display name (or any identifier) as one folder or file name: ``guard.safe_name``, so two names
    never share a folder and none leaves the run folder."""
    return safe_name(name, what="model name")


@dataclasses.dataclass(frozen=True)
class RunDir:
    """One run folder, ``runs/<study>/<run-id>/``, with writers and readers for its files.

    Create one with :func:`new_run`, reopen one with :func:`open_run`. All writers are atomic and return
    the path written.

    Attributes:
        path: the run folder.
    """

    path: Path
    resumed: bool = dataclasses.field(default=False, compare=False)  # reopened: config.yaml must be there already

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def study(self) -> str:
        return self.path.parent.name

    # -- writers
    def write_config(self, config: Any) -> Path:
        """``config.yaml``: a ``StudyConfig`` (via ``config_to_dict``) or a plain mapping, safe-dumped."""
        from medlib.config import config_to_dict

        if dataclasses.is_dataclass(config) and not isinstance(config, type):
            data = config_to_dict(config)
        elif isinstance(config, Mapping):
            data = to_jsonable(config)
        else:
            raise TypeError(f"config must be a StudyConfig or a mapping; got {type(config).__name__}")
        target = self._file(CONFIG_NAME)
        if target.is_file() or self.resumed:
            check_resume(self.path, config if not isinstance(config, Mapping) else _as_config(data, target))
            RunLock.acquire(self.path)
            return target  # the same settings: the run's own config.yaml stays as it was
        RunLock.acquire(self.path)
        return atomic_write_text(target, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))

    def write_split(self, split: pd.DataFrame) -> Path:
        """``split.csv``: one row per case with at least ``case_id`` and ``set``."""
        missing = [c for c in SPLIT_COLUMNS if c not in split.columns]
        if missing:
            raise ValueError(f"split is missing column(s) {missing}; expected at least {list(SPLIT_COLUMNS)}")
        target = self._file(SPLIT_NAME)
        if target.is_file():
            old = self.read_split()
            if table_hash(_canonical(old)) != table_hash(_canonical(split)):
                raise RunMismatch(f"{target}: the run's split differs from this split (other cases or sets); "
                                  f"a run keeps its split: start a new run")
            return target
        return atomic_write_csv(split, target)

    def write_predictions(self, predictions: pd.DataFrame) -> Path:
        """``predictions.csv``: the long Predictions table."""
        _check_predictions(predictions)
        return atomic_write_csv(predictions, self._file(PREDICTIONS_NAME))

    def write_metrics(self, metrics: Mapping[str, Any]) -> Path:
        """``metrics.json``: a mapping of plain values (NaN is written as ``null``)."""
        if not isinstance(metrics, Mapping):
            raise TypeError(f"metrics must be a mapping; got {type(metrics).__name__}")
        return atomic_write_json(metrics, self._file(METRICS_NAME))

    def write_provenance(self, provenance: Mapping[str, Any]) -> Path:
        """``provenance.json``: the dict from :func:`collect_provenance`."""
        if not isinstance(provenance, Mapping):
            raise TypeError(f"provenance must be a mapping; got {type(provenance).__name__}")
        return atomic_write_json(provenance, self._file(PROVENANCE_NAME))

    # -- folders
    def _file(self, *parts: str) -> Path:
        """``<run>/<parts...>``, checked to lie inside the run folder (``guard.inside``)."""
        return inside(self.path, Path(*parts))

    def _folder(self, *parts: str) -> Path:
        folder = self._file(*parts)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def checkpoint_dir(self, model_name: str) -> Path:
        """``checkpoints/<model>/`` (created); the model's display name made safe for a folder name."""
        return self._folder(CHECKPOINTS_DIR, safe_folder_name(model_name))

    @property
    def cams_dir(self) -> Path:
        """``cams/`` (created)."""
        return self._folder(CAMS_DIR)

    def model_cams_dir(self, model_name: str) -> Path:
        """``cams/<model>/`` (created), named like ``checkpoint_dir``."""
        return self._folder(CAMS_DIR, safe_folder_name(model_name))

    def cam_file(self, model_name: str, case_id: str) -> Path:
        """``cams/<model>/<case>.npy``: the one place a case id becomes a file name (``cam_file``)."""
        self.model_cams_dir(model_name)
        return inside(self.path, cam_file(self.path / CAMS_DIR, model_name, case_id))

    # -- readers
    def _need(self, name: str) -> Path:
        path = self.path / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: this run has not written {name} yet")
        return path

    def read_config(self, *, raw: bool = False) -> Any:
        """``config.yaml`` as a validated ``StudyConfig`` (``raw=True``: the plain dict)."""
        from medlib.config import config_from_dict

        path = self._need(CONFIG_NAME)
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return data if raw else config_from_dict(data, source=str(path))

    def read_split(self) -> pd.DataFrame:
        return _read_csv(self._need(SPLIT_NAME))

    def read_predictions(self) -> pd.DataFrame:
        df = _read_csv(self._need(PREDICTIONS_NAME))
        _check_predictions(df)
        return df

    def read_metrics(self) -> dict[str, Any]:
        return json.loads(self._need(METRICS_NAME).read_text(encoding="utf-8"))

    def read_provenance(self) -> dict[str, Any]:
        return json.loads(self._need(PROVENANCE_NAME).read_text(encoding="utf-8"))


def cam_file(cams_dir: str | Path, model_name: str, case_id: str) -> Path:
    """``<cams_dir>/<model>/<case>.npy`` with both names made safe (``guard.safe_name``); the viewer finds a map
    with the same call."""
    return Path(cams_dir) / safe_folder_name(model_name) / f"{safe_name(case_id, what='case_id')}.npy"


def _canonical(split: pd.DataFrame) -> pd.DataFrame:
    """(case_id, set) as text in case order: a split read back from CSV compares equal to the one written."""
    table = split[list(SPLIT_COLUMNS)].astype(str)
    return table.sort_values("case_id", kind="stable").reset_index(drop=True)


def _as_config(data: Mapping[str, Any], target: Path) -> Any:
    from medlib.config import config_from_dict

    return config_from_dict(data, source=str(target))


def _read_csv(path: Path) -> pd.DataFrame:
    """Read a run CSV with identifiers as strings (``"007"`` stays ``"007"``)."""
    header = pd.read_csv(path, nrows=0).columns
    dtypes = {c: t for c, t in ID_COLUMNS.items() if c in header}
    return pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values=[""])


def new_run(study: str, *, runs_dir: str | Path = "runs", run_id: str | None = None) -> RunDir:
    """Create a new run folder ``<runs_dir>/<study>/<run-id>/``; an existing run is never reused.

    Args:
        study: the study's short name (``nec``, ``onfh``, ...).
        runs_dir: the folder holding all runs (``StudyConfig.runs_dir``), relative to the working directory.
        run_id: the folder name; default a new :func:`make_run_id`.

    Returns:
        The new :class:`RunDir`.

    Raises:
        ValueError: a study or run id with characters other than letters, digits, ``.``, ``_``, ``-``.
        FileExistsError: ``run_id`` names a run that already exists.
    """
    _check_name(study, "study")
    parent = Path(runs_dir) / study
    parent.mkdir(parents=True, exist_ok=True)
    if run_id is not None:
        _check_name(run_id, "run_id")
        path = parent / run_id
        try:
            path.mkdir()
        except FileExistsError:
            raise FileExistsError(f"run {path} already exists; choose another run_id, or resume it with "
                                  f"open_run({str(path)!r})") from None
        RunLock.acquire(path)
        return RunDir(path)
    for _ in range(100):
        path = parent / make_run_id()
        try:
            path.mkdir()
        except FileExistsError:
            continue
        RunLock.acquire(path)
        return RunDir(path)
    raise FileExistsError(f"could not create a new run folder in {parent} after 100 attempts")


def open_run(path: str | Path, config: Any = None) -> RunDir:
    """Reopen an existing run folder (to resume training or read its files).

    Reading needs nothing more. To write into it, ``config`` (the ``StudyConfig`` of the resumed run) is
    checked first (``guard.check_resume``: the same study and settings, not in use, checkpoints intact) and the
    folder is then locked for this process; without ``config`` the first ``write_config`` does that check.

    Raises:
        FileNotFoundError: ``path`` is not an existing folder.
        RunMismatch, RunInUse: see ``guard.check_resume``.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"run folder not found: {path} (expected runs/<study>/<run-id>/)")
    if config is not None:
        check_resume(path, config)
        RunLock.acquire(path)
    return RunDir(path, resumed=True)


def start_run(config: Any, *, run_id: str | None = None, resume: str | Path | None = None) -> RunDir:
    """The run folder a study writes: ``resume`` checked and locked (nothing written), or a new folder
    ``<runs_dir>/<study>/<run_id>`` with ``config.yaml`` written once.

    Raises:
        FileExistsError: ``run_id`` exists. FileNotFoundError, RunMismatch, RunInUse: a bad ``resume``.
    """
    if resume:
        return open_run(resume, config)
    run = new_run(config.study.name, runs_dir=config.runs_dir, run_id=run_id or None)
    run.write_config(config)
    return run
