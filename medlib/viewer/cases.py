"""Cases and outcomes: TP/FP/TN/FN at a model's frozen threshold, filtering the case table, and the HTML panel
beside the image.

Nothing identifying is shown: a case is named by ``case_id`` and the manifest's pseudonymous ``patient_id``, with
the covariates the config names and an allow-list of the reader's technical metadata (:data:`DISPLAY_META`).
Image paths are never shown (a hospital's folder names can carry names). Every text is HTML-escaped.
"""

from __future__ import annotations

import html
import warnings
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from medlib.viewer.run import RunThreshold

__all__ = ["OUTCOMES", "DISPLAY_META", "outcome_of", "with_outcomes", "filter_cases", "case_info_html"]

OUTCOMES = ("TP", "FP", "TN", "FN")
#: Reader metadata shown beside the image (the readers already allow-list; this is a second gate).
DISPLAY_META = ("modality", "manufacturer", "manufacturermodelname", "bodypartexamined", "viewposition",
                "photometricinterpretation", "bitsstored", "kvp", "slicethickness", "window_used", "format",
                "orientation", "datatype")


def outcome_of(y_true: Any, score: Any, threshold: float) -> np.ndarray:
    """TP / FP / TN / FN per case at ``threshold`` (scores >= threshold are called positive).

    A NaN threshold (undefined, e.g. one class in the validation set) warns and gives ``""`` for every case.

    Example:
        >>> outcome_of([1, 0, 0, 1], [0.9, 0.8, 0.1, 0.2], 0.5).tolist()
        ['TP', 'FP', 'TN', 'FN']
    """
    y = np.asarray(y_true).astype(int).astype(bool)
    s = np.asarray(score, dtype=np.float64)
    if y.shape != s.shape:
        raise ValueError(f"y_true and score must have the same shape; got {y.shape} and {s.shape}")
    if threshold is None or np.isnan(threshold):
        warnings.warn("threshold is undefined (NaN): no TP/FP/TN/FN outcome", RuntimeWarning, stacklevel=2)
        return np.full(y.shape, "", dtype=object)
    pred = s >= float(threshold)
    return np.select([y & pred, ~y & pred, ~y & ~pred], ["TP", "FP", "TN"], "FN").astype(object)


def _threshold_value(thresholds: Mapping[str, Any] | None, model: str) -> float:
    if not thresholds or model not in thresholds:
        raise KeyError(f"no threshold for model {model!r}. Available: {sorted(thresholds or {})}")
    t = thresholds[model]
    return float(getattr(t, "value", t))


def with_outcomes(table: pd.DataFrame, predictions: pd.DataFrame, thresholds: Mapping[str, Any],
                  model: str) -> pd.DataFrame:
    """``table`` plus ``score``, ``threshold`` and ``outcome`` (TP/FP/TN/FN; ``""`` if unscored) of one model.

    Raises:
        KeyError: a model the predictions do not hold, or one without a threshold.
        ValueError: the model scores a case twice.
    """
    rows = predictions[predictions["model"].astype(str) == str(model)]
    if rows.empty:
        raise KeyError(f"Unknown model {model!r}. Available: {sorted(predictions['model'].astype(str).unique())}")
    if rows["case_id"].duplicated().any():
        raise ValueError(f"model {model!r} has more than one prediction for case(s) "
                         f"{sorted(rows.loc[rows['case_id'].duplicated(), 'case_id'])[:3]}")
    value = _threshold_value(thresholds, str(model))
    out = table.drop(columns=[c for c in ("score", "threshold", "outcome") if c in table], errors="ignore")
    out = out.merge(rows[["case_id", "score", "y_true"]], on="case_id", how="left")
    scored = out["score"].notna().to_numpy()
    outcome = np.full(len(out), "", dtype=object)
    if scored.any():
        outcome[scored] = outcome_of(out.loc[scored, "y_true"], out.loc[scored, "score"], value)
    out["outcome"], out["threshold"] = outcome, value
    return out.drop(columns=["y_true"])


def filter_cases(table: pd.DataFrame, label: int | None = None, set_name: str | None = None,
                 outcome: str | None = None, predictions: pd.DataFrame | None = None,
                 thresholds: Mapping[str, Any] | None = None, model: str | None = None) -> pd.DataFrame:
    """The cases matching every filter given, in table order (the input is not modified).

    Args:
        table: cases with ``case_id``, ``y`` (1 = positive class) and ``set``.
        label: keep ``y == label`` (0 or 1).
        set_name: keep one set (train, val, test, external or internal).
        outcome: keep TP, FP, TN or FN of ``model`` at its threshold (needs predictions and thresholds).
        predictions: the run's Predictions table.
        thresholds: model -> threshold (a number or an object with ``.value``).
        model: with predictions, adds that model's ``score``, ``threshold`` and ``outcome`` columns.

    Raises:
        ValueError: a label other than 0/1, an unknown outcome, or an outcome filter without predictions/model.
        KeyError: see :func:`with_outcomes`.
    """
    out = table.copy()
    if label is not None:
        if label not in (0, 1) or isinstance(label, bool):
            raise ValueError(f"label must be 0 (negative class), 1 (positive class) or None; got {label!r}")
        out = out[out["y"] == int(label)]
    if set_name is not None:
        out = out[out["set"] == set_name]
    if outcome is not None and outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {list(OUTCOMES)} or None; got {outcome!r}")
    if outcome is not None and (predictions is None or model is None):
        raise ValueError("an outcome filter needs the run's predictions and a model")
    if predictions is not None and model is not None:
        out = with_outcomes(out, predictions, thresholds or {}, model)
    if outcome is not None:
        out = out[out["outcome"] == outcome]
    return out.reset_index(drop=True)


def _meta_rows(image: Any) -> list[tuple[str, str]]:
    rows = [("shape", "×".join(map(str, image.array.shape))),
            ("spacing (mm)", "×".join(f"{s:.3g}" for s in image.spacing))]
    rows += [(k, str(image.meta[k])) for k in DISPLAY_META if k in image.meta]
    return rows


def _esc(value: Any) -> str:
    """HTML-escape text shown in a widget (text content only, never an attribute)."""
    return html.escape(str(value), quote=False)


def _html_table(rows: Sequence[tuple[str, Any]], title: str) -> str:
    body = "".join(f"<tr><td style='padding-right:8px'><b>{_esc(k)}</b></td>"
                   f"<td>{_esc(v)}</td></tr>" for k, v in rows)
    return f"<div><b>{_esc(title)}</b><table style='font-size:12px'>{body}</table></div>"


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def case_info_html(row: Mapping[str, Any], covariates: Sequence[str], *, label_column: str,
                   images: Mapping[str, Any] | None = None, model: str | None = None,
                   threshold: RunThreshold | None = None) -> str:
    """The panel beside the image: case, pseudonymous patient code, label, set, covariates, the model's score
    and threshold, and each image's technical metadata (allow-listed). Everything is HTML-escaped."""
    case = [("case", row["case_id"]), ("patient (code)", row["patient_id"]), ("label", row[label_column]),
            ("set", row["set"])]
    parts = [_html_table(case, "Case"), _html_table([(c, _fmt(row.get(c))) for c in covariates], "Covariates")]
    if model is not None and threshold is not None:
        pred = [("model", model), ("score", _fmt(row.get("score"))), ("threshold", _fmt(threshold.value)),
                ("outcome", row.get("outcome") or "–"), ("threshold source", threshold.source)]
        parts.append(_html_table(pred, "Prediction"))
    for column, image in (images or {}).items():
        parts.append(_html_table(_meta_rows(image), f"Image: {column}"))
    return "".join(parts)
