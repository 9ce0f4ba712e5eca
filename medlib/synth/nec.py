"""NEC: one neonatal abdominal radiograph (AP) per patient; outcome surgery versus no surgery.

A latent severity drawn from ``N(SEPARATION * y, 1)`` drives the findings (dilated loops, pneumatosis, portal
venous gas, free air) on an anatomy with label-independent devices (tubes, catheters, electrodes). Files are
12-bit DX DICOM from five vendors with their rescale and gamma; about a quarter are MONOCHROME1. An external
test cohort (``set == "external"``) follows the internal one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from medlib.synth._common import Ctx, count, date, ellipse, grid2, labels, normal, smooth_noise, with_missing
from medlib.synth._dicom import DX, dx_elements, dx_pixels, identity, patient_numbers, write_dicom

__all__ = ["COLUMNS", "SEPARATION", "STUDY_CODE", "make"]

STUDY_CODE = 101         # mixed into the seed of the study's generator
SEPARATION = 1.9         # mean latent severity of the surgery class, in SD units (no surgery: 0)
COLUMNS = ["xray", "set", "gestational_age_weeks", "birth_weight_g", "sex", "age_at_onset_days"]

_VENDORS = [  # (manufacturer, model, gamma, slope, intercept)
    ("Carestream Health", "DRX-Revolution", 1.0, 1.0, 0.0),
    ("GE Healthcare", "Optima XR220amx", 0.9, 1.0, 0.0),
    ("Philips Medical Systems", "MobileDiagnost wDR", 1.1, 0.5, 0.0),
    ("SIEMENS", "Mobilett Mira Max", 1.0, 1.0, -1024.0),
    ("FUJIFILM Corporation", "FDR nano", 0.95, 1.0, 0.0),
]


def _anatomy(rng: np.random.Generator, y: np.ndarray, x: np.ndarray, w: float) -> np.ndarray:
    """Neonatal chest-abdomen in AP: body, lungs, heart, ribs, spine, liver, pelvis (attenuation)."""
    body = ellipse(y, x, 0.12, 0.0, 1.32, 0.74 * w, edge=0.03, power=3.0)
    img = body * (0.26 + 0.24 * np.sqrt(np.clip(1 - (x / (0.74 * w)) ** 2, 0, 1)))
    for side in (-1, 1):
        img -= 0.2 * ellipse(y, x, -0.8, side * 0.3 * w, 0.34, 0.22 * w, edge=0.04)
        img += 0.12 * ellipse(y, x, 1.05, side * 0.4 * w, 0.26, 0.2 * w, edge=0.03)
        img -= 0.07 * ellipse(y, x, 1.07, side * 0.4 * w, 0.16, 0.11 * w, edge=0.03)
    img += 0.14 * ellipse(y, x, -0.74, 0.06, 0.21, 0.21 * w, edge=0.04)
    img += 0.06 * ellipse(y, x, -0.34, -0.3 * w, 0.2, 0.36 * w, edge=0.05)
    lateral = (np.abs(x) > 0.07) & (np.abs(x) < 0.66 * w)
    for k in range(6):
        img += 0.06 * ((np.abs(y - (-1.12 + 0.12 * k) - 0.5 * (np.abs(x) - 0.07) ** 2 * 2.2) < 0.017) & lateral)
    disc = (np.cos(2 * np.pi * (y + rng.uniform(0, 1)) / 0.09) > -0.45).astype(np.float32)
    img += (np.abs(x) < 0.05) * (0.04 + 0.045 * disc) + 0.03 * (np.abs(np.abs(x) - 0.065) < 0.012)
    return img.astype(np.float32)


def _normal_gas(rng: np.random.Generator, y: np.ndarray, x: np.ndarray, w: float) -> np.ndarray:
    gas = 0.16 * ellipse(y, x, -0.33, 0.26 * w, 0.09, 0.12 * w, edge=0.03)  # stomach bubble
    for _ in range(int(rng.integers(10, 22))):
        r = rng.uniform(0.03, 0.07)
        blob = ellipse(y, x, rng.uniform(-0.2, 0.8), rng.uniform(-0.55, 0.55) * w, r * rng.uniform(0.6, 1.4),
                       r, rng.uniform(0, np.pi), edge=0.02)
        gas = np.maximum(gas, 0.15 * blob)
    return gas


def _disease(rng: np.random.Generator, y: np.ndarray, x: np.ndarray, w: float, sev: float) -> np.ndarray:
    """Lucencies (positive = less attenuation) of dilated loops, pneumatosis, portal gas and free air."""
    k = float(np.clip(sev, -1.5, 3.5))
    gas = np.zeros(np.broadcast_shapes(y.shape, x.shape), np.float32)
    for _ in range(int(rng.poisson(max(0.0, 1.0 + 1.1 * k)))):  # dilated loops with thick walls
        cy, cx, a = rng.uniform(-0.15, 0.7), rng.uniform(-0.45, 0.45) * w, rng.uniform(0, np.pi)
        rx, ry = rng.uniform(0.12, 0.22) * (1 + 0.12 * k), rng.uniform(0.05, 0.08) * (1 + 0.12 * k)
        inner = ellipse(y, x, cy, cx, ry, rx, a, edge=0.02)
        gas = np.maximum(gas, 0.2 * inner)
        gas -= 0.05 * np.clip(k / 2, 0, 1) * (ellipse(y, x, cy, cx, ry + 0.025, rx + 0.025, a) - inner)
    for _ in range(int(rng.poisson(max(0.0, 2.2 * (k - 0.4))))):  # pneumatosis: bubbly arcs
        cy, cx, rr = rng.uniform(-0.1, 0.7), rng.uniform(-0.45, 0.45) * w, rng.uniform(0.07, 0.13)
        for t in rng.uniform(0, 2 * np.pi, int(rng.integers(6, 12))):
            gas = np.maximum(gas, 0.14 * ellipse(y, x, cy + rr * np.sin(t), cx + rr * np.cos(t),
                                                 0.016, 0.016, edge=0.012))
    if k + rng.normal(0, 0.7) > 2.0:  # portal venous gas: branching lucencies over the liver
        for t in rng.uniform(2.3, 3.9, int(rng.integers(3, 6))):
            gas = np.maximum(gas, 0.09 * ellipse(y, x, -0.32 + 0.12 * np.sin(t), -0.12 * w + 0.12 * np.cos(t),
                                                 0.012, 0.13, t, edge=0.01))
    if k + rng.normal(0, 0.7) > 2.5:  # pneumoperitoneum: football sign with the falciform ligament
        gas += 0.09 * ellipse(y, x, 0.12, 0.0, 0.5, 0.46 * w, edge=0.06)
        gas -= 0.05 * ((np.abs(x + 0.05) < 0.012) & (np.abs(y - 0.05) < 0.35))
    return gas


def _devices(rng: np.random.Generator, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Label-independent clutter: nasogastric tube, umbilical catheter, ECG electrodes."""
    img = np.zeros(np.broadcast_shapes(y.shape, x.shape), np.float32)
    if rng.random() < 0.6:
        img += 0.16 * ((np.abs(x - 0.03 - 0.25 * np.clip(y + 0.5, 0, 1)) < 0.01) & (y < -0.3))
    if rng.random() < 0.4:
        img += 0.16 * ((np.abs(x - 0.02 + 0.08 * (0.4 - y)) < 0.01) & (y > -0.55) & (y < 0.4))
    for _ in range(int(rng.integers(0, 3))):
        cy, cx = rng.uniform(-0.95, -0.5), rng.uniform(-0.6, 0.6)
        img += 0.3 * (ellipse(y, x, cy, cx, 0.05, 0.05) - 0.6 * ellipse(y, x, cy, cx, 0.035, 0.035))
    return img


def _image(rng: np.random.Generator, n: int, sev: float) -> np.ndarray:
    y, x = grid2(n)
    w = rng.uniform(0.88, 1.04)
    y, x = y - rng.normal(0, 0.03), x - rng.normal(0, 0.04)
    img = _anatomy(rng, y, x, w) * rng.uniform(0.9, 1.1)
    body = ellipse(y, x, 0.12, 0.0, 1.32, 0.74 * w, edge=0.03, power=3.0)
    gas = np.maximum(_normal_gas(rng, y, x, w), _disease(rng, y, x, w, sev))
    img -= body * ndimage.gaussian_filter(gas, 0.8 * n / 128, truncate=2.5)
    img += _devices(rng, y, x) + 0.015 * smooth_noise(rng, (n, n), n / 40)
    return ndimage.gaussian_filter(img, 0.5 * n / 128)


def _covariates(rng: np.random.Generator, y: np.ndarray) -> dict[str, np.ndarray]:
    n = len(y)
    ga = normal(rng, np.where(y == 1, 29.6, 31.2), 3.4, 23.0, 40.0, n)
    weight = np.clip(np.exp(np.log(1500) + 0.13 * (ga - 31) + rng.normal(0, 0.16, n)), 450, 4200)
    onset = np.clip(np.round(np.exp(rng.normal(np.where(y == 1, 2.3, 2.5), 0.55, n))), 1, 60)
    return {
        "gestational_age_weeks": np.round(ga, 1), "birth_weight_g": np.round(weight / 10) * 10,
        "sex": np.where(rng.random(n) < np.where(y == 1, 0.6, 0.52), "M", "F"),
        "age_at_onset_days": with_missing(rng, onset, 0.04),
    }


def _cohort(rng: np.random.Generator, scale: float) -> pd.DataFrame:
    internal = labels(rng, count(94, scale), count(169, scale))
    external = labels(rng, count(14, scale, 5), count(26, scale, 5))
    y = np.r_[internal, external]
    ids = [f"NEC-{i + 1:04d}" for i in range(len(y))]
    table = pd.DataFrame({"case_id": ids, "patient_id": ids,
                          "label": np.where(y == 1, "surgery", "no_surgery"), "xray": "",
                          "set": [""] * len(internal) + ["external"] * len(external)})
    table = table.assign(**_covariates(rng, y))
    table["_y"] = y
    return table


def make(ctx: Ctx, rng: np.random.Generator) -> pd.DataFrame:
    """Write the NEC radiographs under ``ctx.root`` and return the cohort table.

    Args:
        ctx: where to write, the seed (for UIDs) and the size options.
        rng: the study's generator; every draw is made in a fixed order, so the same seed gives the same files.

    Returns:
        One row per case: ``case_id``, ``patient_id``, ``label``, the ``COLUMNS`` and the 0/1 outcome ``_y``.
    """
    table = _cohort(rng, ctx.scale)
    n = ctx.image_size or 128
    numbers = patient_numbers(rng, len(table))
    for i, row in table.iterrows():
        sev = rng.normal(SEPARATION * row["_y"], 1.0)
        vendor = _VENDORS[int(rng.integers(len(_VENDORS)))]
        stored, voi = dx_pixels(_image(rng, n, sev), rng, vendor[2], rng.random() < 0.25, *vendor[3:])
        rel = f"images/{row['case_id']}.dcm"
        elements = {**dx_elements("DX", n, 200.0 / n, vendor[:2]), **voi,
                    **identity(int(numbers[i]), row["sex"], date(rng)),
                    "StudyInstanceUID": ctx.uid(row["case_id"], "study"),
                    "SeriesInstanceUID": ctx.uid(row["case_id"], "series"), "SeriesNumber": 1,
                    "InstanceNumber": 1, "StudyDescription": "XR ABDOMEN AP NEONATE", "BodyPartExamined": "ABDOMEN",
                    "ViewPosition": "AP", "PatientOrientation": ["R", "F"], "PatientAge": "000D"}
        write_dicom(ctx.path(rel), DX, ctx.uid(row["case_id"], "image"), elements, stored)
        table.at[i, "xray"] = rel
    return table

