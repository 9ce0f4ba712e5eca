"""The images of a case as the browser draws them: display windows, slices, mask outlines, Grad-CAM maps fitted
to the image grid, and panels rendered to a matplotlib figure or PNG bytes.

Every function here is pure (arrays in, new arrays or a figure out) and testable without widgets. The display
window itself is :func:`medlib.data.imaging.window.linear_window`, re-exported here as ``window_image``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from medlib.data.imaging.window import linear_window as window_image

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["window_image", "intensity_range", "default_window", "slice_volume", "default_slice", "mask_outline",
           "fit_to_shape", "cam_for_view", "Panel", "render_case", "figure_png", "HABITAT_COLORS", "MASK_COLOR"]

HABITAT_COLORS = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")
MASK_COLOR = (1.0, 0.15, 0.15)


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
