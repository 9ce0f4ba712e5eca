"""medlib.stats.delong: golden values from pROC's test suite, ties, and the O(mn) DeLong oracle."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from medlib.stats import Estimate, auc, auc_ci, delong_cov, delong_test, delong_unpaired_test, delong_var

REL = 1e-9
MARKERS = ("wfns", "s100b", "ndka")


def naive_delong(y: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """DeLong et al. (1988) from the m x n kernel matrix, O(mn): the oracle for the fast algorithm."""
    x, z = s[y == 1], s[y == 0]
    psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return psi.mean(), v10.var(ddof=1) / len(x) + v01.var(ddof=1) / len(z)


# ------------------------------------------------------------------------------------- golden: pROC


@pytest.mark.parametrize("marker", MARKERS)
def test_auc_and_delong_var_match_proc(asah, proc_expected, marker):
    assert auc(asah["y"], asah[marker]) == pytest.approx(proc_expected["auc"][marker], rel=REL)
    assert delong_var(asah["y"], asah[marker]) == pytest.approx(proc_expected["delong_var"][marker], rel=REL)


@pytest.mark.parametrize("pair", ["s100b,wfns", "wfns,ndka", "ndka,s100b"])
def test_delong_cov_matches_proc(asah, proc_expected, pair):
    a, b = pair.split(",")
    cov = delong_cov(asah["y"], [asah[a], asah[b]])
    assert cov[0, 1] == pytest.approx(proc_expected["delong_cov"][pair], rel=REL)
    assert cov[1, 0] == cov[0, 1]
    assert cov[0, 0] == pytest.approx(proc_expected["delong_var"][a], rel=REL)


def test_delong_ci_matches_proc(asah, proc_expected):
    est = auc_ci(asah["y"], asah["ndka"], transform="none")  # pROC's interval, kept for comparison
    lo, hi = proc_expected["delong_ci95"]["ndka"]
    assert isinstance(est, Estimate) and est.method == "DeLong (Sun & Xu 2014)"
    assert (est.lo, est.hi) == (pytest.approx(lo, rel=REL), pytest.approx(hi, rel=REL))
    printed = auc_ci(asah["y"], asah["s100b"], transform="none")
    assert [round(printed.lo, 4), round(printed.hi, 4)] == proc_expected["delong_ci95"]["s100b_printed"]


@pytest.mark.parametrize("pair", ["wfns,s100b", "wfns,ndka", "ndka,s100b"])
def test_paired_delong_test_matches_proc(asah, proc_expected, pair):
    a, b = pair.split(",")
    expected = proc_expected["paired_delong_test"][pair]
    test = delong_test(asah["y"], asah[a], asah[b])
    assert test.statistic == pytest.approx(expected["z"], rel=REL)
    assert test.p_value == pytest.approx(expected["p"], rel=REL)
    assert test.diff == pytest.approx(proc_expected["auc"][a] - proc_expected["auc"][b], rel=REL)
    if "diff_ci95" in expected:
        assert (test.lo, test.hi) == (pytest.approx(expected["diff_ci95"][0], rel=REL),
                                      pytest.approx(expected["diff_ci95"][1], rel=REL))


def test_unpaired_delong_test_matches_proc(asah, proc_expected):
    expected = proc_expected["unpaired_delong_test"]["wfns,s100b"]
    test = delong_unpaired_test(asah["y"], asah["wfns"], asah["y"], asah["s100b"])
    assert test.statistic == pytest.approx(expected["d"], rel=REL)
    assert test.p_value == pytest.approx(expected["p"], rel=REL)
    assert test.lo < test.diff < test.hi and 100 < test.df < 226


# -------------------------------------------------------------------------------- ties and oracles


@pytest.mark.parametrize("y, s, expected", [
    ([0, 1], [0.2, 0.8], 1.0),
    ([0, 1], [0.8, 0.2], 0.0),
    ([0, 1], [0.5, 0.5], 0.5),                      # a tie counts 1/2
    ([0, 0, 1, 1], [1, 1, 1, 1], 0.5),              # all tied
    ([0, 0, 1, 1], [0.1, 0.5, 0.5, 0.9], 0.875),    # (1 + 0.5 + 1 + 1) / 4
    ([False, True, True], [3, 3, 4], 0.75),         # bool labels
])
def test_auc_by_hand(y, s, expected):
    assert auc(y, s) == pytest.approx(expected)


def test_fast_delong_equals_naive_with_heavy_ties(rng):
    y = rng.integers(0, 2, 400)
    s = rng.integers(0, 6, 400) + y  # 6 distinct levels: many ties within and across classes
    value, var = naive_delong(y, s.astype(float))
    assert auc(y, s) == pytest.approx(value, rel=1e-12)
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s), rel=1e-12)
    assert delong_var(y, s) == pytest.approx(var, rel=1e-10)


def test_identical_curves_give_z0_p1(asah):
    test = delong_test(asah["y"], asah["s100b"], asah["s100b"])
    assert (test.statistic, test.p_value, test.diff) == (0.0, 1.0, 0.0)
