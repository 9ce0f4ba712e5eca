"""Radiomics with pyradiomics: the settings, the features of one ROI and of its habitat subregions, and a table
of many cases computed by a process pool.

:func:`radiomics_features` computes first-order, shape, GLCM, GLRLM, GLSZM, GLDM and NGTDM features with
pyradiomics from a NumPy volume in medlib's ``(D, H, W)`` order and its spacing in the same order (the
SimpleITK image is built with the spacing reversed to ITK's ``(x, y, z)``). Grey levels use a fixed bin width,
the volume is optionally resampled to isotropic voxels (B-spline for the image, nearest neighbour for the
mask), and :func:`radiomics_settings` returns the exact pyradiomics settings used, so a report can state them.
:func:`radiomics_table` does the same for many cases with a process pool.

:func:`habitat_radiomics` computes the features of each habitat subregion (``medlib.radiomics.habitats``).

The names of the neighbouring modules that callers import from here are re-exported: ``habitat_labels``
(``medlib.radiomics.habitats``) and the deep features (``medlib.radiomics.deep``). The IBSI verification tables
are ``medlib.radiomics.ibsi``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd

from medlib.config import RadiomicsConfig
from medlib.progress import progress_bar
from medlib.radiomics._checks import case_label, check_volume
from medlib.radiomics.deep import (SliceSelection, extract_features, ich_deep_features, largest_slice_index,
                                   select_slices, slice_indices)
from medlib.radiomics.habitats import habitat_labels

__all__ = ["FEATURE_CLASSES", "habitat_radiomics", "radiomics_features", "radiomics_settings", "radiomics_table",
           "resolve_settings",
           # re-exported from medlib.radiomics.habitats and medlib.radiomics.deep
           "habitat_labels", "SliceSelection", "extract_features", "ich_deep_features", "largest_slice_index",
           "select_slices", "slice_indices"]

FEATURE_CLASSES = ("firstorder", "shape", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
_SETTING_NAMES = tuple(f.name for f in dataclasses.fields(RadiomicsConfig))


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

    label = case_label(case_id)
    image, mask = np.asarray(image), np.asarray(mask)
    check_volume(image, mask, spacing, label)
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


def _read_case(case: tuple[object, str, str], reader: Callable[[Any], Any] | None
               ) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """Read one case's image and mask and check that they share a grid."""
    if reader is None:
        from medlib.data.imaging import read_image as reader
    case_id, image_path, mask_path = case
    image, mask = reader(image_path), reader(mask_path)
    label = case_label(case_id)
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
        DataFrame indexed by ``case_id`` in the order given, one column per feature (``attrs`` empty: the
        settings used are ``radiomics_settings(settings)``).

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
    what = "radiomics (whole ROI" + (f" and {habitats} habitats)" if habitats else ")")
    with progress_bar(total=len(cases), desc=what, unit="case") as bar:
        if workers == 1 or len(cases) <= 1:
            rows = [_counted(bar, _table_row(c, cfg, reader, habitats, seed)) for c in cases]
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=min(workers, len(cases)), mp_context=context,
                                     initializer=_single_threaded_worker) as pool:
                rows = [_counted(bar, row) for row in pool.map(_table_row, cases, repeat(cfg), repeat(reader),
                                                                repeat(habitats), repeat(seed))]
    return pd.DataFrame(rows, index=pd.Index(ids, name="case_id"))


def _counted(bar, row: dict[str, float]) -> dict[str, float]:
    bar.update(1)
    return row
