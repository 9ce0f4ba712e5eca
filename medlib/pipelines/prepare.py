"""The steps every design shares: load and check the params, read the cohort, split it by patient, and the
cohort's tables and example images.

Each function is one step of the flow in ``docs/DESIGN.md`` and returns plain tables or the records of
``medlib.schema``; nothing here draws or formats (``medlib.report`` does).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from medlib.config import ConfigError, StudyConfig, check_effects, load_config, merge, parse_overrides
from medlib.resources import find_params, resolve_inputs
from medlib.data.cohort import Cohort, CohortError, check_geometry, load_cohort, read_split, split_cohort, split_hash
from medlib.data.probe import probe_cohort
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
               injected: Mapping[str, Any] | None = None, root: str | Path | None = None,
               check: bool = True) -> StudyConfig:
    """Load and validate the study's params file; papermill's parameters arrive here.

    Args:
        config_path: the params file.
        overrides: ``key=value`` strings.
        injected: the notebook's globals. ``papermill nb.ipynb out.ipynb -f params/x.yaml`` injects each top-level
            key of the YAML as a variable: when any config section arrives this way, the injected sections are
            the params (validated like a file, ``config_path`` is not read), so a default params file never
            loads underneath them.
        root: the workspace (default ``medlib.resources.workspace()``: the checkout's root, else the current
            folder). A relative ``config_path`` is looked for in the current folder, here, then among the built-in
            params, so a notebook whose kernel starts in ``notebooks/`` finds ``params/nec.yaml``; the params'
            input paths are read relative to the params file's folder, then here, and returned absolute
            (``medlib.resources.resolve_inputs``).
        check: run ``check_models`` (it imports torch; ``medlib run`` checks the cohort first, then the models).

    Raises:
        ConfigError: the params do not match the schema, or no model is configured.
        FileNotFoundError: the params file or a configured weights file is missing.
        KeyError: an unknown model name.
    """
    extra, source = papermill_params(injected or {})
    if extra:
        cfg = check_effects(merge(extra, parse_overrides(list(overrides))), source=source)
    else:
        config_path = find_params(config_path, root=Path(root) if root else None)
        cfg = load_config(config_path, parse_overrides(list(overrides)))
    cfg = resolve_inputs(cfg, None if extra else config_path, root=Path(root).resolve() if root else None)
    if not cfg.models and cfg.design == "classifier":
        raise ConfigError(f"{source if extra else config_path}: models: design 'classifier' needs at least one "
                          f"model (models: [...])")
    if check:
        check_models(cfg, source=str(config_path), root=root or ".")  # weights paths are absolute by now
    return cfg


_CONFIG_KEYS = {f.name for f in dataclasses.fields(StudyConfig)}
#: The notebook's own parameters (its ``parameters`` cell); any other injected name must be a config section.
NOTEBOOK_PARAMETERS = ("config_path", "overrides", "run_id", "resume")


def papermill_params(injected: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The config sections papermill injected (``-f my.yaml`` / ``-p key value``) and the words naming them.

    papermill runs its injected cell (source starting ``# Parameters``) in the kernel, so IPython's input history
    (``In``) says exactly which names it set: a name that is neither a config section nor a notebook parameter is
    a misspelled key and refused. The params file is named when the papermill command line shows it.

    Raises:
        ConfigError: an injected name that is not a config key.
    """
    import ast

    def assigned(cell: str) -> set[str]:
        try:
            tree = ast.parse(cell)
        except SyntaxError:
            return set()
        return {t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)}

    names: set[str] = set()
    own = set(NOTEBOOK_PARAMETERS)
    history = [c for c in injected.get("In", []) or [] if isinstance(c, str)]
    for i, cell in enumerate(history):
        if cell.lstrip().startswith("# Parameters"):
            names |= assigned(cell)
            if i > 0:  # papermill injects right after the notebook's own parameters cell
                own |= assigned(history[i - 1])
    source = _papermill_source()
    unknown = sorted(names - _CONFIG_KEYS - own)
    if unknown:
        raise ConfigError(f"{source}: Unknown config key(s) {unknown}. Allowed top-level keys: "
                          f"{sorted(_CONFIG_KEYS)} (and the notebook's parameters {sorted(own)})")
    keys = (names & _CONFIG_KEYS) if names else _CONFIG_KEYS
    return {k: v for k, v in injected.items() if k in keys and not isinstance(v, ModuleType)}, source


def _papermill_source() -> str:
    """``papermill parameters from <file>`` when the parent papermill process was given ``-f <file>``."""
    try:  # Linux's view of the parent's command line; elsewhere the generic words will do
        argv = [a.decode(errors="replace") for a in
                Path(f"/proc/{os.getppid()}/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        argv = []
    for flag in ("-f", "--parameters_file", "--parameters-file"):
        if flag in argv[:-1]:
            return f"{argv[argv.index(flag) + 1]} (papermill parameters)"
    return "papermill parameters (-f/-p)"


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
        if m.pretrained and (m.spatial_dims == 3 or m.name == "simplevit"):
            raise ValueError(f"{source}: models[{i}].pretrained: {m.name!r} ({m.spatial_dims}D) has no ImageNet "
                             f"weights in medlib; expected pretrained: false (3D: a local file in weights_path)")
        if m.pretrained:
            require_imagenet_weights(m.name)
        if m.weights_path is not None and not (Path(root) / m.weights_path).is_file():
            raise FileNotFoundError(f"{source}: models[{i}].weights_path: weights file not found: {m.weights_path}")
    _check_device(cfg.train.device, source)
    from medlib.learn.sizes import check_input_sizes

    check_input_sizes(cfg, source=source)  # each model against image.size and its Grad-CAM map, before any work


def _check_device(device: str, source: str) -> None:
    """``train.device`` names a device this machine has (a missing GPU fails here, not after preprocessing)."""
    import torch

    try:
        parsed = torch.device(device if device != "auto" else "cpu")
    except (RuntimeError, ValueError):
        raise ValueError(f"{source}: train.device: expected 'auto', 'cpu', 'cuda' or 'cuda:<n>', got {device!r}") \
            from None
    count = torch.cuda.device_count() if parsed.type == "cuda" else 0
    if parsed.type == "cuda" and (count == 0 or (parsed.index or 0) >= count):
        raise ValueError(f"{source}: train.device: {device!r} but this machine has {count} CUDA device(s); expected "
                         f"'auto' or 'cpu'" + (f" or cuda:0..cuda:{count - 1}" if count else ""))
    if parsed.type not in ("cpu", "cuda"):
        raise ValueError(f"{source}: train.device: expected 'auto', 'cpu', 'cuda' or 'cuda:<n>', got {device!r}")


def prepare(cfg: StudyConfig) -> Prepared:
    """Read and validate the cohort, then split it by patient (or read the user's split) and check leakage."""
    import_public_source(cfg)
    cohort = load_cohort(cfg.cohort.manifest, cfg.cohort)
    from medlib.stats.subgroups import check_subgroup_columns  # analysis.subgroups: refused here, by name

    check_subgroup_columns(list(cohort.table.columns), cfg.analysis.subgroups, str(cohort.manifest))
    probe_cohort(cohort)  # every image read once, in threads: all unreadable files listed before any training
    check_geometry(cohort, volumes=len(cfg.image.size) == 3 or cfg.design == "features")
    if cfg.split.split_file:
        split = read_split(cfg.split.split_file, cohort)
        _check_validation_set(cfg, split)
        how = f"User-provided split from {Path(cfg.split.split_file).name}, checked for patient overlap."
    else:
        split = split_cohort(cohort, ratios=cfg.split.ratios, seed=cfg.split.seed, stratify=cfg.split.stratify,
                             group=cfg.split.group, folds=cfg.split.folds, fold=cfg.split.fold)
        how = split_sentence(cfg)
    split = split[list(SPLIT_COLUMNS)].reset_index(drop=True)
    table = cohort.table.drop(columns=["set"]).merge(split[["case_id", "set"]], on="case_id", validate="1:1")
    return Prepared(cohort=cohort, table=table, split=SplitRecord(table=split, hash=split_hash(split), how=how))


def _check_validation_set(cfg: StudyConfig, split: pd.DataFrame) -> None:
    """A user's split must hold the validation set the epoch or threshold is chosen on."""
    if "val" not in set(split["set"]) and (cfg.design == "classifier" or cfg.threshold.method != "fixed"):
        raise CohortError(f"{cfg.split.split_file}: no case in set 'val'; expected a validation set (the "
                          f"{'threshold' if cfg.threshold.method != 'fixed' else 'training epoch'} is chosen on it)")


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
    # by set: SMDs, not p-values (the sets are split at random); patients and cases counted separately
    return table1(table[[*cfg.cohort.covariates, by, "patient_id"]], by=by,
                  categorical=list(cfg.cohort.categorical), continuous=continuous, labels=labels,
                  compare="smd" if by == "set" else "tests", patient="patient_id")


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
