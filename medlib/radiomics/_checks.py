"""Input checks shared by the radiomics modules: one volume and its ROI, named by case in every message."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def case_label(case_id: object | None) -> str:
    """How a message names the case: ``case 'c1'``, or ``the image`` when there is no id."""
    return f"case {case_id!r}" if case_id is not None else "the image"


def check_volume(image: np.ndarray, mask: np.ndarray, spacing: Sequence[float], label: str) -> None:
    """Check a (D, H, W) image, a mask of its shape with at least one ROI voxel, and 3 positive spacings.

    Raises:
        ValueError: starting with ``label`` (:func:`case_label`) and saying what arrived.
    """
    if image.ndim != 3:
        raise ValueError(f"{label}: image must be a 3-D (D, H, W) array; got shape {image.shape}")
    if mask.shape != image.shape:
        raise ValueError(f"{label}: mask shape {mask.shape} differs from image shape {image.shape}")
    if len(spacing) != 3 or not all(math.isfinite(s) and s > 0 for s in map(float, spacing)):
        raise ValueError(f"{label}: spacing must be 3 positive numbers in (D, H, W) order; got {tuple(spacing)}")
    if not np.any(mask):
        raise ValueError(f"{label}: the mask is empty (no ROI voxel on any slice)")

