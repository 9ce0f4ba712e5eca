"""ROC analysis: AUC, DeLong variance, CIs and tests (matching pROC), stratified bootstrap.

Conventions used throughout:

* Labels are 0/1 (or bool); 1 is a case (positive). A **higher score means more likely positive**, i.e. pROC's
  ``direction = "<"`` (controls < cases). The direction is never flipped automatically (pROC's automatic
  direction choice inflates AUCs of uninformative markers), so an AUC below 0.5 is reported as such.
* Ties between a case and a control count 1/2 (the Mann-Whitney kernel), which is what pROC computes.
* The DeLong variance uses the fast midrank algorithm of Sun & Xu (2014), ``O(n log n)``.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from medlib.stats._validate import (
    UndefinedMetricWarning,
    as_1d,
    both_classes,
    check_binary_scores,
    check_level,
)
from medlib.stats.multitest import adjust_pvalues
from medlib.stats.results import Estimate, PairedTest
from medlib.schema import check_predictions

DELONG_METHOD = "DeLong (Sun & Xu 2014)"
PAIRED_METHOD = "DeLong's test for two correlated ROC curves (paired; pROC roc.test)"
UNPAIRED_METHOD = "DeLong's test for two unpaired ROC curves (t, Welch-Satterthwaite df; pROC roc.test)"
_CHUNK_ELEMENTS = 2_000_000  # bootstrap replicates are processed in blocks of about this many weights


# ----------------------------------------------------------------------------------------------- AUC, ROC


def auc(y_true: Any, y_score: Any) -> float:
    """Area under the ROC curve (Mann-Whitney estimate, ties count 1/2).

    Equals pROC's ``auc(roc(y, score, direction = "<"))`` and scikit-learn's ``roc_auc_score``.

    Args:
        y_true: Binary labels (0/1 or bool), 1 = case.
        y_score: Finite scores; higher means more likely a case.

    Returns:
        The AUC, or NaN with an ``UndefinedMetricWarning`` when only one class is present.

    Raises:
        ValueError: Non-binary labels, non-finite scores or mismatched lengths.

    Example:
        >>> auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        0.75
    """
    y, s = check_binary_scores(y_true, y_score)
    if not both_classes(y, "AUC"):
        return math.nan
    v10, _ = _placements(y, s[None, :])
    return float(v10.mean())


def roc_curve(y_true: Any, y_score: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empirical ROC curve: one point per distinct score, a case is called positive when score >= threshold.

    Like scikit-learn's ``roc_curve(drop_intermediate=False)``: the first point is (0, 0) at threshold
    ``+inf``; thresholds then decrease through the distinct scores, ending at (1, 1).

    Args:
        y_true: Binary labels (0/1 or bool), 1 = case.
        y_score: Finite scores; higher means more likely a case.

    Returns:
        ``(fpr, tpr, thresholds)``. With one class present the undefined rate is NaN
        (``UndefinedMetricWarning``).

    Raises:
        ValueError: Non-binary labels, non-finite scores or mismatched lengths.

    Example:
        >>> fpr, tpr, thr = roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        >>> tpr.tolist(), fpr.tolist()
        ([0.0, 0.5, 0.5, 1.0, 1.0], [0.0, 0.0, 0.5, 0.5, 1.0])
    """
    y, s = check_binary_scores(y_true, y_score)
    both_classes(y, "ROC curve")
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), len(s) - 1]
    tps = np.r_[0, np.cumsum(y_sorted, dtype=np.int64)[last]]
    fps = np.r_[0, last + 1] - tps
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr, fpr = tps / tps[-1], fps / fps[-1]
    return fpr, tpr, np.r_[np.inf, s_sorted[last]]


# ------------------------------------------------------------------------------------------------ DeLong


def _placements(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sun & Xu (2014) structural components (placement values) from midranks.

    Args:
        y: 0/1 labels, length N.
        scores: ``k x N`` matrix of scores (k curves on the same cases).

    Returns:
        ``(v10, v01)``: ``k x m`` placement values of the cases (fraction of controls below, ties 1/2) and
        ``k x n`` of the controls (fraction of cases above, ties 1/2), cases in input order so that rows of
        different curves pair up. ``v10.mean(1)`` is the AUC.
    """
    pos = y == 1
    rows = [_placement_row(y, row) for row in scores]
    return np.vstack([r[pos] for r in rows]), np.vstack([r[~pos] for r in rows])


def _placement_row(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Placement value of every case and control of one curve, from a single sort.

    Sun & Xu's midrank difference T_Z - T_X of a case (midrank among all minus midrank among cases) equals
    the number of controls below it plus half the controls tied with it; likewise for controls. Both come
    from per-tie-group counts of one sort, so the three midrank sorts of the paper are not needed.
    """
    order = np.argsort(s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    group = np.cumsum(np.r_[True, s_sorted[1:] != s_sorted[:-1]]) - 1
    cases_in = np.bincount(group, weights=y_sorted).astype(np.float64)
    controls_in = np.bincount(group).astype(np.float64) - cases_in
    m, n = cases_in.sum(), controls_in.sum()
    controls_below = (np.cumsum(controls_in) - controls_in + 0.5 * controls_in) / n  # for a case
    cases_above = 1.0 - (np.cumsum(cases_in) - cases_in + 0.5 * cases_in) / m  # for a control
    value_sorted = np.where(y_sorted == 1, controls_below[group], cases_above[group])
    out = np.empty(len(s))
    out[order] = value_sorted
    return out


def _delong(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs (length k) and their DeLong covariance matrix (``k x k``) for ``k x N`` scores."""
    v10, v01 = _placements(y, scores)
    m, n = v10.shape[1], v01.shape[1]
    if m < 2 or n < 2:
        warnings.warn(f"the DeLong variance needs at least 2 cases and 2 controls; got {m} and {n}; "
                      "returning NaN", UndefinedMetricWarning, stacklevel=3)
        return v10.mean(axis=1), np.full((len(scores), len(scores)), np.nan)
    s10 = np.atleast_2d(np.cov(v10))  # denominator m - 1, as pROC
    s01 = np.atleast_2d(np.cov(v01))
    return v10.mean(axis=1), s10 / m + s01 / n


def _stack_scores(y_true: Any, scores: Sequence[Any] | np.ndarray,
                  names: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validate labels and several score vectors on the same cases; return ``(y, k x N matrix)``."""
    if isinstance(scores, (list, tuple)) and not (scores and np.ndim(scores[0]) == 0):
        rows = list(scores)
    elif np.ndim(scores) == 2:
        rows = list(np.asarray(scores))
    else:
        raise ValueError("scores must be a list of score vectors or a k x N array; "
                         f"got shape {np.shape(scores)}")
    if not rows:
        raise ValueError("at least one score vector is needed; got none")
    names = names or [f"scores[{i}]" for i in range(len(rows))]
    checked = [check_binary_scores(y_true, r, score_name=name) for r, name in zip(rows, names)]
    return checked[0][0], np.vstack([s for _, s in checked])


def delong_var(y_true: Any, y_score: Any) -> float:
    """DeLong variance of the AUC (DeLong et al. 1988) by the fast algorithm of Sun & Xu (2014).

    Equals pROC's ``var(roc, method = "delong")`` (denominators m - 1 and n - 1).

    Args:
        y_true: Binary labels (0/1 or bool), 1 = case.
        y_score: Finite scores; higher means more likely a case.

    Returns:
        The variance; NaN with an ``UndefinedMetricWarning`` with fewer than 2 cases or 2 controls.

    Raises:
        ValueError: Non-binary labels, non-finite scores or mismatched lengths.

    Example:
        >>> round(delong_var([0, 0, 0, 1, 1, 1], [0.1, 0.5, 0.3, 0.4, 0.8, 0.9]), 6)
        0.024691
    """
    return float(delong_cov(y_true, [y_score])[0, 0])


def delong_cov(y_true: Any, scores: Sequence[Any] | np.ndarray) -> np.ndarray:
    """DeLong covariance matrix of the AUCs of several scores on the same cases (Sun & Xu 2014).

    Equals pROC's ``cov(roc1, roc2, method = "delong")`` off the diagonal and ``var`` on it.

    Args:
        y_true: Binary labels (0/1 or bool), 1 = case.
        scores: k score vectors (a list, or a ``k x N`` array), each with one score per case.

    Returns:
        ``k x k`` covariance matrix; NaN (with a warning) when fewer than 2 cases or 2 controls, or when
        only one class is present.

    Raises:
        ValueError: Non-binary labels, non-finite scores or mismatched lengths.

    Example:
        >>> y = [0, 0, 0, 1, 1, 1]
        >>> delong_cov(y, [[0.1, 0.5, 0.3, 0.4, 0.8, 0.9], [0.2, 0.1, 0.6, 0.5, 0.7, 0.3]]).round(5)
        array([[ 0.02469, -0.00617],
               [-0.00617,  0.06173]])
    """
    y, mat = _stack_scores(y_true, scores)
    if not both_classes(y, "The DeLong covariance"):
        return np.full((len(mat), len(mat)), np.nan)
    return _delong(y, mat)[1]


def _normal_ci(value: float, var: float, level: float, lo: float, hi: float) -> tuple[float, float]:
    """Wald interval ``value +- z * sqrt(var)`` clipped to ``[lo, hi]``; NaN limits for a NaN variance."""
    if math.isnan(var):
        return math.nan, math.nan
    half = stats.norm.ppf(0.5 + level / 2) * math.sqrt(var)
    return float(max(lo, value - half)), float(min(hi, value + half))


# -------------------------------------------------------------------------------------------- Bootstrap


@dataclass(frozen=True)
class _BootDesign:
    """Precomputed layout for the weighted-AUC bootstrap (see :func:`bootstrap_auc`)."""

    n_units: int
    strata: tuple[np.ndarray, ...]  # unit indices of each stratum
    pos_units: np.ndarray | slice  # unit of each case
    neg_units: np.ndarray | slice  # unit of each control, controls in ascending score order
    lo: np.ndarray  # per case: number of controls with a lower score
    hi: np.ndarray  # per case: number of controls with a lower or equal score


def _boot_design(y: np.ndarray, s: np.ndarray, groups: Any | None) -> _BootDesign:
    """Units are cases (stratified by label) or patients (stratified by 'has any positive case')."""
    pos_idx = np.flatnonzero(y == 1)
    neg_idx = np.flatnonzero(y == 0)
    neg_sorted = neg_idx[np.argsort(s[neg_idx], kind="mergesort")]
    zs = s[neg_sorted]
    lo = np.searchsorted(zs, s[pos_idx], side="left")
    hi = np.searchsorted(zs, s[pos_idx], side="right")
    m, n = len(pos_idx), len(neg_idx)
    if groups is None:
        strata = (np.arange(m), np.arange(m, m + n))
        return _BootDesign(m + n, strata, slice(0, m), slice(m, m + n), lo, hi)
    codes = _group_codes(groups, len(y))
    n_units = int(codes.max()) + 1
    has_pos = np.zeros(n_units, dtype=bool)
    has_pos[codes[pos_idx]] = True
    strata = tuple(u for u in (np.flatnonzero(has_pos), np.flatnonzero(~has_pos)) if len(u))
    return _BootDesign(n_units, strata, codes[pos_idx], codes[neg_sorted], lo, hi)


def _group_codes(groups: Any, n: int) -> np.ndarray:
    """Integer codes 0..G-1 for the patient of each case; errors on length mismatch or missing ids."""
    g = as_1d(groups, "groups")
    if len(g) != n:
        raise ValueError(f"groups must have one patient id per case; got {len(g)} ids for {n} cases")
    codes, _ = pd.factorize(g, use_na_sentinel=True)
    missing = int(np.count_nonzero(codes < 0))
    if missing:
        raise ValueError(f"groups has {missing} missing patient id(s)")
    return codes


def _resample_counts(rng: np.random.Generator, k: int, b: int) -> np.ndarray:
    """``b x k`` counts: how often each of k units is drawn when k are drawn with replacement, b times."""
    idx = rng.integers(0, k, size=(b, k))
    idx += (np.arange(b) * k)[:, None]
    return np.bincount(idx.ravel(), minlength=b * k).reshape(b, k)


def _weighted_aucs(design: _BootDesign, counts: np.ndarray) -> np.ndarray:
    """AUC of each replicate (row of unit counts) without sorting: cumulative control weights by score."""
    wp = counts[:, design.pos_units].astype(np.float64)
    wn = counts[:, design.neg_units]
    cum = np.zeros((len(counts), wn.shape[1] + 1))
    np.cumsum(wn, axis=1, out=cum[:, 1:])
    below = cum[:, design.lo] + cum[:, design.hi]  # 2 * (controls below) + (controls tied)
    num = 0.5 * np.einsum("ij,ij->i", wp, below)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / (wp.sum(axis=1) * cum[:, -1])


def bootstrap_auc(y_true: Any, y_score: Any, *, n_boot: int = 2000, groups: Any | None = None,
                  seed: int = 0) -> np.ndarray:
    """AUCs of stratified bootstrap replicates, computed for all replicates at once (no loop per replicate).

    Cases are resampled with replacement within each class (as pROC's ``boot.stratified = TRUE``). With
    ``groups`` (patient ids) whole patients are resampled instead, stratified by whether the patient has any
    positive case, so all of a patient's cases enter a replicate together. Each replicate's AUC is the
    Mann-Whitney statistic with resampling counts as weights, from cumulative control counts in score order:
    ``O(n_boot * n)`` after one sort.

    Args:
        y_true: Binary labels (0/1 or bool), 1 = case.
        y_score: Finite scores; higher means more likely a case.
        n_boot: Number of replicates.
        groups: Optional patient id per case.
        seed: Seed of the NumPy generator; the same seed and data give the same replicates.

    Returns:
        Array of ``n_boot`` AUCs (NaN for a patient-level replicate that drew no case or no control); all
        NaN with an ``UndefinedMetricWarning`` when only one class is present.

    Raises:
        ValueError: Bad labels, scores, groups or ``n_boot < 1``.

    Example:
        >>> reps = bootstrap_auc([0, 0, 0, 1, 1, 1], [0.1, 0.5, 0.3, 0.4, 0.8, 0.9], n_boot=5, seed=1)
        >>> reps.shape
        (5,)
    """
    y, s = check_binary_scores(y_true, y_score)
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be a positive number of replicates; got {n_boot!r}")
    if not both_classes(y, "The bootstrap AUC"):
        return np.full(int(n_boot), np.nan)
    design = _boot_design(y, s, groups)
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ELEMENTS // design.n_units)
    out = []
    for start in range(0, int(n_boot), chunk):  # blocks of replicates, to bound memory
        b = min(chunk, int(n_boot) - start)
        counts = np.empty((b, design.n_units), dtype=np.int64)
        for units in design.strata:
            counts[:, units] = _resample_counts(rng, len(units), b)
        out.append(_weighted_aucs(design, counts))
    return np.concatenate(out)


# ------------------------------------------------------------------------------------------------ CIs


def auc_ci(y_true: Any, y_score: Any, *, level: float = 0.95, method: str = "delong", n_boot: int = 2000,
           groups: Any | None = None, seed: int = 0) -> Estimate:
    """AUC with a confidence interval, by DeLong or by stratified percentile bootstrap.

    ``method="delong"`` matches pROC's ``ci.auc(roc, method = "delong")``: AUC +- z * sqrt(DeLong variance),
    variance by Sun & Xu (2014). ``method="bootstrap"`` matches pROC's ``ci.auc(method = "bootstrap",
    boot.stratified = TRUE)`` (percentile interval, R quantile type 7) in method, not in random numbers;
    with ``groups`` it resamples whole patients. Limits are clipped to [0, 1].

    Args:
        y_true: Binary labels (0/1 or bool), 1 = case.
        y_score: Finite scores; higher means more likely a case.
        level: Confidence level.
        method: ``"delong"`` or ``"bootstrap"``.
        n_boot: Bootstrap replicates (bootstrap only).
        groups: Patient id per case (bootstrap only): resample patients, not cases.
        seed: Seed for the bootstrap.

    Returns:
        ``Estimate(value, lo, hi, method)``; all NaN with an ``UndefinedMetricWarning`` for one class, and
        NaN limits for DeLong with fewer than 2 cases or 2 controls.

    Raises:
        ValueError: Bad inputs, unknown method, or ``groups`` with DeLong.

    Example:
        >>> est = auc_ci([0, 0, 0, 1, 1, 1], [0.1, 0.5, 0.3, 0.4, 0.8, 0.9])
        >>> round(est.value, 4), round(est.lo, 4), round(est.hi, 4), est.method
        (0.8889, 0.5809, 1.0, 'DeLong (Sun & Xu 2014)')
    """
    y, s = check_binary_scores(y_true, y_score)
    level = check_level(level)
    if method == "delong":
        if groups is not None:
            raise ValueError("groups only applies to method='bootstrap'; the DeLong variance treats cases "
                             "as independent")
        return _delong_ci(y, s, level)
    if method == "bootstrap":
        return _bootstrap_ci(y, s, level, n_boot, groups, seed)
    raise ValueError(f"Unknown method {method!r}. Available: ['bootstrap', 'delong']")


def _delong_ci(y: np.ndarray, s: np.ndarray, level: float) -> Estimate:
    if not both_classes(y, "The AUC"):
        return Estimate(math.nan, math.nan, math.nan, DELONG_METHOD)
    aucs, cov = _delong(y, s[None, :])
    lo, hi = _normal_ci(float(aucs[0]), float(cov[0, 0]), level, 0.0, 1.0)
    return Estimate(float(aucs[0]), lo, hi, DELONG_METHOD)


def _bootstrap_ci(y: np.ndarray, s: np.ndarray, level: float, n_boot: int, groups: Any | None,
                  seed: int) -> Estimate:
    unit = "case-level" if groups is None else "patient-level"
    method = f"stratified bootstrap, {int(n_boot)} replicates, {unit}"
    reps = bootstrap_auc(y, s, n_boot=n_boot, groups=groups, seed=seed)
    dropped = int(np.isnan(reps).sum())
    if dropped == len(reps):
        return Estimate(math.nan, math.nan, math.nan, method)
    if dropped:
        warnings.warn(f"{dropped} of {len(reps)} patient-level replicates drew no case or no control; the "
                      "interval uses the others", UndefinedMetricWarning, stacklevel=3)
    lo, hi = np.nanquantile(reps, [0.5 - level / 2, 0.5 + level / 2])
    value = float(_placements(y, s[None, :])[0].mean())
    return Estimate(value, float(max(lo, 0.0)), float(min(hi, 1.0)), method)


# ---------------------------------------------------------------------------------------------- Tests


def delong_test(y_true: Any, score_a: Any, score_b: Any, *, level: float = 0.95) -> PairedTest:
    """DeLong's test for two correlated (paired) ROC curves on the same cases (DeLong et al. 1988).

    Equals pROC's ``roc.test(roc_a, roc_b, method = "delong", paired = TRUE)``: Z = (AUC_a - AUC_b) / SE
    with the SE from the DeLong covariance (Sun & Xu 2014), two-sided normal p-value, and the CI of the
    difference as pROC reports it (``diff +- z * SE``).

    Args:
        y_true: Binary labels (0/1 or bool), 1 = case.
        score_a: Scores of the first model (higher = more likely a case).
        score_b: Scores of the second model, same cases in the same order.
        level: Confidence level of the interval for the difference.

    Returns:
        ``PairedTest(statistic=Z, p_value, diff=AUC_a - AUC_b, lo, hi, method)``. Identical curves give
        Z = 0, p = 1 (as pROC). NaN with an ``UndefinedMetricWarning`` for one class present.

    Raises:
        ValueError: Bad labels or scores, or lengths that differ.

    Example:
        >>> y = [0, 0, 0, 1, 1, 1]
        >>> t = delong_test(y, [0.1, 0.5, 0.3, 0.4, 0.8, 0.9], [0.2, 0.1, 0.6, 0.5, 0.7, 0.3])
        >>> round(t.diff, 4), round(t.statistic, 4), round(t.p_value, 4)
        (0.1111, 0.3536, 0.7237)
    """
    y, mat = _stack_scores(y_true, [score_a, score_b], ["score_a", "score_b"])
    level = check_level(level)
    if not both_classes(y, "DeLong's test"):
        return PairedTest(math.nan, math.nan, math.nan, math.nan, math.nan, PAIRED_METHOD)
    aucs, cov = _delong(y, mat)
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    z = _z_or_zero(diff, var)
    lo, hi = _normal_ci(diff, var if math.isnan(var) else max(var, 0.0), level, -1.0, 1.0)
    return PairedTest(z, float(2 * stats.norm.sf(abs(z))), diff, lo, hi, PAIRED_METHOD)


def _z_or_zero(diff: float, var: float) -> float:
    """diff / sqrt(var), 0 when both are 0 (identical curves; pROC's special case)."""
    if var != var:
        return math.nan
    if var <= 0.0:
        return 0.0 if diff == 0.0 else math.copysign(math.inf, diff)
    return diff / math.sqrt(var)


def delong_unpaired_test(y_a: Any, s_a: Any, y_b: Any, s_b: Any, *, level: float = 0.95) -> PairedTest:
    """DeLong's test for two ROC curves on different (independent) cases.

    Equals pROC's ``roc.test(roc_a, roc_b, method = "delong", paired = FALSE)``: D = (AUC_a - AUC_b) /
    sqrt(V_a + V_b) with DeLong variances, referred to a t distribution with
    df = (V_a + V_b)^2 / (V_a^2 / (N_a - 1) + V_b^2 / (N_b - 1)), N the number of cases plus controls.
    pROC reports no interval here; ours is ``diff +- t_df * sqrt(V_a + V_b)``, consistent with the test.

    Args:
        y_a: Labels of sample A (0/1 or bool).
        s_a: Scores of sample A.
        y_b: Labels of sample B.
        s_b: Scores of sample B.
        level: Confidence level of the interval for the difference.

    Returns:
        ``PairedTest(statistic=D, p_value, diff, lo, hi, method, df)``; NaN (with a warning) when a sample
        has one class, or fewer than 2 cases or controls.

    Raises:
        ValueError: Bad labels or scores in either sample.

    Example:
        >>> t = delong_unpaired_test([0, 0, 0, 1, 1, 1], [0.1, 0.5, 0.3, 0.4, 0.8, 0.9],
        ...                          [0, 0, 1, 1], [0.3, 0.1, 0.2, 0.6])
        >>> round(t.diff, 4), round(t.statistic, 4), round(t.df, 2)
        (0.1389, 0.359, 4.2)
    """
    ya, sa = check_binary_scores(y_a, s_a, score_name="s_a")
    yb, sb = check_binary_scores(y_b, s_b, score_name="s_b")
    level = check_level(level)
    nan = PairedTest(math.nan, math.nan, math.nan, math.nan, math.nan, UNPAIRED_METHOD, math.nan)
    if not (both_classes(ya, "DeLong's test (sample A)") and both_classes(yb, "DeLong's test (sample B)")):
        return nan
    (auc_a,), cov_a = _delong(ya, sa[None, :])
    (auc_b,), cov_b = _delong(yb, sb[None, :])
    va, vb = float(cov_a[0, 0]), float(cov_b[0, 0])
    diff = float(auc_a - auc_b)
    df = (va + vb) ** 2 / (va**2 / (len(ya) - 1) + vb**2 / (len(yb) - 1)) if va + vb > 0 else math.inf
    d = _z_or_zero(diff, va + vb)
    if d != d:
        return nan
    half = stats.t.ppf(0.5 + level / 2, df) * math.sqrt(va + vb)
    p = float(2 * stats.t.sf(abs(d), df))
    return PairedTest(d, p, diff, max(-1.0, diff - half), min(1.0, diff + half), UNPAIRED_METHOD, float(df))


# ------------------------------------------------------------------------------------ Model comparison


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
    table = _select_predictions(predictions, set_name)
    if adjust is not None and adjust not in ("holm", "bonferroni"):
        raise ValueError(f"Unknown adjust method {adjust!r}. Available: ['bonferroni', 'holm'] or None")
    frames = [_compare_in_set(sub, set_label, adjust) for set_label, sub in table.groupby("set", sort=False)]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=_COMPARE_COLUMNS)


_COMPARE_COLUMNS = ["set", "model_a", "model_b", "n_cases", "auc_a", "auc_b", "diff", "diff_lo", "diff_hi",
                    "z", "p", "p_adjusted", "adjust", "method"]


def _select_predictions(predictions: pd.DataFrame, set_name: str | None) -> pd.DataFrame:
    """Check the long predictions table and keep one set if asked."""
    check_predictions(predictions)
    if set_name is None:
        return predictions
    sub = predictions[predictions["set"] == set_name]
    if sub.empty:
        raise ValueError(f"Unknown set {set_name!r}. Available: {sorted(map(str, predictions['set'].unique()))}")
    return sub


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
