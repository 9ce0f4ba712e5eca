"""Sample size: Riley's development criteria against the published worked example and pmsampsize's own test
cases; the validation widths against pmvalsampsize (the n it returns for a target width gives that width here)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medlib.stats.samplesize import (anticipated_r2cs, max_r2cs, precision_warnings, riley_development,
                                     validation_precision)


@pytest.mark.parametrize("r2, p, prev, ns, epp", [
    # Riley et al. Stat Med 2019 (Chagas disease example; also the BMJ 2020 guidance's binary example)
    (0.288, 24, 0.174, (623, 668, 221), 4.84),
    # pmsampsize's tests/testthat/test_bin.R, tests 4.2-4.4
    (0.55, 24, 0.174, (255, 532, 221), 3.86),
    (0.288, 36, 0.174, (934, 1002, 221), 4.84),
    (0.288, 24, 0.25, (623, 583, 289), 6.49),
])
def test_riley_development_matches_published_examples(r2, p, prev, ns, epp):
    d = riley_development(prev, p, r2)
    assert tuple(c[1] for c in d.criteria) == ns
    assert d.n == max(ns)
    assert round(d.epp, 2) == epp


def test_max_r2cs_by_hand():
    p = 0.174
    assert max_r2cs(p) == pytest.approx(1 - (p ** p * (1 - p) ** (1 - p)) ** 2)
    assert round(max_r2cs(p), 2) == 0.60  # the value the worked example uses


def test_bad_inputs_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="prevalence"):
        riley_development(1.2, 10, 0.1)
    with pytest.raises(ValueError, match="max R2_CS"):
        riley_development(0.05, 10, 0.5)


def test_anticipated_r2cs_matches_a_large_simulation():
    import statsmodels.api as sm

    rng = np.random.default_rng(1)
    n, prev, auc = 200_000, 0.2, 0.8
    y = (rng.random(n) < prev).astype(float)
    lp = rng.normal(size=n) + y * np.sqrt(2) * 0.8416212335729143  # Phi^-1(0.8)
    fit = sm.GLM(y, sm.add_constant(lp), family=sm.families.Binomial()).fit()
    simulated = 1 - math.exp(-(fit.null_deviance - fit.deviance) / n)
    assert anticipated_r2cs(auc, prev) == pytest.approx(simulated, abs=0.003)


def test_validation_widths_match_pmvalsampsize():
    """pmvalsampsize gives the smallest n whose expected CI width meets each target; at that n our widths meet
    the target and at n - 1 they do not (the C-statistic and slope), and O/E's width is the target."""
    from scipy.stats import norm

    prev, c, lpn = 0.2, 0.75, (-1.75, 1.2)
    # pmvalsampsize 0.2.1 (PyPI), pmvalsampsize(type="b", prevalence=0.2, cstatistic=0.75, lpnormal=(-1.75, 1.2),
    # simobs=100_000): its results table. Recorded here because the package pins pandas < 3, which the project
    # does not (it is not installed with the test extra).
    table = {"Criteria 1 - O/E": 1538, "Criteria 2 - C-slope": 3032, "Criteria 3 - C statistic": 568}
    np.random.seed(123456)  # pmvalsampsize draws its LP from the global generator with this seed
    lp = norm.rvs(loc=lpn[0], scale=lpn[1], size=100_000)

    def width(n, what):  # events n * prev: the package works with the prevalence, not a whole count
        return getattr(validation_precision(n, 1, auc=c, lp=lp, prevalence=prev), what)

    n_c, n_s, n_oe = (table[f"Criteria {k}"] for k in ("3 - C statistic", "2 - C-slope", "1 - O/E"))
    assert width(n_c, "auc_width") <= 0.1 < width(n_c - 1, "auc_width")
    assert width(n_s, "slope_width") <= 0.2 < width(n_s - 1, "slope_width")
    assert width(n_oe, "oe_width") == pytest.approx(0.2, abs=0.001)


def test_small_set_warns_for_calibration_and_auc():
    prec = validation_precision(60, 12, auc=0.8, lp=np.random.default_rng(0).normal(-1.4, 1, 60))
    text = " ".join(precision_warnings(prec))
    assert "12 cases with and 48 without" in text and "at least 100" in text
    assert "CI of the AUC" in text
    assert precision_warnings(validation_precision(5000, 1000, auc=0.8, lp=np.random.default_rng(0).normal(-1.4, 1, 1000))) == []
