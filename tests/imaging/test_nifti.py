"""Tests for medlib.data.imaging.nifti: reorientation to (S, P, L), spacing, and what a NIfTI reader must reject."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from medlib import synth
from medlib.data.imaging import read_dicom_series, read_nifti


def _save(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


def test_lps_affine_is_only_transposed(tmp_path: Path) -> None:
    data = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)  # (i, j, k)
    affine = np.diag([-0.5, -0.7, 2.0, 1.0])  # RAS: i towards L, j towards P, k towards S
    image = read_nifti(_save(tmp_path / "lps.nii.gz", data, affine))
    np.testing.assert_array_equal(image.array, data.transpose(2, 1, 0))
    assert image.spacing == pytest.approx((2.0, 0.7, 0.5))
    assert image.meta["axes"] == "D,H,W = S,P,L" and image.array.dtype == np.float32


def test_ras_affine_is_flipped_to_lps(tmp_path: Path) -> None:
    data = np.random.default_rng(0).random((4, 5, 6)).astype(np.float32)
    image = read_nifti(_save(tmp_path / "ras.nii", data, np.diag([1.0, 1.0, 1.0, 1.0])))
    np.testing.assert_array_equal(image.array, data[::-1, ::-1, :].transpose(2, 1, 0))


def test_permuted_axes_scaling_and_spacing(tmp_path: Path) -> None:
    data = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)
    # voxel i runs towards S (3 mm), j towards R (0.5 mm), k towards A (0.7 mm)
    affine = np.array([[0, 0.5, 0, 0], [0, 0, 0.7, 0], [3, 0, 0, 0], [0, 0, 0, 1.0]])
    img = nib.Nifti1Image(data, affine)
    img.header.set_slope_inter(2.0, -10.0)
    nib.save(img, tmp_path / "perm.nii.gz")
    image = read_nifti(tmp_path / "perm.nii.gz")
    scaled = data.astype(np.float32) * 2 - 10
    # D = S = +i; H = P = reversed k; W = L = reversed j
    np.testing.assert_array_equal(image.array, scaled[:, ::-1, ::-1].transpose(0, 2, 1))
    assert image.array.shape == (2, 4, 3)
    assert image.spacing == pytest.approx((3.0, 0.7, 0.5))


def test_4d_with_one_volume_is_accepted(tmp_path: Path) -> None:
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4, 1)
    image = read_nifti(_save(tmp_path / "one.nii.gz", data, np.diag([-1.0, -1.0, 1.0, 1.0])))
    np.testing.assert_array_equal(image.array, data[..., 0].transpose(2, 1, 0))


@pytest.mark.parametrize("shape", [(4, 5), (4, 5, 6, 2, 2), (4, 5, 6, 3)])
def test_not_3d_is_rejected(tmp_path: Path, shape: tuple[int, ...]) -> None:
    path = _save(tmp_path / f"d{len(shape)}.nii.gz", np.zeros(shape, np.float32), np.eye(4))
    pattern = rf"d{len(shape)}\.nii\.gz: NIfTI image has shape \({', '.join(map(str, shape))}\); expected a 3D volume"
    with pytest.raises(ValueError, match=pattern):
        read_nifti(path)


def test_corrupt_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.nii.gz"
    path.write_bytes(b"not a nifti file" * 20)
    with pytest.raises(ValueError, match=r"broken\.nii\.gz: unreadable NIfTI file"):
        read_nifti(path)


def test_matches_simpleitk_conversion_of_a_dicom_series(tmp_path: Path) -> None:
    """An independent DICOM-to-NIfTI converter (ITK) gives the volume read_dicom_series gives."""
    sitk = pytest.importorskip("SimpleITK")
    manifest = synth.generate("ich", tmp_path, scale=0.1, image_size=24)
    table = pd.read_csv(manifest)
    folder = next(manifest.parent / p for p in table["ct"] if not p.endswith(".nii.gz"))
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    sitk.WriteImage(reader.Execute(), str(tmp_path / "itk.nii.gz"))
    series, converted = read_dicom_series(folder), read_nifti(tmp_path / "itk.nii.gz")
    np.testing.assert_allclose(converted.array, series.array)
    assert converted.spacing == pytest.approx(series.spacing, rel=1e-5)


def test_same_as_closest_canonical_transposed_then_flipped_in_plane(tmp_path: Path) -> None:
    """Independent check: RAS canonical (nibabel), transposed to (z, y, x), then rows and columns flipped to P, L."""
    rng = np.random.default_rng(3)
    data = rng.random((5, 6, 7)).astype(np.float32)
    rotation = np.array([[0, 0, -1.5], [2.0, 0, 0], [0, -0.8, 0]])  # i → A, j → I, k → L: oblique to nothing
    affine = np.eye(4)
    affine[:3, :3] = rotation
    path = _save(tmp_path / "odd.nii.gz", data, affine)
    canonical = nib.as_closest_canonical(nib.load(path))
    expected = np.asarray(canonical.dataobj, dtype=np.float32).transpose(2, 1, 0)[:, ::-1, ::-1]
    image = read_nifti(path)
    np.testing.assert_array_equal(image.array, expected)
    zooms = canonical.header.get_zooms()
    assert image.spacing == pytest.approx((zooms[2], zooms[1], zooms[0])) == (0.8, 2.0, 1.5)
    assert image.meta["orientation"] == "AIL" and image.meta["slices"] == image.array.shape[0] == 6


def test_ibsi_phantom_volume_by_voxel_counting(reference_dir: Path) -> None:
    """IBSI 1 digital phantom: ROI volume by voxel counting 592 mm^3 and mean intensity 2.15 (consensus values)."""
    folder = reference_dir / "ibsi" / "ibsi_1_digital_phantom" / "nifti"
    image, mask = read_nifti(folder / "image" / "phantom.nii.gz"), read_nifti(folder / "mask" / "mask.nii.gz")
    assert image.array.shape == mask.array.shape == (4, 4, 5) and image.spacing == (2.0, 2.0, 2.0)
    inside = mask.array > 0.5
    assert inside.sum() * np.prod(mask.spacing) == pytest.approx(592)
    assert image.array[inside].mean() == pytest.approx(2.15, abs=0.005)


def test_missing_nifti_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"NIfTI file not found: .*gone\.nii\.gz"):
        read_nifti(tmp_path / "gone.nii.gz")
