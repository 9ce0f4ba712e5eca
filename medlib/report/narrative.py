"""The report's sentences about the study, generated from the params file's ``study:`` section and the config.

No sentence about a disease, a population or a published paper is written anywhere else: a notebook shows what
these functions return, so a user's cohort gets a report about the user's study. Every function returns
Markdown and reads only the config (and plain counts), never a model.
"""

from __future__ import annotations

from typing import Sequence

from medlib.config import ModelConfig, StudyConfig
from medlib.report.format import join_words
from medlib.schema import SplitRecord

_NUMBERS = {1: "One", 2: "Two", 3: "Three", 4: "Four", 5: "Five", 6: "Six", 7: "Seven", 8: "Eight"}
_LOSSES = {"ce": "cross-entropy loss", "focal": "focal loss", "ce+focal": "cross-entropy plus focal loss"}
_OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW"}


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
            f"{'positive class' if cfg.explain.target == 'positive' else cfg.explain.target + ' class'}.")


def models_paragraph(cfg: StudyConfig) -> str:
    """How the models were built and trained, from the config."""
    if cfg.design == "features":
        rc = cfg.radiomics
        return (f"Radiomics features ({join_words(rc.feature_classes)}) are extracted with pyradiomics at a fixed "
                f"bin width of {rc.bin_width:g}"
                f"{f' after isotropic resampling to {rc.resample_mm:g} mm' if rc.resample_mm else ''}. Deep features "
                f"are pooled activations of a {rc.deep_model} (random initialisation) on the slices of the largest ROI "
                f"cross-section and at {join_words([f'{o:g}' for o in rc.deep_offsets_mm])} mm from it. For each "
                f"feature set, LASSO (L1 logistic regression, cross-validated) selects features on the training set "
                f"only and an SVM classifies; nothing is fitted on validation or test data.")
    t = cfg.train
    models = "; ".join(_model_text(cfg, m) for m in cfg.models)
    return (f"{models}. Training: {_OPTIMIZERS[t.optimizer]} (learning rate {t.lr:g}"
            f"{f', weight decay {t.weight_decay:g}' if t.weight_decay else ''}), {_LOSSES[t.loss]}"
            f"{', inverse-frequency class weights' if t.class_weights else ''}, batch size {t.batch_size}, up to "
            f"{t.epochs} epochs{f' with a {t.scheduler} learning-rate schedule' if t.scheduler != 'none' else ''}"
            f"{', random flips and small shifts of the training images' if t.augment else ''}; the weights of the "
            f"epoch with the best validation AUC are kept"
            f"{f' (early stopping after {t.patience} epochs without improvement)' if t.patience else ''}. "
            f"Images are resized to {' × '.join(map(str, cfg.image.size))}"
            f"{', cropped to the mask' if cfg.image.crop_to_mask else ''} and normalised ({cfg.image.normalize}).")


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
