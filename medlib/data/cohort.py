"""Cohort manifests and patient-level splits.

A cohort manifest is a CSV with ``case_id, patient_id, <label column>``, one column per image input (paths
relative to the manifest), an optional mask column, an optional ``set`` column (rows marked ``external``
form an external test set) and clinical covariates. Which columns are images, which label value is the
positive class and which covariates are categorical come from the study config (``CohortConfig``).

``load_cohort`` validates every row and reports all bad rows at once (capped), each with its CSV line number
and reason. ``split_cohort`` assigns whole patients to sets (scikit-learn's ``StratifiedGroupKFold`` is not
used because it cannot hit arbitrary ratios such as 7:3:0 exactly; the greedy assignment below keeps both the
group constraint and the class proportions within one patient of the target). ``assert_disjoint`` is run on
every split, including one the user provides.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from medlib.config import CohortConfig
from medlib.data.probe import label_mismatch
from medlib.schema import INTERNAL_SETS, SETS as SET_NAMES

REQUIRED_COLUMNS = ("case_id", "patient_id")
#: Cell values that spreadsheets and pandas write for "missing": never an identifier.
MISSING_MARKERS = {"", "na", "n/a", "nan", "none", "null", "<na>", "#n/a", "nat", "-"}


class CohortError(ValueError):
    """A manifest or split that does not meet the expected format; the message lists every problem."""


@dataclass(frozen=True)
class Cohort:
    """A validated cohort.

    Attributes:
        table: one row per case: case_id, patient_id, the original label, ``y`` (1 = positive class),
            image and mask columns as absolute paths, ``set`` ("" or "external"), covariates.
        config: the cohort section of the study config.
        manifest: the manifest's path.
        hash: sha256 of the manifest's bytes (provenance).
    """

    table: pd.DataFrame
    config: CohortConfig
    manifest: Path
    hash: str

    @property
    def image_columns(self) -> tuple[str, ...]:
        return self.config.image_columns

    def __len__(self) -> int:
        return len(self.table)


def _exists(path: Path) -> bool:
    return path.is_file() or (path.is_dir() and any(path.iterdir()))


def identifier_problem(value: object, column: str) -> str | None:
    """Why ``value`` cannot identify a case or patient (missing, a missing-value marker, a control character),
    or None. Identifiers name files of the run (``medlib.runs.guard.safe_name``) and rows of every table."""
    text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    if text.strip().lower() in MISSING_MARKERS:
        return f"{column} {text!r} is missing (empty or a missing-value marker such as NA or None); expected an identifier"
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        return f"{column} {text!r} holds a control character (tab, newline ...); expected printable text"
    return None


def lesion_mask_columns(cfg: CohortConfig) -> list[str]:
    """The manifest's lesion-mask columns (``cohort.lesion_masks``: image column -> mask column), each once."""
    return sorted(set(cfg.lesion_masks.values()))


def _path_columns(cfg: CohortConfig) -> list[str]:
    """Every manifest column that holds a file path: images, the ROI mask, the lesion masks."""
    columns = list(cfg.image_columns) + ([cfg.mask_column] if cfg.mask_column else [])
    return columns + [c for c in lesion_mask_columns(cfg) if c not in columns]


def _row_problems(row: pd.Series, line: int, cfg: CohortConfig, root: Path) -> list[str]:
    problems = [f"line {line}: {p}" for p in (identifier_problem(row[c], c) for c in REQUIRED_COLUMNS) if p]
    lesion = set(lesion_mask_columns(cfg)) - set(cfg.image_columns) - {cfg.mask_column}
    for col in _path_columns(cfg):
        value = str(row[col]).strip()
        if not value:
            if col not in lesion:  # a blank lesion mask means: no lesion drawn for this case
                problems.append(f"line {line}: case {row['case_id']!r} has no {col!r} image (missing view)")
        elif not _exists(root / value):
            problems.append(f"line {line}: {col} file not found: {root / value}")
    return problems


def _check_columns(df: pd.DataFrame, cfg: CohortConfig, path: Path) -> None:
    needed = list(REQUIRED_COLUMNS) + [cfg.label_column] + list(cfg.image_columns)
    needed += [cfg.mask_column] if cfg.mask_column else []
    needed += [c for c in lesion_mask_columns(cfg) if c not in needed]
    needed += list(cfg.covariates)
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise CohortError(f"{path}: missing column(s) {missing}; the manifest has {list(df.columns)}. "
                          f"Expected case_id, patient_id, {cfg.label_column!r}, image columns "
                          f"{list(cfg.image_columns)} and the covariates named in the config.")
    unknown_categorical = sorted(set(cfg.categorical) - set(cfg.covariates))
    if unknown_categorical:
        raise CohortError(f"cohort.categorical names {unknown_categorical}, which are not in cohort.covariates")


def _validate_rows(df: pd.DataFrame, cfg: CohortConfig, path: Path) -> None:
    root = path.parent
    labels = label_mismatch(df[cfg.label_column], cfg.positive, cfg.negative, label_column=cfg.label_column)
    problems: list[str] = [labels] if labels else []  # one summary (values, counts, first lines), not a line a row
    duplicated = df["case_id"].duplicated(keep=False)
    for i, row in df.iterrows():
        line = int(i) + 2  # header is line 1
        if duplicated[i]:
            problems.append(f"line {line}: duplicate case_id {row['case_id']!r}")
        problems += _row_problems(row, line, cfg, root)
    if "set" in df.columns:
        bad = sorted(set(df["set"].fillna("").astype(str).str.strip()) - {"", "external"})
        if bad:
            problems.append(f"column 'set': values {bad} are not allowed; use 'external' or leave it empty")
    if problems:
        shown = problems[: cfg.max_errors]
        more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        raise CohortError(f"{path}: {len(problems)} problem(s) in the manifest:\n  " + "\n  ".join(shown) + more)


def _read_table(path: Path, **kwargs) -> pd.DataFrame:
    """``pd.read_csv`` with an empty, binary or malformed file, or a column name given twice (pandas would rename
    the second ``label.1`` silently), reported as a ``CohortError`` naming it."""
    try:
        header = pd.read_csv(path, nrows=1, header=None, dtype=str, keep_default_na=False)
        names = [str(v).strip() for v in header.iloc[0]] if len(header) else []
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            where = {n: [i + 1 for i, m in enumerate(names) if m == n] for n in repeated}
            raise CohortError(f"{path}: line 1: column name(s) given more than once: "
                              + "; ".join(f"{n!r} (columns {w})" for n, w in where.items())
                              + "; expected each column name once")
        return pd.read_csv(path, **kwargs)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        problem = " ".join(str(err).split())
        raise CohortError(f"{path}: not a readable CSV table ({type(err).__name__}: {problem}); expected a "
                          f"UTF-8 CSV with a header row") from None


def load_cohort(path: str | Path, config: CohortConfig) -> Cohort:
    """Read and validate a cohort manifest.

    Args:
        path: the manifest CSV; image paths inside it are relative to its folder.
        config: which columns are images, the label values, the covariates.

    Returns:
        A ``Cohort`` whose table has absolute image paths and a 0/1 ``y`` column.

    Raises:
        FileNotFoundError: the manifest does not exist.
        CohortError: missing columns, or bad rows (all listed, up to ``config.max_errors``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"cohort manifest not found: {path} (set cohort.manifest in the params file)")
    raw = path.read_bytes()
    df = _read_table(path, dtype={"case_id": str, "patient_id": str, config.label_column: str},
                     keep_default_na=True)
    _check_columns(df, config, path)
    texts = pd.read_csv(path, dtype=str, keep_default_na=False, usecols=list(REQUIRED_COLUMNS))
    for col in REQUIRED_COLUMNS:  # identifiers as written: "NA" is refused below, never read as missing
        df[col] = texts[col].astype(str).str.strip().to_numpy()
    for col in (config.label_column, *config.image_columns):
        df[col] = df[col].fillna("").astype(str).str.strip()
    for col in _path_columns(config):
        df[col] = df[col].fillna("").astype(str).str.strip()
    _validate_rows(df, config, path)
    table = df.copy()
    table["y"] = (table[config.label_column] == config.positive).astype(int)
    table["set"] = table["set"].fillna("").astype(str).str.strip() if "set" in table else ""
    for col in _path_columns(config):
        table[col] = [str((path.parent / p).resolve()) if p else "" for p in table[col]]
    return Cohort(table=table.reset_index(drop=True), config=config, manifest=path.resolve(),
                  hash=hashlib.sha256(raw).hexdigest())


def check_geometry(cohort: Cohort, *, volumes: bool = True) -> None:
    """Every mask lies on its image's grid, and (``volumes``) every image column of a case lies on the first
    column's grid (co-registered sequences), from the headers alone; all offending rows are listed.

    A mask that is flipped, shifted or on another grid, or a sequence with another field of view or origin, is
    refused here rather than cropped to or stacked as channels silently (``imaging.geometry.check_same_grid``).

    Raises:
        CohortError: naming each row, both files and what differs.
    """
    from medlib.data.imaging import check_same_grid, read_geometry

    cfg = cohort.config
    columns = list(cfg.image_columns)
    lesion = {c: m for c, m in cfg.lesion_masks.items() if c in columns}
    if not cfg.mask_column and not lesion and not (volumes and len(columns) > 1):
        return
    problems = []
    for i, row in cohort.table.iterrows():
        try:
            grids = {c: read_geometry(row[c]) for c in columns}
            first = grids[columns[0]]
            if volumes and len(first.shape) == 3:
                for c in columns[1:]:
                    check_same_grid(first, grids[c], what=f"sequence {c!r}")
            if cfg.mask_column:
                mask = read_geometry(row[cfg.mask_column])
                for c in columns:
                    check_same_grid(grids[c], mask, what="mask")
            for c, m in lesion.items():
                if row[m]:
                    check_same_grid(grids[c], read_geometry(row[m]), what=f"lesion mask {m!r}")
        except (ValueError, OSError) as err:
            problems.append(f"line {int(i) + 2}: case {row['case_id']!r}: {' '.join(str(err).split())}")
    if problems:
        shown = problems[: cfg.max_errors]
        more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        raise CohortError(f"{cohort.manifest}: {len(problems)} case(s) whose images do not line up:\n  "
                          + "\n  ".join(shown) + more)


def _targets(n: int, ratios: Sequence[float]) -> np.ndarray:
    """Largest-remainder allocation of ``n`` items to sets with the given ratios."""
    exact = np.asarray(ratios, float) / float(sum(ratios)) * n
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


def _assign_groups(groups: pd.DataFrame, ratios: Sequence[float], rng: np.random.Generator,
                   stratify: bool, names: Sequence[str] = INTERNAL_SETS) -> dict[str, str]:
    """Greedy patient assignment: shuffled patients go to the set furthest below its target."""
    names = list(names)[: len(ratios)]
    strata = groups["stratum"].unique() if stratify else [None]
    assignment: dict[str, str] = {}
    for stratum in sorted(strata, key=str):
        part = groups if stratum is None else groups[groups["stratum"] == stratum]
        part = part.iloc[rng.permutation(len(part))].sort_values("size", ascending=False, kind="stable")
        target = _targets(int(part["size"].sum()), ratios).astype(float)
        filled = np.zeros(len(names))
        for gid, size in zip(part.index, part["size"]):
            deficit = np.where(target > 0, (target - filled) / np.maximum(target, 1), -np.inf)
            k = int(np.argmax(deficit))
            assignment[gid] = names[k]
            filled[k] += size
    return assignment


def split_cohort(cohort: Cohort | pd.DataFrame, *, ratios: Sequence[float] = (0.7, 0.3, 0.0), seed: int = 0,
                 stratify: bool = True, group: str = "patient_id", folds: int = 0, fold: int = 0) -> pd.DataFrame:
    """Split cases into train/val/test by patient, stratified by label; external cases are kept apart.

    A patient whose cases have different labels is stratified by the label of most of its cases.

    Args:
        cohort: a ``Cohort`` or its table (needs case_id, ``group``, y, and optionally set).
        ratios: train, val[, test] fractions of the internal (non-external) cohort.
        seed: the split is deterministic for a seed.
        stratify: keep each set's class proportion close to the cohort's.
        group: the column whose values never span two sets.
        folds: ``k > 1`` for grouped, stratified k-fold cross-validation: the internal cohort is cut into k
            folds of patients; fold ``fold`` is the test set and the rest is split train/val by the ratio of
            ``ratios[0]`` to ``ratios[1]``. The same seed gives the same folds for every ``fold``.
        fold: the test fold, ``0 <= fold < folds``.

    Returns:
        DataFrame with case_id, patient_id (the group), y, set (its content hash: :func:`split_hash`).

    Raises:
        ValueError: ratios that are negative, sum to zero, or give a set no positive or negative case.
    """
    table = cohort.table if isinstance(cohort, Cohort) else cohort
    _check_group(table, group, cohort.manifest if isinstance(cohort, Cohort) else None)
    if len(ratios) not in (2, 3) or any(r < 0 for r in ratios) or sum(ratios) <= 0 or ratios[0] <= 0:
        raise ValueError(f"split.ratios must be 2 or 3 non-negative fractions (train, val[, test]) with "
                         f"train > 0; got {list(ratios)}")
    if folds and not (folds > 1 and 0 <= fold < folds):
        raise ValueError(f"split.folds must be > 1 and split.fold in 0..folds-1; got folds={folds}, fold={fold}")
    external = table["set"].eq("external") if "set" in table else pd.Series(False, index=table.index)
    internal = table[~external]
    groups = internal.groupby(group).agg(size=("y", "size"), stratum=("y", lambda s: int(s.mean() >= 0.5)))
    rng = np.random.default_rng(seed)
    if folds:
        fold_of = _assign_groups(groups, [1.0] * folds, rng, stratify, names=[str(k) for k in range(folds)])
        rest = groups[[fold_of[g] != str(fold) for g in groups.index]]
        assignment = _assign_groups(rest, list(ratios[:2]), rng, stratify)
        assignment.update({g: "test" for g in groups.index if fold_of[g] == str(fold)})
        ratios = (*ratios[:2], 1.0 / folds)
    else:
        assignment = _assign_groups(groups, ratios, rng, stratify)
    split = pd.DataFrame({"case_id": table["case_id"], "patient_id": table[group], "y": table["y"]})
    split["set"] = np.where(external, "external", table[group].map(assignment))
    _check_classes_present(split, ratios)
    assert_disjoint(split)
    return split.reset_index(drop=True)


def _check_group(table: pd.DataFrame, group: str, manifest: Path | None) -> None:
    """The grouping column (``split.group``) exists and names a group on every row."""
    where = f"{manifest}: " if manifest else ""
    if group not in table.columns:
        raise CohortError(f"{where}split.group: column {group!r} is not in the manifest; expected one of its "
                          f"columns {[c for c in table.columns if c != 'y']}")
    bad = [(i, p) for i, v in enumerate(table[group]) if (p := identifier_problem(v, group))]
    if bad:
        raise CohortError(f"{where}line {bad[0][0] + 2}: {bad[0][1]} (split.group; {len(bad)} row(s) like it)")


def _check_classes_present(split: pd.DataFrame, ratios: Sequence[float]) -> None:
    names = list(INTERNAL_SETS)[: len(ratios)]
    for name, ratio in zip(names, ratios):
        if ratio == 0:
            continue
        counts = split.loc[split["set"] == name, "y"].value_counts()
        for cls, label in ((1, "positive"), (0, "negative")):
            if counts.get(cls, 0) == 0:
                raise ValueError(f"the {name} set has no {label} case after splitting "
                                 f"({int(counts.sum())} cases); the cohort is too small for ratios {list(ratios)}")


def assert_disjoint(split: pd.DataFrame, *, group: str = "patient_id") -> None:
    """Raise if any patient (``group`` value) has cases in two sets.

    Raises:
        CohortError: naming the first patients found and their sets.
    """
    sets_per_group = split.groupby(group)["set"].nunique()
    leaking = sets_per_group[sets_per_group > 1]
    if len(leaking):
        examples = [f"{g} in {sorted(split.loc[split[group] == g, 'set'].unique())}" for g in leaking.index[:5]]
        raise CohortError(f"patient-level leakage: {len(leaking)} patient(s) span two sets: " + "; ".join(examples))


def split_hash(split: pd.DataFrame) -> str:
    """sha256 of the split's (case_id, set) pairs in case order: identical splits have identical hashes."""
    rows = split.sort_values("case_id")[["case_id", "set"]].to_csv(index=False).encode()
    return hashlib.sha256(rows).hexdigest()


def read_split(path: str | Path, cohort: Cohort) -> pd.DataFrame:
    """Read a user-provided split CSV (case_id, set) and check it against the cohort and for leakage.

    Raises:
        CohortError: unknown or missing case ids, set names outside train/val/test/external, leakage.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split file not found: {path} (split.split_file in the params file)")
    user = _read_table(path, dtype={"case_id": str, "set": str}, keep_default_na=False)
    if not {"case_id", "set"} <= set(user.columns):
        raise CohortError(f"{path}: expected columns case_id and set; got {list(user.columns)}")
    user["case_id"], user["set"] = user["case_id"].str.strip(), user["set"].str.strip()
    repeated = user.index[user["case_id"].duplicated(keep=False)]
    if len(repeated):
        raise CohortError(f"{path}: line {repeated[0] + 2}: case_id {user['case_id'][repeated[0]]!r} is listed "
                          f"{int((user['case_id'] == user['case_id'][repeated[0]]).sum())} times; expected one set "
                          f"per case")
    bad_sets = sorted(set(user["set"]) - set(SET_NAMES))
    unknown = sorted(set(user["case_id"]) - set(cohort.table["case_id"]))
    missing = sorted(set(cohort.table["case_id"]) - set(user["case_id"]))
    problems = ([f"set values {bad_sets} not in {list(SET_NAMES)}"] if bad_sets else []) + \
               ([f"{len(unknown)} case_id(s) not in the cohort, e.g. {unknown[:3]}"] if unknown else []) + \
               ([f"{len(missing)} cohort case(s) have no set, e.g. {missing[:3]}"] if missing else [])
    if problems:
        raise CohortError(f"{path}: " + "; ".join(problems))
    split = cohort.table[["case_id", "patient_id", "y"]].merge(user[["case_id", "set"]], on="case_id")
    assert_disjoint(split)
    return split
