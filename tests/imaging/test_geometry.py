"""Image geometry (issue #20, classes 3 and 4): the index-to-patient affine of every reader, checked against
nibabel's own affine of the untouched file, and the checks that refuse masks and sequences off their image."""

from __future__ import annotations

import itertools

import nibabel as nib
import numpy as np
import pytest

from medlib.data.imaging import check_same_grid, read_geometry, read_image, read_with_mask
from medlib.data.imaging.geometry import Geometry, check_affine

LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _oriented(perm: tuple[int, int, int], signs: tuple[int, int, int]) -> np.ndarray:
    affine = np.zeros((4, 4))
    for axis, (world, sign) in enumerate(zip(perm, signs)):
        affine[world, axis] = sign * (0.8 + 0.3 * axis)
    affine[:3, 3] = [12.5, -40.0, 7.25]
    affine[3, 3] = 1
    return affine


@pytest.mark.parametrize("perm, signs", [(p, s) for p in itertools.permutations(range(3))
                                         for s in [(1, 1, 1), (-1, 1, -1), (-1, -1, 1)]][::2])
def test_nifti_affine_maps_each_voxel_where_nibabel_does(tmp_path, perm, signs):
    """Reference: nibabel's affine applied to the voxel's index in the file, converted RAS → LPS."""
    data = np.arange(5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7)  # every voxel value unique
    affine = _oriented(perm, signs)
    path = tmp_path / "v.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), path)
    image = read_image(path)
    for value in (0.0, 17.0, 123.0, float(data.size - 1)):
        ijk = np.argwhere(data == value)[0]
        expected = (LPS @ affine @ np.r_[ijk, 1])[:3]
        dhw = np.argwhere(image.array == value)[0]
        np.testing.assert_allclose((image.affine @ np.r_[dhw, 1])[:3], expected, atol=1e-4)
    header_only = read_geometry(path)
    np.testing.assert_allclose(header_only.affine, image.affine, atol=1e-5)
    assert header_only.shape == image.array.shape and np.allclose(header_only.spacing, image.spacing)


def test_a_mask_with_a_flipped_affine_but_the_same_world_places_is_accepted(tmp_path):
    data = np.zeros((6, 6, 4), np.float32)
    data[1:3, 2:4, 1] = 1
    affine = _oriented((0, 1, 2), (1, 1, 1))
    nib.save(nib.Nifti1Image(data + 5, affine), tmp_path / "img.nii.gz")
    flip = affine.copy()
    flip[:3, 0] = -affine[:3, 0]
    flip[:3, 3] = affine[:3, 3] + affine[:3, 0] * 5  # voxel 5 of the flipped file is voxel 0 of the image
    nib.save(nib.Nifti1Image(data[::-1].copy(), flip), tmp_path / "mask.nii.gz")
    image, mask = read_with_mask(tmp_path / "img.nii.gz", tmp_path / "mask.nii.gz")
    np.testing.assert_array_equal(mask, image.array > 5.5)  # lined up voxel for voxel


def test_a_mask_shifted_by_half_a_voxel_is_refused(tmp_path):
    affine = _oriented((0, 1, 2), (1, 1, 1))
    nib.save(nib.Nifti1Image(np.ones((6, 6, 4), np.float32), affine), tmp_path / "img.nii.gz")
    moved = affine.copy()
    moved[0, 3] += 0.4
    nib.save(nib.Nifti1Image(np.ones((6, 6, 4), np.float32), moved), tmp_path / "mask.nii.gz")
    with pytest.raises(ValueError, match=r"mask .*mask\.nii\.gz and image .*img\.nii\.gz: the mask does not lie on "
                                         r"the image \(origins 0\.40 mm apart"):
        read_with_mask(tmp_path / "img.nii.gz", tmp_path / "mask.nii.gz")


@pytest.mark.parametrize("change, words", [
    (lambda a: a @ np.array([[1, 0.3, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]), "sheared or skewed"),
    (lambda a: a * np.array([1, 1, 0, 1.0]), "singular"),
    (lambda a: a + np.array([[0, 0, 0, np.nan]] + [[0] * 4] * 3), "NaN or infinite"),
])
def test_unusable_affines_are_refused(change, words):
    with pytest.raises(ValueError, match=f"f.nii: the affine .*{words}"):
        check_affine(change(np.diag([1.0, 1.0, 2.0, 1.0])), "f.nii")


def test_grids_without_an_affine_compare_by_shape_and_spacing():
    a = Geometry((4, 4), (1.0, 1.0), None, "a.png")
    check_same_grid(a, Geometry((4, 4), (1.0, 1.0), None, "m.png"))
    with pytest.raises(ValueError, match=r"mask shape \(4, 5\) differs from image shape \(4, 4\)"):
        check_same_grid(a, Geometry((4, 5), (1.0, 1.0), None, "m.png"))
