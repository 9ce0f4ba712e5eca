"""The steps every design shares: load and check the params, read the cohort, split it by patient, and the
cohort's tables and example images.

Each function is one step of the flow in ``docs/DESIGN.md`` and returns plain tables or the records of
``medlib.schema``; nothing here draws or formats (``medlib.report`` does).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from medlib.config import ConfigError, StudyConfig, config_from_dict, load_config, merge, parse_overrides
from medlib.data.cohort import Cohort, load_cohort, read_split, split_cohort, split_hash
from medlib.schema import EVALUATION_SETS, INTERNAL_SETS, PRIMARY_SET_ORDER, SET_LABELS, SPLIT_COLUMNS, SplitRecord


@dataclass(frozen=True)
class Prepared:
    """A validated cohort with its patient-level split.

    Attributes:
        cohort: the validated cohort.
        table: the cohort table with the split's ``set`` column (train/val/test/external).
        split: the split record (table, hash, and one sentence saying how it was made).
    """

    cohort: Cohort
    table: pd.DataFrame
    split: SplitRecord

    @property
    def sets(self) -> tuple[str, ...]:
        return self.split.sets


def load_study(config_path: str | Path, overrides: Sequence[str] = (), *,
               injected: Mapping[str, Any] | None = None, root: str | Path = ".",
               check: bool = True) -> StudyConfig:
    """Load and validate the study's params file; papermill's parameters arrive here.

    Args:
        config_path: the params file.
        overrides: ``key=value`` strings.
        injected: the notebook's globals. ``papermill nb.ipynb out.ipynb -f params/x.yaml`` injects each top-level
            key of the YAML as a variable: when any config section arrives this way, the injected sections are
            the params (validated like a file, ``config_path`` is not read), so a default params file never
            loads underneath them.
        root: the folder relative weights paths are read from (the project root; the notebook runs there).
        check: run ``check_models`` (it imports torch; ``medlib run`` checks the cohort first, then the models).

    Raises:
        ConfigError: the params do not match the schema, or no model is configured.
        FileNotFoundError: the params file or a configured weights file is missing.
        KeyError: an unknown model name.
    """
    extra = {k: v for k, v in (injected or {}).items() if k in _CONFIG_KEYS and not isinstance(v, ModuleType)}
    if extra:
        source = "papermill parameters (-f/-p)"
        cfg = config_from_dict(merge(extra, parse_overrides(list(overrides))), source=source)
    else:
        cfg = load_config(config_path, parse_overrides(list(overrides)))
    if not cfg.models and cfg.design == "classifier":
        raise ConfigError(f"{source if extra else config_path}: models: design 'classifier' needs at least one "
                          f"model (models: [...])")
    if check:
        check_models(cfg, source=str(config_path), root=root)
    return cfg


_CONFIG_KEYS = {f.name for f in dataclasses.fields(StudyConfig)}


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


def prepare(cfg: StudyConfig) -> Prepared:
    """Read and validate the cohort, then split it by patient (or read the user's split) and check leakage."""
    import_public_source(cfg)
    cohort = load_cohort(cfg.cohort.manifest, cfg.cohort)
    if cfg.split.split_file:
        split = read_split(cfg.split.split_file, cohort)
        how = f"User-provided split from {Path(cfg.split.split_file).name}, checked for patient overlap."
    else:
        split = split_cohort(cohort, ratios=cfg.split.ratios, seed=cfg.split.seed, stratify=cfg.split.stratify,
                             group=cfg.split.group, folds=cfg.split.folds, fold=cfg.split.fold)
        how = split_sentence(cfg)
    split = split[list(SPLIT_COLUMNS)].reset_index(drop=True)
    table = cohort.table.drop(columns=["set"]).merge(split[["case_id", "set"]], on="case_id", validate="1:1")
    return Prepared(cohort=cohort, table=table, split=SplitRecord(table=split, hash=split_hash(split), how=how))


def split_sentence(cfg: StudyConfig) -> str:
    """How a random patient-level split of the internal cohort was made, in one or two sentences (how an
    external cohort is used is said by ``medlib.report.narrative.cohort_paragraph``)."""
    s = cfg.split
    names = INTERNAL_SETS[: len(s.ratios)]
    how = (f"Random split by patient ({s.group}), {'stratified by outcome, ' if s.stratify else ''}"
           f"ratios {':'.join(f'{r:g}' for r in s.ratios)} ({'/'.join(names)}), seed {s.seed}; every patient's "
           f"cases lie in one set (checked).")
    if s.folds:
        how += (f" Cross-validation: {s.folds} patient-level folds; fold {s.fold} is the test set, the other "
                f"folds are split train/validation by the ratios above.")
    return how


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


def eval_sets(prepared: Prepared) -> tuple[str, ...]:
    """The sets reported in the performance table: validation, test and external where present."""
    return tuple(s for s in EVALUATION_SETS if s in prepared.sets)


def primary_set(prepared: Prepared) -> str:
    """The set the figures show: the internal test set, else the external set, else validation."""
    for name in PRIMARY_SET_ORDER:
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
        table["set"] = pd.Categorical(table["set"].map(SET_LABELS), categories=list(SET_LABELS.values()))
    else:
        raise ValueError(f"by must be 'set' or 'outcome'; got {by!r}")
    continuous = [c for c in cfg.cohort.covariates if c not in cfg.cohort.categorical]
    labels = {c: c.replace("_", " ") for c in cfg.cohort.covariates}
    return table1(table[[*cfg.cohort.covariates, by]], by=by, categorical=list(cfg.cohort.categorical),
                  continuous=continuous, labels=labels)


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


def rooted(cfg: StudyConfig, root: Path) -> StudyConfig:
    """The config with its input paths (manifest, split file, public source) resolved against ``root``."""
    def at_root(value: str | None) -> str | None:
        return value if not value or Path(value).is_absolute() else str(root / value)

    return dataclasses.replace(
        cfg, cohort=dataclasses.replace(cfg.cohort, manifest=at_root(cfg.cohort.manifest),
                                        source=at_root(cfg.cohort.source)),
        split=dataclasses.replace(cfg.split, split_file=at_root(cfg.split.split_file)))
