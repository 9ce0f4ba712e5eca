"""Features for the ICH design: radiomics (pyradiomics), habitat subregions, and pooled CNN features of ROI slices.

Radiomics
    :func:`radiomics_features` computes first-order, shape, GLCM, GLRLM, GLSZM, GLDM and NGTDM features with
    pyradiomics from a NumPy volume in medlib's ``(D, H, W)`` order and its spacing in the same order (the
    SimpleITK image is built with the spacing reversed to ITK's ``(x, y, z)``). Grey levels use a fixed bin width,
    the volume is optionally resampled to isotropic voxels (B-spline for the image, nearest neighbour for the
    mask), and :func:`radiomics_settings` returns the exact pyradiomics settings used, so a report can state them.
    :func:`radiomics_table` does the same for many cases with a process pool.

IBSI verification (IBSI 1 digital phantom, configuration "A": no resampling, no re-discretisation, i.e. bin
width 1 on the phantom's integer grey levels 1..6; 3D texture matrices averaged over the 13 directions)
    ``IBSI_PHANTOM_MAP`` maps 102 pyradiomics features to IBSI consensus features; ``tests/test_features.py``
    checks every one against ``ibsi1_digital_phantom_reference_values.csv`` (tolerance: the table's own, or half
    a unit of the last reported digit, the values being rounded to 3 significant digits) and fails if a feature
    listed as matching does not, or if a feature in ``IBSI_KNOWN_DEVIATIONS`` starts to match.

    Matching (99): morphology (9) - volume (mesh), volume (voxel counting), surface area (mesh), surface to
    volume ratio, sphericity, maximum 3D diameter, major axis length, elongation, flatness; intensity
    statistics (14) - mean, variance, skewness, median, minimum, maximum, 10th/90th percentiles, interquartile
    range, range, mean and robust mean absolute deviation, energy, root mean square; intensity histogram (2) -
    entropy, uniformity (pyradiomics computes them on the discretised grey levels); GLCM "3D, averaged" (23,
    every pyradiomics GLCM feature except MCC, which IBSI does not define); GLRLM "3D, averaged" (16, all);
    GLSZM "3D" (16, all); NGLDM "3D" (14, pyradiomics' GLDM with alpha 0 is IBSI's NGLDM with a = 0, d = 1);
    NGTDM "3D" (5, all).
    pyradiomics builds one symmetric GLCM/GLRLM per direction and averages the features over the 13 directions,
    which is IBSI's "3D, averaged" aggregation, not "3D, merged" (one matrix summed over directions); the two
    differ (GLCM joint entropy 2.40 vs 2.57; GLRLM grey level non-uniformity 21.8 vs 281), so texture values
    from a tool that merges are not interchangeable with ours. Not mapped: pyradiomics' 2D maximum diameters,
    TotalEnergy and glcm MCC (no IBSI counterpart); IBSI features pyradiomics lacks (e.g. local intensity peaks,
    intensity-volume histogram, GLDZM, Moran's I) are out of scope.

    Known deviations (3), with the reason:
    - ``original_firstorder_Kurtosis``: pyradiomics reports kurtosis m4/m2^2 (2.65), IBSI the excess kurtosis,
      m4/m2^2 - 3 (-0.355). Subtract 3 to compare.
    - ``original_shape_MinorAxisLength`` and ``original_shape_LeastAxisLength``: pyradiomics takes the
      eigenvalues of the voxel-coordinate covariance normalised by N, IBSI by N - 1, so its lengths are smaller
      by sqrt((N - 1) / N) (0.9932 for the phantom's 74 voxels): 9.24 vs 9.31 and 8.48 vs 8.54. The major axis
      length carries the same factor (11.33 vs 11.4) but stays inside IBSI's tolerance of 0.1.

Habitats
    :func:`habitat_labels` clusters an ROI's voxels by intensity and local texture into ``k`` subregions and
    orders them by ascending mean intensity, so habitat 1 means the same kind of subregion in every patient;
    :func:`habitat_radiomics` computes radiomics per subregion.

Deep features
    :func:`select_slices` picks the axial slice with the largest ROI and its neighbours at physical offsets (mm),
    crops them to the ROI, windows and resizes them; :func:`extract_features` pools any CNN layer with a forward
    hook; :func:`ich_deep_features` combines the two into one feature vector per case.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import multiprocessing
import warnings
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Literal, NamedTuple, Sequence

import numpy as np
import pandas as pd

from medlib.config import RadiomicsConfig

if TYPE_CHECKING:  # torch is imported lazily: radiomics and habitats do not need it
    import torch
    from torch import nn

FEATURE_CLASSES = ("firstorder", "shape", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
_SETTING_NAMES = tuple(f.name for f in dataclasses.fields(RadiomicsConfig))


# --------------------------------------------------------------------------------------------------- radiomics

def _case(case_id: object | None) -> str:
    return f"case {case_id!r}" if case_id is not None else "the image"


def resolve_settings(settings: RadiomicsConfig | None = None, **overrides: Any) -> RadiomicsConfig:
    """A ``RadiomicsConfig`` from a config and/or keyword overrides of its fields.

    Args:
        settings: the study's radiomics config; None = the defaults.
        **overrides: ``RadiomicsConfig`` fields, e.g. ``bin_width=1, resample_mm=None``.

    Raises:
        TypeError: an override that is not a ``RadiomicsConfig`` field.
        ValueError: a feature class pyradiomics does not have, or a non-positive bin width or spacing.
    """
    unknown = sorted(set(overrides) - set(_SETTING_NAMES))
    if unknown:
        raise TypeError(f"unknown radiomics setting(s) {unknown}; allowed: {sorted(_SETTING_NAMES)}")
    cfg = dataclasses.replace(settings or RadiomicsConfig(), **overrides)
    bad = [c for c in cfg.feature_classes if c not in FEATURE_CLASSES]
    if bad or not cfg.feature_classes:
        raise ValueError(f"feature_classes must be a non-empty subset of {list(FEATURE_CLASSES)}; "
                         f"got {list(cfg.feature_classes)}")
    if not cfg.bin_width > 0:
        raise ValueError(f"bin_width must be > 0; got {cfg.bin_width}")
    if cfg.resample_mm is not None and not cfg.resample_mm > 0:
        raise ValueError(f"resample_mm must be > 0 or None; got {cfg.resample_mm}")
    return cfg


def radiomics_settings(settings: RadiomicsConfig | None = None, **overrides: Any) -> dict[str, Any]:
    """The pyradiomics settings used for ``settings``: what a methods section or run folder records.

    Returns:
        ``{"setting": {...pyradiomics keyword settings...}, "feature_classes": [...], "pyradiomics": version}``.
    """
    import radiomics

    cfg = resolve_settings(settings, **overrides)
    resample = None if cfg.resample_mm is None else [float(cfg.resample_mm)] * 3
    setting = {
        "binWidth": float(cfg.bin_width),        # fixed bin width (IBSI "FBS"), grey levels start at the minimum
        "resampledPixelSpacing": resample,       # isotropic resampling, or None for the native grid
        "interpolator": "sitkBSpline",           # image interpolator; the mask is resampled nearest-neighbour
        "padDistance": 5,
        "label": 1,
        "force2D": False,                        # 3D texture matrices, averaged over 13 directions
        "normalize": False,
        "correctMask": False,
        "minimumROIDimensions": 2,
        "voxelArrayShift": 0,
        "additionalInfo": False,
    }
    return {"setting": setting, "feature_classes": list(cfg.feature_classes),
            "pyradiomics": getattr(radiomics, "__version__", "unknown")}


@contextlib.contextmanager
def _quiet_radiomics() -> Iterator[None]:
    """Silence pyradiomics' logger (warnings and info) for one extraction, then restore its level."""
    logger = logging.getLogger("radiomics")
    old = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(old)


def _check_volume(image: np.ndarray, mask: np.ndarray, spacing: Sequence[float], label: str) -> None:
    if image.ndim != 3:
        raise ValueError(f"{label}: image must be a 3-D (D, H, W) array; got shape {image.shape}")
    if mask.shape != image.shape:
        raise ValueError(f"{label}: mask shape {mask.shape} differs from image shape {image.shape}")
    if len(spacing) != 3 or not all(math.isfinite(s) and s > 0 for s in map(float, spacing)):
        raise ValueError(f"{label}: spacing must be 3 positive numbers in (D, H, W) order; got {tuple(spacing)}")
    if not np.any(mask):
        raise ValueError(f"{label}: the mask is empty (no ROI voxel on any slice)")


def _to_sitk(array: np.ndarray, spacing: Sequence[float]):
    """A SimpleITK image of a (D, H, W) array; ITK's spacing is (x, y, z) = reversed (W, H, D)."""
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.ascontiguousarray(array))
    img.SetSpacing(tuple(float(s) for s in reversed(tuple(spacing))))
    return img


def radiomics_features(image: np.ndarray, mask: np.ndarray, spacing: Sequence[float], *,
                       settings: RadiomicsConfig | None = None, case_id: object | None = None,
                       **overrides: Any) -> dict[str, float]:
    """Radiomics of one 3D ROI with pyradiomics.

    Args:
        image: (D, H, W) intensities (HU for CT).
        mask: (D, H, W) ROI, boolean or 0/1; any non-zero voxel is ROI.
        spacing: voxel size in mm, in the same (D, H, W) order as the arrays.
        settings: bin width, resampling and feature classes; None = ``RadiomicsConfig()`` defaults.
        case_id: named in error messages.
        **overrides: ``RadiomicsConfig`` fields overriding ``settings`` (e.g. ``resample_mm=None``).

    Returns:
        ``{"original_glcm_Contrast": 0.52, ...}``: pyradiomics' feature names, float values (diagnostics dropped).

    Raises:
        ValueError: naming the case: empty mask, shapes differ, bad spacing, or pyradiomics rejects the ROI
            (e.g. too small after resampling).
    """
    from radiomics import featureextractor

    label = _case(case_id)
    image, mask = np.asarray(image), np.asarray(mask)
    _check_volume(image, mask, spacing, label)
    spec = radiomics_settings(settings, **overrides)
    sitk_image = _to_sitk(image.astype(np.float32, copy=False), spacing)
    sitk_mask = _to_sitk((mask != 0).astype(np.uint8), spacing)
    with _quiet_radiomics():
        extractor = featureextractor.RadiomicsFeatureExtractor(**spec["setting"])
        extractor.disableAllFeatures()
        for name in spec["feature_classes"]:
            extractor.enableFeatureClassByName(name)
        try:
            result = extractor.execute(sitk_image, sitk_mask)
        except (ValueError, RuntimeError) as err:
            raise ValueError(f"{label}: pyradiomics could not compute features: {err}") from err
    return {k: float(v) for k, v in result.items() if not k.startswith("diagnostics_")}


def _read_case(case: tuple[object, str, str], reader: Callable[[Any], Any] | None
               ) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """Read one case's image and mask and check that they share a grid."""
    if reader is None:
        from medlib.data.imaging import read_image as reader
    case_id, image_path, mask_path = case
    image, mask = reader(image_path), reader(mask_path)
    label = _case(case_id)
    if np.shape(mask.array) != np.shape(image.array):
        raise ValueError(f"{label}: mask shape {np.shape(mask.array)} ({mask_path}) differs from image shape "
                         f"{np.shape(image.array)} ({image_path})")
    if not np.allclose(mask.spacing, image.spacing, rtol=1e-4, atol=1e-4):
        raise ValueError(f"{label}: mask spacing {tuple(mask.spacing)} ({mask_path}) differs from image spacing "
                         f"{tuple(image.spacing)} ({image_path})")
    return np.asarray(image.array), np.asarray(mask.array) > 0.5, tuple(float(s) for s in image.spacing)


def _table_row(case: tuple[object, str, str], settings: RadiomicsConfig,
               reader: Callable[[Any], Any] | None, habitats: int = 0, seed: int = 0) -> dict[str, float]:
    image, mask, spacing = _read_case(case, reader)
    row = radiomics_features(image, mask, spacing, settings=settings, case_id=case[0])
    if habitats:
        row.update(habitat_radiomics(image, mask, spacing, k=habitats, settings=settings, seed=seed,
                                     case_id=case[0]))
    return row


def _single_threaded_worker() -> None:
    """Pool workers compute with one thread each: the pool is the parallelism (``medlib.threads``); SimpleITK
    keeps its own thread count."""
    import SimpleITK as sitk

    from medlib.threads import limit_threads

    limit_threads(1)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)


def radiomics_table(cases: Iterable[tuple[object, str, str]], settings: RadiomicsConfig | None = None, *,
                    workers: int = 1, reader: Callable[[Any], Any] | None = None, habitats: int = 0,
                    seed: int = 0) -> pd.DataFrame:
    """Radiomics for many cases, one row per case, in parallel over cases; optionally per habitat subregion.

    Each case is read once; its whole-ROI features and, with ``habitats``, the features of each of its
    habitat subregions (:func:`habitat_radiomics`) are computed in the same worker.

    Args:
        cases: ``(case_id, image_path, mask_path)`` triples; mask voxels > 0.5 are ROI.
        settings: as in :func:`radiomics_features`.
        workers: processes (``concurrent.futures.ProcessPoolExecutor`` with the "spawn" start method, which
            is safe after torch has started threads); 1 = in this process.
        reader: ``path -> object with .array (D, H, W) and .spacing``; None = ``medlib.data.imaging.read_image``.
            Must be a module-level function when ``workers > 1``.
        habitats: k > 0 also computes radiomics of k habitat subregions per case, in columns prefixed
            ``habitat1_`` ... ``habitat{k}_``; 0 = whole ROI only.
        seed: the habitat clustering's seed.

    Returns:
        DataFrame indexed by ``case_id`` in the order given, one column per feature; ``attrs["radiomics"]``
        holds :func:`radiomics_settings`.

    Raises:
        ValueError: duplicated case ids, ``workers < 1``, or a bad case (naming it).
    """
    cases = [tuple(c) for c in cases]
    cfg = resolve_settings(settings)
    ids = [c[0] for c in cases]
    if len(set(ids)) != len(ids):
        raise ValueError(f"case ids must be unique; duplicated: {sorted({i for i in ids if ids.count(i) > 1})}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1; got {workers}")
    if workers == 1 or len(cases) <= 1:
        rows = [_table_row(c, cfg, reader, habitats, seed) for c in cases]
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, len(cases)), mp_context=context,
                                 initializer=_single_threaded_worker) as pool:
            rows = list(pool.map(_table_row, cases, repeat(cfg), repeat(reader), repeat(habitats), repeat(seed)))
    table = pd.DataFrame(rows, index=pd.Index(ids, name="case_id"))
    table.attrs["radiomics"] = radiomics_settings(cfg)
    return table


# ------------------------------------------------------------------------------------------ IBSI verification

def ibsi_phantom_settings() -> RadiomicsConfig:
    """IBSI 1 configuration "A" for the digital phantom: native grid, grey levels used as they are (bin width 1)."""
    return RadiomicsConfig(bin_width=1.0, resample_mm=None, feature_classes=FEATURE_CLASSES)


def _ibsi(family: str, aggregation: str, names: dict[str, str], prefix: str) -> dict[str, tuple[str, str, str]]:
    return {f"original_{prefix}_{py}": (family, ibsi, aggregation) for py, ibsi in names.items()}


_GLRLM = {"ShortRunEmphasis": "Short runs emphasis", "LongRunEmphasis": "Long runs emphasis",
          "LowGrayLevelRunEmphasis": "Low grey level run emphasis",
          "HighGrayLevelRunEmphasis": "High grey level run emphasis",
          "ShortRunLowGrayLevelEmphasis": "Short run low grey level emphasis",
          "ShortRunHighGrayLevelEmphasis": "Short run high grey level emphasis",
          "LongRunLowGrayLevelEmphasis": "Long run low grey level emphasis",
          "LongRunHighGrayLevelEmphasis": "Long run high grey level emphasis",
          "GrayLevelNonUniformity": "Grey level non-uniformity",
          "GrayLevelNonUniformityNormalized": "Normalised grey level non-uniformity",
          "RunLengthNonUniformity": "Run length non-uniformity",
          "RunLengthNonUniformityNormalized": "Normalised run length non-uniformity",
          "RunPercentage": "Run percentage", "GrayLevelVariance": "Grey level variance",
          "RunVariance": "Run length variance", "RunEntropy": "Run entropy"}
_GLSZM = {"SmallAreaEmphasis": "Small zone emphasis", "LargeAreaEmphasis": "Large zone emphasis",
          "LowGrayLevelZoneEmphasis": "Low grey level zone emphasis",
          "HighGrayLevelZoneEmphasis": "High grey level zone emphasis",
          "SmallAreaLowGrayLevelEmphasis": "Small zone low grey level emphasis",
          "SmallAreaHighGrayLevelEmphasis": "Small zone high grey level emphasis",
          "LargeAreaLowGrayLevelEmphasis": "Large zone low grey level emphasis",
          "LargeAreaHighGrayLevelEmphasis": "Large zone high grey level emphasis",
          "GrayLevelNonUniformity": "Grey level non-uniformity",
          "GrayLevelNonUniformityNormalized": "Normalised grey level non-uniformity",
          "SizeZoneNonUniformity": "Zone size non-uniformity",
          "SizeZoneNonUniformityNormalized": "Normalised zone size non-uniformity",
          "ZonePercentage": "Zone percentage", "GrayLevelVariance": "Grey level variance",
          "ZoneVariance": "Zone size variance", "ZoneEntropy": "Zone size entropy"}
_GLDM = {"SmallDependenceEmphasis": "Low dependence emphasis", "LargeDependenceEmphasis": "High dependence emphasis",
         "LowGrayLevelEmphasis": "Low grey level count emphasis",
         "HighGrayLevelEmphasis": "High grey level count emphasis",
         "SmallDependenceLowGrayLevelEmphasis": "Low dependence low grey level emphasis",
         "SmallDependenceHighGrayLevelEmphasis": "Low dependence high grey level emphasis",
         "LargeDependenceLowGrayLevelEmphasis": "High dependence low grey level emphasis",
         "LargeDependenceHighGrayLevelEmphasis": "High dependence high grey level emphasis",
         "GrayLevelNonUniformity": "Grey level non-uniformity",
         "DependenceNonUniformity": "Dependence count non-uniformity",
         "DependenceNonUniformityNormalized": "Normalised dependence count non-uniformity",
         "GrayLevelVariance": "Grey level variance", "DependenceVariance": "Dependence count variance",
         "DependenceEntropy": "Dependence count entropy"}
_GLCM = {"MaximumProbability": "Joint maximum", "JointAverage": "Joint average", "SumSquares": "Joint variance",
         "JointEntropy": "Joint entropy", "DifferenceAverage": "Difference average",
         "DifferenceVariance": "Difference variance", "DifferenceEntropy": "Difference entropy",
         "SumAverage": "Sum average", "SumEntropy": "Sum entropy", "JointEnergy": "Angular second moment",
         "Contrast": "Contrast", "Id": "Inverse difference", "Idn": "Normalised inverse difference",
         "Idm": "Inverse difference moment", "Idmn": "Normalised inverse difference moment",
         "InverseVariance": "Inverse variance", "Correlation": "Correlation", "Autocorrelation": "Autocorrelation",
         "ClusterTendency": "Cluster tendency", "ClusterShade": "Cluster shade",
         "ClusterProminence": "Cluster prominence", "Imc1": "Information correlation 1",
         "Imc2": "Information correlation 2"}
_SHAPE = {"MeshVolume": "Volume (mesh)", "VoxelVolume": "Volume (voxel counting)",
          "SurfaceArea": "Surface area (mesh)", "SurfaceVolumeRatio": "Surface to volume ratio",
          "Sphericity": "Sphericity", "Maximum3DDiameter": "Maximum 3D diameter",
          "MajorAxisLength": "Major axis length", "MinorAxisLength": "Minor axis length",
          "LeastAxisLength": "Least axis length", "Elongation": "Elongation", "Flatness": "Flatness"}
_FIRSTORDER = {"Mean": "Mean intensity", "Variance": "Intensity variance", "Skewness": "Intensity skewness",
               "Kurtosis": "(Excess) intensity kurtosis", "Median": "Median intensity",
               "Minimum": "Minimum intensity", "10Percentile": "10\\ :sup:`th` intensity percentile",
               "90Percentile": "90\\ :sup:`th` intensity percentile", "Maximum": "Maximum intensity",
               "InterquartileRange": "Intensity interquartile range", "Range": "Intensity range",
               "MeanAbsoluteDeviation": "Intensity-based mean absolute deviation",
               "RobustMeanAbsoluteDeviation": "Intensity-based robust mean absolute deviation",
               "Energy": "Intensity-based energy", "RootMeanSquared": "Root mean square intensity"}

#: pyradiomics feature name -> (IBSI family, IBSI feature, IBSI aggregation) in the phantom's consensus table.
IBSI_PHANTOM_MAP: dict[str, tuple[str, str, str]] = {
    **_ibsi("morphology", "", _SHAPE, "shape"),
    **_ibsi("intensity statistics", "", _FIRSTORDER, "firstorder"),
    **_ibsi("intensity histogram", "", {"Entropy": "Discretised intensity entropy",
                                        "Uniformity": "Discretised intensity uniformity"}, "firstorder"),
    **_ibsi("GLCM", "3D, averaged", _GLCM, "glcm"),
    **_ibsi("GLRLM", "3D, averaged", _GLRLM, "glrlm"),
    **_ibsi("GLSZM", "3D", _GLSZM, "glszm"),
    **_ibsi("NGLDM", "3D", _GLDM, "gldm"),
    **_ibsi("NGTDM", "3D", {n: n for n in ("Coarseness", "Contrast", "Busyness", "Complexity", "Strength")},
            "ngtdm"),
}

#: Mapped features that do not reproduce the IBSI consensus value, and why (see the module docstring).
IBSI_KNOWN_DEVIATIONS: dict[str, str] = {
    "original_firstorder_Kurtosis": "pyradiomics reports kurtosis (m4/m2^2); IBSI reports excess kurtosis "
                                    "(m4/m2^2 - 3)",
    "original_shape_MinorAxisLength": "pyradiomics normalises the voxel-coordinate covariance by N, IBSI by N - 1: "
                                      "lengths smaller by sqrt((N-1)/N)",
    "original_shape_LeastAxisLength": "pyradiomics normalises the voxel-coordinate covariance by N, IBSI by N - 1: "
                                      "lengths smaller by sqrt((N-1)/N)",
}


# ------------------------------------------------------------------------------------------------- habitats

def _local_std(image: np.ndarray, mask: np.ndarray, radius: int) -> np.ndarray:
    """Standard deviation of the ROI voxels in each voxel's (2r+1)^3 neighbourhood (neighbours outside the
    ROI are ignored, so a habitat depends on the haematoma only)."""
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

    label = _case(case_id)
    image, roi = np.asarray(image), np.asarray(mask) != 0
    _check_volume(image, roi, (1.0, 1.0, 1.0), label)
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


def habitat_radiomics(image: np.ndarray, mask: np.ndarray, spacing: Sequence[float], *, k: int = 3,
                      settings: RadiomicsConfig | None = None, seed: int = 0, texture_radius: int = 1,
                      case_id: object | None = None, **overrides: Any) -> dict[str, float]:
    """Radiomics of each habitat subregion (:func:`habitat_labels`), prefixed ``habitat1_`` ... ``habitat{k}_``.

    Returns:
        ``{"habitat1_original_firstorder_Mean": ..., "habitat2_...": ...}``.

    Raises:
        ValueError: naming the case and the habitat when a subregion is too small for pyradiomics.
    """
    labels = habitat_labels(image, mask, k=k, seed=seed, texture_radius=texture_radius, case_id=case_id)
    out: dict[str, float] = {}
    for h in range(1, k + 1):
        sub_id = f"{case_id} habitat {h}" if case_id is not None else f"habitat {h}"
        feats = radiomics_features(image, labels == h, spacing, settings=settings, case_id=sub_id, **overrides)
        out.update({f"habitat{h}_{name}": value for name, value in feats.items()})
    return out


# ------------------------------------------------------------------------------------------- deep features

class SliceSelection(NamedTuple):
    """Slices chosen around the largest ROI cross-section, cropped, windowed and resized.

    Attributes:
        slices: one (size, size) float32 array per offset, in the order of the offsets.
        indices: the axial (axis 0) index used for each offset; repeated where offsets share a slice.
        centre: the index of the slice with the largest ROI area.
        box: the crop (row0, row1, col0, col1) in pixels, possibly extending past the image (padded).
    """

    slices: list[np.ndarray]
    indices: tuple[int, ...]
    centre: int
    box: tuple[int, int, int, int]


def largest_slice_index(mask: np.ndarray, *, case_id: object | None = None) -> int:
    """The axial slice (axis 0) with the largest ROI area; the first one on ties.

    Raises:
        ValueError: naming the case when the mask is not 3-D or empty.
    """
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise ValueError(f"{_case(case_id)}: mask must be a 3-D (D, H, W) array; got shape {mask.shape}")
    areas = (mask != 0).sum(axis=(1, 2))
    if not areas.any():
        raise ValueError(f"{_case(case_id)}: the mask is empty (no ROI voxel on any slice)")
    return int(np.argmax(areas))


def _round_half_away(x: float) -> int:
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def slice_indices(centre: int, n_slices: int, slice_mm: float, offsets_mm: Sequence[float]) -> tuple[int, ...]:
    """The slice nearest each physical offset: ``centre + round(offset / slice_mm)``, clipped to the volume.

    Rounding is half away from zero, so +-offsets map symmetrically. With slices thicker than the offsets,
    several offsets share a slice (e.g. 5 mm slices: offsets -2..2 mm all map to the centre slice).

    >>> slice_indices(10, 20, 2.0, (-2, -1, 0, 1, 2))
    (9, 9, 10, 11, 11)
    """
    return tuple(min(max(centre + _round_half_away(o / slice_mm), 0), n_slices - 1) for o in offsets_mm)


def _square_box(roi: np.ndarray, spacing_hw: Sequence[float], margin: float) -> tuple[int, int, int, int]:
    """A box around the ROI's bounding box, square in mm, with a relative margin (may extend past the image)."""
    rows, cols = np.nonzero(roi)
    centre = ((rows.min() + rows.max() + 1) / 2, (cols.min() + cols.max() + 1) / 2)
    extent_mm = max((rows.max() - rows.min() + 1) * spacing_hw[0], (cols.max() - cols.min() + 1) * spacing_hw[1])
    half_mm = extent_mm * (1 + 2 * margin) / 2
    half = [max(1, math.ceil(half_mm / s)) for s in spacing_hw]
    return (int(math.floor(centre[0] - half[0])), int(math.floor(centre[0] - half[0])) + 2 * half[0],
            int(math.floor(centre[1] - half[1])), int(math.floor(centre[1] - half[1])) + 2 * half[1])


def _crop(image: np.ndarray, box: tuple[int, int, int, int], fill: float) -> np.ndarray:
    r0, r1, c0, c1 = box
    pad = ((max(0, -r0), max(0, r1 - image.shape[0])), (max(0, -c0), max(0, c1 - image.shape[1])))
    padded = np.pad(image, pad, mode="constant", constant_values=fill)
    return padded[r0 + pad[0][0]: r1 + pad[0][0], c0 + pad[1][0]: c1 + pad[1][0]]


def _window(image: np.ndarray, window: tuple[float, float] | None) -> np.ndarray:
    """Clip to (centre - width/2, centre + width/2) and scale to [0, 1]; None = unchanged."""
    if window is None:
        return image.astype(np.float32)
    centre, width = window
    if not width > 0:
        raise ValueError(f"window width must be > 0; got window={window}")
    low = centre - width / 2
    return np.clip((image.astype(np.float32) - low) / width, 0.0, 1.0)


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    return F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0, 0].numpy()


def select_slices(volume: np.ndarray, mask: np.ndarray, spacing: Sequence[float],
                  offsets_mm: Sequence[float] = (-2.0, -1.0, 0.0, 1.0, 2.0), *,
                  window: tuple[float, float] | None = (40.0, 80.0), size: int = 64, margin: float = 0.1,
                  case_id: object | None = None) -> SliceSelection:
    """The slice with the largest ROI and its neighbours at physical offsets, cropped to the ROI.

    Slices are chosen by physical distance along axis 0 (``spacing[0]`` mm per slice), nearest slice to each
    offset (:func:`slice_indices`). When the slice spacing is coarser than the offsets, several offsets map to
    the same slice; the duplicates are kept (so every case yields ``len(offsets_mm)`` slices and a fixed
    feature length), the indices used are returned, and a ``UserWarning`` says so (shown once per spacing by
    Python's default warning filter). Offsets past the volume's ends use the end slice, with a warning naming
    the case.

    The crop is the bounding box of the union of the ROI over the chosen slices, made square in mm and enlarged
    by ``margin`` on each side (padded with the window's floor where it passes the image edge); each crop is
    windowed (CT brain window: centre 40, width 80 HU, scaled to [0, 1]) and resized to ``size x size``.

    Raises:
        ValueError: naming the case: shapes or spacing invalid, or the mask is empty.
    """
    label = _case(case_id)
    volume, roi = np.asarray(volume), np.asarray(mask) != 0
    _check_volume(volume, roi, spacing, label)
    centre = largest_slice_index(roi, case_id=case_id)
    indices = slice_indices(centre, volume.shape[0], float(spacing[0]), offsets_mm)
    _warn_shared_slices(indices, centre, volume.shape[0], float(spacing[0]), offsets_mm, label)
    box = _square_box(roi[list(set(indices))].any(axis=0), spacing[1:], margin)
    fill = float(volume.min()) if window is None else -np.inf
    slices = [_resize(_window(_crop(volume[i].astype(np.float32), box, fill), window), size) for i in indices]
    return SliceSelection(slices=slices, indices=indices, centre=centre, box=box)


def _warn_shared_slices(indices: tuple[int, ...], centre: int, n: int, slice_mm: float,
                        offsets_mm: Sequence[float], label: str) -> None:
    shifts = tuple(_round_half_away(o / slice_mm) for o in offsets_mm)
    if len(set(shifts)) < len(shifts):
        warnings.warn(f"slice spacing {slice_mm:g} mm is coarser than the offsets {tuple(offsets_mm)} mm: they map "
                      f"to slice shifts {shifts}, so some slices are used more than once", UserWarning, stacklevel=3)
    if any(not 0 <= centre + s < n for s in shifts):
        warnings.warn(f"{label}: offsets {tuple(offsets_mm)} mm pass the end of the volume ({n} slices, largest ROI "
                      f"on slice {centre}); the end slice is used: indices {indices}", UserWarning, stacklevel=3)


def _default_layer(model: "nn.Module") -> tuple[str, "nn.Module"]:
    from torch import nn

    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("model has no nn.Linear classifier; pass layer= the name of the layer to pool")
    return linears[-1]


class _Capture:
    """Context manager: a forward hook that keeps a module's input (``use_input``) or output; always removed."""

    def __init__(self, module: "nn.Module", use_input: bool) -> None:
        self.module, self.use_input, self.value, self._handle = module, use_input, None, None

    def __enter__(self) -> "_Capture":
        if self.use_input:
            self._handle = self.module.register_forward_pre_hook(self._keep_input)
        else:
            self._handle = self.module.register_forward_hook(self._keep_output)
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()

    def _keep_input(self, module: "nn.Module", args: tuple) -> None:
        self.value = args[0]

    def _keep_output(self, module: "nn.Module", args: tuple, output: Any) -> None:
        self.value = output[0] if isinstance(output, (tuple, list)) else output


def _pool(t: "torch.Tensor") -> "torch.Tensor":
    """Global average pool over every axis after the channel axis: (N, C, ...) -> (N, C)."""
    return t.flatten(2).mean(dim=2) if t.ndim > 2 else t.reshape(t.shape[0], -1)


def extract_features(model: "nn.Module", x: "torch.Tensor", layer: str | None = None, *,
                     batch_size: int = 32) -> np.ndarray:
    """Pooled activations of one layer of any CNN, by forward hook.

    Args:
        model: a torch module; it is run in eval mode under ``torch.no_grad()`` and its mode is restored.
        x: (N, C, ...) input batch, on any device (moved to the model's device).
        layer: name in ``model.named_modules()`` whose output is pooled (global average over spatial axes).
            None = the input of the model's last ``nn.Linear`` (the penultimate features, e.g. ResNet's
            ``fc`` input: 512 for resnet18, 2048 for resnet50).
        batch_size: forward passes of at most this many inputs.

    Returns:
        float32 array (N, channels).

    Raises:
        KeyError: ``layer`` is not a module of the model.
        ValueError: ``layer`` is None and the model has no ``nn.Linear``.
    """
    import torch

    modules = dict(model.named_modules())
    if layer is None:
        _, module = _default_layer(model)
    elif layer in modules:
        module = modules[layer]
    else:
        raise KeyError(f"Unknown layer {layer!r}. Available: {[n for n in modules if n][:40]}")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    out = []
    try:
        model.eval()
        with _Capture(module, use_input=layer is None) as capture, torch.no_grad():
            for start in range(0, len(x), batch_size):
                model(x[start:start + batch_size].to(device))
                out.append(_pool(capture.value).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, 0), dtype=np.float32)


def _input_channels(model: "nn.Module") -> tuple[int, int]:
    """(in_channels, spatial dims) of the model's first convolution."""
    from torch import nn

    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            return m.in_channels, {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}[type(m)]
    raise ValueError("model has no convolution; cannot tell how many input channels it expects")


def ich_deep_features(volume: np.ndarray, mask: np.ndarray, spacing: Sequence[float], model: "nn.Module", *,
                      offsets_mm: Sequence[float] = (-2.0, -1.0, 0.0, 1.0, 2.0),
                      window: tuple[float, float] | None = (40.0, 80.0), size: int = 64,
                      aggregate: Literal["mean", "concat"] = "mean", layer: str | None = None,
                      margin: float = 0.1, batch_size: int = 32, case_id: object | None = None) -> np.ndarray:
    """Deep features of one ICH case: a 2D CNN on the largest-ROI slice and its neighbours (ICH study design).

    Slices come from :func:`select_slices`; a grey slice is repeated to the model's input channels (3 for an
    ImageNet-style backbone). Features are :func:`extract_features` of each slice, then averaged over slices
    (``"mean"``: length = channels) or concatenated in offset order (``"concat"``: length = channels x offsets).

    Returns:
        1-D float32 array.

    Raises:
        ValueError: naming the case, for bad inputs; or a 3D model.
    """
    import torch

    if aggregate not in ("mean", "concat"):
        raise ValueError(f"aggregate must be 'mean' or 'concat'; got {aggregate!r}")
    channels, dims = _input_channels(model)
    if dims != 2:
        raise ValueError(f"ich_deep_features needs a 2D CNN; the model's first convolution is {dims}D")
    chosen = select_slices(volume, mask, spacing, offsets_mm, window=window, size=size, margin=margin,
                           case_id=case_id)
    x = torch.from_numpy(np.stack(chosen.slices))[:, None].repeat(1, channels, 1, 1)
    feats = extract_features(model, x, layer, batch_size=batch_size)
    return (feats.mean(axis=0) if aggregate == "mean" else feats.reshape(-1)).astype(np.float32)
