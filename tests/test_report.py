"""Report tables: formats, frozen thresholds, performance/DeLong/calibration tables, reference comparison,
cohort tables, the CLAIM 2024 checklist and the provenance table (medlib.report.format, tables, reference,
checklist)."""

from __future__ import annotations

import getpass
import math
import re
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medlib.pipelines.record import freeze_thresholds
from medlib.config import ThresholdConfig
from medlib.report import checklist, checklist_answers, reference
from medlib.report import format as fmt
from medlib.report import tables as report
from medlib.report.checklist import AUTHOR, claim_checklist
from medlib.report.format import NOT_RECORDED, fmt_estimate, fmt_p, join_words, plural
from medlib.report.reference import parse_reference_key, reference_comparison
from medlib.report.tables import (
    cohort_flow,
    delong_table,
    method_note,
    performance_table,
    performance_values,
    provenance_table,
    split_summary,
)
from medlib.stats import Estimate, Threshold, UndefinedMetricWarning, auc_ci, calibration, choose_threshold

CI = re.compile(r"^\d\.\d{3} \(\d\.\d{3}–\d\.\d{3}\)$")
MODELS = ("ResNet18", "DenseNet121", "Both views")


def make_predictions(seed: int = 0, sets=(("train", 30), ("val", 40), ("test", 40), ("external", 30))) -> pd.DataFrame:
    """Three models of decreasing skill scoring the same cases; scores are probabilities."""
    rng = np.random.default_rng(seed)
    rows = []
    for set_name, n in sets:
        y = np.r_[np.ones(n // 2, int), np.zeros(n - n // 2, int)]
        for model, skill in zip(MODELS, (2.0, 1.0, 0.3)):
            score = 1 / (1 + np.exp(-(skill * (2 * y - 1) + rng.normal(0, 1, n))))
            rows += [{"case_id": f"{set_name}-{i:03d}", "patient_id": f"P{set_name}{i // 2}", "model": model,
                      "set": set_name, "y_true": int(y[i]), "score": float(score[i])} for i in range(n)]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def predictions() -> pd.DataFrame:
    return make_predictions()


@pytest.fixture(scope="module")
def thresholds(predictions) -> dict:
    return freeze_thresholds(predictions, ThresholdConfig())


@pytest.fixture(scope="module")
def performance(predictions, thresholds) -> pd.DataFrame:
    return performance_table(predictions, thresholds)


@pytest.fixture(scope="module")
def values(predictions, thresholds) -> pd.DataFrame:
    return performance_values(predictions, thresholds)


# ------------------------------------------------------------------------------------------- formatting


@pytest.mark.parametrize("est, digits, expected", [
    (Estimate(0.8421, 0.7712, 0.8969, "DeLong"), 3, "0.842 (0.771–0.897)"),
    ((0.8421, 0.7712, 0.8969), 2, "0.84 (0.77–0.90)"),
    ((1.0, 1.0, 1.0), 3, "1.000 (1.000–1.000)"),
    ((-0.052, -0.12, 0.016), 3, "-0.052 (-0.120 to 0.016)"),
    ((0.05, 0.01, 0.09), 3, "0.050 (0.010–0.090)"),
    ((math.nan, math.nan, math.nan), 3, "NA"),
    ((0.5, math.nan, math.nan), 3, "0.500 (NA)"),
])
def test_fmt_estimate(est, digits, expected):
    assert fmt_estimate(est, digits) == expected


@pytest.mark.parametrize("p, expected", [
    (0.0271, "0.027"), (0.00001, "<0.001"), (0.000999, "<0.001"), (0.001, "0.001"), (0.5, "0.500"),
    (1.0, "1.000"), (math.nan, "NA"), (None, "NA"),
])
def test_fmt_p(p, expected):
    assert fmt_p(p) == expected


def test_fmt_p_digits():
    assert fmt_p(0.00004, digits=4) == "<0.0001"


@pytest.mark.parametrize("n, noun, kwargs, expected", [
    (1, "parameter", {}, "1 parameter"), (0, "case", {}, "0 cases"), (2, "patient", {}, "2 patients"),
    (11177538, "parameter", {"thousands": True}, "11,177,538 parameters"), (1, "epoch", {"thousands": True}, "1 epoch"),
    (3, "analysis", {"plural_form": "analyses"}, "3 analyses"),
])
def test_plural(n, noun, kwargs, expected):
    assert plural(n, noun, **kwargs) == expected


@pytest.mark.parametrize("words, expected", [([], ""), (["a"], "a"), (["a", "b"], "a and b"),
                                             (["a", "b", "c"], "a, b and c")])
def test_join_words(words, expected):
    assert join_words(words) == expected


def test_set_labels_come_from_the_schema():
    from medlib.schema import set_label

    assert fmt.set_label is set_label and report.set_label is set_label


# ------------------------------------------------------------------------------------------- thresholds


def test_freeze_thresholds_on_validation(predictions, thresholds):
    assert list(thresholds) == list(MODELS)
    for model, t in thresholds.items():
        val = predictions[(predictions["model"] == model) & (predictions["set"] == "val")]
        expected = choose_threshold(val["y_true"], val["score"], method="youden")
        assert (t.value, t.method, t.target, t.chosen_on) == (expected.value, "youden", None, "val")


def test_freeze_thresholds_from_mapping_and_other_set(predictions):
    fixed = freeze_thresholds(predictions, {"method": "fixed", "target": 0.5})
    assert {t.value for t in fixed.values()} == {0.5}
    on_train = freeze_thresholds(predictions, {"method": "sensitivity", "target": 0.9}, on_set="train")
    model = predictions[(predictions["model"] == "ResNet18") & (predictions["set"] == "train")]
    expected = choose_threshold(model["y_true"], model["score"], method="sensitivity", target=0.9)
    assert (on_train["ResNet18"].value, on_train["ResNet18"].chosen_on) == (expected.value, "train")


def test_freeze_thresholds_names_model_without_validation(predictions):
    extra = predictions[predictions["model"] == "ResNet18"].assign(model="ViT")
    extra = extra[extra["set"] != "val"]
    with pytest.raises(ValueError, match=r"model 'ViT' has no rows in set 'val'.*\['external', 'test', 'train'\]"):
        freeze_thresholds(pd.concat([predictions, extra]), ThresholdConfig())


def test_freeze_thresholds_checks(predictions):
    with pytest.raises(ValueError, match=r"missing column\(s\) \['score'\]"):
        freeze_thresholds(predictions.drop(columns="score"), ThresholdConfig())
    with pytest.raises(TypeError, match="threshold must be a ThresholdConfig"):
        freeze_thresholds(predictions, "youden")


# ----------------------------------------------------------------------------------------- performance


def test_performance_table_layout(predictions, thresholds, performance):
    assert list(performance.columns) == ["Model", "Set", "n (pos.)", "AUC (95% CI)", "Accuracy",
                                         "Sensitivity", "Specificity", "Precision", "NPV", "F1", "Threshold"]
    assert len(performance) == 3 * 3  # models x (val, test, external); train is not reported by default
    assert performance["Set"].unique().tolist() == ["Validation (tuning set)", "Test", "External test"]
    for col in ["AUC (95% CI)", "Accuracy", "Sensitivity", "Specificity", "Precision", "NPV", "F1"]:
        assert performance[col].str.match(CI).all(), performance[col].tolist()
    assert performance.loc[performance["Set"] == "Test", "n (pos.)"].tolist() == ["40 (20), 20 patients"] * 3


def test_performance_table_values_match_stats(predictions, thresholds, performance):
    test = predictions[(predictions["model"] == "DenseNet121") & (predictions["set"] == "test")]
    row = performance[(performance["Model"] == "DenseNet121") & (performance["Set"] == "Test")].iloc[0]
    # two cases per patient: Obuchowski's clustered variance, logit scale
    assert row["AUC (95% CI)"] == fmt_estimate(auc_ci(test["y_true"], test["score"], groups=test["patient_id"]))
    pred = test["score"] >= thresholds["DenseNet121"].value
    sens = (pred & (test["y_true"] == 1)).sum() / (test["y_true"] == 1).sum()
    assert row["Sensitivity"].startswith(f"{sens:.3f} (")
    assert row["Threshold"] == f"{thresholds['DenseNet121'].value:.3f}"


def test_threshold_set_is_marked_as_same_data(performance, thresholds):
    assert set(performance["Set"]) == {"Validation (tuning set)", "Test", "External test"}
    assert "it is a tuning set, and its numbers are optimistic" in method_note(thresholds, sets=("val", "test"))
    assert performance.groupby("Model")["Threshold"].nunique().eq(1).all()  # one frozen threshold per model


def test_performance_values_are_the_numbers_of_the_table(predictions, thresholds, performance, values):
    before = predictions.copy()
    assert list(values.columns) == ["model", "set", "n", "positives", "patients", "tuning", "threshold", "metric",
                                    "value", "lo", "hi", "method"]
    assert values.loc[values["set"] == "val", "tuning"].all() and not values.loc[values["set"] == "test", "tuning"].any()
    assert set(values["metric"]) == set(report.METRICS) and len(values) == 9 * 7
    assert performance.attrs == {}  # no numbers travel in DataFrame.attrs
    auc = values.set_index(["model", "set", "metric"]).loc[("ResNet18", "test", "auc")]
    row = performance[(performance["Model"] == "ResNet18") & (performance["Set"] == "Test")].iloc[0]
    assert row["AUC (95% CI)"] == fmt_estimate((auc["value"], auc["lo"], auc["hi"]))
    performance_table(predictions, thresholds, sets=("test",))
    performance_values(predictions, thresholds, sets=("test",))
    pd.testing.assert_frame_equal(predictions, before)


def test_pipeline_thresholds_give_the_same_tables(predictions, thresholds, performance, values):
    """The pipeline freezes ``medlib.schema.FrozenThreshold`` records; the tables read them like stats' Threshold."""
    from medlib.schema import FrozenThreshold

    frozen = {m: FrozenThreshold(value=t.value, method=t.method, target=t.target, chosen_on="val")
              for m, t in thresholds.items()}
    pd.testing.assert_frame_equal(performance_values(predictions, frozen), values)
    pd.testing.assert_frame_equal(performance_table(predictions, frozen), performance)
    assert method_note(frozen, sets=("val", "test")) == method_note(thresholds, sets=("val", "test"))


def test_performance_table_options(predictions, thresholds):
    table = performance_table(predictions, thresholds, sets=("test", "nonexistent"), level=0.9, digits=2)
    assert len(table) == 3 and "AUC (90% CI)" in table.columns
    assert table["Accuracy"].str.match(r"^\d\.\d{2} \(\d\.\d{2}–\d\.\d{2}\)$").all()
    with pytest.raises(KeyError, match="no threshold for model 'DenseNet121'"):
        performance_table(predictions, {"ResNet18": thresholds["ResNet18"]})


def test_undefined_threshold_gives_na(predictions):
    one_class = predictions[~((predictions["set"] == "val") & (predictions["y_true"] == 1))]
    with pytest.warns(UndefinedMetricWarning):
        th = freeze_thresholds(one_class, ThresholdConfig())
    assert all(math.isnan(t.value) for t in th.values())
    table = performance_table(one_class, th, sets=("test",))
    assert (table["Accuracy"] == "NA").all() and table["AUC (95% CI)"].str.match(CI).all()
    assert (table["Threshold"] == "NA").all()
    assert "undefined for ResNet18, DenseNet121, Both views" in method_note(th)


def test_golden_auc_ci_against_proc(reference_dir):
    """pROC: s100b AUC 0.7314, DeLong 95% CI 0.6301-0.8326; wfns vs s100b Z 2.209, p 0.0272."""
    asah = pd.read_csv(reference_dir / "proc" / "asah.csv")
    asah["y"] = (asah["outcome"] == "Poor").astype(int)
    rows = [pd.DataFrame({"case_id": asah["rowname"].astype(str), "patient_id": asah["rowname"].astype(str),
                          "model": m, "set": "test", "y_true": asah["y"], "score": asah[m]}) for m in ("wfns", "s100b")]
    preds = pd.concat(rows, ignore_index=True)
    fixed = {"wfns": Threshold(2.5, "fixed", 2.5, ""), "s100b": Threshold(0.2, "fixed", 0.2, "")}
    table = performance_table(preds, fixed, sets=("test",)).set_index("Model")
    # the report's interval: pROC's DeLong variance 0.00266868 on the logit scale (by hand: 0.619-0.820);
    # pROC's own Wald interval (0.630-0.833) stays available as auc_ci(..., transform="none")
    a, var = 0.731368563685637, 0.00266868245717244
    half = 1.959963984540054 * math.sqrt(var) / (a * (1 - a))
    lo, hi = (1 / (1 + math.exp(-(math.log(a / (1 - a)) + d))) for d in (-half, half))
    assert table.loc["s100b", "AUC (95% CI)"] == f"0.731 ({lo:.3f}–{hi:.3f})" == "0.731 (0.619–0.820)"
    proc = auc_ci(asah["y"], asah["s100b"], transform="none")
    assert fmt_estimate(proc) == "0.731 (0.630–0.833)"
    assert table.loc["s100b", "n (pos.)"] == "113 (41)"
    row = delong_table(preds, set_name="test").iloc[0]
    assert (row["Model A"], row["Model B"], row["Z"], row["p"]) == ("wfns", "s100b", "2.21", "0.027")
    assert row["ΔAUC (95% CI)"] == "0.092 (0.010–0.174)"


# ------------------------------------------------------------------------------------------ method note


def test_method_note_names_every_method(thresholds):
    note = method_note(thresholds, sets=("val", "test", "external"), predictions=make_predictions())
    assert note == ("AUC with 95% CI from Obuchowski's clustered DeLong variance (patients as clusters), logit "
                    "scale; accuracy, sensitivity, specificity, precision (PPV), NPV and F1 with stratified "
                    "bootstrap percentile 95% CI, 1000 replicates resampling patients (a patient contributes "
                    "several cases); on every replicate the threshold is chosen again on a bootstrap replicate of "
                    "the validation set, so the intervals carry the threshold's uncertainty; threshold: Youden "
                    "index on the validation set, frozen for the test and external sets. The validation set chose "
                    "the threshold (and the training epoch): it is a tuning set, and its numbers are optimistic.")
    unclustered = make_predictions().assign(patient_id=lambda d: d["case_id"])
    assert method_note(thresholds, predictions=unclustered).startswith(
        "AUC with DeLong 95% CI on the logit scale; accuracy")
    assert "resampling cases;" in method_note(thresholds, predictions=unclustered)
    assert "Youden index on the validation set, frozen for the other sets." in method_note(thresholds)


def test_method_note_mixed_thresholds():
    th = {"A": Threshold(0.3, "sensitivity", 0.9, ""), "B": Threshold(0.5, "fixed", 0.5, ""),
          "C": Threshold(0.4, "sensitivity", 0.9, "")}
    note = method_note(th, level=0.9, sets=("test",))
    assert "DeLong 90% CI" in note and "bootstrap percentile 90% CI" in note
    assert ("threshold: A, C: highest threshold reaching sensitivity ≥ 0.9 on the validation set, frozen for "
            "the test set; B: fixed at 0.5, set in advance.") in note


# ------------------------------------------------------------------------------------- DeLong, calibration


def test_delong_table(predictions):
    table = delong_table(predictions, set_name="test")
    assert list(table.columns) == ["Model A", "Model B", "n", "AUC A", "AUC B", "ΔAUC (95% CI)", "Z", "p",
                                   "Adjusted p (Holm)"]
    assert table[["Model A", "Model B"]].values.tolist() == [["ResNet18", "DenseNet121"],
                                                            ["ResNet18", "Both views"],
                                                            ["DenseNet121", "Both views"]]
    assert table["p"].str.match(r"^(<0\.001|\d\.\d{3})$").all()
    assert table["AUC A"].str.match(r"^\d\.\d{3}$").all() and (table["n"] == 40).all()
    assert list(delong_table(predictions, set_name="test", adjust=None).columns)[-1] == "Adjusted p (none)"


def test_delong_table_edge_cases(predictions):
    one = delong_table(predictions[predictions["model"] == "ResNet18"], set_name="test")
    assert one.empty and "ΔAUC (95% CI)" in one.columns
    with pytest.raises(ValueError, match="Unknown set 'tset'"):
        delong_table(predictions, set_name="tset")


def test_calibration_table(predictions):
    table = report.calibration_table(predictions, set_name="test")
    assert list(table.columns) == ["Model", "n", "Intercept (95% CI)", "Slope (95% CI)", "Brier (95% CI)",
                                   "ICI (95% CI)", "ECE (95% CI)"]
    sub = predictions[(predictions["model"] == "Both views") & (predictions["set"] == "test")]
    cal = calibration(sub["y_true"], sub["score"])
    row = table.set_index("Model").loc["Both views"]
    assert row["Brier (95% CI)"].startswith(f"{cal.brier:.3f} (")
    assert row["Slope (95% CI)"].startswith(f"{cal.slope:.3f} (")  # two cases per patient: patient bootstrap


def test_calibration_table_names_bad_model(predictions):
    bad = predictions.copy()
    bad.loc[bad["model"] == "DenseNet121", "score"] *= 10
    with pytest.raises(ValueError, match="model 'DenseNet121' on set 'test'"):
        report.calibration_table(bad, set_name="test")
    with pytest.raises(ValueError, match="Unknown set 'x'"):
        report.calibration_table(predictions, set_name="x")


# --------------------------------------------------------------------------------- reference comparison


@pytest.mark.parametrize("key, expected", [
    ("ResNet18.accuracy", ("ResNet18", "accuracy", None)),
    ("Both views.auc", ("Both views", "auc", None)),
    ("Fused.test_auc", ("Fused", "auc", "test")),
    ("Deep.train_auc", ("Deep", "auc", "train")),
    ("ResNet-18 (28).recall", ("ResNet-18 (28)", "sensitivity", None)),
    ("v1.2.external_PPV", ("v1.2", "precision", "external")),
])
def test_parse_reference_key(key, expected):
    k = parse_reference_key(key)
    assert (k.model, k.metric, k.set) == expected


@pytest.mark.parametrize("key, message", [
    ("accuracy", "must look like '<model label>.<metric>'"),
    ("ResNet18.kappa", "unknown metric 'kappa'"),
])
def test_parse_reference_key_errors(key, message):
    with pytest.raises(KeyError, match=message):
        parse_reference_key(key)


def test_reference_comparison(values):
    ref = {"ResNet18.accuracy": 0.919, "Both views.external_auc": 0.78, "Fused.train_auc": 0.968}
    table = reference_comparison(values, ref)
    assert list(table.columns) == ["Model", "Set", "Metric", "Reference", "This run (95% CI)", "Difference",
                                   "Reference in CI"]
    acc = values.set_index(["model", "set", "metric"]).loc[("ResNet18", "test", "accuracy")]
    first = table.iloc[0]
    assert (first["Set"], first["Metric"], first["Reference"]) == ("Test", "Accuracy", "0.919")
    assert first["This run (95% CI)"] == fmt_estimate((acc["value"], acc["lo"], acc["hi"]))
    assert first["Difference"] == f"{acc['value'] - 0.919:+.3f}"
    assert first["Reference in CI"] == ("yes" if acc["lo"] <= 0.919 <= acc["hi"] else "no")
    assert table.iloc[1]["Set"] == "External test"
    assert table.iloc[2][["This run (95% CI)", "Difference"]].tolist() == ["not in this run", ""]


def test_reference_comparison_needs_the_numbers(performance, values):
    """The display table is refused (its strings are never parsed back); the numbers come from performance_values."""
    ref = {"ResNet18.accuracy": 0.919, "DenseNet121.auc": 0.5}
    with pytest.raises(ValueError, match=r"numeric long table from performance_values.*missing column\(s\) "
                                         r"\['model', 'set', 'metric', 'value', 'lo', 'hi'\]"):
        reference_comparison(performance, ref)
    with pytest.raises(TypeError, match="values must be the DataFrame from performance_values; got list"):
        reference_comparison(values.to_dict("records"), ref)
    reread = pd.DataFrame(values.to_dict("records"))  # e.g. metrics.json read back: the same numbers
    pd.testing.assert_frame_equal(reference_comparison(reread, ref), reference_comparison(values, ref))
    table = reference_comparison(values, ref, level=0.9, digits=2)
    assert "This run (90% CI)" in table.columns and table.iloc[0]["Reference"] == "0.92"


def test_reference_comparison_empty(values):
    assert reference_comparison(values, {}).empty
    assert reference_comparison(values.iloc[:0], {"ResNet18.auc": 0.9}).iloc[0]["This run (95% CI)"] == (
        "not in this run")


# ---------------------------------------------------------------------------------------- cohort tables


def split_table() -> pd.DataFrame:
    return pd.DataFrame({"case_id": [f"c{i}" for i in range(10)],
                         "patient_id": ["p0", "p0", "p1", "p2", "p3", "p4", "p4", "p5", "p6", "p7"],
                         "y": [1, 1, 0, 0, 1, 0, 0, 1, 0, 0],
                         "set": ["train"] * 4 + ["val"] * 3 + ["test"] * 3})


def test_split_summary():
    table = split_summary(split_table())
    assert table.to_dict("records") == [
        {"Set": "Training", "Cases": 4, "Patients": 3, "Positive (%)": "2 (50.0%)"},
        {"Set": "Validation", "Cases": 3, "Patients": 2, "Positive (%)": "1 (33.3%)"},
        {"Set": "Test", "Cases": 3, "Patients": 3, "Positive (%)": "1 (33.3%)"},
        {"Set": "Total", "Cases": 10, "Patients": 8, "Positive (%)": "4 (40.0%)"},
    ]


def test_split_summary_takes_y_from_cohort():
    split = split_table()
    from_cohort = split_summary(split.drop(columns="y"), split[["case_id", "y"]])
    pd.testing.assert_frame_equal(from_cohort, split_summary(split))
    with pytest.raises(ValueError, match="split has no 'y' column"):
        split_summary(split.drop(columns="y"))


def test_cohort_flow():
    split = split_table()
    excluded = pd.DataFrame({"case_id": ["x1", "x2", "x3"], "patient_id": ["q1", "q1", "q2"],
                             "reason": ["missing frog-leg view", "missing frog-leg view", "unreadable DICOM"]})
    table = cohort_flow(split, excluded=excluded)
    assert table.values.tolist() == [
        ["Assessed for eligibility", "13", ""], ["Excluded: missing frog-leg view", "2", "1"],
        ["Excluded: unreadable DICOM", "1", "1"], ["Included", "10", "8"], ["Training set", "4", "3"],
        ["Validation set", "3", "2"], ["Test set", "3", "3"]]
    simple = cohort_flow(split.drop(columns="set"), excluded={"no label": 2})
    assert simple["Step"].tolist() == ["Assessed for eligibility", "Excluded: no label", "Included"]
    assert simple["Cases"].tolist() == ["12", "2", "10"]


# ---------------------------------------------------------------------------------------- CLAIM 2024

SECTIONS = ["tbl-cohort", "tbl-table1-set", "tbl-table1-outcome", "fig-examples", "fig-learning", "tbl-performance",
            "fig-roc", "tbl-delong", "fig-calibration", "tbl-calibration", "fig-dca", "fig-confusion", "fig-cam",
            "tbl-cam-sanity", "tbl-reference", "tbl-claim", "tbl-provenance"]


def fake_run(partitions=True) -> dict:
    parts = [{"set": "train", "cases": 184, "patients": 180, "positives": 66},
             {"set": "val", "cases": 79, "patients": 77, "positives": 28},
             {"set": "test", "cases": 40, "patients": 40, "positives": 14}]
    return {
        "study": "nec", "title": "NEC: surgery or not", "manifest": "data/nec/manifest.csv",
        "intervals": {"auc": "DeLong", "accuracy": "Wilson", "f1": "stratified bootstrap"},
        "image_columns": ["image"], "positive": "surgery", "negative": "no surgery", "n_cases": 303,
        "n_patients": 297, "partitions": parts if partitions else [],
        "split": "Random split by patient (patient_id), stratified by outcome, ratios 0.7:0.3 (train/val), seed 0.",
        "split_hash": "0123456789abcdef" * 4,
        "preprocessing": {"size": [224, 224], "window": None, "normalize": "zscore"},
        "models": [{"name": "resnet18", "label": "ResNet18", "parameters": 11177538, "pretrained": True,
                    "inputs": ["image"]},
                   {"name": "densenet121", "label": "DenseNet121", "parameters": 6955906, "pretrained": False,
                    "inputs": ["image"]}],
        "training": {"optimizer": "adam", "lr": 0.002, "epochs": 30, "batch_size": 32, "loss": "ce+focal",
                     "patience": 10, "augment": True, "seed": 0},
        "thresholds": {"ResNet18": {"value": 0.4312, "method": "youden"},
                       "DenseNet121": {"value": 0.5, "method": "youden"}},
        "threshold_method": "youden",
        "explainability": "Grad-CAM (pytorch-grad-cam) with a randomised-weights sanity check",
        "provenance": {"medlib": "0.1.0", "python": "3.11.7", "packages": {"torch": "2.5.0", "monai": "not installed"},
                       "git_commit": "f" * 40, "cohort_hash": "c" * 64},
        "sections": list(SECTIONS),
    }


def sparse_run() -> dict:
    """A run summary missing values inside its sections: every gap must be said, never a "?"."""
    run = fake_run()
    run["partitions"] = [{"set": "train", "cases": 184}, {"set": "test", "patients": 40}]
    run.pop("n_patients"), run.pop("negative")
    run["preprocessing"] = {"size": None, "window": [40, 80], "normalize": None}
    run["models"] = [{"label": "ResNet18"}, {"name": "densenet121", "parameters": None, "pretrained": None}]
    run["training"] = {"optimizer": None, "lr": None, "epochs": 30, "seed": None}
    run["thresholds"] = {"ResNet18": {"value": math.nan}, "DenseNet121": None}
    run["provenance"] = {}
    return run


def feature_run() -> dict:
    """A feature-design summary (radiomics + LASSO/SVM): no epochs, no image size."""
    run = fake_run()
    run["preprocessing"] = {"bin_width": 25, "resample_mm": [1.0, 1.0, 1.0], "deep_window": [40, 80], "deep_size": 224}
    run["models"] = [{"name": "LASSO (L1 logistic, CV) + SVM", "label": name, "parameters": n, "inputs": [name]}
                     for name, n in (("Radiomics", 1), ("Deep", 12), ("Fused", 9))]
    run["training"] = {"optimizer": "liblinear (LASSO) / libsvm (SVM)", "seed": 0,
                       "feature_classes": ["firstorder", "glcm"], "habitats": 3}
    run["sections"] = ["tbl-cohort", "tbl-features", "fig-habitats", "tbl-selected", "tbl-performance", "fig-roc",
                       "tbl-delong", "fig-calibration", "tbl-calibration", "fig-dca", "fig-confusion", "tbl-provenance"]
    run["not_applicable"] = {"initialisation": "LASSO and SVM are fitted to the features; no weights are initialised"}
    return run


def test_claim_checklist_has_44_items():
    table = claim_checklist(fake_run())
    assert list(table.columns) == ["item", "section", "topic", "where", "value"]
    assert table["item"].tolist() == list(range(1, 45))
    sections = table["section"].str.split(":").str[0].unique().tolist()
    assert sections == ["Title/Abstract", "Introduction", "Methods", "Results", "Discussion", "Other information"]
    assert (table["value"] != "").all() and (table["topic"] != "").all()


def test_claim_checklist_fills_from_run():
    v = claim_checklist(fake_run()).set_index("item")["value"]
    assert v[1] == "Models compared: ResNet18, DenseNet121"
    assert v[6] == "Model development and comparison of 2 models, with internal testing"
    assert "Training 184 cases / 180 patients, 66 positive (35.9%)" in v[19]
    assert "Test 40 cases / 40 patients" in v[19] and "Random split by patient" in v[19] and ".;" not in v[19]
    assert v[37] == ("All models on the validation and test sets with 95% CIs; ROC curves, paired DeLong tests, "
                     "calibration and decision curves")
    assert v[20].startswith("Patient level") and "0123456789ab" in v[20]
    assert v[9] == "Resized to 224×224; header VOI window or none; intensity normalisation zscore"
    assert "ResNet18 (registry name resnet18; 11,177,538 parameters; inputs: image)" in v[22]
    assert "torch 2.5.0" in v[23] and "monai" not in v[23]
    assert v[24] == "ResNet18: ImageNet-pretrained weights; DenseNet121: random initialisation (seed 0)"
    assert v[25] == ("Optimizer adam, learning rate 0.002, up to 30 epochs, batch size 32, loss ce+focal, "
                     "augmentation on, seed 0; 2 models trained, one per configuration")
    assert v[26] == "Weights of the epoch with the highest validation AUC (early stopping, patience 10 epochs)"
    assert "AUC" in v[28] and "Brier" in v[28] and "net benefit" in v[28]
    assert "DeLong" in v[29] and "Wilson" in v[29] and "Holm" in v[29]
    assert v[31].startswith("Grad-CAM")
    assert v[33] == "No external test set in this run"
    assert v[36] == "Baseline characteristics by set and by outcome (Table 1)"
    assert "ResNet18 0.431 (youden)" in v[38]
    assert v[39] == "Grad-CAM of true/false positive and negative cases, confusion matrices"
    assert "data/nec/manifest.csv" in v[7] and "cccccccccccc" in v[7]
    assert "f" * 40 in v[43]


def test_claim_checklist_leaves_unknowable_items_to_author():
    table = claim_checklist(fake_run()).set_index("item")
    for item in (2, 3, 4, 5, 10, 13, 15, 16, 17, 18, 30, 34, 40, 41, 44):
        assert table.loc[item, "value"] == AUTHOR, item
        assert table.loc[item, "where"] == "manuscript"
    assert table.loc[28, "where"] == "@tbl-performance, @tbl-calibration, @fig-dca"
    empty = claim_checklist({"sections": []})
    assert len(empty) == 44 and (empty["value"].str.startswith(AUTHOR)).sum() > 25


def test_claim_checklist_points_only_at_the_runs_sections():
    run = {**fake_run(), "sections": ["tbl-cohort", "tbl-performance", "@tbl-provenance"]}
    table = claim_checklist(run).set_index("item")
    assert table.loc[36, "value"] == AUTHOR  # no Table 1 in this report
    assert table.loc[37, "where"] == "@tbl-performance"
    assert table.loc[37, "value"] == "All models on the validation and test sets with 95% CIs"  # no ROC, no DeLong
    assert "DeLong tests between" not in table.loc[29, "value"] and "Brier" not in table.loc[28, "value"]
    assert table.loc[39, "value"] == AUTHOR  # no Grad-CAM, no confusion matrices
    used = {w for cell in table["where"] for w in cell.split(", ") if w.startswith("@")}
    assert used <= {"@tbl-cohort", "@tbl-performance", "@tbl-provenance"}


def test_claim_checklist_needs_sections():
    run = fake_run()
    del run["sections"]
    with pytest.raises(KeyError, match="the run summary has no 'sections'"):
        claim_checklist(run)
    with pytest.raises(TypeError, match=r"run\['sections'\] must be a list of labels"):
        claim_checklist({**run, "sections": "tbl-performance"})


def test_claim_checklist_external_and_checks():
    run = fake_run()
    run["partitions"] = run["partitions"] + [{"set": "external", "cases": 40, "patients": 38, "positives": 12}]
    v = claim_checklist(run).set_index("item")["value"]
    assert v[33] == "External test set: External test 40 cases / 38 patients, 12 positive (30.0%)"
    assert v[6] == "Model development and comparison of 2 models, with internal and external testing"
    with pytest.raises(TypeError, match="run must be a mapping"):
        claim_checklist(["nec"])
    with pytest.raises(ValueError, match=r"run\['partitions'\]\[0\] must be a mapping with 'set'"):
        claim_checklist({**run, "partitions": [{"cases": 3}]})


@pytest.mark.parametrize("make", [fake_run, sparse_run, feature_run, lambda: {"sections": []}])
def test_claim_checklist_never_answers_with_a_question_mark(make):
    assert not claim_checklist(make())["value"].str.contains("?", regex=False).any()


def test_claim_checklist_says_what_was_not_recorded():
    v = claim_checklist(sparse_run()).set_index("item")["value"]
    assert v[8].startswith(f"303 cases (number of patients {NOT_RECORDED})")
    assert v[9] == f"Image size {NOT_RECORDED}; window centre/width 40/80; intensity normalisation {NOT_RECORDED}"
    assert v[14].startswith(f"Outcome: surgery (positive class) vs negative class ({NOT_RECORDED})")
    assert f"Training 184 cases / patients {NOT_RECORDED}" in v[19]
    assert f"Test cases {NOT_RECORDED} / 40 patients" in v[19]
    assert v[22] == (f"ResNet18 (parameters {NOT_RECORDED}); output: probability of the positive class; "
                     f"densenet121 (registry name densenet121; parameters {NOT_RECORDED}); output: probability "
                     "of the positive class")
    assert v[24] == f"ResNet18: initialisation {NOT_RECORDED}; densenet121: initialisation {NOT_RECORDED}"
    assert v[25] == (f"Optimizer {NOT_RECORDED}, learning rate {NOT_RECORDED}, up to 30 epochs, seed {NOT_RECORDED}; "
                     "2 models trained, one per configuration")
    assert v[26] == f"Weights of the epoch with the highest validation AUC (early stopping patience {NOT_RECORDED})"
    assert v[38].endswith(f"ResNet18 NA (method {NOT_RECORDED}); DenseNet121 NA (method {NOT_RECORDED})")
    assert v[42].endswith(f"git commit {NOT_RECORDED}")
    assert v[43].startswith(f"Code: medlib {NOT_RECORDED}, git commit {NOT_RECORDED}")


def test_claim_checklist_uses_the_study_section():
    run = {**fake_run(), "question": "Does the case need surgery?", "population": "Cases seen at one centre.",
           "positive_meaning": "needed surgery", "negative_meaning": "recovered without surgery"}
    v = claim_checklist(run).set_index("item")["value"]
    assert v[4] == f"Question: Does the case need surgery? Hypotheses: {AUTHOR}"
    assert v[8].startswith("Population: Cases seen at one centre. 303 cases from 297 patients;")
    assert v[14] == ("Outcome: surgery (positive class) vs no surgery (surgery: needed surgery; no surgery: "
                     f"recovered without surgery); how it was established: {AUTHOR}")


def test_claim_checklist_singular_and_plural():
    run = fake_run()
    run["models"] = [{"name": "tiny", "label": "Tiny", "parameters": 1, "pretrained": False, "inputs": ["image"]}]
    run["training"] = {**run["training"], "epochs": 1, "patience": 1}
    run["partitions"] = [{"set": "test", "cases": 1, "patients": 1, "positives": 1}]
    run["n_cases"], run["n_patients"] = 1, 1
    v = claim_checklist(run).set_index("item")["value"]
    assert v[1] == "Model evaluated: Tiny"
    assert v[6] == "Development of 1 model, with internal testing"
    assert v[8].startswith("1 case from 1 patient;")
    assert "Tiny (registry name tiny; 1 parameter; inputs: image)" in v[22]
    assert "up to 1 epoch," in v[25] and v[25].endswith("; 1 model trained, one per configuration")
    assert v[26].endswith("(early stopping, patience 1 epoch)")
    assert v[21].startswith("Test 1 case / 1 patient, 1 positive (100.0%)")
    assert v[37].startswith("All models on the test set with 95% CIs")


def test_claim_checklist_training_options():
    run = fake_run()
    run["training"] = {**run["training"], "patience": 0}
    run["models"] = [{**run["models"][0], "pretrained": False, "weights_path": "/weights/resnet_10_23dataset.pth"}]
    v = claim_checklist(run).set_index("item")["value"]
    assert v[26] == "Weights of the epoch with the highest validation AUC (no early stopping)"
    assert v[24] == "ResNet18: weights from resnet_10_23dataset.pth (seed 0)"


def test_claim_checklist_feature_design():
    v = claim_checklist(feature_run()).set_index("item")["value"]
    assert v[9] == "Bin width 25; resample mm 1, 1, 1; deep window 40, 80; deep size 224"
    assert v[22].startswith("Radiomics (registry name LASSO (L1 logistic, CV) + SVM; 1 parameter; inputs: Radiomics)")
    assert v[24] == "not applicable: LASSO and SVM are fitted to the features; no weights are initialised"
    assert v[25] == ("Optimizer liblinear (LASSO) / libsvm (SVM), seed 0, 3 habitat subregions per ROI, feature classes "
                     "firstorder, glcm; 3 models trained, one per configuration")
    assert v[26] == f"Selection of the final model {NOT_RECORDED}"
    assert v[39] == "Confusion matrices"
    table = claim_checklist(feature_run()).set_index("item")
    assert table.loc[31, "where"] == "@tbl-selected, @fig-habitats"


def test_claim_checklist_not_applicable_checks_its_keys():
    run = {**fake_run(), "not_applicable": {"selection": "one fit, no epochs", "sample_size": "pilot study"}}
    v = claim_checklist(run).set_index("item")["value"]
    assert v[26] == "not applicable: one fit, no epochs" and v[21] == "not applicable: pilot study"
    with pytest.raises(KeyError, match=r"unknown checklist answer\(s\) \['patience'\]. Available: \['acquisition'"):
        claim_checklist({**run, "not_applicable": {"patience": "x"}})


# ----------------------------------------------------------------------------------------- provenance


def test_provenance_table():
    prov = {"medlib": "0.1.0", "packages": {"torch": "2.5.0"}, "git_commit": "abc", "git_dirty": False,
            "seeds": {"split": 0}, "durations_s": {"train ResNet18": 12.34, "total": 3725.0}, "cpu_count": 2}
    table = provenance_table(prov)
    assert list(table.columns) == ["Item", "Value"]
    assert table.values.tolist() == [
        ["medlib version", "0.1.0"], ["torch version", "2.5.0"], ["Git commit", "abc"],
        ["Uncommitted changes", "no"], ["Seed (split)", "0"], ["Duration (train ResNet18)", "12.3 s"],
        ["Duration (total)", "1 h 2 min 5 s"], ["CPU count", "2"]]


def test_no_identifiers_leak_into_report_tables(tmp_path):
    from medlib.runs.folder import collect_provenance

    patients = [f"PAT-{i:05d}" for i in range(5)]
    home = str(Path.home())
    prov = collect_provenance(seeds={"split": 0}, cohort_hash="d" * 64, split_hash="e" * 64, device="cpu",
                              durations={"total": 1.0})
    prov_plus = {**prov, "manifest": f"{home}/studies/nec/manifest.csv"}
    text = provenance_table(prov_plus).to_csv() + claim_checklist(
        {**fake_run(), "manifest": f"{home}/data/manifest.csv", "provenance": prov}).to_csv()
    assert not any(p in text for p in patients)
    assert home not in text and "~/studies/nec/manifest.csv" in text
    host, user = socket.gethostname(), getpass.getuser()
    for secret in (host, user):
        if len(secret) >= 4 and secret != "root":
            assert secret not in text


@pytest.mark.parametrize("module", [fmt, report, reference, checklist, checklist_answers])
def test_docstring_examples(module):
    import doctest

    assert doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE).failed == 0


def test_every_claim_filler_exists():
    keys = [it.fill for it in checklist.CLAIM_2024 if it.fill]
    assert len(keys) == len(set(keys)) and set(keys) == set(checklist_answers.ANSWERS)


NOTEBOOK_CALLS = ("calibration_table", "claim_checklist", "delong_table", "method_note",
                  "performance_table", "performance_values", "provenance_table", "reference_comparison",
                  "split_summary")


@pytest.mark.parametrize("name", NOTEBOOK_CALLS)
def test_tables_module_still_reaches_every_notebook_call(name):
    """``from medlib.report import tables as report; report.<fn>`` as the notebooks call it, and the package face."""
    import medlib.report

    assert callable(getattr(report, name)) and getattr(medlib.report, name) is getattr(report, name)


def test_package_face_loads_figures_on_first_use():
    import medlib.report
    from medlib.report import figures

    assert medlib.report.plot_roc is figures.plot_roc and set(medlib.report._FIGURES) <= set(medlib.report.__all__)
    with pytest.raises(AttributeError, match="has no attribute 'plot_everything'"):
        medlib.report.plot_everything  # noqa: B018


STUDY_WORDS = re.compile(r"\bNEC\b|neonat|infant|\bhips?\b|h(a)?ematoma|glioma|seed paper|\bONFH\b|\bICH\b|"
                         r"MedMNIST|femoral|bowel|\bbrain\b", re.I)


@pytest.mark.parametrize("package", ["report", "render"])
def test_no_study_story_in_report_or_render(package):
    """Report and render code is the same for every study: no disease, population or paper named in it."""
    root = Path(__file__).resolve().parents[1] / "medlib" / package
    hits = [f"{path.relative_to(root)}:{n}: {line.strip()}" for path in sorted(root.rglob("*"))
            if path.is_file() and path.suffix in (".py", ".html", ".css", ".typst")
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if STUDY_WORDS.search(line)]
    assert hits == []


# ------------------------------------------------------------- issue 15: clustering, thresholds, recalibration


def _one_row_per_patient(seed: int = 3) -> pd.DataFrame:
    return make_predictions(seed).assign(patient_id=lambda d: d["set"] + d["case_id"])


def test_duplicating_every_patient_narrows_no_interval():
    """Item 4: each patient's rows twice (as two hips) must not narrow any interval of the performance table."""
    once = _one_row_per_patient()
    twice = pd.concat([once, once.assign(case_id=once["case_id"] + "-b")], ignore_index=True)
    th = freeze_thresholds(once, ThresholdConfig())
    a = performance_values(once, th, sets=("val", "test", "external")).set_index(["model", "set", "metric"])
    b = performance_values(twice, th, sets=("val", "test", "external")).set_index(["model", "set", "metric"])
    width_a, width_b = a["hi"] - a["lo"], b["hi"] - b["lo"]
    assert np.allclose(a["value"], b["value"])
    narrower = (width_b < 0.9 * width_a)
    assert not narrower.any(), b[narrower]


def test_threshold_table_and_small_validation_warning(predictions, thresholds):
    table = report.threshold_table(predictions, thresholds, n_boot=200)
    assert list(table.columns) == ["Model", "Rule", "Frozen threshold", "Bootstrap median", "95% range",
                                   "Validation cases (events)"]
    assert (table["Validation cases (events)"] == "40 (20)").all()
    lo, hi = table.iloc[0]["95% range"].split("–")
    assert float(lo) <= float(table.iloc[0]["Frozen threshold"]) <= float(hi)
    assert report.threshold_warnings(predictions, thresholds) == ""
    small = make_predictions(sets=(("val", 14), ("test", 40)))  # 7 events in validation
    th = freeze_thresholds(small, ThresholdConfig())
    assert "only 7 events (fewer than 10)" in report.threshold_warnings(small, th)


def test_bad_sets_get_a_message_not_a_number(predictions, thresholds):
    """Acceptance: no events, one class, or fewer than 5 cases -> a sentence in place of the statistic."""
    tiny = pd.concat([predictions[predictions["set"] != "external"],
                      predictions[predictions["set"] == "external"].groupby("model").head(3)])
    no_events = predictions.copy()
    no_events = no_events[~((no_events["set"] == "external") & (no_events["y_true"] == 1))]
    for preds, words in ((tiny, "fewer than 5 cases (n = 3)"), (no_events, "no events (0 of 15 cases positive)")):
        table = performance_table(preds, thresholds, n_boot=100)
        ext = table[table["Set"] == "External test"]
        assert (ext["AUC (95% CI)"] == f"not estimable: {words}").all()
        assert (ext["Sensitivity"] == "—").all() and not ext.apply(lambda c: c.astype(str).str.contains("nan")).any().any()
        cal = report.calibration_table(preds, set_name="external", n_boot=20)
        assert cal["Intercept (95% CI)"].str.contains(words, regex=False).all()


def test_recalibration_is_frozen_on_validation_and_reported_before_and_after(predictions):
    from medlib.pipelines.record import freeze_recalibration
    from medlib.stats import fit_recalibration

    recal = freeze_recalibration(predictions)
    val = predictions[(predictions["set"] == "val") & (predictions["model"] == "ResNet18")]
    ref = fit_recalibration(val["y_true"], val["score"])
    assert (recal["ResNet18"].intercept, recal["ResNet18"].slope) == (ref.intercept, ref.slope)
    table = report.recalibration_table(predictions, recal, sets=("val", "test"), n_boot=20)
    assert list(table["Risks"].unique()) == ["Original", "Recalibrated (logistic)"]
    in_sample = table[(table["Set"] == "Validation (tuning set)") & (table["Risks"] != "Original")]
    assert in_sample["Slope (95% CI)"].str.startswith("1.000").all()  # fitted there: slope 1 by construction
    note = report.recalibration_note(recal)
    assert "logistic recalibration" in note and "Decision curves use the recalibrated risks" in note


def test_design_note_names_tuning_and_missing_test_set():
    assert report.design_note(("val", "external")).startswith("This design has no internal test set")
    assert "headline numbers come from the test set and the external test set" in report.design_note(
        ("val", "test", "external"))
    assert report.design_note(("val",)).startswith("No set in this run was left untouched")
