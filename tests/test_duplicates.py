"""Duplicate images across sets: a planted exact copy, a rotated-and-rescaled copy, a mirrored copy and a
re-exposed copy are found across sets, distinct images are not, and the run-stopping rules name the pairs; the same
for volumes that share one anatomy, and for the synthetic cohorts' planted pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import ndimage

from medlib.data import duplicates
from medlib.data.duplicates import (DuplicateImagesError, check_pairs, cross_set_pairs, fingerprint, fingerprint_table,
                                    image_statistics)


def _radiograph(rng: np.random.Generator, side: int = 96) -> np.ndarray:
    """A distinct synthetic image: smooth anatomy-like background plus a few bright blobs."""
    yy, xx = np.mgrid[:side, :side] / side
    img = ndimage.gaussian_filter(rng.normal(size=(side, side)), 3) * 0.6 + 0.8 * (1 - (xx - 0.5) ** 2 - (yy - .5) ** 2)
    for _ in range(4):
        cy, cx, r = rng.uniform(0.15, 0.85, 2).tolist() + [rng.uniform(0.04, 0.12)]
        img += 1.5 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    return img


def _write(root: Path, name: str, array: np.ndarray) -> str:
    a = (np.clip((array - array.min()) / (np.ptp(array) + 1e-9), 0, 1) * 255).astype(np.uint8)
    path = root / f"{name}.png"
    Image.fromarray(a).save(path)
    return str(path)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("dups")
    rng = np.random.default_rng(7)
    images = {f"c{i:02d}": _radiograph(rng) for i in range(16)}
    src = images["c00"]
    turned = ndimage.zoom(ndimage.rotate(src, 5, reshape=False, mode="nearest"), 1.25)  # rotated 5 deg, 96 -> 120 px
    images.update({"copy_exact": src.copy(), "copy_turned": turned, "copy_mirror": images["c01"][:, ::-1],
                   "copy_exposed": 1.1 * images["c02"] ** 0.9 + rng.normal(0, 0.01, src.shape)})
    sets = ["train"] * 12 + ["val"] * 2 + ["test"] * 2 + ["test", "test", "val", "test"]
    table = pd.DataFrame({"case_id": list(images), "set": sets,
                          "image": [_write(root, k, v) for k, v in images.items()]})
    return table, fingerprint_table(table, ["image"])


def test_planted_copies_are_found_and_distinct_images_are_not(cohort):
    table, prints = cohort
    pairs = cross_set_pairs(table, prints, min_similarity=0.91)
    found = {(r.case_a, r.case_b, r.kind) for r in pairs.itertuples()}
    assert found == {("c00", "copy_exact", "exact"), ("c00", "copy_turned", "near"),
                     ("c01", "copy_mirror", "near"), ("c02", "copy_exposed", "near")}
    assert (pairs.loc[pairs.kind == "near", "similarity"] >= 0.91).all()
    assert set(pairs.set_a) == {"train"}


def test_similarity_does_not_depend_on_which_set_comes_first(tmp_path):
    """The variants (zooms of 7%) were tried of the first set's image only, so a zoomed copy scored lower
    (and a NEC pair was missed) when the copy's set came first; the similarity is the best of both ways."""
    rng = np.random.default_rng(1)
    images = {f"c{i:02d}": _radiograph(rng) for i in range(8)}
    zoomed = ndimage.zoom(images["c00"], 1.1)
    cut = (zoomed.shape[0] - 96) // 2
    images["copy_zoomed"] = zoomed[cut:cut + 96, cut:cut + 96]
    paths = {c: _write(tmp_path, c, a) for c, a in images.items()}
    found = []
    for first, second in (("train", "test"), ("test", "train")):
        sets = {c: first for c in ["c01", "c02", "c03", "copy_zoomed"]}
        sets.update({c: second for c in ["c00", "c04", "c05", "c06", "c07"]})
        table = pd.DataFrame({"case_id": list(sets), "set": list(sets.values()), "image": [paths[c] for c in sets]})
        pairs = cross_set_pairs(table, fingerprint_table(table, ["image"]), min_similarity=0.5)
        pair = pairs[pairs[["case_a", "case_b"]].isin(["c00", "copy_zoomed"]).all(axis=1)]
        found.append(float(pair["similarity"].iloc[0]))
    assert found[0] == found[1] > 0.94


def test_exact_duplicates_stop_the_run_unless_allowed(cohort):
    table, prints = cohort
    pairs = cross_set_pairs(table, prints, min_similarity=0.91)
    with pytest.raises(DuplicateImagesError, match=r"c00 \(train\) ~ copy_exact \(test\).*allow_exact_duplicates"):
        check_pairs(pairs, allow_exact=False, stop_on_near=False)
    check_pairs(pairs, allow_exact=True, stop_on_near=False)
    with pytest.raises(DuplicateImagesError, match="3 near-duplicate pair"):
        check_pairs(pairs, allow_exact=True, stop_on_near=True)


def test_image_statistics_one_row_per_case(cohort):
    table, prints = cohort
    stats = image_statistics(table, prints)
    assert list(stats.case_id) == list(table.case_id)
    first = np.asarray(Image.open(table.image[0]), dtype=float)
    assert stats.loc[0, "image_mean"] == pytest.approx(first.mean())
    assert stats.loc[0, "image_size_0"] == 96


def _zoomed(a: np.ndarray, factor: float, axes: tuple[int, ...]) -> np.ndarray:
    """``a`` zoomed by ``factor`` along ``axes`` about its centre (the synthetic cohorts' in-plane rescaling)."""
    centre = (np.array(a.shape) - 1) / 2
    matrix = np.diag([1 / factor if ax in axes else 1.0 for ax in range(a.ndim)])
    return ndimage.affine_transform(a, matrix, offset=centre - matrix @ centre, order=1, mode="nearest")


def test_volume_copies_are_found_and_distinct_volumes_of_one_anatomy_are_not():
    """24 distinct volumes share one head-like template (what made hashes of projections useless) and differ in
    their texture and a lesion; copies turned by 3.2 degrees, rescaled in-plane by 3.5% or recalibrated with new
    noise are found, and nothing else."""
    rng = np.random.default_rng(3)
    zz, yy, xx = np.mgrid[:40, :40, :40] / 40 - 0.5
    template = (zz ** 2 / 0.16 + yy ** 2 / 0.2 + xx ** 2 / 0.14 < 1).astype(float)

    def volume() -> np.ndarray:
        v = template * (1 + 2.4 * ndimage.gaussian_filter(rng.normal(size=template.shape), 2.5))
        c, r = rng.uniform(-0.2, 0.2, 3), rng.uniform(0.05, 0.1)
        return v + 0.8 * np.exp(-((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2) / (2 * r * r)) + \
            rng.normal(0, 0.02, v.shape)

    arrays = {f"c{i:02d}": volume() for i in range(24)}
    arrays.update({"copy_exact": arrays["c00"].copy(),
                   "copy_turned": ndimage.rotate(arrays["c01"], 3.2, axes=(1, 2), reshape=False, order=1,
                                                 mode="nearest"),
                   "copy_rescaled": _zoomed(arrays["c02"], 1.035, (1, 2)),
                   "copy_recalibrated": 1.15 * arrays["c03"] + 0.05 + rng.normal(0, 0.02, template.shape)})
    table = pd.DataFrame({"case_id": list(arrays), "set": ["train"] * 20 + ["test"] * 8, "image": list(arrays)})
    prints = fingerprint_table(table, ["image"], reader=lambda key: arrays[key])
    pairs = cross_set_pairs(table, prints, min_similarity=0.91)
    assert {(r.case_a, r.case_b, r.kind) for r in pairs.itertuples()} == {
        ("c00", "copy_exact", "exact"), ("c01", "copy_turned", "near"), ("c02", "copy_rescaled", "near"),
        ("c03", "copy_recalibrated", "near")}


def test_a_window_compares_volumes_as_the_study_sees_them():
    """With ``image.window`` the intensities outside it (air, bone) are clipped before the volume is compared."""
    rng = np.random.default_rng(0)
    ct = rng.normal(40, 10, (16, 24, 24))
    bone = ct.copy()
    bone[:, :2] = 1500.0  # a different skull, outside the brain window
    plain, windowed = fingerprint(ct, window=(40, 80)), fingerprint(bone, window=(40, 80))
    assert windowed.grid.shape == (32, 32, 32) and 0 <= windowed.grid.min() <= windowed.grid.max() <= 1
    assert not np.allclose(fingerprint(ct).grid, fingerprint(bone).grid, atol=0.05)
    inside = (slice(None), slice(8, None))  # away from the clipped rows (the anti-aliasing spreads them)
    np.testing.assert_allclose(plain.grid[inside], windowed.grid[inside], atol=1e-6)


@pytest.mark.parametrize("study, column, scale", [("nec", "xray", 0.2), ("glioma", "t1ce", 0.3)])
def test_synthetic_cohort_planted_pairs_are_found_exactly(tmp_path, study, column, scale):
    """The planted near-duplicates (near_duplicates.csv) of a 2D and a 3D cohort: every pair is found, nothing
    else."""
    synth = pytest.importorskip("medlib.synth")
    manifest = synth.generate(study, tmp_path, scale=scale)
    table = pd.read_csv(manifest, dtype=str)
    table["image"] = [str(manifest.parent / p) for p in table[column]]
    table["set"] = [f"s{i}" for i in range(len(table))]  # every case its own set: every pair is cross-set
    pairs = cross_set_pairs(table, fingerprint_table(table, ["image"]), min_similarity=0.91)
    truth = pd.read_csv(manifest.parent / "near_duplicates.csv")
    truth = truth[truth["column"] == column]
    assert len(truth) >= 3
    assert {frozenset(p) for p in zip(pairs.case_a, pairs.case_b)} == \
        {frozenset(p) for p in zip(truth.case_id_a, truth.case_id_b)}


@pytest.mark.parametrize("variant", [duplicates.VARIANTS_3D[4], duplicates.VARIANTS_3D[-1]])
def test_3d_variants_as_operators_equal_moving_and_filtering_each_volume(variant):
    """``similarity_3d`` moves and band-passes all volumes at once with matrices (``_mover``, ``_banded``); they
    give what ``scipy.ndimage`` gives volume by volume: the moved volume (``_about_centre``), then the difference
    of Gaussians at every second voxel."""
    volume = ndimage.gaussian_filter(np.random.default_rng(3).normal(size=(32, 32, 32)), 1.5).astype(np.float32)
    moved = duplicates._about_centre(volume, duplicates._forward(*variant))
    np.testing.assert_allclose((duplicates._mover(variant) @ volume.ravel()).reshape(volume.shape), moved,
                               atol=1e-5)
    band = ndimage.gaussian_filter(moved, duplicates.BAND[0]) - ndimage.gaussian_filter(moved, duplicates.BAND[1])
    np.testing.assert_allclose(duplicates._banded(moved.reshape(1, -1), duplicates._band_rows())[0],
                               band[::2, ::2, ::2].ravel(), atol=1e-5)
