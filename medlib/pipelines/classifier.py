"""The image-classifier design: CNNs trained on the images of each case (one image, several views, or a
3D volume of several sequences), compared on the same patient-level split, and explained with Grad-CAM.

It serves NEC, ONFH (several views per case), glioma (3D), MedMNIST and any user's cohort. The steps, in the
order a notebook calls them: ``train_models`` → ``medlib.pipelines.record.freeze_and_score`` → ``cam_cases``
and ``cam_sanity`` for the best model → ``medlib.pipelines.record.run_summary``.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from medlib.config import ModelConfig, StudyConfig
from medlib.pipelines.prepare import Prepared
from medlib.schema import FrozenThreshold


@dataclass
class DeepResults:
    """Trained CNNs of one study: predictions of every model on every set, plus what the report shows.

    Attributes:
        predictions: the predictions table (``medlib.schema.PREDICTION_COLUMNS``).
        histories: model label → per-epoch table (train_loss, val_loss, val_auc).
        models: model label → the trained network (the epoch with the best validation AUC).
        data: model label → set → ``CaseTensors`` (the preprocessed images the model saw).
        seconds: model label → training time.
        parameters: model label → number of parameters.
    """

    predictions: pd.DataFrame
    histories: dict[str, pd.DataFrame] = field(default_factory=dict)
    models: dict[str, object] = field(default_factory=dict)
    data: dict[str, dict[str, object]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    parameters: dict[str, int] = field(default_factory=dict)


def model_config(cfg: StudyConfig, model: str) -> ModelConfig:
    """The config of the model with display name ``model``.

    Raises:
        KeyError: no such model, listing the configured ones.
    """
    for m in cfg.models:
        if m.display_name == model:
            return m
    raise KeyError(f"Unknown model {model!r}. Configured: {[m.display_name for m in cfg.models]}")


def model_inputs(cfg: StudyConfig, model_cfg: ModelConfig) -> tuple[str, ...]:
    """The image columns a model reads (all image columns unless the model names some)."""
    unknown = sorted(set(model_cfg.inputs) - set(cfg.cohort.image_columns))
    if unknown:
        raise KeyError(f"model {model_cfg.display_name!r}: inputs {unknown} are not image columns "
                       f"{list(cfg.cohort.image_columns)}")
    return model_cfg.inputs or cfg.cohort.image_columns


def load_tensors(cfg: StudyConfig, prepared: Prepared, columns: Sequence[str]) -> dict[str, object]:
    """Preprocess (cached on disk) and load every set's images into memory as ``CaseTensors``."""
    from medlib.data.tensors import load_case_tensors

    mask = cfg.cohort.mask_column if cfg.image.crop_to_mask else None
    return {s: load_case_tensors(prepared.table[prepared.table["set"] == s], list(columns), cfg.image,
                                 mask_column=mask) for s in prepared.sets}


def train_models(cfg: StudyConfig, prepared: Prepared, run=None, *, resume: bool = False,
                 progress: bool | None = None) -> DeepResults:
    """Train every configured CNN on the training set (epoch chosen on validation) and predict every set.

    Args:
        run: the run folder (checkpoints go to ``checkpoints/<model>/``); None = no checkpoints.
        resume: continue each model from its checkpoint in ``run``.
        progress: tqdm bars; None = on unless ``CI=true`` or not on a terminal.
    """
    from medlib.learn.models import build_from_config
    from medlib.learn.train import fit, predict, seed_everything

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


def best_model(results: DeepResults) -> str:
    """The model with the highest validation AUC (its best epoch)."""
    return max(results.histories, key=lambda m: results.histories[m]["val_auc"].max())


def device_name(cfg: StudyConfig) -> str:
    """The device training ran on, in words."""
    import torch

    if cfg.train.device.startswith("cuda") or (cfg.train.device == "auto" and torch.cuda.is_available()):
        return torch.cuda.get_device_name(0)
    threads = torch.get_num_threads()
    return f"CPU ({threads} thread{'' if threads == 1 else 's'})"


def cam_layer(cfg: StudyConfig, results: DeepResults, *, model: str, input_shape: Sequence[int]) -> str:
    """The Grad-CAM layer of a model: ``models[].cam_layer`` when set, else the default for this input size
    (``medlib.learn.models.default_cam_layer``; ``cam_sanity`` reports which and its map size)."""
    from medlib.learn.models import default_cam_layer

    return model_config(cfg, model).cam_layer or default_cam_layer(results.models[model], tuple(input_shape))


@dataclass(frozen=True)
class CamCases:
    """Grad-CAM maps of a gallery of cases of one model.

    Attributes:
        model: the model's display name.
        images: ``[n, C, *spatial]``, the preprocessed inputs.
        cams: ``[n, *spatial]`` in [0, 1].
        cases: case_id, group (TP/FP/TN/FN), score, y_true: no patient identifiers.
        views: the image columns, one per input channel.
        spatial_dims: 2 or 3.
    """

    model: str
    images: np.ndarray
    cams: np.ndarray
    cases: pd.DataFrame
    views: tuple[str, ...]
    spatial_dims: int


def cam_cases(cfg: StudyConfig, results: DeepResults, thresholds: Mapping[str, FrozenThreshold], *, model: str,
              set_name: str = "test") -> CamCases:
    """Grad-CAM maps for a gallery of TP/FP/TN/FN cases of one model (misclassified cases included)."""
    from medlib.explain.gradcam import GradCAMExplainer, select_gallery_cases

    net = results.models[model]
    data = results.data[model][set_name]
    chosen = select_gallery_cases(results.predictions, thresholds[model].value, n_per_group=cfg.explain.n_cases,
                                  model=model, set_name=set_name, seed=cfg.train.seed)
    index = {c: i for i, c in enumerate(data.case_id)}
    rows = [index[c] for c in chosen["case_id"]]
    x = data.x[rows]
    layer = cam_layer(cfg, results, model=model, input_shape=tuple(x.shape[1:]))
    with GradCAMExplainer(net, layer=layer) as cam:
        maps = cam(x, targets=cfg.explain.target, y=data.y[rows])
    model_cfg = model_config(cfg, model)
    return CamCases(model=model, images=x.cpu().numpy(), cams=maps, cases=chosen.reset_index(drop=True),
                    views=tuple(model_inputs(cfg, model_cfg)), spatial_dims=model_cfg.spatial_dims)


def cam_sanity(cfg: StudyConfig, results: DeepResults, images: np.ndarray, *, model: str) -> pd.DataFrame:
    """Grad-CAM sanity check against the same model with randomised weights, with the layer the maps came from
    and its map size (the default layer depends on the input size)."""
    import torch

    from medlib.explain.gradcam import random_cam_baseline
    from medlib.learn.models import layer_output_sizes

    net = results.models[model]
    layer = cam_layer(cfg, results, model=model, input_shape=images.shape[1:])
    size = layer_output_sizes(net, [layer], images.shape[1:])[layer]
    how = "models[].cam_layer" if model_config(cfg, model).cam_layer else "default for this input size"
    grid = f"{' × '.join(map(str, size))} map; " if len(size) == images.ndim - 2 else ""  # not ViT tokens
    table = random_cam_baseline(net, torch.as_tensor(images), layer=layer, seed=cfg.train.seed)
    table.insert(0, "layer", f"{layer} ({grid}{how})")
    return table


def save_cams(run, gallery: CamCases) -> None:
    """Grad-CAM maps of the gallery cases as ``cams/<model>/<case_id>.npy`` (the viewer reads them)."""
    from medlib.runs.folder import atomic_write_bytes

    folder = run.model_cams_dir(gallery.model)
    for case_id, cam in zip(gallery.cases["case_id"], gallery.cams):
        buffer = io.BytesIO()
        np.save(buffer, cam.astype(np.float32))
        atomic_write_bytes(folder / f"{case_id}.npy", buffer.getvalue())


@dataclass(frozen=True)
class PatientCases:
    """All cases of one patient in one set, with a model's predictions, for a "typical case" figure."""

    images: list[np.ndarray]
    titles: list[str]


def patient_cases(cfg: StudyConfig, results: DeepResults, thresholds: Mapping[str, FrozenThreshold], *,
                  model: str, set_name: str = "test") -> PatientCases | None:
    """The cases of the patient with the most cases in ``set_name`` (e.g. both hips of a bilateral patient),
    every view of each, titled with the predicted and the actual outcome; None when every patient has one case."""
    preds = results.predictions[(results.predictions["model"] == model) & (results.predictions["set"] == set_name)]
    counts = preds.groupby("patient_id")["case_id"].count()
    if counts.empty or counts.max() < 2:
        return None
    patient = counts[counts == counts.max()].index[0]
    cases = preds[preds["patient_id"] == patient].sort_values("case_id")
    data = results.data[model][set_name]
    index = {c: i for i, c in enumerate(data.case_id)}
    images = data.x[[index[c] for c in cases["case_id"]]].cpu().numpy()
    threshold = thresholds[model].value
    views = model_inputs(cfg, model_config(cfg, model))
    titles = [f"{c} · predicted {cfg.cohort.positive if s >= threshold else cfg.cohort.negative} ({s:.2f}) · "
              f"actual {cfg.cohort.positive if y == 1 else cfg.cohort.negative}"
              for c, s, y in zip(cases["case_id"], cases["score"], cases["y_true"])]
    flat = [img[v] if img.ndim == 3 else img[v][img.shape[1] // 2] for img in images for v in range(len(views))]
    return PatientCases(images=flat, titles=[f"{t}\n{views[v]}" for t in titles for v in range(len(views))])
