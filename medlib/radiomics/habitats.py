"""Habitats: an ROI clustered into subregions by intensity and local texture, numbered alike in every patient.

:func:`habitat_labels` clusters an ROI's voxels by intensity and local texture into ``k`` subregions and
orders them by ascending mean intensity, so habitat 1 means the same kind of subregion in every patient;
radiomics of each subregion are ``medlib.radiomics.features.habitat_radiomics``.
"""

from __future__ import annotations

import numpy as np

from medlib.radiomics._checks import case_label, check_volume


def _local_std(image: np.ndarray, mask: np.ndarray, radius: int) -> np.ndarray:
    """Standard deviation of the ROI voxels in each voxel's (2r+1)^3 neighbourhood (neighbours outside the
    ROI are ignored, so a habitat depends on the ROI only)."""
    from scipy import ndimage

    size = 2 * radius + 1
    m = mask.astype(np.float64)
    x = image.astype(np.float64) * m
    count = ndimage.uniform_filter(m, size, mode="constant")
    safe = np.where(count > 0, count, 1.0)
    mean = ndimage.uniform_filter(x, size, mode="constant") / safe
    mean_sq = ndimage.uniform_filter(x * x, size, mode="constant") / safe
    return np.sqrt(np.clip(mean_sq - mean**2, 0.0, None))


def _standardise(columns: np.ndarray) -> np.ndarray:
    sd = columns.std(axis=0)
    return (columns - columns.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def habitat_labels(image: np.ndarray, mask: np.ndarray, *, k: int = 3, seed: int = 0, texture_radius: int = 1,
                   n_init: int = 10, case_id: object | None = None) -> np.ndarray:
    """Cluster an ROI into ``k`` habitat subregions by intensity and local texture.

    Each ROI voxel is described by [intensity, local standard deviation of the ROI voxels in its
    ``(2*texture_radius+1)^3`` neighbourhood], both standardised within the ROI, and clustered with
    scikit-learn's ``KMeans(n_clusters=k, n_init=n_init, random_state=seed)``. Clusters are then numbered by
    ascending mean intensity (ties: ascending mean local SD), so habitat 1 is the lowest-density subregion in
    every patient and subregion models are comparable across patients.

    Args:
        image: (D, H, W) intensities.
        mask: (D, H, W) ROI (non-zero = ROI).
        k: number of subregions.
        seed: KMeans seed; the labels are deterministic for a seed.
        texture_radius: neighbourhood radius in voxels for the local SD.
        n_init: KMeans restarts.
        case_id: named in error messages.

    Returns:
        int array of the image's shape: 0 outside the ROI, 1..k inside.

    Raises:
        ValueError: naming the case: shapes differ, empty mask, or fewer than ``k`` distinct voxels in the ROI.
    """
    from sklearn.cluster import KMeans

    label = case_label(case_id)
    image, roi = np.asarray(image), np.asarray(mask) != 0
    check_volume(image, roi, (1.0, 1.0, 1.0), label)
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}")
    points = np.column_stack([image[roi].astype(np.float64), _local_std(image, roi, texture_radius)[roi]])
    distinct = len(np.unique(points, axis=0))
    if distinct < k:
        raise ValueError(f"{label}: the ROI has {roi.sum()} voxels with {distinct} distinct (intensity, texture) "
                         f"values; {k} habitats need at least {k}")
    raw = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(_standardise(points))
    keys = [(points[raw == c, 0].mean(), points[raw == c, 1].mean(), c) for c in range(k)]
    rank = {c: i + 1 for i, (_, _, c) in enumerate(sorted(keys))}
    labels = np.zeros(image.shape, dtype=np.int16)
    labels[roi] = np.array([rank[c] for c in range(k)])[raw]
    return labels
