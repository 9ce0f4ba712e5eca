"""Model comparison: pairwise paired DeLong tests between the models of a predictions table."""

from __future__ import annotations

import itertools
from typing import Any

import pandas as pd

from medlib.stats._validate import select_predictions
from medlib.stats.delong import auc, delong_test
from medlib.stats.multitest import adjust_pvalues


def compare_models(predictions: pd.DataFrame, *, adjust: str | None = "holm",
                   set_name: str | None = None) -> pd.DataFrame:
    """Pairwise paired DeLong tests between all models, per evaluation set.

    For every pair of models in a set, the test runs on the cases both models scored (inner join on
    ``case_id``). p-values are adjusted within each set (the family is that set's pairs) by Holm (1979,
    default), Bonferroni, or not at all. DeLong treats cases as independent; several cases of one patient
    make the p-values somewhat optimistic.

    Args:
        predictions: Long table with columns ``case_id, patient_id, model, set, y_true, score``.
        adjust: ``"holm"``, ``"bonferroni"`` or ``None``.
        set_name: Only compare models on this set (e.g. ``"test"``); default all sets.

    Returns:
        One row per pair: ``set, model_a, model_b, n_cases, auc_a, auc_b, diff, diff_lo, diff_hi, z, p,
        p_adjusted, adjust, method`` (``diff = auc_a - auc_b``, 95% CI).

    Raises:
        ValueError: Missing columns, unknown set, duplicate cases in a model, or labels that disagree
            between models for the same case.

    Example:
        >>> df = pd.DataFrame({"case_id": list(range(6)) * 2, "patient_id": list(range(6)) * 2,
        ...                    "model": ["a"] * 6 + ["b"] * 6, "set": "test", "y_true": [0, 0, 0, 1, 1, 1] * 2,
        ...                    "score": [0.1, 0.5, 0.3, 0.4, 0.8, 0.9, 0.2, 0.1, 0.6, 0.5, 0.7, 0.3]})
        >>> compare_models(df)[["model_a", "model_b", "diff", "p"]].round(4)
          model_a model_b    diff       p
        0       a       b  0.1111  0.7237
    """
    table = select_predictions(predictions, set_name)
    if adjust is not None and adjust not in ("holm", "bonferroni"):
        raise ValueError(f"Unknown adjust method {adjust!r}. Available: ['bonferroni', 'holm'] or None")
    frames = [_compare_in_set(sub, set_label, adjust) for set_label, sub in table.groupby("set", sort=False)]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=_COMPARE_COLUMNS)


_COMPARE_COLUMNS = ["set", "model_a", "model_b", "n_cases", "auc_a", "auc_b", "diff", "diff_lo", "diff_hi",
                    "z", "p", "p_adjusted", "adjust", "method"]


def _wide_pair(sub: pd.DataFrame, model_a: Any, model_b: Any) -> pd.DataFrame:
    """Cases scored by both models, side by side; errors on duplicates or disagreeing labels."""
    parts = []
    for name in (model_a, model_b):
        part = sub.loc[sub["model"] == name, ["case_id", "y_true", "score"]]
        dup = int(part["case_id"].duplicated().sum())
        if dup:
            raise ValueError(f"model {name!r} has {dup} duplicate case_id(s) in one set")
        parts.append(part)
    both = parts[0].merge(parts[1], on="case_id", suffixes=("_a", "_b"))
    differ = int((both["y_true_a"] != both["y_true_b"]).sum())
    if differ:
        raise ValueError(f"y_true differs between models {model_a!r} and {model_b!r} for {differ} case(s)")
    return both


def _compare_in_set(sub: pd.DataFrame, set_label: Any, adjust: str | None) -> pd.DataFrame:
    rows = []
    for model_a, model_b in itertools.combinations(pd.unique(sub["model"]), 2):
        both = _wide_pair(sub, model_a, model_b)
        test = delong_test(both["y_true_a"].to_numpy(), both["score_a"].to_numpy(), both["score_b"].to_numpy())
        aucs = [auc(both["y_true_a"].to_numpy(), both[f"score_{k}"].to_numpy()) for k in "ab"]
        rows.append({"set": set_label, "model_a": model_a, "model_b": model_b, "n_cases": len(both),
                     "auc_a": aucs[0], "auc_b": aucs[1], "diff": test.diff, "diff_lo": test.lo,
                     "diff_hi": test.hi, "z": test.statistic, "p": test.p_value, "method": test.method})
    out = pd.DataFrame(rows, columns=[c for c in _COMPARE_COLUMNS if c not in ("p_adjusted", "adjust")])
    out.insert(out.columns.get_loc("p") + 1, "p_adjusted", adjust_pvalues(out["p"].to_numpy(), adjust))
    out.insert(out.columns.get_loc("p_adjusted") + 1, "adjust", adjust or "none")
    return out
