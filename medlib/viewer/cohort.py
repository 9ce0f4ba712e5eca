"""The cohort at a glance for the explore notebook: the case table with each case's set, class balance, image
sizes and intensity statistics, intensity histograms per scanner, and out-of-range flags (flagged, never dropped).

Images are read through ``medlib.data.imaging.read_image``, as the studies read them. Sets come from a run's
``split.csv`` only: without a run no split is shown (the viewer never makes one). Set names and their order are
``medlib.schema``'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

from medlib.schema import ordered_sets
from medlib.viewer.images import _figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from medlib.viewer.run import RunData

__all__ = ["ALL", "INTERNAL", "NOT_IN_SPLIT", "NO_RUN_NOTE", "case_table", "class_balance", "image_stats",
           "size_spacing_table", "intensity_histograms", "robust_z", "flag_out_of_range",
           "plot_intensity_histograms", "plot_image_stats"]

ALL = "all"
#: The set shown for a case the manifest does not mark ``external`` when no run gives its set.
INTERNAL = "internal"
#: The set shown for a case the run's split does not hold.
NOT_IN_SPLIT = "not in split"
NO_RUN_NOTE = ("No run given: sets are not shown (only the manifest's external cases are marked; "
               "the rest are internal).")


def case_table(cohort: Any, *, run: RunData | None = None) -> tuple[pd.DataFrame, str]:
    """The cohort table with each case's set, and one sentence saying where the sets came from.

    With a run, the sets are the run's ``split.csv`` (a case the split lacks is ``not in split``). Without
    one, no split is shown, never one computed here: ``set`` keeps the manifest's ``external`` marks and every
    other case is ``internal``.

    Args:
        cohort: a validated ``Cohort`` (``medlib.data.cohort.load_cohort``).
        run: the run (:func:`medlib.viewer.run.read_run`); None, or an empty ``RunData``, for no run.

    Returns:
        A new table (the cohort is not modified) and the note.
    """
    table = cohort.table.copy()
    if run is not None and run.split is not None:
        table["set"] = table["case_id"].map(run.split.set_index("case_id")["set"]).fillna(NOT_IN_SPLIT)
        return table, f"Sets from the run's split.csv ({run.path.name})."
    table["set"] = table["set"].fillna("").astype(str).replace("", INTERNAL)
    return table, NO_RUN_NOTE


def class_balance(table: pd.DataFrame) -> pd.DataFrame:
    """Cases, patients and classes per set, plus an ``all`` row.

    Args:
        table: cases with ``patient_id``, ``y`` and ``set`` (an empty set is shown as ``internal``).

    Example:
        >>> t = pd.DataFrame({"patient_id": ["a", "a", "b"], "y": [1, 1, 0], "set": ["train", "train", "val"]})
        >>> class_balance(t)["positive %"].tolist()
        [100.0, 0.0, 66.7]
    """
    sets = table["set"].fillna("").astype(str).replace("", INTERNAL)
    rows = []
    for name in [*ordered_sets(sets), ALL]:
        part = table[sets == name] if name != ALL else table
        n, pos = len(part), int(part["y"].sum())
        rows.append({"set": name, "cases": n, "patients": int(part["patient_id"].nunique()), "positive": pos,
                     "negative": n - pos, "positive %": round(100.0 * pos / n, 1) if n else float("nan")})
    return pd.DataFrame(rows)


def _sample(table: pd.DataFrame, sample: int | None, seed: int) -> pd.DataFrame:
    if sample is None or sample <= 0 or sample >= len(table):
        return table
    rng = np.random.default_rng(seed)
    return table.iloc[np.sort(rng.choice(len(table), size=int(sample), replace=False))]


def _check_columns(table: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    columns = [columns] if isinstance(columns, str) else list(columns)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise KeyError(f"image column(s) {missing} not in the table; its columns: {list(table.columns)}")
    return columns


def _stats_row(case_id: str, column: str, image: Any) -> dict[str, Any]:
    a = np.asarray(image.array, dtype=np.float64)
    finite = a[np.isfinite(a)]
    p1, p99 = np.percentile(finite, [1, 99]) if finite.size else (np.nan, np.nan)
    return {"case_id": case_id, "column": column, "shape": "×".join(map(str, a.shape)), "ndim": a.ndim,
            "voxels": int(a.size), "spacing": "×".join(f"{s:.3g}" for s in image.spacing),
            "mean": float(finite.mean()) if finite.size else np.nan,
            "std": float(finite.std()) if finite.size else np.nan, "p1": float(p1), "p99": float(p99),
            "modality": image.modality or "", "manufacturer": str(image.meta.get("manufacturer", ""))}


def image_stats(table: pd.DataFrame, columns: Sequence[str] | str, *, sample: int | None = None,
                seed: int = 0) -> pd.DataFrame:
    """Per image: shape, spacing, intensity mean/std/percentiles, modality and manufacturer (read once each).

    Args:
        table: cases with ``case_id`` and absolute image paths in ``columns`` (``Cohort.table``).
        columns: image columns.
        sample: read only this many randomly chosen cases (None or 0 = all).
        seed: which cases a sample picks.

    Returns:
        One row per case and column.
    """
    from medlib.data.imaging import read_image

    from medlib.progress import progress_bar

    columns = _check_columns(table, columns)
    cases = _sample(table, sample, seed)
    rows = []
    with progress_bar(total=len(cases) * len(columns), desc="image statistics", unit="image") as bar:
        for _, r in cases.iterrows():
            for c in columns:
                rows.append(_stats_row(str(r["case_id"]), c, read_image(r[c])))
                bar.update(1)
    return pd.DataFrame(rows)


def size_spacing_table(stats: pd.DataFrame) -> pd.DataFrame:
    """The distribution of image sizes and spacings per column: one row per (column, shape, spacing)."""
    counts = stats.groupby(["column", "shape", "spacing"], sort=False).size().rename("images").reset_index()
    return counts.sort_values(["column", "images"], ascending=[True, False], kind="stable").reset_index(drop=True)


def intensity_histograms(table: pd.DataFrame, column: str, by: str = "manufacturer", *, bins: int = 50,
                         sample: int | None = None, seed: int = 0, max_voxels: int = 20000) -> pd.DataFrame:
    """Intensity histograms of one image column per scanner (``meta[by]``), or overall when the metadata
    lacks ``by`` for any image (NIfTI, PNG). Each image is read once; up to ``max_voxels`` random voxels
    of each enter the histogram.

    Returns:
        Long table: column, by (``by``, or ``"all"`` when the images are not grouped), group, bin_left,
        bin_right, density, images.
    """
    from medlib.data.imaging import read_image

    _check_columns(table, [column])
    rng = np.random.default_rng(seed)
    values, groups = [], []
    for _, row in _sample(table, sample, seed).iterrows():
        image = read_image(row[column])
        flat = np.asarray(image.array, dtype=np.float64).ravel()
        flat = flat[np.isfinite(flat)]
        values.append(flat if flat.size <= max_voxels else rng.choice(flat, max_voxels, replace=False))
        groups.append(str(image.meta.get(by, "")).strip())
    grouped = all(groups)
    edges = np.histogram_bin_edges(np.concatenate(values), bins=bins) if values else np.linspace(0, 1, bins + 1)
    rows = []
    for name in sorted(set(groups)) if grouped else [ALL]:
        chosen = [v for v, g in zip(values, groups) if not grouped or g == name]
        density, _ = np.histogram(np.concatenate(chosen), bins=edges, density=True)
        rows += [{"group": name, "bin_left": lo, "bin_right": hi, "density": d, "images": len(chosen)}
                 for lo, hi, d in zip(edges[:-1], edges[1:], density)]
    out = pd.DataFrame(rows, columns=["group", "bin_left", "bin_right", "density", "images"])
    out.insert(0, "by", by if grouped else ALL)
    out.insert(0, "column", column)
    return out


def robust_z(values: Sequence[float]) -> np.ndarray:
    """Robust z-scores ``0.6745 (x - median) / MAD`` (Iglewicz & Hoaglin 1993).

    When the MAD is 0 (half the values or more are equal), ``(x - median) / (1.2533 * mean absolute deviation)``
    is used instead (IBM SPSS's modified z); when every value is equal, every z is 0.

    Example:
        >>> robust_z([1.0, 2.0, 3.0, 4.0, 100.0]).round(2).tolist()
        [-1.35, -0.67, 0.0, 0.67, 65.43]
    """
    x = np.asarray(values, dtype=np.float64)
    med = np.median(x)
    mad = np.median(np.abs(x - med))
    if mad > 0:
        return 0.6745 * (x - med) / mad
    meanad = np.mean(np.abs(x - med))
    return (x - med) / (1.2533 * meanad) if meanad > 0 else np.zeros_like(x)


def flag_out_of_range(table: pd.DataFrame, columns: Sequence[str] | str, z: float = 4.0, *,
                      stats: pd.DataFrame | None = None, sample: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Images whose mean, standard deviation or size is an outlier among the same column's images.

    Nothing is dropped: the cohort is unchanged, the flags are a table to look at (in the browser).

    Args:
        table: the cohort table.
        columns: image columns to check.
        z: flag when ``|robust z| > z`` for any statistic (see :func:`robust_z`).
        stats: :func:`image_stats` output to reuse (images are then not read again).
        sample, seed: as in :func:`image_stats` when ``stats`` is None.

    Returns:
        One row per flagged (case, column): case_id, column, mean, std, voxels, their z-scores and a reason.
    """
    columns = _check_columns(table, columns)
    stats = image_stats(table, columns, sample=sample, seed=seed) if stats is None else stats
    parts = []
    for column, part in stats[stats["column"].isin(columns)].groupby("column", sort=False):
        part = part.copy()
        for stat in ("mean", "std", "voxels"):
            part[f"z_{stat}"] = robust_z(part[stat].to_numpy(float))
        parts.append(part)
    cols = ["case_id", "column", "mean", "std", "voxels", "z_mean", "z_std", "z_voxels", "reason"]
    if not parts:
        return pd.DataFrame(columns=cols)
    allz = pd.concat(parts)
    over = allz[["z_mean", "z_std", "z_voxels"]].abs() > z
    flagged = allz[over.any(axis=1)].copy()
    flagged["reason"] = [", ".join(f"{c[2:]} z={zrow[c]:+.1f}" for c in over.columns if abs(zrow[c]) > z)
                         for _, zrow in flagged.iterrows()]
    return flagged[cols].reset_index(drop=True)


def plot_intensity_histograms(histograms: Mapping[str, pd.DataFrame] | pd.DataFrame) -> "Figure":
    """One panel per image column: the intensity density per scanner group (from
    :func:`intensity_histograms`)."""
    if isinstance(histograms, pd.DataFrame):
        histograms = {str(histograms["column"].iloc[0]) if len(histograms) else "image": histograms}
    fig = _figure(3.6 * len(histograms), 2.8)
    axes = fig.subplots(1, len(histograms), squeeze=False)[0]
    for ax, (column, hist) in zip(axes, histograms.items()):
        for group, part in hist.groupby("group", sort=False):
            ax.stairs(part["density"], [*part["bin_left"], part["bin_right"].iloc[-1]],
                      label=f"{group} ({int(part['images'].iloc[0])})")
        ax.set_title(f"{column} · by {hist['by'].iloc[0] if len(hist) else ALL}", fontsize=9)
        ax.set_xlabel("intensity (reader output)", fontsize=8)
        ax.set_ylabel("density", fontsize=8)
        ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def plot_image_stats(stats: pd.DataFrame, flags: pd.DataFrame | None = None) -> "Figure":
    """Mean against standard deviation of every image, one panel per column; flagged images in red."""
    columns = list(dict.fromkeys(stats["column"]))
    fig = _figure(3.4 * len(columns), 3.0)
    axes = fig.subplots(1, len(columns), squeeze=False)[0]
    marked = set() if flags is None else set(zip(flags["case_id"], flags["column"]))
    for ax, column in zip(axes, columns):
        part = stats[stats["column"] == column]
        bad = np.array([(c, column) in marked for c in part["case_id"]], dtype=bool)
        ax.scatter(part["mean"][~bad], part["std"][~bad], s=10, color="#0072B2", label="images")
        if bad.any():
            ax.scatter(part["mean"][bad], part["std"][bad], s=24, color="#D55E00", label="flagged")
        ax.set_title(column, fontsize=9)
        ax.set_xlabel("mean intensity", fontsize=8)
        ax.set_ylabel("SD", fontsize=8)
        ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig
