"""Tests for medlib.data.imaging.read_image: dispatch by path, errors, and CT/mask alignment across formats."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydicom.data import get_testdata_file

from medlib import synth
from medlib.data.imaging import read_image

BLOOD_HU = (50.0, 100.0)  # the synthetic hematomas are 58-72 HU plus noise; brain ~30, skull > 600


@pytest.fixture(scope="module")
def ich(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    manifest = synth.generate("ich", tmp_path_factory.mktemp("ich"), scale=0.1, image_size=48)
    table = pd.read_csv(manifest)
    table["path_ct"] = [manifest.parent / p for p in table["ct"]]
    table["path_mask"] = [manifest.parent / p for p in table["mask"]]
    return table


def _ct_small() -> Path:
    path = get_testdata_file("CT_small.dcm", download=False)
    assert path is not None
    return Path(path)


# ------------------------------------------------------------------------------------------------- dispatch
def test_dispatch_by_kind(tmp_path: Path, reference_dir: Path) -> None:
    assert read_image(_ct_small()).modality == "CT"
    assert read_image(reference_dir / "images" / "00000001_000.png").meta["format"] == "PNG"
    assert read_image(reference_dir / "dicom" / "mr_t1_series").array.ndim == 3
    shutil.copy(_ct_small(), tmp_path / "IM0001")  # no suffix: recognised by the DICM preamble
    np.testing.assert_array_equal(read_image(tmp_path / "IM0001").array, read_image(_ct_small()).array)
    shutil.copy(_ct_small(), tmp_path / "UPPER.DCM")
    assert read_image(str(tmp_path / "UPPER.DCM")).array.shape == (128, 128)


def test_window_is_passed_to_dicom() -> None:
    image = read_image(_ct_small(), window=(40, 80))
    assert image.meta["window_used"] == "config window 40/80"
    assert 0.0 <= image.array.min() and image.array.max() <= 1.0


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "scan.xyz"
    path.write_bytes(b"\x00" * 300)
    with pytest.raises(ValueError, match=r"scan\.xyz: unsupported image file; expected DICOM"):
        read_image(path)


@pytest.mark.parametrize("name", ["absent.dcm", "absent.nii.gz", "absent_folder"])
def test_missing_path(tmp_path: Path, name: str) -> None:
    with pytest.raises(FileNotFoundError, match=rf"image not found: .*{name}"):
        read_image(tmp_path / name)


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no DICOM files in the folder"):
        read_image(tmp_path)


# ------------------------------------------------------------------------------------- mask / CT alignment
def _blood_fraction(ct: np.ndarray, region: np.ndarray) -> float:
    values = ct[region]
    return float(((values >= BLOOD_HU[0]) & (values <= BLOOD_HU[1])).mean())


def _check_alignment(ct_path: Path, mask_path: Path) -> None:
    ct, mask = read_image(ct_path), read_image(mask_path)
    assert ct.array.shape == mask.array.shape, f"{ct_path.name}: CT and mask shapes differ"
    assert ct.spacing == pytest.approx(mask.spacing, rel=1e-5)
    inside = mask.array > 0.5
    assert inside.sum() > 50
    assert ct.array[inside].mean() > 50, f"{ct_path.name}: mean HU inside the mask is not blood-like"
    assert _blood_fraction(ct.array, inside) > 0.5
    for axis in (0, 1, 2):  # a mask flipped along any axis lands mostly outside the hematoma
        flipped = np.flip(inside, axis)
        outside = flipped & ~inside
        if outside.sum() >= 50:
            assert _blood_fraction(ct.array, outside) < 0.2, f"{ct_path.name}: flip along axis {axis} fits too"
            # medians: a flipped mask may touch the skull (> 600 HU), which would inflate a mean
            assert np.median(ct.array[inside]) > np.median(ct.array[outside]) + 15


def test_dicom_series_ct_lines_up_with_nifti_mask(ich: pd.DataFrame) -> None:
    cases = ich[[p.is_dir() for p in ich["path_ct"]]]
    assert len(cases) >= 5
    for _, case in cases.iterrows():
        _check_alignment(case["path_ct"], case["path_mask"])


def test_nifti_ct_lines_up_with_nifti_mask(ich: pd.DataFrame) -> None:
    cases = ich[[p.name.endswith(".nii.gz") for p in ich["path_ct"]]]
    assert len(cases) >= 5
    for _, case in cases.iterrows():
        _check_alignment(case["path_ct"], case["path_mask"])


def test_window_applies_to_nifti_and_png(tmp_path: Path, reference_dir: Path) -> None:
    """A config window means the same for every kind: (centre, width) in the image's units, output 0..1."""
    from medlib.data.imaging import apply_window, read_nifti, read_png

    nib = pytest.importorskip("nibabel")
    values = np.linspace(-200, 200, 60, dtype=np.float32).reshape(3, 4, 5)
    nib.save(nib.Nifti1Image(values, np.diag([-1.0, -1.0, 1.0, 1.0])), tmp_path / "ct.nii.gz")
    png = reference_dir / "images" / "00000001_000.png"
    for path, reader in ((tmp_path / "ct.nii.gz", read_nifti), (png, read_png)):
        plain, windowed = reader(path), read_image(path, window=(40, 80))
        np.testing.assert_array_equal(windowed.array, apply_window(plain.array, 40, 80))
        assert windowed.meta["window_used"] == "config window 40/80" and plain.meta.get("window_used") is None
        assert 0 <= windowed.array.min() and windowed.array.max() <= 1


def test_unknown_extension_names_every_supported_kind(tmp_path: Path) -> None:
    path = tmp_path / "scan.mha"
    path.write_bytes(b"ObjectType = Image\n")
    with pytest.raises(ValueError, match=r"scan\.mha: unsupported image file; expected DICOM .* a DICOM series folder, "
                                         r"NIfTI \(\.nii, \.nii\.gz\) or PNG/JPEG"):
        read_image(path)
