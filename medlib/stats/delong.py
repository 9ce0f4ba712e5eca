"""AUC and its DeLong variance, covariance, confidence limits and tests (matching pROC).

Implements DeLong, DeLong & Clarke-Pearson (1988, *Biometrics* 44:837-845) by the fast midrank algorithm of
Sun & Xu (2014, *IEEE Signal Process Lett* 21:1389-1393), ``O(n log n)``: the AUC is the mean placement value
of the cases (the Mann-Whitney statistic, ties count 1/2) and the variance comes from the placement values of
cases and controls. Every value is checked against pROC 1.19 (``auc``, ``var``, ``cov``, ``ci.auc`` and
``roc.test`` with ``method = "delong"``) on its aSAH data in ``tests/stats``. No Python library offers the
DeLong variance (scikit-learn, SciPy and statsmodels give the AUC but no variance, covariance or test), so
this module keeps its own implementation; the AUC itself equals scikit-learn's ``roc_auc_score`` (tested).

Conventions as in :mod:`medlib.stats.roc`: labels 0/1 with 1 a case, a higher score means more likely a case
(pROC's ``direction = "<"``), never flipped automatically.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from medlib.stats._validate import UndefinedMetricWarning, both_classes, check_binary_scores, check_level
from medlib.stats.results import PairedTest

DELONG_METHOD = "DeLong (Sun & Xu 2014)"
#: the interval the reports use: DeLong's variance, the Wald interval on the logit scale (never outside [0, 1])
DELONG_LOGIT_METHOD = "DeLong (Sun & Xu 2014), logit-transformed interval"
#: the same for several cases per patient: Obuchowski's (1997) clustered variance
OBUCHOWSKI_METHOD = "clustered DeLong (Obuchowski 1997), patients as clusters, logit-transformed interval"
PAIRED_METHOD = "DeLong's test for two correlated ROC curves (paired; pROC roc.test)"
UNPAIRED_METHOD = "DeLong's test for two unpaired ROC curves (t, Welch-Satterthwaite df; pROC roc.test)"


def auc(y_true: Any, y_score: Any) -> float:
    """Area under the ROC curve (Mann-Whitney estimate, ties count 1/2).

    Equals pROC's ``auc(roc(y, score, direction = "<"))`` and scikit-learn's ``roc_auc_score`` (both tested);
    it is computed from the same placement values as the DeLong variance, so an AUC and its variance always
    come from one computation.

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


# ------------------------------------------------------------------------------------- Sun & Xu (2014)


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


# ------------------------------------------------------------------------------------- Variance, covariance


def delong_var(y_true: Any, y_score: Any) -> float:
    """DeLong variance of the AUC (DeLong et al. 1988) by the fast algorithm of Sun & Xu (2014).

    Equals pROC's ``var(roc, method = "delong")`` (denominators m - 1 and n - 1). Our own code: no Python
    library computes the DeLong variance (see the module docstring); it is checked against pROC.

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


# ------------------------------------------------------------------------------------- Clustered (Obuchowski)


def obuchowski_var(y_true: Any, y_score: Any, groups: Any) -> float:
    """Variance of the AUC when patients contribute several cases (Obuchowski 1997, *Biometrics* 53:567-578).

    Placement values (as DeLong's) are summed per patient; with ``m_i`` cases and ``n_i`` controls in patient
    ``i``, ``M = sum m_i``, ``N = sum n_i``, ``I10`` / ``I01`` the patients holding a case / a control and ``I``
    all patients::

        S10 = I10 / ((I10 - 1) M) * sum_i (V10_i - m_i A)^2
        S01 = I01 / ((I01 - 1) N) * sum_i (V01_i - n_i A)^2
        S11 = I / (I - 1) * sum_i (V10_i - m_i A)(V01_i - n_i A)
        var = S10 / M + S01 / N + 2 S11 / (M N)

    With one case per patient it is exactly DeLong's variance (tested). No Python library implements it (the R
    reference is ``funcs_clusteredROC.R`` of the Cleveland Clinic, also in ``iMRMCcluster::doAUCcluster``); the
    tests check it against a direct transcription of that definition.

    Args:
        y_true: Binary labels (0/1 or bool), 1 = case.
        y_score: Finite scores; higher means more likely a case.
        groups: Patient id per row.

    Returns:
        The variance; NaN (with an ``UndefinedMetricWarning``) with one class or fewer than 2 patients holding a
        case or a control.
    """
    import pandas as pd

    y, s = check_binary_scores(y_true, y_score)
    g = np.asarray(groups)
    if len(g) != len(y):
        raise ValueError(f"groups must have one patient id per case; got {len(g)} ids for {len(y)} cases")
    if not both_classes(y, "The clustered AUC variance"):
        return math.nan
    codes, _ = pd.factorize(g)
    v10, v01 = _placements(y, s[None, :])
    pos = y == 1
    n_units = int(codes.max()) + 1
    m_i = np.bincount(codes[pos], minlength=n_units).astype(float)
    n_i = np.bincount(codes[~pos], minlength=n_units).astype(float)
    x_i = np.bincount(codes[pos], weights=v10[0], minlength=n_units)
    y_i = np.bincount(codes[~pos], weights=v01[0], minlength=n_units)
    i10, i01, i_all = int(np.count_nonzero(m_i)), int(np.count_nonzero(n_i)), n_units
    if i10 < 2 or i01 < 2:
        warnings.warn(f"the clustered AUC variance needs at least 2 patients with a case and 2 with a control; got "
                      f"{i10} and {i01}; returning NaN", UndefinedMetricWarning, stacklevel=2)
        return math.nan
    a = float(v10.mean())
    big_m, big_n = m_i.sum(), n_i.sum()
    dx, dy = x_i - m_i * a, y_i - n_i * a
    s10 = i10 / ((i10 - 1) * big_m) * float(dx @ dx)
    s01 = i01 / ((i01 - 1) * big_n) * float(dy @ dy)
    s11 = i_all / (i_all - 1) * float(dx @ dy)
    return float(s10 / big_m + s01 / big_n + 2 * s11 / (big_m * big_n))


def logit_ci(value: float, var: float, level: float) -> tuple[float, float]:
    """Wald interval of an AUC on the logit scale, back-transformed: never below 0 nor above 1.

    ``logit(A) +- z * SE / (A (1 - A))`` (delta method; Pepe 2003, *The Statistical Evaluation of Medical Tests*,
    sec. 5.2; Qin & Hotilovac 2008). An AUC of exactly 0 or 1 (complete separation) has no logit: its interval
    is the point itself, as pROC's would be (variance 0). NaN limits for a NaN variance.
    """
    if math.isnan(var) or math.isnan(value):
        return math.nan, math.nan
    if value <= 0.0 or value >= 1.0:
        return float(value), float(value)
    z = stats.norm.ppf(0.5 + level / 2)
    centre = math.log(value / (1 - value))
    half = z * math.sqrt(max(var, 0.0)) / (value * (1 - value))
    return float(1 / (1 + math.exp(-(centre - half)))), float(1 / (1 + math.exp(-(centre + half))))
