"""Glioma: co-registered T1, T2 and T1ce NIfTI volumes per patient; outcome radiation necrosis versus recurrence.

A latent severity drawn from ``N(SEPARATION * y, 1)`` moves the treated lesion from recurrence-like (a thicker,
nodular enhancing rim around a non-enhancing core) to necrosis-like ("soap-bubble" enhancement filling the core,
which is T2-bright, inside a thin rim; wider T2 edema). The positive class (necrosis) carries the finding, as
issue 16 asks (an enhancing region in T1ce with a matching T2 change): its lesion enhances more and is brighter
on T2 than a recurrence, so a map of the necrosis class has something in the lesion to point at. (When the
rim was recurrence's much stronger sign, 8 mm and 1.7x against 3 mm and 0.8x, the models read the lesion as
evidence against necrosis and no map of necrosis found it: 0 of 8 test positives.) The enhancing choroid
plexus, of varying strength in both classes, is a T1ce distractor. Volumes are int16 in RAS+ voxel
order with a per-scan gain, a smooth bias field and noise, so intensity scales are arbitrary. The lesion mask
(``lesion_mask``, uint8 NIfTI with the sequences' shape and affine) marks the enhancing lesion (core and rim).
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from medlib.synth._common import Ctx, count, labels, normal, sigmoid, smooth_noise, with_missing
from medlib.synth._dicom import write_nifti
from medlib.synth._planted import KINDS_3D, Plant, choose, transform, write_sidecar

__all__ = ["COLUMNS", "SEPARATION", "STUDY_CODE", "make"]

STUDY_CODE = 404         # mixed into the seed of the study's generator
SEPARATION = 3.0         # mean latent severity of the necrosis class, in SD units (recurrence: 0)
COLUMNS = ["t1", "t2", "t1ce", "lesion_mask", "age", "sex", "kps", "months_since_radiotherapy", "radiation_dose_gy",
           "idh_mutant"]


def _step(distance: np.ndarray, width: float) -> np.ndarray:
    """Partial-volume step: 0 outside, 1 inside, linear over ``width`` mm around the surface."""
    return np.clip(distance / width + 0.5, 0, 1)


_MR_TISSUE = {  # tissue -> (T1, T2) relative signal; T1ce = T1 plus enhancement
    "air": (0.0, 0.0), "scalp": (0.9, 0.65), "skull": (0.06, 0.05), "csf": (0.15, 1.0),
    "gm": (0.55, 0.58), "wm": (0.8, 0.42), "edema": (0.55, 0.78),
}


def _brain_tissues(rng: np.random.Generator, coords: tuple[np.ndarray, ...], s: float) -> dict[str, np.ndarray]:
    """Soft tissue fractions (sum to 1) of a head: scalp, skull, CSF, grey and white matter."""
    x, y, z = coords
    semi = np.array([rng.uniform(60, 66), rng.uniform(74, 80), rng.uniform(55, 60)])
    rn = np.sqrt((x / semi[0]) ** 2 + (y / semi[1]) ** 2 + (z / semi[2]) ** 2)
    depth = (1 - rn) * semi.mean()  # mm inside the brain surface (negative outside)
    soft = partial(_step, width=s)
    head, skull_in, brain = soft(depth + 14), soft(depth + 8), soft(depth)
    vent = sum(soft((1 - np.sqrt(((x - sd * 9) / 7) ** 2 + ((y + 5) / 24) ** 2 + ((z - 8) / 12) ** 2)) * 7)
               for sd in (-1, 1))
    deep_gm = sum(soft((1 - np.sqrt(((x - sd * 18) / 9) ** 2 + (y / 14) ** 2 + ((z + 2) / 10) ** 2)) * 9)
                  for sd in (-1, 1))
    gm_frac = np.clip(soft(7 - depth) + deep_gm, 0, 1) * brain
    csf = np.clip(vent, 0, 1) * brain + (skull_in - brain)
    return {"air": 1 - head, "scalp": head - soft(depth + 10), "skull": soft(depth + 10) - skull_in,
            "csf": csf, "gm": gm_frac * (1 - np.clip(vent, 0, 1)),
            "wm": brain * (1 - np.clip(vent, 0, 1)) - gm_frac * (1 - np.clip(vent, 0, 1))}


def _lesion(rng: np.random.Generator, coords: tuple[np.ndarray, ...], s: float, m: float
            ) -> dict[str, np.ndarray]:
    """Treated-tumour lesion: core, enhancing rim, edema. ``m`` in (0, 1): 0 = recurrence-like (a thicker,
    nodular rim), 1 = necrosis-like (a thin rim around a core with "soap-bubble" enhancement and wider edema).
    Sizes are a few voxels at the demo's 32^3, so the pattern survives resizing."""
    x, y, z = coords
    c = np.array([rng.choice([-1, 1]) * rng.uniform(22, 32), rng.uniform(-28, 28), rng.uniform(-4, 20)])
    d = np.sqrt((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2)
    bumps = smooth_noise(rng, d.shape, 1.0)
    r_core = rng.uniform(10, 15) + 2.5 * bumps * (1 - m)
    rim_w = np.clip(rng.normal(6.0 - 3.0 * m, 1.0), 2.0, 10.0)
    r_edema = r_core + rim_w + rng.uniform(5, 10) + 10 * m + 3 * smooth_noise(rng, d.shape, 1.5)
    soft = partial(_step, width=s)
    core, rim_out, edema_out = soft(r_core - d), soft(r_core + rim_w - d), soft(r_edema - d)
    bubbles = np.clip(smooth_noise(rng, d.shape, 0.7), 0, 1.5)
    return {"core": core, "rim": rim_out - core, "edema": edema_out - rim_out, "bubbles": bubbles,
            "lesion": rim_out}


def _plexus(rng: np.random.Generator, coords: tuple[np.ndarray, ...], s: float) -> np.ndarray:
    """Enhancing choroid plexus in both trigones, of varying strength in both classes (a T1ce distractor)."""
    x, y, z = coords
    glomus = sum(_step(6 - np.sqrt((x - sd * 12) ** 2 + (y + 22) ** 2 + (z - 8) ** 2), s) for sd in (-1, 1))
    return rng.uniform(0.3, 1.1) * glomus


def _volumes(rng: np.random.Generator, n: int, spacing: float, sev: float
             ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """T1, T2 and T1ce (relative signal) and the lesion mask (core and enhancing rim, uint8) on one grid."""
    c = ((np.arange(n) - (n - 1) / 2) * spacing).astype(np.float32)
    coords = (c[:, None, None], c[None, :, None], c[None, None, :])  # RAS voxel order (i=x, j=y, k=z)
    tissue = _brain_tissues(rng, coords, spacing)
    m = float(sigmoid(1.5 * sev - 1.5))
    les = _lesion(rng, coords, spacing, m)
    inside = np.clip(tissue["wm"] + tissue["gm"], 0, 1)
    t1 = sum(tissue[k] * _MR_TISSUE[k][0] for k in _MR_TISSUE if k != "edema")
    t2 = sum(tissue[k] * _MR_TISSUE[k][1] for k in _MR_TISSUE if k != "edema")
    core_t1, core_t2 = 0.35 + 0.1 * (1 - m), 0.55 + 0.5 * m
    rim_t1ce = 1.0 + 0.3 * les["bubbles"] * (1 - m)
    for key, (v1, v2) in {"edema": _MR_TISSUE["edema"], "core": (core_t1, core_t2), "rim": (0.6, 0.55)}.items():
        frac = les[key] * inside
        t1, t2 = t1 * (1 - frac) + v1 * frac, t2 * (1 - frac) + (v2 + (0.12 * m if key == "edema" else 0)) * frac
    enhance = les["rim"] * inside * rim_t1ce + les["core"] * inside * (0.05 + 1.2 * m * (0.5 + les["bubbles"]))
    t1ce = t1 * (1 - les["rim"] * inside) + enhance + _plexus(rng, coords, spacing) * tissue["csf"]
    lesion_mask = ((les["lesion"] * inside) > 0.5).astype(np.uint8)
    return {"t1": t1, "t2": t2, "t1ce": t1ce}, lesion_mask


def _mr_store(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Scanner gain, a smooth bias field and Rician-like noise; int16 arbitrary units."""
    n = image.shape[0]
    g = np.linspace(-1, 1, n, dtype=np.float32)
    direction = rng.normal(0, 1, 3)
    bias = 1 + 0.08 * (direction[0] * g[:, None, None] + direction[1] * g[None, :, None]
                       + direction[2] * g[None, None, :])
    noisy = np.abs(image * bias + rng.normal(0, 0.025, image.shape))
    return np.rint(noisy * rng.uniform(700, 1400)).astype(np.int16)


def _covariates(rng: np.random.Generator, y: np.ndarray) -> dict[str, np.ndarray]:
    n = len(y)
    kps = np.clip(np.round(rng.normal(np.where(y == 1, 76, 80), 11, n) / 10) * 10, 40, 100)
    return {
        "age": np.round(normal(rng, np.where(y == 1, 47, 51), 12, 18, 82, n)).astype(int),
        "sex": np.where(rng.random(n) < 0.57, "M", "F"),
        "kps": with_missing(rng, kps, 0.05),
        "months_since_radiotherapy": np.round(
            np.clip(np.exp(rng.normal(np.where(y == 1, 2.2, 2.6), 0.6, n)), 1, 96), 1),
        "radiation_dose_gy": np.where(rng.random(n) < np.where(y == 1, 0.75, 0.55), 60.0,
                                      rng.choice([54.0, 59.4], n)),
        "idh_mutant": np.where(rng.random(n) < np.where(y == 1, 0.36, 0.24), "yes", "no"),
    }


def _case(rng: np.random.Generator, n: int, y: int, plant: Plant | None, kept: dict[int, tuple]
          ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Stored volumes (int16), lesion mask and affine of one case; a planted copy takes its original's."""
    if plant is not None and plant.kind == "exact":
        return kept[plant.source]
    if plant is not None:  # the original's stored volumes moved, with new noise (same scanner, bias field)
        stored, mask, affine = kept[plant.source]
        moved = {seq: transform(v.astype(np.float32), plant, value_range=float(v.max())) for seq, v in stored.items()}
        return ({seq: np.rint(np.abs(v + rng.normal(0, 0.01 * v.max(), v.shape))).astype(np.int16)
                 for seq, v in moved.items()}, transform(mask, plant, mask=True), affine)
    spacing = round(184.0 / n * rng.uniform(0.97, 1.03), 3)
    volumes, mask = _volumes(rng, n, spacing, rng.normal(SEPARATION * y, 1.0))
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = -(n - 1) / 2 * spacing
    return {seq: _mr_store(rng, image) for seq, image in volumes.items()}, mask, affine


def make(ctx: Ctx, rng: np.random.Generator) -> pd.DataFrame:
    """Write the glioma T1, T2 and T1ce volumes and lesion masks under ``ctx.root`` and return the cohort table.

    Args:
        ctx: where to write, the seed (for UIDs) and the size options.
        rng: the study's generator; every draw is made in a fixed order, so the same seed gives the same files.

    Returns:
        One row per case: ``case_id``, ``patient_id``, ``label``, the ``COLUMNS`` and the 0/1 outcome ``_y``.
    """
    n_pos = count(42, ctx.scale)
    y = labels(rng, n_pos, max(count(234, ctx.scale) - n_pos, 10))
    ids = [f"GLIOMA-{i + 1:04d}" for i in range(len(y))]
    table = pd.DataFrame({"case_id": ids, "patient_id": ids, "label": np.where(y == 1, "necrosis", "recurrence"),
                          "t1": "", "t2": "", "t1ce": "", "lesion_mask": "", **_covariates(rng, y), "_y": y})
    n = ctx.image_size or 32
    plants = choose(rng, y, table["patient_id"].to_numpy(), KINDS_3D)
    by_copy, sources, kept = {p.copy: p for p in plants}, {p.source for p in plants}, {}
    for i, row in table.iterrows():
        case = _case(rng, n, int(row["_y"]), by_copy.get(i), kept)
        if i in sources:
            kept[i] = case
        volumes, mask, affine = case
        for seq, stored in volumes.items():
            rel = f"images/{row['case_id']}/{seq}.nii.gz"
            write_nifti(ctx.path(rel), stored, affine)
            table.at[i, seq] = rel
        write_nifti(ctx.path(f"masks/{row['case_id']}.nii.gz"), mask, affine)
        table.at[i, "lesion_mask"] = f"masks/{row['case_id']}.nii.gz"
    write_sidecar(ctx.root, table, plants, ["t1", "t2", "t1ce"])
    return table
