"""File writing for the synthetic cohorts: DICOM Part 10 files and series, NIfTI volumes, PNG masks, planted
identifiers.

DICOM files are encoded with pydicom (explicit VR little endian) and the pixel data element is appended as raw
bytes; ``SeriesWriter`` encodes the header a series shares once. NIfTI files are gzipped with mtime 0, so the
same data give the same bytes. Every DICOM header carries the fake identifiers of ``PLANTED_IDENTIFIERS``.
"""

from __future__ import annotations

import gzip
from itertools import pairwise
from pathlib import Path

import nibabel as nib
import numpy as np
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

PLANTED_IDENTIFIERS: dict[str, str] = {
    "PatientName": "SYNTH^PLANTED^NAME",
    "PatientID": "PLANTEDID-",                      # prefix: each patient gets PLANTEDID-<6 digits>
    "PatientBirthDate": "19010203",
    "InstitutionName": "PLANTED GENERAL HOSPITAL",
    "InstitutionAddress": "1 PLANTED ROAD PLANTEDTOWN",
    "ReferringPhysicianName": "PLANTED^REFERRING^DOCTOR",
    "AccessionNumber": "PLANTEDACC",                # prefix: PLANTEDACC<6 digits>
}

DX = "1.2.840.10008.5.1.4.1.1.1.1"   # Digital X-Ray Image Storage - For Presentation
CR = "1.2.840.10008.5.1.4.1.1.1"     # Computed Radiography Image Storage
CT = "1.2.840.10008.5.1.4.1.1.2"     # CT Image Storage


# ------------------------------------------------------------------------------------------ planted identity
def planted_identifier_strings() -> list[str]:
    """The planted identifier values (fixed strings and prefixes) to search de-identified outputs for.

    Returns:
        The values of ``PLANTED_IDENTIFIERS`` (PatientID and AccessionNumber as their fixed prefixes), plus the
        person names with ``^`` written as spaces (as a formatter may print them), longest first.
    """
    found = set(PLANTED_IDENTIFIERS.values())
    found.update(PLANTED_IDENTIFIERS[key].replace("^", " ") for key in ("PatientName", "ReferringPhysicianName"))
    return sorted(found, key=lambda s: (-len(s), s))


def patient_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """Distinct 6-digit numbers for the planted PatientID / AccessionNumber."""
    return 100000 + rng.choice(900000, size=n, replace=False)


def identity(number: int, sex: str, study_date: str) -> dict[str, object]:
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


# ---------------------------------------------------------------------------------------------- DICOM encoding
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


# ------------------------------------------------------------------------------------------------ file writers
def write_dicom(path: Path, sop_class: str, sop_uid: str, elements: dict[str, object], pixels: np.ndarray) -> None:
    """Write one DICOM Part 10 file (preamble, file meta, dataset, pixel data).

    Args:
        path: the file to write.
        sop_class: the SOP Class UID (``DX``, ``CR`` or ``CT``).
        sop_uid: the SOP Instance UID.
        elements: the header, keyword -> value.
        pixels: the stored pixel values (written little endian as OW).
    """
    body = _dataset({"SOPClassUID": sop_class, "SOPInstanceUID": sop_uid, **elements})
    data = b"\x00" * 128 + b"DICM" + _encode_meta(_file_meta(sop_class, sop_uid)) + _encode(body)
    path.write_bytes(data + _pixel_element(pixels))


class SeriesWriter:
    """Writes the slices of one series fast: the shared header is encoded once, per slice only the
    varying elements are encoded by pydicom and spliced in tag order.

    Args:
        sop_class: the SOP Class UID of every slice.
        template_uid: a UID of the same length as the slices' SOP Instance UIDs (it is replaced in the file meta).
        shared: the header elements every slice shares, keyword -> value.
    """

    VARYING = ("SOPInstanceUID", "InstanceNumber", "ImagePositionPatient", "SliceLocation")

    def __init__(self, sop_class: str, template_uid: str, shared: dict[str, object]) -> None:
        self.template_uid = template_uid
        self.meta = b"\x00" * 128 + b"DICM" + _encode_meta(_file_meta(sop_class, template_uid))
        common = _dataset({"SOPClassUID": sop_class, **shared})
        tags = [tag_for_keyword(k) for k in self.VARYING]
        bounds = [-1] + tags + [0x7FE00010]
        self.segments = []
        for lo, hi in pairwise(bounds):
            part = Dataset()
            for elem in common:
                if lo < elem.tag < hi:
                    part.add(elem)
            self.segments.append(_encode(part))

    def write(self, path: Path, sop_uid: str, varying: dict[str, object], pixels: np.ndarray) -> None:
        """Write one slice: ``varying`` holds ``VARYING`` except SOPInstanceUID, which is ``sop_uid``.

        Raises:
            ValueError: ``sop_uid`` is not as long as the template UID.
        """
        if len(sop_uid) != len(self.template_uid):
            raise ValueError(f"UID length {len(sop_uid)} differs from the template's {len(self.template_uid)}")
        chunks = [self.meta.replace(self.template_uid.encode(), sop_uid.encode()), self.segments[0]]
        values = {"SOPInstanceUID": sop_uid, **varying}
        for keyword, segment in zip(self.VARYING, self.segments[1:]):
            chunks += [_encode(_dataset({keyword: values[keyword]})), segment]
        path.write_bytes(b"".join(chunks) + _pixel_element(pixels))


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray, *, xyzt_units: str = "mm",
                level: int = 6) -> None:
    """Write a .nii.gz deterministically (gzip mtime 0), with qform and sform both set to ``affine``."""
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units(xyzt_units)
    img.header.set_qform(affine, code=1)
    img.header.set_sform(affine, code=1)
    path.write_bytes(gzip.compress(img.to_bytes(), compresslevel=level, mtime=0))


def write_png_mask(path: Path, mask: np.ndarray) -> None:
    """Write a 2D lesion mask as an 8-bit greyscale PNG: 255 = lesion, 0 = background.

    The PNG is on the pixel grid of the image it belongs to: its row r, column c is the image's row r, column c
    (for a DICOM radiograph, the pixel data's; the DICOM's PixelSpacing applies). Pillow writes no time stamp,
    so the same mask gives the same bytes.
    """
    from PIL import Image

    Image.fromarray(np.where(np.asarray(mask) > 0, 255, 0).astype(np.uint8)).save(path, format="PNG")


# ------------------------------------------------------------------------------------------------- radiographs
def dx_pixels(att: np.ndarray, rng: np.random.Generator, gamma: float, mono1: bool, slope: float,
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


def dx_elements(modality: str, rows: int, spacing_mm: float, vendor: tuple[str, str]) -> dict[str, object]:
    """The image elements of a square radiograph: modality, vendor (manufacturer, model), size and spacing."""
    return {
        "ImageType": ["ORIGINAL", "PRIMARY"], "Modality": modality, "Manufacturer": vendor[0],
        "ManufacturerModelName": vendor[1], "PresentationIntentType": "FOR PRESENTATION",
        "SamplesPerPixel": 1, "Rows": rows, "Columns": rows,
        "ImagerPixelSpacing": [f"{spacing_mm:.4f}"] * 2, "PixelSpacing": [f"{spacing_mm:.4f}"] * 2,
    }
