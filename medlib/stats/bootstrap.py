"""Stratified bootstrap of the AUC, all replicates at once, resampling cases or whole patients.

Matches pROC's ``ci.auc(method = "bootstrap", boot.stratified = TRUE)`` in method (not in random numbers).
No library computes a weighted Mann-Whitney AUC for many replicates without a loop, so this module keeps its
own engine; ``tests/stats/test_roc.py`` checks every replicate against the AUC of the resampled data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from medlib.stats._validate import as_1d, both_classes, check_binary_scores

_CHUNK_ELEMENTS = 2_000_000  # bootstrap replicates are processed in blocks of about this many weights


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


def resample_weights(y_true: Any, *, groups: Any | None = None, n_boot: int = 1000,
                     seed: int = 0) -> np.ndarray:
    """How often each row enters each stratified bootstrap replicate: an ``n_boot x n`` array of counts.

    The same design as :func:`bootstrap_auc`: rows are resampled within each class, or, with ``groups``, whole
    patients are resampled within "has any positive row" / "has none", and every row of a drawn patient counts
    once per draw. Any statistic that accepts case weights (confusion counts, net benefit, Brier score) is then
    computed for all replicates at once; a weight of 2 is the same as the row appearing twice.

    Args:
        y_true: Binary labels (0/1 or bool).
        groups: Optional patient id per row.
        n_boot: Number of replicates.
        seed: Seed of the NumPy generator.

    Returns:
        Integer array ``n_boot x n``.

    Example:
        >>> w = resample_weights([0, 0, 1, 1, 1], n_boot=3, seed=0)
        >>> w.shape, w[:, :2].sum(axis=1).tolist(), w[:, 2:].sum(axis=1).tolist()
        ((3, 5), [2, 2, 2], [3, 3, 3])
    """
    from medlib.stats._validate import check_labels

    y = check_labels(y_true)
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be a positive number of replicates; got {n_boot!r}")
    rng = np.random.default_rng(seed)
    if groups is None:
        units = np.arange(len(y))
        strata = tuple(u for u in (np.flatnonzero(y == 1), np.flatnonzero(y == 0)) if len(u))
    else:
        units = _group_codes(groups, len(y))
        has_pos = np.zeros(int(units.max()) + 1, dtype=bool)
        has_pos[units[y == 1]] = True
        strata = tuple(u for u in (np.flatnonzero(has_pos), np.flatnonzero(~has_pos)) if len(u))
    n_units = int(units.max()) + 1
    counts = np.zeros((int(n_boot), n_units), dtype=np.int64)
    for members in strata:
        counts[:, members] = _resample_counts(rng, len(members), int(n_boot))
    return counts[:, units]
