"""The report's sentences about the study, generated from the params file's ``study:`` section and the config.

No sentence about a disease, a population or a published paper is written anywhere else: a notebook shows what
these functions return, so a user's cohort gets a report about the user's study. Every function returns
Markdown and reads only the config (and plain counts), never a model.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Mapping, Sequence

import pandas as pd

from medlib.config import ModelConfig, StudyConfig
from medlib.report.format import join_words
from medlib.schema import SplitRecord

_NUMBERS = {1: "One", 2: "Two", 3: "Three", 4: "Four", 5: "Five", 6: "Six", 7: "Seven", 8: "Eight"}
_LOSSES = {"ce": "cross-entropy loss", "focal": "focal loss", "ce+focal": "cross-entropy plus focal loss"}
_OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW"}
_WEIGHTS = {"trained": "trained on the training set's ROI slices only, then frozen",
            "imagenet": "torchvision's ImageNet weights, SHA-256 checked",
            "random": "random initialisation, untrained: an ablation, not the published design's pretrained network"}


def introduction(cfg: StudyConfig) -> str:
    """The report's opening: the question, the population, the outcome and the design, then the background."""
    s = cfg.study
    parts = [f"**Question.** {s.question}", f"**Population.** {s.population}",
             f"**Outcome.** Positive (*{cfg.cohort.positive}*): {s.positive}. Negative (*{cfg.cohort.negative}*): "
             f"{s.negative}.", f"**Design.** {design_sentence(cfg)}"]
    text = "\n\n".join(parts)
    if s.background:
        text += f"\n\n{s.background.strip()}"
    return text


def design_sentence(cfg: StudyConfig) -> str:
    """One sentence: what is compared, on which inputs, split how."""
    ratios = ":".join(f"{r:g}" for r in cfg.split.ratios)
    split = (f"the official split given in `{_name(cfg.split.split_file)}`" if cfg.split.split_file else
             f"a random patient-level split ({ratios}, training:validation{':test' if len(cfg.split.ratios) == 3 else ''})")
    if cfg.design == "features":
        habitats = (f" and per habitat subregion ({cfg.radiomics.habitats} subregions)" if cfg.radiomics.habitats
                    else "")
        return (f"Radiomics features of the region of interest{habitats}, deep features from a "
                f"{cfg.radiomics.deep_model} backbone, and both fused, each selected by LASSO and classified by an "
                f"SVM, compared on {split}.")
    names = join_words([m.display_name for m in cfg.models])
    return f"{_count(len(cfg.models), 'model')} compared ({names}) on {split}."


def cohort_paragraph(cfg: StudyConfig, split: SplitRecord) -> str:
    """What one case is and what images it contributes, how many cases and patients, how the split was made
    (with its hash) and how an external cohort is used."""
    s = cfg.study
    described = [f"{s.inputs[c]} (`{c}`)" if c in s.inputs else f"image `{c}`" for c in cfg.cohort.image_columns]
    n_cases, n_patients = len(split.table), int(split.table["patient_id"].nunique())
    text = f"Each {s.unit} contributes {join_words(described)}."
    if cfg.cohort.mask_column:
        text += f" A region-of-interest mask (`{cfg.cohort.mask_column}`) accompanies each image."
    counted = (f"{n_cases} {_plural(s.unit, n_cases)}" if s.unit == "patient" and n_cases == n_patients else
               f"{n_cases} {_plural(s.unit, n_cases)} from {n_patients} {_plural('patient', n_patients)}")
    text += (f" {counted} {'was' if n_cases == 1 else 'were'} included from the manifest (every row passed "
             f"validation). {split.how} Split hash `{split.hash[:12]}`. ")
    if "external" in split.sets:
        text += ("Cases marked `external` in the manifest form an external test set: they are never used for "
                 "training, model selection or threshold choice.")
    else:
        text += "There is no external test set."
    return text


def explain_paragraph(cfg: StudyConfig, sections: Sequence[str]) -> str:
    """What the explainability section shows for this design, or why it shows nothing."""
    if cfg.design == "features":
        shown = [f"@{label}" for label in ("tbl-selected", "fig-habitats") if label in sections]
        return (f"The feature models are explained by the features they kept and their coefficients"
                f"{' (' + ', '.join(shown) + ')' if shown else ''}; Grad-CAM applies to CNNs only.")
    if "fig-cam" not in sections:
        return "Grad-CAM maps were not computed in this run (`explain.enabled: false` in the params)."
    return (f"Grad-CAM maps (pytorch-grad-cam) of the model with the best validation AUC, for up to "
            f"{cfg.explain.n_cases} {_plural('case', cfg.explain.n_cases)} of each outcome group (true and false "
            f"positives and negatives) of the primary test set, for the "
            f"{'positive class' if cfg.explain.target == 'positive' else cfg.explain.target + ' class'}."
            f"{_hirescam_sentence(cfg)}")


def _hirescam_sentence(cfg: StudyConfig) -> str:
    """Why some maps are HiResCAM's, naming those models; "" when every map is Grad-CAM's."""
    from medlib.learn.sizes import hirescam_models

    models = hirescam_models(cfg)
    if not models:
        return ""
    return (f" The maps of {join_words(models)} come from a layer before the model's last block (named with each "
            f"map; the input is too small for the last one), so they are HiResCAM's (Draelos & Carin 2020): "
            f"gradient times activation in each cell. HiResCAM equals Grad-CAM at the last block; before it, "
            f"Grad-CAM's spatially averaged gradient no longer shows where the evidence lies.")


def models_paragraph(cfg: StudyConfig) -> str:
    """How the models were built and trained, from the config."""
    if cfg.design == "features":
        rc = cfg.radiomics
        habitats = (f" Habitat subregions: the ROI's voxels are clustered per patient into {rc.habitats} subregions "
                    f"(k-means on intensity and local texture, both standardised within the ROI) and numbered by "
                    f"ascending mean intensity, so habitat 1 is the lowest-density subregion in every patient; "
                    f"radiomics are computed per subregion." if rc.habitats else "")
        return (f"Radiomics features ({join_words(rc.feature_classes)}) are extracted with pyradiomics at a fixed "
                f"bin width of {rc.bin_width:g}"
                f"{f' after isotropic resampling to {rc.resample_mm:g} mm' if rc.resample_mm else ''}.{habitats} "
                f"Deep features are pooled activations of a {rc.deep_model} ({_WEIGHTS[rc.deep_weights]}) on the "
                f"slices of the largest ROI cross-section and at {join_words([f'{o:g}' for o in rc.deep_offsets_mm])} "
                f"mm from it. For each feature set, LASSO (L1 logistic regression) selects features and an SVM (RBF "
                f"kernel, Platt-scaled probabilities) classifies; the LASSO alpha and the SVM's C and gamma are "
                f"tuned together by cross-validated AUC in folds grouped by patient, on the training set only. "
                f"The training-set AUC is out-of-fold (patient-grouped folds), never resubstitution. Nothing is "
                f"fitted on validation or test data.")
    t = cfg.train
    models = "; ".join(_model_text(cfg, m) for m in cfg.models)
    rate, rate_rule = _learning_rate(cfg)
    return (f"{models}. Training: {_OPTIMIZERS[t.optimizer]} (learning rate {rate}"
            f"{f', weight decay {t.weight_decay:g}' if t.weight_decay else ''}), {_LOSSES[t.loss]}"
            f"{', inverse-frequency class weights' if t.class_weights else ''}, batch size {t.batch_size}, up to "
            f"{t.epochs} epochs{_schedule(t)}{_augmentation(t)}; the weights of the "
            f"epoch with the best validation AUC are kept"
            f"{f' (early stopping after {t.patience} epochs without improvement)' if t.patience else ''}. "
            f"{rate_rule}Images are resized to {' × '.join(map(str, cfg.image.size))}"
            f"{', cropped to the mask' if cfg.image.crop_to_mask else ''} and normalised ({cfg.image.normalize}).")


def _learning_rate(cfg: StudyConfig) -> tuple[str, str]:
    """The peak learning rate, and for the recipe's 3D default a sentence saying where its third comes from."""
    from medlib.learn.recipe import LR_2D, study_learning_rate

    rate = f"{study_learning_rate(cfg):.3g}"
    if cfg.train.lr is None and len(cfg.image.size) == 3:
        return rate, (f"The learning rate is a third of the 2D rate {LR_2D:g}: a 3 × 3 × 3 kernel has three times "
                      f"the fan-in of a 3 × 3 one, and Adam's step scales as 1/fan-in (Yang et al. 2022). ")
    return rate, ""


def _schedule(t: Any) -> str:
    """The learning-rate schedule in words, from ``train.scheduler`` (and ``warmup_epochs``)."""
    if t.scheduler == "warmup_cosine":
        warmup = getattr(t, "warmup_epochs", 0)
        return f" with a linear warm-up over {warmup:g} epoch{'' if warmup == 1 else 's'} then cosine decay"
    return " with a cosine learning-rate decay" if t.scheduler == "cosine" else ""


def _augmentation(t: Any) -> str:
    """What augmentation the training set got, from ``train.augment`` and ``train.flip``."""
    if not t.augment:
        return ", no augmentation"
    flips = "left-right flips, " if getattr(t, "flip", True) else ""
    return f", augmentation of the training images ({flips}small affine and intensity changes)"


def _model_text(cfg: StudyConfig, m: ModelConfig) -> str:
    inputs = m.inputs or cfg.cohort.image_columns
    init = "ImageNet weights" if m.pretrained else ("weights from a file" if m.weights_path else
                                                    "random initialisation")
    views = (f"{len(inputs)} inputs ({join_words(inputs)}), one backbone per input" if len(inputs) > 1 and
             m.spatial_dims == 2 and m.multiview == "separate" else
             f"{len(inputs)} inputs ({join_words(inputs)}) as channels" if len(inputs) > 1 else f"input {inputs[0]}")
    return f"**{m.display_name}**: {m.name} ({m.spatial_dims}D, {init}, {views})"


def reference_paragraph(cfg: StudyConfig) -> str:
    """The sentence above the comparison with published results; empty when the params give none."""
    ref = cfg.study.reference
    if ref is None:
        return ""
    return (f"The published results beside this run's (source: {ref.source.strip()}). The comparison is of the "
            f"design: unless this run used the same data, the numbers are not expected to agree.")


def _count(n: int, noun: str) -> str:
    return f"{_NUMBERS.get(n, str(n))} {_plural(noun, n)}"


def _plural(noun: str, n: int = 2) -> str:
    if n == 1:
        return noun
    return noun[:-1] + "ies" if noun.endswith("y") and noun[-2:-1] not in "aeiou" else noun + "s"


def _name(path: str | None) -> str:
    from pathlib import Path

    return Path(path).name if path else ""


# ------------------------------------------------------------------ what the run did (from its record)


def _weights_of(record: Any) -> dict[str, Any] | None:
    """The backbone's weights record as plain data, from a ``BackboneWeights``, its ``as_dict()``, or a run's
    results (``FeatureResults``: ``results.features.deep_weights``; a CNN run's results have none)."""
    features = getattr(record, "features", None)
    if features is not None or hasattr(record, "predictions"):
        record = getattr(features, "deep_weights", None)
    if record is None:
        return None
    return record.as_dict() if hasattr(record, "as_dict") else dict(record)


def deep_weights_paragraph(weights: Any) -> str:
    """Which weights the deep-feature backbone used, where they came from and their SHA-256 (from the run's
    ``BackboneWeights`` record, its ``as_dict()`` or the run's results); an ablation is said to be one; empty
    for a run without deep features."""
    w = _weights_of(weights)
    if w is None:
        return ""
    text = f"**Deep-feature weights.** {w['source']}. SHA-256 `{w['sha256']}`"  # source starts with a model name
    text += " (of the weight file)." if w["kind"] == "imagenet" else " (of the weights' tensors)."
    if w.get("ablation"):
        text += (" **Ablation:** these deep features come from an untrained network and do not reproduce the "
                 "published design's pretrained features.")
    return text


def tuning_paragraph(tuning: Any) -> str:
    """The hyperparameters each feature model was tuned to (``FeatureResults.tuning``, or the results
    themselves), in one sentence each; empty for a CNN run."""
    tuning = getattr(tuning, "tuning", tuning) if not isinstance(tuning, Mapping) else tuning
    if not tuning or not isinstance(tuning, Mapping):
        return ""
    parts = [f"{name}: {t['selected']} of {t['candidates']} features kept (LASSO alpha {t['lasso_alpha']:.3g}), SVM "
             f"C {t['svm_C']:g}" + (f", gamma {t['gamma']:g}" if t.get("gamma") is not None else "")
             + f", inner cross-validated AUC {t['inner_cv_auc']:.3f}" for name, t in tuning.items()]
    folds = max(int(t.get("folds", 0)) for t in tuning.values())
    return (f"**Tuning** ({folds} inner folds grouped by patient, training set only). " + "; ".join(parts) + ".")


def statistics_paragraph(values: pd.DataFrame) -> str:
    """How each interval of the performance table was computed, in the words the statistics functions recorded
    (the ``method`` column of ``medlib.report.tables.performance_values``, kept in ``metrics.json``): a
    clustered interval is described as clustered only when the run computed one.

    Raises:
        ValueError: ``values`` lacks the ``metric`` or ``method`` column.
    """
    from medlib.report.format import METRICS

    missing = [c for c in ("metric", "method") if c not in getattr(values, "columns", ())]
    if missing:
        raise ValueError(f"values must be the table of performance_values (columns metric, method); missing {missing}")
    by_method: dict[str, list[str]] = {}
    for metric, methods in values.groupby("metric", sort=False)["method"]:
        for method in dict.fromkeys(str(m) for m in methods if isinstance(m, str) and m and m != "undefined threshold"):
            by_method.setdefault(method, []).append(METRICS.get(metric, metric))
    if not by_method:
        return "No interval was computed in this run."
    return "95% confidence intervals: " + "; ".join(f"{join_words(ms)} by {m}" for m, ms in by_method.items()) + "."


def deviations(cfg: StudyConfig, weights: Any = None) -> str:
    """Where this run's settings differ from the published design's (``study.published`` in the params), as a
    Markdown list; random deep-feature weights are always listed, as an ablation. ``weights``: the run's
    results or its backbone record (None: the config's ``radiomics.deep_weights``).

    Each ``study.published`` entry is a dotted config key (``models[<label>]`` or ``models[*]`` for the models)
    with the published value, or ``{value: ..., why: "..."}`` to give the reason for a deviation.

    Raises:
        ConfigError: a key that names no setting of the config (naming the key and what was expected).
    """
    items = []
    for key, spec in cfg.study.published.items():
        published, why = (spec.get("value"), spec.get("why")) if isinstance(spec, Mapping) else (spec, None)
        for where, ours in _settings(cfg, key).items():
            if ours is _NOT_TRAINED:
                line = f"- `{where}`: a model of the published design that this run does not train."
                if line not in items:
                    items.append(line)
            elif not _same(ours, published):
                items.append(f"- `{where}`: published design {_show(published)}; this run {_show(ours)}"
                             + (f" ({why.strip()})" if why else "") + ".")
    kind = (_weights_of(weights) or {}).get("kind", cfg.radiomics.deep_weights)
    if cfg.design == "features" and kind == "random" and not any("deep_weights" in i for i in items):
        items.append("- `radiomics.deep_weights`: random, untrained backbone: an ablation of the deep features.")
    if items:
        return "This run differs from the published design it follows in:\n\n" + "\n".join(items)
    if cfg.study.published:
        return "This run follows every published setting the params record (`study.published`)."
    return "The params record no published design settings (`study.published`), so no deviation can be listed."


_NOT_TRAINED = object()  # marks a published model that the config does not name
_MODEL_KEY = re.compile(r"models\[(?P<label>[^\]]+)\]\.(?P<attr>\w+)")


def _settings(cfg: StudyConfig, key: str) -> dict[str, Any]:
    """The config value(s) a ``study.published`` key names: ``{shown key: value}``."""
    from medlib.config import ConfigError

    match = _MODEL_KEY.fullmatch(key)
    if match:
        label, attr = match["label"], match["attr"]
        models = [m for m in cfg.models if label in ("*", m.display_name)]
        from medlib.config import ModelConfig

        if not models and label != "*" and attr in {f.name for f in dataclasses.fields(ModelConfig)}:
            return {f"models[{label}]": _NOT_TRAINED}  # a published model this run leaves out: a deviation
        if not models or not hasattr(models[0], attr):
            raise ConfigError(f"study.published: {key!r} names no setting: expected models[<label> or *].<key> with "
                              f"a label among {[m.display_name for m in cfg.models]} and a key of models[]")
        return {f"models[{m.display_name}].{attr}": getattr(m, attr) for m in models}
    node: Any = cfg
    for part in key.split("."):
        if not dataclasses.is_dataclass(node) or part not in {f.name for f in dataclasses.fields(node)}:
            raise ConfigError(f"study.published: {key!r} names no setting: expected a dotted config key such as "
                              f"'split.ratios' or 'radiomics.deep_weights'")
        node = getattr(node, part)
    if key == "train.lr" and node is None:  # the recipe's default for the images' dimensions
        from medlib.learn.recipe import study_learning_rate

        node = study_learning_rate(cfg)
    return {key: node}


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def _same(ours: Any, published: Any) -> bool:
    a, b = _plain(ours), _plain(published)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def _show(value: Any) -> str:
    value = _plain(value)
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "none"}[value]
    return f"{value:g}" if isinstance(value, float) else str(value)
