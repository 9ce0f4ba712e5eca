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
    from medlib.learn.sizes import check_input_sizes
    from medlib.learn.train import fit, predict, seed_everything

    check_input_sizes(cfg)  # refuse a model that cannot serve image.size before any image is read
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


def cam_layer(cfg: StudyConfig, results: DeepResults, *, model: str, input_shape: Sequence[int]):
    """The Grad-CAM layer of a model for inputs of ``input_shape`` = ``(C, *spatial)``, as a
    ``medlib.learn.sizes.CamLayer``: ``models[].cam_layer`` when set, else the deepest layer whose map has at
    least 7 x 7 cells (4 x 4 x 4 in 3D), an earlier one than usual when the input is small (``describe()`` says
    which and why; ``cam_sanity`` shows it)."""
    from medlib.learn.sizes import choose_cam_layer

    return choose_cam_layer(results.models[model], tuple(input_shape), explicit=model_config(cfg, model).cam_layer)


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
        masks: ``[n, *spatial]`` lesion masks on the model's grid (``lesion_masks``), or None without masks.
        layer: the Grad-CAM layer in words (``CamLayer.describe``).
        set_name: the set the cases come from.
        method: the maps' name: "Grad-CAM", or "HiResCAM" at a layer before the last block.
    """

    model: str
    images: np.ndarray
    cams: np.ndarray
    cases: pd.DataFrame
    views: tuple[str, ...]
    spatial_dims: int
    masks: np.ndarray | None = None
    layer: str = ""
    set_name: str = "test"
    method: str = "Grad-CAM"


def cam_cases(cfg: StudyConfig, results: DeepResults, thresholds: Mapping[str, FrozenThreshold], *, model: str,
              set_name: str = "test", prepared: Prepared | None = None,
              groups: Sequence[str] | None = None, min_cases: int = 6) -> CamCases:
    """Grad-CAM maps of a gallery of one model's cases: ``explain.n_cases`` of each of ``groups``, topped up to
    ``min_cases`` from those groups, then the others, when a group is short; with the lesion masks when
    ``prepared`` is given and the cohort has a mask column (``lesion_masks``).

    ``groups`` defaults to the cases of the outcome the lesion masks mark, found and missed, and the false
    alarms: true positives, false negatives, false positives; or, when ``cohort.lesion_outcome`` is the
    negative label, true negatives, false positives, false negatives."""
    from medlib.explain.gradcam import CAM_METHODS, GradCAMExplainer, select_gallery_cases

    if groups is None:
        groups = ("TP", "FN", "FP") if cfg.cohort.lesion_class == 1 else ("TN", "FP", "FN")
    net = results.models[model]
    data = results.data[model][set_name]
    chosen = select_gallery_cases(results.predictions, thresholds[model].value, n_per_group=cfg.explain.n_cases,
                                  model=model, set_name=set_name, seed=cfg.train.seed, groups=groups,
                                  min_cases=min_cases)
    index = {c: i for i, c in enumerate(data.case_id)}
    rows = [index[c] for c in chosen["case_id"]]
    x = data.x[rows]
    layer = cam_layer(cfg, results, model=model, input_shape=tuple(x.shape[1:]))
    with GradCAMExplainer(net, layer=layer.layer, method=layer.method) as cam:
        maps = cam(x, targets=cfg.explain.target, y=data.y[rows])
    model_cfg = model_config(cfg, model)
    masks = None
    if prepared is not None and mask_problem(cfg, model) is None:
        masks = lesion_masks(cfg, _rows(prepared, chosen["case_id"]), lesion_column(cfg, model))
    return CamCases(model=model, images=x.cpu().numpy(), cams=maps, cases=chosen.reset_index(drop=True),
                    views=tuple(model_inputs(cfg, model_cfg)), spatial_dims=model_cfg.spatial_dims, masks=masks,
                    layer=layer.describe(), set_name=set_name, method=CAM_METHODS[layer.method])


def cam_galleries(cfg: StudyConfig, results: DeepResults, thresholds: Mapping[str, FrozenThreshold],
                  prepared: Prepared | None = None, *, set_name: str = "test") -> dict[str, CamCases]:
    """``cam_cases`` of every model, in the config's order (one gallery figure each)."""
    return {m.display_name: cam_cases(cfg, results, thresholds, model=m.display_name, set_name=set_name,
                                      prepared=prepared) for m in cfg.models}


def cam_sanity(cfg: StudyConfig, results: DeepResults, images: np.ndarray, *, model: str) -> pd.DataFrame:
    """Grad-CAM sanity check against the same model with randomised weights, with the layer the maps came from,
    its map size and why it was chosen (an earlier layer than usual when the input is small)."""
    import torch

    from medlib.explain.gradcam import random_cam_baseline

    layer = cam_layer(cfg, results, model=model, input_shape=images.shape[1:])
    table = random_cam_baseline(results.models[model], torch.as_tensor(images), layer=layer.layer,
                                seed=cfg.train.seed, method=layer.method)
    table.insert(0, "layer", layer.describe())
    return table


def save_cams(run, gallery: CamCases) -> None:
    """Grad-CAM maps of the gallery cases as ``cams/<model>/<case_id>.npy`` (the viewer reads them)."""
    from medlib.runs.folder import atomic_write_bytes

    for case_id, cam in zip(gallery.cases["case_id"], gallery.cams):
        buffer = io.BytesIO()
        np.save(buffer, cam.astype(np.float32))
        atomic_write_bytes(run.cam_file(gallery.model, case_id), buffer.getvalue())


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


# ---------------------------------------------------------------- CAM localisation against lesion masks
def mask_problem(cfg: StudyConfig, model: str) -> str | None:
    """Why a model's maps cannot be scored against the cohort's lesion masks, or None when they can.

    A model's map is of its first input; it is scored against that image column's lesion mask
    (``cohort.lesion_masks``: image column -> mask column), which lies on the image's grid.
    """
    if not cfg.cohort.lesion_masks:
        return "the cohort has no lesion masks (cohort.lesion_masks)"
    first = model_inputs(cfg, model_config(cfg, model))[0]
    column = cfg.cohort.lesion_masks.get(first)
    if column is None:
        return f"its maps are of {first!r}, which has no lesion mask (cohort.lesion_masks names {sorted(cfg.cohort.lesion_masks)})"
    if cfg.image.crop_to_mask and column != cfg.cohort.mask_column:
        return (f"the images are cropped to {cfg.cohort.mask_column!r} (image.crop_to_mask) and the lesion mask "
                f"{column!r} is another file")
    return None


def lesion_column(cfg: StudyConfig, model: str) -> str:
    """The manifest column of the lesion mask that a model's maps are scored against (its first input's)."""
    return cfg.cohort.lesion_masks[model_inputs(cfg, model_config(cfg, model))[0]]


def _rows(prepared: Prepared, case_ids: Sequence[str]) -> pd.DataFrame:
    table = prepared.table.set_index("case_id", drop=False)
    return table.loc[list(case_ids)].reset_index(drop=True)


def lesion_masks(cfg: StudyConfig, table: pd.DataFrame, column: str) -> np.ndarray:
    """The lesion masks of ``table``'s cases on the models' grid, ``[n, *image.size]`` bool.

    Each mask goes through the images' geometric steps (crop to the mask with ``image.margin`` when
    ``image.crop_to_mask``, resize to ``image.size``), not their intensity steps, and is kept where the
    resampled mask reaches half its peak: a lesion smaller than a pixel of the model's grid still marks the
    pixel it mostly covers instead of vanishing. A case without a mask file gives an empty mask.
    """
    import dataclasses

    from medlib.data.imaging import read_image
    from medlib.data.preprocess import preprocess

    size = tuple(cfg.image.size)
    out = np.zeros((len(table), *size), dtype=bool)
    for i, path in enumerate(table[column]):
        if not str(path).strip() or str(path) == "nan":
            continue
        image = read_image(path)
        image = dataclasses.replace(image, array=(np.asarray(image.array) > 0.5).astype(np.float32))
        if not image.array.any():
            continue
        crop = cfg.image.crop_to_mask
        resized = preprocess(image, size=size, mask=image.array if crop else None, crop_to_mask=crop,
                             margin=cfg.image.margin, window=None, normalize="none")
        out[i] = resized >= 0.5 * resized.max()
    return out


def localisation_values(cfg: StudyConfig, prepared: Prepared, results: DeepResults, *, set_name: str = "test",
                        n_boot: int = 2000) -> pd.DataFrame:
    """Grad-CAM localisation of every model on the cases of ``set_name`` whose outcome the lesion masks mark
    evidence for (``cohort.lesion_outcome``, by default the positive class) and that have a lesion mask.

    The map is of that class (where the evidence for it lies). Scores and the centre baseline are
    ``medlib.explain.localisation``'s; intervals are percentile bootstraps over cases.

    Returns:
        One row per model: model, set, outcome (the label value scored), layer, scored (cases), left_out (cases
        of that outcome without a mask on the model's grid), tolerance_px, pointing, pointing_low,
        pointing_high, centre_pointing, pointing_diff (paired, with _low and _high), mass, mass_low, mass_high,
        centre_mass, note (why a model is not scored, else "").
    """
    from medlib.explain.gradcam import GradCAMExplainer
    from medlib.explain.localisation import bootstrap_mean, score_localisation

    cls = cfg.cohort.lesion_class
    outcome = cfg.cohort.positive if cls == 1 else cfg.cohort.negative
    rows = []
    for label in results.models:
        data = results.data[label][set_name]
        cases = [i for i, y in enumerate(data.y.tolist()) if y == cls]
        row: dict = {"model": label, "set": set_name, "outcome": outcome, "layer": "", "scored": 0,
                     "left_out": len(cases), "note": ""}
        problem = mask_problem(cfg, label)
        if problem is None and not cases:
            problem = f"no {outcome!r} cases in the {set_name} set"
        if problem is not None:
            rows.append({**row, "note": f"not scored: {problem}"})
            continue
        masks = lesion_masks(cfg, _rows(prepared, [data.case_id[i] for i in cases]), lesion_column(cfg, label))
        keep = masks.reshape(len(masks), -1).any(axis=1)
        x = data.x[[i for i, k in zip(cases, keep) if k]]
        layer = cam_layer(cfg, results, model=label, input_shape=tuple(data.x.shape[1:]))
        row.update(layer=layer.describe(), scored=int(keep.sum()), left_out=int((~keep).sum()))
        if not keep.any():
            rows.append({**row, "note": f"not scored: no {outcome!r} case has a non-empty lesion mask"})
            continue
        with GradCAMExplainer(results.models[label], layer=layer.layer, method=layer.method) as cam:
            maps = cam(x, targets=[cls] * len(x))
        s = score_localisation(maps, masks[keep])
        seed = cfg.train.seed
        for key, values, base in (("pointing", s.pointing, s.centre_pointing), ("mass", s.mass, s.centre_mass)):
            est, low, high = bootstrap_mean(values, n_boot=n_boot, seed=seed)
            row.update({key: est, f"{key}_low": low, f"{key}_high": high, f"centre_{key}": float(base.mean())})
        diff, low, high = bootstrap_mean(s.pointing, s.centre_pointing, n_boot=n_boot, seed=seed)
        row.update(pointing_diff=diff, pointing_diff_low=low, pointing_diff_high=high, tolerance_px=s.tolerance)
        rows.append(row)
    return pd.DataFrame(rows)


def _pct(est: float, low: float | None = None, high: float | None = None) -> str:
    if est is None or not np.isfinite(est):
        return "–"
    text = f"{100 * est:.0f}%"
    return text if low is None else f"{text} ({100 * low:.0f} to {100 * high:.0f})"


def localisation_table(values: pd.DataFrame) -> pd.DataFrame:
    """The report's localisation table from ``localisation_values``: per model the pointing-game hit rate and
    the share of map energy inside the lesion mask, each with a 95% bootstrap interval, beside the centre
    baseline; the cases scored are named by their outcome."""
    table = []
    for _, r in values.iterrows():
        if r["note"]:
            table.append({"Model": r["model"], "Cases scored": 0, "Pointing game": "–", "Centre baseline": "–",
                          "Difference": "–", "Energy in lesion": "–", "Centre baseline energy": "–",
                          "Grad-CAM layer": r["note"]})
            continue
        diff = (f"{100 * r['pointing_diff']:+.0f} points ({100 * r['pointing_diff_low']:+.0f} to "
                f"{100 * r['pointing_diff_high']:+.0f})")
        scored = f"{int(r['scored'])} {r['outcome']}" + (f" ({int(r['left_out'])} without a mask left out)"
                                                          if r["left_out"] else "")
        table.append({"Model": r["model"], "Cases scored": scored,
                      "Pointing game": _pct(r["pointing"], r["pointing_low"], r["pointing_high"]),
                      "Centre baseline": _pct(r["centre_pointing"]), "Difference": diff,
                      "Energy in lesion": _pct(r["mass"], r["mass_low"], r["mass_high"]),
                      "Centre baseline energy": _pct(r["centre_mass"]),
                      "Grad-CAM layer": f"{r['layer']}; tolerance {r['tolerance_px']:.1f} px"})
    return pd.DataFrame(table)
