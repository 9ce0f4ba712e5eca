"""Reading a finished run for the browser: its config, ``split.csv``, ``predictions.csv``, ``metrics.json`` and
``cams/<model>/<case>.npy`` in ``runs/<study>/<run-id>/``.

The viewer recomputes nothing the run decided: the sets are the run's split, each model's threshold is the one
frozen in ``metrics.json`` (read with :meth:`medlib.schema.RunMetrics.from_json`). A run folder without
``split.csv``, ``predictions.csv`` or ``metrics.json`` is an error naming the file.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from medlib.schema import FrozenThreshold, RunMetrics

__all__ = ["RunData", "read_run", "RunThreshold", "run_thresholds", "cam_path", "model_inputs"]


@dataclass(frozen=True)
class RunData:
    """What a finished run stored, read once; every field is None when no run is given.

    Attributes:
        path: the run folder.
        config: the run's ``config.yaml`` as a ``StudyConfig`` (None if the run has none).
        split: the run's ``split.csv`` (case_id, patient_id, y, set).
        predictions: the run's ``predictions.csv`` (the Predictions table).
        metrics: the run's ``metrics.json``: the frozen thresholds and performance values.
        cams_dir: the run's ``cams/`` folder, or None if it stored no Grad-CAM.
    """

    path: Path | None = None
    config: Any = None
    split: pd.DataFrame | None = None
    predictions: pd.DataFrame | None = None
    metrics: RunMetrics | None = None
    cams_dir: Path | None = None


def read_run(run_dir: str | Path | None) -> RunData:
    """Read a finished run folder: config (optional), split, predictions, metrics and where its CAMs are.

    Args:
        run_dir: ``runs/<study>/<run-id>/``; None or ``""`` for no run (an empty ``RunData``). A relative path
            that is not there from the current folder is read from the workspace (a notebook's kernel starts in
            ``notebooks/``; ``medlib.resources.workspace``).

    Raises:
        FileNotFoundError: ``run_dir`` is not a folder, or it lacks ``split.csv``, ``predictions.csv`` or
            ``metrics.json`` (the message names the file).
        ValueError: ``metrics.json`` holds no thresholds (naming the file), or an invalid predictions table.
    """
    if run_dir is None or str(run_dir) == "":
        return RunData()
    from medlib.resources import workspace
    from medlib.runs.folder import CAMS_DIR, CONFIG_NAME, METRICS_NAME, open_run

    path = Path(run_dir).expanduser()
    if not path.is_absolute() and not path.exists():
        path = workspace() / path
    run = open_run(path)
    try:
        metrics = RunMetrics.from_json(run.read_metrics())
    except ValueError as err:
        raise ValueError(f"{run.path / METRICS_NAME}: {err}") from err
    return RunData(path=run.path, config=run.read_config() if (run.path / CONFIG_NAME).is_file() else None,
                   split=run.read_split(), predictions=run.read_predictions(), metrics=metrics,
                   cams_dir=run.path / CAMS_DIR if (run.path / CAMS_DIR).is_dir() else None)


@dataclass(frozen=True)
class RunThreshold:
    """A model's operating threshold as the browser uses it, and where it came from (shown in the UI)."""

    value: float
    source: str


def _source(t: FrozenThreshold) -> str:
    """Where the threshold came from, as the UI says it: the run's own description when it stored one."""
    how = t.description or ", ".join(p for p in (t.method, None if t.target is None else f"target {t.target:g}",
                                                 f"chosen on {t.chosen_on}") if p)
    return f"stored in the run's metrics.json: {how}"


def run_thresholds(predictions: pd.DataFrame, metrics: RunMetrics) -> dict[str, RunThreshold]:
    """Each model's threshold as the run froze it in ``metrics.json``; nothing is chosen here.

    A model of ``predictions`` without a stored threshold warns and gets NaN (no outcome can be called).

    Args:
        predictions: the run's Predictions table.
        metrics: the run's ``metrics.json`` (:class:`medlib.schema.RunMetrics`).

    Returns:
        model -> :class:`RunThreshold`, in the order the models appear in ``predictions``.
    """
    out = {}
    for model in pd.unique(predictions["model"].astype(str)):
        stored = metrics.thresholds.get(model)
        if stored is None:
            warnings.warn(f"model {model!r}: the run's metrics.json stores no threshold; no TP/FP/TN/FN outcomes",
                          RuntimeWarning, stacklevel=2)
            out[model] = RunThreshold(float("nan"), "undefined: not stored in the run's metrics.json")
        else:
            out[model] = RunThreshold(float(stored.value), _source(stored))
    return out


def cam_path(cams_dir: str | Path | None, model: str, case_id: str) -> Path | None:
    """``cams/<model>/<case_id>.npy``, the model's folder named as the run names it
    (``medlib.runs.folder.safe_folder_name``), or None if the run stored no such map."""
    from medlib.runs.folder import safe_folder_name

    if cams_dir is None:
        return None
    path = Path(cams_dir) / safe_folder_name(model) / f"{case_id}.npy"
    return path if path.is_file() else None


def model_inputs(config: Any, model: str, image_columns: Sequence[str]) -> tuple[str, ...]:
    """The image columns a model read (from the run's config); all image columns when unknown."""
    for m in getattr(config, "models", ()) or ():
        if m.display_name == model:
            return tuple(m.inputs) or tuple(image_columns)
    return tuple(image_columns)
