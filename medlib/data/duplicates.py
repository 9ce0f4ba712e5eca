"""Duplicate and near-duplicate images across the sets of a split, and per-image intensity statistics, from one
pass over every image.

A copy of a training image in the test set (the same radiograph filed under two patients, a study sent twice)
makes the test set partly a training set. Two checks, per image column, on images as the readers return them
(intensities scaled to the study's ``image.window`` when the params set one, else to the image's 0.5-99.5
percentiles):

- **Exact duplicates**: identical decoded pixel or voxel values (SHA-256 of the array), whatever the file, its
  header or its name. Across sets they stop the run unless ``analysis.allow_exact_duplicates`` is true.
- **Near duplicates**, similarity in [0, 1]; a pair across sets with similarity >= ``analysis.duplicate_similarity``
  (default 0.91) is listed; with ``analysis.stop_on_near_duplicates`` it stops the run.

  *2D images*: a perceptual difference hash (``imagehash.dhash``, 16 x 16 = 256 bits; the sign of the horizontal
  gradient of a 17 x 16 thumbnail). Similarity is ``1 - (differing bits) / 256``, the best over variants of
  either image: its 8 rotations by 90 degrees and mirrorings, and rotations by -6, -3, 3 and 6 degrees each
  combined with zooms of 0.93, 1 and 1.07 about the centre, so copies that were flipped, turned, slightly rotated
  or rescaled are still found. On the synthetic 2D cohorts (NEC and ONFH at scale 0.3: copies rotated by 5-6
  degrees, rescaled by 6-7% or re-exposed) the planted copies scored 0.930-0.996 and the closest distinct
  images 0.895.

  *3D volumes*: a hash of projections cannot tell volumes apart that share one anatomy (the mean projections of
  distinct synthetic glioma volumes agreed as closely as a copy's), so volumes are compared by what makes each
  one individual. Each volume is scaled to [0, 1], resampled (anti-aliased) to 32^3 voxels and standardised (so
  a gain and an offset cancel); the mean volume of its image column is subtracted; the residual is band-passed
  (difference of Gaussians, sigma 1 and 4 voxels: keeps structure, drops noise and slow shading) and
  subsampled to 16^3; the column's main modes of variation (the first 5 principal components of these
  signatures; fewer below 21 volumes), which distinct volumes of one head size or position share, are projected
  out. Similarity is the Pearson correlation of two signatures (negative values count as 0), the best over
  variants of either volume: rotations by -3 and 3 degrees in each of the three planes, each with zooms of all
  axes by 0.97, 1 and 1.03; those zooms alone; and zooms by 0.97 and 1.03 within each plane (a copy
  reconstructed with another field of view). Measured on the demo's synthetic cohorts (234 glioma patients x 3
  MR sequences; 235 head CTs in the brain window, ``image.window`` 40/80 HU): planted copies rotated by about 3
  degrees, rescaled in-plane by 3% or recalibrated with new noise scored 0.914-0.997 (glioma) and 0.951-0.969
  (head CT); the closest distinct volumes 0.826 (glioma) and 0.909 (two heads of one size and position that
  differ only in their hematoma: the synthetic heads share one anatomy, so the ICH params set 0.93). Without the
  residual and the projection, distinct glioma volumes correlated up to 0.94 and distinct heads up to 0.999.
  Limits: a copy turned or rescaled by more than the variants reach can be missed (in the 70-patient synthetic
  head CT, one turned by 3.4 degrees scored 0.856); exact copies are always found.

imagehash computes the 2D hash; the variant search, the vectorised pair distances (packed bits, one popcount per
pair and variant) and the 3D signatures are here because imagehash compares one 2D pair at a time and no
library compares volumes up to small rotations.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

HASH_SIZE = 16
BITS = HASH_SIZE * HASH_SIZE
ANGLES = (-6.0, -3.0, 3.0, 6.0)
ZOOMS = (0.93, 1.0, 1.07)
THUMBNAIL = 64
GRID = 32                      # 3D: volumes are compared on a GRID^3 grid
BAND = (1.0, 4.0)              # 3D: difference-of-Gaussians sigmas, in grid voxels
COMPONENTS = 5                 # 3D: principal components projected out (fewer for small columns)
ANGLES_3D = (-3.0, 3.0)
ZOOMS_3D = (0.97, 1.0, 1.03)
PLANES_3D = ((1, 2), (0, 2), (0, 1))
# 3D variants (plane, degrees, zoom within the plane, zoom of the third axis): a rotation in each plane with a
# zoom of all axes, and a zoom within each plane alone (a copy reconstructed with another field of view)
VARIANTS_3D = [((1, 2), 0.0, z, z) for z in ZOOMS_3D] + [
    (plane, angle, z, z) for plane in PLANES_3D for angle in ANGLES_3D for z in ZOOMS_3D] + [
    (plane, 0.0, z, 1.0) for plane in PLANES_3D for z in ZOOMS_3D if z != 1.0]
PAIR_COLUMNS = ("case_a", "set_a", "case_b", "set_b", "column", "kind", "similarity")
STAT_NAMES = ("mean", "sd", "p01", "p99")
Window = tuple[float, float] | None


class DuplicateImagesError(ValueError):
    """Images shared across sets that the config does not allow; the message lists the pairs."""


@dataclass(frozen=True)
class Fingerprint:
    """One image: pixel hash, what near duplicates are judged by, and intensity statistics.

    Attributes:
        sha256: SHA-256 of the decoded array (shape and values).
        variants: 2D: ``variants x 32`` packed hash bits of the variants (see the module docstring); 3D: empty.
        canonical: 2D: the 32 packed hash bits of the image as it is; 3D: empty.
        stats: mean, SD, 1st and 99th percentile of the values, and the size along each axis.
        grid: 3D: the volume resampled to ``GRID^3`` and scaled to [0, 1]; 2D: None.
    """

    sha256: str
    variants: np.ndarray
    canonical: np.ndarray
    stats: dict[str, float]
    grid: np.ndarray | None = None


def describe(ndim: int) -> str:
    """The near-duplicate method in one phrase, for the report and the run record."""
    if ndim == 3:
        return (f"the correlation of each volume's individual structure (resampled to {GRID}³ and standardised, minus "
                f"the mean volume of its input, band-passed, with the input's first {COMPONENTS} principal components "
                "of variation removed), best over rotations of 3 degrees and zooms of 3% in each plane")
    return ("the share of agreeing bits of a 256-bit perceptual difference hash (imagehash.dhash), best over "
            "flips, 90-degree turns, small rotations (up to 6 degrees) and zooms (7%)")


def _scaled(a: np.ndarray, window: Window) -> np.ndarray:
    """Intensities mapped to [0, 1]: the window ``(centre, width)`` when given, else the 0.5-99.5 percentiles."""
    a = np.asarray(a, dtype=np.float64)
    lo, hi = (window[0] - window[1] / 2, window[0] + window[1] / 2) if window else np.percentile(a, [0.5, 99.5])
    return np.clip((a - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(a)


def _bits(plane: np.ndarray, window: Window) -> np.ndarray:
    import imagehash
    from PIL import Image

    image = Image.fromarray((_scaled(plane, window) * 255).astype(np.uint8))
    return np.packbits(imagehash.dhash(image, hash_size=HASH_SIZE).hash.ravel())


def _about_centre(a: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """``a`` moved by the linear map ``forward`` (rotation, zoom) about its centre: one interpolation, same shape."""
    from scipy import ndimage

    matrix = np.linalg.inv(forward)  # affine_transform maps output coordinates to input coordinates
    centre = (np.array(a.shape) - 1) / 2
    return ndimage.affine_transform(a, matrix, offset=centre - matrix @ centre, order=1, mode="nearest")


def _zoom(a: np.ndarray, factor: float) -> np.ndarray:
    """A 2D image zoomed by ``factor`` about its centre, same shape."""
    return a if factor == 1.0 else _about_centre(a, np.eye(a.ndim) * factor)


def _variants(plane: np.ndarray) -> list[np.ndarray]:
    from scipy import ndimage

    out = []
    for k in range(4):
        turned = np.rot90(plane, k)
        out += [turned, turned[:, ::-1]]
    for factor in ZOOMS:
        if factor != 1.0:
            out.append(_zoom(plane, factor))
    for angle in ANGLES:
        rotated = ndimage.rotate(plane, angle, reshape=False, order=1, mode="nearest")
        out += [_zoom(rotated, f) for f in ZOOMS]
    return out


def _thumbnail(plane: np.ndarray, side: int = THUMBNAIL) -> np.ndarray:
    """The plane shrunk (box filter, aspect kept) so its longer side is at most ``side`` pixels: the hash reads
    a 17 x 16 thumbnail anyway, and rotating 64-pixel planes instead of full radiographs makes hashing fast."""
    from PIL import Image

    scale = side / max(plane.shape)
    if scale >= 1:
        return plane
    size = (max(1, round(plane.shape[1] * scale)), max(1, round(plane.shape[0] * scale)))
    return np.asarray(Image.fromarray(plane.astype(np.float32), mode="F").resize(size, Image.BOX), dtype=np.float64)


def _grid(volume: np.ndarray, window: Window) -> np.ndarray:
    """The volume scaled to [0, 1], then on a ``GRID^3`` grid (Gaussian anti-aliasing before shrinking an axis)."""
    from scipy import ndimage

    a = _scaled(volume, window).astype(np.float32)  # window first, as the model sees it: bone clipped, then blurred
    factors = [GRID / n for n in a.shape]
    a = ndimage.gaussian_filter(a, [max(0.0, (1 / f - 1) / 2) for f in factors])
    return ndimage.zoom(a, factors, order=1)


def fingerprint(array: np.ndarray, *, window: Window = None) -> Fingerprint:
    """Pixel hash, perceptual hashes of every variant (2D) or the resampled volume (3D), and intensity statistics
    of one image; ``window`` is the study's ``image.window`` ``(centre, width)``, or None."""
    a = np.asarray(array)
    if a.ndim not in (2, 3):
        raise ValueError(f"expected a 2D image or a 3D volume; got an array of shape {a.shape}")
    digest = hashlib.sha256(str((a.shape, a.dtype.str)).encode() + np.ascontiguousarray(a).tobytes()).hexdigest()
    flat = a.astype(np.float64).ravel()
    p01, p99 = np.percentile(flat, [1, 99])
    stats = {"mean": float(flat.mean()), "sd": float(flat.std()), "p01": float(p01), "p99": float(p99),
             **{f"size_{i}": float(n) for i, n in enumerate(a.shape)}}
    if a.ndim == 3:
        empty = np.zeros((0, 32), np.uint8)
        return Fingerprint(digest, empty, empty, stats, _grid(a, window))
    plane = _thumbnail(a.astype(np.float64))
    variants = np.stack([_bits(v, window) for v in _variants(plane)])
    return Fingerprint(digest, variants, _bits(plane, window), stats)


def fingerprint_table(table: pd.DataFrame, image_columns: Sequence[str], *, reader=None,
                      window: Window = None) -> dict[str, list]:
    """Fingerprints of every image of every column: ``{column: [Fingerprint per row of table]}``.

    Args:
        table: One row per case with ``case_id``, ``set`` and the image columns (paths).
        image_columns: The columns to read.
        reader: ``path -> array``; default ``medlib.data.imaging.read_image(path).array``.
        window: the study's intensity window ``(centre, width)``, or None for percentile scaling.
    """
    if reader is None:
        from medlib.data.imaging import read_image

        def reader(path):
            return read_image(path).array
    from concurrent.futures import ThreadPoolExecutor

    from medlib.threads import compute_threads

    with ThreadPoolExecutor(compute_threads()) as pool:  # numpy, scipy and the readers release the GIL
        return {col: list(pool.map(lambda path: fingerprint(reader(path), window=window), table[col]))
                for col in image_columns}


def image_statistics(table: pd.DataFrame, prints: dict[str, list]) -> pd.DataFrame:
    """One row per case: ``case_id`` and ``<column>_<statistic>`` for every image column (the shift analysis)."""
    out = pd.DataFrame({"case_id": table["case_id"].to_numpy()})
    for col, fps in prints.items():
        for name in fps[0].stats if fps else ():
            out[f"{col}_{name}"] = [fp.stats.get(name, np.nan) for fp in fps]
    return out


def _similarity(a: list, b: list) -> np.ndarray:
    """2D: ``len(a) x len(b)`` similarity, 1 - best-variant Hamming distance / 256."""
    va = np.stack([fp.variants for fp in a])   # A x V x 32
    cb = np.stack([fp.canonical for fp in b])  # B x 32
    dist = np.zeros((len(a), len(b)))
    for i in range(len(a)):  # one row at a time bounds memory (V x B x 32 bytes)
        x = np.bitwise_xor(va[i][:, None, :], cb[None, :, :])
        dist[i] = np.bitwise_count(x).sum(axis=-1).min(axis=0)
    return 1.0 - dist / BITS


def _forward(plane: tuple[int, int], degrees: float, zoom: float, zoom_across: float) -> np.ndarray:
    """The linear map of one of ``VARIANTS_3D``: a rotation by ``degrees`` and a zoom by ``zoom`` within
    ``plane`` (two axes), and a zoom by ``zoom_across`` along the third axis."""
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    forward = np.eye(3) * zoom_across
    forward[np.ix_(plane, plane)] = zoom * np.array([[c, -s], [s, c]])
    return forward


@functools.lru_cache(maxsize=len(VARIANTS_3D))
def _mover(variant: tuple, n: int = GRID):
    """The sparse ``n^3 x n^3`` matrix that moves a flattened volume by ``variant`` (one of ``VARIANTS_3D``)
    about its centre: what ``_about_centre`` computes (linear interpolation, coordinates clamped to the border as
    in ``scipy.ndimage``'s mode "nearest"), as an operator applied to all of a column's volumes at once; kept
    for the next column (2 MB each)."""
    from scipy import sparse

    forward = _forward(*variant)
    centre = (n - 1) / 2
    out = np.indices((n,) * 3).reshape(3, -1).astype(np.float64)
    coords = np.clip(centre + np.linalg.inv(forward) @ (out - centre), 0, n - 1)
    low = np.minimum(np.floor(coords).astype(np.int64), n - 2)
    frac = coords - low
    rows, cols, weights = [], [], []
    for corner in np.ndindex(2, 2, 2):
        step = np.array(corner)[:, None]
        cols.append(np.ravel_multi_index(tuple(low + step), (n,) * 3))
        weights.append(np.prod(np.where(step == 1, frac, 1 - frac), axis=0))
        rows.append(np.arange(out.shape[1]))
    return sparse.csr_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(n ** 3, n ** 3), dtype=np.float32)


def _band_rows(n: int = GRID) -> tuple[np.ndarray, np.ndarray]:
    """Per axis, the ``n/2 x n`` matrices of each Gaussian of ``BAND`` followed by taking every second voxel:
    ``scipy.ndimage.gaussian_filter1d`` (mode "reflect") applied to the unit vectors, so that the separable
    products below equal ``gaussian_filter`` exactly."""
    from scipy import ndimage

    eye = np.eye(n, dtype=np.float32)
    return tuple(ndimage.gaussian_filter1d(eye, sigma, axis=0)[::2] for sigma in BAND)


def _banded(volumes: np.ndarray, rows: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """``m x n^3`` flattened volumes -> ``m x (n/2)^3``: difference of Gaussians (``BAND``) at every second voxel.

    Each Gaussian is three matrix products, one per axis (``np.tensordot`` runs them as BLAS calls; the same
    sum as ``np.einsum("ia,jb,kc,mabc->mijk")``, 3x faster)."""
    n = round(volumes.shape[1] ** (1 / 3))
    v = volumes.reshape(-1, n, n, n)

    def smooth(r: np.ndarray) -> np.ndarray:
        out = np.tensordot(v, r, axes=([3], [1]))    # m, a, b, k
        out = np.tensordot(out, r, axes=([2], [1]))  # m, a, k, j
        out = np.tensordot(out, r, axes=([1], [1]))  # m, k, j, i
        return out.transpose(0, 3, 2, 1)

    low, high = (smooth(r) for r in rows)
    return (low - high).reshape(len(volumes), -1)


def _unit(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=-1, keepdims=True)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def similarity_3d(fps: list) -> np.ndarray:
    """3D: ``n x n`` similarity of every pair of one column's volumes (module docstring), symmetric.

    Every step is linear up to the normalisation, so each variant is one sparse matrix (``_mover``) and one
    separable band-pass (``_banded``) applied to all the column's volumes at once: the same numbers as moving
    and filtering each volume with ``scipy.ndimage`` (to float32 rounding), about 5x faster (234 glioma volumes:
    4.0 to 4.5 s on one core, 5.6 s before ``_banded`` used ``tensordot``, about 22 s volume by volume).
    """
    from concurrent.futures import ThreadPoolExecutor

    from medlib.threads import compute_threads

    grids = np.stack([((fp.grid - fp.grid.mean()) / max(float(fp.grid.std()), 1e-6)).ravel() for fp in fps]
                     ).astype(np.float32)  # gain and offset cancel
    side = round(grids.shape[1] ** (1 / 3))
    rows = _band_rows(side)
    mean = _banded(grids.mean(axis=0, keepdims=True), rows)
    plain = _unit((_banded(grids, rows) - mean).astype(np.float64))
    k = min(COMPONENTS, (len(grids) - 1) // 4)
    basis = np.linalg.svd(plain - plain.mean(axis=0), full_matrices=False)[2][:k].T

    def projected(x: np.ndarray) -> np.ndarray:
        return _unit(x - (x @ basis) @ basis.T)

    plain = projected(plain)

    def variant(v: tuple) -> np.ndarray:  # every volume moved by one variant, against every plain signature
        moved = grids if v[1:] == (0.0, 1.0, 1.0) else (_mover(v, side) @ grids.T).T
        return projected((_banded(moved, rows) - mean).astype(np.float64)) @ plain.T

    sim = np.zeros((len(grids), len(grids)))
    with ThreadPoolExecutor(compute_threads()) as pool:  # numpy's einsum and scipy's sparse product run in C
        for scores in pool.map(variant, VARIANTS_3D):  # a running maximum: one n x n matrix per thread at a time
            np.maximum(sim, scores, out=sim)
    return np.clip(np.maximum(sim, sim.T), 0.0, 1.0)


def cross_set_pairs(table: pd.DataFrame, prints: dict[str, list], *, min_similarity: float) -> pd.DataFrame:
    """Pairs of images of the same column in two different sets that are identical or near duplicates.

    Returns:
        Columns ``case_a, set_a, case_b, set_b, column, kind ("exact" or "near"), similarity``, sets in the
        table's order, most similar first.
    """
    sets = table["set"].astype(str).to_numpy()
    cases = table["case_id"].astype(str).to_numpy()
    order = list(dict.fromkeys(sets))
    rows = []
    for col, fps in prints.items():
        volumes = {fp.grid is not None for fp in fps}
        if len(volumes) > 1:
            raise ValueError(f"image column {col!r} mixes 2D images and 3D volumes")
        whole = similarity_3d(fps) if volumes == {True} else None
        for ia, sa in enumerate(order):
            for sb in order[ia + 1:]:
                a, b = np.flatnonzero(sets == sa), np.flatnonzero(sets == sb)
                if not len(a) or not len(b):
                    continue
                by_sha: dict[str, list[int]] = {}
                for j in b:
                    by_sha.setdefault(fps[j].sha256, []).append(int(j))
                exact = {(int(i), j) for i in a for j in by_sha.get(fps[i].sha256, [])}
                rows += [(cases[i], sa, cases[j], sb, col, "exact", 1.0) for i, j in sorted(exact)]
                if whole is not None:
                    sim = whole[np.ix_(a, b)]
                else:  # both ways: the variants (zooms of 7%) of the larger copy reach the smaller one, not always back
                    sim = np.maximum(_similarity([fps[i] for i in a], [fps[j] for j in b]),
                                     _similarity([fps[j] for j in b], [fps[i] for i in a]).T)
                rows += [(cases[a[i]], sa, cases[b[j]], sb, col, "near", float(sim[i, j]))
                         for i, j in zip(*np.nonzero(sim >= min_similarity)) if (int(a[i]), int(b[j])) not in exact]
    pairs = pd.DataFrame(rows, columns=list(PAIR_COLUMNS))
    return pairs.sort_values(["similarity", "case_a"], ascending=[False, True], ignore_index=True)


def check_pairs(pairs: pd.DataFrame, *, allow_exact: bool, stop_on_near: bool) -> None:
    """Stop the run for exact duplicates across sets (unless allowed) and, if asked, for near duplicates.

    Raises:
        DuplicateImagesError: listing each pair (case, set, column, similarity) and the key that allows it.
    """
    exact = pairs[pairs["kind"] == "exact"]
    near = pairs[pairs["kind"] == "near"]
    problems = []
    if len(exact) and not allow_exact:
        problems.append(f"{len(exact)} identical image(s) in two sets: {_listing(exact)}; set "
                        "analysis.allow_exact_duplicates: true to allow them, or remove the copies")
    if len(near) and stop_on_near:
        problems.append(f"{len(near)} near-duplicate pair(s) across sets: {_listing(near)}; set "
                        "analysis.stop_on_near_duplicates: false to list them without stopping")
    if problems:
        raise DuplicateImagesError("; ".join(problems))


def _listing(pairs: pd.DataFrame, limit: int = 10) -> str:
    items = [f"{r.case_a} ({r.set_a}) ~ {r.case_b} ({r.set_b}), {r.column}, similarity {r.similarity:.3f}"
             for r in pairs.head(limit).itertuples()]
    more = f" ... and {len(pairs) - limit} more" if len(pairs) > limit else ""
    return "; ".join(items) + more
