"""Proof on real images: the full MedMNIST benchmark runs against the published numbers.

Run by hand (not a test; minutes on a CPU): ``.venv/bin/python benchmarks/bench_medmnist.py`` (or
``--only pneumoniamnist``). ``run()`` returns the rows as dictionaries so ``medlib bench`` can collect them.

Each run is the study notebook ``notebooks/study.ipynb`` executed by ``medlib.cli.runner.run_study`` with the
params file of the data set: PneumoniaMNIST (2D chest X-ray, 28 x 28, ResNet-18) and AdrenalMNIST3D (3D CT,
28^3, ResNet-18 3D), on ``../shared/reference/medmnist``, with the MedMNIST protocol: the official split, the
epoch kept by the best validation AUC, accuracy at the fixed threshold 0.5 on the test set. The executed
notebooks go to ``benchmarks/results/medmnist/`` (not committed) and the run folders to ``runs/medmnist/``.

Printed per data set: test AUC with its DeLong 95% CI and test accuracy with its Wilson 95% CI, read from the
run's ``metrics.json``; the published MedMNIST v2 values (Yang et al., Scientific Data 2023, Tables 3 and 4)
from the params file's ``study.reference``; the ratio ours / published; the run's wall time, the epochs trained
and the median seconds per epoch (from the training history in the model's checkpoint), and the device.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from medlib.config import load_config
from medlib.cli.runner import PROJECT_ROOT, run_study

DATASETS = {"pneumoniamnist": "params/pneumoniamnist.yaml", "adrenalmnist3d": "params/adrenalmnist3d.yaml"}
RESULTS = Path("benchmarks/results/medmnist")


def _test_metric(metrics: dict[str, Any], model: str, metric: str) -> dict[str, Any]:
    for row in metrics["performance"]:
        if row["model"] == model and row["set"] == "test" and row["metric"] == metric:
            return row
    raise KeyError(f"metrics.json has no test {metric} for model {model!r}")


def seconds_per_epoch(run_dir: Path, model: str) -> tuple[float, int]:
    """Median training seconds per epoch and the number of epochs of ``model``, from the history its last
    checkpoint keeps (``medlib.learn.checkpoints``)."""
    import statistics

    import torch

    from medlib.runs.folder import CHECKPOINTS_DIR, safe_folder_name

    path = run_dir / CHECKPOINTS_DIR / safe_folder_name(model) / "checkpoint.pt"
    history = torch.load(path, map_location="cpu", weights_only=True)["state"]["history"]
    return statistics.median(row["seconds"] for row in history), len(history)


def run_dataset(name: str, params: str) -> list[dict[str, Any]]:
    """Run one data set's study and compare its test AUC and accuracy with the published values."""
    cfg = load_config(PROJECT_ROOT / params)
    run_id = f"bench-{name}"
    run_dir = PROJECT_ROOT / cfg.runs_dir / cfg.study.name / run_id
    if run_dir.exists():
        raise FileExistsError(f"{run_dir} exists from an earlier benchmark; remove it to measure again")
    result = run_study("medmnist", params=params, run_id=run_id, reports_dir=RESULTS / name)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    provenance = json.loads((run_dir / "provenance.json").read_text())
    rows = []
    for model in (m.display_name for m in cfg.models):
        per_epoch, epochs = seconds_per_epoch(run_dir, model)
        for metric in ("auc", "accuracy"):
            ours = _test_metric(metrics, model, metric)
            published = cfg.study.reference.results.get(f"{model}.{metric}")
            rows.append({"benchmark": f"{name} {model} test {metric}", "value": round(ours["value"], 3),
                         "ci95": f"{ours['lo']:.3f}-{ours['hi']:.3f}", "method": ours["method"],
                         "published": published, "n": ours["n"],
                         "ratio": round(ours["value"] / published, 3) if published else None,
                         "threshold": round(ours["threshold"], 3), "wall_s": round(result.seconds),
                         "epochs": epochs, "s_per_epoch": round(per_epoch, 1),
                         "device": provenance.get("device")})
    return rows


def run(only: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Run the benchmark data sets (all, or those named in ``only``); print and return the rows."""
    unknown = sorted(set(only) - set(DATASETS))
    if unknown:
        raise KeyError(f"Unknown data set(s) {unknown}. Available: {sorted(DATASETS)}")
    rows = []
    for name, params in DATASETS.items():
        if only and name not in only:
            continue
        for row in run_dataset(name, params):
            print("  ".join(f"{k}={v}" for k, v in row.items()), flush=True)
            rows.append(row)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=(), help=f"data sets to run, of {sorted(DATASETS)}")
    run(tuple(parser.parse_args().only))
