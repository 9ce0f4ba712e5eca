"""Shared fixtures: the reference data folder (../shared/reference), a finished fake run, and small helpers."""

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


def _write_fake_run(root: Path, cfg, cohort, cams: dict, metrics: dict | None, *, run_id: str = "fake") -> Path:
    """A finished run as a study writes it: config, split, predictions (scores that separate the classes a
    little), ``metrics.json`` when given, and a Grad-CAM map per case of each model in ``cams`` (model -> map
    shape), under ``root/runs/<study>/<run_id>``."""
    import numpy as np
    import pandas as pd

    from medlib.data.cohort import split_cohort
    from medlib.runs.folder import new_run

    run = new_run(cfg.study.name, runs_dir=Path(root) / "runs", run_id=run_id)
    run.write_config(cfg)
    split = split_cohort(cohort, ratios=cfg.split.ratios, seed=0)
    run.write_split(split)
    rng = np.random.default_rng(0)
    rows = [split.assign(model=m.display_name, y_true=split["y"],
                         score=np.clip(0.35 * split["y"] + rng.uniform(0, 0.65, len(split)), 0, 1))
            for m in cfg.models]
    run.write_predictions(pd.concat(rows)[["case_id", "patient_id", "model", "set", "y_true", "score"]])
    if metrics is not None:
        run.write_metrics(metrics)
    for model, shape in cams.items():
        grid = np.indices(shape).sum(axis=0).astype(np.float32)
        folder = run.model_cams_dir(model)
        for case_id in split["case_id"]:
            np.save(folder / f"{case_id}.npy", grid / grid.max())
    return run.path


@pytest.fixture(scope="session")
def fake_run():
    """``fake_run(root, cfg, cohort, cams, metrics, run_id="fake")``: see ``_write_fake_run``."""
    return _write_fake_run


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
