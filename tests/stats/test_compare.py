"""medlib.stats.compare: pairwise paired DeLong tests between models, Holm/Bonferroni adjustment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medlib.stats import adjust_pvalues, compare_models

REL = 1e-9
MARKERS = ("wfns", "s100b", "ndka")


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
