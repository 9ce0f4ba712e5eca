"""ICH: a non-contrast head CT and a hematoma mask per patient; outcome hematoma expansion versus none.

A latent severity drawn from ``N(SEPARATION * y, 1)`` drives the hematoma's volume, surface irregularity and
density heterogeneity (hypodense "swirl" islands). About half the patients are a CT series (one file per slice,
file names shuffled, InstanceNumber counting from the top of the head, so only ImagePositionPatient gives the
slice order); the rest are NIfTI. Masks (and NIfTI CT) use the layout an ITK DICOM-to-NIfTI conversion writes:
voxel (i, j, k) = (column, row, slice in ascending patient z), affine ``diag(-dx, -dy, dz)`` in RAS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage

from medlib.synth._common import Ctx, count, date, labels, normal, sigmoid, smooth_noise, with_missing
from medlib.synth._dicom import CT, SeriesWriter, identity, patient_numbers, write_nifti
from medlib.synth._planted import KINDS_CT, Plant, choose, transform, write_sidecar

__all__ = ["COLUMNS", "SEPARATION", "STUDY_CODE", "make"]

STUDY_CODE = 303         # mixed into the seed of the study's generator
SEPARATION = 2.1         # mean latent severity of the expansion class, in SD units (no expansion: 0)
COLUMNS = ["ct", "mask", "age", "sex", "onset_to_ct_hours", "glucose_mmol_l", "systolic_bp", "gcs",
           "anticoagulant"]


@dataclass(frozen=True)
class _CTGeometry:
    shape: tuple[int, int, int]       # (slices, rows, columns)
    spacing: tuple[float, float, float]  # (dz, dy, dx) in mm
    origin: tuple[float, float, float]   # LPS (x, y, z) of the first voxel of the lowest slice

    def coords(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """z, y, x in mm relative to the volume centre, broadcastable over (slices, rows, columns)."""
        out = []
        for axis, (n, d) in enumerate(zip(self.shape, self.spacing)):
            c = ((np.arange(n) - (n - 1) / 2) * d).astype(np.float32)
            out.append(c.reshape([-1 if a == axis else 1 for a in range(3)]))
        return out[0], out[1], out[2]

    def affine(self) -> np.ndarray:
        """RAS affine of the (column, row, slice) voxel layout an ITK DICOM-to-NIfTI conversion writes."""
        dz, dy, dx = self.spacing
        x0, y0, z0 = self.origin
        return np.array([[-dx, 0, 0, -x0], [0, -dy, 0, -y0], [0, 0, dz, z0], [0, 0, 0, 1]], float)


def _ct_geometry(rng: np.random.Generator, size: int | None) -> _CTGeometry:
    n = size or 96
    d = 200.0 / n * rng.uniform(0.95, 1.05)
    dz = float(rng.choice([0.9, 1.0, 1.0, 1.0, 1.2]))
    shape = (40, n, n)
    origin = (-(n - 1) / 2 * d + rng.normal(0, 2), -(n - 1) / 2 * d + rng.normal(0, 2), rng.uniform(20, 60))
    return _CTGeometry(shape, (dz, round(d, 4), round(d, 4)), tuple(round(v, 3) for v in origin))


def _head_ct(rng: np.random.Generator, geo: _CTGeometry) -> tuple[np.ndarray, dict[str, float]]:
    """Head at the level of the lateral ventricles, in HU: scalp, skull, cortex, white matter, CSF."""
    z, y, x = geo.coords()
    ax, ay = rng.uniform(68, 76), rng.uniform(84, 92)
    shrink = np.sqrt(np.clip(1 - ((z - rng.uniform(-60, -40)) / 115) ** 2, 0.2, 1))
    depth = (1 - np.sqrt((x / ax) ** 2 + (y / ay) ** 2) / shrink) * np.float32(np.sqrt(ax * ay)) * shrink
    skull = 650 + 650 * np.abs((depth - 3.5) / 3.2 - 1)
    hu = np.where(depth < 0, np.float32(-1000), np.where(depth < 3.5, np.float32(12), skull))
    hu = np.where(depth >= 10, np.float32(28), hu)
    plane = (1, geo.shape[1], geo.shape[2])  # two 2D gyral patterns blended along z (cheaper than 3D noise)
    phase = z * np.float32(2 * np.pi / 18) + np.float32(rng.uniform(0, 2 * np.pi))
    sulci = (smooth_noise(rng, plane, (0, 2.5 / geo.spacing[1], 2.5 / geo.spacing[2])) * np.cos(phase)
             + smooth_noise(rng, plane, (0, 2.5 / geo.spacing[1], 2.5 / geo.spacing[2])) * np.sin(phase))
    hu = np.where((depth >= 10) & (depth < 15), np.where(sulci > 0.9, np.float32(6), np.float32(38)), hu)
    hu = np.where((depth >= 10) & (depth < 11), np.float32(8), hu)
    bend = rng.uniform(0.006, 0.01)
    for side in (-1, 1):
        gm = ((x - side * 21) / 9) ** 2 + ((y - 2) / 17) ** 2 + (z / 14) ** 2 < 1
        horn = (np.abs(x - side * (4.5 + bend * (y + 4) ** 2)) < 3.2 * np.clip(1 - (z - 4) ** 2 / 110, 0, 1))
        vent = horn & (np.abs(y + 4) < 27)
        plexus = ((x - side * 13) ** 2 + (y - 19) ** 2 + (z - 4) ** 2) < 6
        hu = np.where(gm & (depth > 15), np.float32(36), hu)
        hu = np.where(vent | plexus, np.where(plexus, np.float32(110), np.float32(5)), hu)
    hu = np.where((np.abs(x) < 1.2) & (np.abs(y + 4) > 30) & (depth > 10), np.float32(46), hu)
    return hu.astype(np.float32), {"ax": ax, "ay": ay}


def _box(geo: _CTGeometry, centre: np.ndarray, half_mm: float) -> tuple[slice, slice, slice]:
    """Index ranges (slices, rows, columns) of a cube of half-size ``half_mm`` around ``centre`` (z, y, x)."""
    out = []
    for c, n, d in zip(centre, geo.shape, geo.spacing):
        mid = c / d + (n - 1) / 2
        out.append(slice(max(0, int(np.floor(mid - half_mm / d))), min(n, int(np.ceil(mid + half_mm / d)) + 1)))
    return out[0], out[1], out[2]


def _hematoma_mask(rng: np.random.Generator, coords: tuple[np.ndarray, ...], spacing: tuple[float, ...],
                   centre: np.ndarray, radii: np.ndarray, irregular: float) -> np.ndarray:
    """Ellipsoid with a noisy (lobulated) surface and satellite blobs, as a boolean volume."""
    z, y, x = coords
    shape = np.broadcast_shapes(z.shape, y.shape, x.shape)
    r = float(np.mean(radii))
    field = smooth_noise(rng, shape, tuple(0.3 * r / s for s in spacing))
    angle = rng.uniform(0, np.pi)
    u = ((x - centre[2]) * np.cos(angle) + (y - centre[1]) * np.sin(angle)) / radii[2]
    v = (-(x - centre[2]) * np.sin(angle) + (y - centre[1]) * np.cos(angle)) / radii[1]
    mask = np.sqrt(u**2 + v**2 + ((z - centre[0]) / radii[0]) ** 2) < 1 + irregular * field
    for _ in range(int(rng.poisson(10 * irregular))):
        direction = rng.normal(0, 1, 3)
        c = centre + 0.9 * radii * direction / np.linalg.norm(direction)
        rs = r * rng.uniform(0.25, 0.45)
        mask |= ((z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2) < rs**2
    return mask


def _hematoma_shape(rng: np.random.Generator, head: dict[str, float], sev: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Centre (z, y, x) and semi-axes of the hematoma; larger with severity."""
    volume_ml = float(np.clip(np.exp(rng.normal(np.log(11) + 0.3 * sev, 0.5)), 2.5, 70))
    r = (3 * volume_ml * 1000 / (4 * np.pi)) ** (1 / 3)
    stretch = rng.uniform(0.8, 1.25, 2)
    radii = np.array([min(r / stretch.prod(), 14.0), r * stretch[0], r * stretch[1]])
    side = rng.choice([-1, 1])
    deep = rng.random() < 0.6
    cx = side * (rng.uniform(16, 28) if deep else rng.uniform(28, max(29.0, head["ax"] - 20 - 0.8 * radii[1:].max())))
    cy = rng.uniform(-12, 15) if deep else rng.uniform(-0.4, 0.4) * head["ay"]
    return np.array([rng.normal(0, 3), cy, cx]), radii


def _volume(rng: np.random.Generator, geo: _CTGeometry, sev: float) -> tuple[np.ndarray, np.ndarray]:
    """CT volume in HU (slices, rows, columns) and the uint8 hematoma mask on the same grid.

    Severity drives the hematoma's volume, surface irregularity (lobules, satellites) and density
    heterogeneity (including hypodense "swirl" islands)."""
    hu, head = _head_ct(rng, geo)
    centre, radii = _hematoma_shape(rng, head, sev)
    box = _box(geo, centre, 1.7 * radii.max() + 8)
    coords = tuple(c[tuple(b if c.shape[a] > 1 else slice(None) for a, b in enumerate(box))]
                   for c in geo.coords())
    irregular = float(np.clip(0.05 + 0.2 * sigmoid(1.4 * sev - 1.0) + rng.normal(0, 0.03), 0.02, 0.4))
    mask = _hematoma_mask(rng, coords, geo.spacing, centre, radii, irregular)
    blood = rng.uniform(58, 72) + (2 + 9 * float(sigmoid(1.4 * sev - 1.0))) * smooth_noise(
        rng, mask.shape, tuple(1.5 / s for s in geo.spacing))
    if rng.random() < sigmoid(1.5 * sev - 1.5):  # swirl / blend sign: hypodense islands
        islands = smooth_noise(rng, mask.shape, tuple(3 / s for s in geo.spacing)) > 0.9
        blood = np.where(islands, np.float32(rng.uniform(34, 44)), blood)
    edema = ndimage.binary_dilation(mask, iterations=2) & ~mask
    local = hu[box]
    local = np.where(edema & (local > 0) & (local < 100), np.float32(19), local)
    hu[box] = np.where(mask, blood, local)
    full = np.zeros(geo.shape, np.uint8)
    full[box] = mask
    hu = ndimage.gaussian_filter(hu, (0.3, 0.6, 0.6), truncate=2.5)
    hu += 3.5 * rng.standard_normal(geo.shape, dtype=np.float32)
    return np.clip(np.rint(hu), -1024, 3071).astype(np.int16), full


def _write_ct_series(ctx: Ctx, rng: np.random.Generator, folder: str, hu: np.ndarray, geo: _CTGeometry,
                     header: dict[str, object]) -> None:
    """One file per slice, InstanceNumber from the top, file names in shuffled order."""
    signed = rng.random() < 0.5
    intercept = 0 if signed else -1024
    shared = {**header, "Rows": geo.shape[1], "Columns": geo.shape[2], "SamplesPerPixel": 1,
              "PhotometricInterpretation": "MONOCHROME2", "BitsAllocated": 16, "BitsStored": 16 if signed else 12,
              "HighBit": 15 if signed else 11, "PixelRepresentation": int(signed),
              "PixelSpacing": [f"{geo.spacing[1]:g}", f"{geo.spacing[2]:g}"], "SliceThickness": f"{geo.spacing[0]:g}",
              "ImageOrientationPatient": ["1", "0", "0", "0", "1", "0"], "RescaleIntercept": str(intercept),
              "RescaleSlope": "1", "RescaleType": "HU", "WindowCenter": "40", "WindowWidth": "80"}
    uids = [ctx.uid(folder, "slice", k) for k in range(geo.shape[0])]
    writer = SeriesWriter(CT, ctx.uid(folder, "template"), shared)
    names = rng.permutation(geo.shape[0]) + 1
    x0, y0, z0 = geo.origin
    for k in range(geo.shape[0]):
        z = z0 + k * geo.spacing[0]
        stored = (hu[k] - intercept).astype(np.int16 if signed else np.uint16)
        varying = {"InstanceNumber": geo.shape[0] - k, "ImagePositionPatient": [f"{x0:g}", f"{y0:g}", f"{z:.3f}"],
                   "SliceLocation": f"{z:.3f}"}
        writer.write(ctx.path(f"{folder}/IM{names[k]:04d}.dcm"), uids[k], varying, stored)


def _ct_header(ctx: Ctx, rng: np.random.Generator, row: pd.Series, number: int) -> dict[str, object]:
    vendor = [("SIEMENS", "SOMATOM Definition AS"), ("GE MEDICAL SYSTEMS", "Revolution CT"),
              ("Philips", "iCT 256"), ("TOSHIBA", "Aquilion ONE")][int(rng.integers(4))]
    return {"ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"], "Modality": "CT", "Manufacturer": vendor[0],
            "ManufacturerModelName": vendor[1], **identity(number, row["sex"], date(rng)),
            "StudyDescription": "CT HEAD WO CONTRAST", "SeriesDescription": "HEAD 1mm", "BodyPartExamined": "HEAD",
            "PatientAge": f"{int(row['age']):03d}Y", "KVP": "120", "PatientPosition": "HFS",
            "StudyInstanceUID": ctx.uid(row["case_id"], "study"),
            "SeriesInstanceUID": ctx.uid(row["case_id"], "series"),
            "FrameOfReferenceUID": ctx.uid(row["case_id"], "frame"), "SeriesNumber": 2, "AcquisitionNumber": 1}


def _covariates(rng: np.random.Generator, y: np.ndarray) -> dict[str, np.ndarray]:
    n = len(y)
    return {
        "age": np.round(normal(rng, np.where(y == 1, 63, 60), 12, 25, 92, n)).astype(int),
        "sex": np.where(rng.random(n) < 0.62, "M", "F"),
        "onset_to_ct_hours": np.round(np.clip(np.exp(rng.normal(np.where(y == 1, 0.75, 1.0), 0.45, n)), 0.3, 6), 1),
        "glucose_mmol_l": with_missing(rng, np.round(normal(rng, np.where(y == 1, 7.6, 6.8), 1.8, 3.5, 20, n), 1),
                                       0.05),
        "systolic_bp": np.round(normal(rng, np.where(y == 1, 176, 166), 24, 100, 240, n)).astype(int),
        "gcs": np.round(normal(rng, np.where(y == 1, 12.6, 13.6), 2.2, 3, 15, n)).astype(int),
        "anticoagulant": np.where(rng.random(n) < np.where(y == 1, 0.18, 0.08), "yes", "no"),
    }


def make(ctx: Ctx, rng: np.random.Generator) -> pd.DataFrame:
    """Write the ICH CT series or NIfTI volumes and hematoma masks under ``ctx.root`` and return the cohort table.

    Args:
        ctx: where to write, the seed (for UIDs) and the size options.
        rng: the study's generator; every draw is made in a fixed order, so the same seed gives the same files.

    Returns:
        One row per case: ``case_id``, ``patient_id``, ``label``, the ``COLUMNS`` and the 0/1 outcome ``_y``.
    """
    n_pos = count(70, ctx.scale)
    y = labels(rng, n_pos, max(count(235, ctx.scale) - n_pos, 10))
    ids = [f"ICH-{i + 1:04d}" for i in range(len(y))]
    table = pd.DataFrame({"case_id": ids, "patient_id": ids, "label": np.where(y == 1, "expansion", "no_expansion"),
                          "ct": "", "mask": "", **_covariates(rng, y), "_y": y})
    as_dicom = rng.permutation(len(y)) < (len(y) + 1) // 2
    numbers = patient_numbers(rng, len(y))
    plants = choose(rng, y, table["patient_id"].to_numpy(), KINDS_CT)
    by_copy, sources, kept = {p.copy: p for p in plants}, {p.source for p in plants}, {}
    for i, row in table.iterrows():
        case = _case(rng, ctx.image_size, int(row["_y"]), by_copy.get(i), kept)
        if i in sources:
            kept[i] = case
        geo, hu, mask = case
        mask_xyz = np.ascontiguousarray(mask.transpose(2, 1, 0))
        write_nifti(ctx.path(f"masks/{row['case_id']}.nii.gz"), mask_xyz, geo.affine())
        table.at[i, "mask"] = f"masks/{row['case_id']}.nii.gz"
        if as_dicom[i]:
            header = _ct_header(ctx, rng, row, int(numbers[i]))
            _write_ct_series(ctx, rng, f"ct/{row['case_id']}", hu, geo, header)
            table.at[i, "ct"] = f"ct/{row['case_id']}"
        else:
            write_nifti(ctx.path(f"ct/{row['case_id']}.nii.gz"), np.ascontiguousarray(hu.transpose(2, 1, 0)),
                        geo.affine(), level=1)
            table.at[i, "ct"] = f"ct/{row['case_id']}.nii.gz"
    write_sidecar(ctx.root, table, plants, ["ct"])
    return table


def _case(rng: np.random.Generator, size: int | None, y: int, plant: Plant | None, kept: dict[int, tuple]
          ) -> tuple[_CTGeometry, np.ndarray, np.ndarray]:
    """Geometry, HU volume (int16) and hematoma mask of one case; a planted copy takes its original's
    (rotated in the axial plane, or recalibrated by a gain and offset with new noise)."""
    if plant is None:
        geo = _ct_geometry(rng, size)
        return (geo, *_volume(rng, geo, rng.normal(SEPARATION * y, 1.0)))
    geo, hu, mask = kept[plant.source]
    if plant.kind == "exact":
        return geo, hu, mask
    moved = transform(hu.astype(np.float32), plant, plane=(1, 2), value_range=100.0)
    if plant.kind == "intensity":
        moved += 3.5 * rng.standard_normal(moved.shape, dtype=np.float32)
    hu = np.clip(np.rint(moved), -1024, 3071).astype(np.int16)
    return geo, hu, transform(mask, plant, mask=True, plane=(1, 2))
