"""Subgroup analysis: per-level numbers against scikit-learn / hand counts, the heterogeneity test against
statsmodels' formula API and against separate per-level logistic fits, and the "not estimable" rule."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from medlib.stats.subgroups import banding_rule, heterogeneity_test, subgroup_frame, subgroup_metrics


def _data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    g = rng.choice(["A", "B", "C"], size=n)
    lp = rng.normal(0, 1.5, n)
    slope = np.where(g == "C", 0.2, 1.0)  # C: the score carries little information
    y = (rng.random(n) < 1 / (1 + np.exp(-slope * lp))).astype(int)
    p = 1 / (1 + np.exp(-lp))
    return y, p, g


def test_per_level_values_match_references():
    y, p, g = _data()
    res = {r.level: r for r in subgroup_metrics(y, p, pd.DataFrame({"site": g}), threshold=0.5)}
    for lvl in "ABC":
        m = g == lvl
        r = res[lvl]
        assert r.n == m.sum() and r.events == y[m].sum()
        assert r.values["auc"].value == pytest.approx(roc_auc_score(y[m], p[m]), abs=1e-12)
        tp = np.sum((p[m] >= 0.5) & (y[m] == 1))
        tn = np.sum((p[m] < 0.5) & (y[m] == 0))
        assert r.values["sensitivity"].value == pytest.approx(tp / y[m].sum())
        assert r.values["specificity"].value == pytest.approx(tn / (1 - y[m]).sum())
        assert r.values["oe"].value == pytest.approx(y[m].sum() / p[m].sum())
        # calibration slope: unpenalised logistic fit of y on logit(p), by scikit-learn
        lr = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(np.log(p[m] / (1 - p[m]))[:, None], y[m])
        assert r.values["slope"].value == pytest.approx(lr.coef_[0, 0], rel=1e-4)
    assert res["C"].values["auc"].value < res["A"].values["auc"].value


def test_heterogeneity_matches_statsmodels_formula_and_separate_fits():
    import statsmodels.formula.api as smf

    y, p, g = _data()
    het = heterogeneity_test(y, p, g, covariate="site")
    df = pd.DataFrame({"y": y, "lp": np.log(p / (1 - p)), "g": g})
    full = smf.logit("y ~ lp * C(g)", df).fit(disp=0)
    reduced = smf.logit("y ~ lp + C(g)", df).fit(disp=0)
    lr = 2 * (full.llf - reduced.llf)
    assert het.df == 2
    assert het.statistic == pytest.approx(lr, rel=1e-6)
    assert het.p_value == pytest.approx(sps.chi2.sf(lr, 2), rel=1e-6)
    # the fully interacted model is one logistic fit per level: its log-likelihood is their sum
    ll = 0.0
    for lvl in "ABC":
        m = g == lvl
        fit = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(df.lp[m].to_numpy()[:, None], y[m])
        q = fit.predict_proba(df.lp[m].to_numpy()[:, None])[:, 1]
        ll += np.sum(y[m] * np.log(q) + (1 - y[m]) * np.log(1 - q))
    assert ll == pytest.approx(full.llf, rel=1e-6)
    assert het.p_value < 0.05  # C was planted with a weaker slope


def test_one_class_subgroup_is_not_estimable_and_left_out_of_the_test():
    y, p, g = _data(300)
    g = g.astype(object)
    g[:8] = "D"
    y[:8] = 0  # D: eight cases, no event
    res = subgroup_metrics(y, p, pd.DataFrame({"site": g}), threshold=0.5, min_events=5)
    d = next(r for r in res if r.level == "D")
    assert not d.estimable and d.values == {}
    assert "not estimable: 0 with the outcome and 8 without" in d.note
    frame = subgroup_frame(res)
    assert frame.loc[frame.level == "D", "value"].isna().all()
    het = heterogeneity_test(y, p, g, keep=[r.level for r in res if r.estimable])
    assert "D" not in het.levels and het.df == 2
    single = heterogeneity_test(y[:8], p[:8], g[:8])
    assert math.isnan(single.p_value) and "fewer than two" in single.note


def test_numeric_covariate_cut_at_tertiles_with_missing_level():
    age = pd.Series([20, 30, 40, 50, 60, 70, 80, 90, 25, None], dtype=float)
    levels, rule = banding_rule(age, "age")
    cuts = [float(f"{q:.3g}") for q in np.quantile(age.dropna(), [1 / 3, 2 / 3])]
    assert f"{cuts[0]:g}" in rule and "tertiles" in rule
    assert levels[9] == "missing"
    assert (levels[age <= cuts[0]] == f"≤ {cuts[0]:g}").all()
    assert (levels[age > cuts[1]] == f"> {cuts[1]:g}").all()
    middle = (age > cuts[0]) & (age <= cuts[1])
    assert (levels[middle] == f"> {cuts[0]:g} to {cuts[1]:g}").all()
    from medlib.stats.subgroups import level_order
    ordered = sorted(["missing", f"> {cuts[1]:g}", "F", f"> {cuts[0]:g} to {cuts[1]:g}", f"≤ {cuts[0]:g}"],
                     key=level_order)
    assert ordered == [f"≤ {cuts[0]:g}", f"> {cuts[0]:g} to {cuts[1]:g}", f"> {cuts[1]:g}", "F", "missing"]
    sex, rule = banding_rule(pd.Series(["F", "M", None]), "sex")
    assert list(sex) == ["F", "M", "missing"] and "recorded values" in rule
