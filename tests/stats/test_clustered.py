"""Clustered data: Obuchowski's AUC variance, the logit-scale DeLong interval, and intervals that do not narrow
when every patient's rows are duplicated (issue 15, items 4 and 11)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from medlib.stats import auc_ci, delong_var, obuchowski_var, resample_weights


def _obuchowski_by_definition(y, s, g) -> float:
    """Direct transcription of Obuchowski (1997) / funcs_clusteredROC.R (doAUCcluster): loops, kernel 1/0.5/0."""
    y, s, g = map(np.asarray, (y, s, g))
    xs, ys = s[y == 1], s[y == 0]
    kern = lambda a, b: 1.0 if a > b else (0.5 if a == b else 0.0)  # noqa: E731
    auc = np.mean([[kern(a, b) for b in ys] for a in xs])
    ids = list(dict.fromkeys(g.tolist()))
    m = np.array([np.sum((g == i) & (y == 1)) for i in ids], float)
    n = np.array([np.sum((g == i) & (y == 0)) for i in ids], float)
    xc = np.array([sum(np.mean([kern(a, b) for b in ys]) for a in s[(g == i) & (y == 1)]) for i in ids])
    yc = np.array([sum(np.mean([kern(a, b) for a in xs]) for b in s[(g == i) & (y == 0)]) for i in ids])
    big_i, i10, i01, big_m, big_n = len(ids), np.count_nonzero(m), np.count_nonzero(n), m.sum(), n.sum()
    s10 = i10 / ((i10 - 1) * big_m) * np.sum((xc - m * auc) ** 2)
    s01 = i01 / ((i01 - 1) * big_n) * np.sum((yc - n * auc) ** 2)
    s11 = big_i / (big_i - 1) * np.sum((xc - m * auc) * (yc - n * auc))
    return s10 / big_m + s01 / big_n + 2 * s11 / (big_m * big_n)


def _clustered(seed: int, patients: int = 40):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(patients), rng.integers(1, 4, patients))
    frailty = rng.normal(0, 1, patients)[g]
    y = (rng.uniform(size=len(g)) < 1 / (1 + np.exp(-frailty))).astype(int)
    s = np.round(y + frailty + rng.normal(0, 1, len(g)), 1)  # ties, and scores correlated within patients
    return y, s, g


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_obuchowski_matches_its_definition(seed):
    y, s, g = _clustered(seed)
    assert obuchowski_var(y, s, g) == pytest.approx(_obuchowski_by_definition(y, s, g), rel=1e-12)


def test_obuchowski_is_delong_with_one_row_per_patient(asah):
    assert obuchowski_var(asah["y"], asah["s100b"], np.arange(len(asah))) == pytest.approx(
        delong_var(asah["y"], asah["s100b"]), rel=1e-12)


def test_logit_interval_by_hand_and_never_above_one(asah, proc_expected):
    var = proc_expected["delong_var"]["wfns"]
    a = proc_expected["auc"]["wfns"]
    z = st.norm.ppf(0.975)
    lo = 1 / (1 + math.exp(-(math.log(a / (1 - a)) - z * math.sqrt(var) / (a * (1 - a)))))
    hi = 1 / (1 + math.exp(-(math.log(a / (1 - a)) + z * math.sqrt(var) / (a * (1 - a)))))
    est = auc_ci(asah["y"], asah["wfns"])
    assert (est.lo, est.hi) == (pytest.approx(lo, rel=1e-9), pytest.approx(hi, rel=1e-9))
    assert "logit" in est.method
    y = np.r_[np.ones(6), np.zeros(6)]
    s = np.r_[0.9, 0.8, 0.7, 0.6, 0.55, 0.2, 0.5, 0.4, 0.3, 0.25, 0.1, 0.05]
    proc = auc_ci(y, s, transform="none")
    assert proc.hi == 1.0  # pROC's Wald interval reaches 1 here (clipped)
    assert auc_ci(y, s).hi < 1.0


def test_duplicating_every_patient_does_not_narrow_the_auc_interval(asah):
    y, s = asah["y"].to_numpy(), asah["s100b"].to_numpy()
    once = auc_ci(y, s, groups=np.arange(len(y)))
    y2, s2, g2 = np.repeat(y, 2), np.repeat(s, 2), np.repeat(np.arange(len(y)), 2)
    twice = auc_ci(y2, s2, groups=g2)
    assert twice.value == pytest.approx(once.value)
    assert twice.hi - twice.lo >= (once.hi - once.lo) * (1 - 1e-9)
    naive = auc_ci(y2, s2)  # what ignoring the patients gives: about 1/sqrt(2) as wide
    assert naive.hi - naive.lo < 0.8 * (once.hi - once.lo)
    assert "Obuchowski" in twice.method


def test_resample_weights_keep_a_patient_together_and_classes_stratified():
    y = np.array([1, 1, 0, 0, 0, 1])
    g = np.array(["a", "a", "b", "b", "c", "d"])
    w = resample_weights(y, groups=g, n_boot=50, seed=1)
    assert (w[:, 0] == w[:, 1]).all() and (w[:, 2] == w[:, 3]).all()
    assert (w[:, [0, 5]].sum(1) == 2).all()  # the two patients with a positive (a, d): two draws between them
    w_cases = resample_weights(y, n_boot=50, seed=1)
    assert (w_cases[:, y == 1].sum(1) == 3).all() and (w_cases[:, y == 0].sum(1) == 3).all()
