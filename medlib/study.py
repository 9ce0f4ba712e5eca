"""One study run, step by step: the calls a study notebook makes.

Each function is one step of the flow in DESIGN.md and returns plain tables or small objects; the notebook
shows them. Nothing here draws or formats (``plots`` and ``report`` do), and statistics are computed by
``medlib.stats`` from the Predictions table only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from medlib.cohort import Cohort, load_cohort, read_split, split_cohort
from medlib.config import ModelConfig, StudyConfig, load_config

SETS = ("train", "val", "test", "external")


@dataclass(frozen=True)
class Prepared:
    """A validated cohort with its patient-level split.

    Attributes:
        table: the cohort table with the split's ``set`` column (train/val/test/external).
        split: case_id, patient_id, y, set; ``split_hash`` identifies it.
        how: one sentence saying how the split was made.
    """

    cohort: Cohort
    table: pd.DataFrame
    split: pd.DataFrame
    split_hash: str
    how: str

    @property
    def sets(self) -> tuple[str, ...]:
        present = set(self.table["set"])
        return tuple(s for s in SETS if s in present)


@dataclass
class DeepResults:
    """Trained CNNs of one study: predictions of every model on every set, plus what the report shows."""

    predictions: pd.DataFrame
    histories: dict[str, pd.DataFrame] = field(default_factory=dict)
    models: dict[str, object] = field(default_factory=dict)
    data: dict[str, dict[str, object]] = field(default_factory=dict)  # model label → set → CaseTensors
    seconds: dict[str, float] = field(default_factory=dict)
    parameters: dict[str, int] = field(default_factory=dict)


def load_study(config_path: str | Path, overrides: Sequence[str] = ()) -> StudyConfig:
    """Load and validate the study's params file (papermill's parameters arrive here)."""
    cfg = load_config(config_path, list(overrides))
    if not cfg.models and not cfg.radiomics.enabled:
        raise ValueError(f"{config_path}: no models configured (models: [...] or radiomics.enabled: true)")
    return cfg


def prepare(cfg: StudyConfig) -> Prepared:
    """Read and validate the cohort, then split it by patient (or read the user's split) and check leakage."""
    cohort = load_cohort(cfg.cohort.manifest, cfg.cohort)
    if cfg.split.split_file:
        split = read_split(cfg.split.split_file, cohort)
        how = f"User-provided split from {cfg.split.split_file}, checked for patient overlap."
    else:
        split = split_cohort(cohort, ratios=cfg.split.ratios, seed=cfg.split.seed, stratify=cfg.split.stratify,
                             group=cfg.split.group)
        names = ["train", "val", "test"][: len(cfg.split.ratios)]
        ratio_text = ":".join(f"{r:g}" for r in cfg.split.ratios)
        how = (f"Random split by patient ({cfg.split.group}), {'stratified by outcome, ' if cfg.split.stratify else ''}"
               f"ratios {ratio_text} ({'/'.join(names)}), seed {cfg.split.seed}; every patient's cases lie in one "
               f"set (checked).")
        if (cohort.table["set"] == "external").any():
            how += " Cases marked external in the manifest form a separate external test set."
    table = cohort.table.drop(columns=["set"]).merge(split[["case_id", "set"]], on="case_id", validate="1:1")
    return Prepared(cohort=cohort, table=table, split=split, split_hash=split.attrs["hash"], how=how)


def model_inputs(cfg: StudyConfig, model_cfg: ModelConfig) -> tuple[str, ...]:
    """The image columns a model reads (all image columns unless the model names some)."""
    unknown = sorted(set(model_cfg.inputs) - set(cfg.cohort.image_columns))
    if unknown:
        raise KeyError(f"model {model_cfg.display_name!r}: inputs {unknown} are not image columns "
                       f"{list(cfg.cohort.image_columns)}")
    return model_cfg.inputs or cfg.cohort.image_columns


def load_tensors(cfg: StudyConfig, prepared: Prepared, columns: Sequence[str]) -> dict[str, object]:
    """Preprocess (cached on disk) and load every set's images into memory as ``CaseTensors``."""
    from medlib.data import load_case_tensors

    mask = cfg.cohort.mask_column if cfg.image.crop_to_mask else None
    return {s: load_case_tensors(prepared.table[prepared.table["set"] == s], list(columns), cfg.image,
                                 mask_column=mask) for s in prepared.sets}


def train_models(cfg: StudyConfig, prepared: Prepared, run=None, *, resume: bool = False,
                 progress: bool | None = None) -> DeepResults:
    """Train every configured CNN on the training set (model selection on validation) and predict all sets."""
    from medlib.models import build_from_config
    from medlib.train import fit, predict, seed_everything

    results = DeepResults(predictions=pd.DataFrame())
    cache: dict[tuple[str, ...], dict[str, object]] = {}
    frames = []
    for model_cfg in cfg.models:
        label = model_cfg.display_name
        columns = tuple(model_inputs(cfg, model_cfg))
        data = cache.setdefault(columns, load_tensors(cfg, prepared, columns))
        seed_everything(cfg.train.seed)
        model = build_from_config(model_cfg, in_channels=len(columns), image_size=cfg.image.size)
        start = time.perf_counter()
        ckpt = run.checkpoint_dir(label) if run is not None else None
        fitted = fit(model, data["train"], data["val"], cfg.train, checkpoint_dir=ckpt, resume=resume,
                     progress=progress)
        results.seconds[label] = time.perf_counter() - start
        results.histories[label] = fitted.history
        results.models[label] = fitted.model
        results.data[label] = data
        results.parameters[label] = sum(p.numel() for p in fitted.model.parameters())
        frames += [predict(fitted.model, data[s], model_name=label, set_name=s, device=cfg.train.device)
                   for s in prepared.sets]
    results.predictions = pd.concat(frames, ignore_index=True)
    return results


def cam_cases(cfg: StudyConfig, results: DeepResults, thresholds: dict, *, model: str,
              set_name: str = "test") -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Grad-CAM maps for a gallery of TP/FP/TN/FN cases of one model (misclassified cases included).

    Returns:
        images [n, C, *spatial], cams [n, *spatial] in [0, 1], and the cases' table (case_id, group, score,
        y_true) — no patient identifiers.
    """
    from medlib.explain import GradCAMExplainer, select_gallery_cases
    from medlib.models import default_cam_layer

    model_cfg = next(m for m in cfg.models if m.display_name == model)
    net = results.models[model]
    data = results.data[model][set_name]
    chosen = select_gallery_cases(results.predictions, thresholds[model].value, n_per_group=cfg.explain.n_cases,
                                  model=model, set_name=set_name, seed=cfg.train.seed)
    index = {c: i for i, c in enumerate(data.case_id)}
    rows = [index[c] for c in chosen["case_id"]]
    x = data.x[rows]
    layer = model_cfg.cam_layer or default_cam_layer(net)
    with GradCAMExplainer(net, layer=layer) as cam:
        maps = cam(x, targets=cfg.explain.target, y=data.y[rows])
    return x.cpu().numpy(), maps, chosen.reset_index(drop=True)


def example_images(prepared: Prepared, cfg: StudyConfig, *, n: int = 4, seed: int = 0) -> tuple[list, list]:
    """A few cases per class, read through the readers (no identifiers), for the cohort figure."""
    from medlib.imaging import read_image

    rng = np.random.default_rng(seed)
    images, titles = [], []
    for y, name in ((1, cfg.cohort.positive), (0, cfg.cohort.negative)):
        rows = prepared.table[prepared.table["y"] == y]
        for _, row in rows.iloc[rng.permutation(len(rows))[: n // 2]].iterrows():
            for col in cfg.cohort.image_columns:
                images.append(read_image(row[col]).array)
                titles.append(f"{row['case_id']} · {col} · {name}")
    return images, titles
