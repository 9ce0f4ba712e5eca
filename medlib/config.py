"""Study configuration: frozen dataclasses loaded from ``params/<study>.yaml``.

A study's YAML holds only what differs from the defaults below. Every key is typed and documented here;
an unknown key or a value of the wrong type is an error that names the key, the file and what was expected
(as nanoGPT's ``Unknown config key``). YAML is read with ``yaml.safe_load`` only.

Overrides (``medlib run STUDY -p train.epochs=3``) use dotted keys and are parsed as YAML scalars, then
validated exactly like the file, so a string parameter can never become code.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml


@dataclass(frozen=True)
class CohortConfig:
    """Where the cohort is and how to read its manifest."""

    manifest: str = ""                     # cohort CSV, relative to the project root
    image_columns: tuple[str, ...] = ("image",)  # manifest columns holding image paths (views or sequences)
    mask_column: str | None = None         # manifest column holding a mask path (ROI), if any
    label_column: str = "label"            # manifest column with the outcome
    positive: str = "1"                    # label value of the positive class (the event the model predicts)
    negative: str = "0"                    # label value of the negative class
    covariates: tuple[str, ...] = ()       # clinical covariates shown in Table 1
    categorical: tuple[str, ...] = ()      # which of the covariates are categorical
    max_errors: int = 20                   # bad rows listed in one validation error
    source: str | None = None              # a public data file (MedMNIST .npz) imported into the manifest's
                                           # folder when the manifest does not exist yet
    source_limit: int | None = None        # import only this many cases per split (smoke tests)


@dataclass(frozen=True)
class SplitConfig:
    """How cases are split into sets. The patient is always the unit of splitting."""

    ratios: tuple[float, ...] = (0.7, 0.3, 0.0)  # train, val, test fractions of the internal cohort
    seed: int = 0                          # split seed
    stratify: bool = True                  # keep the class ratio in every set
    group: str = "patient_id"              # column whose values never span two sets
    split_file: str | None = None          # a split CSV (case_id, set) to use instead of a random split
    folds: int = 0                         # k > 1: grouped, stratified k-fold; fold `fold` is the test set
    fold: int = 0                          # which fold is the test set (0 .. folds-1)


@dataclass(frozen=True)
class ImageConfig:
    """Preprocessing: runs once per image and is cached on disk."""

    size: tuple[int, ...] = (64, 64)       # (H, W) for 2D, (D, H, W) for 3D
    window: tuple[float, float] | None = None  # (centre, width) intensity window; None = header VOI / none
    crop_to_mask: bool = False             # crop to the mask's bounding box before resizing
    margin: float = 0.1                    # relative margin around the mask's bounding box
    normalize: Literal["zscore", "minmax", "none"] = "zscore"
    cache_dir: str = ".cache/medlib"       # preprocessed tensors, keyed by input file and these settings


@dataclass(frozen=True)
class ModelConfig:
    """One model of the comparison."""

    name: str = "resnet18"                 # registry name (medlib.learn.models.available_models())
    label: str = ""                        # display name in the report; defaults to name
    inputs: tuple[str, ...] = ()           # image columns fed to the model (empty = all image columns)
    spatial_dims: int = 2                  # 2 for images, 3 for volumes
    pretrained: bool = False               # ImageNet weights from the local torch hub cache (2D)
    weights_path: str | None = None        # local weights file (e.g. MedicalNet 3D)
    multiview: Literal["shared", "separate"] = "separate"  # one backbone per view, or one shared
    cam_layer: str | None = None           # layer name for Grad-CAM; None = the model's default
    width: float = 1.0                     # channel-width multiplier (3D vgg16 only: 0.5 = 16 to 128 channels)

    @property
    def display_name(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation. Defaults follow the ONFH study (Adam, lr 2e-3)."""

    epochs: int = 30
    batch_size: int = 32
    lr: float = 2e-3
    optimizer: Literal["adam", "adamw"] = "adam"
    weight_decay: float = 0.0
    scheduler: Literal["cosine", "none"] = "cosine"
    loss: Literal["ce", "focal", "ce+focal"] = "ce"
    focal_gamma: float = 2.0
    focal_alpha: float | None = None       # weight of the positive class in the focal loss
    focal_weight: float = 1.0              # weight of the focal term in "ce+focal"
    class_weights: bool = False            # inverse-frequency class weights for cross-entropy
    patience: int = 10                     # early stopping on validation AUC
    grad_clip: float | None = 1.0
    augment: bool = True                   # random flips and small shifts on the training set
    amp: bool = True                       # mixed precision on CUDA (ignored on CPU)
    device: str = "auto"                   # "auto", "cpu", "cuda", "cuda:1"
    seed: int = 0
    threads: int | None = None             # torch CPU threads; None = torch's default
    distributed: bool = False              # DistributedDataParallel under torchrun (one process per GPU; gloo on CPU)


@dataclass(frozen=True)
class ThresholdConfig:
    """The operating threshold: chosen on validation data, then frozen for test and external sets."""

    method: Literal["youden", "sensitivity", "fixed"] = "youden"
    target: float | None = None            # target sensitivity, or the fixed threshold


@dataclass(frozen=True)
class ExplainConfig:
    """Grad-CAM panels."""

    enabled: bool = True
    n_cases: int = 4                       # cases per outcome group (TP, FP, TN, FN)
    target: Literal["predicted", "true", "positive"] = "positive"


@dataclass(frozen=True)
class RadiomicsConfig:
    """Radiomics, habitats and fusion (the ICH design)."""

    enabled: bool = False
    bin_width: float = 25.0                # fixed bin width in image units (HU for CT)
    resample_mm: float | None = 1.0        # isotropic resampling before extraction
    feature_classes: tuple[str, ...] = ("firstorder", "shape", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
    habitats: int = 3                      # habitat subregions (0 = none)
    deep_model: str = "resnet50"           # backbone for deep features on ROI slices
    deep_offsets_mm: tuple[float, ...] = (-2.0, -1.0, 0.0, 1.0, 2.0)
    deep_window: tuple[float, float] = (40.0, 80.0)  # brain window (centre, width) in HU
    deep_size: int = 64                    # slice crops resized to this before the backbone
    workers: int = 1                       # processes for feature extraction and for fitting the feature models


@dataclass(frozen=True)
class StudyConfig:
    """One study: cohort, split, preprocessing, models, training, thresholds, explanation, reporting."""

    study: str = ""                        # short name: nec, onfh, ich, glioma, medmnist
    title: str = ""                        # report title
    cohort: CohortConfig = field(default_factory=CohortConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    models: tuple[ModelConfig, ...] = ()
    train: TrainConfig = field(default_factory=TrainConfig)
    threshold: ThresholdConfig = field(default_factory=ThresholdConfig)
    explain: ExplainConfig = field(default_factory=ExplainConfig)
    radiomics: RadiomicsConfig = field(default_factory=RadiomicsConfig)
    runs_dir: str = "runs"                 # run folders: runs/<study>/<run-id>/
    reference: dict[str, float] = field(default_factory=dict)  # seed paper's headline numbers


class ConfigError(ValueError):
    """A params file or override that does not match the schema."""


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert lists to tuples and dicts to dataclasses."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: expected one of {list(args)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping of {tp.__name__} keys, got {value!r}")
        return _build(tp, value, prefix=f"{key}.")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{key}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {str(k): _coerce(v, args[1], f"{key}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    raise ConfigError(f"{key}: unsupported type {_type_name(tp)}")


def _build(cls: type, data: Mapping[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"Unknown config key {prefix}{unknown[0]!s}. Allowed keys under "
                          f"{prefix.rstrip('.') or 'the top level'}: {sorted(names)}")
    kwargs = {k: _coerce(v, hints[k], f"{prefix}{k}") for k, v in data.items()}
    return cls(**kwargs)


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted}: {part} is not a section")
    node[parts[-1]] = value


def parse_overrides(overrides: typing.Iterable[str]) -> dict[str, Any]:
    """Parse ``key.sub=value`` strings; values are YAML scalars or flow lists (``[64, 64]``)."""
    data: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value, e.g. train.epochs=3")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            problem = " ".join(str(err).split())
            raise ConfigError(f"override {item!r}: the value is not a YAML scalar or flow list ({problem})") from None
        _set_dotted(data, key.strip(), value)
    return data


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def config_from_dict(data: Mapping[str, Any], *, source: str = "<dict>") -> StudyConfig:
    """Validate a plain mapping (as read from YAML) into a ``StudyConfig``.

    Raises:
        ConfigError: naming the source, the key and what was expected.
    """
    try:
        return _build(StudyConfig, data)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None


def load_config(path: str | Path, overrides: typing.Iterable[str] | Mapping[str, Any] = ()) -> StudyConfig:
    """Read ``params/<study>.yaml`` with a safe loader, apply overrides and validate.

    Args:
        path: the params file.
        overrides: ``["train.epochs=3", ...]`` or a nested mapping.

    Raises:
        FileNotFoundError: the params file does not exist.
        ConfigError: unknown key, wrong type, or malformed YAML, naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"params file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level")
    extra = overrides if isinstance(overrides, Mapping) else parse_overrides(overrides)
    return config_from_dict(_merge(data, extra), source=str(path))


def config_to_dict(config: Any) -> dict[str, Any]:
    """A plain, YAML-safe dict of a config (tuples as lists), for ``config.yaml`` in a run folder."""
    def plain(v: Any) -> Any:
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    return plain(dataclasses.asdict(config))
