"""Decision curve analysis: net benefit of a model, of treating all and of treating none.

Net benefit as defined by Vickers & Elkin (2006, *Med Decis Making* 26:565-574) and computed by the R and
Python packages ``dcurves`` (Sjoberg): at threshold probability pt,

    NB_model = TP/n - FP/n * pt / (1 - pt)
    NB_all   = prevalence - (1 - prevalence) * pt / (1 - pt)
    NB_none  = 0

A case counts as test-positive when its predicted probability is **strictly greater** than pt. This is the
convention that reproduces R ``dcurves`` exactly: for a 0/1 predictor at pt = 0, dcurves counts only the 1s
as positive (reference file ``r_case1_results.csv``: famhistory at threshold 0 has NB 0.032 = TP/n, not the
prevalence 0.14).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from medlib.stats._validate import as_1d, check_labels, check_probabilities, check_same_length, select_predictions

DEFAULT_THRESHOLDS = np.round(np.arange(0, 100) / 100, 2)  # 0.00, 0.01, ..., 0.99 as dcurves
DCA_COLUMNS = ["threshold", "net_benefit_model", "net_benefit_all", "net_benefit_none"]


def _check_thresholds(thresholds: Any) -> np.ndarray:
    t = np.array(thresholds, dtype=np.float64, ndmin=1)
    t = as_1d(t, "thresholds")
    bad = int(np.count_nonzero(~np.isfinite(t) | (t < 0) | (t >= 1)))
    if bad:
        raise ValueError(f"thresholds must be probabilities in [0, 1); {bad} value(s) are not "
                         f"(NB divides by 1 - pt); got min {np.nanmin(t):.6g}, max {np.nanmax(t):.6g}")
    return t


def net_benefit(y_true: Any, y_prob: Any, thresholds: Any = DEFAULT_THRESHOLDS) -> pd.DataFrame:
    """Net benefit of a model, of treat-all and of treat-none at each threshold probability.

    Matches R/Python ``dcurves::dca()`` for a binary outcome (Vickers & Elkin 2006); positive means
    ``y_prob > threshold`` (see the module docstring for why).

    Args:
        y_true: Binary outcomes (0/1 or bool).
        y_prob: Predicted probabilities (or a 0/1 test result) in [0, 1].
        thresholds: Threshold probabilities in [0, 1); default 0.00 to 0.99 by 0.01.

    Returns:
        Columns ``threshold, net_benefit_model, net_benefit_all, net_benefit_none`` (the last is 0).

    Raises:
        ValueError: Bad outcomes or probabilities, mismatched lengths, thresholds outside [0, 1).

    Example:
        >>> nb = net_benefit([0, 0, 1, 1, 0], [0.1, 0.3, 0.4, 0.8, 0.6], [0.2, 0.5])
        >>> nb.round(4)
           threshold  net_benefit_model  net_benefit_all  net_benefit_none
        0        0.2                0.3             0.25               0.0
        1        0.5                0.0            -0.20               0.0
    """
    y = check_labels(y_true)
    p = check_probabilities(y_prob)
    check_same_length(y, p, "y_true", "y_prob")
    pt = _check_thresholds(thresholds)
    n = len(y)
    p_sorted, case_sorted = np.sort(p), np.sort(p[y == 1])
    test_pos = n - np.searchsorted(p_sorted, pt, side="right")  # count of p > pt
    tp = len(case_sorted) - np.searchsorted(case_sorted, pt, side="right")
    odds = pt / (1 - pt)
    prevalence = y.mean()
    return pd.DataFrame({
        "threshold": pt,
        "net_benefit_model": tp / n - (test_pos - tp) / n * odds,
        "net_benefit_all": prevalence - (1 - prevalence) * odds,
        "net_benefit_none": np.zeros(len(pt)),
    })


def decision_curve(predictions: pd.DataFrame, thresholds: Any = DEFAULT_THRESHOLDS, *,
                   set_name: str | None = None) -> pd.DataFrame:
    """Net benefit curves of several models from the long predictions table (one set or each set).

    Each model's curve uses the cases that model scored. Treat-all depends on the outcomes only, so it is
    computed once per set from **all** cases of the set (each ``case_id`` once), whichever model scored them.

    Args:
        predictions: Long table with columns ``case_id, patient_id, model, set, y_true, score`` where score
            is a predicted probability.
        thresholds: Threshold probabilities in [0, 1); default 0.00 to 0.99 by 0.01.
        set_name: Only this set (e.g. ``"test"``); default every set.

    Returns:
        Columns ``set, model, n, threshold, net_benefit_model, net_benefit_all, net_benefit_none``.

    Raises:
        ValueError: Missing columns, unknown set, or bad outcomes / probabilities / thresholds.

    Example:
        >>> df = pd.DataFrame({"case_id": range(4), "patient_id": range(4), "model": "m", "set": "test",
        ...                    "y_true": [0, 1, 0, 1], "score": [0.1, 0.7, 0.4, 0.9]})
        >>> decision_curve(df, [0.5])[["model", "threshold", "net_benefit_model"]]
          model  threshold  net_benefit_model
        0     m        0.5                0.5
    """
    table = select_predictions(predictions, set_name)
    pt = _check_thresholds(thresholds)
    frames = []
    treat_all = {name: treat_all_net_benefit(part, pt) for name, part in table.groupby("set", sort=False)}
    for (set_label, model), sub in table.groupby(["set", "model"], sort=False):
        frame = net_benefit(sub["y_true"].to_numpy(), sub["score"].to_numpy(), pt)
        frame["net_benefit_all"] = treat_all[set_label]
        frame.insert(0, "n", len(sub))
        frame.insert(0, "model", model)
        frame.insert(0, "set", set_label)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def treat_all_net_benefit(set_rows: pd.DataFrame, thresholds: Any = DEFAULT_THRESHOLDS) -> np.ndarray:
    """Net benefit of treating all, from every case of one set's predictions (each ``case_id`` counted once).

    Raises:
        ValueError: a case with different outcomes in different rows.
    """
    pt = _check_thresholds(thresholds)
    per_case = set_rows.groupby("case_id")["y_true"].agg(["min", "max"])
    clash = per_case.index[per_case["min"] != per_case["max"]].tolist()
    if clash:
        raise ValueError(f"case(s) {clash[:5]} have different outcomes in different rows of the same set")
    prevalence = float(per_case["max"].mean())
    return prevalence - (1 - prevalence) * pt / (1 - pt)


def net_benefit_band(y_true: Any, y_prob: Any, thresholds: Any = DEFAULT_THRESHOLDS, *, groups: Any | None = None,
                     n_boot: int = 500, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Net benefit of a model with a stratified bootstrap percentile band (patients resampled when given).

    Each replicate's net benefit is :func:`net_benefit` on the resampled cases, computed from resampling
    weights (:func:`medlib.stats.bootstrap.resample_weights`) for all replicates at once.

    Returns:
        Columns ``threshold, net_benefit_model, lo, hi``.
    """
    from medlib.stats._validate import check_level
    from medlib.stats.bootstrap import resample_weights

    y = check_labels(y_true)
    p = check_probabilities(y_prob)
    check_same_length(y, p, "y_true", "y_prob")
    pt = _check_thresholds(thresholds)
    level = check_level(level)
    point = net_benefit(y, p, pt)["net_benefit_model"].to_numpy()
    w = resample_weights(y, groups=groups, n_boot=n_boot, seed=seed).astype(np.float64)
    above = p[:, None] > pt[None, :]  # n x thresholds, dcurves' "p > pt"
    n = w.sum(axis=1, keepdims=True)
    tp = (w * y) @ above
    fp = (w * (1 - y)) @ above
    reps = tp / n - fp / n * (pt / (1 - pt))[None, :]
    lo, hi = np.quantile(reps, [0.5 - level / 2, 0.5 + level / 2], axis=0)
    return pd.DataFrame({"threshold": pt, "net_benefit_model": point, "lo": lo, "hi": hi})
