"""The run's records: the one definition of what one step hands to the next.

Every table or record that crosses a module boundary is defined here, once, and validated where it is written
or read; every other module imports these names instead of spelling columns or set names again.

- **Predictions** (:data:`PREDICTION_COLUMNS`): the long table every statistic, figure and report reads; one
  row per case, model and set. ``y_true`` is 0/1, ``score`` the predicted probability of the positive class.
- **Sets** (:data:`SETS`): ``train`` fits the model, ``val`` chooses the epoch and the threshold, ``test`` and
  ``external`` are never seen before the threshold is frozen. Their order and their names in a report
  (:data:`SET_LABELS`) are defined here.
- **Split** (:data:`SPLIT_COLUMNS`): case, patient, outcome and set of every case, with its content hash
  (:class:`SplitRecord`).
- **Run metrics** (:class:`RunMetrics`): the frozen thresholds and the performance values of ``metrics.json``.

This module imports only NumPy and pandas, so every layer can depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

PREDICTION_COLUMNS = ("case_id", "patient_id", "model", "set", "y_true", "score")
#: Identifier columns read as strings from CSV (``"007"`` stays ``"007"``).
ID_COLUMNS = {"case_id": str, "patient_id": str, "model": str, "set": str}

SETS = ("train", "val", "test", "external")
SET_LABELS = {"train": "Training", "val": "Validation", "test": "Test", "external": "External test"}
#: Sets split at random from the internal cohort, in order (``split.ratios`` gives their fractions).
INTERNAL_SETS = ("train", "val", "test")
#: Sets a performance table reports: validation (a tuning set), test and external.
EVALUATION_SETS = ("val", "test", "external")
#: The set used for early stopping, model choice and the threshold; headline numbers never come from it.
TUNING_SET = "val"
#: The evaluation sets nothing was tuned on.
UNTOUCHED_SETS = tuple(s for s in EVALUATION_SETS if s != TUNING_SET)
#: The set a report's figures show, in order of preference: the internal test set, else the external set, else
#: validation.
PRIMARY_SET_ORDER = ("test", "external", "val")

SPLIT_COLUMNS = ("case_id", "patient_id", "y", "set")


def set_label(name: Any) -> str:
    """The reader's name of a set ("val" → "Validation"); unknown names are returned as they are."""
    return SET_LABELS.get(str(name), str(name))


def ordered_sets(names: Iterable[Any]) -> list[str]:
    """Set names in the canonical order (train, val, test, external), then any others sorted."""
    present = {str(n) for n in names}
    return [s for s in SETS if s in present] + sorted(n for n in present if n not in SETS)


def check_predictions(predictions: Any, *, name: str = "predictions") -> pd.DataFrame:
    """Check the predictions table's contract; return it unchanged.

    Raises:
        TypeError: not a DataFrame.
        ValueError: a missing column, an unknown set name, labels other than 0/1, or a non-numeric score.
    """
    if not isinstance(predictions, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame; got {type(predictions).__name__}")
    missing = [c for c in PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise ValueError(f"{name} is missing column(s) {missing}; expected {list(PREDICTION_COLUMNS)}, "
                         f"got {list(predictions.columns)}")
    unknown = sorted({str(s) for s in predictions["set"].unique()} - set(SETS))
    if unknown:
        raise ValueError(f"{name} has unknown set name(s) {unknown}; expected {list(SETS)}")
    y = pd.to_numeric(predictions["y_true"], errors="coerce")
    if len(y) and not y.isin((0, 1)).all():
        bad = sorted({str(v) for v in predictions.loc[~y.isin((0, 1)), "y_true"]})[:5]
        raise ValueError(f"{name}: y_true must be 0 or 1; got {bad}")
    if len(predictions) and not pd.api.types.is_numeric_dtype(predictions["score"]):
        raise ValueError(f"{name}: score must be numeric; got dtype {predictions['score'].dtype}")
    return predictions


@dataclass(frozen=True)
class SplitRecord:
    """The patient-level split of one run.

    Attributes:
        table: one row per case with :data:`SPLIT_COLUMNS`.
        hash: SHA-256 of the table's content (``medlib.data.cohort.split_hash``).
        how: one sentence saying how the split was made.
    """

    table: pd.DataFrame
    hash: str
    how: str = ""

    def __post_init__(self) -> None:
        missing = [c for c in SPLIT_COLUMNS if c not in self.table.columns]
        if missing:
            raise ValueError(f"split is missing column(s) {missing}; expected {list(SPLIT_COLUMNS)}")

    @property
    def sets(self) -> tuple[str, ...]:
        return tuple(ordered_sets(self.table["set"]))


@dataclass(frozen=True)
class FrozenThreshold:
    """A model's operating threshold, chosen on ``chosen_on`` and frozen before any other set is scored.

    Attributes:
        value: scores >= value are called positive.
        method: ``youden``, ``sensitivity`` or ``fixed`` (``medlib.stats.choose_threshold``).
        target: the target sensitivity, or the fixed value; None for Youden.
        chosen_on: the set it was chosen on.
        description: one sentence saying how it was chosen.
    """

    value: float
    method: str
    target: float | None = None
    chosen_on: str = "val"
    description: str = ""


@dataclass(frozen=True)
class RunMetrics:
    """``metrics.json``: the frozen thresholds per model and the performance values (numbers, not text).

    Attributes:
        thresholds: model → :class:`FrozenThreshold`.
        performance: long records (model, set, metric, estimate, lo, hi, method, ...), one per value.
        level: confidence level of the intervals.
        recalibration: model → the frozen recalibration map (method, intercept, slope, fitted_on, n_cases,
            n_events, reason; an isotonic map adds its knots ``x`` and ``y``), when the run fitted one.
        localisation: Grad-CAM localisation against lesion masks, one record per model (model, layer, set,
            scored, pointing with its interval, centre_pointing, mass, ...), when the cohort has masks.
    """

    thresholds: Mapping[str, FrozenThreshold] = field(default_factory=dict)
    performance: tuple[Mapping[str, Any], ...] = ()
    level: float = 0.95
    recalibration: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    localisation: tuple[Mapping[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"thresholds": {m: {"value": _num(t.value), "method": t.method, "target": t.target,
                                   "chosen_on": t.chosen_on, "description": t.description}
                               for m, t in self.thresholds.items()},
                "performance": [dict(r) for r in self.performance], "level": self.level,
                "recalibration": {m: _plain(r) for m, r in self.recalibration.items()},
                "localisation": [_plain(r) for r in self.localisation]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "RunMetrics":
        """Read ``metrics.json``; a missing ``thresholds`` or a threshold without ``value`` is an error."""
        if not isinstance(data, Mapping) or "thresholds" not in data:
            raise ValueError("metrics.json must hold 'thresholds' (model → value, method)")
        thresholds = {}
        for model, t in data["thresholds"].items():
            if not isinstance(t, Mapping) or "value" not in t:
                raise ValueError(f"metrics.json: threshold of model {model!r} has no 'value'")
            value = float("nan") if t["value"] is None else float(t["value"])
            thresholds[str(model)] = FrozenThreshold(value=value, method=str(t.get("method", "")),
                                                     target=t.get("target"), chosen_on=str(t.get("chosen_on", "val")),
                                                     description=str(t.get("description", "")))
        return cls(thresholds=thresholds, performance=tuple(data.get("performance", ())),
                   level=float(data.get("level", 0.95)), recalibration=dict(data.get("recalibration", {})),
                   localisation=tuple(data.get("localisation", ())))


def _num(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def _plain(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record with JSON's types: NumPy scalars as Python numbers, NaN and infinities as None."""
    out = {}
    for key, value in record.items():
        if isinstance(value, (np.integer, np.bool_)):
            value = value.item()
        if isinstance(value, (float, np.floating)):
            value = _num(float(value))
        out[str(key)] = value
    return out
