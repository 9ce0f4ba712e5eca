"""Atomic writes and content hashes of run files.

Every file is written to a temporary name in the same folder, flushed and fsynced, then renamed over the
target with ``os.replace`` (atomic on POSIX and Windows), so a crash leaves either the old file or the new
one, never half of one. :func:`to_jsonable` is the one conversion of run records to plain JSON values;
:func:`file_hash` and :func:`table_hash` are the sha256 hashes recorded in ``provenance.json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import errno
import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator, Mapping

import numpy as np
import pandas as pd

__all__ = ["DISK_FULL_ERRNOS", "atomic_open", "disk_full", "atomic_write_bytes", "atomic_write_csv", "atomic_write_json", "atomic_write_text",
           "file_hash", "normal_permissions", "table_hash", "to_jsonable"]


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
        normal_permissions(tmp)  # mkstemp makes 0600; outputs get the mode open() would give
        kwargs = {"encoding": encoding, "newline": ""} if mode == "w" else {}
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(err, OSError) and err.errno in DISK_FULL_ERRNOS:
            raise disk_full(path, err) from err
        raise
    _fsync_dir(path.parent)


#: errno values that mean the disk (or the user's quota, or the file size limit) is full.
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def disk_full(path: str | Path, err: OSError) -> OSError:
    """The error to raise when writing ``path`` ran out of space: it says so, names the file and the free space
    left, and keeps the errno (the temporary file is already removed by the caller)."""
    try:
        free = f"{shutil.disk_usage(Path(path).parent).free / 2**20:.1f} MiB free"
    except OSError:
        free = "free space unknown"
    return OSError(err.errno, f"disk full while writing {path} ({free}; {os.strerror(err.errno)}); free some "
                              f"space and run again (nothing was left half-written)")


_FILE_MODE = 0o666


def _umask() -> int:
    """The process's umask: from ``/proc/self/status`` on Linux (no change to the process), else read back by
    setting it (os has no getter)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def normal_permissions(path: str | Path) -> Path:
    """Give a file made by ``tempfile.mkstemp`` (0600) the mode ``open()`` gives: 0666 less the umask
    (0644 with the usual umask 022), so a report or run record is readable like any other output."""
    os.chmod(path, _FILE_MODE & ~_umask())
    return Path(path)


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
