"""What keeps a run folder safe: file names made from data, writes that stay inside the folder, one process at a
time, and a resume that continues only the run it belongs to.

* :func:`safe_name` turns any identifier (a case id, a model label) into one file-name part: no separator, no
  ``..``, no control character, at most ``NAME_BYTES`` bytes, and different identifiers never share a name (a
  name that had to change carries a hash of the original). Letters of any script are kept.
* :func:`inside` resolves a path and refuses it unless it lies inside the run folder (symbolic links included).
* :class:`RunLock` holds an exclusive ``fcntl`` lock on ``<run>/.lock`` while a process writes the run; a second
  process is refused with the holder's process id. The kernel drops the lock when the holder exits, even by
  SIGKILL, so a killed run never leaves a stale lock.
* :func:`check_resume` checks, before anything is written, that a folder is a run of this study made with the
  same results-deciding settings (:func:`config_hash`), that no other process holds it and that its checkpoints
  are readable.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import unicodedata
import zipfile
from pathlib import Path
from typing import Any

import yaml

__all__ = ["EXECUTION_KEYS", "NAME_BYTES", "RunInUse", "RunLock", "RunMismatch", "check_resume", "config_hash",
           "damaged_checkpoints", "inside", "safe_name"]

#: Longest name part made from data (bytes, UTF-8); file systems allow 255, the suffix and a hash need room.
NAME_BYTES = 120
LOCK_NAME = ".lock"
CONFIG_NAME = "config.yaml"  # the run's resolved config (``medlib.runs.folder`` writes it)
#: Settings that change how a run executes but not its results: they may differ between a run and its resume.
EXECUTION_KEYS = ("runs_dir", "image.cache_dir", "train.device", "train.threads", "train.distributed",
                  "radiomics.workers", "cohort.max_errors")
_UNSAFE = re.compile(r"[^\w.\- ]+", re.UNICODE)  # \w: letters and digits of any script, and '_'
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}


class RunMismatch(ValueError):
    """A folder that is not a run of this study, or a run made with other settings: it is left untouched."""


class RunInUse(RuntimeError):
    """Another process holds the run folder's lock."""


# ------------------------------------------------------------------------------------------------ names
def safe_name(value: Any, *, what: str = "name") -> str:
    """One file-name part for ``value``, safe and injective.

    Unicode letters, digits, ``_``, ``-``, ``.`` and spaces are kept (NFC-normalised; spaces become ``_``);
    anything else, leading dots and dashes, and bytes past ``NAME_BYTES`` are replaced or cut. When the name had
    to change, ``-`` and 8 hex digits of the sha256 of the original are appended, so ``"a/b"`` and ``"a_b"``
    never share a file.

    Raises:
        ValueError: an empty value (None, NaN or only spaces), naming ``what``.
    """
    text = "" if value is None else str(value)
    if not text.strip() or text.strip().lower() in ("nan", "none", "<na>"):
        raise ValueError(f"{what} {value!r} is empty or missing; expected an identifier")
    norm = unicodedata.normalize("NFC", text)
    safe = re.sub(r"_{2,}", "_", _UNSAFE.sub("_", norm).replace(" ", "_")).strip(".-_")
    safe = safe.encode("utf-8")[:NAME_BYTES].decode("utf-8", "ignore").rstrip(". ")
    if safe != text or not safe or safe.split(".")[0].upper() in _RESERVED:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        safe = f"{safe or 'x'}-{digest}"
    return safe


def inside(root: str | Path, path: str | Path) -> Path:
    """``path`` resolved, after checking that it lies inside ``root`` (links followed).

    Raises:
        ValueError: the path escapes ``root`` (``..``, an absolute part, a symbolic link pointing out).
    """
    base = Path(root).resolve()
    target = Path(path) if Path(path).is_absolute() else base / path
    resolved = target.resolve()
    if resolved != base and base not in resolved.parents:
        raise ValueError(f"refusing to write {target}: it lies outside the run folder {base}")
    return resolved


# ----------------------------------------------------------------------------------------------- locking
class RunLock:
    """An exclusive, non-blocking ``fcntl.flock`` on ``<folder>/.lock``, held until :meth:`release` or the
    process ends. Taking it again in the holding process is a no-op (a notebook cell run twice)."""

    _held: dict[str, "RunLock"] = {}

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder).resolve()
        self._fd: int | None = None

    @classmethod
    def acquire(cls, folder: str | Path) -> "RunLock":
        """Lock ``folder`` for this process.

        Raises:
            RunInUse: another process holds it (its process id in the message).
        """
        key = str(Path(folder).resolve())
        if key in cls._held:
            return cls._held[key]
        lock = cls(folder)
        path = lock.folder / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
                raise
            holder = path.read_text(errors="replace") if path.is_file() else "?"
            raise RunInUse(f"run folder {lock.folder} is in use by another process (pid {holder.strip() or '?'}); "
                           f"wait for it to finish, or start a new run") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        lock._fd = fd
        cls._held[key] = lock
        return lock

    @classmethod
    def probe(cls, folder: str | Path) -> None:
        """Raise :class:`RunInUse` if another process holds ``folder``; hold nothing afterwards."""
        key = str(Path(folder).resolve())
        if key in cls._held or not (Path(folder) / LOCK_NAME).is_file():
            return
        cls.acquire(folder).release()

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        self._held.pop(str(self.folder), None)


# ------------------------------------------------------------------------------------------------ resume
def config_hash(config: Any) -> str:
    """sha256 of a ``StudyConfig``'s results-deciding settings (all but ``EXECUTION_KEYS``) as canonical JSON;
    a mapping (a run's ``config.yaml``) is validated first so both spell values alike."""
    from medlib.config import config_from_dict, config_to_dict

    if isinstance(config, dict):
        config = config_from_dict(config)
    data = _hashed(config_to_dict(config))
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=True).encode()).hexdigest()


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for k in sorted(set(old) | set(new), key=str)
                for d in _differences(old.get(k), new.get(k), f"{prefix}.{k}" if prefix else str(k))]
    return [] if old == new else [f"{prefix} ({old!r} in the run, {new!r} now)"]


def damaged_checkpoints(folder: str | Path) -> list[str]:
    """Checkpoint files of a run (``checkpoints/*/*.pt``) that are not complete archives, with the reason.

    torch saves a zip archive; a truncated or overwritten file fails the archive's own CRC check, found here
    without unpickling anything.
    """
    bad = []
    for path in sorted(Path(folder).glob("checkpoints/*/*.pt")):
        try:
            with zipfile.ZipFile(path) as archive:
                broken = archive.testzip()
            if broken is not None:
                bad.append(f"{path} (member {broken} fails its CRC)")
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            bad.append(f"{path} ({type(err).__name__}: {err})")
    return bad


def check_resume(folder: str | Path, config: Any) -> Path:
    """Check that ``folder`` is a run of ``config``'s study with the same settings, not in use, with readable
    checkpoints; nothing is written (not even a lock file).

    Returns:
        The resolved folder.

    Raises:
        FileNotFoundError: no such folder.
        RunMismatch: no ``config.yaml`` there, another study, other results-deciding settings (listed),
            or a damaged checkpoint (named).
        RunInUse: another process holds the folder.
    """
    from medlib.config import ConfigError, config_from_dict, config_to_dict

    path = Path(folder)
    if not path.is_dir():
        raise FileNotFoundError(f"cannot resume {folder}: not a run folder (no such folder)")
    config_file = path / CONFIG_NAME
    if not config_file.is_file():
        raise RunMismatch(f"cannot resume {folder}: not a run folder (no {CONFIG_NAME}); it is left untouched")
    try:
        saved = config_from_dict(yaml.safe_load(config_file.read_text(encoding="utf-8")) or {},
                                 source=str(config_file))
    except (ConfigError, yaml.YAMLError, UnicodeDecodeError) as err:
        raise RunMismatch(f"cannot resume {folder}: its {CONFIG_NAME} is not a readable run config ({err})") from None
    if saved.study.name != config.study.name:
        raise RunMismatch(f"cannot resume {folder}: it is a run of study {saved.study.name!r}, not "
                          f"{config.study.name!r}; it is left untouched")
    if config_hash(saved) != config_hash(config):
        changed = _differences(_hashed(config_to_dict(saved)), _hashed(config_to_dict(config)))
        raise RunMismatch(f"cannot resume {folder}: its settings differ from these params: {'; '.join(changed[:5])}"
                          f"; resume with the run's own settings, or start a new run")
    damaged = damaged_checkpoints(path)
    if damaged:
        raise RunMismatch(f"cannot resume {folder}: damaged checkpoint {damaged[0]}; delete that model's "
                          f"checkpoints/ folder to retrain it, or start a new run")
    RunLock.probe(path)
    return path.resolve()


def _hashed(data: dict) -> dict:
    """``data`` (changed in place) without the ``EXECUTION_KEYS``."""
    for dotted in EXECUTION_KEYS:
        *parents, last = dotted.split(".")
        node = data
        for part in parents:
            node = node.get(part, {})
        node.pop(last, None)
    return data
