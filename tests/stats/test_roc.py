"""medlib.stats.roc: golden values from pROC's test suite, ties, degenerate inputs, bootstrap, model comparison."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from medlib.stats import (
    Estimate,
    UndefinedMetricWarning,
    adjust_pvalues,
    auc,
    auc_ci,
    bootstrap_auc,
    compare_models,
    delong_cov,
    delong_test,
    delong_unpaired_test,
    delong_var,
    roc_curve,
)
from medlib.stats.roc import _boot_design, _resample_counts, _weighted_aucs

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
    est = auc_ci(asah["y"], asah["ndka"])
    lo, hi = proc_expected["delong_ci95"]["ndka"]
    assert isinstance(est, Estimate) and est.method == "DeLong (Sun & Xu 2014)"
    assert (est.lo, est.hi) == (pytest.approx(lo, rel=REL), pytest.approx(hi, rel=REL))
    printed = auc_ci(asah["y"], asah["s100b"])
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


def test_roc_curve_matches_sklearn(rng):
    y = rng.integers(0, 2, 200)
    s = np.round(rng.normal(size=200) + y, 1)
    fpr, tpr, thr = roc_curve(y, s)
    sk_fpr, sk_tpr, sk_thr = sk_roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_allclose(thr[1:], sk_thr[1:])
    assert thr[0] == np.inf and np.trapezoid(tpr, fpr) == pytest.approx(auc(y, s))


def test_identical_curves_give_z0_p1(asah):
    test = delong_test(asah["y"], asah["s100b"], asah["s100b"])
    assert (test.statistic, test.p_value, test.diff) == (0.0, 1.0, 0.0)


def test_inputs_not_mutated(asah):
    y, s = asah["y"].to_numpy().copy(), asah["ndka"].to_numpy().copy()
    y_in, s_in = y.copy(), s.copy()
    auc_ci(y_in, s_in, method="bootstrap", n_boot=50)
    delong_test(y_in, s_in, s_in[::-1].copy())
    np.testing.assert_array_equal(y_in, y)
    np.testing.assert_array_equal(s_in, s)


# ------------------------------------------------------------------------------------------ degenerate


@pytest.mark.parametrize("func", [
    lambda y, s: auc(y, s),
    lambda y, s: auc_ci(y, s).value,
    lambda y, s: auc_ci(y, s, method="bootstrap", n_boot=10).lo,
    lambda y, s: delong_var(y, s),
    lambda y, s: delong_test(y, s, s[::-1]).p_value,
    lambda y, s: float(bootstrap_auc(y, s, n_boot=3)[0]),
])
def test_one_class_warns_and_returns_nan(func):
    y, s = np.ones(5, dtype=int), np.linspace(0, 1, 5)
    with pytest.warns(UndefinedMetricWarning, match="only one class is present"):
        assert math.isnan(func(y, s))


def test_single_case_gives_nan_variance_with_warning():
    with pytest.warns(UndefinedMetricWarning, match="at least 2 cases and 2 controls; got 1 and 3"):
        est = auc_ci([0, 0, 0, 1], [0.1, 0.2, 0.3, 0.9])
    assert est.value == 1.0 and math.isnan(est.lo) and math.isnan(est.hi)


def test_perfect_separation_ci_is_clipped():
    est = auc_ci([0, 0, 0, 1, 1, 1], [0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    assert (est.value, est.lo, est.hi) == (1.0, 1.0, 1.0)
    near = auc_ci([0, 0, 0, 1, 1, 1], [0.1, 0.2, 0.75, 0.7, 0.8, 0.9])
    assert 0.0 <= near.lo <= near.value <= near.hi == 1.0


# ---------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("call, exc, match", [
    (lambda: auc([0, 1, 1], [0.1, np.nan, np.inf]), ValueError, r"y_score has 2 NaN or infinite value\(s\)"),
    (lambda: auc([0, 1, 1], [0.1, 0.2]), ValueError, "got 3 and 2"),
    (lambda: auc([0, 1, 2], [0.1, 0.2, 0.3]), ValueError, r"must be binary .* got values \[0, 1, 2\]"),
    (lambda: auc(["Good", "Poor"], [0.1, 0.2]), ValueError, r"got values \['Good', 'Poor'\]"),
    (lambda: auc([0, 1, np.nan], [0.1, 0.2, 0.3]), ValueError, "must be binary"),
    (lambda: auc([[0, 1]], [[0.1, 0.2]]), ValueError, r"must be 1-D .* got shape \(1, 2\)"),
    (lambda: auc([], []), ValueError, "y_true is empty"),
    (lambda: auc([0, 1], ["a", "b"]), ValueError, "y_score must be numeric"),
    (lambda: auc_ci([0, 1], [0.1, 0.2], method="wald"), ValueError, r"Unknown method 'wald'"),
    (lambda: auc_ci([0, 1], [0.1, 0.2], groups=[1, 2]), ValueError, "groups only applies to method='bootstrap'"),
    (lambda: auc_ci([0, 1], [0.1, 0.2], level=95), ValueError, "level must lie strictly between 0 and 1"),
    (lambda: bootstrap_auc([0, 1], [0.1, 0.2], n_boot=0), ValueError, "n_boot must be a positive number"),
    (lambda: bootstrap_auc([0, 1], [0.1, 0.2], groups=[1]), ValueError, "got 1 ids for 2 cases"),
    (lambda: bootstrap_auc([0, 1], [0.1, 0.2], groups=["p1", None]), ValueError, r"1 missing patient id\(s\)"),
    (lambda: delong_test([0, 1, 1], [0.1, 0.2, 0.3], [0.1, 0.2]), ValueError, "y_true and score_b .* got 3 and 2"),
    (lambda: delong_cov([0, 1], [0.1, 0.2]), ValueError, r"list of score vectors or a k x N array; got shape \(2,\)"),
    (lambda: delong_cov([0, 1], []), ValueError, "at least one score vector is needed"),
    (lambda: delong_unpaired_test([0, 1], [0.1, np.nan], [0, 1], [0.1, 0.2]), ValueError, "s_a has 1 NaN"),
])
def test_errors_say_what_arrived(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ------------------------------------------------------------------------------------------- bootstrap


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


# ------------------------------------------------------------------------------------ compare_models


def long_predictions(asah: pd.DataFrame) -> pd.DataFrame:
    frames = [pd.DataFrame({"case_id": asah.index, "patient_id": asah.index, "model": m, "set": "test",
                            "y_true": asah["y"], "score": asah[m]}) for m in MARKERS]
    return pd.concat(frames, ignore_index=True)


def test_compare_models_matches_paired_tests_and_holm(asah, proc_expected):
    out = compare_models(long_predictions(asah))
    assert list(zip(out["model_a"], out["model_b"])) == [("wfns", "s100b"), ("wfns", "ndka"), ("s100b", "ndka")]
    assert out.loc[0, "z"] == pytest.approx(proc_expected["paired_delong_test"]["wfns,s100b"]["z"], rel=REL)
    assert out.loc[2, "z"] == pytest.approx(-proc_expected["paired_delong_test"]["ndka,s100b"]["z"], rel=REL)
    assert out.loc[0, "auc_a"] == pytest.approx(proc_expected["auc"]["wfns"], rel=REL)
    p = out["p"].to_numpy()
    holm = np.minimum(1, np.maximum.accumulate(np.sort(p) * [3, 2, 1]))[np.argsort(np.argsort(p))]
    np.testing.assert_allclose(out["p_adjusted"], holm)
    assert (out["adjust"] == "holm").all() and (out["n_cases"] == 113).all()


@pytest.mark.parametrize("adjust, factor", [("bonferroni", 3), (None, 1)])
def test_compare_models_other_adjustments(asah, adjust, factor):
    out = compare_models(long_predictions(asah), adjust=adjust)
    np.testing.assert_allclose(out["p_adjusted"], np.minimum(1, out["p"] * factor))
    np.testing.assert_allclose(out["p_adjusted"], adjust_pvalues(out["p"], adjust))


def test_compare_models_uses_common_cases_per_set(asah):
    preds = long_predictions(asah)
    preds = preds[~((preds["model"] == "ndka") & (preds["case_id"] < 13))]
    val = preds.assign(set="val")
    out = compare_models(pd.concat([preds, val]), set_name="val")
    assert (out["set"] == "val").all()
    assert out.set_index(["model_a", "model_b"])["n_cases"].to_dict() == {
        ("wfns", "s100b"): 113, ("wfns", "ndka"): 100, ("s100b", "ndka"): 100}
    assert len(compare_models(pd.concat([preds, val]))) == 6


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d.drop(columns="set"), r"missing column\(s\) \['set'\]"),
    (lambda d: d.assign(y_true=np.where(d["model"] == "ndka", 1 - d["y_true"], d["y_true"])),
     r"y_true differs between models 'wfns' and 'ndka' for 113 case\(s\)"),
    (lambda d: pd.concat([d, d.iloc[:1]]), r"model 'wfns' has 1 duplicate case_id"),
])
def test_compare_models_errors(asah, mutate, match):
    with pytest.raises(ValueError, match=match):
        compare_models(mutate(long_predictions(asah)))


def test_compare_models_bad_options(asah):
    with pytest.raises(ValueError, match=r"Unknown set 'external'. Available: \['test'\]"):
        compare_models(long_predictions(asah), set_name="external")
    with pytest.raises(ValueError, match="Unknown adjust method 'fdr'"):
        compare_models(long_predictions(asah), adjust="fdr")


def test_stats_imports_only_numpy_scipy_pandas_statsmodels():
    """Static check of every import in medlib/stats (torch must never be among them)."""
    import ast
    import sys
    from pathlib import Path

    import medlib.stats

    allowed = {"numpy", "scipy", "pandas", "statsmodels", "medlib", "__future__"}
    for path in Path(medlib.stats.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                top = name.split(".")[0]
                assert top in allowed or top in sys.stdlib_module_names, f"{path.name} imports {name}"
