"""medlib.stats.dca: net benefit equal to R dcurves at every threshold of the reference files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medlib.stats import decision_curve, net_benefit
from medlib.stats.dca import DEFAULT_THRESHOLDS


@pytest.mark.parametrize("filename", ["r_case1_results.csv", "r_dca_famhistory.csv"])
def test_famhistory_and_treat_all_match_r_dcurves(reference_dir, dcurves_df, filename):
    ref = pd.read_csv(reference_dir / "dcurves" / filename)
    model, treat_all, none = (ref[ref["variable"] == v].reset_index(drop=True) for v in ("famhistory", "all", "none"))
    assert len(model) == 100
    ours = net_benefit(dcurves_df["cancer"].astype(int), dcurves_df["famhistory"], model["threshold"])
    np.testing.assert_allclose(ours["threshold"], treat_all["threshold"])
    np.testing.assert_allclose(ours["net_benefit_model"], model["net_benefit"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours["net_benefit_all"], treat_all["net_benefit"], rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(ours["net_benefit_none"], none["net_benefit"])


def test_readme_values(dcurves_df):
    nb = net_benefit(dcurves_df["cancer"].astype(int), dcurves_df["famhistory"], [0.10])
    assert nb.loc[0, "net_benefit_model"] == pytest.approx(0.0185185185, abs=1e-10)
    assert nb.loc[0, "net_benefit_all"] == pytest.approx(0.0444444444, abs=1e-10)


@pytest.mark.parametrize("threshold, model_nb", [
    (0.0, 0.4),      # probs 0 are not > 0; TP 2/5, FP 1/5 costs nothing at odds 0
    (0.5, 0.2),      # prob equal to the threshold is NOT positive (dcurves convention): TP 1/5
    (0.25, 0.4 - 0.2 / 3),
])
def test_strictly_greater_convention(threshold, model_nb):
    nb = net_benefit([1, 1, 0, 0, 0], [0.9, 0.5, 0.3, 0.0, 0.0], [threshold])
    assert nb.loc[0, "net_benefit_model"] == pytest.approx(model_nb)
    assert nb.loc[0, "net_benefit_all"] == pytest.approx(0.4 - 0.6 * threshold / (1 - threshold))


def test_default_thresholds_are_dcurves_grid():
    assert DEFAULT_THRESHOLDS[0] == 0.0 and DEFAULT_THRESHOLDS[-1] == 0.99 and len(DEFAULT_THRESHOLDS) == 100


def test_decision_curve_long_table(dcurves_df):
    n = len(dcurves_df)
    preds = pd.concat([pd.DataFrame({"case_id": dcurves_df["patientid"], "patient_id": dcurves_df["patientid"],
                                     "model": m, "set": "test", "y_true": dcurves_df["cancer"].astype(int),
                                     "score": dcurves_df[m]}) for m in ("famhistory", "cancerpredmarker")])
    out = decision_curve(preds, [0.1, 0.2])
    assert list(out.columns) == ["set", "model", "n", "threshold", "net_benefit_model", "net_benefit_all",
                                 "net_benefit_none"]
    assert out["model"].tolist() == ["famhistory"] * 2 + ["cancerpredmarker"] * 2 and (out["n"] == n).all()
    assert out.loc[0, "net_benefit_model"] == pytest.approx(0.0185185185, abs=1e-10)
    with pytest.raises(ValueError, match=r"Unknown set 'val'. Available: \['test'\]"):
        decision_curve(preds, set_name="val")


@pytest.mark.parametrize("y, p, thresholds, match", [
    ([0, 1], [0.2, 0.8], [0.5, 1.0], r"thresholds must be probabilities in \[0, 1\); 1 value\(s\) are not"),
    ([0, 1], [0.2, 0.8], [-0.1, np.nan], r"2 value\(s\) are not"),
    ([0, 1], [0.2, 1.8], [0.5], r"y_prob must be probabilities in \[0, 1\]; 1 value\(s\) lie outside"),
    ([0, 1, 1], [0.2, 0.8], [0.5], "got 3 and 2"),
    ([0, 2], [0.2, 0.8], [0.5], r"got values \[0, 2\]"),
])
def test_net_benefit_errors(y, p, thresholds, match):
    with pytest.raises(ValueError, match=match):
        net_benefit(y, p, thresholds)


def test_treat_all_uses_every_case_of_the_set_not_one_models(dcurves_df):
    """Two models scored different halves of the set: treat-all is dcurves' value on all cases (R reference)."""
    n = len(dcurves_df)
    preds = pd.DataFrame({"case_id": np.r_[np.arange(n // 2), np.arange(n // 2, n)],
                          "patient_id": np.arange(n), "model": ["a"] * (n // 2) + ["b"] * (n - n // 2),
                          "set": "test", "y_true": dcurves_df["cancer"].astype(int),
                          "score": dcurves_df["cancerpredmarker"]})
    out = decision_curve(preds, [0.1])
    expected = net_benefit(dcurves_df["cancer"].astype(int), dcurves_df["cancerpredmarker"], [0.1])
    np.testing.assert_allclose(out["net_benefit_all"], expected.loc[0, "net_benefit_all"], rtol=1e-12)
    assert expected.loc[0, "net_benefit_all"] == pytest.approx(0.0444444444, abs=1e-10)  # R dcurves at 0.10


def test_net_benefit_band_contains_dcurves_value_and_widens_with_fewer_cases(dcurves_df):
    from medlib.stats import net_benefit_band

    y, p = dcurves_df["cancer"].astype(int).to_numpy(), dcurves_df["cancerpredmarker"].to_numpy()
    band = net_benefit_band(y, p, [0.05, 0.1, 0.2], n_boot=300)
    ref = net_benefit(y, p, [0.05, 0.1, 0.2])
    np.testing.assert_allclose(band["net_benefit_model"], ref["net_benefit_model"])
    assert ((band["lo"] <= band["net_benefit_model"]) & (band["net_benefit_model"] <= band["hi"])).all()
    small = net_benefit_band(y[:150], p[:150], [0.05, 0.1, 0.2], n_boot=300)
    assert ((small["hi"] - small["lo"]) > (band["hi"] - band["lo"])).all()
