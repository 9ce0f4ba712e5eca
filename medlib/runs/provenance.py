"""Provenance of a run: what ``provenance.json`` records so that the run can be reproduced and audited.

Versions of medlib, Python and the libraries that decide the numbers, the project's git commit and whether the
work tree was dirty, the platform, the training device, seeds, the cohort and split hashes and the durations.
Provenance holds no host name, user name or home path: reports are public.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

import numpy as np

__all__ = ["NOT_INSTALLED", "PACKAGES", "UNKNOWN", "collect_provenance", "cuda_device_name", "git_commit",
           "package_version"]

#: Distributions whose versions go into provenance.json (import names differ: grad-cam is pytorch_grad_cam).
PACKAGES = ("torch", "torchvision", "monai", "grad-cam", "pydicom", "scikit-learn", "scipy", "statsmodels",
            "numpy", "pandas")
NOT_INSTALLED = "not installed"
UNKNOWN = "unknown"

_PROJECT_ROOT = Path(__file__).resolve().parents[2]


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
