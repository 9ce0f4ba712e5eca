"""Report tables: formats, frozen thresholds, performance/DeLong/calibration tables, reference comparison,
cohort tables, the CLAIM 2024 checklist and the provenance table."""

from __future__ import annotations

import getpass
import math
import re
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medlib.report import tables as report
from medlib.config import ThresholdConfig
from medlib.report.tables import (
    AUTHOR,
    claim_checklist,
    cohort_flow,
    delong_table,
    fmt_estimate,
    fmt_p,
    freeze_thresholds,
    method_note,
    parse_reference_key,
    performance_table,
    provenance_table,
    reference_comparison,
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


# ------------------------------------------------------------------------------------------- thresholds


def test_freeze_thresholds_on_validation(predictions, thresholds):
    assert list(thresholds) == list(MODELS)
    for model, t in thresholds.items():
        val = predictions[(predictions["model"] == model) & (predictions["set"] == "val")]
        assert t == choose_threshold(val["y_true"], val["score"], method="youden")


def test_freeze_thresholds_from_mapping_and_other_set(predictions):
    fixed = freeze_thresholds(predictions, {"method": "fixed", "target": 0.5})
    assert {t.value for t in fixed.values()} == {0.5}
    on_train = freeze_thresholds(predictions, {"method": "sensitivity", "target": 0.9}, on_set="train")
    model = predictions[(predictions["model"] == "ResNet18") & (predictions["set"] == "train")]
    assert on_train["ResNet18"] == choose_threshold(model["y_true"], model["score"], method="sensitivity",
                                                    target=0.9)


def test_freeze_thresholds_names_model_without_validation(predictions):
    extra = predictions[predictions["model"] == "ResNet18"].assign(model="ViT")
    extra = extra[extra["set"] != "val"]
    with pytest.raises(ValueError, match=r"model 'ViT' has no rows in set 'val'.*\['external', 'test', 'train'\]"):
        freeze_thresholds(pd.concat([predictions, extra]), ThresholdConfig())


def test_freeze_thresholds_checks(predictions):
    with pytest.raises(ValueError, match=r"missing column\(s\) \['score'\]"):
        freeze_thresholds(predictions.drop(columns="score"), ThresholdConfig())
    with pytest.raises(TypeError, match="config_threshold must be a ThresholdConfig"):
        freeze_thresholds(predictions, "youden")


# ----------------------------------------------------------------------------------------- performance


def test_performance_table_layout(predictions, thresholds, performance):
    assert list(performance.columns) == ["Model", "Set", "n (pos.)", "AUC (95% CI)", "Accuracy",
                                         "Sensitivity", "Specificity", "Precision", "NPV", "F1", "Threshold"]
    assert len(performance) == 3 * 3  # models x (val, test, external); train is not reported by default
    assert performance["Set"].unique().tolist() == ["Validation*", "Test", "External test"]
    for col in ["AUC (95% CI)", "Accuracy", "Sensitivity", "Specificity", "Precision", "NPV", "F1"]:
        assert performance[col].str.match(CI).all(), performance[col].tolist()
    assert performance.loc[performance["Set"] == "Test", "n (pos.)"].tolist() == ["40 (20)"] * 3


def test_performance_table_values_match_stats(predictions, thresholds, performance):
    test = predictions[(predictions["model"] == "DenseNet121") & (predictions["set"] == "test")]
    row = performance[(performance["Model"] == "DenseNet121") & (performance["Set"] == "Test")].iloc[0]
    assert row["AUC (95% CI)"] == fmt_estimate(auc_ci(test["y_true"], test["score"]))
    pred = test["score"] >= thresholds["DenseNet121"].value
    sens = (pred & (test["y_true"] == 1)).sum() / (test["y_true"] == 1).sum()
    assert row["Sensitivity"].startswith(f"{sens:.3f} (")
    assert row["Threshold"] == f"{thresholds['DenseNet121'].value:.3f}"


def test_threshold_set_is_marked_as_same_data(performance, thresholds):
    assert set(performance["Set"]) == {"Validation*", "Test", "External test"}
    assert "* Threshold chosen on these validation cases" in method_note(thresholds, sets=("val", "test"))
    assert performance.groupby("Model")["Threshold"].nunique().eq(1).all()  # one frozen threshold per model


def test_performance_table_keeps_numbers_and_inputs(predictions, thresholds, performance):
    before = predictions.copy()
    values = pd.DataFrame(performance.attrs["values"])
    assert set(values["metric"]) == set(report.METRICS) and len(values) == 9 * 7
    assert performance.attrs["level"] == 0.95
    performance_table(predictions, thresholds, sets=("test",))
    pd.testing.assert_frame_equal(predictions, before)


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
    assert table.loc["s100b", "AUC (95% CI)"] == "0.731 (0.630–0.833)"
    assert table.loc["s100b", "n (pos.)"] == "113 (41)"
    row = delong_table(preds, set_name="test").iloc[0]
    assert (row["Model A"], row["Model B"], row["Z"], row["p"]) == ("wfns", "s100b", "2.21", "0.027")
    assert row["ΔAUC (95% CI)"] == "0.092 (0.010–0.174)"


# ------------------------------------------------------------------------------------------ method note


def test_method_note_names_every_method(thresholds):
    note = method_note(thresholds, sets=("val", "test", "external"))
    assert note == ("AUC with DeLong 95% CI; proportions (accuracy, sensitivity, specificity, precision, NPV) "
                    "with Wilson 95% CI; F1 with stratified bootstrap percentile 95% CI, 2000 replicates; "
                    "threshold: Youden index on the validation set, frozen for the test and external sets. "
                    "* Threshold chosen on these validation cases: their threshold metrics are optimistic.")
    assert "Youden index on the validation set, frozen for the other sets." in method_note(thresholds)


def test_method_note_mixed_thresholds():
    th = {"A": Threshold(0.3, "sensitivity", 0.9, ""), "B": Threshold(0.5, "fixed", 0.5, ""),
          "C": Threshold(0.4, "sensitivity", 0.9, "")}
    note = method_note(th, level=0.9, sets=("test",))
    assert "DeLong 90% CI" in note and "Wilson 90% CI" in note
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
    assert list(table.columns) == ["Model", "n", "Brier", "Intercept (95% CI)", "Slope (95% CI)"]
    sub = predictions[(predictions["model"] == "Both views") & (predictions["set"] == "test")]
    cal = calibration(sub["y_true"], sub["score"])
    row = table.set_index("Model").loc["Both views"]
    assert row["Brier"] == f"{cal.brier:.3f}"
    assert row["Slope (95% CI)"] == fmt_estimate((cal.slope, *cal.slope_ci))


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


def test_reference_comparison(performance):
    ref = {"ResNet18.accuracy": 0.919, "Both views.external_auc": 0.78, "Fused.train_auc": 0.968}
    table = reference_comparison(performance, ref)
    assert list(table.columns) == ["Model", "Set", "Metric", "Reference", "This run (95% CI)", "Difference",
                                   "Reference in CI"]
    values = pd.DataFrame(performance.attrs["values"]).set_index(["model", "set", "metric"])
    acc = values.loc[("ResNet18", "test", "accuracy")]
    first = table.iloc[0]
    assert (first["Set"], first["Metric"], first["Reference"]) == ("Test", "Accuracy", "0.919")
    assert first["This run (95% CI)"] == fmt_estimate((acc["value"], acc["lo"], acc["hi"]))
    assert first["Difference"] == f"{acc['value'] - 0.919:+.3f}"
    assert first["Reference in CI"] == ("yes" if acc["lo"] <= 0.919 <= acc["hi"] else "no")
    assert table.iloc[1]["Set"] == "External test"
    assert table.iloc[2][["This run (95% CI)", "Difference"]].tolist() == ["not in this run", ""]


def test_reference_comparison_from_plain_table(performance):
    """A table that lost its attrs (e.g. re-read) is parsed from its display strings."""
    plain = performance.copy()
    plain.attrs = {}
    ref = {"ResNet18.accuracy": 0.919, "DenseNet121.auc": 0.5}
    pd.testing.assert_frame_equal(reference_comparison(plain, ref), reference_comparison(performance, ref))


def test_reference_comparison_empty(performance):
    assert reference_comparison(performance, {}).empty


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


def fake_run(partitions=True) -> dict:
    parts = [{"set": "train", "cases": 184, "patients": 180, "positives": 66},
             {"set": "val", "cases": 79, "patients": 77, "positives": 28},
             {"set": "test", "cases": 40, "patients": 40, "positives": 14}]
    return {
        "study": "nec", "title": "NEC: surgery or not", "manifest": "data/nec/manifest.csv",
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
    }


def test_claim_checklist_has_44_items():
    table = claim_checklist(fake_run())
    assert list(table.columns) == ["item", "section", "topic", "where", "value"]
    assert table["item"].tolist() == list(range(1, 45))
    sections = table["section"].str.split(":").str[0].unique().tolist()
    assert sections == ["Title/Abstract", "Introduction", "Methods", "Results", "Discussion", "Other information"]
    assert (table["value"] != "").all() and (table["topic"] != "").all()


def test_claim_checklist_fills_from_run():
    v = claim_checklist(fake_run()).set_index("item")["value"]
    assert "Training 184 cases / 180 patients, 66 positive (35.9%)" in v[19]
    assert "Test 40 cases / 40 patients" in v[19] and "Random split by patient" in v[19] and ".;" not in v[19]
    assert v[37].startswith("All models on the validation and test sets with 95% CIs")
    assert v[20].startswith("Patient level") and "0123456789ab" in v[20]
    assert "ResNet18 (registry name resnet18; 11,177,538 parameters; inputs: image)" in v[22]
    assert "torch 2.5.0" in v[23] and "monai" not in v[23]
    assert v[24] == "ResNet18: ImageNet-pretrained weights; DenseNet121: random initialisation (seed 0)"
    assert "Optimizer adam, learning rate 0.002, up to 30 epochs" in v[25] and "loss ce+focal" in v[25]
    assert "patience 10" in v[26]
    assert "AUC" in v[28] and "DeLong" in v[29] and "Wilson" in v[29] and "Holm" in v[29]
    assert v[31].startswith("Grad-CAM")
    assert v[33] == "No external test set in this run"
    assert "ResNet18 0.431 (youden)" in v[38]
    assert "data/nec/manifest.csv" in v[7] and "cccccccccccc" in v[7]
    assert "f" * 40 in v[43]


def test_claim_checklist_leaves_unknowable_items_to_author():
    table = claim_checklist(fake_run()).set_index("item")
    for item in (2, 3, 4, 5, 10, 13, 15, 16, 17, 18, 30, 34, 40, 41, 44):
        assert table.loc[item, "value"] == AUTHOR, item
        assert table.loc[item, "where"] == "manuscript"
    assert table.loc[28, "where"] == "@tbl-performance"
    empty = claim_checklist({})
    assert len(empty) == 44 and (empty["value"].str.startswith(AUTHOR)).sum() > 25


def test_claim_checklist_labels_filter():
    labels = ["tbl-cohort", "tbl-performance", "@tbl-provenance"]
    table = claim_checklist(fake_run(), labels=labels).set_index("item")
    assert table.loc[36, "value"] == AUTHOR  # no Table 1 in this report
    assert table.loc[37, "where"] == "@tbl-performance"
    used = {w for cell in table["where"] for w in cell.split(", ") if w.startswith("@")}
    assert used <= {"@tbl-cohort", "@tbl-performance", "@tbl-provenance"}


def test_claim_checklist_external_and_checks():
    run = fake_run()
    run["partitions"] = run["partitions"] + [{"set": "external", "cases": 40, "patients": 38, "positives": 12}]
    v = claim_checklist(run).set_index("item")["value"]
    assert v[33] == "External test set: External test 40 cases / 38 patients, 12 positive (30.0%)"
    assert "external testing" in v[6]
    with pytest.raises(TypeError, match="run must be a mapping"):
        claim_checklist(["nec"])


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


def test_docstring_examples():
    import doctest

    assert doctest.testmod(report, optionflags=doctest.NORMALIZE_WHITESPACE).failed == 0


def test_every_claim_filler_exists():
    keys = [it.fill for it in report.CLAIM_2024 if it.fill]
    assert len(keys) == len(set(keys)) and set(keys) == set(report._CLAIM_FILLERS)
