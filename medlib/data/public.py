"""Public benchmark data sets as medlib cohorts: MedMNIST ``.npz`` → image files, manifest and fixed split.

The MedMNIST protocol (fixed train/val/test split, model kept by best validation AUC, ACC at threshold 0.5)
needs the official split, so the import writes ``split.csv`` beside ``manifest.csv`` and the study's
``split.split_file`` points at it. 2D images are written as 8-bit PNG, 3D volumes as NIfTI, so the study runs
through exactly the readers and caches a user's cohort would.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from medlib.schema import INTERNAL_SETS

#: MedMNIST's official splits, written as medlib's train/val/test sets (``medlib.schema.INTERNAL_SETS``).
SPLITS = INTERNAL_SETS


def _write_image(array: np.ndarray, path: Path) -> None:
    if array.ndim == 2:
        from PIL import Image as PILImage

        PILImage.fromarray(np.ascontiguousarray(array.astype(np.uint8))).save(path)
    else:
        import nibabel as nib

        # MedMNIST volumes are (D, H, W); NIfTI stores (x, y, z) = (W, H, D) with unit spacing.
        nib.save(nib.Nifti1Image(np.ascontiguousarray(array.transpose(2, 1, 0)).astype(np.uint8), np.eye(4)),
                 str(path))


def import_medmnist(npz_path: str | Path, out_dir: str | Path, *, name: str | None = None,
                    limit: int | None = None, overwrite: bool = False) -> Path:
    """Write a MedMNIST ``.npz`` as a cohort folder: images, ``manifest.csv`` and ``split.csv``.

    Args:
        npz_path: an official MedMNIST file (train/val/test images and labels).
        out_dir: parent folder; the cohort goes to ``out_dir/<name>``.
        name: folder name (default: the file's stem).
        limit: keep only the first ``limit`` cases of each split (for smoke tests).
        overwrite: replace an existing cohort folder.

    Returns:
        The manifest path. Labels are written as ``"0"``/``"1"``; every case is its own patient, as in
        MedMNIST, which has no patient identifiers.

    Raises:
        FileExistsError: the cohort folder exists and ``overwrite`` is false.
        ValueError: the labels are not binary.
    """
    from medlib.data.imaging import read_medmnist

    npz_path = Path(npz_path)
    target = Path(out_dir) / (name or npz_path.stem)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
    splits = read_medmnist(npz_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    rows = []
    suffix = ".png" if next(iter(splits.values()))[0].ndim == 3 else ".nii.gz"
    for split in SPLITS:
        images, labels = splits[split]
        labels = np.asarray(labels).reshape(-1)
        if not set(np.unique(labels)) <= {0, 1}:
            raise ValueError(f"{npz_path}: {split} labels {sorted(np.unique(labels))[:5]} are not binary 0/1")
        (tmp / split).mkdir()
        for i in range(len(images) if limit is None else min(limit, len(images))):
            case = f"{split}-{i:05d}"
            _write_image(images[i], tmp / split / f"{case}{suffix}")
            rows.append({"case_id": case, "patient_id": case, "label": str(int(labels[i])),
                         "image": f"{split}/{case}{suffix}", "split": split})
    table = pd.DataFrame(rows)
    table.drop(columns=["split"]).to_csv(tmp / "manifest.csv", index=False)
    table.rename(columns={"split": "set"})[["case_id", "set"]].to_csv(tmp / "split.csv", index=False)
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    return target / "manifest.csv"
