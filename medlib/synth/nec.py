"""NEC: one neonatal abdominal radiograph (AP) per patient; outcome surgery versus no surgery.

A latent severity drawn from ``N(SEPARATION * y, 1)`` drives the localised findings: pneumatosis (1-3 bowel
segments full of intramural gas bubbles with a lucent rail, from severity ``_FINDING_FROM``, anywhere in the
lower abdomen's quadrants, so that where the lesion is varies between infants and a map that always points at
the image centre misses it), portal venous gas and, in the severest, free air. Every infant who needed surgery has at least one segment (its severity is at least
``_POSITIVE_FLOOR``); about one in five without surgery has a milder one. Label-independent distractors: tubes,
catheters, electrodes, ordinary gas, dilated loops and mottled stool. The lesion mask (``lesion_mask``, a PNG on
the DICOM's pixel grid) marks the region of each finding; it is all zero where none was drawn. Files are 12-bit
DX DICOM from five vendors with their rescale and gamma; about a quarter are MONOCHROME1. An external test
cohort (``set == "external"``) follows the internal one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from medlib.synth._common import Ctx, count, date, ellipse, grid2, labels, normal, smooth_noise, with_missing
from medlib.synth._dicom import DX, dx_elements, dx_pixels, identity, patient_numbers, write_dicom, write_png_mask
from medlib.synth._planted import KINDS_2D, Plant, choose, transform, write_sidecar

__all__ = ["COLUMNS", "SEPARATION", "STUDY_CODE", "make"]

STUDY_CODE = 101         # mixed into the seed of the study's generator
SEPARATION = 3.0         # mean latent severity of the surgery class, in SD units (no surgery: 0)
COLUMNS = ["xray", "lesion_mask", "set", "gestational_age_weeks", "birth_weight_g", "sex", "age_at_onset_days"]
_FINDING_FROM = 0.9      # severity from which pneumatosis is drawn (about 1 in 5 infants without surgery)
_POSITIVE_FLOOR = 1.2    # an infant who needed surgery has at least this severity, so always a finding

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
    """Label-independent bowel gas: stomach bubble, small gas pockets, a few dilated loops, and (in half the
    infants) mottled stool in the descending colon, the classic mimic of pneumatosis (smaller, fainter bubbles)."""
    gas = 0.16 * ellipse(y, x, -0.33, 0.26 * w, 0.09, 0.12 * w, edge=0.03)  # stomach bubble
    for _ in range(int(rng.integers(10, 22))):
        r = rng.uniform(0.03, 0.07)
        blob = ellipse(y, x, rng.uniform(-0.2, 0.8), rng.uniform(-0.55, 0.55) * w, r * rng.uniform(0.6, 1.4),
                       r, rng.uniform(0, np.pi), edge=0.02)
        gas = np.maximum(gas, 0.15 * blob)
    for _ in range(int(rng.poisson(1.2))):  # dilated loops: seen in both classes here
        cy, cx, a = rng.uniform(-0.15, 0.7), rng.uniform(-0.45, 0.45) * w, rng.uniform(0, np.pi)
        gas = np.maximum(gas, 0.18 * ellipse(y, x, cy, cx, rng.uniform(0.05, 0.08), rng.uniform(0.12, 0.22), a,
                                             edge=0.02))
    if rng.random() < 0.5:
        cy, cx = rng.uniform(0.5, 0.8), rng.uniform(0.2, 0.45) * w
        for _ in range(int(rng.integers(8, 16))):
            r = rng.uniform(0.012, 0.02)
            _stamp(gas, y, x, (cy + rng.normal(0, 0.06), cx + rng.normal(0, 0.05)), r, 0.1)
    return gas


def _stamp(gas: np.ndarray, y: np.ndarray, x: np.ndarray, centre: tuple[float, float], radius: float,
           amp: float) -> None:
    """``gas = max(gas, amp * disc)`` for one small anti-aliased disc, computed in its bounding box only (a
    full-grid ``ellipse`` per bubble made the cohort several times slower)."""
    rows = np.flatnonzero(np.abs(y[:, 0] - centre[0]) < radius + 0.02)
    cols = np.flatnonzero(np.abs(x[0, :] - centre[1]) < radius + 0.02)
    if len(rows) and len(cols):
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        disc = ellipse(y[box[0], :], x[:, box[1]], *centre, radius, radius, edge=0.012)
        np.maximum(gas[box], amp * disc, out=gas[box])


def _pneumatosis(rng: np.random.Generator, y: np.ndarray, x: np.ndarray, w: float, k: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Pneumatosis intestinalis: 1-3 bowel segments full of intramural gas bubbles with a lucent rail along the
    wall; size, bubble contrast and number of segments grow with the severity ``k``. Returns the lucency and the
    segments' region (the lesion mask)."""
    gas = np.zeros(np.broadcast_shapes(y.shape, x.shape), np.float32)
    region = np.zeros(gas.shape, bool)
    n_segments = 0 if k < _FINDING_FROM else min(3, 1 + int(rng.poisson(0.4 * (k - _FINDING_FROM))))
    for _ in range(n_segments):  # in the lower abdomen's four quadrants, away from the image centre
        cy, cx = rng.uniform(0.25, 0.75), rng.choice([-1, 1]) * rng.uniform(0.2, 0.5) * w
        rr = rng.uniform(0.12, 0.18) * (1 + 0.1 * k)
        amp = 0.1 + 0.04 * k
        n_bubbles = int(rng.integers(14, 24))
        radial, turn = rr * np.sqrt(rng.uniform(0, 1, n_bubbles)), rng.uniform(0, 2 * np.pi, n_bubbles)
        for r, t in zip(radial, turn):
            _stamp(gas, y, x, (cy + r * np.sin(t), cx + r * np.cos(t)), rng.uniform(0.03, 0.05), amp)
        rail = ellipse(y, x, cy, cx, rr + 0.02, rr + 0.02, edge=0.01) - ellipse(y, x, cy, cx, rr - 0.005,
                                                                                  rr - 0.005, edge=0.01)
        gas = np.maximum(gas, 0.6 * amp * np.clip(rail, 0, 1))
        region |= ellipse(y, x, cy, cx, rr + 0.05, rr + 0.05) > 0.5
    return gas, region


def _disease(rng: np.random.Generator, y: np.ndarray, x: np.ndarray, w: float, sev: float
             ) -> tuple[np.ndarray, np.ndarray]:
    """Lucencies (positive = less attenuation) of pneumatosis, portal venous gas and free air, and the region
    each occupies (the lesion mask; all False when the severity draws no finding)."""
    k = float(np.clip(sev, -1.5, 3.5))
    gas, region = _pneumatosis(rng, y, x, w, k)
    if k + rng.normal(0, 0.7) > 2.2:  # portal venous gas: branching lucencies over the liver
        for t in rng.uniform(2.3, 3.9, int(rng.integers(3, 6))):
            branch = ellipse(y, x, -0.32 + 0.12 * np.sin(t), -0.12 * w + 0.12 * np.cos(t), 0.018, 0.14, t,
                             edge=0.01)
            gas = np.maximum(gas, 0.12 * branch)
            region |= ellipse(y, x, -0.32 + 0.12 * np.sin(t), -0.12 * w + 0.12 * np.cos(t), 0.06, 0.18, t) > 0.5
    if k + rng.normal(0, 0.7) > 3.6:  # pneumoperitoneum (the severest): football sign, falciform ligament
        football = ellipse(y, x, 0.12, 0.0, 0.5, 0.46 * w, edge=0.06)
        gas = gas + 0.09 * football
        gas -= 0.05 * ((np.abs(x + 0.05) < 0.012) & (np.abs(y - 0.05) < 0.35))
        region |= football > 0.5
    return gas, region


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


def _image(rng: np.random.Generator, n: int, sev: float) -> tuple[np.ndarray, np.ndarray]:
    """Attenuation map (about 0..1) of one radiograph and its lesion mask on the same grid."""
    y, x = grid2(n)
    w = rng.uniform(0.88, 1.04)
    y, x = y - rng.normal(0, 0.03), x - rng.normal(0, 0.04)
    img = _anatomy(rng, y, x, w) * rng.uniform(0.9, 1.1)
    body = ellipse(y, x, 0.12, 0.0, 1.32, 0.74 * w, edge=0.03, power=3.0)
    disease, region = _disease(rng, y, x, w, sev)
    gas = np.maximum(_normal_gas(rng, y, x, w), disease)
    img -= body * ndimage.gaussian_filter(gas, 0.8 * n / 128, truncate=2.5)
    img += _devices(rng, y, x) + 0.015 * smooth_noise(rng, (n, n), n / 40)
    return ndimage.gaussian_filter(img, 0.5 * n / 128), region & (body > 0.5)


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
                          "label": np.where(y == 1, "surgery", "no_surgery"), "xray": "", "lesion_mask": "",
                          "set": [""] * len(internal) + ["external"] * len(external)})
    table = table.assign(**_covariates(rng, y))
    table["_y"] = y
    return table


def _planted(rng: np.random.Generator, table: pd.DataFrame) -> list[Plant]:
    """The near-duplicate pairs: originals internal; the last kind's copy in the external cohort."""
    external = (table["set"] == "external").to_numpy()
    copy_ok = np.stack([~external] * (len(KINDS_2D) - 1) + [external])
    return choose(rng, table["_y"].to_numpy(), table["patient_id"].to_numpy(), KINDS_2D, copy_allowed=copy_ok,
                  source_allowed=~external)


def _radiograph(rng: np.random.Generator, n: int, y: int, plant: Plant | None, kept: dict[int, tuple]
                ) -> tuple[np.ndarray, np.ndarray, tuple, np.ndarray, dict[str, object]]:
    """One case's attenuation map, lesion mask, vendor, stored pixels and VOI elements; a planted copy takes
    its original's (``kept``), transformed."""
    vendor = _VENDORS[int(rng.integers(len(_VENDORS)))]
    mono1 = rng.random() < 0.25
    if plant is None:
        sev = rng.normal(SEPARATION * y, 1.0)
        att, region = _image(rng, n, max(sev, _POSITIVE_FLOOR) if y else sev)
    elif plant.kind == "exact":
        return kept[plant.source]
    else:
        att, region = (transform(a, plant, mask=m) for a, m in ((kept[plant.source][0], False),
                                                                 (kept[plant.source][1], True)))
    stored, voi = dx_pixels(att, rng, vendor[2], mono1, *vendor[3:])
    return att, region, vendor, stored, voi


def make(ctx: Ctx, rng: np.random.Generator) -> pd.DataFrame:
    """Write the NEC radiographs and lesion masks under ``ctx.root`` and return the cohort table.

    Args:
        ctx: where to write, the seed (for UIDs) and the size options.
        rng: the study's generator; every draw is made in a fixed order, so the same seed gives the same files.

    Returns:
        One row per case: ``case_id``, ``patient_id``, ``label``, the ``COLUMNS`` and the 0/1 outcome ``_y``.
    """
    table = _cohort(rng, ctx.scale)
    n = ctx.image_size or 128
    numbers = patient_numbers(rng, len(table))
    plants = _planted(rng, table)
    by_copy, sources = {p.copy: p for p in plants}, {p.source for p in plants}
    kept: dict[int, tuple] = {}
    for i, row in table.iterrows():
        case = _radiograph(rng, n, int(row["_y"]), by_copy.get(i), kept)
        if i in sources:
            kept[i] = case
        _, region, vendor, stored, voi = case
        rel, mask_rel = f"images/{row['case_id']}.dcm", f"masks/{row['case_id']}.png"
        elements = {**dx_elements("DX", n, 200.0 / n, vendor[:2]), **voi,
                    **identity(int(numbers[i]), row["sex"], date(rng)),
                    "StudyInstanceUID": ctx.uid(row["case_id"], "study"),
                    "SeriesInstanceUID": ctx.uid(row["case_id"], "series"), "SeriesNumber": 1,
                    "InstanceNumber": 1, "StudyDescription": "XR ABDOMEN AP NEONATE", "BodyPartExamined": "ABDOMEN",
                    "ViewPosition": "AP", "PatientOrientation": ["R", "F"], "PatientAge": "000D"}
        write_dicom(ctx.path(rel), DX, ctx.uid(row["case_id"], "image"), elements, stored)
        write_png_mask(ctx.path(mask_rel), region)
        table.at[i, "xray"], table.at[i, "lesion_mask"] = rel, mask_rel
    write_sidecar(ctx.root, table, plants, ["xray"])
    return table
