"""PR curves and the ROC band against scikit-learn: average precision of the data and of every bootstrap
replicate (resampled data built from the same counts), and the band's sensitivities from roc_curve."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_curve

from medlib.stats.prcurve import (_ap_replicates, _resample_counts, _tpr_at, average_precision_ci, pr_curve,
                                  roc_band)


def _data(n=150, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.18).astype(int)
    s = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.3 * y - 1.5)))
    return y, (np.round(s, 1) if ties else s)


@pytest.mark.parametrize("ties", [False, True])
def test_every_replicate_equals_sklearn_on_the_resampled_data(ties):
    y, s = _data(ties=ties)
    counts = _resample_counts(np.random.default_rng(3), y, 25)
    reps = _ap_replicates(y, s, counts)
    for row, got in zip(counts, reps):
        idx = np.repeat(np.arange(len(y)), row)
        assert got == pytest.approx(average_precision_score(y[idx], s[idx]), abs=1e-12)
    # counts keep each class's size (stratified)
    assert (counts[:, y == 1].sum(1) == y.sum()).all()


def test_point_value_and_interval():
    y, s = _data()
    est = average_precision_ci(y, s, n_boot=500)
    assert est.value == average_precision_score(y, s)
    assert est.lo < est.value < est.hi
    p, r, _ = pr_curve(y, s)
    p_ref, r_ref, _ = precision_recall_curve(y, s)
    assert np.array_equal(p, p_ref) and np.array_equal(r, r_ref)


def test_roc_band_matches_sklearn_roc_and_contains_the_curve():
    y, s = _data(ties=True)
    grid = np.linspace(0, 1, 21)
    counts = _resample_counts(np.random.default_rng(1), y, 10)
    got = _tpr_at(y, s, counts, grid)
    for row, g in zip(counts, got):
        idx = np.repeat(np.arange(len(y)), row)
        fpr, tpr, _ = roc_curve(y[idx], s[idx], drop_intermediate=False)
        ref = [tpr[fpr <= f + 1e-12].max() for f in grid]
        assert np.allclose(g, ref)
    band = roc_band(y, s, n_boot=300, points=21)
    assert np.all(band.lo <= band.tpr + 1e-12) and np.all(band.tpr <= band.hi + 1e-12)
    assert band.tpr[-1] == 1.0


def test_one_class_gives_nan_not_a_crash():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert math.isnan(average_precision_ci([0, 0, 0], [0.1, 0.2, 0.3]).value)
        assert np.isnan(roc_band([1, 1], [0.2, 0.3]).lo).all()
