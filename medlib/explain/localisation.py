"""Does a Grad-CAM map point at the lesion? Localisation scores against ground-truth lesion masks.

Two scores per case, on test positives whose cohort has lesion masks:

* **Pointing game** (Zhang et al. 2018, "Top-down neural attention by excitation backprop", IJCV 126:1084): a
  hit when the map's maximum lies inside the mask or within a tolerance of it. Zhang et al. allow 15 pixels at
  their 224-pixel input; here the tolerance is the same share of the image, ``POINTING_TOLERANCE`` = 15/224 of
  the shortest side (4.3 pixels at 64, 2.1 voxels at 32), so a map is not judged by the resolution it was drawn
  at.
* **Relevance mass** (Arras et al. 2022, "CLEVR-XAI", Information Fusion 81:14): the share of the map's
  energy (sum of its values) inside the mask; 1 = all of it.

Both are computed by ``quantus`` (``PointingGame``, ``RelevanceMassAccuracy``), the maintained toolkit of
explanation metrics, on 2D and 3D inputs (given ``channel_first``); the tolerance is applied by dilating the mask
by that distance (a maximum within ``r`` of the mask is a maximum inside the mask dilated by a ball of radius
``r``). Two rules are ours, because quantus leaves them open: a constant map (no maximum) is a miss, where
quantus would count every tied maximum and score a blank map a hit; and a case whose resampled mask is empty is
left out (and counted), where quantus returns NaN.

The **centre baseline** (Zhang et al.'s "center" baseline) is a map that knows nothing about the image: an
isotropic Gaussian at the image centre (SD a quarter of each side). A map that does not beat it has found
where lesions usually are, not where this one is. Intervals are percentile bootstraps over cases
(``scipy.stats.bootstrap``), paired for the difference from the baseline.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["POINTING_TOLERANCE", "LocalisationScores", "bootstrap_mean", "centre_map", "dilate",
           "pointing_game", "relevance_mass", "score_localisation", "tolerance_pixels"]

POINTING_TOLERANCE = 15 / 224  # Zhang et al.'s 15 pixels at 224, as a share of the shortest side


def tolerance_pixels(shape: Sequence[int], fraction: float = POINTING_TOLERANCE) -> float:
    """The pointing-game tolerance in pixels (voxels) for maps of ``shape``: ``fraction`` of the shortest side."""
    return float(fraction * min(shape))


def dilate(mask: np.ndarray, radius: float) -> np.ndarray:
    """Every pixel (voxel) within Euclidean distance ``radius`` of ``mask`` (the mask itself included)."""
    from scipy.ndimage import distance_transform_edt

    mask = np.asarray(mask, dtype=bool)
    if radius <= 0 or not mask.any():
        return mask.copy()
    return distance_transform_edt(~mask) <= radius


def centre_map(shape: Sequence[int]) -> np.ndarray:
    """The centre baseline: an isotropic Gaussian at the image centre with SD a quarter of each side, max 1."""
    axes = np.meshgrid(*[(np.arange(n) - (n - 1) / 2) / (n / 4) for n in shape], indexing="ij")
    return np.exp(-0.5 * sum(a ** 2 for a in axes)).astype(np.float32)


def _batch(maps: np.ndarray) -> np.ndarray:
    return np.asarray(maps, dtype=np.float64)[:, None]  # [N, 1, *spatial]: quantus wants a channel axis


def _quantus(metric, cams: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Run a quantus localisation metric on precomputed maps (no model is called)."""
    x = _batch(cams)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantus' parameterisation notes and citations
        scores = metric(model=None, x_batch=x, y_batch=np.ones(len(x), dtype=int), a_batch=x,
                        s_batch=_batch(masks.astype(np.float64)), channel_first=True)
    return np.asarray(scores, dtype=np.float64)


def pointing_game(cams: np.ndarray, masks: np.ndarray, *, tolerance: float | None = None) -> np.ndarray:
    """Per case: 1.0 when the map's maximum lies within ``tolerance`` pixels of the mask, else 0.0.

    Args:
        cams: maps ``[N, *spatial]``.
        masks: lesion masks, same shape, non-empty.
        tolerance: in pixels (voxels); None = ``tolerance_pixels`` of the map shape.

    Returns:
        float array ``[N]`` of 0/1; a constant map scores 0 (it has no maximum).
    """
    import quantus

    cams, masks = np.asarray(cams, dtype=np.float64), np.asarray(masks, dtype=bool)
    _check(cams, masks)
    radius = tolerance_pixels(cams.shape[1:]) if tolerance is None else tolerance
    hits = np.zeros(len(cams))
    varied = np.ptp(cams.reshape(len(cams), -1), axis=1) > 0  # constant maps stay misses; quantus is not asked
    if varied.any():
        grown = np.stack([dilate(m, radius) for m in masks[varied]])
        metric = quantus.PointingGame(normalise=False, abs=False, disable_warnings=True)
        hits[varied] = _quantus(metric, cams[varied], grown)
    return hits


def relevance_mass(cams: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per case: the share of the map's sum inside the mask (maps are non-negative, as Grad-CAM's are).

    Returns:
        float array ``[N]`` in [0, 1]; an all-zero map scores 0 (no energy anywhere, none inside).
    """
    import quantus

    cams, masks = np.asarray(cams, dtype=np.float64), np.asarray(masks, dtype=bool)
    _check(cams, masks)
    if (cams < 0).any():
        raise ValueError("relevance mass needs non-negative maps (Grad-CAM maps are in [0, 1])")
    mass = np.zeros(len(cams))
    energy = cams.reshape(len(cams), -1).sum(axis=1) > 0  # all-zero maps stay 0; quantus is not asked
    if energy.any():
        metric = quantus.RelevanceMassAccuracy(normalise=False, abs=False, disable_warnings=True)
        mass[energy] = _quantus(metric, cams[energy], masks[energy])
    return mass


def _check(cams: np.ndarray, masks: np.ndarray) -> None:
    if cams.shape != masks.shape or cams.ndim not in (3, 4):
        raise ValueError(f"need maps and masks of one shape [N, H, W] or [N, D, H, W]; got {cams.shape} and "
                         f"{masks.shape}")
    empty = [i for i, m in enumerate(masks) if not m.any()]
    if empty:
        raise ValueError(f"masks of cases {empty[:10]} are empty; leave such cases out before scoring")


def bootstrap_mean(values: np.ndarray, baseline: np.ndarray | None = None, *, n_boot: int = 2000,
                   level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``values`` (or of ``values - baseline``, paired) with a percentile bootstrap interval over cases.

    Returns:
        (estimate, low, high); low = high = estimate when every case has the same value, NaNs for no cases.
    """
    from scipy.stats import bootstrap

    v = np.asarray(values, dtype=np.float64)
    if baseline is not None:
        v = v - np.asarray(baseline, dtype=np.float64)
    if len(v) == 0:
        return (float("nan"),) * 3
    estimate = float(v.mean())
    if len(v) < 2 or np.ptp(v) == 0:
        return estimate, estimate, estimate
    res = bootstrap((v,), np.mean, n_resamples=n_boot, confidence_level=level, method="percentile",
                    random_state=np.random.default_rng(seed), vectorized=True)
    return estimate, float(res.confidence_interval.low), float(res.confidence_interval.high)


@dataclass(frozen=True)
class LocalisationScores:
    """Per-case localisation scores of one model and of the centre baseline.

    Attributes:
        pointing, mass: the model's per-case pointing-game hits (0/1) and relevance mass.
        centre_pointing, centre_mass: the same for the centre baseline.
        tolerance: the pointing tolerance in pixels (voxels).
    """

    pointing: np.ndarray
    mass: np.ndarray
    centre_pointing: np.ndarray
    centre_mass: np.ndarray
    tolerance: float

    def __len__(self) -> int:
        return len(self.pointing)


def score_localisation(cams: np.ndarray, masks: np.ndarray, *, tolerance: float | None = None) -> LocalisationScores:
    """Pointing game and relevance mass of ``cams`` and of the centre baseline against ``masks``."""
    cams, masks = np.asarray(cams, dtype=np.float64), np.asarray(masks, dtype=bool)
    radius = tolerance_pixels(cams.shape[1:]) if tolerance is None else tolerance
    centre = np.broadcast_to(centre_map(cams.shape[1:]), cams.shape)
    return LocalisationScores(pointing=pointing_game(cams, masks, tolerance=radius),
                              mass=relevance_mass(cams, masks),
                              centre_pointing=pointing_game(centre, masks, tolerance=radius),
                              centre_mass=relevance_mass(centre, masks), tolerance=radius)
