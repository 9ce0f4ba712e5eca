"""Duplicate and near-duplicate images across the sets of a split, and per-image intensity statistics, from one
pass over every image.

A copy of a training image in the test set (the same radiograph filed under two patients, a study sent twice)
makes the test set partly a training set. Two checks, per image column, on images as the readers return them:

- **Exact duplicates**: identical decoded pixel or voxel values (SHA-256 of the array), whatever the file, its
  header or its name. Across sets they stop the run unless ``analysis.allow_exact_duplicates`` is true.
- **Near duplicates**: a perceptual difference hash (``imagehash.dhash``, 16 x 16 = 256 bits; the sign of the
  horizontal gradient of a 17 x 16 thumbnail of the 0.5-99.5 percentile-scaled image). Similarity is
  ``1 - (differing bits) / 256``, the best over variants of either image: its 8 rotations by 90 degrees and
  mirrorings, and rotations by -6, -3, 3 and 6 degrees each combined with zooms of 0.93, 1 and 1.07 about the
  centre, so copies that were flipped, turned, slightly rotated or rescaled are still found. A pair across sets
  with similarity >= ``analysis.duplicate_similarity`` (default 0.91) is listed; with
  ``analysis.stop_on_near_duplicates`` it stops the run. 3D volumes are hashed by their mean projections along
  each of the three axes (mean of the three similarities): projections average over the whole volume, so they
  change less than one central slice under small shifts, rotations and new noise.

On the synthetic 2D cohorts (NEC and ONFH at scale 0.3: copies rotated by 5-6 degrees, rescaled by 6-7% or
re-exposed) the planted copies scored 0.930-0.996 and the closest distinct images 0.895, hence the default 0.91.
On the 32^3 synthetic glioma volumes planted near copies (0.88-0.95) and distinct volumes (up to 0.93) overlap:
for such small volumes only exact duplicates are certain, and the near-duplicate list needs a look.

imagehash computes the hash; the variant search and the vectorised pair distances (packed bits, one popcount
per pair and variant) are here because imagehash compares one pair at a time.
"""

from __future__ import annotations

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
PAIR_COLUMNS = ("case_a", "set_a", "case_b", "set_b", "column", "kind", "similarity")
STAT_NAMES = ("mean", "sd", "p01", "p99")


class DuplicateImagesError(ValueError):
    """Images shared across sets that the config does not allow; the message lists the pairs."""


@dataclass(frozen=True)
class Fingerprint:
    """One image: pixel hash, perceptual hashes and intensity statistics.

    Attributes:
        sha256: SHA-256 of the decoded array (shape and values).
        variants: ``planes x variants x 32`` packed hash bits of the variants (see the module docstring).
        canonical: ``planes x 32`` packed hash bits of the image as it is.
        stats: mean, SD, 1st and 99th percentile of the values, and the size along each axis.
    """

    sha256: str
    variants: np.ndarray
    canonical: np.ndarray
    stats: dict[str, float]


def _u8(plane: np.ndarray):
    from PIL import Image

    a = np.asarray(plane, dtype=np.float64)
    lo, hi = np.percentile(a, [0.5, 99.5])
    scaled = np.clip((a - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(a)
    return Image.fromarray((scaled * 255).astype(np.uint8))


def _bits(plane: np.ndarray) -> np.ndarray:
    import imagehash

    return np.packbits(imagehash.dhash(_u8(plane), hash_size=HASH_SIZE).hash.ravel())


def _zoom(a: np.ndarray, factor: float) -> np.ndarray:
    from scipy import ndimage

    if factor == 1.0:
        return a
    centre = (np.array(a.shape) - 1) / 2
    matrix = np.eye(2) / factor
    return ndimage.affine_transform(a, matrix, offset=centre - matrix @ centre, order=1, mode="nearest")


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


def planes(array: np.ndarray) -> list[np.ndarray]:
    """What is hashed: a 2D image itself; a 3D volume's mean projections along its three axes."""
    a = np.asarray(array, dtype=np.float64)
    if a.ndim == 2:
        return [a]
    if a.ndim == 3:
        return [a.mean(axis=ax) for ax in range(3)]
    raise ValueError(f"expected a 2D image or a 3D volume; got an array of shape {a.shape}")


def fingerprint(array: np.ndarray) -> Fingerprint:
    """Pixel hash, perceptual hashes of every variant, and intensity statistics of one image."""
    a = np.asarray(array)
    digest = hashlib.sha256(str((a.shape, a.dtype.str)).encode() + np.ascontiguousarray(a).tobytes()).hexdigest()
    ps = [_thumbnail(p) for p in planes(a)]
    variants = np.stack([np.stack([_bits(v) for v in _variants(p)]) for p in ps])
    canonical = np.stack([_bits(p) for p in ps])
    flat = a.astype(np.float64).ravel()
    p01, p99 = np.percentile(flat, [1, 99])
    stats = {"mean": float(flat.mean()), "sd": float(flat.std()), "p01": float(p01), "p99": float(p99),
             **{f"size_{i}": float(n) for i, n in enumerate(a.shape)}}
    return Fingerprint(digest, variants, canonical, stats)


def fingerprint_table(table: pd.DataFrame, image_columns: Sequence[str], *, reader=None) -> dict[str, list]:
    """Fingerprints of every image of every column: ``{column: [Fingerprint per row of table]}``.

    Args:
        table: One row per case with ``case_id``, ``set`` and the image columns (paths).
        image_columns: The columns to read.
        reader: ``path -> array``; default ``medlib.data.imaging.read_image(path).array``.
    """
    if reader is None:
        from medlib.data.imaging import read_image

        def reader(path):
            return read_image(path).array
    return {col: [fingerprint(reader(path)) for path in table[col]] for col in image_columns}


def image_statistics(table: pd.DataFrame, prints: dict[str, list]) -> pd.DataFrame:
    """One row per case: ``case_id`` and ``<column>_<statistic>`` for every image column (the shift analysis)."""
    out = pd.DataFrame({"case_id": table["case_id"].to_numpy()})
    for col, fps in prints.items():
        for name in fps[0].stats if fps else ():
            out[f"{col}_{name}"] = [fp.stats.get(name, np.nan) for fp in fps]
    return out


def _similarity(a: list, b: list) -> np.ndarray:
    """``len(a) x len(b)`` similarity: 1 - best-variant Hamming distance / 256, mean over planes."""
    va = np.stack([fp.variants for fp in a])   # A x P x V x 32
    cb = np.stack([fp.canonical for fp in b])  # B x P x 32
    dist = np.zeros((len(a), len(b)))
    for p in range(va.shape[1]):
        for i in range(len(a)):  # one row at a time bounds memory (V x B x 32 bytes)
            x = np.bitwise_xor(va[i, p][:, None, :], cb[None, :, p, :])
            dist[i] += np.bitwise_count(x).sum(axis=-1).min(axis=0)
    return 1.0 - dist / (va.shape[1] * BITS)


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
                # both ways: the variants (zooms of 7%) of the larger copy reach the smaller one, not always back
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
