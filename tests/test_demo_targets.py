"""The demo's targets are read from the run records: every CNN's untouched AUCs, the best CNN's pointing game."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from medlib.cli.targets import demo_targets, format_targets, write_targets
from medlib.pipelines.record import record_results, save_metrics
from medlib.runs.folder import new_run
from medlib.schema import FrozenThreshold, RunMetrics
from medlib.stats import fit_recalibration


def _auc(model: str, set_name: str, value: float) -> dict:
    return {"model": model, "set": set_name, "metric": "auc", "value": value, "lo": value - 0.1,
            "hi": min(1.0, value + 0.05), "method": "DeLong"}


def _localisation(model: str, pointing: float, centre: float) -> dict:
    return {"model": model, "set": "test", "outcome": "surgery", "layer": "layer3", "scored": 20, "left_out": 0,
            "note": "", "pointing": pointing, "pointing_low": pointing - 0.2, "pointing_high": pointing + 0.1,
            "centre_pointing": centre, "mass": 0.4, "mass_low": 0.3, "mass_high": 0.5, "centre_mass": 0.2}


def _run(tmp_path, study: str, design: str, performance: list[dict], localisation: list[dict],
         vit: str = ""):
    run = new_run(study, runs_dir=tmp_path / "runs")
    models = [{"name": "simplevit" if r["model"] == vit else "resnet18", "label": r["model"]} for r in performance]
    run.write_config({"design": design, "study": {"name": study}, "models": models})
    metrics = RunMetrics(thresholds={r["model"]: FrozenThreshold(0.5, "youden") for r in performance},
                         performance=tuple(performance), localisation=tuple(localisation))
    run.write_metrics(metrics.to_json())
    return run.path


def test_targets_judge_every_cnn_and_the_best_models_pointing(tmp_path):
    nec = _run(tmp_path, "nec", "classifier",
               [_auc("A", "val", 0.95), _auc("A", "external", 0.90), _auc("B", "val", 0.70),
                _auc("B", "external", 0.80), _auc("V", "val", 0.99), _auc("V", "external", 0.6)],
               [_localisation("A", 0.75, 0.40), _localisation("B", 0.95, 0.40)] + [_localisation("V", 1.0, 0.4)],
               vit="V")
    ich = _run(tmp_path, "ich", "features", [_auc("Fused", "val", 0.8), _auc("Fused", "test", 0.6)], [])
    targets = demo_targets({"nec": nec, "ich": ich})
    auc = targets["auc"].set_index(["study", "model", "set"])
    assert auc.loc[("nec", "A", "external"), "met"] is True
    assert auc.loc[("nec", "B", "external"), "met"] is False
    assert auc.loc[("ich", "Fused", "test"), "met"] is None  # no CNN: listed, not judged
    assert ("nec", "A", "val") not in auc.index  # validation is a tuning set: never a target
    assert auc.loc[("nec", "V", "external"), "met"] is None  # a vision transformer: listed, not judged
    pointing = targets["pointing"].set_index("study")
    # the best model is chosen by validation AUC (A), not by its pointing rate (B would look better)
    assert pointing.loc["nec", "model"] == "A" and pointing.loc["nec", "pointing"] == 0.75
    assert bool(pointing.loc["nec", "met"]) and "ich" not in pointing.index
    text = format_targets(targets)
    assert "MISSED" in text and "not a CNN" in text and "75%" in text
    written = write_targets(targets, tmp_path / "demo-targets.json", seconds={"total": 12.5})
    data = json.loads(written.read_text())
    assert data["seconds"]["total"] == 12.5 and len(data["auc"]) == 4 and data["pointing"][0]["model"] == "A"


def test_pointing_at_or_below_the_centre_baseline_misses(tmp_path):
    run = _run(tmp_path, "onfh", "classifier", [_auc("A", "val", 0.9), _auc("A", "test", 0.9)],
               [_localisation("A", 0.80, 0.80)])
    assert not bool(demo_targets({"onfh": run})["pointing"].loc[0, "met"])


def test_the_run_record_keeps_recalibration_and_localisation(tmp_path):
    run = new_run("nec", runs_dir=tmp_path / "runs")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.3 + 0.4 * y + rng.normal(0, 0.2, 200), 0.01, 0.99)
    save_metrics(run, {"A": FrozenThreshold(0.5, "youden")}, pd.DataFrame([_auc("A", "val", 0.8)]))
    recal = {"A": fit_recalibration(y, p)}
    loc = pd.DataFrame([{**_localisation("A", 0.6, 0.3), "pointing": np.float64(0.6), "scored": np.int64(20),
                         "mass": float("nan")}])
    record_results(run, recalibration=recal)
    record_results(run, localisation=loc)
    data = json.loads((run.path / "metrics.json").read_text())
    assert data["recalibration"]["A"]["method"] == "logistic"
    assert data["recalibration"]["A"]["slope"] == pytest.approx(recal["A"].slope)
    assert data["localisation"][0]["pointing"] == 0.6 and data["localisation"][0]["mass"] is None
    assert data["performance"][0]["value"] == 0.8  # what save_metrics wrote is kept
    back = RunMetrics.from_json(data)
    assert back.recalibration["A"]["n_cases"] == 200 and back.localisation[0]["scored"] == 20
