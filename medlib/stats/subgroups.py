"""Subgroup (fairness) analysis: discrimination, operating point and calibration per level of a covariate, and a
test of whether the score's association with the outcome differs between levels.

Per level (sex, age band, vendor, site, ...): the AUC with its DeLong interval, sensitivity and specificity at the
threshold frozen on validation data (Wilson intervals), and calibration as observed/expected events (O/E, interval
from se(ln O/E) = sqrt((1 - p) / (n p)) as in Riley et al. 2021 / ``pmvalsampsize``) and the calibration slope
(:func:`medlib.stats.calibration`). A level with fewer than ``min_events`` cases of either outcome is **not
estimated**: its row says so, with its counts, and it leaves the heterogeneity test (an AUC from three events is
noise, and a subgroup with one class has no AUC at all).

fairlearn's ``MetricFrame`` does the per-group bookkeeping (grouping, one call per level); the statistics are
medlib's, so every interval is the one the main tables use.

Heterogeneity: a likelihood-ratio test of the interaction in ``logit P(y) = a_g + b_g * logit(score)`` against
``a_g + b * logit(score)`` (one slope shared by all levels), df = levels - 1, fitted with statsmodels' binomial
GLM. A small p-value means the score ranks or scales risk differently between levels.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from medlib.stats._validate import check_binary_scores, check_level
from medlib.stats.calibration import calibration, logit
from medlib.stats.metrics import binary_metrics
from medlib.stats.results import Estimate
from medlib.stats.roc import auc_ci

MISSING = "missing"
#: a numeric covariate with more distinct values than this is cut into bands
MAX_LEVELS = 5
N_BANDS = 3
OE_METHOD = "O/E, interval from se(ln O/E) = sqrt((1 - p)/(n p)) (Riley et al. 2021)"
HETEROGENEITY_METHOD = ("likelihood-ratio test of the score x subgroup interaction in a logistic model of the "
                        "outcome on logit(score) and the subgroup")
SUBGROUP_METRICS = ("auc", "sensitivity", "specificity", "oe", "slope")


def banding_rule(values: pd.Series, name: str) -> tuple[pd.Series, str]:
    """The levels of one covariate as text, and the rule that made them, in words.

    Categorical columns (and numeric ones with at most 5 distinct values) keep their values. A numeric column
    with more is cut at its tertiles (``pandas.qcut``, three bands of about equal size); pass the whole cohort so
    every set gets the same bands. Missing values form their own level ``"missing"``.

    Returns:
        ``(levels, rule)``: one label per row (e.g. ``"≤ 45"``, ``"> 45 to 60"``, ``"> 60"``: a value on a cut
        falls in the lower band) and one sentence; :func:`level_order` sorts the labels in band order.
    """
    numeric = pd.to_numeric(values, errors="coerce")
    is_numeric = numeric.notna().sum() == values.notna().sum() and values.notna().any()
    if not is_numeric or numeric.nunique() <= MAX_LEVELS:
        labels = values.astype(object).where(values.notna(), MISSING).map(_level_text)
        return labels, f"{name}: its recorded values"
    # tertiles rounded to 3 significant digits, so that the labels state the cuts exactly
    edges = np.unique([float(f"{q:.3g}") for q in np.quantile(numeric.dropna(), np.linspace(0, 1, N_BANDS + 1))])
    inner = edges[1:-1]
    labels = pd.Series(MISSING, index=values.index, dtype=object)
    bins = np.searchsorted(inner, numeric, side="left")  # value == edge goes to the lower band
    for k in range(len(inner) + 1):
        if not len(inner):
            text = name
        elif k == 0:
            text = f"≤ {inner[0]:g}"
        elif k == len(inner):
            text = f"> {inner[-1]:g}"
        else:
            text = f"> {inner[k - 1]:g} to {inner[k]:g}"
        labels[(bins == k) & numeric.notna().to_numpy()] = text
    cuts = ", ".join(f"{v:g}" for v in inner)
    return labels, f"{name}: cut at its tertiles in the cohort ({cuts})"


def level_order(level: str) -> tuple:
    """Sort key of a level label from :func:`banding_rule`: numeric bands from the lowest, then recorded values
    in alphabetical order, then ``"missing"``."""
    import re

    for rank, pattern in ((0, r"≤ (\S+)"), (1, r"> (\S+) to \S+"), (2, r"> (\S+)")):
        match = re.fullmatch(pattern, level)
        if match:
            try:
                return (rank, float(match.group(1)), "")
            except ValueError:
                break
    return (4, 0.0, "") if level == MISSING else (3, 0.0, level)


def _level_text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


@dataclass(frozen=True)
class SubgroupResult:
    """One level of one covariate.

    Attributes:
        covariate, level: which subgroup.
        n, events: cases and positive cases in it.
        estimable: whether it had ``min_events`` cases of each outcome.
        note: why it was not estimated ("" when it was).
        values: metric → :class:`~medlib.stats.Estimate` (``auc``, ``sensitivity``, ``specificity``, ``oe``,
            ``slope``); empty when not estimable.
    """

    covariate: str
    level: str
    n: int
    events: int
    estimable: bool
    note: str
    values: dict[str, Estimate]


@dataclass(frozen=True)
class Heterogeneity:
    """The test of a score x subgroup interaction for one covariate (NaN with a note when it cannot be made)."""

    covariate: str
    statistic: float
    df: int
    p_value: float
    levels: tuple[str, ...]
    note: str
    method: str = HETEROGENEITY_METHOD


def _level_metrics(y: np.ndarray, s: np.ndarray, threshold: float, level: float,
                   min_events: int) -> dict[str, Any]:
    events, n = int(y.sum()), len(y)
    if min(events, n - events) < min_events:
        return {"n": n, "events": events, "estimable": False,
                "note": f"not estimable: {events} with the outcome and {n - events} without; at least "
                        f"{min_events} of each are needed", "values": {}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small groups warn about separation; NaN says it in the table
        bm = binary_metrics(y, s, threshold, level=level, n_boot=1)
        cal = calibration(y, np.clip(s, 0, 1), level=level, n_bins=1)
    values = {"auc": auc_ci(y, s, level=level), "sensitivity": bm.sensitivity, "specificity": bm.specificity,
              "oe": _oe(y, s, level), "slope": Estimate(cal.slope, *cal.slope_ci, "logistic recalibration slope")}
    return {"n": n, "events": events, "estimable": True, "note": "", "values": values}


def _oe(y: np.ndarray, p: np.ndarray, level: float) -> Estimate:
    observed, expected = float(y.sum()), float(np.clip(p, 0, 1).sum())
    if expected <= 0 or observed <= 0:
        return Estimate(math.nan, math.nan, math.nan, OE_METHOD)
    phi = observed / len(y)
    se = math.sqrt((1 - phi) / (len(y) * phi))
    z = float(sps.norm.ppf(0.5 + level / 2))
    oe = observed / expected
    return Estimate(oe, oe * math.exp(-z * se), oe * math.exp(z * se), OE_METHOD)


def subgroup_metrics(y_true: Any, y_score: Any, groups: pd.DataFrame, threshold: float, *, level: float = 0.95,
                     min_events: int = 5) -> list[SubgroupResult]:
    """Per-level AUC, sensitivity, specificity, O/E and calibration slope for each column of ``groups``.

    Args:
        y_true: Binary outcomes, one per case.
        y_score: Predicted probabilities of the positive class.
        groups: One column per covariate, levels as text (see :func:`banding_rule`), aligned with the cases.
        threshold: The operating threshold frozen on validation data.
        level: Confidence level.
        min_events: Fewest cases of each outcome a level needs to be estimated.

    Returns:
        One :class:`SubgroupResult` per covariate and level, levels in sorted order; never raises for a level
        with one class (it is "not estimable").

    Raises:
        ValueError: Bad labels or scores, or ``groups`` not one row per case.
    """
    from fairlearn.metrics import MetricFrame

    y, s = check_binary_scores(y_true, y_score)
    level = check_level(level)
    if len(groups) != len(y):
        raise ValueError(f"groups must have one row per case; got {len(groups)} rows for {len(y)} cases")
    out = []
    for column in groups.columns:
        feature = groups[column].fillna(MISSING).astype(str).to_numpy()
        frame = MetricFrame(metrics={"r": lambda yt, ys: _level_metrics(np.asarray(yt), np.asarray(ys), threshold,
                                                                         level, min_events)},
                            y_true=y, y_pred=s, sensitive_features={str(column): feature})
        for lvl, rec in frame.by_group["r"].items():
            out.append(SubgroupResult(covariate=str(column), level=str(lvl), **rec))
    return out


def subgroup_frame(results: Sequence[SubgroupResult]) -> pd.DataFrame:
    """Long table: ``covariate, level, n, events, estimable, note, metric, value, lo, hi, method``."""
    rows = []
    for r in results:
        base = {"covariate": r.covariate, "level": r.level, "n": r.n, "events": r.events, "estimable": r.estimable,
                "note": r.note}
        if not r.estimable:
            rows.append({**base, "metric": None, "value": math.nan, "lo": math.nan, "hi": math.nan, "method": ""})
        for metric, est in r.values.items():
            rows.append({**base, "metric": metric, "value": est.value, "lo": est.lo, "hi": est.hi,
                         "method": est.method})
    return pd.DataFrame(rows, columns=["covariate", "level", "n", "events", "estimable", "note", "metric", "value",
                                       "lo", "hi", "method"])


def heterogeneity_test(y_true: Any, y_score: Any, groups: Any, *, covariate: str = "subgroup",
                       keep: Sequence[str] | None = None) -> Heterogeneity:
    """Likelihood-ratio test of a score x subgroup interaction (see the module docstring).

    Args:
        y_true: Binary outcomes.
        y_score: Probabilities (their logit, clipped at 1e-12, is the predictor).
        groups: Level of each case.
        covariate: Name for the result.
        keep: Levels to test (the estimable ones); cases of other levels are left out. ``None``: all.

    Returns:
        :class:`Heterogeneity`; NaN with a note when fewer than two levels remain or a model does not converge.
    """
    from statsmodels.genmod.families import Binomial
    from statsmodels.genmod.generalized_linear_model import GLM
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

    y, s = check_binary_scores(y_true, y_score)
    g = pd.Series(np.asarray(groups, dtype=object)).fillna(MISSING).astype(str)
    mask = g.isin(list(keep)).to_numpy() if keep is not None else np.ones(len(g), bool)
    levels = tuple(sorted(g[mask].unique()))
    if len(levels) < 2:
        return Heterogeneity(covariate, math.nan, 0, math.nan, levels,
                             "not tested: fewer than two estimable levels")
    lp = logit(np.clip(s[mask], 0, 1))
    dummies = pd.get_dummies(pd.Categorical(g[mask], categories=levels), drop_first=True).to_numpy(float)
    reduced = np.column_stack([np.ones(mask.sum()), lp, dummies])
    full = np.column_stack([reduced, dummies * lp[:, None]])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            warnings.simplefilter("error", PerfectSeparationWarning)
            ll = [GLM(y[mask].astype(float), x, family=Binomial()).fit().llf for x in (reduced, full)]
    except (ConvergenceWarning, PerfectSeparationWarning, np.linalg.LinAlgError) as err:
        return Heterogeneity(covariate, math.nan, len(levels) - 1, math.nan, levels,
                             f"not tested: the logistic model did not converge ({type(err).__name__})")
    lr = max(0.0, 2 * (ll[1] - ll[0]))
    df = len(levels) - 1
    return Heterogeneity(covariate, lr, df, float(sps.chi2.sf(lr, df)), levels, "")


def check_subgroup_columns(available: Sequence[str], requested: Sequence[str], source: str) -> None:
    """Refuse, before any work, subgroup covariates (``analysis.subgroups``) that the manifest does not have.

    Raises:
        ValueError: naming the missing column(s), the manifest and the columns it has.
    """
    missing = [c for c in requested if c not in set(available)]
    if missing:
        raise ValueError(f"{source}: analysis.subgroups names column(s) {missing} that the manifest does not have; "
                         f"its columns: {list(available)}")
