"""Tests for medlib.data.imaging.dicom: real DICOM files (pydicom-data, ../shared/reference) with golden values."""

from __future__ import annotations

import dataclasses
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut, apply_windowing
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medlib import synth
from medlib.data.imaging import dicom as dicom_module
from medlib.data.imaging import read_dicom, read_dicom_series, read_image

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
    # PS3.3 C.7.6.3.1.2: in MONOCHROME1 the minimum is white, so the windowed 0..1 value v displays as 1 - v;
    # a data-dependent inversion (max + min - v) would shift every image by its own offset
    np.testing.assert_allclose(image.array, 1.0 - windowed, atol=1e-5)
    assert image.meta["window_used"] == "header window 15000/30000" and image.meta["inverted"] == "1 - v (windowed)"
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
    # frames sorted along the slice normal (row x column cosines), as a series is
    iop = np.array([float(v) for v in groups.PlaneOrientationSequence[0].ImageOrientationPatient])
    along = [float(np.dot([float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient],
                          np.cross(iop[:3], iop[3:]))) for f in ds.PerFrameFunctionalGroupsSequence]
    order = np.argsort(along)
    assert order.tolist() == [1, 0]  # the file stores them the other way round
    hu = ds.pixel_array * float(item.RescaleSlope) + float(item.RescaleIntercept)
    np.testing.assert_allclose(image.array, hu[order])
    assert image.spacing[0] == pytest.approx(abs(along[1] - along[0])) == 10.0
    assert image.meta["slice_spacing_from"] == "frame positions"
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
    bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])  # output scaled to 0..1 like every window
    np.testing.assert_allclose(image.array, apply_voi_lut(ds.pixel_array, ds) / (2**bits - 1), rtol=1e-6)
    assert image.array.max() <= 1.0 and image.meta["window_used"] == "VOI LUT from header"


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
def test_header_voi_functions_match_pydicom(tmp_path: Path, function: str) -> None:
    """A header window with each VOI LUT function equals pydicom's apply_windowing, rescaled to 0..1."""
    ds = _raw("CT_small.dcm")
    ds.Modality, ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = "DX", 40, 350, function
    ds.save_as(tmp_path / "dx.dcm")
    image = read_dicom(tmp_path / "dx.dcm")
    hu = apply_modality_lut(ds.pixel_array, ds)
    with np.errstate(over="ignore"):  # pydicom's sigmoid overflows harmlessly far from the centre
        lo, hi = apply_windowing(np.array([-1e9, 1e9]), ds)  # pydicom maps to the stored range, not 0..1
    np.testing.assert_allclose(image.array, (apply_windowing(hu, ds) - lo) / (hi - lo), atol=1e-5)
    assert image.meta["window_used"] == "header window 40/350" + ("" if function == "LINEAR" else f" {function}")
    assert 0.2 < image.array.mean() < 0.8


@pytest.mark.parametrize("window, message", [((40,), r"window must be \(center, width\), two numbers"),
                                             ((40, 0), r"a LINEAR window needs a width >= 1; got 0")])
def test_bad_window_override(window: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_dicom(_testfile("CT_small.dcm"), window=window)


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
PLANTED = {"PatientName": "DOE^JANE^PLANTED", "PatientID": "PID-987654", "PatientBirthDate": "19020304",
           "PatientAddress": "12 PLANTED LANE", "InstitutionName": "ST PLANTED INFIRMARY",
           "InstitutionAddress": "1 HOSPITAL RD PLANTEDTOWN", "AccessionNumber": "ACC-123456",
           "ReferringPhysicianName": "WHO^PLANTED", "OperatorsName": "OPERATOR^PLANTED", "StationName": "STN-PLANTED",
           "StudyDate": "19990203", "SeriesDate": "19990204", "AcquisitionDate": "19990205", "StudyTime": "101112",
           "StudyID": "STUDY-PLANTED-7", "DeviceSerialNumber": "SN-PLANTED-42",
           "StudyDescription": "FOLLOW-UP JANE DOE", "SeriesDescription": "HEAD FOR DOE JANE"}
# the keys read_dicom may put in Image.meta: the allow-list plus the reader's own technical entries
META_KEYS = {k.lower() for k in dicom_module.TECHNICAL_TAGS} | {
    "transfer_syntax", "window_used", "inverted", "frames", "slice_spacing_from", "orientation", "slices",
    "skipped_files"}


def _image_texts(image) -> list[str]:
    """Every text an Image can show: repr, str, the default dataclass repr, each field, each meta key and value."""
    fields = {f.name: getattr(image, f.name) for f in dataclasses.fields(image) if f.name != "array"}
    return [repr(image), str(image), repr(fields), repr(image.meta), *map(str, image.meta),
            *map(str, image.meta.values()), str(image.modality), str(image.photometric), image.source]


def _assert_no_identifiers(image, planted: list[str]) -> None:
    assert set(image.meta) <= META_KEYS, f"meta keys outside the allow-list: {set(image.meta) - META_KEYS}"
    for text in _image_texts(image):
        for value in planted:
            for form in {value, value.replace("^", " ")}:
                assert form.lower() not in text.lower(), f"identifier {value!r} leaked into {text!r}"


def _planted_dataset(rows: int = 8, frames: int = 1) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    for keyword, value in PLANTED.items():
        setattr(ds, keyword, value)
    ds.add_new(0x00091010, "LO", "PRIVATE PLANTED NOTE")  # a private tag
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = generate_uid(), generate_uid(), generate_uid()
    ds.Modality, ds.Rows, ds.Columns, ds.SamplesPerPixel = "CT", rows, rows, 1
    ds.PhotometricInterpretation, ds.BitsAllocated, ds.BitsStored, ds.HighBit = "MONOCHROME2", 16, 16, 15
    ds.RescaleSlope, ds.RescaleIntercept, ds.Manufacturer = 1, -1024, "ACME"
    ds.PixelRepresentation = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = np.arange(frames * rows * rows, dtype=np.uint16).tobytes()
    return ds


def _uids(ds: Dataset) -> list[str]:
    return [str(ds.SOPInstanceUID), str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.FrameOfReferenceUID)]


@pytest.mark.parametrize("frames", [1, 3])
def test_planted_identifiers_are_not_returned(tmp_path: Path, frames: int) -> None:
    ds = _planted_dataset(frames=frames)
    path = tmp_path / "planted.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert pydicom.dcmread(path).PatientID == "PID-987654"  # they are in the file, to be stripped
    for image in (read_image(path), read_dicom(path, window=(40, 400)), read_dicom(path, apply_voi=True)):
        expected = np.arange(frames * 64).reshape((frames, 8, 8) if frames > 1 else (8, 8)) - 1024
        if image.meta["window_used"] == "none":
            np.testing.assert_array_equal(image.array, expected)
        assert image.meta["manufacturer"] == "ACME" and image.meta["rows"] == "8"  # technical tags do come through
        _assert_no_identifiers(image, [*PLANTED.values(), "PRIVATE PLANTED NOTE", *_uids(ds)])


def test_planted_identifiers_not_in_a_series_or_error_messages(tmp_path: Path) -> None:
    folder = tmp_path / "series"
    folder.mkdir()
    series_uid, frame_uid = generate_uid(), generate_uid()
    planted = [*PLANTED.values(), "PRIVATE PLANTED NOTE", series_uid, frame_uid]
    for k in range(4):
        ds = _planted_dataset()
        ds.SeriesInstanceUID, ds.FrameOfReferenceUID = series_uid, frame_uid
        ds.ImageOrientationPatient, ds.ImagePositionPatient = [1, 0, 0, 0, 1, 0], [0, 0, 2.5 * k]
        ds.PixelSpacing = [0.5, 0.5]
        ds.save_as(folder / f"{k}.dcm", enforce_file_format=True)
        planted.append(str(ds.SOPInstanceUID))
    image = read_image(folder)
    assert image.array.shape == (4, 8, 8) and image.spacing == pytest.approx((2.5, 0.5, 0.5))
    _assert_no_identifiers(image, planted)
    other = _planted_dataset()  # a second series in the folder: the error names a count, never a UID
    other.ImageOrientationPatient, other.ImagePositionPatient = [1, 0, 0, 0, 1, 0], [0, 0, 100]
    other.save_as(folder / "other.dcm", enforce_file_format=True)
    with pytest.raises(ValueError, match=r"series: 2 series found") as info:
        read_image(folder)
    del other.PixelData  # and a file without pixels: its error names the file and the SOP class only
    other.save_as(tmp_path / "nopixels.dcm", enforce_file_format=True)
    with pytest.raises(ValueError, match=r"nopixels\.dcm: DICOM file has no pixel data") as info_pixels:
        read_image(tmp_path / "nopixels.dcm")
    for message in (str(info.value), str(info_pixels.value)):
        assert not [v for v in [*planted, str(other.SeriesInstanceUID)] if v.lower() in message.lower()]


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
@pytest.mark.parametrize("keep, message", [
    (10, r"cut\.dcm: not a DICOM file"),                                      # inside the preamble
    (140, r"cut\.dcm: truncated or corrupt DICOM file \(no data set could be read"),  # inside the file meta
    (5000, r"cut\.dcm: DICOM file has no pixel data although its header describes a 128x128 image \(truncated\?\)"),
    (0.5, r"cut\.dcm: corrupt or truncated pixel data \(Explicit VR Little Endian"),  # inside the pixel data
])
def test_truncated_dicom_names_the_file(tmp_path: Path, keep: float, message: str) -> None:
    data = _testfile("CT_small.dcm").read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[: int(len(data) * keep) if keep < 1 else int(keep)])
    with pytest.raises(ValueError, match=message):
        read_dicom(path)


def test_truncated_jpeg2000_names_the_file(tmp_path: Path) -> None:
    data = _testfile("RG1_J2KR.dcm").read_bytes()
    path = tmp_path / "cut_j2k.dcm"
    path.write_bytes(data[: int(len(data) * 0.9)])
    with pytest.warns(UserWarning, match="End of file"), \
            pytest.raises(ValueError, match=r"cut_j2k\.dcm: truncated or corrupt DICOM file"):
        read_image(path)


@pytest.mark.parametrize("name", ["rtplan.dcm", "strip"])
def test_dicom_without_pixel_data(tmp_path: Path, name: str) -> None:
    if name == "strip":
        ds = _raw("CT_small.dcm")
        del ds.PixelData
        path = tmp_path / "nopixels.dcm"
        ds.save_as(path)
    else:
        path = _testfile(name)
    # the stripped CT still describes an image (a truncation looks the same); the RT plan names its SOP class
    detail = r"although its header describes a 128x128 image" if name == "strip" else r"\(SOP class RT Plan Storage\)"
    with pytest.raises(ValueError, match=rf"{path.name}: DICOM file has no pixel data {detail}.*expected an image"):
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
    # the decoder is installed, so a failure is a corrupt file, not a missing package
    with pytest.raises(ValueError, match=rf"SC_rgb_jpeg_dcmtk\.dcm: corrupt or truncated pixel data \(JPEG Baseline "
                                         rf"\(Process 1\); {error.__name__}: no decoder\)"):
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


def _edit_slice(path: Path, **tags) -> None:
    ds = pydicom.dcmread(path)
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    ds.save_as(path)


def test_mixed_orientation_in_one_series(tmp_path: Path, ich: pd.DataFrame) -> None:
    folder = tmp_path / "tilted"
    shutil.copytree(_series_folders(ich)[0], folder)
    _edit_slice(sorted(folder.glob("*.dcm"))[2], ImageOrientationPatient=[1, 0, 0, 0, 0, -1])
    with pytest.raises(ValueError, match=r"tilted: mixed slice orientations in one series"):
        read_dicom_series(folder)


def test_mixed_sizes_in_one_series(tmp_path: Path, ich: pd.DataFrame) -> None:
    folder = tmp_path / "sizes"
    shutil.copytree(_series_folders(ich)[0], folder)
    _edit_slice(sorted(folder.glob("*.dcm"))[1], Rows=16, Columns=16,
                PixelData=np.zeros((16, 16), np.uint16).tobytes())
    with pytest.raises(ValueError, match=r"sizes: slices of different sizes \[\(16, 16\), \(32, 32\)\]"):
        read_dicom_series(folder)


def test_colour_file_in_a_series_folder(tmp_path: Path, ich: pd.DataFrame) -> None:
    folder = tmp_path / "colour"
    shutil.copytree(_series_folders(ich)[0], folder)
    shutil.copy(_testfile("SC_rgb_small_odd.dcm"), folder / "zz_rgb.dcm")
    series = pydicom.dcmread(next(folder.glob("*.dcm")), stop_before_pixels=True).SeriesInstanceUID
    _edit_slice(folder / "zz_rgb.dcm", SeriesInstanceUID=series)  # same series, so the colour check is what fails
    with pytest.raises(ValueError, match=r"colour: zz_rgb\.dcm is not a single-frame greyscale image"):
        read_dicom_series(folder)


def test_single_slice_series_takes_the_header_spacing(tmp_path: Path, ich: pd.DataFrame) -> None:
    folder = tmp_path / "one"
    folder.mkdir()
    source = sorted(_series_folders(ich)[0].glob("*.dcm"))[0]
    shutil.copy(source, folder / source.name)
    image = read_dicom_series(folder)
    ds = pydicom.dcmread(source, stop_before_pixels=True)
    expected = float(ds.get("SpacingBetweenSlices") or ds.SliceThickness)
    assert image.array.shape == (1, 32, 32) and image.spacing[0] == pytest.approx(expected)
    assert image.meta["slice_spacing_from"].endswith("(one slice)")


def test_series_window_and_monochrome1(tmp_path: Path, ich: pd.DataFrame) -> None:
    folder = next(f for f in _series_folders(ich)  # an unsigned series: its stored range starts at 0
                  if pydicom.dcmread(next(f.glob("*.dcm")), stop_before_pixels=True).PixelRepresentation == 0)
    hu = read_dicom_series(folder)
    windowed = read_image(folder, window=(40, 80))
    np.testing.assert_allclose(windowed.array, _window(hu.array, 40, 80), atol=1e-6)
    assert windowed.meta["window_used"] == "config window 40/80"
    inverted = tmp_path / "mono1"
    shutil.copytree(folder, inverted)
    for path in inverted.glob("*.dcm"):
        _edit_slice(path, PhotometricInterpretation="MONOCHROME1")
    ds = pydicom.dcmread(next(inverted.glob("*.dcm")), stop_before_pixels=True)
    assert ds.PixelRepresentation == 0  # unsigned stored values: range 0 .. 2**bits - 1, then rescaled
    lo = float(ds.RescaleIntercept)
    hi = (2 ** int(ds.BitsStored) - 1) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_allclose(read_dicom_series(inverted).array, lo + hi - hu.array)
    np.testing.assert_allclose(read_image(inverted, window=(40, 80)).array, 1 - windowed.array, atol=1e-6)


def test_unwindowed_monochrome1_inverts_over_the_stored_range() -> None:
    ds = _raw("RG1_UNCR.dcm")
    image = read_dicom(_testfile("RG1_UNCR.dcm"), apply_voi=False)
    assert int(ds.BitsStored) == 15 and "RescaleSlope" not in ds
    np.testing.assert_array_equal(image.array, (2**15 - 1) - ds.pixel_array.astype(np.float32))
    assert image.meta["window_used"] == "none" and image.meta["inverted"] == "32767 - v (stored range)"


def _enhanced_with_per_frame_rescale(tmp_path: Path, intercepts: list[float]) -> tuple[Path, pydicom.Dataset]:
    ds = _raw("eCT_Supplemental.dcm")
    shared = ds.SharedFunctionalGroupsSequence[0]
    del shared.PixelValueTransformationSequence
    for frame, intercept in zip(ds.PerFrameFunctionalGroupsSequence, intercepts):
        item = Dataset()
        item.RescaleSlope, item.RescaleIntercept, item.RescaleType = 2, intercept, "HU"
        frame.PixelValueTransformationSequence = [item]
    path = tmp_path / "perframe.dcm"
    ds.save_as(path)
    return path, ds


def test_enhanced_per_frame_rescale(tmp_path: Path) -> None:
    path, ds = _enhanced_with_per_frame_rescale(tmp_path, [-1024.0, -1000.0])
    image = read_dicom(path)
    stored = ds.pixel_array.astype(np.float64)
    # frames come out sorted along the normal (file frame 1 first, see the test above), each with its own rescale
    np.testing.assert_allclose(image.array[0], stored[1] * 2 - 1000)
    np.testing.assert_allclose(image.array[1], stored[0] * 2 - 1024)


def test_multiframe_with_uneven_positions_keeps_file_order(tmp_path: Path) -> None:
    ds = _raw("eCT_Supplemental.dcm")
    item = Dataset()
    item.ImagePositionPatient = [99.5, -301.5, -159.0]
    ds.PerFrameFunctionalGroupsSequence[1].PlanePositionSequence = [item]  # both frames at one position (cine)
    ds.save_as(tmp_path / "cine.dcm")
    image = read_dicom(tmp_path / "cine.dcm")
    hu = read_dicom(_testfile("eCT_Supplemental.dcm")).array
    np.testing.assert_array_equal(image.array, hu[::-1])  # file order, no sorting
    assert image.spacing[0] == 10.0 and image.meta["slice_spacing_from"] == "SliceThickness (frames in file order)"
