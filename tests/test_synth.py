"""Tests for medlib.synth: the synthetic cohorts written as real DICOM/NIfTI files with a manifest."""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import pytest

from medlib import synth
from medlib.synth import _dicom, nec, onfh
from medlib.synth._common import Ctx

SMALL = {"nec": dict(scale=0.2), "onfh": dict(scale=0.2), "ich": dict(scale=0.1, image_size=48),
         "glioma": dict(scale=0.2)}
COLUMNS = {
    "nec": ["case_id", "patient_id", "label", "xray", "set", "gestational_age_weeks", "birth_weight_g", "sex",
            "age_at_onset_days"],
    "onfh": ["case_id", "patient_id", "label", "ap", "frog", "age", "sex", "aetiology", "arco_stage", "side", "bmi"],
    "ich": ["case_id", "patient_id", "label", "ct", "mask", "age", "sex", "onset_to_ct_hours", "glucose_mmol_l",
            "systolic_bp", "gcs", "anticoagulant"],
    "glioma": ["case_id", "patient_id", "label", "t1", "t2", "t1ce", "age", "sex", "kps",
               "months_since_radiotherapy", "radiation_dose_gy", "idh_mutant"],
}
LABELS = {"nec": ("surgery", "no_surgery"), "onfh": ("failure", "success"), "ich": ("expansion", "no_expansion"),
          "glioma": ("necrosis", "recurrence")}
# positive fraction at scale 1 (NEC: internal cohort)
TARGET_FRACTION = {"nec": 94 / 263, "onfh": 1 - 0.715, "ich": 0.30, "glioma": 42 / 234}
IMAGE_COLUMNS = {"nec": ["xray"], "onfh": ["ap", "frog"], "ich": ["ct", "mask"], "glioma": ["t1", "t2", "t1ce"]}


@pytest.fixture(scope="session")
def cohorts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("synth")
    return {study: synth.generate(study, out, seed=3, **SMALL[study]) for study in synth.STUDIES}


def _manifest(cohorts: dict[str, Path], study: str) -> pd.DataFrame:
    return pd.read_csv(cohorts[study], dtype={"case_id": str, "patient_id": str, "label": str})


def _dicom_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.dcm"))


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _series(folder: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(f) for f in sorted(folder.glob("*.dcm"))]


# ------------------------------------------------------------------------------------------------ manifests
@pytest.mark.parametrize("study", synth.STUDIES)
def test_manifest_columns_labels_and_paths(cohorts: dict[str, Path], study: str) -> None:
    manifest = cohorts[study]
    assert manifest.name == "manifest.csv" and manifest.parent.name == study
    table = _manifest(cohorts, study)
    assert list(table.columns) == COLUMNS[study]
    assert set(table["label"]) == set(LABELS[study])
    assert table["case_id"].is_unique
    for col in IMAGE_COLUMNS[study]:
        for rel in table[col]:
            assert not Path(rel).is_absolute()
            assert (manifest.parent / rel).exists(), rel


@pytest.mark.parametrize("study", synth.STUDIES)
def test_class_ratio_near_target(cohorts: dict[str, Path], study: str) -> None:
    table = _manifest(cohorts, study)
    if study == "nec":
        table = table[table["set"].fillna("") != "external"]
    positive = (table["label"] == LABELS[study][0]).mean()
    assert abs(positive - TARGET_FRACTION[study]) < 0.12
    assert table["label"].value_counts().min() >= 10


def test_counts_at_full_scale_are_the_papers() -> None:
    rng = np.random.default_rng(0)
    cohort = nec._cohort(rng, 1.0)
    internal = cohort[cohort["set"] == ""]
    assert (len(internal), (internal["label"] == "surgery").sum()) == (263, 94)
    external = cohort[cohort["set"] == "external"]
    assert (len(external), (external["label"] == "surgery").sum()) == (40, 14)
    hips = onfh._hips(rng, onfh._patients(rng, 1.0), 1.0)
    assert (hips["patient_id"].nunique(), len(hips), (hips["_y"] == 0).sum()) == (339, 432, 309)


def test_nec_external_cohort(cohorts: dict[str, Path]) -> None:
    table = _manifest(cohorts, "nec")
    external = table[table["set"] == "external"]
    assert set(table["set"].fillna("")) == {"", "external"}
    assert len(external) >= 10 and set(external["label"]) == {"surgery", "no_surgery"}


@pytest.mark.parametrize("study", synth.STUDIES)
def test_pseudonymous_ids_and_some_missing_covariates(cohorts: dict[str, Path], study: str) -> None:
    table = _manifest(cohorts, study)
    assert table["patient_id"].str.fullmatch(r"(NEC|ONFH|ICH|GLIOMA)-\d{4}").all()
    covariates = COLUMNS[study][COLUMNS[study].index(IMAGE_COLUMNS[study][-1]) + 1:]
    covariates = [c for c in covariates if c != "set"]
    assert table[covariates].isna().any().sum() >= 1
    assert table["sex"].isin(["M", "F"]).all()


def test_onfh_bilateral_patients_share_patient_id(cohorts: dict[str, Path]) -> None:
    table = _manifest(cohorts, "onfh")
    assert table["case_id"].str.fullmatch(r"ONFH-\d{4}-[LR]").all()
    assert (table["case_id"].str[:-2] == table["patient_id"]).all()
    assert (table["case_id"].str[-1] == table["side"]).all()
    hips = table.groupby("patient_id")["side"].agg(sorted)
    bilateral = hips[hips.map(len) == 2]
    assert len(bilateral) >= 5 and all(sides == ["L", "R"] for sides in bilateral)
    shared = table[table["patient_id"].isin(bilateral.index)].groupby("patient_id")
    assert (shared[["age", "sex", "aetiology"]].nunique() == 1).all().all()
    assert set(table["aetiology"]) <= {"steroid", "alcohol", "idiopathic", "trauma"}


# ---------------------------------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_files(cohorts: dict[str, Path], tmp_path: Path) -> None:
    for study in ("nec", "ich"):
        again = synth.generate(study, tmp_path / "again", seed=3, **SMALL[study])
        assert _tree_digest(again.parent) == _tree_digest(cohorts[study].parent)


def test_other_seed_gives_other_cohort(cohorts: dict[str, Path], tmp_path: Path) -> None:
    other = synth.generate("nec", tmp_path, seed=4, **SMALL["nec"])
    assert other.read_bytes() != cohorts["nec"].read_bytes()


# The cohorts of seed 0, scale 0.05, image_size 16: (manifest.csv, every file's content). A change to the drawn
# data fails here; if it is deliberate, say so in the change and pin the new values.
PINNED = {
    "nec": ("78940703f725386c49a0bef4d8c9eb7c379f63c58bde4d02d209c913fd3dcbc0",
            "d100ea7e07e43ea061c38b69509424dc7719055c9905c63439827ff009463a01"),
    "onfh": ("f62aac9e1e2a6e4f9bbe9f615b3334487b13d1f5c701905d937965f6b8610934",
             "88bbb886f4304744790194dd9027b4ba536e112ad2da1865e1ea6ec6e912a73a"),
    "ich": ("9a3512a543da2733336ae5736573113138773d52a1567b101974698f8f8d1d60",
            "1b5dd61392effe877498ef723b3862bf967f3e4abdbd1d0a63b158829d76d4d7"),
    "glioma": ("a3f0743cb1849b951d14b3db9d06a4fbefadc3e165f1fbf6c5fb47202260adbe",
               "5e6ebf23f7887b662d2c1ebfcba31e0b582823b8fd24e25de584e0e888f4e3c2"),
}


def _content_digest(root: Path) -> str:
    """SHA-256 over every file's path and content; NIfTI decompressed (gzip bytes vary with the zlib build),
    DICOM without its file meta group (it names the pydicom version)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        elif path.suffix == ".dcm":
            data = data[144 + int.from_bytes(data[140:144], "little"):]  # after (0002,0000) and its group
        digest.update(path.relative_to(root).as_posix().encode() + b"\n" + hashlib.sha256(data).digest())
    return digest.hexdigest()


@pytest.mark.parametrize("study", synth.STUDIES)
def test_pinned_content(tmp_path: Path, study: str) -> None:
    manifest = synth.generate(study, tmp_path, seed=0, scale=0.05, image_size=16)
    assert hashlib.sha256(manifest.read_bytes()).hexdigest() == PINNED[study][0], "manifest.csv changed"
    assert _content_digest(manifest.parent) == PINNED[study][1], "image files changed"


# ------------------------------------------------------------------------------------------ planted identity
def test_planted_identifier_strings() -> None:
    strings = synth.planted_identifier_strings()
    assert "PLANTED GENERAL HOSPITAL" in strings and "SYNTH^PLANTED^NAME" in strings
    assert synth.PLANTED_IDENTIFIERS["PatientID"] in strings
    assert all("PLANTED" in s or s.isdigit() for s in strings)


@pytest.mark.parametrize("study", ["nec", "onfh", "ich"])
def test_dicom_headers_carry_planted_identifiers(cohorts: dict[str, Path], study: str) -> None:
    files = _dicom_files(cohorts[study].parent)
    assert files
    patient_ids = {}
    for path in files[:: max(1, len(files) // 40)]:
        ds = pydicom.dcmread(path)
        assert str(ds.PatientName) == synth.PLANTED_IDENTIFIERS["PatientName"]
        assert ds.PatientID.startswith(synth.PLANTED_IDENTIFIERS["PatientID"])
        assert ds.PatientBirthDate == synth.PLANTED_IDENTIFIERS["PatientBirthDate"]
        assert ds.InstitutionName == "PLANTED GENERAL HOSPITAL"
        patient_ids[ds.StudyInstanceUID] = ds.PatientID
    assert len(set(patient_ids.values())) > 1  # varies per patient


@pytest.mark.parametrize("study", synth.STUDIES)
def test_manifest_does_not_contain_planted_identifiers(cohorts: dict[str, Path], study: str) -> None:
    text = cohorts[study].read_text()
    assert "PLANTED" not in text.upper()
    for planted in synth.planted_identifier_strings():
        assert planted not in text


# -------------------------------------------------------------------------------------------- radiographs
def _display(ds: pydicom.Dataset) -> np.ndarray:
    """Rescale, then invert MONOCHROME1, so bone is bright for every file."""
    values = ds.pixel_array.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    return -values if ds.PhotometricInterpretation == "MONOCHROME1" else values


def test_nec_radiographs(cohorts: dict[str, Path]) -> None:
    files = _dicom_files(cohorts["nec"].parent)
    photometric = []
    for path in files:
        ds = pydicom.dcmread(path)
        assert (ds.Modality, ds.BitsStored, ds.BitsAllocated, ds.SOPClassUID) == ("DX", 12, 16, _dicom.DX)
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.pixel_array.shape == (128, 128) and ds.pixel_array.max() <= 4095
        assert float(ds.WindowWidth) > 0 and "RescaleSlope" in ds
        image = _display(ds)
        assert image[40:90, 40:90].mean() > image[:, :6].mean()  # body brighter than the air beside it
        photometric.append(ds.PhotometricInterpretation)
    assert 0.1 < photometric.count("MONOCHROME1") / len(photometric) < 0.45
    assert len({pydicom.dcmread(f, stop_before_pixels=True).Manufacturer for f in files}) >= 3


def test_onfh_radiographs(cohorts: dict[str, Path]) -> None:
    root = cohorts["onfh"].parent
    vendors = set()
    for path in _dicom_files(root)[::5]:
        ds = pydicom.dcmread(path)
        assert ds.Modality in ("DX", "CR")
        assert ds.SOPClassUID == (_dicom.CR if ds.Modality == "CR" else _dicom.DX)
        assert ds.pixel_array.shape == (128, 128)
        vendors.add(ds.Manufacturer)
    assert vendors == {"GE Healthcare", "Philips Medical Systems", "SIEMENS"}


def test_image_size_option(tmp_path: Path) -> None:
    manifest = synth.generate("nec", tmp_path, scale=0.05, image_size=64)
    first = pd.read_csv(manifest)["xray"].iloc[0]
    ds = pydicom.dcmread(manifest.parent / first)
    assert ds.pixel_array.shape == (64, 64) and float(ds.PixelSpacing[0]) == pytest.approx(200 / 64, rel=1e-3)


# ---------------------------------------------------------------------------------------------------- CT
def _ich_cases(cohorts: dict[str, Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    table = _manifest(cohorts, "ich")
    is_nifti = table["ct"].str.endswith(".nii.gz")
    return table[~is_nifti], table[is_nifti]


def test_ich_mix_of_series_and_nifti(cohorts: dict[str, Path]) -> None:
    series, nifti = _ich_cases(cohorts)
    assert len(series) >= 5 and len(nifti) >= 5
    assert all((cohorts["ich"].parent / p).is_dir() for p in series["ct"])


def test_ich_series_is_shuffled_readable_and_consistent(cohorts: dict[str, Path]) -> None:
    series, _ = _ich_cases(cohorts)
    folder = cohorts["ich"].parent / series["ct"].iloc[0]
    slices = _series(folder)
    z_in_file_order = [float(ds.ImagePositionPatient[2]) for ds in slices]
    assert z_in_file_order != sorted(z_in_file_order) and z_in_file_order != sorted(z_in_file_order, reverse=True)
    assert len({ds.SeriesInstanceUID for ds in slices}) == 1
    assert len({ds.SOPInstanceUID for ds in slices}) == len(slices)
    slices.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    z = np.array([float(ds.ImagePositionPatient[2]) for ds in slices])
    assert np.allclose(np.diff(z), float(slices[0].SliceThickness), atol=1e-3)
    assert [int(ds.InstanceNumber) for ds in slices] == list(range(len(slices), 0, -1))  # numbered from the top
    for ds in slices:
        assert ds.SOPClassUID == _dicom.CT and ds.Modality == "CT"
        assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]


def _series_hu(folder: Path) -> tuple[np.ndarray, list[pydicom.Dataset]]:
    slices = sorted(_series(folder), key=lambda ds: float(ds.ImagePositionPatient[2]))
    hu = np.stack([ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in slices])
    return hu, slices


def _check_hu(hu: np.ndarray, mask: np.ndarray) -> None:
    assert hu.min() < -900 and hu.max() > 900                   # air and skull
    brain = hu[(hu > 0) & (hu < 50)]
    assert 20 < np.median(brain) < 45
    assert mask.sum() > 0 and 45 < hu[mask > 0].mean() < 85    # hematoma


def test_ich_series_hu_and_mask_geometry(cohorts: dict[str, Path]) -> None:
    root = cohorts["ich"].parent
    series, _ = _ich_cases(cohorts)
    for _, row in series.head(3).iterrows():
        hu, slices = _series_hu(root / row["ct"])
        mask_img = nib.load(root / row["mask"])
        mask = np.asarray(mask_img.dataobj)
        assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
        assert mask.shape == hu.shape[::-1]  # (columns, rows, slices)
        _check_hu(hu, mask.transpose(2, 1, 0))
        first = slices[0]
        dy, dx = (float(v) for v in first.PixelSpacing)
        x0, y0, z0 = (float(v) for v in first.ImagePositionPatient)
        expected = np.array([[-dx, 0, 0, -x0], [0, -dy, 0, -y0], [0, 0, float(first.SliceThickness), z0],
                             [0, 0, 0, 1]])
        assert np.allclose(mask_img.affine, expected, atol=1e-3)


def test_ich_mask_matches_series_in_simpleitk(cohorts: dict[str, Path]) -> None:
    sitk = pytest.importorskip("SimpleITK")
    root = cohorts["ich"].parent
    series, _ = _ich_cases(cohorts)
    row = series.iloc[1]
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(root / row["ct"])))
    ct, mask = reader.Execute(), sitk.ReadImage(str(root / row["mask"]))
    assert ct.GetSize() == mask.GetSize()
    assert np.allclose(ct.GetOrigin(), mask.GetOrigin(), atol=1e-3)
    assert np.allclose(ct.GetSpacing(), mask.GetSpacing(), atol=1e-4)
    assert np.allclose(ct.GetDirection(), mask.GetDirection(), atol=1e-6)
    hu, m = sitk.GetArrayFromImage(ct), sitk.GetArrayFromImage(mask)
    assert hu[m > 0].mean() > hu[(m == 0) & (hu > 0) & (hu < 100)].mean() + 20  # the mask sits on the blood


def test_ich_nifti_ct(cohorts: dict[str, Path]) -> None:
    root = cohorts["ich"].parent
    _, nifti = _ich_cases(cohorts)
    for _, row in nifti.head(3).iterrows():
        ct, mask = nib.load(root / row["ct"]), nib.load(root / row["mask"])
        assert ct.shape == mask.shape and np.allclose(ct.affine, mask.affine)
        hu = np.asarray(ct.dataobj)
        assert hu.dtype == np.int16
        _check_hu(hu, np.asarray(mask.dataobj))


def test_ich_signal_present(cohorts: dict[str, Path]) -> None:
    """Expanders have larger hematomas on average (one of the planted signals)."""
    root = cohorts["ich"].parent
    table = _manifest(cohorts, "ich")
    volume = np.array([np.asarray(nib.load(root / p).dataobj).sum() for p in table["mask"]], float)
    spacing = np.array([np.prod(nib.load(root / p).header.get_zooms()) for p in table["mask"]])
    ml = volume * spacing / 1000
    assert np.median(ml[table["label"] == "expansion"]) > np.median(ml[table["label"] == "no_expansion"])


# -------------------------------------------------------------------------------------------------- MRI
def test_glioma_volumes(cohorts: dict[str, Path]) -> None:
    root = cohorts["glioma"].parent
    table = _manifest(cohorts, "glioma")
    for _, row in table.head(4).iterrows():
        images = [nib.load(root / row[seq]) for seq in ("t1", "t2", "t1ce")]
        assert all(img.shape == (32, 32, 32) for img in images)
        assert all(np.allclose(img.affine, images[0].affine) for img in images)
        assert all(np.asarray(img.dataobj).dtype == np.int16 for img in images)
        assert np.all(np.diag(images[0].affine)[:3] > 0)  # RAS+
        t1, t2 = (np.asarray(img.dataobj).astype(float) for img in images[:2])
        assert t1.max() > 0 and not np.allclose(t1 / t1.max(), t2 / t2.max())


# ------------------------------------------------------------------------------------------ errors, writing
def test_unknown_study_lists_available() -> None:
    with pytest.raises(KeyError, match=r"Unknown study 'lung'.*Available: \['glioma', 'ich', 'nec', 'onfh'\]"):
        synth.generate("lung", Path("unused"))


@pytest.mark.parametrize("kwargs, match", [(dict(scale=0), "scale must be > 0"), (dict(seed=-1), "seed must be"),
                                           (dict(image_size=4), "image_size must be")])
def test_invalid_arguments(tmp_path: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        synth.generate("nec", tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())


def test_refuses_to_overwrite_then_replaces_atomically(tmp_path: Path) -> None:
    (tmp_path / "nec").mkdir()
    (tmp_path / "nec" / "keep.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="not empty.*overwrite=True"):
        synth.generate("nec", tmp_path, scale=0.05)
    assert (tmp_path / "nec" / "keep.txt").exists()
    manifest = synth.generate("nec", tmp_path, scale=0.05, overwrite=True)
    assert manifest.is_file() and not (tmp_path / "nec" / "keep.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nec"]  # no temporary folders left behind


def test_empty_existing_folder_is_fine(tmp_path: Path) -> None:
    (tmp_path / "glioma").mkdir()
    assert synth.generate("glioma", tmp_path, scale=0.05, image_size=16).is_file()


def test_failure_leaves_no_partial_cohort(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(ctx, rng):
        ctx.path("images/half.dcm").write_bytes(b"x")
        raise RuntimeError("disk full")

    monkeypatch.setattr(nec, "make", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        synth.generate("nec", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_generate_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(synth, "generate", lambda study, out, **kw: calls.append((study, kw)) or Path(out, study))
    result = synth.generate_all(tmp_path, seed=2, scale=0.1)
    assert list(result) == list(synth.STUDIES) and calls[0] == ("nec", dict(seed=2, scale=0.1, overwrite=False))


def test_uids_are_deterministic_and_valid() -> None:
    ctx = Ctx("nec", 0, Path("."), 1.0, None)
    uid = ctx.uid("NEC-0001", "image")
    assert uid == ctx.uid("NEC-0001", "image") != ctx.uid("NEC-0002", "image")
    assert len(uid) <= 64 and re.fullmatch(r"[0-9.]+", uid)
