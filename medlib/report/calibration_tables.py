"""Calibration tables: calibration on one set, and before/after the recalibration frozen on validation.

Numbers come from :mod:`medlib.stats.recalibration`; this module chooses, formats and labels (re-exported by
:mod:`medlib.report.tables`).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from medlib.report.format import fmt_estimate, level_text, not_estimable, set_title
from medlib.schema import EVALUATION_SETS, check_predictions
from medlib.stats import Recalibrator, calibration_measures

#: bootstrap replicates of the Brier, ICI and ECE intervals
N_BOOT_CALIBRATION = 200
MEASURES = {"intercept": "Intercept", "slope": "Slope", "brier": "Brier", "ici": "ICI", "ece": "ECE"}


def _groups(rows: pd.DataFrame) -> np.ndarray | None:
    ids = rows["patient_id"].astype(str).to_numpy()
    return ids if len(np.unique(ids)) < len(ids) else None


def _measure_cells(y: np.ndarray, p: np.ndarray, groups: np.ndarray | None, level: float, digits: int,
                   n_boot: int) -> dict[str, str]:
    ci = level_text(level)
    problem = not_estimable(y, "calibration")
    if problem:
        return {f"{title} ({ci})": (problem if key == "intercept" else "—") for key, title in MEASURES.items()}
    m = calibration_measures(y, p, groups=groups, n_boot=n_boot, level=level)
    return {f"{title} ({ci})": fmt_estimate(m[key], digits) for key, title in MEASURES.items()}


def calibration_table(predictions: pd.DataFrame, *, set_name: str, level: float = 0.95, digits: int = 3,
                      n_boot: int = N_BOOT_CALIBRATION) -> pd.DataFrame:
    """Calibration intercept and slope, Brier score, ICI and ECE (with CIs) per model on one set.

    Intercept and slope follow Van Calster et al. (2016) (Wald intervals; patient bootstrap when a patient has
    several cases); Brier, ICI (LOWESS, Austin & Steyerberg 2019) and ECE (10 equal-width bins) carry
    stratified bootstrap percentile intervals (:func:`medlib.stats.calibration_measures`). A set with fewer
    than 5 cases or one class shows why in place of the numbers.

    Columns: ``Model, n, Intercept (95% CI), Slope (95% CI), Brier (95% CI), ICI (95% CI), ECE (95% CI)``.

    Raises:
        ValueError: missing columns, an unknown set, or a model whose scores are not probabilities (named).
    """
    check_predictions(predictions)
    sub = predictions[predictions["set"] == set_name]
    if sub.empty:
        raise ValueError(f"Unknown set {set_name!r}. Available: {sorted(map(str, predictions['set'].unique()))}")
    rows = []
    for model in pd.unique(sub["model"]):
        part = sub[sub["model"] == model]
        y, s = part["y_true"].to_numpy(), part["score"].to_numpy(dtype=np.float64)
        try:
            cells = _measure_cells(y, s, _groups(part), level, digits, n_boot)
        except ValueError as err:
            raise ValueError(f"model {str(model)!r} on set {set_name!r}: {err}") from err
        rows.append({"Model": str(model), "n": len(part), **cells})
    ci = level_text(level)
    return pd.DataFrame(rows, columns=["Model", "n", *(f"{t} ({ci})" for t in MEASURES.values())])


def recalibration_table(predictions: pd.DataFrame, recalibrators: Mapping[str, Recalibrator], *,
                        sets: Sequence[str] = EVALUATION_SETS, level: float = 0.95, digits: int = 3,
                        n_boot: int = N_BOOT_CALIBRATION) -> pd.DataFrame:
    """Calibration before and after the recalibration fitted on validation and frozen, per model and set.

    Columns: ``Model, Set, Risks ("Original" or "Recalibrated (logistic)"), n, Intercept, Slope, Brier, ICI, ECE`` (each with its CI, as
    :func:`calibration_table`). On the validation set the recalibrated rows are in-sample (a tuning set): the
    intercept is 0 and the slope 1 by construction. A model without a recalibration (validation too small or
    one class) has its original rows only; :func:`recalibration_note` says why.
    """
    check_predictions(predictions)
    ci = level_text(level)
    rows = []
    for model, recal in recalibrators.items():
        for set_name in sets:
            part = predictions[(predictions["model"].astype(str) == str(model)) & (predictions["set"] == set_name)]
            if part.empty:
                continue
            y, p = part["y_true"].to_numpy(), part["score"].to_numpy(dtype=np.float64)
            versions = [("Original", p)] + ([(f"Recalibrated ({recal.method})", recal.apply(p))] if recal.fitted
                                            else [])
            for name, risks in versions:
                rows.append({"Model": str(model), "Set": set_title(set_name), "Risks": name, "n": len(part),
                             **_measure_cells(y, risks, _groups(part), level, digits, n_boot)})
    return pd.DataFrame(rows, columns=["Model", "Set", "Risks", "n",
                                       *(f"{t} ({ci})" for t in MEASURES.values())])


def recalibration_note(recalibrators: Mapping[str, Recalibrator]) -> str:
    """One sentence per distinct recalibration: what was fitted, on what, and the rule that chose the method."""
    from medlib.stats import ISOTONIC_RULE

    lines = [f"{m}: {r.describe()}." for m, r in recalibrators.items()]
    return " ".join(lines) + f" Rule: {ISOTONIC_RULE}. Decision curves use the recalibrated risks."
