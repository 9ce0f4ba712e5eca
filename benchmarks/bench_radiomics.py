"""Radiomics throughput of ``medlib.radiomics.features.radiomics_table``: one process against a process pool.

Run by hand (not a test): ``.venv/bin/python benchmarks/bench_radiomics.py``. ``run()`` returns the rows as
dictionaries so ``medlib bench`` can collect them.

Synthetic CT-like cases (a noisy ellipsoid "haematoma" in a noisy "brain") are written as NIfTI files and
extracted with the study defaults (all seven feature classes, bin width 25 HU, resampling to 1 mm), with
``workers=1`` and ``workers=2``. Times are end to end, including reading the files and, for the pool,
starting the worker processes ("spawn": each worker imports pyradiomics and SimpleITK once), so the pool pays
off only when cases take longer than that start-up.

Files are read with ``medlib.data.imaging.read_image`` unless ``--sitk-reader`` is given (a plain SimpleITK
reader defined here, for machines where the imaging package is not installed).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from medlib.config import RadiomicsConfig
from medlib.radiomics.features import radiomics_table


@dataclass
class _Image:
    array: np.ndarray
    spacing: tuple[float, ...]


def read_nifti_sitk(path: str) -> _Image:
    """Read a NIfTI volume as (D, H, W) float32 with (D, H, W) spacing (module level: picklable)."""
    import SimpleITK as sitk

    img = sitk.ReadImage(str(path))
    return _Image(sitk.GetArrayFromImage(img).astype(np.float32), tuple(reversed(img.GetSpacing())))


def write_cases(folder: Path, n_cases: int, size: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """``n_cases`` synthetic (image, mask) NIfTI pairs of ``size``^3 voxels at 1 mm."""
    import SimpleITK as sitk

    rng = np.random.default_rng(seed)
    zz, yy, xx = np.indices((size, size, size)) / size - 0.5
    cases = []
    for i in range(n_cases):
        axes = rng.uniform(0.2, 0.35, 3)
        mask = (zz / axes[0]) ** 2 + (yy / axes[1]) ** 2 + (xx / axes[2]) ** 2 <= 1.0
        image = rng.normal(30.0, 8.0, mask.shape) + mask * rng.normal(40.0, 15.0, mask.shape)
        paths = []
        for name, array in (("image", image.astype(np.float32)), ("mask", mask.astype(np.uint8))):
            img = sitk.GetImageFromArray(array)
            img.SetSpacing((1.0, 1.0, 1.0))
            path = folder / f"case{i:03d}_{name}.nii.gz"
            sitk.WriteImage(img, str(path))
            paths.append(str(path))
        cases.append((f"case{i:03d}", *paths))
    return cases


def run(n_cases: int = 16, sizes: tuple[int, ...] = (32, 64), workers: tuple[int, ...] = (1, 2),
        reader: Callable[[str], Any] | None = None) -> list[dict[str, Any]]:
    """Cases per second of ``radiomics_table`` for each volume size and worker count."""
    rows = []
    settings = RadiomicsConfig()
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            folder = Path(tmp) / f"s{size}"
            folder.mkdir()
            cases = write_cases(folder, n_cases, size)
            radiomics_table(cases[:1], settings, reader=reader)  # warm imports in this process
            base = None
            for w in workers:
                start = time.perf_counter()
                table = radiomics_table(cases, settings, workers=w, reader=reader)
                seconds = time.perf_counter() - start
                base = base or seconds
                rows.append({"task": f"radiomics, {n_cases} cases of {size}^3", "method": f"workers={w}",
                             "n": n_cases, "seconds": seconds, "cases_per_second": n_cases / seconds,
                             "features": table.shape[1], "note": f"speed-up vs workers={workers[0]}: "
                                                                 f"{base / seconds:.2f}x"})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=16)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--sitk-reader", action="store_true", help="read with SimpleITK, not medlib.data.imaging")
    args = parser.parse_args()
    rows = run(args.cases, tuple(args.sizes), reader=read_nifti_sitk if args.sitk_reader else None)
    for row in rows:
        print(f"{row['task']:<34} {row['method']:<10} {row['seconds']:7.2f} s  "
              f"{row['cases_per_second']:6.2f} cases/s  {row['note']}")


if __name__ == "__main__":
    main()
