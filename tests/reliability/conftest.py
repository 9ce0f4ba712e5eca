"""Fixtures of the reliability suite: tiny synthetic cohorts (generated once per session) and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from medlib.cli.runner import PROJECT_ROOT

SCALE = 0.1      # 10 patients per class (the minimum synth keeps), NEC adds an external cohort
IMAGE_SIZE = 32  # 32-pixel radiographs; ICH CT 32 x 32 in-plane


@pytest.fixture(scope="session")
def base_cohorts(tmp_path_factory) -> Path:
    """NEC, ONFH, ICH and glioma synthetic cohorts (DICOM with planted identifiers, NIfTI masks); never modified."""
    from medlib import synth

    root = tmp_path_factory.mktemp("base")
    for study in ("nec", "onfh", "ich", "glioma"):
        synth.generate(study, root, seed=0, scale=SCALE, image_size=IMAGE_SIZE)
    return root


def cli_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **extra}
    env.pop("MEDLIB_DEBUG", None)
    return env


def run_cli(argv: list[str], *, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m medlib ARGV`` from the project root, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "medlib", *argv], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, env=cli_env(**(env or {})), timeout=timeout)
