"""Synthetic cohorts shaped like the four seed studies, written as the files a hospital would export.

``generate(study, out_dir)`` writes ``out_dir/<study>/``: the images (DICOM radiographs, a CT series per
folder or NIfTI volumes) and ``manifest.csv`` with ``case_id, patient_id, label``, one column per image input
(paths relative to the manifest), ``mask`` (ICH), ``set`` (NEC: ``external`` marks the external test cohort)
and clinical covariates. Everything is drawn from one ``np.random.Generator`` seeded from ``seed`` and the
study name, so the same seed gives byte-identical files.

The outcome is learnable from the images but not trivially: each case gets a latent severity drawn from
``N(d * y, 1)`` (``y`` = 1 for the class named in ``_SEPARATION``), and the image findings (NEC: dilated loops,
pneumatosis, portal venous gas, free air; ONFH: lesion extent, crescent sign, head collapse; ICH: hematoma
irregularity, heterogeneity and volume; glioma: rim enhancement versus "soap-bubble" pattern and T2 edema)
follow the severity, so classes overlap. ONFH draws an independent severity per view with a larger
separation on the frog-leg view, so AP-only < frog-leg-only < both views.

What a reader must handle, on purpose:
    * NEC/ONFH radiographs: 12-bit stored values with RescaleSlope/Intercept and a VOI window; about a quarter
      of NEC images (and the Siemens CR hips) are MONOCHROME1 with inverted pixel values.
    * ICH: about half the patients are a CT series (one file per slice, file names in shuffled order and
      InstanceNumber counting from the top of the head, so only ImagePositionPatient gives the slice order);
      the rest are NIfTI. Masks are NIfTI in the layout a DICOM-to-NIfTI converter (ITK/SimpleITK) writes:
      voxel (i, j, k) = (column, row, slice in ascending patient z), affine = the series geometry in RAS
      (``diag(-dx, -dy, dz)`` for axial slices). NIfTI CT volumes use the same layout and affine.
    * Glioma: three co-registered NIfTI volumes in RAS+ voxel order with arbitrary, per-scan intensity scales.

Every DICOM header carries the fake identifiers in ``PLANTED_IDENTIFIERS`` (PatientID varies per patient
behind a fixed ``PLANTEDID-`` prefix) so de-identification tests can prove they are stripped; the manifest
carries only pseudonymous study codes.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import nibabel as nib
import numpy as np
import pandas as pd
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid
from scipy import ndimage

__all__ = ["PLANTED_IDENTIFIERS", "STUDIES", "generate", "generate_all", "planted_identifier_strings"]

STUDIES = ("nec", "onfh", "ich", "glioma")
_STUDY_CODES = {"nec": 101, "onfh": 202, "ich": 303, "glioma": 404}

PLANTED_IDENTIFIERS: dict[str, str] = {
    "PatientName": "SYNTH^PLANTED^NAME",
    "PatientID": "PLANTEDID-",                      # prefix: each patient gets PLANTEDID-<6 digits>
    "PatientBirthDate": "19010203",
    "InstitutionName": "PLANTED GENERAL HOSPITAL",
    "InstitutionAddress": "1 PLANTED ROAD PLANTEDTOWN",
    "ReferringPhysicianName": "PLANTED^REFERRING^DOCTOR",
    "AccessionNumber": "PLANTEDACC",                # prefix: PLANTEDACC<6 digits>
}

# Mean latent severity of the "abnormal" class in SD units (the other class has mean 0).
_SEPARATION = {"nec": 1.9, "onfh_ap": 1.2, "onfh_frog": 1.45, "ich": 2.1, "glioma": 2.0}

_DX = "1.2.840.10008.5.1.4.1.1.1.1"   # Digital X-Ray Image Storage - For Presentation
_CR = "1.2.840.10008.5.1.4.1.1.1"     # Computed Radiography Image Storage
_CT = "1.2.840.10008.5.1.4.1.1.2"     # CT Image Storage


def planted_identifier_strings() -> list[str]:
    """The planted identifier values (fixed strings and prefixes) to search de-identified outputs for.

    Returns:
        The values of ``PLANTED_IDENTIFIERS`` (PatientID and AccessionNumber as their fixed prefixes), plus the
        person names with ``^`` written as spaces (as a formatter may print them), longest first.
    """
    found = set(PLANTED_IDENTIFIERS.values())
    found.update(PLANTED_IDENTIFIERS[key].replace("^", " ") for key in ("PatientName", "ReferringPhysicianName"))
    return sorted(found, key=lambda s: (-len(s), s))


# --------------------------------------------------------------------------------------------- generic helpers
@dataclass(frozen=True)
class _Ctx:
    """What a study writer needs: where to write, the seed (for UIDs) and the size options."""

    study: str
    seed: int
    root: Path
    scale: float
    image_size: int | None

    def uid(self, *parts: object) -> str:
        """A DICOM UID that is deterministic for the seed, study and ``parts`` (always 64 characters)."""
        return generate_uid(entropy_srcs=["medlib.synth", self.study, str(self.seed), *map(str, parts)])

    def path(self, relative: str) -> Path:
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        return target


def _count(n: int, scale: float, minimum: int = 10) -> int:
    return max(minimum, int(round(n * scale)))


def _sigmoid(x: np.ndarray | float) -> np.ndarray | float:
    return 1.0 / (1.0 + np.exp(-x))


def _labels(rng: np.random.Generator, n_pos: int, n_neg: int) -> np.ndarray:
    """0/1 labels with exact counts, in random order."""
    return rng.permutation(np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)])


def _normal(rng: np.random.Generator, mean: np.ndarray | float, sd: float, lo: float, hi: float,
            size: int) -> np.ndarray:
    return np.clip(rng.normal(mean, sd, size), lo, hi)


def _with_missing(rng: np.random.Generator, values: np.ndarray, fraction: float) -> np.ndarray:
    """A float copy with ``max(1, round(fraction * n))`` randomly chosen values set to NaN."""
    out = values.astype(float).copy()
    out[rng.choice(len(out), size=max(1, int(round(fraction * len(out)))), replace=False)] = np.nan
    return out


def _grid2(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row (y, downwards) and column (x, rightwards) coordinates in [-1, 1], broadcastable."""
    c = ((np.arange(n, dtype=np.float32) + 0.5) / n * 2 - 1).astype(np.float32)
    return c[:, None], c[None, :]


def _ellipse(y: np.ndarray, x: np.ndarray, cy: float, cx: float, ry: float, rx: float, angle: float = 0.0,
             edge: float = 0.015, power: float = 2.0) -> np.ndarray:
    """Anti-aliased filled (super-)ellipse in [0, 1]; ``edge`` is the soft border width in grid units."""
    c, s = np.cos(angle), np.sin(angle)
    u = np.abs(((x - cx) * c + (y - cy) * s) / rx)
    v = np.abs((-(x - cx) * s + (y - cy) * c) / ry)
    d = (u**power + v**power) ** (1.0 / power)
    return np.clip((1.0 - d) * min(rx, ry) / edge + 0.5, 0.0, 1.0).astype(np.float32)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float | tuple[float, ...]) -> np.ndarray:
    """Gaussian-filtered white noise scaled to unit standard deviation."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma)
    return field / (field.std() + 1e-6)


def _date(rng: np.random.Generator, start: str = "2015-01-01", days: int = 3000) -> str:
    return str(np.datetime64(start) + int(rng.integers(days))).replace("-", "")


def _patient_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """Distinct 6-digit numbers for the planted PatientID / AccessionNumber."""
    return 100000 + rng.choice(900000, size=n, replace=False)


def _identity(number: int, sex: str, study_date: str) -> dict[str, object]:
    """The planted patient identity (and visit) elements of a DICOM header."""
    return {
        "StudyDate": study_date, "SeriesDate": study_date, "ContentDate": study_date,
        "StudyTime": "093000", "AccessionNumber": f"{PLANTED_IDENTIFIERS['AccessionNumber']}{number:06d}",
        "InstitutionName": PLANTED_IDENTIFIERS["InstitutionName"],
        "InstitutionAddress": PLANTED_IDENTIFIERS["InstitutionAddress"],
        "ReferringPhysicianName": PLANTED_IDENTIFIERS["ReferringPhysicianName"],
        "PatientName": PLANTED_IDENTIFIERS["PatientName"],
        "PatientID": f"{PLANTED_IDENTIFIERS['PatientID']}{number:06d}",
        "PatientBirthDate": PLANTED_IDENTIFIERS["PatientBirthDate"], "PatientSex": sex,
    }


# ------------------------------------------------------------------------------------------------ file writers
def _file_meta(sop_class: str, sop_uid: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    return meta


def _dataset(elements: dict[str, object]) -> Dataset:
    ds = Dataset()
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    return ds


def _encode(ds: Dataset) -> bytes:
    buf = DicomBytesIO()
    buf.is_little_endian, buf.is_implicit_VR = True, False
    write_dataset(buf, ds)
    return buf.getvalue()


def _encode_meta(meta: FileMetaDataset) -> bytes:
    buf = DicomBytesIO()
    buf.is_little_endian, buf.is_implicit_VR = True, False
    write_file_meta_info(buf, meta, enforce_standard=True)
    return buf.getvalue()


def _pixel_element(pixels: np.ndarray) -> bytes:
    """(7FE0,0010) Pixel Data, explicit VR little endian, OW."""
    data = np.ascontiguousarray(pixels).astype(pixels.dtype.newbyteorder("<"), copy=False).tobytes()
    return b"\xe0\x7f\x10\x00OW\x00\x00" + len(data).to_bytes(4, "little") + data


def _write_dicom(path: Path, sop_class: str, sop_uid: str, elements: dict[str, object],
                 pixels: np.ndarray) -> None:
    """Write one DICOM Part 10 file (preamble, file meta, dataset, pixel data)."""
    body = _dataset({"SOPClassUID": sop_class, "SOPInstanceUID": sop_uid, **elements})
    data = b"\x00" * 128 + b"DICM" + _encode_meta(_file_meta(sop_class, sop_uid)) + _encode(body)
    path.write_bytes(data + _pixel_element(pixels))


class _SeriesWriter:
    """Writes the slices of one series fast: the shared header is encoded once, per slice only the
    varying elements are encoded by pydicom and spliced in tag order."""

    VARYING = ("SOPInstanceUID", "InstanceNumber", "ImagePositionPatient", "SliceLocation")

    def __init__(self, sop_class: str, template_uid: str, shared: dict[str, object]) -> None:
        self.template_uid = template_uid
        self.meta = b"\x00" * 128 + b"DICM" + _encode_meta(_file_meta(sop_class, template_uid))
        common = _dataset({"SOPClassUID": sop_class, **shared})
        tags = [tag_for_keyword(k) for k in self.VARYING]
        bounds = [-1] + tags + [0x7FE00010]
        self.segments = []
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            part = Dataset()
            for elem in common:
                if lo < elem.tag < hi:
                    part.add(elem)
            self.segments.append(_encode(part))

    def write(self, path: Path, sop_uid: str, varying: dict[str, object], pixels: np.ndarray) -> None:
        if len(sop_uid) != len(self.template_uid):
            raise ValueError(f"UID length {len(sop_uid)} differs from the template's {len(self.template_uid)}")
        chunks = [self.meta.replace(self.template_uid.encode(), sop_uid.encode()), self.segments[0]]
        values = {"SOPInstanceUID": sop_uid, **varying}
        for keyword, segment in zip(self.VARYING, self.segments[1:]):
            chunks += [_encode(_dataset({keyword: values[keyword]})), segment]
        path.write_bytes(b"".join(chunks) + _pixel_element(pixels))


def _write_nifti(path: Path, data: np.ndarray, affine: np.ndarray, *, xyzt_units: str = "mm",
                 level: int = 6) -> None:
    """Write a .nii.gz deterministically (gzip mtime 0)."""
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units(xyzt_units)
    img.header.set_qform(affine, code=1)
    img.header.set_sform(affine, code=1)
    path.write_bytes(gzip.compress(img.to_bytes(), compresslevel=level, mtime=0))


def _dx_pixels(att: np.ndarray, rng: np.random.Generator, gamma: float, mono1: bool, slope: float,
               intercept: float) -> tuple[np.ndarray, dict[str, object]]:
    """Attenuation map (about 0..1) -> 12-bit stored values and the matching rescale/VOI elements."""
    raw = np.clip(att, 0.0, 1.2) / 1.2
    raw = 4095.0 * (0.06 + 0.9 * raw) ** gamma + rng.normal(0.0, 18.0, att.shape)
    stored = np.clip(np.rint(raw), 0, 4095).astype(np.uint16)
    if mono1:
        stored = (4095 - stored).astype(np.uint16)
    values = stored.astype(np.float64) * slope + intercept
    lo, hi = np.percentile(values, [1.0, 99.5])
    elements = {
        "PhotometricInterpretation": "MONOCHROME1" if mono1 else "MONOCHROME2",
        "BitsAllocated": 16, "BitsStored": 12, "HighBit": 11, "PixelRepresentation": 0,
        "WindowCenter": f"{(lo + hi) / 2:.1f}", "WindowWidth": f"{max(hi - lo, 1.0):.1f}",
        "RescaleIntercept": f"{intercept:g}", "RescaleSlope": f"{slope:g}", "RescaleType": "US",
    }
    return stored, elements


def _dx_elements(modality: str, rows: int, spacing_mm: float, vendor: tuple[str, str]) -> dict[str, object]:
    return {
        "ImageType": ["ORIGINAL", "PRIMARY"], "Modality": modality, "Manufacturer": vendor[0],
        "ManufacturerModelName": vendor[1], "PresentationIntentType": "FOR PRESENTATION",
        "SamplesPerPixel": 1, "Rows": rows, "Columns": rows,
        "ImagerPixelSpacing": [f"{spacing_mm:.4f}"] * 2, "PixelSpacing": [f"{spacing_mm:.4f}"] * 2,
    }


# ------------------------------------------------------------------------------------------------------ NEC
_NEC_VENDORS = [  # (manufacturer, model, gamma, slope, intercept)
    ("Carestream Health", "DRX-Revolution", 1.0, 1.0, 0.0),
    ("GE Healthcare", "Optima XR220amx", 0.9, 1.0, 0.0),
    ("Philips Medical Systems", "MobileDiagnost wDR", 1.1, 0.5, 0.0),
    ("SIEMENS", "Mobilett Mira Max", 1.0, 1.0, -1024.0),
    ("FUJIFILM Corporation", "FDR nano", 0.95, 1.0, 0.0),
]


def _nec_anatomy(rng: np.random.Generator, y: np.ndarray, x: np.ndarray, w: float) -> np.ndarray:
    """Neonatal chest-abdomen in AP: body, lungs, heart, ribs, spine, liver, pelvis (attenuation)."""
    body = _ellipse(y, x, 0.12, 0.0, 1.32, 0.74 * w, edge=0.03, power=3.0)
    img = body * (0.26 + 0.24 * np.sqrt(np.clip(1 - (x / (0.74 * w)) ** 2, 0, 1)))
    for side in (-1, 1):
        img -= 0.2 * _ellipse(y, x, -0.8, side * 0.3 * w, 0.34, 0.22 * w, edge=0.04)
        img += 0.12 * _ellipse(y, x, 1.05, side * 0.4 * w, 0.26, 0.2 * w, edge=0.03)
        img -= 0.07 * _ellipse(y, x, 1.07, side * 0.4 * w, 0.16, 0.11 * w, edge=0.03)
    img += 0.14 * _ellipse(y, x, -0.74, 0.06, 0.21, 0.21 * w, edge=0.04)
    img += 0.06 * _ellipse(y, x, -0.34, -0.3 * w, 0.2, 0.36 * w, edge=0.05)
    lateral = (np.abs(x) > 0.07) & (np.abs(x) < 0.66 * w)
    for k in range(6):
        img += 0.06 * ((np.abs(y - (-1.12 + 0.12 * k) - 0.5 * (np.abs(x) - 0.07) ** 2 * 2.2) < 0.017) & lateral)
    disc = (np.cos(2 * np.pi * (y + rng.uniform(0, 1)) / 0.09) > -0.45).astype(np.float32)
    img += (np.abs(x) < 0.05) * (0.04 + 0.045 * disc) + 0.03 * (np.abs(np.abs(x) - 0.065) < 0.012)
    return img.astype(np.float32)


def _nec_normal_gas(rng: np.random.Generator, y: np.ndarray, x: np.ndarray, w: float) -> np.ndarray:
    gas = 0.16 * _ellipse(y, x, -0.33, 0.26 * w, 0.09, 0.12 * w, edge=0.03)  # stomach bubble
    for _ in range(int(rng.integers(10, 22))):
        r = rng.uniform(0.03, 0.07)
        blob = _ellipse(y, x, rng.uniform(-0.2, 0.8), rng.uniform(-0.55, 0.55) * w, r * rng.uniform(0.6, 1.4),
                        r, rng.uniform(0, np.pi), edge=0.02)
        gas = np.maximum(gas, 0.15 * blob)
    return gas


def _nec_disease(rng: np.random.Generator, y: np.ndarray, x: np.ndarray, w: float, sev: float) -> np.ndarray:
    """Lucencies (positive = less attenuation) of dilated loops, pneumatosis, portal gas and free air."""
    k = float(np.clip(sev, -1.5, 3.5))
    gas = np.zeros(np.broadcast_shapes(y.shape, x.shape), np.float32)
    for _ in range(int(rng.poisson(max(0.0, 1.0 + 1.1 * k)))):  # dilated loops with thick walls
        cy, cx, a = rng.uniform(-0.15, 0.7), rng.uniform(-0.45, 0.45) * w, rng.uniform(0, np.pi)
        rx, ry = rng.uniform(0.12, 0.22) * (1 + 0.12 * k), rng.uniform(0.05, 0.08) * (1 + 0.12 * k)
        inner = _ellipse(y, x, cy, cx, ry, rx, a, edge=0.02)
        gas = np.maximum(gas, 0.2 * inner)
        gas -= 0.05 * np.clip(k / 2, 0, 1) * (_ellipse(y, x, cy, cx, ry + 0.025, rx + 0.025, a) - inner)
    for _ in range(int(rng.poisson(max(0.0, 2.2 * (k - 0.4))))):  # pneumatosis: bubbly arcs
        cy, cx, rr = rng.uniform(-0.1, 0.7), rng.uniform(-0.45, 0.45) * w, rng.uniform(0.07, 0.13)
        for t in rng.uniform(0, 2 * np.pi, int(rng.integers(6, 12))):
            gas = np.maximum(gas, 0.14 * _ellipse(y, x, cy + rr * np.sin(t), cx + rr * np.cos(t),
                                                  0.016, 0.016, edge=0.012))
    if k + rng.normal(0, 0.7) > 2.0:  # portal venous gas: branching lucencies over the liver
        for t in rng.uniform(2.3, 3.9, int(rng.integers(3, 6))):
            gas = np.maximum(gas, 0.09 * _ellipse(y, x, -0.32 + 0.12 * np.sin(t), -0.12 * w + 0.12 * np.cos(t),
                                                  0.012, 0.13, t, edge=0.01))
    if k + rng.normal(0, 0.7) > 2.5:  # pneumoperitoneum: football sign with the falciform ligament
        gas += 0.09 * _ellipse(y, x, 0.12, 0.0, 0.5, 0.46 * w, edge=0.06)
        gas -= 0.05 * ((np.abs(x + 0.05) < 0.012) & (np.abs(y - 0.05) < 0.35))
    return gas


def _nec_devices(rng: np.random.Generator, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Label-independent clutter: nasogastric tube, umbilical catheter, ECG electrodes."""
    img = np.zeros(np.broadcast_shapes(y.shape, x.shape), np.float32)
    if rng.random() < 0.6:
        img += 0.16 * ((np.abs(x - 0.03 - 0.25 * np.clip(y + 0.5, 0, 1)) < 0.01) & (y < -0.3))
    if rng.random() < 0.4:
        img += 0.16 * ((np.abs(x - 0.02 + 0.08 * (0.4 - y)) < 0.01) & (y > -0.55) & (y < 0.4))
    for _ in range(int(rng.integers(0, 3))):
        cy, cx = rng.uniform(-0.95, -0.5), rng.uniform(-0.6, 0.6)
        img += 0.3 * (_ellipse(y, x, cy, cx, 0.05, 0.05) - 0.6 * _ellipse(y, x, cy, cx, 0.035, 0.035))
    return img


def _nec_image(rng: np.random.Generator, n: int, sev: float) -> np.ndarray:
    y, x = _grid2(n)
    w = rng.uniform(0.88, 1.04)
    y, x = y - rng.normal(0, 0.03), x - rng.normal(0, 0.04)
    img = _nec_anatomy(rng, y, x, w) * rng.uniform(0.9, 1.1)
    body = _ellipse(y, x, 0.12, 0.0, 1.32, 0.74 * w, edge=0.03, power=3.0)
    gas = np.maximum(_nec_normal_gas(rng, y, x, w), _nec_disease(rng, y, x, w, sev))
    img -= body * ndimage.gaussian_filter(gas, 0.8 * n / 128, truncate=2.5)
    img += _nec_devices(rng, y, x) + 0.015 * _smooth_noise(rng, (n, n), n / 40)
    return ndimage.gaussian_filter(img, 0.5 * n / 128)


def _nec_covariates(rng: np.random.Generator, y: np.ndarray) -> dict[str, np.ndarray]:
    n = len(y)
    ga = _normal(rng, np.where(y == 1, 29.6, 31.2), 3.4, 23.0, 40.0, n)
    weight = np.clip(np.exp(np.log(1500) + 0.13 * (ga - 31) + rng.normal(0, 0.16, n)), 450, 4200)
    onset = np.clip(np.round(np.exp(rng.normal(np.where(y == 1, 2.3, 2.5), 0.55, n))), 1, 60)
    return {
        "gestational_age_weeks": np.round(ga, 1), "birth_weight_g": np.round(weight / 10) * 10,
        "sex": np.where(rng.random(n) < np.where(y == 1, 0.6, 0.52), "M", "F"),
        "age_at_onset_days": _with_missing(rng, onset, 0.04),
    }


def _nec_cohort(rng: np.random.Generator, scale: float) -> pd.DataFrame:
    internal = _labels(rng, _count(94, scale), _count(169, scale))
    external = _labels(rng, _count(14, scale, 5), _count(26, scale, 5))
    y = np.r_[internal, external]
    ids = [f"NEC-{i + 1:04d}" for i in range(len(y))]
    table = pd.DataFrame({"case_id": ids, "patient_id": ids,
                          "label": np.where(y == 1, "surgery", "no_surgery"), "xray": "",
                          "set": [""] * len(internal) + ["external"] * len(external)})
    table = table.assign(**_nec_covariates(rng, y))
    table["_y"] = y
    return table


def _make_nec(ctx: _Ctx, rng: np.random.Generator) -> pd.DataFrame:
    table = _nec_cohort(rng, ctx.scale)
    n = ctx.image_size or 128
    numbers = _patient_numbers(rng, len(table))
    for i, row in table.iterrows():
        sev = rng.normal(_SEPARATION["nec"] * row["_y"], 1.0)
        vendor = _NEC_VENDORS[int(rng.integers(len(_NEC_VENDORS)))]
        stored, voi = _dx_pixels(_nec_image(rng, n, sev), rng, vendor[2], rng.random() < 0.25, *vendor[3:])
        rel = f"images/{row['case_id']}.dcm"
        elements = {**_dx_elements("DX", n, 200.0 / n, vendor[:2]), **voi,
                    **_identity(int(numbers[i]), row["sex"], _date(rng)),
                    "StudyInstanceUID": ctx.uid(row["case_id"], "study"),
                    "SeriesInstanceUID": ctx.uid(row["case_id"], "series"), "SeriesNumber": 1,
                    "InstanceNumber": 1, "StudyDescription": "XR ABDOMEN AP NEONATE", "BodyPartExamined": "ABDOMEN",
                    "ViewPosition": "AP", "PatientOrientation": ["R", "F"], "PatientAge": "000D"}
        _write_dicom(ctx.path(rel), _DX, ctx.uid(row["case_id"], "image"), elements, stored)
        table.at[i, "xray"] = rel
    return table


# ----------------------------------------------------------------------------------------------------- ONFH
_ONFH_VENDORS = {  # manufacturer -> (model, modality, gamma, slope, intercept, MONOCHROME1)
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
    rami = (_ellipse(y, x, hy + 0.82, hx + 0.62, 0.45, 0.4) - _ellipse(y, x, hy + 0.84, hx + 0.64, 0.27, 0.21)) > 0.5
    bone = (ilium | medial | cup | rami) & (rho > r + 0.04)
    soft = _soft(bone, 1.2 * n / 128)
    img = soft * (0.17 + 0.03 * _smooth_noise(rng, (n, n), 0.8 * n / 128)) + 0.05 * _edges(soft, n)
    roof = (rho > r + 0.04) & (rho < r + 0.1) & ((x - hx) * 0.3 - (y - hy) * 0.95 > 0.55 * r)
    img += 0.1 * _soft(roof, 0.8 * n / 128)
    teardrop = _ellipse(y, x, hy + 0.35 * r, hx + 1.25 * r, 0.14, 0.06) - _ellipse(y, x, hy + 0.33 * r,
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
    trochanter = _ellipse(y, x, ey - 0.12, ex + (0.12 if frog else -0.1), 0.2, 0.15, 0.3) > 0.5
    sdy, sdx = (0.72, -0.69) if frog else (0.995, -0.1)
    s_along = (y - ey) * sdy + (x - ex) * sdx
    s_across = np.abs(-(y - ey) * sdx + (x - ex) * sdy)
    shaft = (s_along > -0.1) & (s_across < 0.19)
    lt = _ellipse(y, x, ey + 0.22, ex + (0.24 if frog else 0.2), 0.08, 0.1 if frog else 0.07) > 0.5
    soft = _soft(head_mask | neck | trochanter | shaft | lt, 1.0 * n / 128)
    canal = _soft(shaft & (s_across < 0.09) & (s_along > 0.25), 1.5 * n / 128)
    texture = 0.025 * _smooth_noise(rng, (n, n), 0.7 * n / 128)
    return soft * (0.2 + texture) + 0.07 * _edges(soft, n) - 0.05 * canal


def _hip_head(rng: np.random.Generator, y: np.ndarray, x: np.ndarray, head: tuple[float, float, float],
              sev: float, lesion: float, frog: bool, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Femoral head mask and its anterosuperior necrotic lesion (sclerotic band, mottled density,
    subchondral crescent, flattening), all growing with the view's severity ``sev``."""
    hy, hx, r = head
    k = float(np.clip(sev, -1.5, 3.5))
    collapse = 0.09 * r * np.clip(k - 0.5, 0, 2.5)
    rho = np.sqrt((y - hy) ** 2 + (x - hx) ** 2)
    mask = (rho < r) & (y > hy - r + collapse)
    ly, lx = hy - 0.55 * r, hx + (0.0 if frog else 0.15) * r
    lr = r * float(np.clip(0.4 + 0.08 * lesion + 0.1 * k, 0.2, 0.85))
    dist = np.sqrt((y - ly) ** 2 + ((x - lx) * 0.8) ** 2)
    inside = mask & (dist < lr)
    band = _soft(mask & (np.abs(dist - lr) < 0.028), 0.7 * n / 128)
    img = 0.05 * _soft(mask, 0.9 * n / 128) + (0.06 + 0.03 * np.clip(k, 0, 2)) * band
    img += inside * (0.035 * _smooth_noise(rng, (n, n), 0.9 * n / 128) + 0.015 * np.clip(k, 0, 2))
    crescent = inside & (rho > r - 0.07) & (y < hy - collapse - 0.4 * r) & (rho < r - 0.025)
    img -= 0.1 * np.clip(k - 0.3, 0, 2) * _soft(crescent, 0.6 * n / 128)
    return img, mask


def _hip_image(rng: np.random.Generator, n: int, sev: float, lesion: float, frog: bool, left: bool) -> np.ndarray:
    """Attenuation map of a hip radiograph crop (AP or frog-leg lateral), mirrored for a left hip."""
    y, x = _grid2(n)
    head = (rng.normal(-0.12, 0.04), rng.normal(0.05, 0.04), rng.uniform(0.27, 0.32))
    lesion_img, head_mask = _hip_head(rng, y, x, head, sev, lesion, frog, n)
    img = 0.2 + 0.05 * y + 0.03 * _smooth_noise(rng, (n, n), n / 10)
    img = img + _hip_pelvis(rng, y, x, head, n) + _hip_femur(rng, y, x, head, head_mask, frog, n) + lesion_img
    img = ndimage.gaussian_filter(img, 0.5 * n / 128) * rng.uniform(0.92, 1.08)
    return img[:, ::-1] if left else img


def _onfh_patients(rng: np.random.Generator, scale: float) -> pd.DataFrame:
    n_pat = _count(339, scale)
    n_bilateral = min(n_pat - 1, _count(93, scale, 5))
    bilateral = rng.permutation(np.r_[np.ones(n_bilateral, bool), np.zeros(n_pat - n_bilateral, bool)])
    return pd.DataFrame({
        "patient_id": [f"ONFH-{i + 1:04d}" for i in range(n_pat)], "bilateral": bilateral,
        "frailty": rng.normal(0, 1, n_pat),
        "age": np.round(_normal(rng, 38, 10, 18, 65, n_pat)).astype(int),
        "sex": np.where(rng.random(n_pat) < 0.7, "M", "F"),
        "aetiology": rng.choice(["steroid", "alcohol", "idiopathic", "trauma"], n_pat, p=[0.4, 0.3, 0.22, 0.08]),
        "bmi": np.round(_normal(rng, 24.2, 3.2, 16, 38, n_pat), 1),
        "vendor": rng.choice(list(_ONFH_VENDORS), n_pat),
    })


def _onfh_hips(rng: np.random.Generator, patients: pd.DataFrame, scale: float) -> pd.DataFrame:
    """One row per hip; failures go to the hips with the highest patient frailty + noise (exact count)."""
    rows = []
    for _, p in patients.iterrows():
        sides = ["L", "R"] if p["bilateral"] else [str(rng.choice(["L", "R"]))]
        rows += [{**p.to_dict(), "side": s, "case_id": f"{p['patient_id']}-{s}"} for s in sides]
    hips = pd.DataFrame(rows)
    n_fail = max(10, int(round(len(hips) * 123 / 432)))
    risk = hips["frailty"].to_numpy() + rng.normal(0, 1, len(hips))
    risk += 0.4 * (hips["aetiology"] == "steroid") + 0.02 * (hips["age"] - 38)
    y = np.zeros(len(hips), int)
    y[np.argsort(-risk, kind="stable")[:n_fail]] = 1
    p_stage = np.where(y[:, None] == 1, [0.3, 0.38, 0.32], [0.5, 0.34, 0.16])
    hips["arco_stage"] = [rng.choice(["II", "IIIA", "IIIB"], p=p) for p in p_stage]
    hips["bmi"] = _with_missing(rng, hips["bmi"].to_numpy(), 0.05)
    hips["_y"] = y
    return hips


def _make_onfh(ctx: _Ctx, rng: np.random.Generator) -> pd.DataFrame:
    hips = _onfh_hips(rng, _onfh_patients(rng, ctx.scale), ctx.scale)
    n = ctx.image_size or 128
    numbers = dict(zip(hips["patient_id"].unique(), _patient_numbers(rng, hips["patient_id"].nunique())))
    dates = {pid: _date(rng) for pid in hips["patient_id"].unique()}
    hips["ap"], hips["frog"] = "", ""
    for i, hip in hips.iterrows():
        lesion = rng.normal(0, 1)
        model, modality, gamma, slope, intercept, mono1 = _ONFH_VENDORS[hip["vendor"]]
        for view, frog in (("ap", False), ("frog", True)):
            sev = rng.normal(_SEPARATION[f"onfh_{view}"] * hip["_y"], 1.0)
            att = _hip_image(rng, n, sev, lesion, frog, hip["side"] == "L")
            stored, voi = _dx_pixels(att, rng, gamma, mono1, slope, intercept)
            rel = f"images/{hip['case_id']}_{view}.dcm"
            elements = {**_dx_elements(modality, n, 90.0 / n, (hip["vendor"], model)), **voi,
                        **_identity(int(numbers[hip["patient_id"]]), hip["sex"], dates[hip["patient_id"]]),
                        "StudyInstanceUID": ctx.uid(hip["patient_id"], "study"),
                        "SeriesInstanceUID": ctx.uid(hip["case_id"], view, "series"),
                        "SeriesNumber": 1 if view == "ap" else 2, "InstanceNumber": 1 if hip["side"] == "R" else 2,
                        "StudyDescription": "XR HIP 2 VIEWS", "BodyPartExamined": "HIP", "Laterality": hip["side"],
                        "ViewPosition": "AP", "SeriesDescription": "AP" if view == "ap" else "FROG LEG LATERAL",
                        "PatientAge": f"{int(hip['age']):03d}Y"}
            sop = _CR if modality == "CR" else _DX
            _write_dicom(ctx.path(rel), sop, ctx.uid(hip["case_id"], view, "image"), elements, stored)
            hips.at[i, view] = rel
    hips["label"] = np.where(hips["_y"] == 1, "failure", "success")
    return hips


# ------------------------------------------------------------------------------------------------------ ICH
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
    sulci = (_smooth_noise(rng, plane, (0, 2.5 / geo.spacing[1], 2.5 / geo.spacing[2])) * np.cos(phase)
             + _smooth_noise(rng, plane, (0, 2.5 / geo.spacing[1], 2.5 / geo.spacing[2])) * np.sin(phase))
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
    field = _smooth_noise(rng, shape, tuple(0.3 * r / s for s in spacing))
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


def _ich_volume(rng: np.random.Generator, geo: _CTGeometry, sev: float) -> tuple[np.ndarray, np.ndarray]:
    """CT volume in HU (slices, rows, columns) and the uint8 hematoma mask on the same grid.

    Severity drives the hematoma's volume, surface irregularity (lobules, satellites) and density
    heterogeneity (including hypodense "swirl" islands)."""
    hu, head = _head_ct(rng, geo)
    centre, radii = _hematoma_shape(rng, head, sev)
    box = _box(geo, centre, 1.7 * radii.max() + 8)
    coords = tuple(c[tuple(b if c.shape[a] > 1 else slice(None) for a, b in enumerate(box))]
                   for c in geo.coords())
    irregular = float(np.clip(0.05 + 0.2 * _sigmoid(1.4 * sev - 1.0) + rng.normal(0, 0.03), 0.02, 0.4))
    mask = _hematoma_mask(rng, coords, geo.spacing, centre, radii, irregular)
    blood = rng.uniform(58, 72) + (2 + 9 * float(_sigmoid(1.4 * sev - 1.0))) * _smooth_noise(
        rng, mask.shape, tuple(1.5 / s for s in geo.spacing))
    if rng.random() < _sigmoid(1.5 * sev - 1.5):  # swirl / blend sign: hypodense islands
        islands = _smooth_noise(rng, mask.shape, tuple(3 / s for s in geo.spacing)) > 0.9
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


def _write_ct_series(ctx: _Ctx, rng: np.random.Generator, folder: str, hu: np.ndarray, geo: _CTGeometry,
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
    writer = _SeriesWriter(_CT, ctx.uid(folder, "template"), shared)
    names = rng.permutation(geo.shape[0]) + 1
    x0, y0, z0 = geo.origin
    for k in range(geo.shape[0]):
        z = z0 + k * geo.spacing[0]
        stored = (hu[k] - intercept).astype(np.int16 if signed else np.uint16)
        varying = {"InstanceNumber": geo.shape[0] - k, "ImagePositionPatient": [f"{x0:g}", f"{y0:g}", f"{z:.3f}"],
                   "SliceLocation": f"{z:.3f}"}
        writer.write(ctx.path(f"{folder}/IM{names[k]:04d}.dcm"), uids[k], varying, stored)


def _ich_covariates(rng: np.random.Generator, y: np.ndarray) -> dict[str, np.ndarray]:
    n = len(y)
    return {
        "age": np.round(_normal(rng, np.where(y == 1, 63, 60), 12, 25, 92, n)).astype(int),
        "sex": np.where(rng.random(n) < 0.62, "M", "F"),
        "onset_to_ct_hours": np.round(np.clip(np.exp(rng.normal(np.where(y == 1, 0.75, 1.0), 0.45, n)), 0.3, 6), 1),
        "glucose_mmol_l": _with_missing(rng, np.round(_normal(rng, np.where(y == 1, 7.6, 6.8), 1.8, 3.5, 20, n), 1),
                                        0.05),
        "systolic_bp": np.round(_normal(rng, np.where(y == 1, 176, 166), 24, 100, 240, n)).astype(int),
        "gcs": np.round(_normal(rng, np.where(y == 1, 12.6, 13.6), 2.2, 3, 15, n)).astype(int),
        "anticoagulant": np.where(rng.random(n) < np.where(y == 1, 0.18, 0.08), "yes", "no"),
    }


def _make_ich(ctx: _Ctx, rng: np.random.Generator) -> pd.DataFrame:
    n_pos = _count(70, ctx.scale)
    y = _labels(rng, n_pos, max(_count(235, ctx.scale) - n_pos, 10))
    ids = [f"ICH-{i + 1:04d}" for i in range(len(y))]
    table = pd.DataFrame({"case_id": ids, "patient_id": ids, "label": np.where(y == 1, "expansion", "no_expansion"),
                          "ct": "", "mask": "", **_ich_covariates(rng, y), "_y": y})
    as_dicom = rng.permutation(len(y)) < (len(y) + 1) // 2
    numbers = _patient_numbers(rng, len(y))
    for i, row in table.iterrows():
        geo = _ct_geometry(rng, ctx.image_size)
        hu, mask = _ich_volume(rng, geo, rng.normal(_SEPARATION["ich"] * row["_y"], 1.0))
        mask_xyz = np.ascontiguousarray(mask.transpose(2, 1, 0))
        _write_nifti(ctx.path(f"masks/{row['case_id']}.nii.gz"), mask_xyz, geo.affine())
        table.at[i, "mask"] = f"masks/{row['case_id']}.nii.gz"
        if as_dicom[i]:
            header = _ct_header(ctx, rng, row, int(numbers[i]))
            _write_ct_series(ctx, rng, f"ct/{row['case_id']}", hu, geo, header)
            table.at[i, "ct"] = f"ct/{row['case_id']}"
        else:
            _write_nifti(ctx.path(f"ct/{row['case_id']}.nii.gz"), np.ascontiguousarray(hu.transpose(2, 1, 0)),
                         geo.affine(), level=1)
            table.at[i, "ct"] = f"ct/{row['case_id']}.nii.gz"
    return table


def _ct_header(ctx: _Ctx, rng: np.random.Generator, row: pd.Series, number: int) -> dict[str, object]:
    vendor = [("SIEMENS", "SOMATOM Definition AS"), ("GE MEDICAL SYSTEMS", "Revolution CT"),
              ("Philips", "iCT 256"), ("TOSHIBA", "Aquilion ONE")][int(rng.integers(4))]
    return {"ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"], "Modality": "CT", "Manufacturer": vendor[0],
            "ManufacturerModelName": vendor[1], **_identity(number, row["sex"], _date(rng)),
            "StudyDescription": "CT HEAD WO CONTRAST", "SeriesDescription": "HEAD 1mm", "BodyPartExamined": "HEAD",
            "PatientAge": f"{int(row['age']):03d}Y", "KVP": "120", "PatientPosition": "HFS",
            "StudyInstanceUID": ctx.uid(row["case_id"], "study"),
            "SeriesInstanceUID": ctx.uid(row["case_id"], "series"),
            "FrameOfReferenceUID": ctx.uid(row["case_id"], "frame"), "SeriesNumber": 2, "AcquisitionNumber": 1}


# --------------------------------------------------------------------------------------------------- glioma
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
    """Treated-tumour lesion: core, enhancing rim, edema. ``m`` in (0, 1): 0 = recurrence-like, 1 = necrosis-like."""
    x, y, z = coords
    c = np.array([rng.choice([-1, 1]) * rng.uniform(22, 34), rng.uniform(-30, 30), rng.uniform(-4, 22)])
    d = np.sqrt((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2)
    bumps = _smooth_noise(rng, d.shape, 1.0)
    r_core = rng.uniform(6, 11) + 1.5 * bumps * (1 - m)
    rim_w = np.clip(rng.normal(5.5 - 3.0 * m, 0.8), 1.5, 7)
    r_edema = r_core + rim_w + rng.uniform(6, 12) + 10 * m + 3 * _smooth_noise(rng, d.shape, 1.5)
    soft = partial(_step, width=s)
    core, rim_out, edema_out = soft(r_core - d), soft(r_core + rim_w - d), soft(r_edema - d)
    bubbles = np.clip(_smooth_noise(rng, d.shape, 0.7), 0, 1.5)
    return {"core": core, "rim": rim_out - core, "edema": edema_out - rim_out, "bubbles": bubbles}


def _glioma_volumes(rng: np.random.Generator, n: int, spacing: float, sev: float) -> dict[str, np.ndarray]:
    c = ((np.arange(n) - (n - 1) / 2) * spacing).astype(np.float32)
    coords = (c[:, None, None], c[None, :, None], c[None, None, :])  # RAS voxel order (i=x, j=y, k=z)
    tissue = _brain_tissues(rng, coords, spacing)
    m = float(_sigmoid(1.5 * sev - 1.5))
    les = _lesion(rng, coords, spacing, m)
    inside = np.clip(tissue["wm"] + tissue["gm"], 0, 1)
    t1 = sum(tissue[k] * _MR_TISSUE[k][0] for k in _MR_TISSUE if k != "edema")
    t2 = sum(tissue[k] * _MR_TISSUE[k][1] for k in _MR_TISSUE if k != "edema")
    core_t1, core_t2 = 0.3 + 0.1 * (1 - m), 0.62 + 0.3 * m
    rim_t1ce = 0.75 + 0.75 * (1 - m) + 0.3 * les["bubbles"] * (1 - m)
    for key, (v1, v2) in {"edema": _MR_TISSUE["edema"], "core": (core_t1, core_t2), "rim": (0.6, 0.55)}.items():
        frac = les[key] * inside
        t1, t2 = t1 * (1 - frac) + v1 * frac, t2 * (1 - frac) + (v2 + (0.12 * m if key == "edema" else 0)) * frac
    enhance = les["rim"] * inside * rim_t1ce + les["core"] * inside * (0.05 + 0.45 * m * les["bubbles"])
    t1ce = t1 * (1 - les["rim"] * inside) + enhance
    return {"t1": t1, "t2": t2, "t1ce": t1ce}


def _mr_store(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Scanner gain, a smooth bias field and Rician-like noise; int16 arbitrary units."""
    n = image.shape[0]
    g = np.linspace(-1, 1, n, dtype=np.float32)
    direction = rng.normal(0, 1, 3)
    bias = 1 + 0.08 * (direction[0] * g[:, None, None] + direction[1] * g[None, :, None]
                       + direction[2] * g[None, None, :])
    noisy = np.abs(image * bias + rng.normal(0, 0.025, image.shape))
    return np.rint(noisy * rng.uniform(700, 1400)).astype(np.int16)


def _glioma_covariates(rng: np.random.Generator, y: np.ndarray) -> dict[str, np.ndarray]:
    n = len(y)
    kps = np.clip(np.round(rng.normal(np.where(y == 1, 76, 80), 11, n) / 10) * 10, 40, 100)
    return {
        "age": np.round(_normal(rng, np.where(y == 1, 47, 51), 12, 18, 82, n)).astype(int),
        "sex": np.where(rng.random(n) < 0.57, "M", "F"),
        "kps": _with_missing(rng, kps, 0.05),
        "months_since_radiotherapy": np.round(
            np.clip(np.exp(rng.normal(np.where(y == 1, 2.2, 2.6), 0.6, n)), 1, 96), 1),
        "radiation_dose_gy": np.where(rng.random(n) < np.where(y == 1, 0.75, 0.55), 60.0,
                                      rng.choice([54.0, 59.4], n)),
        "idh_mutant": np.where(rng.random(n) < np.where(y == 1, 0.36, 0.24), "yes", "no"),
    }


def _make_glioma(ctx: _Ctx, rng: np.random.Generator) -> pd.DataFrame:
    n_pos = _count(42, ctx.scale)
    y = _labels(rng, n_pos, max(_count(234, ctx.scale) - n_pos, 10))
    ids = [f"GLIOMA-{i + 1:04d}" for i in range(len(y))]
    table = pd.DataFrame({"case_id": ids, "patient_id": ids, "label": np.where(y == 1, "necrosis", "recurrence"),
                          "t1": "", "t2": "", "t1ce": "", **_glioma_covariates(rng, y), "_y": y})
    n = ctx.image_size or 32
    for i, row in table.iterrows():
        spacing = round(184.0 / n * rng.uniform(0.97, 1.03), 3)
        volumes = _glioma_volumes(rng, n, spacing, rng.normal(_SEPARATION["glioma"] * row["_y"], 1.0))
        affine = np.diag([spacing, spacing, spacing, 1.0])
        affine[:3, 3] = -(n - 1) / 2 * spacing
        for seq, image in volumes.items():
            rel = f"images/{row['case_id']}/{seq}.nii.gz"
            _write_nifti(ctx.path(rel), _mr_store(rng, image), affine)
            table.at[i, seq] = rel
    return table


# ---------------------------------------------------------------------------------------------------- public
_MAKERS: dict[str, Callable[[_Ctx, np.random.Generator], pd.DataFrame]] = {
    "nec": _make_nec, "onfh": _make_onfh, "ich": _make_ich, "glioma": _make_glioma}
_COLUMNS = {
    "nec": ["xray", "set", "gestational_age_weeks", "birth_weight_g", "sex", "age_at_onset_days"],
    "onfh": ["ap", "frog", "age", "sex", "aetiology", "arco_stage", "side", "bmi"],
    "ich": ["ct", "mask", "age", "sex", "onset_to_ct_hours", "glucose_mmol_l", "systolic_bp", "gcs",
            "anticoagulant"],
    "glioma": ["t1", "t2", "t1ce", "age", "sex", "kps", "months_since_radiotherapy", "radiation_dose_gy",
               "idh_mutant"],
}


def _check_args(study: str, seed: int, scale: float, image_size: int | None) -> None:
    if study not in _MAKERS:
        raise KeyError(f"Unknown study {study!r}. Available: {sorted(_MAKERS)}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    if not scale > 0:
        raise ValueError(f"scale must be > 0; got {scale!r}")
    if image_size is not None and not 16 <= image_size <= 1024:
        raise ValueError(f"image_size must be between 16 and 1024 pixels; got {image_size!r}")


def _replace_dir(new: Path, target: Path) -> None:
    """Move a finished folder into place; an existing target is swapped out first, then deleted."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(old)
    try:
        new.rename(target)
    except OSError:
        if old is not None:
            old.rename(target)
        raise
    if old is not None:
        shutil.rmtree(old)


def generate(study: str, out_dir: str | Path, *, seed: int = 0, scale: float = 1.0, image_size: int | None = None,
             overwrite: bool = False) -> Path:
    """Write one study's synthetic cohort into ``out_dir/<study>/`` and return its manifest path.

    The cohort is written to a temporary folder beside the target and renamed into place when complete, so an
    interrupted run never leaves a half-written cohort.

    Args:
        study: one of ``STUDIES`` ("nec", "onfh", "ich", "glioma").
        out_dir: parent folder; created if needed.
        seed: the same seed gives byte-identical manifests and image files.
        scale: multiplies the number of patients (at least 10 per class are kept; NEC's external cohort keeps at
            least 5 per class).
        image_size: 2D studies: image side in pixels (default 128); ICH: in-plane size (default 96, 40 slices);
            glioma: cube side (default 32). The field of view stays fixed; the voxel spacing changes.
        overwrite: replace an existing non-empty ``out_dir/<study>`` folder.

    Returns:
        Path of ``out_dir/<study>/manifest.csv``.

    Raises:
        KeyError: unknown study (the message lists the available ones).
        ValueError: a negative seed, non-positive scale or implausible image size.
        FileExistsError: ``out_dir/<study>`` exists and is not empty (or is a file) and ``overwrite`` is False.
    """
    _check_args(study, seed, scale, image_size)
    out_dir, target = Path(out_dir), Path(out_dir) / study
    if target.exists() and not (target.is_dir() and (overwrite or not any(target.iterdir()))):
        raise FileExistsError(f"{target} already exists and is not empty; pass overwrite=True "
                              f"(medlib synth --overwrite) to replace it")
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{study}.", suffix=".partial", dir=out_dir))
    try:
        _write_cohort(_Ctx(study, int(seed), tmp, float(scale), image_size))
        _replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target / "manifest.csv"


def _write_cohort(ctx: _Ctx) -> None:
    """Write images and manifest.csv of ``ctx.study`` into ``ctx.root``."""
    ctx.root.chmod(0o755)
    rng = np.random.default_rng([ctx.seed, _STUDY_CODES[ctx.study]])
    table = _MAKERS[ctx.study](ctx, rng)
    columns = ["case_id", "patient_id", "label", *_COLUMNS[ctx.study]]
    table[columns].to_csv(ctx.root / "manifest.csv", index=False, lineterminator="\n")


def generate_all(out_dir: str | Path, *, seed: int = 0, scale: float = 1.0, overwrite: bool = False
                 ) -> dict[str, Path]:
    """Write all four synthetic cohorts; returns ``{study: manifest path}`` (see ``generate``)."""
    return {study: generate(study, out_dir, seed=seed, scale=scale, overwrite=overwrite) for study in STUDIES}
