"""Planted near-duplicates: one patient's image filed again under another patient, on purpose.

Real cohorts hold the same radiograph or scan twice under two identities (a study sent again, a test image
copied into a teaching file, a rescan). A copy that lands in another set than its original leaks: the model is
tested on an image it trained on. The synthetic cohorts plant a few such copies so that a duplicate detector
(``medlib.data.duplicates``) can be tested against a known answer.

Each cohort plants one pair per kind of ``KINDS_2D``, ``KINDS_3D`` or ``KINDS_CT``: one exact duplicate (identical pixel or voxel
values, a new DICOM header or NIfTI file for the other patient) and near duplicates that are slightly rotated,
rescaled or re-exposed (2D) or have their intensities recalibrated (3D). Original and copy are different
patients with the same label, so the copy adds no label noise; the copy's lesion mask is its original's, moved
by the same transformation. Which set each lands in is decided later by the study's split, so a pair may fall
in one set (the detector then finds it but must not call it a leak); NEC plants one copy in its external
cohort, which is always a different set from its internal original.

The ground truth is written beside the manifest as ``near_duplicates.csv`` (see ``write_sidecar``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

__all__ = ["KINDS_2D", "KINDS_3D", "KINDS_CT", "SIDECAR", "SIDECAR_COLUMNS", "Plant", "choose", "transform", "write_sidecar"]

SIDECAR = "near_duplicates.csv"
SIDECAR_COLUMNS = ["case_id_a", "case_id_b", "column", "kind", "transform"]
KINDS_2D = ("exact", "rotate", "scale", "exposure")   # the pairs a 2D cohort plants, one of each
KINDS_3D = ("exact", "rotate", "scale", "intensity")  # the pairs a 3D cohort plants, one of each
# Head CT (ICH) plants no zoomed copy: a head zoomed by a few percent resembles another patient's slightly
# larger head as much as its original (measured: similarity 0.81 to the original, 0.90 to another head).
KINDS_CT = ("exact", "rotate", "intensity")


@dataclass(frozen=True)
class Plant:
    """One planted pair.

    Attributes:
        source: row position (in the cohort table) of the original case.
        copy: row position of the case whose image is the copy.
        kind: one of ``KINDS_2D`` / ``KINDS_3D``.
        amount: the transformation's size: degrees (rotate), zoom factor (scale), gain (exposure, intensity).
        extra: exposure: the gamma; intensity: the offset in the image's units (fraction of its range for MR).
    """

    source: int
    copy: int
    kind: str
    amount: float = 1.0
    extra: float = 0.0

    @property
    def words(self) -> str:
        """The transformation as the sidecar writes it, e.g. ``rotate 4.2 deg``."""
        if self.kind == "exact":
            return "identical pixel values"
        if self.kind == "rotate":
            return f"rotate {self.amount:+.1f} deg in-plane (scipy.ndimage.rotate's sense)"
        if self.kind == "scale":
            return f"scale x{self.amount:.3f} about the centre"
        if self.kind == "exposure":
            return f"re-exposed: gain {self.amount:.3f}, gamma {self.extra:.3f}, new detector noise"
        return f"intensity x{self.amount:.3f} plus {self.extra:.1%} of the intensity range, new noise"


def _draw(rng: np.random.Generator, kind: str, dims: int) -> tuple[float, float]:
    """The transformation's size; milder in 3D, where a head's edges (skull) dominate any similarity."""
    if kind == "rotate":
        return float(rng.choice([-1, 1]) * (rng.uniform(2.5, 5.0) if dims == 2 else rng.uniform(2.0, 3.5))), 0.0
    if kind == "scale":
        return float(rng.uniform(1.03, 1.06) if dims == 2 else rng.uniform(1.02, 1.035)), 0.0
    if kind == "exposure":
        return float(rng.uniform(1.06, 1.12)), float(rng.uniform(0.85, 0.93))
    if kind == "intensity":
        return float(rng.uniform(1.08, 1.15)), float(rng.uniform(0.01, 0.03))
    return 1.0, 0.0


def choose(rng: np.random.Generator, y: np.ndarray, patients: np.ndarray, kinds: tuple[str, ...], *,
           copy_allowed: np.ndarray | None = None, source_allowed: np.ndarray | None = None) -> list[Plant]:
    """Choose one (original, copy) pair per kind: different patients, the same label, the original first.

    No case is in two pairs, and no patient gives both an original and a copy. ``copy_allowed`` and
    ``source_allowed`` (boolean per row, one entry per kind as a 2D array or one mask for all) restrict where the
    copies and originals may be; a kind with no eligible pair is skipped.

    Args:
        rng: the study's generator.
        y: 0/1 label per row.
        patients: patient id per row.
        kinds: the kinds to plant, in order.
        copy_allowed: rows that may be a copy, shape (n,) or (len(kinds), n); default all.
        source_allowed: rows that may be an original, same shapes; default all.

    Returns:
        The pairs, in the order of ``kinds``.
    """
    n = len(y)
    copy_ok = np.broadcast_to(np.ones(n, bool) if copy_allowed is None else copy_allowed, (len(kinds), n))
    source_ok = np.broadcast_to(np.ones(n, bool) if source_allowed is None else source_allowed, (len(kinds), n))
    used: set[str] = set()
    plants = []
    for k, kind in enumerate(kinds):
        free = np.array([p not in used for p in patients])
        for j in rng.permutation(np.flatnonzero(copy_ok[k] & free)):
            sources = np.flatnonzero(source_ok[k] & free & (np.arange(n) < j) & (y == y[j])
                                     & (patients != patients[j]))
            if len(sources):
                i = int(rng.choice(sources))
                plants.append(Plant(i, int(j), kind, *_draw(rng, kind, 3 if "intensity" in kinds else 2)))
                used.update((patients[i], patients[j]))
                break
    return plants


def _about_centre(array: np.ndarray, matrix: np.ndarray, order: int) -> np.ndarray:
    """``ndimage.affine_transform`` with ``matrix`` acting about the array's centre (edges repeated)."""
    centre = (np.asarray(array.shape, float) - 1) / 2
    return ndimage.affine_transform(array, matrix, offset=centre - matrix @ centre, order=order, mode="nearest")


def transform(array: np.ndarray, plant: Plant, *, mask: bool = False, plane: tuple[int, int] = (0, 1),
              value_range: float = 1.0) -> np.ndarray:
    """The copy of ``array`` that ``plant`` makes: rotated in ``plane``, zoomed, re-exposed or recalibrated.

    A rotation by a positive angle turns the content the way ``scipy.ndimage.rotate`` does (anticlockwise as a
    2D image is displayed, row 0 at the top); a zoom by ``amount`` > 1 enlarges the content about the centre.

    Geometry is interpolated linearly (nearest neighbour for a mask, which keeps its dtype and values);
    intensity changes leave a mask alone. ``exposure`` maps a 2D attenuation map ``a`` to
    ``gain * a ** gamma``; ``intensity`` maps a volume ``v`` to ``gain * v + offset * value_range``.

    Args:
        array: a 2D image or 3D volume (not changed).
        plant: the pair whose transformation to apply.
        mask: ``array`` is a label mask.
        plane: the two axes a rotation turns (3D: the in-plane axes).
        value_range: the image's range, for the intensity offset.
    """
    order = 0 if mask else 1
    if plant.kind in ("rotate", "scale"):
        matrix = np.eye(array.ndim)
        if plant.kind == "scale":
            for axis in plane:
                matrix[axis, axis] = 1.0 / plant.amount
        else:
            a = np.deg2rad(plant.amount)
            (p, q) = plane
            matrix[np.ix_([p, q], [p, q])] = [[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]]  # as ndimage.rotate
        out = _about_centre(array.astype(np.float32), matrix, order)
        return (out > 0.5).astype(array.dtype) if mask else out.astype(array.dtype)
    if mask or plant.kind == "exact":
        return array.copy()
    if plant.kind == "exposure":
        return (plant.amount * np.clip(array, 0, None) ** plant.extra).astype(array.dtype)
    return (plant.amount * array + plant.extra * value_range).astype(array.dtype)


def write_sidecar(root: Path, table: pd.DataFrame, plants: list[Plant], columns: list[str]) -> None:
    """Write ``near_duplicates.csv``: one row per planted pair and copied image column.

    Columns: ``case_id_a`` (the original), ``case_id_b`` (the copy, another patient with the same label),
    ``column`` (the manifest image column whose file was copied), ``kind`` (``exact`` or the near-duplicate's
    transformation: ``rotate``, ``scale``, ``exposure``, ``intensity``) and ``transform`` (in words, with its
    size). The file is written even when no pair could be planted (header only).
    """
    ids = table["case_id"].to_numpy()
    rows = [{"case_id_a": ids[p.source], "case_id_b": ids[p.copy], "column": c, "kind": p.kind,
             "transform": p.words} for p in plants for c in columns]
    pd.DataFrame(rows, columns=SIDECAR_COLUMNS).to_csv(root / SIDECAR, index=False, lineterminator="\n")
