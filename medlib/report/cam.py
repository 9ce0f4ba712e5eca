"""The Grad-CAM gallery of one model: test cases a reader can check against the lesion.

Per case (true positives, false negatives, false positives; ``medlib.pipelines.classifier.cam_cases``): the
image, the same image under the map, and the ground-truth lesion outline on both when the cohort has masks; the
map's maximum is marked (it is what the pointing game scores). Volumes show two axial slices: the one holding
the map's maximum and the lesion's central slice (its centroid), so a reader sees both where the model looked
and where the lesion is. Two cases per row at most, so each panel is about 1.7 inches wide on a 7-inch page
(the gallery this replaces put nine volume panels in a row, too small to read in the PDF), one colour bar per
figure, titles in the group's colour.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from medlib.explain.gradcam import overlay
from medlib.report.figures import GROUP_COLORS, RC
from medlib.schema import set_label

__all__ = ["lesion_centre_slice", "plot_cam_cases"]

PAGE_WIDTH = 7.0       # inches: the figure is drawn at the width it is printed at
CONTOUR = "#FFFFFF"    # the lesion outline (white reads on the grey image and on the jet overlay)
PEAK = "#FF00FF"       # the map's maximum


def lesion_centre_slice(mask: np.ndarray) -> int | None:
    """The axial slice through a (D, H, W) mask's centroid, or None for an empty mask."""
    depth = np.flatnonzero(np.asarray(mask).reshape(mask.shape[0], -1).any(axis=1))
    if len(depth) == 0:
        return None
    weights = np.asarray(mask).reshape(mask.shape[0], -1).sum(axis=1)
    return int(round(float((np.arange(mask.shape[0]) * weights).sum() / weights.sum())))


def _grey(ax, image: np.ndarray) -> None:
    lo, hi = np.percentile(image, [1, 99])
    ax.imshow(image, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, interpolation="nearest")


def _outline(ax, mask: np.ndarray | None) -> None:
    if mask is not None and np.asarray(mask).any():
        ax.contour(np.asarray(mask, dtype=float), levels=[0.5], colors=CONTOUR, linewidths=1.2)


def _peak(ax, cam2d: np.ndarray) -> None:
    if np.ptp(cam2d) > 0:
        r, c = np.unravel_index(int(np.argmax(cam2d)), cam2d.shape)
        ax.plot([c], [r], marker="+", color=PEAK, markersize=9, markeredgewidth=1.8)


def _panels_2d(info: pd.Series, image: np.ndarray, cam: np.ndarray, mask, views: list[str]) -> list[tuple]:
    """(title, draw) per panel of one 2D case: the first view, the first view under the map, the other views."""
    def plain(ax, v=0):
        _grey(ax, image[v])
        _outline(ax, mask if v == 0 else None)

    def heat(ax):
        ax.imshow(overlay(image[0], cam), interpolation="nearest")
        _outline(ax, mask)
        _peak(ax, cam)

    panels = [(views[0], plain), (f"{views[0]} + map", heat)]
    panels += [(views[v], lambda ax, v=v: plain(ax, v)) for v in range(1, len(views))]
    return panels


def _panels_3d(info: pd.Series, image: np.ndarray, cam: np.ndarray, mask, views: list[str]) -> list[tuple]:
    """(title, draw) per panel of one volume: the map at its maximum's slice; the lesion's central slice plain
    and under the map (without a mask, the maximum's slice plain instead)."""
    peak = int(np.unravel_index(int(np.argmax(cam)), cam.shape)[0]) if np.ptp(cam) > 0 else cam.shape[0] // 2
    centre = lesion_centre_slice(mask) if mask is not None else None

    def heat(ax, k):
        ax.imshow(overlay(image[0, k], cam[k]), interpolation="nearest")
        _outline(ax, None if mask is None else mask[k])
        _peak(ax, cam[k] if k == peak else np.zeros_like(cam[k]))

    def plain(ax, k):
        _grey(ax, image[0, k])
        _outline(ax, None if mask is None else mask[k])

    panels = [(f"slice {peak} (map max)", lambda ax: heat(ax, peak))]
    if centre is None:
        return panels + [(f"{views[0]} slice {peak}", lambda ax: plain(ax, peak))]
    return panels + [(f"{views[0]} slice {centre} (lesion)", lambda ax: plain(ax, centre)),
                     (f"slice {centre} + map", lambda ax: heat(ax, centre))]


def plot_cam_cases(gallery) -> plt.Figure:
    """One model's Grad-CAM gallery: per case the image, the map over it, the lesion outline and the map's
    maximum; a colour bar; two cases per row at most.

    Args:
        gallery: ``medlib.pipelines.classifier.CamCases`` or anything with ``model``, ``images``
            (``[n, C, *spatial]``), ``cams`` (``[n, *spatial]`` in [0, 1]), ``cases`` (case_id, group, score,
            y_true), ``views``, ``spatial_dims`` (2 or 3), ``masks`` (``[n, *spatial]`` or None) and ``method``
            (the map's name, e.g. "HiResCAM"; default "Grad-CAM").

    Raises:
        ValueError: ``spatial_dims`` is neither 2 nor 3, or the gallery has no case.
    """
    if gallery.spatial_dims not in (2, 3):
        raise ValueError(f"gallery.spatial_dims must be 2 or 3; got {gallery.spatial_dims!r}")
    n = len(gallery.cases)
    if n == 0:
        raise ValueError(f"the gallery of {gallery.model!r} has no case")
    views = list(gallery.views) or ["image"]
    masks = getattr(gallery, "masks", None)
    build = _panels_3d if gallery.spatial_dims == 3 else _panels_2d
    cases = [build(gallery.cases.iloc[i], gallery.images[i], gallery.cams[i],
                   None if masks is None else masks[i], views) for i in range(n)]
    per_case = max(len(p) for p in cases)
    per_row = 1 if per_case > 3 else min(2, n)
    nrows = int(np.ceil(n / per_row))
    ncols = per_row * per_case
    width = PAGE_WIDTH
    height = nrows * (width - 0.6) / ncols * 1.3 + 0.5
    with plt.rc_context({**RC, "figure.constrained_layout.use": False}):
        fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False, layout="compressed")
        for ax in axes.ravel():
            ax.axis("off")
        for i, panels in enumerate(cases):
            r, slot = divmod(i, per_row)
            row = gallery.cases.iloc[i]
            color = GROUP_COLORS.get(row["group"], "black")
            for j, (title, draw) in enumerate(panels):
                ax = axes[r, slot * per_case + j]
                draw(ax)
                head = f"{row['group']} · {row['case_id']} · score {row['score']:.2f}\n" if j == 0 else "\n"
                ax.set_title(f"{head}{title}", fontsize=7.5, color=color if j == 0 else "black", loc="left")
        method = getattr(gallery, "method", "Grad-CAM")
        _colorbar(fig, axes, method)
        handles = [Line2D([], [], color=PEAK, marker="+", linestyle="none", markersize=8, label="map maximum")]
        if masks is not None:
            handles.insert(0, Line2D([], [], color="black", linewidth=1.2, label="lesion outline (white)"))
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=7.5, frameon=False)
        where = set_label(getattr(gallery, "set_name", "test")).lower()
        fig.suptitle(f"{gallery.model}: {method} on {where} cases", fontsize=9)
    return fig


def _colorbar(fig: plt.Figure, axes: np.ndarray, method: str = "Grad-CAM") -> None:
    """One scale for every overlay (each map is relative to its own peak)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    bar = fig.colorbar(ScalarMappable(Normalize(0, 1), "jet"), ax=list(axes.ravel()), shrink=0.7, aspect=30,
                       pad=0.01, ticks=[0, 0.5, 1])
    bar.set_label(f"{method} (relative to the case's peak)", fontsize=7.5)
    bar.ax.tick_params(labelsize=7)
