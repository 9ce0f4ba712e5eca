"""Sweeps: a grid of configurations (model × view × seed × fold ...) run as papermill runs on Dask.

A grid file names a study, its params file and, under ``grid``, dotted config keys with lists of values::

    study: nec
    params: params/nec.yaml
    grid:
      train.seed: [0, 1, 2]
      split.fold: [0, 1, 2, 3, 4]
      split.folds: [5]
      models: [[{name: resnet18, label: ResNet18}], [{name: densenet121, label: DenseNet121}]]

Every combination becomes one run with those overrides (validated against the schema before anything runs),
executed by ``medlib.cli.runner.run_study`` on a Dask cluster: a local cluster by default (one single-threaded
worker process per core), or an existing scheduler (``--scheduler tcp://host:8786``). For SLURM, start a
``dask_jobqueue.SLURMCluster``, scale it, and pass its scheduler address (README, "Sweeps").

Each run's state lives in ``sweeps/<study>/<sweep>/<config-id>/status.json``; a failed run is recorded with its
error and the others continue. Running the same sweep again runs only what failed or is missing.

Results keep two sources of variation apart. Cross-validation folds test different patients: their out-of-fold
predictions are pooled and one AUC is computed on all of them, with its DeLong 95% CI on the logit scale (Obuchowski's
clustered variance when a patient has several cases), as the interval of that one estimate (:func:`pooled_cv_auc`).
Seeds (training or split) repeat the whole procedure: their spread is reported as mean and SD across seeds, which
describes how much a result moves with the seed and is not a confidence interval (:func:`aggregate`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd
import yaml

from medlib.config import load_config
from medlib.runs.folder import atomic_write_json

REPLICATE_KEYS = ("train.seed", "split.seed", "split.fold")


@dataclass(frozen=True)
class SweepRun:
    """One configuration of the grid."""

    config_id: str
    overrides: dict[str, Any]

    def override_strings(self) -> list[str]:
        return [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
                for k, v in self.overrides.items()]


@dataclass(frozen=True)
class Sweep:
    """A parsed grid file."""

    name: str
    study: str
    params: Path
    runs: tuple[SweepRun, ...]


def _config_id(overrides: dict[str, Any]) -> str:
    text = json.dumps(overrides, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def load_sweep(path: str | Path, *, root: Path = Path(".")) -> Sweep:
    """Read a grid file and expand it; every combination is validated against the config schema.

    Raises:
        ValueError: a grid without ``study``/``grid``, or a grid value that is not a non-empty list.
        ConfigError: a combination that does not validate (names the key).
    """
    path = Path(path)
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict) or "study" not in data or not isinstance(data.get("grid"), dict):
        raise ValueError(f"{path}: expected keys 'study' and 'grid' (a mapping of config keys to lists)")
    unknown = sorted(set(data) - {"study", "params", "grid", "name"})
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; allowed: study, params, grid, name")
    grid = data["grid"]
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"{path}: grid.{key} must be a non-empty list of values")
    params = Path(data.get("params") or f"params/{data['study']}.yaml")
    keys = list(grid)
    runs = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        overrides = dict(zip(keys, combo))
        run = SweepRun(config_id=_config_id(overrides), overrides=overrides)
        load_config(root / params, run.override_strings())
        runs.append(run)
    return Sweep(name=str(data.get("name") or path.stem), study=str(data["study"]), params=params,
                 runs=tuple(runs))


def _status_path(out: Path, run: SweepRun) -> Path:
    return out / run.config_id / "status.json"


def pending_runs(sweep: Sweep, out: Path) -> list[SweepRun]:
    """The runs not yet done (missing, or failed last time)."""
    def done(run: SweepRun) -> bool:
        path = _status_path(out, run)
        return path.is_file() and json.loads(path.read_text()).get("status") == "done"
    return [r for r in sweep.runs if not done(r)]


def execute_one(study: str, params: str, run: SweepRun, out: str, extra: Sequence[str] = ()) -> dict:
    """Run one configuration (on a Dask worker); never raises: failures are recorded in status.json."""
    from medlib.cli.runner import run_study

    folder = Path(out) / run.config_id
    folder.mkdir(parents=True, exist_ok=True)
    overrides = run.override_strings() + [f"runs_dir={folder / 'runs'}", *extra]
    status = {"config_id": run.config_id, "overrides": run.overrides}
    try:
        result = run_study(study, params=params, overrides=overrides, reports_dir=folder)
        status.update(status="done", seconds=result.seconds, report=str(result.report))
    except Exception as err:  # recorded, shown in the sweep summary; the other runs continue
        status.update(status="failed", error=f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
    atomic_write_json(status, folder / "status.json")
    return status


def run_sweep(sweep: Sweep, out: str | Path, *, scheduler: str | None = None, workers: int | None = None,
              extra: Sequence[str] = (), submit: Callable | None = None) -> pd.DataFrame:
    """Execute the pending runs of a sweep on Dask and return every run's status.

    Args:
        sweep: from ``load_sweep``.
        out: the sweep folder, e.g. ``sweeps/nec/<name>``.
        scheduler: address of an existing Dask scheduler; default a local cluster.
        workers: local worker processes (default: the number of cores).
        extra: overrides added to every run (e.g. a cache folder).
    """
    from dask.distributed import Client, LocalCluster

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    todo = pending_runs(sweep, out)
    if todo:
        if scheduler:
            client = Client(scheduler)
        else:
            import os

            n = workers or os.cpu_count() or 1
            client = Client(LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None))
        try:
            futures = client.map(execute_one, [sweep.study] * len(todo), [str(sweep.params)] * len(todo), todo,
                                 [str(out)] * len(todo), [list(extra)] * len(todo), pure=False)
            client.gather(futures)
        finally:
            client.close()
    return sweep_status(sweep, out)


def sweep_status(sweep: Sweep, out: Path) -> pd.DataFrame:
    """One row per configuration: its overrides, status and error (if any)."""
    rows = []
    for run in sweep.runs:
        path = _status_path(out, run)
        status = json.loads(path.read_text()) if path.is_file() else {"status": "missing"}
        rows.append({"config_id": run.config_id, **{k: _short(v) for k, v in run.overrides.items()},
                     "status": status.get("status"), "error": status.get("error", "")})
    return pd.DataFrame(rows)


def _short(value: Any) -> str:
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return "+".join(str(v.get("label") or v.get("name")) for v in value)
    return str(value)


def collect_auc(sweep: Sweep, out: Path, *, set_name: str = "test") -> pd.DataFrame:
    """AUC of every model in every finished run on ``set_name`` (one row per run × model)."""
    from medlib.stats import auc

    rows = []
    for run in sweep.runs:
        for pred_path in (out / run.config_id / "runs").glob("*/*/predictions.csv"):
            preds = pd.read_csv(pred_path)
            for model, part in preds[preds["set"] == set_name].groupby("model"):
                rows.append({"config_id": run.config_id, **{k: _short(v) for k, v in run.overrides.items()},
                             "model": model, "auc": auc(part["y_true"].to_numpy(), part["score"].to_numpy())})
    return pd.DataFrame(rows)


def collect_predictions(sweep: Sweep, out: Path, *, set_name: str = "test") -> pd.DataFrame:
    """Every finished run's predictions on ``set_name``, with the run's overrides as columns."""
    from medlib.schema import ID_COLUMNS

    frames = []
    for run in sweep.runs:
        for pred_path in (out / run.config_id / "runs").glob("*/*/predictions.csv"):
            preds = pd.read_csv(pred_path, dtype=ID_COLUMNS)
            part = preds[preds["set"] == set_name].assign(config_id=run.config_id,
                                                          **{k: _short(v) for k, v in run.overrides.items()})
            frames.append(part)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def pooled_cv_auc(predictions: pd.DataFrame, *, fold_key: str = "split.fold", level: float = 0.95) -> pd.DataFrame:
    """The pooled out-of-fold AUC of cross-validation, with its CI, per configuration, seed and model.

    The test folds of k-fold cross-validation hold different patients, so their predictions are pooled and one
    AUC is computed on all cases (each case once), with the DeLong interval on the logit scale (Obuchowski's clustered
    variance when a patient has several cases; :func:`medlib.stats.auc_ci`). Pooling assumes the folds' models
    give comparable scores; the per-fold AUCs' spread is in :func:`aggregate`.

    Args:
        predictions: :func:`collect_predictions` output (one row per case, model and run).
        fold_key: the override column that names the fold.
        level: confidence level.

    Returns:
        One row per configuration (all override columns but the fold) and model: ``folds, cases, patients,
        pooled AUC, lo, hi, method``. Empty when the sweep has no fold column.

    Raises:
        ValueError: a case appears in the test folds of two runs of one configuration (folds overlap).
    """
    from medlib.stats import auc_ci, not_estimable

    if predictions.empty or fold_key not in predictions.columns:
        return pd.DataFrame()
    from medlib.schema import PREDICTION_COLUMNS

    keys = [c for c in predictions.columns if c not in ("config_id", fold_key, *PREDICTION_COLUMNS)] + ["model"]
    rows = []
    for values, part in predictions.groupby(keys, sort=True):
        dup = part["case_id"].duplicated()
        if dup.any():
            raise ValueError(f"case {part.loc[dup, 'case_id'].iloc[0]!r} is in the test folds of two runs of one "
                             f"configuration ({dict(zip(keys, values))}): the folds overlap, so no pooled AUC")
        y, sc, g = part["y_true"].to_numpy(), part["score"].to_numpy(float), part["patient_id"].astype(str).to_numpy()
        problem = not_estimable(y, "pooled AUC")
        est = auc_ci(y, sc, groups=g, level=level) if problem is None else None
        rows.append({**dict(zip(keys, values if isinstance(values, tuple) else (values,))),
                     "folds": int(part[fold_key].nunique()), "cases": len(part), "patients": len(set(g)),
                     "pooled AUC": est.value if est else math.nan, "lo": est.lo if est else math.nan,
                     "hi": est.hi if est else math.nan, "method": est.method if est else problem})
    return pd.DataFrame(rows)


def aggregate(per_run: pd.DataFrame, *, replicate_keys: Sequence[str] = REPLICATE_KEYS) -> pd.DataFrame:
    """Mean and SD of the AUC across replicates (seeds, folds) per configuration and model.

    The SD describes how much the AUC moves between training runs (seeds) or test folds; it is not the
    uncertainty of one estimate, so no confidence interval is built from it (for cross-validation that is
    :func:`pooled_cv_auc`).
    """
    if per_run.empty:
        return per_run
    keys = [c for c in per_run.columns if c not in ("config_id", "auc", *replicate_keys)]
    rows = []
    for values, part in per_run.groupby(keys, sort=True):
        n, mean, sd = len(part), part["auc"].mean(), part["auc"].std(ddof=1) if len(part) > 1 else math.nan
        rows.append({**dict(zip(keys, values if isinstance(values, tuple) else (values,))), "runs": n,
                     "mean AUC": mean, "SD across runs": sd})
    return pd.DataFrame(rows)


def write_summary(sweep: Sweep, out: Path, reports_dir: Path) -> Path:
    """The comparison page: a Markdown report of the aggregated AUCs and every run's status."""
    from medlib.report.display import markdown_table
    from medlib.runs.folder import atomic_write_text

    status = sweep_status(sweep, out)
    table = aggregate(collect_auc(sweep, out))
    pooled = pooled_cv_auc(collect_predictions(sweep, out))
    done = int((status["status"] == "done").sum())
    parts = [
        f"# Sweep {sweep.name}: {sweep.study}",
        f"{done} of {len(status)} runs finished. Test AUC per configuration: mean and SD across replicates "
        f"({', '.join(REPLICATE_KEYS)}); the SD shows how much the AUC moves between runs and is not a confidence "
        "interval.",
        markdown_table(table) if not table.empty else "No finished runs yet.",
        ": Test AUC across replicates: mean and SD (not a confidence interval) {#tbl-sweep}",
    ]
    if not pooled.empty:
        pooled = pooled.assign(**{"95% CI": [f"{lo:.3f}–{hi:.3f}" if lo == lo else m
                                            for lo, hi, m in zip(pooled["lo"], pooled["hi"], pooled["method"])]})
        parts += ["Cross-validation: the out-of-fold predictions of all folds pooled, one AUC per configuration "
                  "and seed, with its 95% CI (" + str(pooled["method"].iloc[0]) + ").",
                  markdown_table(pooled.drop(columns=["lo", "hi", "method"])),
                  ": Pooled out-of-fold AUC with 95% CI {#tbl-sweep-pooled}"]
    parts += ["## Runs", markdown_table(status.drop(columns=["error"]) if not (status["error"] != "").any() else status)]
    text = "\n\n".join(parts)
    path = reports_dir / f"sweep-{sweep.study}-{sweep.name}.md"
    atomic_write_text(path, text + "\n")
    return path
