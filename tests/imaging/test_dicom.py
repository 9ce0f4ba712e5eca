"""Tests for medlib.imaging.dicom: real DICOM files (pydicom-data, ../shared/reference) with golden values."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medlib import synth
from medlib.imaging import read_dicom, read_dicom_series, read_image

LUMA = np.array([0.299, 0.587, 0.114])


def _testfile(name: str) -> Path:
    """A pydicom / pydicom-data test file, offline only (without download=False pydicom stalls on the network)."""
    path = get_testdata_file(name, download=False)
    assert path is not None, f"{name} not found: install pydicom-data (see ENVIRONMENT.md)"
    return Path(path)


def _raw(name: str) -> pydicom.Dataset:
    return pydicom.dcmread(_testfile(name))


def _window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2 linear window, written out independently of the reader."""
    return np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0, 1)


@pytest.fixture(scope="module")
def ich(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The synthetic ICH cohort at small scale; ``path_ct`` and ``path_mask`` are absolute."""
    manifest = synth.generate("ich", tmp_path_factory.mktemp("ich"), scale=0.1, image_size=32)
    table = pd.read_csv(manifest)
    table["path_ct"] = [manifest.parent / p for p in table["ct"]]
    table["path_mask"] = [manifest.parent / p for p in table["mask"]]
    return table


def _series_folders(ich: pd.DataFrame) -> list[Path]:
    folders = [p for p in ich["path_ct"] if p.is_dir()]
    assert len(folders) >= 2
    return folders


def _by_position(files: list[Path]) -> list[Path]:
    return sorted(files, key=lambda f: float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]))


# -------------------------------------------------------------------------------------------- single images
def test_cr_monochrome1_is_inverted_so_high_is_bright() -> None:
    image = read_image(_testfile("RG1_UNCR.dcm"))
    ds = _raw("RG1_UNCR.dcm")
    stored = ds.pixel_array.astype(np.float64)
    assert image.photometric == "MONOCHROME1" and image.modality == "CR"
    assert image.array.shape == (1955, 1841) and image.array.dtype == np.float32
    # bone is dark in the stored MONOCHROME1 values and bright after reading
    assert np.corrcoef(image.array.ravel(), stored.ravel())[0, 1] < -0.99
    windowed = _window(stored, float(ds.WindowCenter), float(ds.WindowWidth))
    np.testing.assert_allclose(image.array, windowed.max() + windowed.min() - windowed, atol=1e-5)
    assert image.meta["window_used"] == "header window 15000/30000"
    assert image.spacing == (1.0, 1.0)  # the file stores PixelSpacing 0\0: fall back to 1 mm


def test_jpeg2000_lossless_equals_uncompressed() -> None:
    j2k = read_image(_testfile("RG1_J2KR.dcm"))
    unc = read_image(_testfile("RG1_UNCR.dcm"))
    assert j2k.meta["transfer_syntax"] == "JPEG 2000 Image Compression (Lossless Only)"
    np.testing.assert_array_equal(j2k.array, unc.array)


def test_ct_small_is_in_hounsfield_units() -> None:
    ds = _raw("CT_small.dcm")
    image = read_image(_testfile("CT_small.dcm"))
    expected = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_allclose(image.array, expected)
    assert image.modality == "CT" and image.meta["window_used"] == "none"  # CT keeps HU, no header window
    assert image.spacing == pytest.approx(tuple(float(v) for v in ds.PixelSpacing))


def test_mr_small_keeps_stored_values_and_spacing() -> None:
    ds = _raw("MR_small.dcm")
    image = read_image(_testfile("MR_small.dcm"))
    assert image.array.shape == (64, 64) and image.modality == "MR"
    np.testing.assert_array_equal(image.array, ds.pixel_array)
    assert image.spacing == pytest.approx(tuple(float(v) for v in ds.PixelSpacing))


def test_multiframe_mr_is_a_volume() -> None:
    ds = _raw("emri_small.dcm")
    image = read_image(_testfile("emri_small.dcm"))
    assert image.array.shape == (10, 64, 64) and image.meta["frames"] == 10
    np.testing.assert_array_equal(image.array, ds.pixel_array)
    assert image.spacing[0] == pytest.approx(float(ds.SpacingBetweenSlices))


def test_enhanced_ct_rescale_comes_from_functional_groups() -> None:
    ds = _raw("eCT_Supplemental.dcm")
    assert "RescaleIntercept" not in ds  # only in the functional groups
    groups = ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else None
    frame = ds.PerFrameFunctionalGroupsSequence[0]
    transform = (groups if groups and "PixelValueTransformationSequence" in groups else frame)
    item = transform.PixelValueTransformationSequence[0]
    image = read_image(_testfile("eCT_Supplemental.dcm"))
    assert image.array.shape == (2, 512, 512) and image.modality == "CT"
    np.testing.assert_allclose(image.array, ds.pixel_array * float(item.RescaleSlope) + float(item.RescaleIntercept))
    assert image.array.min() == pytest.approx(-1024)  # air
    assert image.array.max() < 3072
    assert image.spacing[1:] == pytest.approx((0.388672, 0.388672))


def test_window_override_and_threshold_window() -> None:
    ds = _raw("CT_small.dcm")
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    image = read_dicom(_testfile("CT_small.dcm"), window=(40, 400))
    np.testing.assert_allclose(image.array, _window(hu, 40, 400), atol=1e-6)
    assert image.meta["window_used"] == "config window 40/400"
    step = read_dicom(_testfile("CT_small.dcm"), window=(100, 1))  # width 1 is a threshold, not a division by 0
    assert not np.isnan(step.array).any()
    np.testing.assert_array_equal(step.array, (hu > 99.5).astype(np.float32))


def test_voi_lut_matches_pydicom_without_warnings() -> None:
    ds = _raw("vlut_04.dcm")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = read_dicom(_testfile("vlut_04.dcm"), apply_voi=True)
    np.testing.assert_array_equal(image.array, apply_voi_lut(ds.pixel_array, ds))
    assert image.meta["window_used"] == "VOI LUT from header"


def test_modality_lut_sequence_is_applied() -> None:
    ds = _raw("mlut_18.dcm")
    image = read_image(_testfile("mlut_18.dcm"))
    np.testing.assert_array_equal(image.array, apply_modality_lut(ds.pixel_array, ds))


@pytest.mark.parametrize("name, shape", [("SC_rgb_small_odd.dcm", (3, 3)), ("SC_rgb_rle_2frame.dcm", (2, 100, 100)),
                                         ("examples_palette.dcm", (350, 800))])
def test_colour_images_become_grey(name: str, shape: tuple[int, ...]) -> None:
    ds = _raw(name)
    rgb = ds.pixel_array if ds.PhotometricInterpretation != "PALETTE COLOR" else apply_color_lut(ds.pixel_array, ds)
    image = read_image(_testfile(name))
    assert image.array.shape == shape
    np.testing.assert_allclose(image.array, rgb[..., :3] @ LUMA, rtol=1e-5, atol=1e-2)


# --------------------------------------------------------------------------------------- reference DICOM
def test_mr_t1_series_golden_order_and_spacing(reference_dir: Path) -> None:
    folder = reference_dir / "dicom" / "mr_t1_series"
    image = read_image(folder)
    assert image.array.shape == (35, 256, 256)
    assert image.meta["skipped_files"] == 1 and image.meta["slices"] == 35  # the LICENSE file
    rows = []
    for path in sorted(folder.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        iop = np.array([float(v) for v in ds.ImageOrientationPatient])
        normal = np.cross(iop[:3], iop[3:])
        pixels = ds.pixel_array * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
        rows.append((float(np.dot([float(v) for v in ds.ImagePositionPatient], normal)), pixels))
    rows.sort(key=lambda r: r[0])
    for k, (_, pixels) in enumerate(rows):
        np.testing.assert_array_equal(image.array[k], pixels, err_msg=f"slice {k}")
    assert image.spacing[0] == pytest.approx(float(np.median(np.diff([r[0] for r in rows]))))
    assert image.spacing[1:] == pytest.approx(tuple(float(v) for v in pydicom.dcmread(
        next(folder.glob("*.dcm")), stop_before_pixels=True).PixelSpacing))


@pytest.mark.parametrize("name, syntax", [("nih_cxr14_no_finding.dcm", "Implicit VR Little Endian"),
                                          ("siim_cr_jpeg_baseline.dcm", "JPEG Baseline (Process 1)")])
def test_chest_radiographs_load(reference_dir: Path, name: str, syntax: str) -> None:
    image = read_image(reference_dir / "dicom" / "dx_chest" / name)
    assert image.array.shape == (1024, 1024)
    assert image.meta["transfer_syntax"] == syntax
    assert image.array.std() > 10  # a real image, not a blank


# ------------------------------------------------------------------------------------------ no identifiers
def _assert_no_identifiers(image, planted: list[str]) -> None:
    texts = [repr(image), str(image.meta), *map(str, image.meta.values()), *map(str, image.meta)]
    for text in texts:
        for value in planted:
            assert value.lower() not in text.lower(), f"identifier {value!r} leaked into {text!r}"


def test_handwritten_dicom_identifiers_are_not_returned(tmp_path: Path) -> None:
    planted = {"PatientName": "DOE^JANE^PLANTED", "PatientID": "PID-987654", "PatientBirthDate": "19020304",
               "InstitutionName": "ST PLANTED INFIRMARY", "AccessionNumber": "ACC-123456",
               "ReferringPhysicianName": "WHO^PLANTED"}
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    for keyword, value in planted.items():
        setattr(ds, keyword, value)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.Rows, ds.Columns, ds.SamplesPerPixel = "CT", 8, 8, 1
    ds.PhotometricInterpretation, ds.BitsAllocated, ds.BitsStored, ds.HighBit = "MONOCHROME2", 16, 16, 15
    ds.PixelRepresentation, ds.PixelData = 0, np.arange(64, dtype=np.uint16).tobytes()
    path = tmp_path / "planted.dcm"
    ds.save_as(path, enforce_file_format=True)
    image = read_image(path)
    np.testing.assert_array_equal(image.array, np.arange(64).reshape(8, 8))
    uids = [ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID]
    _assert_no_identifiers(image, [*planted.values(), *uids, "DOE JANE"])


def test_synthetic_radiographs_and_series_carry_no_identifiers(tmp_path: Path, ich: pd.DataFrame) -> None:
    manifest = synth.generate("nec", tmp_path, scale=0.1, image_size=32)
    planted = synth.planted_identifier_strings()
    files = sorted((manifest.parent / "images").glob("*.dcm"))[:5]
    assert files and "PLANTEDID-" in str(pydicom.dcmread(files[0]).PatientID)  # they are there to be stripped
    for path in files:
        _assert_no_identifiers(read_image(path), planted)
    for folder in _series_folders(ich)[:2]:
        ds = pydicom.dcmread(next(folder.glob("*.dcm")), stop_before_pixels=True)
        _assert_no_identifiers(read_image(folder), [*planted, str(ds.SeriesInstanceUID), str(ds.StudyInstanceUID)])


# ----------------------------------------------------------------------------------------------- bad input
def test_truncated_dicom_names_the_file(tmp_path: Path) -> None:
    data = _testfile("CT_small.dcm").read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.dcm: corrupt or truncated pixel data"):
        read_dicom(path)


@pytest.mark.parametrize("name", ["rtplan.dcm", "strip"])
def test_dicom_without_pixel_data(tmp_path: Path, name: str) -> None:
    if name == "strip":
        ds = _raw("CT_small.dcm")
        del ds.PixelData
        path = tmp_path / "nopixels.dcm"
        ds.save_as(path)
    else:
        path = _testfile(name)
    with pytest.raises(ValueError, match=rf"{path.name}: DICOM file has no pixel data .*expected an image"):
        read_dicom(path)


def test_non_dicom_file_with_dcm_suffix(tmp_path: Path) -> None:
    path = tmp_path / "notes.dcm"
    path.write_text("this is a text file, not an image\n" * 10)
    with pytest.raises(ValueError, match=r"notes\.dcm: not a DICOM file"):
        read_dicom(path)


def test_missing_decoder_names_transfer_syntax_and_package(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydicom.pixels.decoders import JPEG2000LosslessDecoder

    monkeypatch.setattr(JPEG2000LosslessDecoder, "_available", {})  # as if no plugin were installed
    with pytest.raises(ValueError, match=r"RG1_J2KR\.dcm: cannot decode pixel data with transfer syntax "
                                         r"JPEG 2000 Image Compression \(Lossless Only\) .*pip install pylibjpeg"):
        read_image(_testfile("RG1_J2KR.dcm"))


@pytest.mark.parametrize("error", [NotImplementedError, RuntimeError])
def test_decoder_errors_are_translated(monkeypatch: pytest.MonkeyPatch, error: type[Exception]) -> None:
    def fail(self):
        raise error("no decoder")

    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array", property(fail))
    with pytest.raises(ValueError, match=r"JPEG Baseline \(Process 1\) \(1\.2\.840\.10008\.1\.2\.4\.50\); install "
                                         r"a decoder: pip install pylibjpeg"):
        read_dicom(_testfile("SC_rgb_jpeg_dcmtk.dcm"))


def test_two_series_in_one_folder(tmp_path: Path, ich: pd.DataFrame) -> None:
    first, second = _series_folders(ich)[:2]
    folder = tmp_path / "mixed"
    folder.mkdir()
    for prefix, source in (("a", first), ("b", second)):
        for path in sorted(source.glob("*.dcm"))[:3]:
            shutil.copy(path, folder / f"{prefix}{path.name}")
    uid = str(pydicom.dcmread(next(first.glob("*.dcm")), stop_before_pixels=True).SeriesInstanceUID)
    with pytest.raises(ValueError, match=r"mixed: 2 series found in one folder") as info:
        read_dicom_series(folder)
    assert uid not in str(info.value)


def test_missing_middle_slice_is_inconsistent_spacing(tmp_path: Path, ich: pd.DataFrame) -> None:
    folder = tmp_path / "gap"
    shutil.copytree(_series_folders(ich)[0], folder)
    files = _by_position(sorted(folder.glob("*.dcm")))
    files[len(files) // 2].unlink()
    with pytest.raises(ValueError, match=r"gap: inconsistent slice spacing .*missing slices\?"):
        read_dicom_series(folder)


def test_duplicate_slice_positions(tmp_path: Path, ich: pd.DataFrame) -> None:
    folder = tmp_path / "dup"
    shutil.copytree(_series_folders(ich)[0], folder)
    shutil.copy(sorted(folder.glob("*.dcm"))[3], folder / "copy.dcm")
    with pytest.raises(ValueError, match=r"dup: two slices share one position"):
        read_dicom_series(folder)


def test_empty_series_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "readme").mkdir()
    (tmp_path / "readme" / "README.txt").write_text("no images here")
    for name in ("empty", "readme"):
        with pytest.raises(ValueError, match=rf"{name}: no DICOM files in the folder"):
            read_dicom_series(tmp_path / name)


def test_series_error_names_the_broken_slice(tmp_path: Path, ich: pd.DataFrame) -> None:
    folder = tmp_path / "broken"
    shutil.copytree(_series_folders(ich)[0], folder)
    victim = sorted(folder.glob("*.dcm"))[5]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) - 200])  # header intact, pixel data short
    with pytest.raises(ValueError, match=rf"{victim.name}: corrupt or truncated pixel data"):
        read_dicom_series(folder)


def test_series_volume_matches_synthetic_geometry(ich: pd.DataFrame) -> None:
    folder = _series_folders(ich)[0]
    files = _by_position(sorted(folder.glob("*.dcm")))
    image = read_dicom_series(folder)
    assert image.array.shape == (len(files), 32, 32) and image.modality == "CT"
    for k in (0, len(files) // 2, len(files) - 1):
        ds = pydicom.dcmread(files[k])
        np.testing.assert_array_equal(image.array[k], ds.pixel_array * float(ds.RescaleSlope)
                                      + float(ds.RescaleIntercept))
    z = [float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]) for f in files]
    assert image.spacing[0] == pytest.approx(float(np.median(np.diff(z))))
