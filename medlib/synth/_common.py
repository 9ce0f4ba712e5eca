"""Shared pieces of the synthetic cohorts: the writer context, RNG draws for covariates, and 2D shapes.

Every function takes its ``np.random.Generator``; nothing here holds state. The design modules (``nec``,
``onfh``, ``ich``, ``glioma``) call these in a fixed order, so the same seed gives the same draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.uid import generate_uid
from scipy import ndimage


@dataclass(frozen=True)
class Ctx:
    """What a study writer needs: where to write, the seed (for UIDs) and the size options.

    Attributes:
        study: the study name ("nec", "onfh", "ich" or "glioma").
        seed: the generator seed; UIDs are derived from it.
        root: the folder the cohort is written into.
        scale: multiplies the number of patients.
        image_size: the image side in pixels, or None for the design's default.
    """

    study: str
    seed: int
    root: Path
    scale: float
    image_size: int | None

    def uid(self, *parts: object) -> str:
        """A DICOM UID that is deterministic for the seed, study and ``parts`` (always 64 characters)."""
        return generate_uid(entropy_srcs=["medlib.synth", self.study, str(self.seed), *map(str, parts)])

    def path(self, relative: str) -> Path:
        """``root / relative``, with its parent folders created."""
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        return target


# ------------------------------------------------------------------------------------------ counts, covariates
def count(n: int, scale: float, minimum: int = 10) -> int:
    """``n * scale`` rounded, and at least ``minimum``."""
    return max(minimum, round(n * scale))


def sigmoid(x: np.ndarray | float) -> np.ndarray | float:
    """The logistic function ``1 / (1 + exp(-x))``."""
    return 1.0 / (1.0 + np.exp(-x))


def labels(rng: np.random.Generator, n_pos: int, n_neg: int) -> np.ndarray:
    """0/1 labels with exact counts, in random order."""
    return rng.permutation(np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)])


def normal(rng: np.random.Generator, mean: np.ndarray | float, sd: float, lo: float, hi: float,
           size: int) -> np.ndarray:
    """``size`` normal draws clipped to ``[lo, hi]``."""
    return np.clip(rng.normal(mean, sd, size), lo, hi)


def with_missing(rng: np.random.Generator, values: np.ndarray, fraction: float) -> np.ndarray:
    """A float copy with ``max(1, round(fraction * n))`` randomly chosen values set to NaN."""
    out = values.astype(float).copy()
    out[rng.choice(len(out), size=max(1, round(fraction * len(out))), replace=False)] = np.nan
    return out


def date(rng: np.random.Generator, start: str = "2015-01-01", days: int = 3000) -> str:
    """A random DICOM date (``YYYYMMDD``) within ``days`` days from ``start``."""
    return str(np.datetime64(start) + int(rng.integers(days))).replace("-", "")


# ----------------------------------------------------------------------------------------------------- shapes
def grid2(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row (y, downwards) and column (x, rightwards) coordinates in [-1, 1], broadcastable."""
    c = ((np.arange(n, dtype=np.float32) + 0.5) / n * 2 - 1).astype(np.float32)
    return c[:, None], c[None, :]


def ellipse(y: np.ndarray, x: np.ndarray, cy: float, cx: float, ry: float, rx: float, angle: float = 0.0,
            edge: float = 0.015, power: float = 2.0) -> np.ndarray:
    """Anti-aliased filled (super-)ellipse in [0, 1]; ``edge`` is the soft border width in grid units."""
    c, s = np.cos(angle), np.sin(angle)
    u = np.abs(((x - cx) * c + (y - cy) * s) / rx)
    v = np.abs((-(x - cx) * s + (y - cy) * c) / ry)
    d = (u**power + v**power) ** (1.0 / power)
    return np.clip((1.0 - d) * min(rx, ry) / edge + 0.5, 0.0, 1.0).astype(np.float32)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float | tuple[float, ...]) -> np.ndarray:
    """Gaussian-filtered white noise scaled to unit standard deviation."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma)
    return field / (field.std() + 1e-6)
