"""medlib.stats.bootstrap: the vectorised stratified bootstrap against resampled data, patient resampling."""

from __future__ import annotations

import numpy as np
import pytest

from medlib.stats import UndefinedMetricWarning, auc, auc_ci, bootstrap_auc
from medlib.stats.bootstrap import _boot_design, _resample_counts, _weighted_aucs


def test_weighted_engine_equals_auc_of_resampled_data(rng):
    y = rng.integers(0, 2, 60)
    s = rng.integers(0, 8, 60).astype(float)  # ties
    design = _boot_design(y, s, None)
    counts = np.empty((5, design.n_units), dtype=np.int64)
    for units in design.strata:
        counts[:, units] = _resample_counts(rng, len(units), 5)
    fast = _weighted_aucs(design, counts)
    pos, neg_sorted = np.flatnonzero(y == 1), np.flatnonzero(y == 0)[np.argsort(s[y == 0], kind="mergesort")]
    for b in range(5):
        w = np.zeros(len(y), dtype=int)
        w[pos], w[neg_sorted] = counts[b, design.pos_units], counts[b, design.neg_units]
        assert fast[b] == pytest.approx(auc(np.repeat(y, w), np.repeat(s, w)), rel=1e-12)


def test_bootstrap_is_deterministic_and_close_to_delong(asah):
    boot = auc_ci(asah["y"], asah["ndka"], method="bootstrap", seed=7)
    again = auc_ci(asah["y"], asah["ndka"], method="bootstrap", seed=7)
    other = auc_ci(asah["y"], asah["ndka"], method="bootstrap", seed=8)
    delong = auc_ci(asah["y"], asah["ndka"])
    assert boot == again and boot != other
    assert boot.method == "stratified bootstrap, 2000 replicates, case-level"
    assert boot.value == delong.value
    assert boot.lo == pytest.approx(delong.lo, abs=0.03) and boot.hi == pytest.approx(delong.hi, abs=0.03)


def test_bootstrap_replicates_keep_class_sizes(asah):
    """Stratified: each replicate has the original numbers of cases and controls (checked via weights)."""
    y, s = asah["y"].to_numpy(), asah["ndka"].to_numpy()
    design = _boot_design(y, s, None)
    counts = _resample_counts(np.random.default_rng(0), y.sum(), 20)
    assert (counts.sum(axis=1) == y.sum()).all()
    assert len(design.strata) == 2 and [len(u) for u in design.strata] == [y.sum(), len(y) - y.sum()]


def test_group_bootstrap_keeps_patients_whole(rng):
    patients = np.repeat(np.arange(40), 3)  # 3 cases per patient
    y = rng.integers(0, 2, 120)
    s = rng.normal(size=120) + y
    design = _boot_design(y, s, patients)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    neg_sorted = neg[np.argsort(s[neg], kind="mergesort")]
    np.testing.assert_array_equal(design.pos_units, patients[pos])  # a case's weight is its patient's count
    np.testing.assert_array_equal(design.neg_units, patients[neg_sorted])
    has_pos = np.isin(np.arange(40), patients[pos])
    np.testing.assert_array_equal(np.sort(np.concatenate(design.strata)), np.arange(40))
    np.testing.assert_array_equal(design.strata[0], np.flatnonzero(has_pos))


def test_group_bootstrap_is_wider_when_patients_cluster(rng):
    """8 images per patient share the patient's label and a random effect: the information is in 60
    patients, not 480 images, so patient-level resampling must give a clearly wider interval."""
    patients = np.repeat(np.arange(60), 8)
    y = np.repeat(np.tile([0, 1], 30), 8)
    s = y * 0.8 + np.repeat(rng.normal(size=60), 8) + rng.normal(scale=0.3, size=480)
    case = auc_ci(y, s, method="bootstrap", n_boot=400)
    patient = auc_ci(y, s, method="bootstrap", n_boot=400, groups=patients)
    assert patient.method == "stratified bootstrap, 400 replicates, patient-level"
    assert patient.value == case.value
    assert (patient.hi - patient.lo) > 1.8 * (case.hi - case.lo)


def test_group_bootstrap_warns_about_replicates_without_controls():
    """Every patient has a case; only patient 0 has controls: replicates missing patient 0 are left out."""
    y, s, patients = [1, 0, 0, 1, 1, 1, 1], [0.9, 0.1, 0.95, 0.8, 0.3, 0.7, 0.6], [0, 0, 0, 1, 2, 3, 4]
    with pytest.warns(UndefinedMetricWarning, match=r"\d+ of 200 patient-level replicates drew no case or no"):
        est = auc_ci(y, s, method="bootstrap", n_boot=200, groups=patients)
    assert 0.0 <= est.lo <= est.hi <= 1.0


def test_bootstrap_large_n_is_fast_enough(rng):
    y = rng.integers(0, 2, 20_000)
    reps = bootstrap_auc(y, rng.normal(size=20_000) + y, n_boot=200, seed=1)
    assert reps.shape == (200,) and np.isfinite(reps).all() and reps.std() < 0.01
