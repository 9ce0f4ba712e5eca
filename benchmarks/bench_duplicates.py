"""Speed of the 3D near-duplicate search (``medlib.data.duplicates.similarity_3d``) against moving and filtering
each volume with ``scipy.ndimage``, its earlier form, measured in the same run on the same volumes.

Run by hand (not a test): ``.venv/bin/python benchmarks/bench_duplicates.py [--volumes N]``. ``run()`` returns
the rows as dictionaries so ``medlib bench`` can collect them.

The volumes are smooth random fields of ``GRID``^3 voxels (what ``fingerprint`` keeps of a volume). The
baseline computes, for every volume and each of the 27 ``VARIANTS_3D``, the moved volume
(``_about_centre``, one ``scipy.ndimage.affine_transform``) and its difference of Gaussians (two
``gaussian_filter`` calls), as ``similarity_3d`` did before it applied each variant as one sparse operator
and one separable band-pass to all volumes at once. Both give the same matrix; the largest difference is
printed.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from scipy import ndimage

from medlib.data import duplicates as dup


class _Print:
    def __init__(self, grid: np.ndarray) -> None:
        self.grid = grid


def volumes(n: int, seed: int = 0) -> list[_Print]:
    """``n`` smooth random volumes of ``GRID``^3 voxels in [0, 1]."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        field = ndimage.gaussian_filter(rng.normal(size=(dup.GRID,) * 3), 2.0)
        out.append(_Print(((field - field.min()) / np.ptp(field)).astype(np.float32)))
    return out


def per_volume(fps: list) -> np.ndarray:
    """The baseline: every volume moved and band-passed by ``scipy.ndimage``, one variant at a time."""
    def signature(g: np.ndarray) -> np.ndarray:
        band = ndimage.gaussian_filter(g, dup.BAND[0]) - ndimage.gaussian_filter(g, dup.BAND[1])
        return band[::2, ::2, ::2].ravel().astype(np.float64)

    grids = [(fp.grid - fp.grid.mean()) / max(float(fp.grid.std()), 1e-6) for fp in fps]
    mean = signature(np.mean(grids, axis=0))
    plain = dup._unit(np.stack([signature(g) for g in grids]) - mean)
    k = min(dup.COMPONENTS, (len(grids) - 1) // 4)
    basis = np.linalg.svd(plain - plain.mean(axis=0), full_matrices=False)[2][:k].T

    def projected(x: np.ndarray) -> np.ndarray:
        return dup._unit(x - (x @ basis) @ basis.T)

    plain = projected(plain)
    sim = np.stack([
        (projected(dup._unit(np.stack([signature(dup._about_centre(g, dup._forward(*v))) for v in dup.VARIANTS_3D])
                             - mean)) @ plain.T).max(axis=0) for g in grids])
    return np.clip(np.maximum(sim, sim.T), 0.0, 1.0)


def run(n_volumes: int = 120) -> list[dict[str, Any]]:
    fps = volumes(n_volumes)
    dup._mover.cache_clear()
    t = time.perf_counter()
    fast = dup.similarity_3d(fps)
    fast_s = time.perf_counter() - t
    t = time.perf_counter()
    slow = per_volume(fps)
    slow_s = time.perf_counter() - t
    return [{"benchmark": f"3D near-duplicate search, {n_volumes} volumes of {dup.GRID}^3, "
                          f"{len(dup.VARIANTS_3D)} variants",
             "seconds": round(fast_s, 2), "baseline_seconds": round(slow_s, 2), "ratio": round(slow_s / fast_s, 1),
             "max_difference": float(np.abs(fast - slow).max())}]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volumes", type=int, default=120)
    for row in run(parser.parse_args().volumes):
        print(f"{row['benchmark']}: {row['seconds']} s; scipy per volume {row['baseline_seconds']} s; "
              f"{row['ratio']}x; largest difference {row['max_difference']:.1e}")
