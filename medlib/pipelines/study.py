"""One study run, step by step: the calls a study notebook makes.

Each function is one step of the flow in DESIGN.md and returns plain tables or small objects; the notebook
shows them. Nothing here draws or formats (``plots`` and ``report`` do), and statistics are computed by
``medlib.stats`` from the Predictions table only.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from medlib.data.cohort import Cohort, load_cohort, read_split, split_cohort
from medlib.config import ModelConfig, StudyConfig, load_config
from medlib.schema import SETS



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


def load_study(config_path: str | Path, overrides: Sequence[str] = (), *,
               injected: Mapping[str, Any] | None = None, root: str | Path = ".",
               check: bool = True) -> StudyConfig:
    """Load and validate the study's params file; papermill's parameters arrive here.

    Args:
        config_path: the params file.
        overrides: ``key=value`` strings.
        injected: the notebook's globals. ``papermill nb.ipynb out.ipynb -f params/x.yaml`` injects each top-level
            key of the YAML as a variable; the ones named like config sections are merged over the file and
            validated like it.
        root: the folder relative weights paths are read from (the project root; the notebook runs there).
        check: run ``check_models`` (it imports torch; ``medlib run`` checks the cohort first, then the models).
    """
    extra = {k: v for k, v in (injected or {}).items() if k in _CONFIG_KEYS and not isinstance(v, ModuleType)}
    cfg = load_config(config_path, _nested(extra, overrides))
    if not cfg.models and not cfg.radiomics.enabled:
        raise ValueError(f"{config_path}: no models configured (models: [...] or radiomics.enabled: true)")
    if check:
        check_models(cfg, source=str(config_path), root=root)
    return cfg


def check_models(cfg: StudyConfig, *, source: str = "config", root: str | Path = ".") -> None:
    """Check, before anything runs, that every configured model exists and its weights files are on disk.

    Raises:
        KeyError: an unknown model name (``models[i].name`` or ``radiomics.deep_model``), listing the names.
        ValueError: ``models[i].width`` other than 1.0 on a model without a width multiplier, or not positive.
        FileNotFoundError: a missing ImageNet file (``models[i].pretrained``) or ``models[i].weights_path``.
    """
    from medlib.learn.models import available_models, check_width, require_imagenet_weights

    named = [(f"models[{i}].name", m.name, m.spatial_dims) for i, m in enumerate(cfg.models)]
    named += [("radiomics.deep_model", cfg.radiomics.deep_model, 2)] if cfg.radiomics.enabled else []
    for key, name, dims in named:
        if dims not in (2, 3) or name not in available_models(dims):
            raise KeyError(f"{source}: {key}: unknown model {name!r} for spatial_dims {dims}. Available: "
                           f"{available_models()}")
    for i, m in enumerate(cfg.models):
        try:
            check_width(m.name, m.spatial_dims, m.width)
        except ValueError as err:
            raise ValueError(f"{source}: models[{i}].width: {err}") from None
        if m.pretrained and m.spatial_dims == 2 and m.name != "simplevit":
            require_imagenet_weights(m.name)
        if m.weights_path is not None and not (Path(root) / m.weights_path).is_file():
            raise FileNotFoundError(f"{source}: models[{i}].weights_path: weights file not found: {m.weights_path}")


_CONFIG_KEYS = {f.name for f in dataclasses.fields(StudyConfig)}


def _nested(injected: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    from medlib.config import _merge, parse_overrides

    return _merge(dict(injected), parse_overrides(list(overrides)))


def prepare(cfg: StudyConfig) -> Prepared:
    """Read and validate the cohort, then split it by patient (or read the user's split) and check leakage."""
    import_public_source(cfg)
    cohort = load_cohort(cfg.cohort.manifest, cfg.cohort)
    if cfg.split.split_file:
        split = read_split(cfg.split.split_file, cohort)
        how = f"User-provided split from {cfg.split.split_file}, checked for patient overlap."
    else:
        split = split_cohort(cohort, ratios=cfg.split.ratios, seed=cfg.split.seed, stratify=cfg.split.stratify,
                             group=cfg.split.group, folds=cfg.split.folds, fold=cfg.split.fold)
        names = ["train", "val", "test"][: len(cfg.split.ratios)]
        ratio_text = ":".join(f"{r:g}" for r in cfg.split.ratios)
        how = (f"Random split by patient ({cfg.split.group}), {'stratified by outcome, ' if cfg.split.stratify else ''}"
               f"ratios {ratio_text} ({'/'.join(names)}), seed {cfg.split.seed}; every patient's cases lie in one "
               f"set (checked).")
        if cfg.split.folds:
            how += (f" Cross-validation: {cfg.split.folds} patient-level folds; fold {cfg.split.fold} is the test "
                    f"set, the other folds are split train/validation by the ratios above.")
        if (cohort.table["set"] == "external").any():
            how += " Cases marked external in the manifest form a separate external test set."
    table = cohort.table.drop(columns=["set"]).merge(split[["case_id", "set"]], on="case_id", validate="1:1")
    return Prepared(cohort=cohort, table=table, split=split, split_hash=split.attrs["hash"], how=how)


def import_public_source(cfg: StudyConfig) -> None:
    """Import ``cohort.source`` (a MedMNIST ``.npz``) into the manifest's folder if the manifest is absent."""
    manifest = Path(cfg.cohort.manifest)
    if cfg.cohort.source is None or manifest.is_file():
        return
    from medlib.data.public import import_medmnist

    source = Path(cfg.cohort.source)
    if not source.is_file():
        raise FileNotFoundError(f"cohort.source not found: {source} (a MedMNIST .npz file)")
    import_medmnist(source, manifest.parent.parent, name=manifest.parent.name, limit=cfg.cohort.source_limit)


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
    """Train every configured CNN on the training set (model selection on validation) and predict all sets."""
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


def cam_layer(cfg: StudyConfig, results: DeepResults, *, model: str, input_shape: Sequence[int]) -> str:
    """The Grad-CAM layer of a model: ``models[].cam_layer`` when set, else the default for this input size
    (``medlib.learn.models.default_cam_layer``; ``cam_sanity`` reports which and its map size)."""
    from medlib.learn.models import default_cam_layer

    model_cfg = next(m for m in cfg.models if m.display_name == model)
    return model_cfg.cam_layer or default_cam_layer(results.models[model], tuple(input_shape))


def cam_cases(cfg: StudyConfig, results: DeepResults, thresholds: dict, *, model: str,
              set_name: str = "test") -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Grad-CAM maps for a gallery of TP/FP/TN/FN cases of one model (misclassified cases included).

    Returns:
        images [n, C, *spatial], cams [n, *spatial] in [0, 1], and the cases' table (case_id, group, score,
        y_true) — no patient identifiers.
    """
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
    return x.cpu().numpy(), maps, chosen.reset_index(drop=True)


def example_images(prepared: Prepared, cfg: StudyConfig, *, n: int = 4, seed: int = 0) -> tuple[list, list]:
    """A few cases per class, read through the readers (no identifiers), for the cohort figure.

    Volumes are shown by one axial slice: the one with the largest mask area when there is a mask, else the
    middle slice.
    """
    from medlib.data.imaging import read_image

    rng = np.random.default_rng(seed)
    images, titles = [], []
    for y, name in ((1, cfg.cohort.positive), (0, cfg.cohort.negative)):
        rows = prepared.table[prepared.table["y"] == y]
        for _, row in rows.iloc[rng.permutation(len(rows))[: n // 2]].iterrows():
            for col in cfg.cohort.image_columns:
                array = read_image(row[col]).array
                if array.ndim == 3:
                    array = array[_display_slice(array, row, cfg)]
                images.append(array)
                titles.append(f"{row['case_id']} · {col} · {name}")
    return images, titles


def _display_slice(volume: np.ndarray, row: pd.Series, cfg: StudyConfig) -> int:
    if cfg.cohort.mask_column:
        from medlib.data.imaging import read_image

        mask = read_image(row[cfg.cohort.mask_column]).array > 0.5
        if mask.any():
            return int(mask.reshape(mask.shape[0], -1).sum(axis=1).argmax())
    return volume.shape[0] // 2


def describe_split(cfg: StudyConfig, prepared: Prepared) -> str:
    """One paragraph for the report: how the split was made, with its hash."""
    n_patients = prepared.table["patient_id"].nunique()
    return (f"{len(prepared.table)} cases from {n_patients} patients were included from the manifest "
            f"(every row passed validation). {prepared.how} Split hash `{prepared.split_hash[:12]}`.")


def eval_sets(prepared: Prepared) -> tuple[str, ...]:
    """The sets reported in the performance table: validation, test and external where present."""
    return tuple(s for s in ("val", "test", "external") if s in prepared.sets)


def primary_set(prepared: Prepared) -> str:
    """The set the figures show: the internal test set, else the external set, else validation."""
    for name in ("test", "external", "val"):
        if name in prepared.sets:
            return name
    raise ValueError("no validation, test or external set to evaluate")


def baseline_table(cfg: StudyConfig, prepared: Prepared, *, by: str) -> pd.DataFrame:
    """Table 1 of the covariates, by set (``by="set"``) or by outcome (``by="outcome"``)."""
    from medlib.stats import table1

    if not cfg.cohort.covariates:
        return pd.DataFrame({"note": ["no covariates configured (cohort.covariates)"]})
    table = prepared.table.copy()
    if by == "outcome":
        table["outcome"] = pd.Categorical(table[cfg.cohort.label_column],
                                          categories=[cfg.cohort.negative, cfg.cohort.positive])
    elif by == "set":
        names = {"train": "Training", "val": "Validation", "test": "Test", "external": "External test"}
        table["set"] = pd.Categorical(table["set"].map(names), categories=list(names.values()))
    else:
        raise ValueError(f"by must be 'set' or 'outcome'; got {by!r}")
    continuous = [c for c in cfg.cohort.covariates if c not in cfg.cohort.categorical]
    labels = {c: c.replace("_", " ") for c in cfg.cohort.covariates}
    return table1(table[[*cfg.cohort.covariates, by]], by=by, categorical=list(cfg.cohort.categorical),
                  continuous=continuous, labels=labels)


def best_model(results: DeepResults) -> str:
    """The model with the highest validation AUC (its best epoch)."""
    return max(results.histories, key=lambda m: results.histories[m]["val_auc"].max())


def device_name(cfg: StudyConfig) -> str:
    """The device training ran on, in words."""
    import torch

    if cfg.train.device.startswith("cuda") or (cfg.train.device == "auto" and torch.cuda.is_available()):
        return torch.cuda.get_device_name(0)
    return f"CPU ({torch.get_num_threads()} threads)"


def cam_figure(cfg: StudyConfig, images: np.ndarray, cams: np.ndarray, cases: pd.DataFrame, *, model: str):
    """The Grad-CAM gallery: overlays for 2D inputs, a few slices per case for volumes."""
    from medlib.report import figures as plots

    model_cfg = next(m for m in cfg.models if m.display_name == model)
    views = list(model_inputs(cfg, model_cfg))
    if model_cfg.spatial_dims == 3:
        return plots.plot_cam_volume_gallery(images, cams, cases, view_names=views)
    return plots.plot_cam_gallery(images, cams, cases, view_names=views)


def cam_sanity(cfg: StudyConfig, results: DeepResults, images: np.ndarray, *, model: str) -> pd.DataFrame:
    """Grad-CAM sanity check against the same model with randomised weights, with the layer the maps came from
    and its map size (the default layer depends on the input size)."""
    import torch

    from medlib.explain.gradcam import random_cam_baseline
    from medlib.learn.models import layer_output_sizes

    model_cfg = next(m for m in cfg.models if m.display_name == model)
    net = results.models[model]
    layer = cam_layer(cfg, results, model=model, input_shape=images.shape[1:])
    size = layer_output_sizes(net, [layer], images.shape[1:])[layer]
    how = "models[].cam_layer" if model_cfg.cam_layer else "default for this input size"
    grid = f"{' × '.join(map(str, size))} map; " if len(size) == images.ndim - 2 else ""  # not ViT tokens
    table = random_cam_baseline(net, torch.as_tensor(images), layer=layer, seed=cfg.train.seed)
    table.insert(0, "layer", f"{layer} ({grid}{how})")
    return table


def typical_case_figure(cfg: StudyConfig, prepared: Prepared, results: DeepResults, thresholds: dict, *,
                        model: str, set_name: str = "test"):
    """ONFH: one bilateral patient of the test set, both hips in both views, predicted vs actual outcome."""
    from medlib.report import figures as plots

    preds = results.predictions[(results.predictions["model"] == model) & (results.predictions["set"] == set_name)]
    counts = preds.groupby("patient_id")["case_id"].count()
    patient = counts[counts == counts.max()].index[0]
    cases = preds[preds["patient_id"] == patient].sort_values("case_id")
    data = results.data[model][set_name]
    index = {c: i for i, c in enumerate(data.case_id)}
    images = data.x[[index[c] for c in cases["case_id"]]].cpu().numpy()
    threshold = thresholds[model].value
    titles = [f"{c} · predicted {cfg.cohort.positive if s >= threshold else cfg.cohort.negative} ({s:.2f}) · "
              f"actual {cfg.cohort.positive if y == 1 else cfg.cohort.negative}"
              for c, s, y in zip(cases["case_id"], cases["score"], cases["y_true"])]
    views = list(model_inputs(cfg, next(m for m in cfg.models if m.display_name == model)))
    flat = [img[v] for img in images for v in range(len(views))]
    flat_titles = [f"{t}\n{views[v]}" for t in titles for v in range(len(views))]
    return plots.plot_example_images(flat, flat_titles)


def run_summary(cfg: StudyConfig, prepared: Prepared, results: "DeepResults | FeatureResults", thresholds: dict,
                provenance: dict) -> dict:
    """What the reporting checklist needs to know about this run, as plain data."""
    sets = prepared.split.groupby("set").agg(cases=("case_id", "size"), patients=("patient_id", "nunique"),
                                             positives=("y", "sum"))
    summary = {
        "study": cfg.study, "title": cfg.title, "manifest": cfg.cohort.manifest,
        "image_columns": list(cfg.cohort.image_columns), "positive": cfg.cohort.positive,
        "negative": cfg.cohort.negative, "n_cases": len(prepared.table),
        "n_patients": int(prepared.table["patient_id"].nunique()),
        "partitions": sets.reset_index().to_dict("records"), "split": prepared.how,
        "split_hash": prepared.split_hash,
        "preprocessing": dict(size=list(cfg.image.size), window=cfg.image.window, normalize=cfg.image.normalize),
        "thresholds": {m: {"value": t.value, "method": t.method} for m, t in thresholds.items()},
        "threshold_method": cfg.threshold.method,
        "provenance": provenance,
    }
    if isinstance(results, FeatureResults):
        rc = cfg.radiomics
        summary["preprocessing"] = dict(bin_width=rc.bin_width, resample_mm=rc.resample_mm,
                                        deep_window=list(rc.deep_window), deep_size=rc.deep_size)
        summary["models"] = [{"name": "LASSO (L1 logistic, CV) + SVM", "label": name,
                              "parameters": int(len(table)), "pretrained": False, "inputs": [name]}
                             for name, table in results.selected.items()]
        summary["training"] = {"optimizer": "liblinear (LASSO) / libsvm (SVM)", "seed": cfg.train.seed,
                               "feature_classes": list(rc.feature_classes), "habitats": rc.habitats}
        summary["explainability"] = "selected features with LASSO coefficients; habitat subregion maps"
        return summary
    summary["models"] = [{"name": m.name, "label": m.display_name, "parameters": results.parameters.get(m.display_name),
                          "pretrained": m.pretrained, "inputs": list(model_inputs(cfg, m))} for m in cfg.models]
    summary["training"] = {"optimizer": cfg.train.optimizer, "lr": cfg.train.lr, "epochs": cfg.train.epochs,
                           "batch_size": cfg.train.batch_size, "loss": cfg.train.loss,
                           "patience": cfg.train.patience, "augment": cfg.train.augment, "seed": cfg.train.seed}
    summary["explainability"] = "Grad-CAM (pytorch-grad-cam) with a randomised-weights sanity check"
    return summary


@dataclass
class FeatureSet:
    """The ICH design's feature tables, one row per case (indexed by case_id)."""

    radiomics: pd.DataFrame
    deep: pd.DataFrame
    habitats: dict[str, pd.DataFrame]
    seconds: dict[str, float] = field(default_factory=dict)

    def tables(self) -> dict[str, pd.DataFrame]:
        """Feature tables per model: radiomics, deep, fused (prefixed columns), one per habitat subregion."""
        fused = pd.concat([self.radiomics.add_prefix("rad_"), self.deep.add_prefix("deep_")], axis=1)
        return {"Radiomics": self.radiomics, "Deep": self.deep, "Fused": fused, **self.habitats}


@dataclass
class FeatureResults:
    """Fitted feature models (radiomics, deep, fused, habitats): predictions and selected features."""

    predictions: pd.DataFrame
    selected: dict[str, pd.DataFrame]
    seconds: dict[str, float] = field(default_factory=dict)


def _deep_backbone(cfg: StudyConfig):
    from medlib.learn.models import build_model

    net = build_model(cfg.radiomics.deep_model, in_channels=1, num_classes=2, spatial_dims=2,
                      pretrained=False)
    return net.eval()


def ich_features(cfg: StudyConfig, prepared: Prepared) -> FeatureSet:
    """Radiomics of the whole ROI, radiomics per habitat subregion, and ResNet deep features of ROI slices."""
    from medlib.radiomics.features import ich_deep_features, radiomics_table
    from medlib.data.imaging import read_image

    rc = cfg.radiomics
    table = prepared.table
    image_col, mask_col = cfg.cohort.image_columns[0], cfg.cohort.mask_column
    cases = list(zip(table["case_id"], table[image_col], table[mask_col]))
    seconds = {}
    start = time.perf_counter()
    both = radiomics_table(cases, rc, workers=rc.workers, habitats=rc.habitats, seed=cfg.train.seed)
    habitat_columns = [c for c in both.columns if c.startswith("habitat")]
    radiomics, habitats = both.drop(columns=habitat_columns), _split_habitats(both[habitat_columns], rc.habitats)
    seconds["radiomics (whole ROI and habitats)"] = time.perf_counter() - start
    start = time.perf_counter()
    net = _deep_backbone(cfg)
    deep_rows = {}
    for case_id, image_path, mask_path in cases:
        image, mask = read_image(image_path), read_image(mask_path).array > 0.5
        deep_rows[case_id] = ich_deep_features(image.array, mask, image.spacing, net,
                                               offsets_mm=rc.deep_offsets_mm, window=rc.deep_window,
                                               size=rc.deep_size, case_id=case_id)
    seconds["deep features"] = time.perf_counter() - start
    deep = pd.DataFrame.from_dict(deep_rows, orient="index").add_prefix("f")
    return FeatureSet(radiomics=radiomics.loc[table["case_id"]], deep=deep.loc[table["case_id"]],
                      habitats={name: t.loc[table["case_id"]] for name, t in habitats.items()}, seconds=seconds)


def _split_habitats(table: pd.DataFrame, k: int) -> dict[str, pd.DataFrame]:
    out = {}
    for h in range(1, k + 1):
        cols = [c for c in table.columns if c.startswith(f"habitat{h}_")]
        if cols:
            out[f"Habitat {h}"] = table[cols]
    return out


def fit_feature_models(cfg: StudyConfig, prepared: Prepared, features: FeatureSet) -> FeatureResults:
    """LASSO selection + SVM per feature set, fitted on the training set only; predictions for every set."""
    from medlib.radiomics.fusion import fit_study_models

    start = time.perf_counter()
    y = prepared.table.set_index("case_id")["y"]
    predictions, selected = fit_study_models(features.tables(), y, prepared.split, seed=cfg.train.seed,
                                             n_jobs=cfg.radiomics.workers)
    return FeatureResults(predictions=predictions, selected=selected,
                          seconds={"fit": time.perf_counter() - start})


def habitat_example(cfg: StudyConfig, prepared: Prepared, *, set_name: str = "test"):
    """One case's largest-ROI slice and its habitat subregions, for the habitat figure (case id only)."""
    from medlib.radiomics.features import habitat_labels, largest_slice_index
    from medlib.data.imaging import read_image

    row = prepared.table[prepared.table["set"] == set_name].iloc[0]
    image = read_image(row[cfg.cohort.image_columns[0]]).array
    mask = read_image(row[cfg.cohort.mask_column]).array > 0.5
    labels = habitat_labels(image, mask, k=cfg.radiomics.habitats, seed=cfg.train.seed)
    k = largest_slice_index(mask)
    return image[k], labels[k], row["case_id"]


def selected_features_table(results: FeatureResults, *, top: int = 8) -> pd.DataFrame:
    """The features LASSO kept per model, with coefficients (largest absolute values first)."""
    rows = []
    for model, table in results.selected.items():
        ordered = table.reindex(table["coefficient"].abs().sort_values(ascending=False).index)
        for _, r in ordered.head(top).iterrows():
            rows.append({"model": model, "feature": r["feature"], "LASSO coefficient": float(r["coefficient"])})
        rows.append({"model": model, "feature": f"({len(table)} selected of {table.attrs.get('n_features', '?')})",
                     "LASSO coefficient": float("nan")})
    return pd.DataFrame(rows)


def feature_summary(features: FeatureSet) -> pd.DataFrame:
    """How many features each model's table holds."""
    return pd.DataFrame([{"feature set": k, "features": v.shape[1], "cases": v.shape[0]}
                         for k, v in features.tables().items()])


def save_metrics(run, thresholds: dict, performance: pd.DataFrame) -> None:
    """``metrics.json`` of the run: the frozen thresholds and the performance figures (numbers, not text)."""
    run.write_metrics({"thresholds": {m: {"value": t.value, "method": t.method, "target": t.target}
                                      for m, t in thresholds.items()},
                       "performance": performance.attrs.get("values", [])})


def save_cams(run, model: str, cases: pd.DataFrame, cams: np.ndarray) -> None:
    """Grad-CAM maps of the gallery cases as ``cams/<model>/<case_id>.npy`` (the viewer reads them)."""
    import io

    from medlib.runs.folder import atomic_write_bytes

    folder = run.model_cams_dir(model)
    for case_id, cam in zip(cases["case_id"], cams):
        buffer = io.BytesIO()
        np.save(buffer, cam.astype(np.float32))
        atomic_write_bytes(folder / f"{case_id}.npy", buffer.getvalue())
