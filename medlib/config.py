"""Study configuration: frozen dataclasses loaded from ``params/<study>.yaml`` and validated by pydantic.

A study's YAML holds only what differs from the defaults below, plus the ``study:`` section, which has no
defaults: every study-specific sentence of the report comes from it. Every key is typed and documented here.
An unknown key, a missing required key, a value of the wrong type or out of its range is refused when the params
are loaded, before any data is read, with the file, the dotted key, the value and what was expected (see
:mod:`medlib.config_errors`). YAML is read with a safe loader only (``config_errors.load_yaml``: a key given twice
is an error, aliases are bounded, ``1e-3`` is a number as in YAML 1.2), and types are strict: ``"3"`` is not an
integer. Combinations that cannot work (a 3D model on 2D images, no validation set to choose the threshold on)
and settings that would have no effect (``train.focal_gamma`` with ``loss: ce``) are refused too.

The classes are pydantic dataclasses, so ``dataclasses.replace``, ``asdict`` and ``fields`` work on them (and
``replace`` validates again). Lists arrive as tuples.

The ``study:`` section (:class:`StudySection`)::

    design: classifier            # "classifier" (CNNs on the images) or "features" (radiomics + deep features
                                  # + LASSO/SVM fusion); "features" goes with radiomics.enabled: true
    study:
      name: nec                   # short id: run folders are runs/<name>/
      title: "NEC: predicting surgery from the bedside abdominal radiograph"
      question: "Does an infant with NEC need surgery?"      # the clinical question, one sentence
      population: "Infants diagnosed with NEC who had ..."  # who is included, one sentence
      unit: infant                # what one case (manifest row) is: "Each infant contributes ..."
      positive: "needed surgery"  # what the positive label (cohort.positive) means
      negative: "was managed without surgery"
      inputs: {xray: "one bedside AP abdominal radiograph (DICOM)"}  # optional; keys: cohort.image_columns
      background: "..."           # optional paragraph: the design this study follows
      reference:                  # optional: published results; the report compares only when given
        source: "Author et al., Journal 2024"
        results: {ResNet18.accuracy: 0.919}   # "<model label>.<metric>" or "<model label>.<set>_<metric>"

Overrides (``medlib run STUDY -p train.epochs=3``) use dotted keys and are parsed as YAML scalars, then
validated exactly like the file, so a string parameter can never become code.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

from pydantic import (AfterValidator, BeforeValidator, ConfigDict, Field, Strict, StrictBool, StrictInt, TypeAdapter,
                      ValidationError, model_validator)
from pydantic.dataclasses import dataclass

from medlib.config_errors import (ConfigError, Expect, check_combinations, config_problem, ignored_settings,
                                  label_text, load_yaml, merge, parse_overrides, path_text, raise_config_error)

__all__ = ["AnalysisConfig", "CohortConfig", "ConfigError", "ExplainConfig", "ImageConfig", "ModelConfig", "RadiomicsConfig",
           "ReferenceSection", "SplitConfig", "StudyConfig", "StudySection", "ThresholdConfig", "TrainConfig",
           "check_effects", "config_from_dict", "config_to_dict", "load_config", "merge",
           "parse_overrides"]

#: Every config class: frozen, unknown keys refused, no NaN or infinity; scalars are strict per type below.
_SCHEMA = ConfigDict(extra="forbid", strict=False, allow_inf_nan=False)


def _number_as_text(value: Any) -> Any:
    """YAML reads ``positive: 1`` as an integer; a text field takes it as ``"1"`` (never a bool)."""
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _one_line(value: str) -> str:
    text = value.strip()
    if not text or "\n" in text:
        raise config_problem("one line of text")
    return text


def _not_blank(value: str) -> str:
    if not value.strip():
        raise config_problem("some text")
    return value.strip()


def _short_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", value):
        raise config_problem(_NAME_WORDS)
    return value


_NAME_WORDS = "a short name of at most 64 letters, digits, '_' and '-' (starting with a letter or digit)"

Int = StrictInt                                           # 3, not "3", 3.0 or true
Num = Annotated[float, Strict()]                          # 0.5 or 1 (as 1.0), not "0.5" or true
Bool = StrictBool                                         # true or false, not "yes" or 1
Text = Annotated[str, BeforeValidator(_number_as_text), Strict()]  # a name or label; 1 arrives as "1"
# the study: section's words: text only (unit: 3 is a mistake, not a unit)
Line = Annotated[str, Strict(), AfterValidator(_one_line), Expect("one line of text")]
Paragraph = Annotated[str, Strict(), AfterValidator(_not_blank), Expect("some text")]
Name = Annotated[str, Strict(), AfterValidator(_short_name), Expect(_NAME_WORDS)]
PathText = Annotated[str, BeforeValidator(_number_as_text), Strict(), AfterValidator(path_text)]
Label = Annotated[str, BeforeValidator(_number_as_text), Strict(), AfterValidator(label_text)]
Positive = Annotated[Num, Field(gt=0)]
NonNegative = Annotated[Num, Field(ge=0)]
Fraction = Annotated[Num, Field(ge=0, le=1)]
Count = Annotated[Int, Field(ge=1)]


def _zero_or_two_plus(value: int) -> int:
    if value != 0 and value < 2:
        raise config_problem(_ZERO_OR_TWO)
    return value


_ZERO_OR_TWO = "0 (none) or an integer >= 2"
ZeroOrTwoPlus = Annotated[Int, AfterValidator(_zero_or_two_plus), Expect(_ZERO_OR_TWO)]


def _sums_to_one(ratios: tuple[float, ...]) -> tuple[float, ...]:
    if not math.isclose(sum(ratios), 1.0, rel_tol=0, abs_tol=1e-6) or ratios[0] <= 0:
        raise config_problem(_RATIO_WORDS)
    return ratios


_RATIO_WORDS = "2 or 3 fractions (train, val[, test]) in [0, 1] that sum to 1, the first > 0"


def _reference_key(key: str) -> str:
    label, _, metric = key.rpartition(".")
    if not label.strip() or not metric.strip():
        raise config_problem("a key '<model label>.<metric>' or '<model label>.<set>_<metric>', "
                             "e.g. 'ResNet18.accuracy' or 'Fused.test_auc'")
    return key


@dataclass(frozen=True, config=_SCHEMA)
class CohortConfig:
    """Where the cohort is and how to read its manifest."""

    manifest: PathText = ""                    # cohort CSV, relative to the project root
    image_columns: tuple[Text, ...] = ("image",)  # manifest columns holding image paths (views or sequences)
    mask_column: Text | None = None        # manifest column holding a mask path (ROI), if any
    label_column: Text = "label"           # manifest column with the outcome
    positive: Text = "1"                   # label value of the positive class (the event the model predicts)
    negative: Text = "0"                   # label value of the negative class; differs from positive
    covariates: tuple[Text, ...] = ()      # clinical covariates shown in Table 1
    categorical: tuple[Text, ...] = ()     # which of the covariates are categorical (a subset of covariates)
    max_errors: Count = 20                 # bad rows listed in one validation error
    source: PathText | None = None             # a public data file (MedMNIST .npz) imported into the manifest's
                                           # folder when the manifest does not exist yet
    source_limit: Count | None = None      # import only this many cases per split (smoke tests)
    lesion_masks: dict[Text, Text] = field(default_factory=dict)  # image column -> manifest column of its
                                           # ground-truth lesion mask file (the image's pixel grid / affine;
                                           # nonzero = lesion, all zero = no finding), e.g. {xray: lesion_mask};
                                           # scores where Grad-CAM points. Several images may share one mask.
    lesion_outcome: Text | None = None     # the label value whose evidence the lesion masks mark (default:
                                           # cohort.positive); localisation is scored on the cases of that
                                           # outcome, with the map of that class

    @property
    def lesion_class(self) -> int:
        """1 when the lesion masks mark evidence for the positive outcome, 0 for the negative one."""
        return 0 if self.lesion_outcome == self.negative else 1

    @model_validator(mode="after")
    def _lesion_masks_name_images(self) -> CohortConfig:
        unknown = [k for k in self.lesion_masks if k not in self.image_columns]
        if unknown:
            raise config_problem(f"keys among cohort.image_columns {list(self.image_columns)}", key="lesion_masks",
                                 value=unknown)
        if self.lesion_outcome is not None and self.lesion_outcome not in (self.positive, self.negative):
            raise config_problem(f"cohort.positive ({self.positive!r}) or cohort.negative ({self.negative!r})",
                                 key="lesion_outcome", value=self.lesion_outcome)
        return self

    @model_validator(mode="after")
    def _labels_and_covariates(self) -> CohortConfig:
        if self.negative == self.positive:
            raise config_problem(f"a label value other than cohort.positive ({self.positive!r})", key="negative",
                                 value=self.negative)
        extra = [c for c in self.categorical if c not in self.covariates]
        if extra:
            raise config_problem(f"names among cohort.covariates {list(self.covariates)}", key="categorical",
                                 value=extra)
        return self


@dataclass(frozen=True, config=_SCHEMA)
class SplitConfig:
    """How cases are split into sets. The patient is always the unit of splitting."""

    ratios: Annotated[tuple[Fraction, ...], Field(min_length=2, max_length=3), AfterValidator(_sums_to_one),
                      Expect(_RATIO_WORDS)] = (0.7, 0.3, 0.0)  # train, val, test fractions of the internal cohort
    seed: Int = 0                          # split seed
    stratify: Bool = True                  # keep the class ratio in every set
    group: Text = "patient_id"             # column whose values never span two sets
    split_file: PathText | None = None         # a split CSV (case_id, set) to use instead of a random split
    folds: ZeroOrTwoPlus = 0               # k >= 2: grouped, stratified k-fold; fold `fold` is the test set
    fold: Annotated[Int, Field(ge=0)] = 0  # which fold is the test set (0 .. folds-1); 0 without folds

    @model_validator(mode="after")
    def _fold_in_range(self) -> SplitConfig:
        if self.folds and self.fold >= self.folds:
            raise config_problem(f"an integer in [0, {self.folds - 1}] (split.folds is {self.folds})", key="fold",
                                 value=self.fold)
        if not self.folds and self.fold:
            raise config_problem("0 when split.folds is 0 (no cross-validation); set split.folds to use folds",
                                 key="fold", value=self.fold)
        return self


@dataclass(frozen=True, config=_SCHEMA)
class ImageConfig:
    """Preprocessing: runs once per image and is cached on disk."""

    size: Annotated[tuple[Annotated[Int, Field(ge=8)], ...], Field(min_length=2, max_length=3),
                    Expect("a list of 2 (H, W) or 3 (D, H, W) integers >= 8")] = (64, 64)
    window: tuple[Num, Num] | None = None  # (centre, width) intensity window of the models, the viewer and the
    #                                        duplicate check; None = header VOI / none (duplicates: percentiles)
    crop_to_mask: Bool = False             # crop to the mask's bounding box before resizing
    margin: NonNegative = 0.1              # relative margin around the mask's bounding box
    normalize: Literal["zscore", "minmax", "none"] = "zscore"
    cache_dir: PathText = ".cache/medlib"      # preprocessed tensors, keyed by input file and these settings


@dataclass(frozen=True, config=_SCHEMA)
class ModelConfig:
    """One model of the comparison."""

    name: Text = "resnet18"                # registry name (medlib.learn.models.available_models())
    label: Label = ""                      # display name in the report (unique across models); defaults to name
    inputs: tuple[Text, ...] = ()          # image columns fed to the model (empty = all image columns)
    spatial_dims: Literal[2, 3] = 2        # 2 for images, 3 for volumes; as many axes as image.size
    pretrained: Bool = False               # ImageNet weights from the local torch hub cache (2D)
    weights_path: PathText | None = None       # local weights file (e.g. MedicalNet 3D)
    multiview: Literal["shared", "separate"] = "separate"  # one backbone per view, or one shared
    cam_layer: Text | None = None          # layer name for Grad-CAM; None = the model's default
    width: Positive = 1.0                  # channel-width multiplier of the 3D vgg16, resnet10 and resnet18

    @property
    def display_name(self) -> str:
        return self.label or self.name


@dataclass(frozen=True, config=_SCHEMA)
class TrainConfig:
    """Optimisation. The defaults are medlib's one recipe for every study (``medlib.learn.recipe``): AdamW with
    weight decay, linear warm-up then cosine decay per step, flips, small affine and intensity augmentation,
    early stopping on validation AUC."""

    epochs: Count = 30
    batch_size: Count = 16                 # small batches: enough steps per epoch on cohorts of a few hundred
                                           # (Masters & Luschi 2018 found 2-32 best)
    lr: Positive | None = None             # peak learning rate; None = 1e-3 in 2D, 1e-3/3 in 3D (recipe.default_lr)
    optimizer: Literal["adam", "adamw"] = "adamw"
    weight_decay: NonNegative = 0.05       # AdamW's decoupled decay (not on biases and norm scales)
    scheduler: Literal["warmup_cosine", "cosine", "none"] = "warmup_cosine"  # stepped per optimisation step
    warmup_epochs: NonNegative = 1.0       # linear warm-up of warmup_cosine, in epochs
    loss: Literal["ce", "focal", "ce+focal"] = "ce"
    focal_gamma: NonNegative = 2.0
    focal_alpha: Fraction | None = None    # weight of the positive class in the focal loss
    focal_weight: NonNegative = 1.0        # weight of the focal term in "ce+focal"
    class_weights: Bool = False            # inverse-frequency class weights for cross-entropy
    patience: Annotated[Int, Field(ge=0)] = 10  # early stopping on validation AUC (0 = none)
    grad_clip: Positive | None = 1.0       # gradient-norm clipping; None = none
    augment: Bool = True                   # flips, small affine and intensity jitter on the training set
    flip: Bool = True                      # left-right flips in augment; false where the side matters
    amp: Bool = True                       # mixed precision on CUDA (ignored on CPU)
    device: Text = "auto"                  # "auto", "cpu", "cuda", "cuda:1"
    seed: Int = 0
    threads: Count | None = None           # torch CPU threads; None = torch's default
    distributed: Bool = False              # DistributedDataParallel under torchrun (one process per GPU; gloo on CPU)


@dataclass(frozen=True, config=_SCHEMA)
class ThresholdConfig:
    """The operating threshold: chosen on validation data, then frozen for test and external sets."""

    method: Literal["youden", "sensitivity", "fixed"] = "youden"
    target: Num | None = None              # sensitivity: the target in (0, 1]; fixed: the threshold in [0, 1];
                                           # youden: none

    @model_validator(mode="after")
    def _target_fits_method(self) -> ThresholdConfig:
        t, method = self.target, self.method
        if method == "youden" and t is not None:
            raise config_problem("null for method 'youden' (the threshold maximises Youden's J)", key="target",
                                 value=t)
        if method == "sensitivity" and (t is None or not 0 < t <= 1):
            raise config_problem("a number in (0, 1] (the target sensitivity) for method 'sensitivity'",
                                 key="target", value=t)
        if method == "fixed" and (t is None or not 0 <= t <= 1):
            raise config_problem("a number in [0, 1] (the threshold) for method 'fixed'", key="target", value=t)
        return self


@dataclass(frozen=True, config=_SCHEMA)
class ExplainConfig:
    """Grad-CAM panels."""

    enabled: Bool = True
    n_cases: Count = 4                     # cases per outcome group (TP, FP, TN, FN)
    target: Literal["predicted", "true", "positive", "negative"] = "positive"  # the class each map explains;
                                           # with lesion masks, the class of cohort.lesion_outcome


@dataclass(frozen=True, config=_SCHEMA)
class RadiomicsConfig:
    """Radiomics, habitats and fusion (the ICH design)."""

    enabled: Bool = False                  # true goes with design: features
    bin_width: Positive = 25.0             # fixed bin width in image units (HU for CT)
    resample_mm: Positive | None = 1.0     # isotropic resampling before extraction; None = none
    feature_classes: tuple[Text, ...] = ("firstorder", "shape", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
    habitats: ZeroOrTwoPlus = 3            # habitat subregions (0 = none)
    deep_model: Text = "resnet50"          # backbone for deep features on ROI slices
    deep_offsets_mm: tuple[Num, ...] = (-2.0, -1.0, 0.0, 1.0, 2.0)
    deep_window: tuple[Num, Num] = (40.0, 80.0)  # brain window (centre, width) in HU
    deep_size: Annotated[Int, Field(ge=8)] = 64  # slice crops resized to this before the backbone
    deep_weights: Literal["trained", "imagenet", "random"] = "trained"  # backbone weights: trained on the
                                           # training set's ROI slices only; torchvision's ImageNet file
                                           # (torch cache, SHA-256 checked); random (an ablation)
    deep_epochs: Count = 3                 # epochs of the trained backbone (deep_weights: trained)
    workers: Count = 1                     # processes for feature extraction and for fitting the feature models


@dataclass(frozen=True, config=_SCHEMA)
class ReferenceSection:
    """Published results to compare with; the report's comparison section appears only when given."""

    source: Annotated[Line, Field(description="the publication the results come from, e.g. 'Author et al., "
                                              "Journal 2024'")]
    results: Annotated[dict[Annotated[Text, AfterValidator(_reference_key)], Fraction], Field(
        min_length=1, description="published numbers keyed '<model label>.<metric>' or "
                                  "'<model label>.<set>_<metric>', e.g. ResNet18.accuracy: 0.919")]


@dataclass(frozen=True, config=_SCHEMA)
class StudySection:
    """What the study is about, in the words the report uses. Required; no defaults."""

    name: Annotated[Name, Field(description="the study's short id; run folders are runs/<name>/")]
    title: Annotated[Line, Field(description="the report's title")]
    question: Annotated[Line, Field(description="the clinical question, one sentence")]
    population: Annotated[Line, Field(description="who is included, one sentence")]
    unit: Annotated[Line, Field(description="what one case of the manifest is, a singular noun such as infant, "
                                            "hip, patient or image")]
    positive: Annotated[Line, Field(description="what the positive label means, e.g. 'needed surgery'")]
    negative: Annotated[Line, Field(description="what the negative label means")]
    inputs: dict[Text, Line] = field(default_factory=dict)  # image column -> what it shows, e.g.
                                           # {xray: "one bedside AP abdominal radiograph (DICOM)"}
    background: Paragraph | None = None    # the design this study follows (may name a paper)
    reference: ReferenceSection | None = None  # published results to compare with
    published: dict[Text, Any] = field(default_factory=dict)  # the published design as settings: dotted
                                           # key (models[<label> or *].<key>) -> its value or {value, why};
                                           # the report lists where this run differs


@dataclass(frozen=True, config=_SCHEMA)
class AnalysisConfig:
    """Further analyses of the report (``medlib.stats.subgroups``, ``medlib.data.duplicates``)."""

    subgroups: tuple[Text, ...] = ()       # manifest columns analysed level by level (e.g. [sex, age, vendor,
                                           # site]); numeric ones with > 5 values are cut into tertiles; a name
                                           # missing from the manifest is refused when the cohort is read
    min_events: Count = 5                  # a subgroup is estimated only with this many cases of each outcome
    duplicates: Bool = True                # hash every image; list near-duplicate pairs across sets
    duplicate_similarity: Annotated[Num, Field(gt=0.5, le=1)] = 0.91  # near duplicate: hash similarity >= this
    stop_on_near_duplicates: Bool = False  # stop the run when a near-duplicate pair spans two sets
    allow_exact_duplicates: Bool = False   # let identical images in two sets pass (listed); else the run stops


@dataclass(frozen=True, config=_SCHEMA)
class StudyConfig:
    """One study: what it is about, cohort, split, preprocessing, models, training, thresholds, explanation."""

    study: StudySection                    # required: see the module docstring
    design: Literal["classifier", "features"] = "classifier"  # CNNs on the images, or radiomics + fusion
    cohort: CohortConfig = field(default_factory=CohortConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    models: tuple[ModelConfig, ...] = ()
    train: TrainConfig = field(default_factory=TrainConfig)
    threshold: ThresholdConfig = field(default_factory=ThresholdConfig)
    explain: ExplainConfig = field(default_factory=ExplainConfig)
    radiomics: RadiomicsConfig = field(default_factory=RadiomicsConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    runs_dir: PathText = "runs"                # run folders: runs/<study.name>/<run-id>/

    @model_validator(mode="after")
    def _sections_agree(self) -> StudyConfig:
        if self.design == "features" and not self.radiomics.enabled:
            raise config_problem("true for design 'features' (radiomics, deep features and their fusion)",
                                 key="radiomics.enabled", value=False)
        if self.radiomics.enabled and self.design != "features":
            raise config_problem("'features' when radiomics.enabled is true", key="design", value=self.design)
        seen: dict[str, int] = {}
        for i, m in enumerate(self.models):
            same = " ".join(m.display_name.casefold().split())  # "ResNet18" and "resnet18 " share a folder
            if same in seen:
                raise config_problem(f"a display name unique across models, ignoring case and spaces "
                                     f"(models[{seen[same]}] is {self.models[seen[same]].display_name!r}); set "
                                     f"models[].label", key=f"models[{i}].label", value=m.display_name)
            seen[same] = i
        unknown = [k for k in self.study.inputs if k not in self.cohort.image_columns]
        if unknown:
            raise config_problem(f"keys among cohort.image_columns {list(self.cohort.image_columns)}",
                                 key="study.inputs", value=unknown)
        lesion_target = "negative" if self.cohort.lesion_class == 0 else "positive"
        if self.cohort.lesion_masks and self.explain.target in ("positive", "negative") \
                and self.explain.target != lesion_target:
            raise config_problem(f"{lesion_target!r}: the lesion masks mark evidence for "
                                 f"{self.cohort.lesion_outcome or self.cohort.positive!r} (cohort.lesion_outcome), "
                                 f"so the maps must explain that class", key="explain.target",
                                 value=self.explain.target)
        check_combinations(self)
        return self


#: Extra words for keys of the old schema (before the study: section).
_MOVED = {"title": "moved to study.title",
          "reference": "moved to study.reference.results, with study.reference.source naming the publication",
          "study": "the short name moved to study.name"}


def config_from_dict(data: Mapping[str, Any], *, source: str = "<dict>") -> StudyConfig:
    """Validate a plain mapping (as read from YAML) into a ``StudyConfig``.

    Raises:
        ConfigError: one line per problem (the first few), each naming the source, the key, the value and
            what was expected.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping of config keys at the top level")
    try:
        return TypeAdapter(StudyConfig).validate_python(dict(data))
    except ValidationError as err:
        raise_config_error(err, StudyConfig, source, hints=_MOVED)


def load_config(path: str | Path, overrides: typing.Iterable[str] | Mapping[str, Any] = ()) -> StudyConfig:
    """Read ``params/<study>.yaml`` with a safe loader, apply overrides and validate.

    Args:
        path: the params file.
        overrides: ``["train.epochs=3", ...]`` or a nested mapping.

    Raises:
        FileNotFoundError: the params file does not exist.
        ConfigError: unknown or missing key, wrong type, value out of range, or malformed YAML, naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"params file not found: {path}")
    if len(path.stem.encode("utf-8", "surrogatepass")) > PARAMS_STEM_MAX:
        raise ConfigError(f"{path}: the params file name has {len(path.stem.encode('utf-8', 'surrogatepass'))} "
                          f"bytes; expected at most {PARAMS_STEM_MAX} (the report reports/<name>.failed.ipynb is "
                          f"named after it)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a UTF-8 text file ({err.reason} at byte {err.start}); expected YAML") from None
    data = load_yaml(text, str(path)) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level")
    extra = overrides if isinstance(overrides, Mapping) else parse_overrides(overrides)
    return check_effects(merge(data, extra), source=str(path))


#: Longest params file name (without .yaml): ``reports/<name>.failed.ipynb`` must fit in ``NAME_MAX``.
PARAMS_STEM_MAX = 200


def check_effects(data: Mapping[str, Any], *, source: str) -> StudyConfig:
    """Validate a user's params (file and overrides) and refuse a setting written there that would have no
    effect in this combination (``image.margin`` without ``crop_to_mask``, ``split.seed`` with a split file,
    ``train.epochs`` in a features design ...): a setting that is silently ignored misleads the reader of the
    report. A run's own ``config.yaml`` (every key written) is read with ``config_from_dict`` instead.

    Raises:
        ConfigError: as ``config_from_dict``, or naming the key that has no effect and why.
    """
    cfg = config_from_dict(data, source=source)
    problems = [f"{source}: {key}: has no effect {why}; remove it" for key, why in ignored_settings(data, cfg)]
    if problems:
        raise ConfigError("\n".join(problems[:5]))
    return cfg


def config_to_dict(config: Any) -> dict[str, Any]:
    """A plain, YAML-safe dict of a config (tuples as lists), for ``config.yaml`` in a run folder. A study's paths
    are written relative to the workspace (``medlib.resources.display_paths``): no absolute path of the user's
    machine in a run record, and a resumed run compares equal wherever its params were read from."""
    from medlib.resources import display_paths

    def plain(v: Any) -> Any:
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    return plain(dataclasses.asdict(display_paths(config) if isinstance(config, StudyConfig) else config))
