"""Sweeps: grid expansion and validation, and a small grid run on a local Dask cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from medlib.config import ConfigError
from medlib.cli.sweep import aggregate, collect_auc, load_sweep, pending_runs, run_sweep, write_summary

ROOT = Path(__file__).resolve().parents[1]


def write_grid(tmp_path: Path, grid: dict, **extra) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({"study": "nec", "params": str(ROOT / "params/smoke/nec.yaml"),
                                    "grid": grid, **extra}))
    return path


def test_grid_expands_every_combination(tmp_path):
    sweep = load_sweep(write_grid(tmp_path, {"train.seed": [0, 1, 2], "split.fold": [0, 1],
                                             "split.folds": [5]}))
    assert len(sweep.runs) == 6 and len({r.config_id for r in sweep.runs}) == 6
    assert sweep.runs[0].override_strings() == ["split.fold=0", "split.folds=5", "train.seed=0"]
    again = load_sweep(write_grid(tmp_path, {"train.seed": [0, 1, 2], "split.fold": [0, 1], "split.folds": [5]}))
    assert [r.config_id for r in again.runs] == [r.config_id for r in sweep.runs]


def test_model_lists_are_overrides(tmp_path):
    sweep = load_sweep(write_grid(tmp_path, {"models": [[{"name": "resnet18", "label": "R"}],
                                                        [{"name": "densenet121", "label": "D"}]]}))
    assert sweep.runs[1].override_strings() == ["models=[{label: D, name: densenet121}]"]


@pytest.mark.parametrize("grid, extra, message", [
    ({"train.epochs": ["three"]}, {}, r"train.epochs: expected an integer"),
    ({"train.nope": [1]}, {}, r"Unknown config key train.nope"),
    ({"train.seed": 3}, {}, r"grid.train.seed must be a non-empty list"),
    ({"train.seed": [1]}, {"extra": 1}, r"unknown key\(s\) \['extra'\]"),
])
def test_bad_grids(tmp_path, grid, extra, message):
    with pytest.raises((ConfigError, ValueError), match=message):
        load_sweep(write_grid(tmp_path, grid, **extra))


@pytest.mark.slow
def test_small_grid_on_local_cluster_reruns_only_failures(tmp_path):
    from medlib import synth

    manifest = synth.generate("nec", tmp_path / "data", seed=0, scale=0.15)
    missing = tmp_path / "later" / "nec" / "manifest.csv"
    grid = write_grid(tmp_path, {"cohort.manifest": [str(manifest), str(missing)],
                                 "train.epochs": [1], "train.seed": [0]})
    sweep = load_sweep(grid)
    out = tmp_path / "sweeps"
    extra = [f"image.cache_dir={tmp_path / 'cache'}"]
    status = run_sweep(sweep, out, workers=2, extra=extra)
    assert sorted(status["status"]) == ["done", "failed"]
    failed = status[status["status"] == "failed"].iloc[0]
    assert "manifest not found" in failed["error"]
    done_id = status.loc[status["status"] == "done", "config_id"].iloc[0]
    done_stamp = (out / done_id / "status.json").stat().st_mtime_ns

    synth.generate("nec", tmp_path / "later", seed=0, scale=0.15)   # the missing cohort appears
    assert [r.config_id for r in pending_runs(sweep, out)] == [failed["config_id"]]
    status = run_sweep(sweep, out, workers=1, extra=extra)
    assert (status["status"] == "done").all()
    assert (out / done_id / "status.json").stat().st_mtime_ns == done_stamp   # not run again

    per_run = collect_auc(sweep, out, set_name="external")
    assert len(per_run) == 2 * 2  # two runs x two models
    table = aggregate(per_run)
    assert set(table["runs"]) == {1}
    page = write_summary(sweep, out, tmp_path / "reports")
    assert "Sweep grid: nec" in page.read_text() and json.loads((out / done_id / "status.json").read_text())


def _cv_predictions(seeds=(0, 1), folds=5, n=200):
    """Out-of-fold predictions of a 5-fold CV repeated with two seeds: each case once per seed."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    y = (rng.uniform(size=n) < 0.4).astype(int)
    frames = []
    for seed in seeds:
        fold = rng.permutation(np.arange(n) % folds)
        score = 1 / (1 + np.exp(-(y * 1.5 + rng.normal(0, 1, n))))
        for k in range(folds):
            idx = np.flatnonzero(fold == k)
            frames.append(pd.DataFrame({"case_id": [f"c{i}" for i in idx], "patient_id": [f"p{i // 2}" for i in idx],
                                        "model": "m", "set": "test", "y_true": y[idx], "score": score[idx],
                                        "config_id": f"s{seed}f{k}", "train.seed": str(seed), "split.fold": str(k)}))
    return pd.concat(frames, ignore_index=True)


def test_pooled_out_of_fold_auc_with_its_ci_per_seed():
    """Item 10: the pooled out-of-fold AUC (all folds' predictions together) with the DeLong CI of that one estimate;
    seeds are kept apart (one row each)."""
    from medlib.cli.sweep import pooled_cv_auc
    from medlib.stats import auc_ci

    preds = _cv_predictions()
    pooled = pooled_cv_auc(preds)
    assert len(pooled) == 2 and set(pooled["folds"]) == {5} and set(pooled["cases"]) == {200}
    seed0 = preds[preds["train.seed"] == "0"]
    ref = auc_ci(seed0["y_true"], seed0["score"], groups=seed0["patient_id"])
    row = pooled[pooled["train.seed"] == "0"].iloc[0]
    assert (row["pooled AUC"], row["lo"], row["hi"]) == (ref.value, ref.lo, ref.hi)
    assert "Obuchowski" in row["method"]  # two cases per patient
    with pytest.raises(ValueError, match="folds overlap"):
        pooled_cv_auc(pd_concat_twice(seed0))


def pd_concat_twice(df):
    import pandas as pd

    return pd.concat([df, df.assign(**{"split.fold": "9"})])


def test_aggregate_reports_mean_and_sd_not_a_ci():
    import pandas as pd

    per_run = pd.DataFrame({"config_id": list("abcd"), "train.seed": ["0", "1", "2", "3"], "model": "m",
                            "auc": [0.80, 0.84, 0.78, 0.82]})
    table = aggregate(per_run)
    assert list(table.columns) == ["model", "runs", "mean AUC", "SD across runs"]
    assert table.iloc[0]["mean AUC"] == pytest.approx(0.81)
    assert table.iloc[0]["SD across runs"] == pytest.approx(pd.Series([0.80, 0.84, 0.78, 0.82]).std())
