"""medlib.stats.multitest: Holm and Bonferroni (statsmodels) against the step-down rule written out and by hand."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from medlib.stats import adjust_pvalues


@pytest.mark.parametrize("p, method, expected", [
    ([0.01, 0.04, 0.03], "holm", [0.03, 0.06, 0.06]),
    ([0.01, 0.04, 0.03], "bonferroni", [0.03, 0.12, 0.09]),
    ([0.01, 0.04, 0.03], None, [0.01, 0.04, 0.03]),
    ([0.5, 0.6], "holm", [1.0, 1.0]),
    ([0.02], "holm", [0.02]),
    ([0.01, np.nan, 0.03], "holm", [0.02, np.nan, 0.03]),  # NaN kept and not counted
])
def test_adjust_by_hand(p, method, expected):
    np.testing.assert_allclose(adjust_pvalues(p, method), expected)


@pytest.mark.parametrize("method", ["holm", "bonferroni"])
def test_adjust_matches_statsmodels(method, rng):
    p = rng.uniform(0, 0.2, 25)
    np.testing.assert_allclose(adjust_pvalues(p, method), multipletests(p, method=method)[1], rtol=1e-12)


def holm_step_down(p: np.ndarray) -> np.ndarray:
    """Holm (1979) written out on the non-NaN p-values: the oracle for the statsmodels call."""
    out, ok = p.copy(), ~np.isnan(p)
    m, order = ok.sum(), np.argsort(p[ok], kind="mergesort")
    stepped = np.minimum(np.maximum.accumulate((m - np.arange(m)) * p[ok][order]), 1.0)
    out[np.flatnonzero(ok)[order]] = stepped
    return out


@pytest.mark.parametrize("seed", range(10))
def test_holm_matches_the_step_down_rule_with_ties_and_nan(seed):
    rng = np.random.default_rng(seed)
    p = np.round(rng.uniform(0, 0.3, int(rng.integers(1, 40))), 2)  # ties
    p[rng.uniform(size=len(p)) < 0.2] = np.nan
    np.testing.assert_allclose(adjust_pvalues(p, "holm"), holm_step_down(p), rtol=1e-14)
    ok = ~np.isnan(p)
    np.testing.assert_allclose(adjust_pvalues(p, "bonferroni")[ok], np.minimum(p[ok] * ok.sum(), 1.0), rtol=1e-14)


def test_adjust_does_not_mutate():
    p = np.array([0.04, 0.01])
    adjust_pvalues(p)
    np.testing.assert_array_equal(p, [0.04, 0.01])


@pytest.mark.parametrize("p, method, match", [
    ([0.1], "fdr_bh", r"Unknown adjust method 'fdr_bh'. Available: \['holm', 'bonferroni'\] or None"),
    ([0.1, 1.2], "holm", r"p-values must lie in \[0, 1\]; got min 0.1, max 1.2"),
])
def test_adjust_errors(p, method, match):
    with pytest.raises(ValueError, match=match):
        adjust_pvalues(p, method)
