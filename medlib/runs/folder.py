"""Run folders, atomic writes and provenance.

One study run lives in ``runs/<study>/<run-id>/`` (DESIGN.md, "Where a run lives")::

    config.yaml        the resolved StudyConfig
    split.csv          case_id, patient_id, y, set
    predictions.csv    the long Predictions table (case_id, patient_id, model, set, y_true, score)
    metrics.json       whatever numbers the notebook wants to keep
    provenance.json    versions, git commit, seeds, device, cohort and split hashes, durations
    checkpoints/<model>/
    cams/

Every file is written to a temporary name in the same folder, flushed and fsynced, then renamed over the
target with ``os.replace`` (atomic on POSIX and Windows), so a crash leaves either the old file or the new
one, never half of one.

Provenance holds no host name, user name or home path: reports are public.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import re
import secrets
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import IO, Any, Iterator, Mapping

import numpy as np
import pandas as pd
import yaml

from medlib.schema import ID_COLUMNS, PREDICTION_COLUMNS, check_predictions

CONFIG_NAME = "config.yaml"
SPLIT_NAME = "split.csv"
PREDICTIONS_NAME = "predictions.csv"
METRICS_NAME = "metrics.json"
PROVENANCE_NAME = "provenance.json"
CHECKPOINTS_DIR = "checkpoints"
CAMS_DIR = "cams"

SPLIT_COLUMNS = ("case_id", "set")

#: Distributions whose versions go into provenance.json (import names differ: grad-cam is pytorch_grad_cam).
PACKAGES = ("torch", "torchvision", "monai", "grad-cam", "pydicom", "scikit-learn", "scipy", "statsmodels",
            "numpy", "pandas")
NOT_INSTALLED = "not installed"
UNKNOWN = "unknown"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------ atomic writes


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", *, encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on a clean exit it is fsynced and renamed over ``path``.

    If the block raises, the temporary file is removed and ``path`` is left as it was (absent or unchanged).
    The parent folder is created if needed.

    Args:
        path: the target file.
        mode: ``"w"`` (text) or ``"wb"`` (bytes).
        encoding: text encoding (ignored for ``"wb"``).

    Raises:
        ValueError: a mode other than ``"w"`` or ``"wb"``.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
        >>> with atomic_open(target) as f:
        ...     _ = f.write("hello")
        >>> target.read_text()
        'hello'
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb'; got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        kwargs = {"encoding": encoding, "newline": ""} if mode == "w" else {}
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (POSIX); platforms that cannot open a folder skip it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename). Returns ``path``."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes; got {type(data).__name__}")
    with atomic_open(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically. Returns ``path``."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str; got {type(text).__name__}")
    with atomic_open(path, "w", encoding=encoding) as handle:
        handle.write(text)
    return Path(path)


def atomic_write_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a DataFrame as CSV (no index, ``\\n`` line ends) atomically. Returns ``path``."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame; got {type(df).__name__}")
    with atomic_open(path, "w") as handle:
        df.to_csv(handle, index=False, lineterminator="\n")
    return Path(path)


def atomic_write_json(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` as indented, strict JSON atomically (NaN and inf become ``null``). Returns ``path``.

    numpy scalars and arrays, tuples, paths, dataclasses (e.g. ``Estimate``) and DataFrames (as records)
    are converted to plain JSON values first.
    """
    text = json.dumps(to_jsonable(obj), indent=2, allow_nan=False, ensure_ascii=False)
    return atomic_write_text(path, text + "\n")


def to_jsonable(obj: Any) -> Any:
    """A plain JSON-safe copy of ``obj`` (the input is not modified)."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, pd.DataFrame):
        return to_jsonable(obj.to_dict("records"))
    if isinstance(obj, (list, tuple, set, frozenset, pd.Series, np.ndarray)):
        return [to_jsonable(v) for v in (obj.tolist() if isinstance(obj, (np.ndarray, pd.Series)) else obj)]
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (_dt.datetime, _dt.date)):
        return obj.isoformat()
    raise TypeError(f"cannot write {type(obj).__name__} to JSON: {obj!r}")


# ------------------------------------------------------------------------------------------------ hashes


def file_hash(path: str | Path, *, chunk_size: int = 1 << 20) -> str:
    """sha256 (hex) of a file's bytes, read in chunks.

    Raises:
        FileNotFoundError: no such file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"cannot hash {path}: no such file")
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def table_hash(df: pd.DataFrame) -> str:
    """sha256 (hex) of a table's canonical CSV bytes: UTF-8, no index, ``\\n`` line ends, rows and columns in
    their current order. Equal tables (same columns, rows, values and order) hash equal.

    Example:
        >>> a = pd.DataFrame({"case_id": ["c1", "c2"], "set": ["train", "test"]})
        >>> table_hash(a) == table_hash(a.copy()), table_hash(a) == table_hash(a.iloc[::-1])
        (True, False)
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame; got {type(df).__name__}")
    text = df.to_csv(index=False, lineterminator="\n")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -------------------------------------------------------------------------------------------- run folders


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
    """A model's display name as a folder name (letters, digits, '.', '_', '-')."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._-")
    if not safe:
        raise ValueError(f"model name {name!r} gives an empty folder name")
    return safe


@dataclasses.dataclass(frozen=True)
class RunDir:
    """One run folder, ``runs/<study>/<run-id>/``, with writers and readers for its files.

    Create one with :func:`new_run`, reopen one with :func:`open_run`. All writers are atomic and return
    the path written.

    Attributes:
        path: the run folder.
    """

    path: Path

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
        return atomic_write_text(self.path / CONFIG_NAME, yaml.safe_dump(data, sort_keys=False,
                                                                           allow_unicode=True))

    def write_split(self, split: pd.DataFrame) -> Path:
        """``split.csv``: one row per case with at least ``case_id`` and ``set``."""
        missing = [c for c in SPLIT_COLUMNS if c not in split.columns]
        if missing:
            raise ValueError(f"split is missing column(s) {missing}; expected at least {list(SPLIT_COLUMNS)}")
        return atomic_write_csv(split, self.path / SPLIT_NAME)

    def write_predictions(self, predictions: pd.DataFrame) -> Path:
        """``predictions.csv``: the long Predictions table."""
        _check_predictions(predictions)
        return atomic_write_csv(predictions, self.path / PREDICTIONS_NAME)

    def write_metrics(self, metrics: Mapping[str, Any]) -> Path:
        """``metrics.json``: a mapping of plain values (NaN is written as ``null``)."""
        if not isinstance(metrics, Mapping):
            raise TypeError(f"metrics must be a mapping; got {type(metrics).__name__}")
        return atomic_write_json(metrics, self.path / METRICS_NAME)

    def write_provenance(self, provenance: Mapping[str, Any]) -> Path:
        """``provenance.json``: the dict from :func:`collect_provenance`."""
        if not isinstance(provenance, Mapping):
            raise TypeError(f"provenance must be a mapping; got {type(provenance).__name__}")
        return atomic_write_json(provenance, self.path / PROVENANCE_NAME)

    # -- folders
    def checkpoint_dir(self, model_name: str) -> Path:
        """``checkpoints/<model>/`` (created); the model's display name made safe for a folder name."""
        folder = self.path / CHECKPOINTS_DIR / safe_folder_name(model_name)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @property
    def cams_dir(self) -> Path:
        """``cams/`` (created)."""
        folder = self.path / CAMS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def model_cams_dir(self, model_name: str) -> Path:
        """``cams/<model>/`` (created), named like ``checkpoint_dir``."""
        folder = self.cams_dir / safe_folder_name(model_name)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

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
        return RunDir(path)
    for _ in range(100):
        path = parent / make_run_id()
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return RunDir(path)
    raise FileExistsError(f"could not create a new run folder in {parent} after 100 attempts")


def open_run(path: str | Path) -> RunDir:
    """Reopen an existing run folder (to resume training or read its files).

    Raises:
        FileNotFoundError: ``path`` is not an existing folder.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"run folder not found: {path} (expected runs/<study>/<run-id>/)")
    return RunDir(path)


# -------------------------------------------------------------------------------------------- provenance


def package_version(name: str) -> str:
    """Installed version of a distribution, or ``"not installed"``."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return NOT_INSTALLED


def git_commit(root: str | Path = _PROJECT_ROOT) -> tuple[str, bool | None]:
    """The checked-out commit of the project and whether tracked files differ from it.

    Returns:
        ``(sha, dirty)``; ``("unknown", None)`` when ``root`` is not a git work tree or git is missing.
    """
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN, None
    return (sha or UNKNOWN), bool(status.strip())


def cuda_device_name() -> str:
    """Name of CUDA device 0, or ``"none"`` (no torch, or no CUDA)."""
    try:
        import torch
    except ImportError:
        return "none"
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"


def _check_numbers(values: Mapping[str, Any], what: str, kind: type) -> dict[str, Any]:
    if not isinstance(values, Mapping):
        raise TypeError(f"{what} must be a mapping of name -> {kind.__name__}; got {type(values).__name__}")
    out = {}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"{what}[{key!r}] must be a number; got {value!r}")
        out[str(key)] = kind(value)
    return out


def collect_provenance(*, seeds: Mapping[str, int], cohort_hash: str, split_hash: str, device: str,
                       durations: Mapping[str, float], packages: tuple[str, ...] = PACKAGES) -> dict[str, Any]:
    """What a run needs to be reproduced and audited, as a plain dict for ``provenance.json``.

    Holds the medlib version, Python and library versions (``"not installed"`` when absent), the project's git
    commit (``"unknown"`` outside a git work tree) and whether the work tree had uncommitted changes, the
    platform string (OS, kernel and architecture), CPU count, the training device and CUDA device name,
    seeds, the cohort manifest and split hashes, durations in seconds and a UTC timestamp. It never holds a
    host name, user name or path.

    Args:
        seeds: e.g. ``{"split": 0, "train": 0}``.
        cohort_hash: sha256 of the cohort manifest (``Cohort.hash``).
        split_hash: the split's hash (``Prepared.split_hash``).
        device: the device training ran on, in words.
        durations: step name -> seconds.
        packages: distributions whose versions are recorded.

    Raises:
        ValueError: a seed or duration that is not a number.
    """
    import medlib

    commit, dirty = git_commit()
    return {
        "medlib": medlib.__version__,
        "python": platform.python_version(),
        "packages": {name: package_version(name) for name in packages},
        "git_commit": commit,
        "git_dirty": dirty,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "device": str(device),
        "cuda_device": cuda_device_name(),
        "seeds": _check_numbers(seeds, "seeds", int),
        "cohort_hash": str(cohort_hash),
        "split_hash": str(split_hash),
        "durations_s": {k: round(v, 3) for k, v in _check_numbers(durations, "durations", float).items()},
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
