"""Shared fixtures: the reference data folder (../shared/reference) and small helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _find_reference_dir() -> Path | None:
    env = os.environ.get("MEDLIB_REFERENCE_DIR")
    candidates = [Path(env)] if env else []
    candidates += [PROJECT_ROOT.parent / "shared" / "reference", PROJECT_ROOT / ".." / "shared" / "reference"]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    return None


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The folder of real reference data with known answers (see its README).

    In CI (CI=true) a missing folder is a failure, not a skip: the golden tests are the proof of correctness.
    """
    found = _find_reference_dir()
    if found is None:
        msg = ("reference data not found: expected ../shared/reference beside the project root "
               "or MEDLIB_REFERENCE_DIR")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return found


@pytest.fixture
def one_torch_thread():
    """Run a test with one torch CPU thread (two xdist workers share two cores), then restore the setting."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def require_quarto() -> None:
    """Skip a rendering test where Quarto is absent, except in CI, where `make setup` installs it."""
    import os

    from medlib.render.quarto import QuartoNotFound, find_quarto

    try:
        find_quarto()
    except QuartoNotFound:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Quarto is required in CI (make setup installs it)")
        pytest.skip("Quarto not installed")
