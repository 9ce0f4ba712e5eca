"""Explore a cohort and a finished run in JupyterLab: overview tables, outlier flags and a case browser.

The browser reads what the studies read (the cohort manifest through ``medlib.data.imaging.read_image``) and what
a run stored (``split.csv``, ``predictions.csv``, ``metrics.json``, ``config.yaml``, ``cams/<model>/<case>.npy``
in ``runs/<study>/<run-id>/``). It recomputes nothing a run already stored: the split comes from the run when
there is one, thresholds from its ``metrics.json`` when they are there (otherwise they are chosen on the
validation set, as the run did, and the UI says so).

Layout of this module:

* pure functions, each testable on plain arrays and tables: ``window_image``, ``slice_volume``,
  ``mask_outline``, ``outcome_of``, ``run_thresholds``, ``filter_cases``, ``fit_to_shape``, ``cam_for_view``,
  ``render_case`` (a matplotlib ``Figure`` of ``Panel`` s);
* cohort overview for the explore notebook: ``class_balance``, ``image_stats``, ``size_spacing_table``,
  ``intensity_histograms``, ``flag_out_of_range`` and two figures;
* ``CohortBrowser``: ipywidgets that only wire the functions above.

Nothing identifying is shown: a case is named by ``case_id`` and the manifest's pseudonymous ``patient_id``,
with the covariates the config names and an allow-list of the reader's technical metadata. Image paths are
never shown (a hospital's folder names can carry names).
"""

from __future__ import annotations

import contextlib
import html
import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

OUTCOMES = ("TP", "FP", "TN", "FN")
SET_ORDER = ("train", "val", "test", "external", "internal")
ALL = "all"
#: Reader metadata shown beside the image (the readers already allow-list; this is a second gate).
DISPLAY_META = ("modality", "manufacturer", "manufacturermodelname", "bodypartexamined", "viewposition",
                "photometricinterpretation", "bitsstored", "kvp", "slicethickness", "window_used", "format",
                "orientation", "datatype")
HABITAT_COLORS = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")
MASK_COLOR = (1.0, 0.15, 0.15)


# ---------------------------------------------------------------------------------------- pure: images


def window_image(array: np.ndarray, center: float, width: float) -> np.ndarray:
    """Linear display window: ``center - width/2`` maps to 0 (black), ``center + width/2`` to 1 (white).

    Args:
        array: intensities (any shape), e.g. HU for CT.
        center: window centre (level) in the array's units.
        width: window width (> 0) in the same units.

    Returns:
        A new float32 array in [0, 1]; ``array`` is not modified.

    Raises:
        ValueError: a width that is not positive.

    Example:
        >>> window_image(np.array([0.0, 40.0, 80.0, 200.0]), 40, 80).tolist()
        [0.0, 0.5, 1.0, 1.0]
    """
    if not float(width) > 0:
        raise ValueError(f"window width must be > 0; got {width!r}")
    values = np.asarray(array, dtype=np.float64)
    return np.clip((values - (float(center) - float(width) / 2)) / float(width), 0.0, 1.0).astype(np.float32)


def intensity_range(array: np.ndarray) -> tuple[float, float]:
    """``(min, max)`` of the finite values; a constant image gets ``(v, v + 1)`` so a window can span it."""
    values = np.asarray(array, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def default_window(array: np.ndarray, *, percentiles: tuple[float, float] = (1.0, 99.0)) -> tuple[float, float]:
    """A display window ``(center, width)`` spanning the given percentiles of the finite values.

    Example:
        >>> default_window(np.arange(101.0), percentiles=(0, 100))
        (50.0, 100.0)
    """
    values = np.asarray(array, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.5, 1.0
    lo, hi = (float(v) for v in np.percentile(finite, percentiles))
    if hi <= lo:
        lo, hi = intensity_range(finite)
    return (lo + hi) / 2, hi - lo


def slice_volume(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    """One 2D slice of a (D, H, W) volume along ``axis`` (0, 1 or 2), as a new array.

    Raises:
        ValueError: the volume is not 3-D, or the axis is not 0, 1 or 2.
        IndexError: ``index`` outside ``0 .. shape[axis] - 1``.

    Example:
        >>> slice_volume(np.zeros((4, 5, 6)), 1, 2).shape
        (4, 6)
    """
    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise ValueError(f"volume must be 3-D (D, H, W); got shape {vol.shape}")
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2; got {axis!r}")
    if not 0 <= int(index) < vol.shape[axis]:
        raise IndexError(f"slice {index} is outside 0..{vol.shape[axis] - 1} along axis {axis} of a volume "
                         f"of shape {vol.shape}")
    return np.take(vol, int(index), axis=axis)


def default_slice(shape: Sequence[int], axis: int, mask: np.ndarray | None = None) -> int:
    """The slice to open a volume at: the largest mask area along ``axis`` if a mask has any voxel, else the
    middle slice."""
    if mask is not None and np.any(mask):
        other = tuple(a for a in range(3) if a != axis)
        return int(np.asarray(mask, bool).sum(axis=other).argmax())
    return int(shape[axis]) // 2


def mask_outline(mask2d: np.ndarray) -> np.ndarray:
    """The outline of a 2D mask: mask pixels with at least one 4-neighbour outside the mask (or the image).

    Args:
        mask2d: 2D mask; values > 0.5 are inside.

    Returns:
        bool array of the same shape.

    Raises:
        ValueError: the mask is not 2-D.

    Example:
        >>> m = np.zeros((5, 5)); m[1:4, 1:4] = 1
        >>> int(mask_outline(m).sum())  # the 3x3 square's 8 border pixels; its centre is inside
        8
    """
    from scipy.ndimage import binary_erosion

    m = np.asarray(mask2d)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D (slice a volume first); got shape {m.shape}")
    inside = m > 0.5
    return inside & ~binary_erosion(inside, border_value=0)


def fit_to_shape(array: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Resample ``array`` (linear interpolation) to ``shape``, e.g. a Grad-CAM map from the model's input size
    to the image's. Same number of dimensions required; returns a new float32 array.

    Raises:
        ValueError: the number of dimensions differs.
    """
    from scipy.ndimage import zoom

    a = np.asarray(array, dtype=np.float32)
    shape = tuple(int(s) for s in shape)
    if a.ndim != len(shape):
        raise ValueError(f"cannot fit an array of shape {a.shape} to shape {shape}: dimensions differ")
    if a.shape == shape:
        return a.copy()
    out = zoom(a, [t / s for t, s in zip(shape, a.shape)], order=1, grid_mode=True, mode="nearest")
    pad = [(0, max(0, t - o)) for t, o in zip(shape, out.shape)]
    out = np.pad(out, pad, mode="edge")[tuple(slice(0, t) for t in shape)]
    return out.astype(np.float32)


def cam_for_view(cam: np.ndarray, shape: Sequence[int], *, view: int = 0, n_views: int = 1) -> np.ndarray:
    """A stored Grad-CAM map for one input image, resampled to the image's grid and scaled to [0, 1].

    A map with one dimension more than the image holds one map per view (``(V, H, W)`` for a multi-view
    model); a map with as many dimensions as the image serves every input (a multi-channel model such as the
    3-sequence glioma network). Values are clipped at 0 and divided by the maximum (relative map).

    Raises:
        ValueError: the map's shape fits neither form.
    """
    c = np.asarray(cam, dtype=np.float32)
    if c.ndim == len(shape) + 1:
        if c.shape[0] != n_views:
            raise ValueError(f"Grad-CAM of shape {c.shape} has {c.shape[0]} views; the model reads {n_views}")
        c = c[view]
    if c.ndim != len(shape):
        raise ValueError(f"Grad-CAM of shape {c.shape} does not fit an image of shape {tuple(shape)}")
    c = np.clip(np.nan_to_num(fit_to_shape(c, shape)), 0.0, None)
    peak = float(c.max())
    return c / peak if peak > 0 else c


def safe_name(name: str) -> str:
    """A model's display name as a folder name (as ``RunDir.checkpoint_dir`` makes it)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._-")


def cam_path(cams_dir: str | Path | None, model: str, case_id: str) -> Path | None:
    """``cams/<model>/<case_id>.npy`` (the model's name as given or made folder-safe), or None if absent."""
    if cams_dir is None:
        return None
    for folder in dict.fromkeys((str(model), safe_name(model))):
        path = Path(cams_dir) / folder / f"{case_id}.npy"
        if path.is_file():
            return path
    return None


# -------------------------------------------------------------------------------- pure: cases and outcomes


def outcome_of(y_true: Any, score: Any, threshold: float) -> np.ndarray:
    """TP / FP / TN / FN per case at ``threshold`` (scores >= threshold are called positive).

    A NaN threshold (undefined, e.g. one class in the validation set) warns and gives ``""`` for every case.

    Example:
        >>> outcome_of([1, 0, 0, 1], [0.9, 0.8, 0.1, 0.2], 0.5).tolist()
        ['TP', 'FP', 'TN', 'FN']
    """
    y = np.asarray(y_true).astype(int).astype(bool)
    s = np.asarray(score, dtype=np.float64)
    if y.shape != s.shape:
        raise ValueError(f"y_true and score must have the same shape; got {y.shape} and {s.shape}")
    if threshold is None or np.isnan(threshold):
        warnings.warn("threshold is undefined (NaN): no TP/FP/TN/FN outcome", RuntimeWarning, stacklevel=2)
        return np.full(y.shape, "", dtype=object)
    pred = s >= float(threshold)
    return np.select([y & pred, ~y & pred, ~y & ~pred], ["TP", "FP", "TN"], "FN").astype(object)


@dataclass(frozen=True)
class RunThreshold:
    """A model's operating threshold as the browser uses it, and where it came from (shown in the UI)."""

    value: float
    source: str


def thresholds_from_metrics(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    """Thresholds stored in a run's ``metrics.json``: ``{"thresholds": {model: value}}`` or
    ``{"thresholds": {model: {"value": value, ...}}}`` (as ``study.run_summary`` writes them)."""
    section = (metrics or {}).get("thresholds") or {}
    if not isinstance(section, Mapping):
        raise ValueError(f"metrics.json 'thresholds' must map model -> threshold; got {type(section).__name__}")
    out = {}
    for model, entry in section.items():
        value = entry.get("value") if isinstance(entry, Mapping) else entry
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[str(model)] = float(value)
    return out


def run_thresholds(predictions: pd.DataFrame, metrics: Mapping[str, Any] | None = None, *,
                   method: str = "youden", target: float | None = None,
                   on_set: str = "val") -> dict[str, RunThreshold]:
    """Each model's threshold: from ``metrics.json`` when stored there, else chosen on ``on_set``.

    A model without rows in ``on_set`` warns and gets NaN (no outcome can be called).

    Args:
        predictions: the run's Predictions table.
        metrics: the run's ``metrics.json`` (or None).
        method, target: the run's ``threshold`` settings, for models whose threshold was not stored.
        on_set: the set thresholds are chosen on (validation).
    """
    from medlib.stats import choose_threshold

    stored = thresholds_from_metrics(metrics)
    out = {}
    for model in pd.unique(predictions["model"].astype(str)):
        if model in stored:
            out[model] = RunThreshold(stored[model], "stored in the run's metrics.json")
            continue
        rows = predictions[(predictions["model"].astype(str) == model) & (predictions["set"] == on_set)]
        if rows.empty:
            warnings.warn(f"model {model!r}: no {on_set!r} rows to choose a threshold on", RuntimeWarning,
                          stacklevel=2)
            out[model] = RunThreshold(float("nan"), f"undefined: no {on_set} predictions and none stored")
            continue
        t = choose_threshold(rows["y_true"].to_numpy(), rows["score"].to_numpy(float), method=method,
                             target=target)
        out[model] = RunThreshold(t.value, f"{t.description}; recomputed here from predictions.csv because "
                                           f"the run's metrics.json stores no threshold for this model")
    return out


def _threshold_value(thresholds: Mapping[str, Any] | None, model: str) -> float:
    if not thresholds or model not in thresholds:
        raise KeyError(f"no threshold for model {model!r}. Available: {sorted(thresholds or {})}")
    t = thresholds[model]
    return float(getattr(t, "value", t))


def with_outcomes(table: pd.DataFrame, predictions: pd.DataFrame, thresholds: Mapping[str, Any],
                  model: str) -> pd.DataFrame:
    """``table`` plus ``score``, ``threshold`` and ``outcome`` (TP/FP/TN/FN; ``""`` if unscored) of one model.

    Raises:
        KeyError: a model the predictions do not hold, or one without a threshold.
        ValueError: the model scores a case twice.
    """
    rows = predictions[predictions["model"].astype(str) == str(model)]
    if rows.empty:
        raise KeyError(f"Unknown model {model!r}. Available: {sorted(predictions['model'].astype(str).unique())}")
    if rows["case_id"].duplicated().any():
        raise ValueError(f"model {model!r} has more than one prediction for case(s) "
                         f"{sorted(rows.loc[rows['case_id'].duplicated(), 'case_id'])[:3]}")
    value = _threshold_value(thresholds, str(model))
    out = table.drop(columns=[c for c in ("score", "threshold", "outcome") if c in table], errors="ignore")
    out = out.merge(rows[["case_id", "score", "y_true"]], on="case_id", how="left")
    scored = out["score"].notna().to_numpy()
    outcome = np.full(len(out), "", dtype=object)
    if scored.any():
        outcome[scored] = outcome_of(out.loc[scored, "y_true"], out.loc[scored, "score"], value)
    out["outcome"], out["threshold"] = outcome, value
    return out.drop(columns=["y_true"])


def filter_cases(table: pd.DataFrame, label: int | None = None, set_name: str | None = None,
                 outcome: str | None = None, predictions: pd.DataFrame | None = None,
                 thresholds: Mapping[str, Any] | None = None, model: str | None = None) -> pd.DataFrame:
    """The cases matching every filter given, in table order (the input is not modified).

    Args:
        table: cases with ``case_id``, ``y`` (1 = positive class) and ``set``.
        label: keep ``y == label`` (0 or 1).
        set_name: keep one set (train, val, test, external or internal).
        outcome: keep TP, FP, TN or FN of ``model`` at its threshold (needs predictions and thresholds).
        predictions: the run's Predictions table.
        thresholds: model -> threshold (a number or an object with ``.value``).
        model: with predictions, adds that model's ``score``, ``threshold`` and ``outcome`` columns.

    Raises:
        ValueError: a label other than 0/1, an unknown outcome, or an outcome filter without predictions/model.
        KeyError: see :func:`with_outcomes`.
    """
    out = table.copy()
    if label is not None:
        if label not in (0, 1) or isinstance(label, bool):
            raise ValueError(f"label must be 0 (negative class), 1 (positive class) or None; got {label!r}")
        out = out[out["y"] == int(label)]
    if set_name is not None:
        out = out[out["set"] == set_name]
    if outcome is not None and outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {list(OUTCOMES)} or None; got {outcome!r}")
    if outcome is not None and (predictions is None or model is None):
        raise ValueError("an outcome filter needs the run's predictions and a model")
    if predictions is not None and model is not None:
        out = with_outcomes(out, predictions, thresholds or {}, model)
    if outcome is not None:
        out = out[out["outcome"] == outcome]
    return out.reset_index(drop=True)


# ---------------------------------------------------------------------------------------- pure: drawing


@dataclass(frozen=True)
class Panel:
    """One image of a case as drawn: a 2D display image in [0, 1] and optional overlays on its grid.

    Attributes:
        title: case id, input column and slice (no identifiers).
        image: 2D, already windowed to [0, 1].
        mask: 2D mask (outline drawn) or None.
        habitats: 2D labels 0..k (0 = outside) or None.
        cam: 2D Grad-CAM in [0, 1] or None.
    """

    title: str
    image: np.ndarray
    mask: np.ndarray | None = None
    habitats: np.ndarray | None = None
    cam: np.ndarray | None = None


def _rgba(layer: np.ndarray, colors: Sequence[Any], alpha: float) -> np.ndarray:
    """Label image (0 = transparent, 1..k) to RGBA with one colour per label."""
    from matplotlib.colors import to_rgba

    out = np.zeros((*layer.shape, 4), dtype=np.float32)
    for label in np.unique(layer[layer > 0]).astype(int):
        out[layer == label] = to_rgba(colors[(label - 1) % len(colors)], alpha)
    return out


def _draw_panel(ax: Any, panel: Panel, cam_alpha: float) -> None:
    ax.imshow(panel.image, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    if panel.habitats is not None:
        ax.imshow(_rgba(np.asarray(panel.habitats, int), HABITAT_COLORS, 0.55), interpolation="nearest")
    if panel.cam is not None and cam_alpha > 0:
        ax.imshow(panel.cam, cmap="jet", vmin=0.0, vmax=1.0, alpha=float(cam_alpha), interpolation="bilinear")
    if panel.mask is not None:
        ax.imshow(_rgba(mask_outline(panel.mask).astype(int), [MASK_COLOR], 1.0), interpolation="nearest")
    ax.set_title(panel.title, fontsize=8)
    ax.set_axis_off()


def render_case(panels: Sequence[Panel], *, cam_alpha: float = 0.4, title: str = "",
                panel_inches: float = 3.2) -> "Figure":
    """Draw a case's panels side by side (one view, two views, or three sequences) with their overlays.

    The figure is a pyplot figure, so a notebook can display it; close it after use (``figure_png(...,
    close=True)`` or ``display.show_figure`` do).

    Args:
        panels: what to draw, left to right.
        cam_alpha: Grad-CAM opacity in [0, 1].
        title: figure title.
        panel_inches: width of one panel.

    Raises:
        ValueError: no panels, a panel image that is not 2-D, or an opacity outside [0, 1].
    """
    if not panels:
        raise ValueError("render_case needs at least one panel")
    if not 0.0 <= float(cam_alpha) <= 1.0:
        raise ValueError(f"cam_alpha must be in [0, 1]; got {cam_alpha!r}")
    for p in panels:
        if np.ndim(p.image) != 2:
            raise ValueError(f"panel {p.title!r}: image must be 2-D; got shape {np.shape(p.image)}")
    fig = _figure(panel_inches * len(panels), panel_inches + (0.5 if title else 0.25))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels):
        _draw_panel(ax, panel, cam_alpha)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.86 if title else 0.9, wspace=0.04)
    return fig


def _figure(width: float, height: float) -> "Figure":
    """A pyplot figure (so notebooks display it); callers close it (``display.show_figure`` does)."""
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(width, height))


def figure_png(fig: "Figure", *, dpi: int = 100, close: bool = False) -> bytes:
    """PNG bytes of a figure (for an ``ipywidgets.Image``); ``close=True`` closes the figure afterwards."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------- cohort overview


def _ordered_sets(values: Sequence[str]) -> list[str]:
    present = list(dict.fromkeys(values))
    return [s for s in SET_ORDER if s in present] + sorted(s for s in present if s not in SET_ORDER)


def class_balance(table: pd.DataFrame) -> pd.DataFrame:
    """Cases, patients and classes per set, plus an ``all`` row.

    Args:
        table: cases with ``patient_id``, ``y`` and ``set`` (an empty set is shown as ``internal``).

    Example:
        >>> t = pd.DataFrame({"patient_id": ["a", "a", "b"], "y": [1, 1, 0], "set": ["train", "train", "val"]})
        >>> class_balance(t)["positive %"].tolist()
        [100.0, 0.0, 66.7]
    """
    sets = table["set"].fillna("").astype(str).replace("", "internal")
    rows = []
    for name in [*_ordered_sets(sets), ALL]:
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

    columns = _check_columns(table, columns)
    rows = [_stats_row(str(r["case_id"]), c, read_image(r[c]))
            for _, r in _sample(table, sample, seed).iterrows() for c in columns]
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
        Long table: group, bin_left, bin_right, density, images; ``attrs["by"]`` is ``by`` or ``"all"``.
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
    out.attrs.update(by=by if grouped else ALL, column=column)
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
        histograms = {histograms.attrs.get("column", "image"): histograms}
    fig = _figure(3.6 * len(histograms), 2.8)
    axes = fig.subplots(1, len(histograms), squeeze=False)[0]
    for ax, (column, hist) in zip(axes, histograms.items()):
        for group, part in hist.groupby("group", sort=False):
            ax.stairs(part["density"], [*part["bin_left"], part["bin_right"].iloc[-1]],
                      label=f"{group} ({int(part['images'].iloc[0])})")
        ax.set_title(f"{column} · by {hist.attrs.get('by', ALL)}", fontsize=9)
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


# -------------------------------------------------------------------------------------- run and cases


@dataclass(frozen=True)
class RunData:
    """What a finished run stored, read once (missing files are None)."""

    path: Path | None = None
    config: Any = None
    split: pd.DataFrame | None = None
    predictions: pd.DataFrame | None = None
    metrics: dict | None = None
    cams_dir: Path | None = None


def read_run(run_dir: str | Path | None) -> RunData:
    """Read a run folder's config, split, predictions, metrics and the location of its CAMs.

    Raises:
        FileNotFoundError: ``run_dir`` is given but is not a folder.
    """
    if run_dir is None or str(run_dir) == "":
        return RunData()
    from medlib.runs.folder import CAMS_DIR, CONFIG_NAME, METRICS_NAME, PREDICTIONS_NAME, SPLIT_NAME, open_run

    run = open_run(run_dir)
    has = {name: (run.path / name).is_file() for name in (CONFIG_NAME, SPLIT_NAME, PREDICTIONS_NAME, METRICS_NAME)}
    return RunData(path=run.path, config=run.read_config() if has[CONFIG_NAME] else None,
                   split=run.read_split() if has[SPLIT_NAME] else None,
                   predictions=run.read_predictions() if has[PREDICTIONS_NAME] else None,
                   metrics=run.read_metrics() if has[METRICS_NAME] else None,
                   cams_dir=run.path / CAMS_DIR if (run.path / CAMS_DIR).is_dir() else None)


def _split_from_config(cohort: Any, config: Any) -> pd.DataFrame:
    from medlib.data.cohort import read_split, split_cohort

    s = config.split
    if s.split_file:
        return read_split(s.split_file, cohort)
    return split_cohort(cohort, ratios=s.ratios, seed=s.seed, stratify=s.stratify, group=s.group,
                        folds=s.folds, fold=s.fold)


def case_table(cohort: Any, *, run: RunData | None = None, config: Any = None) -> tuple[pd.DataFrame, str]:
    """The cohort table with each case's set, and one sentence saying where the sets came from.

    Sets come from the run's ``split.csv``; without a run, from the split the params file makes (the same
    call a study run makes); without a config, from the manifest (``external`` or ``internal``).
    """
    table = cohort.table.copy()
    if run is not None and run.split is not None:
        sets = run.split.set_index("case_id")["set"]
        how = f"Sets from the run's split.csv ({run.path.name})."
    elif config is not None:
        try:
            sets = _split_from_config(cohort, config).set_index("case_id")["set"]
            how = "No run given: sets from the split the params file defines (as a study run makes it)."
        except ValueError as err:
            sets, how = None, f"No run given and the params file's split failed ({err}); sets from the manifest."
    else:
        sets, how = None, "No run or config given: sets from the manifest (external or internal)."
    if sets is None:
        table["set"] = table["set"].fillna("").astype(str).replace("", "internal")
    else:
        table["set"] = table["case_id"].map(sets).fillna("not in split")
    return table, how


def _meta_rows(image: Any) -> list[tuple[str, str]]:
    rows = [("shape", "×".join(map(str, image.array.shape))),
            ("spacing (mm)", "×".join(f"{s:.3g}" for s in image.spacing))]
    rows += [(k, str(image.meta[k])) for k in DISPLAY_META if k in image.meta]
    return rows


def _esc(value: Any) -> str:
    """HTML-escape text shown in a widget (text content only, never an attribute)."""
    return html.escape(str(value), quote=False)


def _html_table(rows: Sequence[tuple[str, Any]], title: str) -> str:
    body = "".join(f"<tr><td style='padding-right:8px'><b>{_esc(k)}</b></td>"
                   f"<td>{_esc(v)}</td></tr>" for k, v in rows)
    return f"<div><b>{_esc(title)}</b><table style='font-size:12px'>{body}</table></div>"


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def case_info_html(row: Mapping[str, Any], covariates: Sequence[str], *, label_column: str,
                   images: Mapping[str, Any] | None = None, model: str | None = None,
                   threshold: RunThreshold | None = None) -> str:
    """The panel beside the image: case, pseudonymous patient code, label, set, covariates, the model's score
    and threshold, and each image's technical metadata (allow-listed). Everything is HTML-escaped."""
    case = [("case", row["case_id"]), ("patient (code)", row["patient_id"]), ("label", row[label_column]),
            ("set", row["set"])]
    parts = [_html_table(case, "Case"), _html_table([(c, _fmt(row.get(c))) for c in covariates], "Covariates")]
    if model is not None and threshold is not None:
        pred = [("model", model), ("score", _fmt(row.get("score"))), ("threshold", _fmt(threshold.value)),
                ("outcome", row.get("outcome") or "–"), ("threshold source", threshold.source)]
        parts.append(_html_table(pred, "Prediction"))
    for column, image in (images or {}).items():
        parts.append(_html_table(_meta_rows(image), f"Image: {column}"))
    return "".join(parts)


def model_inputs(config: Any, model: str, image_columns: Sequence[str]) -> tuple[str, ...]:
    """The image columns a model read (from the run's config); all image columns when unknown."""
    for m in getattr(config, "models", ()) or ():
        if m.display_name == model:
            return tuple(m.inputs) or tuple(image_columns)
    return tuple(image_columns)


# ------------------------------------------------------------------------------------------ the browser


@dataclass
class _CaseData:
    """The current case's images, read once; derived overlays are cached per case."""

    case_id: str
    images: dict[str, Any]
    mask: np.ndarray | None
    derived: dict[Any, Any] = field(default_factory=dict)


class CohortBrowser:
    """Browse a cohort's cases, and a finished run's predictions and Grad-CAMs, in JupyterLab.

    Filters: label, set, and (with a run) model and outcome (TP/FP/TN/FN at the model's threshold). The
    image shows every input of the case side by side (one view, two views, three MR sequences), with a
    window/level per input, a slice slider and axis choice for volumes, the mask outline and the habitat
    subregions (when the cohort has a mask), and the run's Grad-CAM with an opacity slider. Beside it:
    the case's covariates, the score and the threshold, with where the threshold came from.

    Each new case opens with its inputs' default windows (the params file's ``image.window`` when set, else
    the 1st to 99th percentile) and, for volumes, the slice with the largest mask area (else the middle one).

    Display it in a notebook cell (``browser`` or ``display(browser.widget)``); the widgets are attributes,
    so a script or a test can set values and read what is shown (``image.value`` is PNG bytes,
    ``last_panels`` the arrays drawn).

    Args:
        cohort: a validated ``Cohort`` (``medlib.data.cohort.load_cohort``).
        run_dir: a finished run folder ``runs/<study>/<run-id>/`` (optional).
        config: the study's ``StudyConfig`` (optional; the run's ``config.yaml`` is used when not given).
    """

    def __init__(self, cohort: Any, *, run_dir: str | Path | None = None, config: Any = None) -> None:
        self.cohort = cohort
        self.run = read_run(run_dir)
        self.config = config if config is not None else self.run.config
        self.run_config = self.run.config if self.run.config is not None else config
        self.table, self.sets_note = case_table(cohort, run=self.run if self.run.path else None,
                                                config=self.config)
        self.thresholds = self._thresholds()
        self.last_panels: list[Panel] = []
        self._case: _CaseData | None = None
        self._quiet_depth = 0
        self._build()
        self.refresh()

    # -- set-up
    def _thresholds(self) -> dict[str, RunThreshold]:
        if self.run.predictions is None:
            return {}
        t = getattr(self.run_config, "threshold", None)
        return run_thresholds(self.run.predictions, self.run.metrics, method=getattr(t, "method", "youden"),
                              target=getattr(t, "target", None))

    @property
    def image_columns(self) -> tuple[str, ...]:
        """The cohort's image inputs, drawn left to right."""
        return tuple(self.cohort.config.image_columns)

    @property
    def mask_column(self) -> str | None:
        """The cohort's mask column (None: no mask)."""
        return self.cohort.config.mask_column

    def _build(self) -> None:
        import ipywidgets as w

        cfg = self.cohort.config
        models = list(self.thresholds)
        self.label_filter = w.Dropdown(description="Label", options=[
            ("all", ALL), (f"{cfg.negative} (negative)", "0"), (f"{cfg.positive} (positive)", "1")])
        self.set_filter = w.Dropdown(description="Set", options=[ALL, *_ordered_sets(self.table["set"])])
        self.model_select = w.Dropdown(description="Model", options=models or ["(no run)"], disabled=not models)
        self.outcome_filter = w.Dropdown(description="Outcome", options=[ALL, *OUTCOMES], disabled=not models)
        self.case_select = w.Select(description="Case", options=[], rows=12)
        self.count = w.HTML()
        self.notes = w.HTML()
        self._build_view_controls(w)
        self.image = w.Image(format="png")
        self.info = w.HTML()
        self.status = w.HTML()
        self._wire()

    def _build_view_controls(self, w: Any) -> None:
        self.axis = w.Dropdown(description="Axis", options=[("0 (slices)", 0), ("1 (rows)", 1), ("2 (columns)", 2)])
        self.slice = w.IntSlider(description="Slice", min=0, max=0, continuous_update=False)
        self.window = {c: (w.FloatSlider(description=f"{c} level", continuous_update=False, readout_format=".4g"),
                           w.FloatSlider(description=f"{c} width", continuous_update=False, readout_format=".4g"))
                       for c in self.image_columns}
        has_mask, has_cams = self.mask_column is not None, self.run.cams_dir is not None
        self.show_mask = w.Checkbox(description="mask outline", value=has_mask, disabled=not has_mask)
        self.show_habitats = w.Checkbox(description="habitat subregions", value=False, disabled=not has_mask)
        self.show_cam = w.Checkbox(description="Grad-CAM", value=False, disabled=not has_cams)
        self.cam_alpha = w.FloatSlider(description="CAM opacity", min=0.0, max=1.0, step=0.05, value=0.4,
                                       continuous_update=False, disabled=not has_cams)

    def _wire(self) -> None:
        for widget in (self.label_filter, self.set_filter, self.model_select, self.outcome_filter):
            widget.observe(lambda _: self.refresh(), names="value")
        self.case_select.observe(lambda change: None if self._quiet_depth else self.show_case(change["new"]),
                                 names="value")
        self.axis.observe(lambda _: self._reset_slice(), names="value")
        redraw = [self.slice, self.show_mask, self.show_habitats, self.show_cam, self.cam_alpha]
        for widget in redraw + [s for pair in self.window.values() for s in pair]:
            widget.observe(lambda _: self.render(), names="value")

    @contextlib.contextmanager
    def _quiet(self) -> Iterator[None]:
        """Batch widget updates without a redraw per change."""
        self._quiet_depth += 1
        try:
            yield
        finally:
            self._quiet_depth -= 1

    @property
    def widget(self) -> Any:
        """The whole browser as one ipywidgets box."""
        import ipywidgets as w

        if not hasattr(self, "_widget"):
            filters = w.HBox([w.VBox([self.label_filter, self.set_filter]),
                              w.VBox([self.model_select, self.outcome_filter])])
            windows = [s for pair in self.window.values() for s in pair]
            controls = w.VBox([self.axis, self.slice, *windows, self.show_mask, self.show_habitats,
                               self.show_cam, self.cam_alpha])
            left = w.VBox([self.case_select, self.count, controls])
            self._widget = w.VBox([filters, self.notes, w.HBox([left, w.VBox([self.image, self.status]),
                                                                  self.info])])
        return self._widget

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # -- filtering
    @property
    def model(self) -> str | None:
        """The selected model (None without a run's predictions)."""
        return self.model_select.value if self.thresholds else None

    def filtered(self) -> pd.DataFrame:
        """The cases the current filters select (with the model's score and outcome when there is a run)."""
        label = None if self.label_filter.value == ALL else int(self.label_filter.value)
        return filter_cases(self.table, label=label,
                            set_name=None if self.set_filter.value == ALL else self.set_filter.value,
                            outcome=None if self.outcome_filter.value == ALL else self.outcome_filter.value,
                            predictions=self.run.predictions if self.model else None,
                            thresholds=self.thresholds, model=self.model)

    def refresh(self) -> None:
        """Apply the filters: update the case list, the counts and the threshold note; show the selected case."""
        cases = self.filtered()
        label_col = self.cohort.config.label_column
        options = [(f"{r['case_id']} · {r[label_col]}" + (f" · {r['outcome']}" if r.get("outcome") else ""),
                    str(r["case_id"])) for _, r in cases.iterrows()]
        current = self.case_select.value
        self._filtered = cases
        with self._quiet():
            self.case_select.options = options
            values = [v for _, v in options]
            self.case_select.value = current if current in values else (values[0] if values else None)
        self.count.value = f"{len(cases)} of {len(self.table)} cases"
        self.notes.value = self._notes_html()
        self.show_case(self.case_select.value)

    def _notes_html(self) -> str:
        parts = [self.sets_note]
        if self.model:
            t = self.thresholds[self.model]
            parts.append(f"Threshold for {self.model}: {t.value:.4g} ({t.source}).")
        elif self.run.path is None:
            parts.append("No run given: no predictions, outcomes or Grad-CAM.")
        return "<br>".join(_esc(p) for p in parts)

    # -- the case
    def show_case(self, case_id: str | None) -> None:
        """Read the case's images (once) and draw it; None clears the view."""
        if case_id is None:
            self._case, self.last_panels = None, []
            self.image.value, self.info.value = b"", "<i>no case matches the filters</i>"
            return
        if self._case is None or self._case.case_id != case_id:
            self._case = self._read_case(case_id)
            self._reset_controls()
        self.info.value = self._info()
        self.render()

    def _row(self, case_id: str) -> pd.Series:
        source = self._filtered if case_id in set(self._filtered["case_id"]) else self.table
        return source[source["case_id"] == case_id].iloc[0]

    def _read_case(self, case_id: str) -> _CaseData:
        from medlib.data.imaging import read_image

        row = self._row(case_id)
        images = {c: read_image(row[c]) for c in self.image_columns}
        mask = read_image(row[self.mask_column]).array > 0.5 if self.mask_column else None
        return _CaseData(case_id=case_id, images=images, mask=mask)

    def _info(self) -> str:
        cfg = self.cohort.config
        return case_info_html(self._row(self._case.case_id), cfg.covariates, label_column=cfg.label_column,
                              images=self._case.images, model=self.model,
                              threshold=self.thresholds.get(self.model) if self.model else None)

    def _reset_controls(self) -> None:
        """New case: each input's window to its default, the slice to the mask's largest or the middle one."""
        with self._quiet():
            for column, image in self._case.images.items():
                self._set_window(column, image)
            volume = self._volume_shape() is not None
            for widget in (self.axis, self.slice):
                widget.layout.display = None if volume else "none"
            self._reset_slice()

    def _default_window(self, image: Any) -> tuple[float, float]:
        window = getattr(getattr(self.config, "image", None), "window", None)
        return tuple(window) if window else default_window(image.array)

    def _set_window(self, column: str, image: Any) -> None:
        lo, hi = intensity_range(image.array)
        center, width = self._default_window(image)
        span = hi - lo
        level, wide = self.window[column]
        _set_slider(level, min(lo, center), max(hi, center), center, span / 200)
        _set_slider(wide, span / 200, max(2 * span, width), width, span / 200)

    def _volume_shape(self) -> tuple[int, ...] | None:
        first = self._case.images[self.image_columns[0]].array
        return first.shape if first.ndim == 3 else None

    def _reset_slice(self) -> None:
        shape = self._volume_shape() if self._case is not None else None
        if shape is None:
            return
        mask = self._case.mask if self._case.mask is not None and self._case.mask.shape == shape else None
        with self._quiet():
            _set_slider(self.slice, 0, shape[self.axis.value] - 1, default_slice(shape, self.axis.value, mask), 1)
        self.render()

    # -- drawing
    def panels(self) -> list[Panel]:
        """The current case's panels as the controls set them (one per image column)."""
        return [self._panel(column) for column in self.image_columns]

    def _panel(self, column: str) -> Panel:
        array = self._case.images[column].array
        level, wide = (s.value for s in self.window[column])
        title = f"{self._case.case_id} · {column}"
        index = None
        if array.ndim == 3:
            index = min(self.slice.value, array.shape[self.axis.value] - 1)
            title += f" · axis {self.axis.value} slice {index}"

        def cut(layer: np.ndarray | None) -> np.ndarray | None:
            """The layer's 2D view on this image's grid (None if it is on another grid)."""
            if layer is None or layer.shape != array.shape:
                return None
            return layer if index is None else slice_volume(layer, self.axis.value, index)

        mask = self._case.mask if self.show_mask.value else None
        habitats = self._habitats(array) if self.show_habitats.value else None
        cam = self._cam(column, array.shape) if self.show_cam.value else None
        return Panel(title=title, image=window_image(cut(array), level, wide), mask=cut(mask),
                     habitats=cut(habitats), cam=cut(cam))

    def _habitats(self, array: np.ndarray) -> np.ndarray | None:
        """Habitat labels of the first input's volume inside the mask (cached per case)."""
        mask = self._case.mask
        if mask is None or array.ndim != 3 or mask.shape != array.shape or not mask.any():
            return None
        key = ("habitats", id(array))
        if key not in self._case.derived:
            from medlib.radiomics.features import habitat_labels

            k = getattr(getattr(self.config, "radiomics", None), "habitats", 0) or 3
            seed = getattr(getattr(self.config, "train", None), "seed", 0)
            try:
                self._case.derived[key] = habitat_labels(array, mask, k=k, seed=seed, case_id=self._case.case_id)
            except ValueError as err:  # e.g. too few distinct voxels in the ROI: said under the image
                self._case.derived[key] = None
                self._case.derived["habitat_error"] = f"Habitats not drawn: {err}"
        return self._case.derived[key]

    def _cam(self, column: str, shape: tuple[int, ...]) -> np.ndarray | None:
        """The model's stored Grad-CAM for this input, on the image grid (cached per case and model)."""
        model = self.model
        inputs = model_inputs(self.run_config, model, self.image_columns) if model else ()
        if column not in inputs:
            return None
        key = ("cam", model, column)
        if key not in self._case.derived:
            path = cam_path(self.run.cams_dir, model, self._case.case_id)
            self._case.derived[key] = None if path is None else cam_for_view(
                np.load(path, allow_pickle=False), shape, view=inputs.index(column), n_views=len(inputs))
        return self._case.derived[key]

    def figure(self) -> "Figure":
        """The current view as a matplotlib figure (for a static report; close it after use)."""
        self.last_panels = self.panels()
        return render_case(self.last_panels, cam_alpha=self.cam_alpha.value)

    def render(self) -> None:
        """Redraw the current case into ``image`` (PNG)."""
        if self._quiet_depth or self._case is None:
            return
        self.image.value = figure_png(self.figure(), close=True)
        notes = []
        if self.show_cam.value and all(p.cam is None for p in self.last_panels):
            notes.append(f"No Grad-CAM stored for {self._case.case_id} and {self.model} in the run's cams/.")
        if self.show_habitats.value and all(p.habitats is None for p in self.last_panels):
            notes.append(self._case.derived.get("habitat_error", "Habitats are drawn on a volume with a mask."))
        self.status.value = "<br>".join(_esc(n) for n in notes if n)


def _set_slider(slider: Any, lo: float, hi: float, value: float, step: float) -> None:
    """Set a slider's range and value in an order its validation accepts."""
    slider.min, slider.max = min(slider.min, lo), max(slider.max, hi)
    slider.value = value
    slider.min, slider.max = lo, hi
    slider.step = step if step > 0 else 1
