"""Image geometry: where an array's voxels lie in the patient, and the checks that refuse a mask or a sequence
that does not lie where its image does.

Every 3D reader gives ``Image.affine``: a 4 x 4 matrix from the array's index ``(d, h, w, 1)`` to patient
coordinates in mm, LPS (DICOM's frame: x to the patient's left, y to posterior, z to superior). A DICOM series
and a NIfTI file are compared in that one frame, so a NIfTI mask drawn on a DICOM series is checked against it.
2D images carry no affine (a radiograph has no patient position); their masks are compared by shape only.

A NIfTI affine must be usable: finite, not singular, with perpendicular axes (no shear). A sheared or skewed
affine cannot be represented by the (D, H, W) arrays and spacings the rest of medlib uses, so it is refused
rather than silently straightened. Tolerances are in fractions of a voxel (``TOLERANCE``): a mask or sequence
that is off by more is refused, naming both files; resample it onto the image's grid first (e.g. with
SimpleITK's ``Resample`` or the tool that drew it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["TOLERANCE", "Geometry", "check_affine", "check_same_grid", "geometry_of"]

#: Largest allowed difference of origin or voxel axes between two grids, as a fraction of the smallest spacing.
TOLERANCE = 0.1
#: Largest |cosine| between two voxel axes of an affine (perpendicular axes: 0).
SHEAR_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Geometry:
    """Shape, spacing (mm) and index-to-LPS affine (None for 2D images) of one image, and where it came from."""

    shape: tuple[int, ...]
    spacing: tuple[float, ...]
    affine: np.ndarray | None
    source: str


def geometry_of(image) -> Geometry:
    """The geometry of an ``Image``."""
    return Geometry(tuple(image.array.shape), tuple(float(s) for s in image.spacing), image.affine, image.source)


def check_affine(affine: np.ndarray, path: str | Path) -> None:
    """Refuse an affine that is not finite, is singular, or has axes that are not perpendicular (shear).

    Raises:
        ValueError: naming the file and what is wrong.
    """
    matrix = np.asarray(affine, float)[:3, :3]
    if not np.all(np.isfinite(affine)):
        raise ValueError(f"{path}: the affine holds NaN or infinite values; expected a finite voxel-to-world matrix")
    norms = np.linalg.norm(matrix, axis=0)
    if norms.min() <= 1e-6 or abs(np.linalg.det(matrix)) <= 1e-9 * float(np.prod(norms)):
        raise ValueError(f"{path}: the affine is singular (voxel sizes {np.round(norms, 4).tolist()} mm); expected "
                         f"three independent voxel axes")
    unit = matrix / norms
    cosines = np.abs(unit.T @ unit - np.eye(3))
    if cosines.max() > SHEAR_TOLERANCE:
        angle = float(np.degrees(np.arccos(np.clip(1 - cosines.max(), -1, 1))))
        raise ValueError(f"{path}: the affine is sheared or skewed (voxel axes {90 - angle:.2f} degrees from "
                         f"perpendicular); expected perpendicular axes: resample the image onto a regular grid")


def check_same_grid(image: Geometry, other: Geometry, *, what: str = "mask") -> None:
    """Refuse ``other`` (a mask, or another sequence of the case) unless it lies on ``image``'s grid.

    Shapes must be equal and spacings agree to 0.1%; when both carry an affine, their origins and voxel axes must
    agree within ``TOLERANCE`` of the smallest voxel (a flipped, shifted or differently oriented mask fails). A PNG
    carries no spacing (it is read as 1 mm by convention), so a PNG mask of a DICOM radiograph, or the reverse, is
    checked by its pixel grid (the shape) alone.

    Raises:
        ValueError: naming both files, what differs and by how much.
    """
    pair = f"{what} {other.source} and image {image.source}"
    if tuple(other.shape) != tuple(image.shape):
        raise ValueError(f"{pair}: {what} shape {tuple(other.shape)} differs from image shape {tuple(image.shape)}; "
                         f"expected the {what} on the image's grid (resample it first)")
    if _spacing_known(image) and _spacing_known(other) and not np.allclose(other.spacing, image.spacing,
                                                                            rtol=1e-3, atol=1e-4):
        raise ValueError(f"{pair}: {what} spacing {tuple(round(s, 4) for s in other.spacing)} mm differs from image "
                         f"spacing {tuple(round(s, 4) for s in image.spacing)} mm")
    if image.affine is None or other.affine is None:
        return
    tol = TOLERANCE * min(image.spacing)
    shift = float(np.linalg.norm(np.asarray(other.affine)[:3, 3] - np.asarray(image.affine)[:3, 3]))
    axes = float(np.abs(np.asarray(other.affine)[:3, :3] - np.asarray(image.affine)[:3, :3]).max())
    if shift > tol or axes > tol:
        far = _far_corner(image, other)
        raise ValueError(f"{pair}: the {what} does not lie on the image (origins {shift:.2f} mm apart, voxel axes "
                         f"differ by up to {axes:.2f} mm, corners up to {far:.1f} mm apart; tolerance {tol:.2f} mm): "
                         f"flipped, shifted or another geometry. Expected the {what} on the image's grid "
                         f"(resample it first)")


def _spacing_known(grid: Geometry) -> bool:
    """False for a PNG, whose spacing is a convention rather than a measurement."""
    return not str(grid.source).lower().endswith(".png")


def _far_corner(a: Geometry, b: Geometry) -> float:
    """Largest distance between the same corner voxel of two grids (how far apart they really are)."""
    corners = np.array(np.meshgrid(*[[0, n - 1] for n in a.shape], indexing="ij")).reshape(len(a.shape), -1)
    index = np.vstack([corners, np.ones(corners.shape[1])])
    return float(np.linalg.norm((np.asarray(a.affine) - np.asarray(b.affine)) @ index, axis=0).max())


def lps_affine(columns: Sequence[np.ndarray], origin: np.ndarray) -> np.ndarray:
    """A 4 x 4 index-to-LPS affine from one column per array axis (direction times spacing) and the origin."""
    out = np.eye(4)
    for axis, column in enumerate(columns):
        out[:3, axis] = column
    out[:3, 3] = origin
    return out
