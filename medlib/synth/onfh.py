"""ONFH: an AP and a frog-leg lateral radiograph per hip; outcome failure versus success of hip preservation.

Patients have one or both hips in the cohort (bilateral hips share the patient's covariates). Each view draws
its own severity from ``N(SEPARATION[view] * y, 1)``, larger on the frog-leg view, so AP-only < frog-leg-only <
both views; severity drives the necrotic lesion's extent, sclerotic band, crescent sign and head collapse.
Bone islands in the neck or trochanter appear in both classes. The lesion masks (``lesion_mask_ap``,
``lesion_mask_frog``: PNGs on each DICOM's pixel grid) mark the necrotic segment of the head with its sclerotic
rim, in every hip. Files are DX (GE, Philips) or MONOCHROME1 CR (Siemens) DICOM, left hips mirrored (masks too).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from medlib.synth._common import Ctx, count, date, ellipse, grid2, normal, smooth_noise, with_missing
from medlib.synth._dicom import CR, DX, dx_elements, dx_pixels, identity, patient_numbers, write_dicom, write_png_mask
from medlib.synth._planted import KINDS_2D, Plant, choose, transform, write_sidecar

__all__ = ["COLUMNS", "SEPARATION", "STUDY_CODE", "make"]

STUDY_CODE = 202         # mixed into the seed of the study's generator
SEPARATION = {"ap": 2.4, "frog": 2.8}  # mean latent severity of failures per view, in SD units (success: 0)
COLUMNS = ["ap", "frog", "lesion_mask_ap", "lesion_mask_frog", "age", "sex", "aetiology", "arco_stage", "side", "bmi"]

_VENDORS = {  # manufacturer -> (model, modality, gamma, slope, intercept, MONOCHROME1)
    "GE Healthcare": ("Discovery XR656", "DX", 1.0, 1.0, 0.0, False),
    "Philips Medical Systems": ("DigitalDiagnost", "DX", 0.85, 1.0, 0.0, False),
    "SIEMENS": ("Fluorospot Compact FD", "CR", 1.15, 1.0, -1024.0, True),
}


def _soft(mask: np.ndarray, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(mask.astype(np.float32), sigma, truncate=2.5)


def _edges(soft_mask: np.ndarray, n: int) -> np.ndarray:
    """Bright cortical rim of a soft mask (gradient magnitude, about 0..1)."""
    gy, gx = np.gradient(soft_mask)
    return np.clip(np.sqrt(gy**2 + gx**2) * n / 12, 0, 1)


def _hip_pelvis(rng: np.random.Generator, y: np.ndarray, x: np.ndarray, head: tuple[float, float, float],
                n: int) -> np.ndarray:
    """Right hip crop (patient's right = viewer's left, medial = +x): ilium, acetabular roof, teardrop,
    pubic and ischial rami around the obturator foramen."""
    hy, hx, r = head
    rho = np.sqrt((y - hy) ** 2 + (x - hx) ** 2)
    flare = rng.uniform(0.35, 0.6)
    ilium = (y < hy - 0.45 * r) & (x > hx - 1.1 * r - flare * (hy - 0.45 * r - y))
    medial = (x > hx + 0.9 * r) & (y < hy + 0.5)
    cup = (rho < r + 0.22) & ((x - hx) * 0.5 - (y - hy) * 0.87 > -0.05)
    rami = (ellipse(y, x, hy + 0.82, hx + 0.62, 0.45, 0.4) - ellipse(y, x, hy + 0.84, hx + 0.64, 0.27, 0.21)) > 0.5
    bone = (ilium | medial | cup | rami) & (rho > r + 0.04)
    soft = _soft(bone, 1.2 * n / 128)
    img = soft * (0.17 + 0.03 * smooth_noise(rng, (n, n), 0.8 * n / 128)) + 0.05 * _edges(soft, n)
    roof = (rho > r + 0.04) & (rho < r + 0.1) & ((x - hx) * 0.3 - (y - hy) * 0.95 > 0.55 * r)
    img += 0.1 * _soft(roof, 0.8 * n / 128)
    teardrop = ellipse(y, x, hy + 0.35 * r, hx + 1.25 * r, 0.14, 0.06) - ellipse(y, x, hy + 0.33 * r,
                                                                                 hx + 1.25 * r, 0.1, 0.03)
    return img + 0.08 * np.clip(teardrop, 0, 1)


def _hip_femur(rng: np.random.Generator, y: np.ndarray, x: np.ndarray, head: tuple[float, float, float],
               head_mask: np.ndarray, frog: bool, n: int) -> np.ndarray:
    """Proximal femur (head, neck, greater and lesser trochanter, shaft). Frog-leg: abducted and externally
    rotated, so the neck is shorter and more horizontal, the shaft runs obliquely and the greater trochanter
    overlaps the neck."""
    hy, hx, r = head
    (ndy, ndx), length = ((0.4, -0.92), 0.62) if frog else ((0.62, -0.78), 0.78)
    along = (y - hy) * ndy + (x - hx) * ndx
    across = np.abs(-(y - hy) * ndx + (x - hx) * ndy)
    neck = (along > 0) & (along < length + 0.1) & (across < 0.62 * r + 0.5 * np.clip(along - 0.5 * length, 0, 1))
    ey, ex = hy + length * ndy, hx + length * ndx
    trochanter = ellipse(y, x, ey - 0.12, ex + (0.12 if frog else -0.1), 0.2, 0.15, 0.3) > 0.5
    sdy, sdx = (0.72, -0.69) if frog else (0.995, -0.1)
    s_along = (y - ey) * sdy + (x - ex) * sdx
    s_across = np.abs(-(y - ey) * sdx + (x - ex) * sdy)
    shaft = (s_along > -0.1) & (s_across < 0.19)
    lt = ellipse(y, x, ey + 0.22, ex + (0.24 if frog else 0.2), 0.08, 0.1 if frog else 0.07) > 0.5
    soft = _soft(head_mask | neck | trochanter | shaft | lt, 1.0 * n / 128)
    canal = _soft(shaft & (s_across < 0.09) & (s_along > 0.25), 1.5 * n / 128)
    texture = 0.025 * smooth_noise(rng, (n, n), 0.7 * n / 128)
    return soft * (0.2 + texture) + 0.07 * _edges(soft, n) - 0.05 * canal


def _hip_head(rng: np.random.Generator, y: np.ndarray, x: np.ndarray, head: tuple[float, float, float],
              sev: float, lesion: float, frog: bool, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Femoral head mask, its anterosuperior necrotic lesion (sclerotic band, mottled sclerosis, subchondral
    crescent, flattening), all growing with the view's severity ``sev``, and the lesion's mask (the necrotic
    segment with its sclerotic rim; the flattened part of the head is inside it)."""
    hy, hx, r = head
    k = float(np.clip(sev, -1.5, 3.5))
    collapse = 0.12 * r * np.clip(k - 0.6, 0, 2.5)
    rho = np.sqrt((y - hy) ** 2 + (x - hx) ** 2)
    mask = (rho < r) & (y > hy - r + collapse)
    ly, lx = hy - 0.5 * r, hx + (0.0 if frog else 0.15) * r
    lr = r * float(np.clip(0.42 + 0.07 * lesion + 0.09 * k, 0.25, 0.9))
    width = 0.035 + 0.008 * np.clip(k, 0, 3)
    dist = np.sqrt((y - ly) ** 2 + ((x - lx) * 0.8) ** 2)
    inside = mask & (dist < lr)
    band = _soft(mask & (np.abs(dist - lr) < width), 0.7 * n / 128)
    img = 0.05 * _soft(mask, 0.9 * n / 128) + (0.05 + 0.035 * np.clip(k, 0, 3)) * band
    img += inside * (0.03 * smooth_noise(rng, (n, n), 2.0 * n / 128) + 0.02 * np.clip(k, 0, 3))
    crescent = inside & (rho > r - 0.1) & (rho < r - 0.03) & (y < hy - collapse - 0.3 * r)
    img -= 0.09 * np.clip(k - 0.3, 0, 2.5) * _soft(crescent, 0.6 * n / 128)
    lesion_mask = (rho < r) & (y > hy - r - 0.02) & (dist < lr + width)
    return img, mask, lesion_mask


def _bone_island(rng: np.random.Generator, y: np.ndarray, x: np.ndarray, head: tuple[float, float, float]
                 ) -> np.ndarray:
    """A dense enostosis in the neck or trochanter of 40% of hips in both classes: mimics sclerosis."""
    if rng.random() >= 0.4:
        return np.zeros(np.broadcast_shapes(y.shape, x.shape), np.float32)
    hy, hx, r = head
    cy, cx, size = hy + rng.uniform(0.35, 0.75), hx - rng.uniform(0.2, 0.5), rng.uniform(0.03, 0.05)
    return rng.uniform(0.05, 0.09) * ellipse(y, x, cy, cx, size, size * rng.uniform(0.7, 1.3), edge=0.02)


def _hip_image(rng: np.random.Generator, n: int, sev: float, lesion: float, frog: bool, left: bool
               ) -> tuple[np.ndarray, np.ndarray]:
    """Attenuation map of a hip radiograph crop (AP or frog-leg lateral) and its lesion mask, both mirrored
    for a left hip."""
    y, x = grid2(n)
    # where the femoral head lies in the crop varies (positioning, field of view), so that a map pointing at the
    # image centre does not find the necrotic segment by default
    head = (rng.uniform(-0.45, 0.2), rng.uniform(-0.3, 0.35), rng.uniform(0.27, 0.32))
    lesion_img, head_mask, lesion_mask = _hip_head(rng, y, x, head, sev, lesion, frog, n)
    img = 0.2 + 0.05 * y + 0.03 * smooth_noise(rng, (n, n), n / 10)
    img = img + _hip_pelvis(rng, y, x, head, n) + _hip_femur(rng, y, x, head, head_mask, frog, n) + lesion_img
    img = img + _bone_island(rng, y, x, head)
    img = ndimage.gaussian_filter(img, 0.5 * n / 128) * rng.uniform(0.92, 1.08)
    return (img[:, ::-1], lesion_mask[:, ::-1]) if left else (img, lesion_mask)


def _patients(rng: np.random.Generator, scale: float) -> pd.DataFrame:
    n_pat = count(339, scale)
    n_bilateral = min(n_pat - 1, count(93, scale, 5))
    bilateral = rng.permutation(np.r_[np.ones(n_bilateral, bool), np.zeros(n_pat - n_bilateral, bool)])
    return pd.DataFrame({
        "patient_id": [f"ONFH-{i + 1:04d}" for i in range(n_pat)], "bilateral": bilateral,
        "frailty": rng.normal(0, 1, n_pat),
        "age": np.round(normal(rng, 38, 10, 18, 65, n_pat)).astype(int),
        "sex": np.where(rng.random(n_pat) < 0.7, "M", "F"),
        "aetiology": rng.choice(["steroid", "alcohol", "idiopathic", "trauma"], n_pat, p=[0.4, 0.3, 0.22, 0.08]),
        "bmi": np.round(normal(rng, 24.2, 3.2, 16, 38, n_pat), 1),
        "vendor": rng.choice(list(_VENDORS), n_pat),
    })


def _hips(rng: np.random.Generator, patients: pd.DataFrame, scale: float) -> pd.DataFrame:
    """One row per hip; failures go to the hips with the highest patient frailty + noise (exact count)."""
    rows = []
    for _, p in patients.iterrows():
        sides = ["L", "R"] if p["bilateral"] else [str(rng.choice(["L", "R"]))]
        rows += [{**p.to_dict(), "side": s, "case_id": f"{p['patient_id']}-{s}"} for s in sides]
    hips = pd.DataFrame(rows)
    n_fail = max(10, round(len(hips) * 123 / 432))
    risk = hips["frailty"].to_numpy() + rng.normal(0, 1, len(hips))
    risk += 0.4 * (hips["aetiology"] == "steroid") + 0.02 * (hips["age"] - 38)
    y = np.zeros(len(hips), int)
    y[np.argsort(-risk, kind="stable")[:n_fail]] = 1
    p_stage = np.where(y[:, None] == 1, [0.3, 0.38, 0.32], [0.5, 0.34, 0.16])
    hips["arco_stage"] = [rng.choice(["II", "IIIA", "IIIB"], p=p) for p in p_stage]
    hips["bmi"] = with_missing(rng, hips["bmi"].to_numpy(), 0.05)
    hips["_y"] = y
    return hips


def _views(rng: np.random.Generator, n: int, hip: pd.Series, plant: Plant | None, kept: dict[int, dict]
           ) -> dict[str, tuple]:
    """Per view: attenuation map, lesion mask, stored pixels and VOI elements; a planted copy takes its
    original's hip (both views), transformed (an exact copy: the same stored pixels)."""
    lesion = rng.normal(0, 1)
    _, _, gamma, slope, intercept, mono1 = _VENDORS[hip["vendor"]]
    out = {}
    for view, frog in (("ap", False), ("frog", True)):
        if plant is None:
            sev = rng.normal(SEPARATION[view] * hip["_y"], 1.0)
            att, region = _hip_image(rng, n, sev, lesion, frog, hip["side"] == "L")
        elif plant.kind == "exact":
            out[view] = kept[plant.source][view]
            continue
        else:
            source = kept[plant.source][view]
            att, region = transform(source[0], plant), transform(source[1], plant, mask=True)
        out[view] = (att, region, *dx_pixels(att, rng, gamma, mono1, slope, intercept))
    return out


def make(ctx: Ctx, rng: np.random.Generator) -> pd.DataFrame:
    """Write the ONFH hip radiographs (AP and frog-leg per hip) and their lesion masks under ``ctx.root`` and
    return the cohort table.

    Args:
        ctx: where to write, the seed (for UIDs) and the size options.
        rng: the study's generator; every draw is made in a fixed order, so the same seed gives the same files.

    Returns:
        One row per case: ``case_id``, ``patient_id``, ``label``, the ``COLUMNS`` and the 0/1 outcome ``_y``.
    """
    hips = _hips(rng, _patients(rng, ctx.scale), ctx.scale)
    n = ctx.image_size or 128
    numbers = dict(zip(hips["patient_id"].unique(), patient_numbers(rng, hips["patient_id"].nunique())))
    dates = {pid: date(rng) for pid in hips["patient_id"].unique()}
    plants = choose(rng, hips["_y"].to_numpy(), hips["patient_id"].to_numpy(), KINDS_2D)
    hips = hips.assign(ap="", frog="", lesion_mask_ap="", lesion_mask_frog="")
    by_copy, sources, kept = {p.copy: p for p in plants}, {p.source for p in plants}, {}
    for i, hip in hips.iterrows():
        model, modality = _VENDORS[hip["vendor"]][:2]
        views = _views(rng, n, hip, by_copy.get(i), kept)
        if i in sources:
            kept[i] = views
        for view, (_, region, stored, voi) in views.items():
            rel, mask_rel = f"images/{hip['case_id']}_{view}.dcm", f"masks/{hip['case_id']}_{view}.png"
            elements = {**dx_elements(modality, n, 90.0 / n, (hip["vendor"], model)), **voi,
                        **identity(int(numbers[hip["patient_id"]]), hip["sex"], dates[hip["patient_id"]]),
                        "StudyInstanceUID": ctx.uid(hip["patient_id"], "study"),
                        "SeriesInstanceUID": ctx.uid(hip["case_id"], view, "series"),
                        "SeriesNumber": 1 if view == "ap" else 2, "InstanceNumber": 1 if hip["side"] == "R" else 2,
                        "StudyDescription": "XR HIP 2 VIEWS", "BodyPartExamined": "HIP", "Laterality": hip["side"],
                        "ViewPosition": "AP", "SeriesDescription": "AP" if view == "ap" else "FROG LEG LATERAL",
                        "PatientAge": f"{int(hip['age']):03d}Y"}
            sop = CR if modality == "CR" else DX
            write_dicom(ctx.path(rel), sop, ctx.uid(hip["case_id"], view, "image"), elements, stored)
            write_png_mask(ctx.path(mask_rel), region)
            hips.at[i, view], hips.at[i, f"lesion_mask_{view}"] = rel, mask_rel
    hips["label"] = np.where(hips["_y"] == 1, "failure", "success")
    write_sidecar(ctx.root, hips, plants, ["ap", "frog"])
    return hips
