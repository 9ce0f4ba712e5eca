"""Tests for medlib.data.preprocess: resize, normalise, window, crop to mask, and the on-disk cache."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import medlib.data.preprocess as pp
from medlib.data.imaging import Image, read_image
from medlib.data.preprocess import (cache_key, load_preprocessed, normalize_intensity, preprocess, preprocess_many,
                               resize)

SETTINGS = {"size": (8, 8, 8), "window": (40, 80), "crop_to_mask": False, "margin": 0.1, "normalize": "zscore"}


def _image(array: np.ndarray, source: str = "test.nii.gz") -> Image:
    return Image(array=array.astype(np.float32), spacing=(1.0,) * array.ndim, source=source)


def _write_volumes(folder: Path, n: int = 3) -> list[Path]:
    rng = np.random.default_rng(5)
    paths = []
    for i in range(n):
        path = folder / f"vol{i}.nii.gz"
        nib.save(nib.Nifti1Image(rng.normal(30, 40, (12, 10, 9)).astype(np.float32), np.diag([-1, -1, 1, 1.0])),
                 path)
        paths.append(path)
    return paths


# ----------------------------------------------------------------------------------------- pure functions
@pytest.mark.parametrize("shape, size", [((40, 30), (16, 16)), ((10, 20), (32, 48)), ((6, 20, 24), (4, 8, 8)),
                                         ((5, 7, 9), (5, 7, 9))])
def test_resize_shapes(shape: tuple[int, ...], size: tuple[int, ...]) -> None:
    array = np.random.default_rng(0).random(shape).astype(np.float32)
    out = resize(array, size)
    assert out.shape == size and out.dtype == np.float32
    assert out.min() >= array.min() - 1e-5 and out.max() <= array.max() + 1e-5  # interpolation stays in range


def test_resize_constant_stays_constant() -> None:
    np.testing.assert_allclose(resize(np.full((50, 70), 3.0, np.float32), (7, 9)), 3.0, rtol=1e-6)
    np.testing.assert_allclose(resize(np.full((6, 8, 10), -2.0, np.float32), (3, 4, 5)), -2.0, rtol=1e-6)


def test_normalize_intensity() -> None:
    array = np.random.default_rng(1).normal(100, 20, (30, 30)).astype(np.float32)
    z = normalize_intensity(array, "zscore")
    assert z.mean() == pytest.approx(0, abs=1e-5) and z.std() == pytest.approx(1, abs=1e-5)
    m = normalize_intensity(array, "minmax")
    assert m.min() == 0.0 and m.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(normalize_intensity(array, "none"), array)
    np.testing.assert_array_equal(normalize_intensity(np.full((3, 3), 7.0, np.float32), "zscore"), 0.0)
    np.testing.assert_array_equal(normalize_intensity(np.full((3, 3), 7.0, np.float32), "minmax"), 0.0)
    with pytest.raises(ValueError, match=r"normalize must be 'zscore', 'minmax' or 'none'; got 'l2'"):
        normalize_intensity(array, "l2")  # type: ignore[arg-type]


def test_window_clips_before_normalising() -> None:
    array = np.linspace(-1000, 1000, 64 * 64, dtype=np.float32).reshape(64, 64)
    out = preprocess(_image(array), size=(64, 64), window=(40, 80), normalize="none")
    assert out.min() == 0.0 and out.max() == 80.0
    np.testing.assert_array_equal(out, np.clip(array, 0, 80))
    scaled = preprocess(_image(array), size=(64, 64), window=(40, 80), normalize="minmax")
    assert scaled.min() == 0.0 and scaled.max() == 1.0


def test_crop_to_mask_fills_the_output_with_the_roi() -> None:
    array = np.zeros((100, 100), np.float32)
    array[40:60, 30:50] = 1000.0
    mask = np.zeros_like(array)
    mask[40:60, 30:50] = 1
    out = preprocess(_image(array), size=(16, 16), mask=mask, crop_to_mask=True, margin=0.0, normalize="none")
    np.testing.assert_allclose(out, 1000.0, rtol=1e-5)  # the bright square fills the output
    whole = preprocess(_image(array), size=(16, 16), normalize="none")
    assert (whole > 500).mean() < 0.1  # without cropping it is a small part
    padded = preprocess(_image(array), size=(24, 24), mask=mask, crop_to_mask=True, margin=0.5, normalize="none")
    # margin 0.5 of a 20-pixel box adds 10 pixels each side: the square is the central half of each axis
    assert padded[12, 12] == pytest.approx(1000.0) and padded[0, 0] == pytest.approx(0.0)
    assert (padded > 500).mean() == pytest.approx(0.25, abs=0.05)


def test_crop_to_mask_in_3d_clamps_at_the_border() -> None:
    array = np.zeros((10, 20, 20), np.float32)
    array[0:3, 0:5, 15:20] = 50.0
    mask = (array > 0).astype(np.float32)
    out = preprocess(_image(array), size=(3, 5, 5), mask=mask, crop_to_mask=True, margin=1.0, normalize="none")
    assert out.shape == (3, 5, 5) and out.max() == pytest.approx(50.0, rel=1e-3)


def test_mask_errors() -> None:
    image = _image(np.ones((10, 10)), source="case7.png")
    with pytest.raises(ValueError, match=r"case7\.png: the mask is empty; cannot crop to it"):
        preprocess(image, size=(4, 4), mask=np.zeros((10, 10)), crop_to_mask=True)
    with pytest.raises(ValueError, match=r"case7\.png: image\.crop_to_mask is set but the case has no mask"):
        preprocess(image, size=(4, 4), crop_to_mask=True)
    with pytest.raises(ValueError, match=r"case7\.png: mask shape \(10, 11\) differs from image shape \(10, 10\)"):
        preprocess(image, size=(4, 4), mask=np.ones((10, 11)), crop_to_mask=True)


def test_dimension_mismatch() -> None:
    with pytest.raises(ValueError, match=r"case\.png: image has 2 dimensions \(10, 10\), but image\.size \[4, 4, 4\] "
                                         r"has 3; use \(H, W\) for 2D images"):
        preprocess(_image(np.ones((10, 10)), source="case.png"), size=(4, 4, 4))


def test_inputs_are_not_mutated() -> None:
    array = np.random.default_rng(2).normal(0, 300, (20, 20)).astype(np.float32)
    mask = np.zeros((20, 20), np.float32)
    mask[5:10, 5:10] = 1
    image = _image(array)
    before, mask_before = image.array.copy(), mask.copy()
    for size in ((20, 20), (8, 8)):  # same size too: resize may not return the caller's array
        out = preprocess(image, size=size, mask=mask, crop_to_mask=size == (8, 8), window=(0, 100))
        out += 1
    np.testing.assert_array_equal(image.array, before)
    np.testing.assert_array_equal(mask, mask_before)


# --------------------------------------------------------------------------------------------------- cache
def test_cache_hit_does_not_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (path,) = _write_volumes(tmp_path, 1)
    calls = []

    def counting(p, **kwargs):
        calls.append(Path(p))
        return read_image(p, **kwargs)

    monkeypatch.setattr(pp, "read_image", counting)
    first = load_preprocessed(path, SETTINGS, cache_dir=tmp_path / "cache")
    assert len(calls) == 1 and first.shape == (8, 8, 8)
    second = load_preprocessed(path, SETTINGS, cache_dir=tmp_path / "cache")
    assert len(calls) == 1
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, pp.compute_preprocessed(path, SETTINGS))
    files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].suffix == ".npy" and not files[0].name.startswith(".")
    assert files[0].stem == cache_key(path, SETTINGS)


def test_cache_key_changes_with_settings_and_file(tmp_path: Path) -> None:
    (path,) = _write_volumes(tmp_path, 1)
    key = cache_key(path, SETTINGS)
    assert key == cache_key(path, {**SETTINGS, "size": [8, 8, 8]})  # tuple or list: same settings
    assert key == cache_key(str(path), dict(reversed(list(SETTINGS.items()))))
    for change in ({"size": (8, 8, 4)}, {"window": None}, {"normalize": "minmax"}, {"margin": 0.2}):
        assert cache_key(path, {**SETTINGS, **change}) != key, change
    assert cache_key(path, SETTINGS, mask_path=path) != key
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    assert cache_key(path, SETTINGS) != key


def test_touched_file_is_recomputed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (path,) = _write_volumes(tmp_path, 1)
    load_preprocessed(path, SETTINGS, cache_dir=tmp_path / "cache")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    calls = []
    monkeypatch.setattr(pp, "read_image", lambda p, **kw: calls.append(p) or read_image(p, **kw))
    load_preprocessed(path, SETTINGS, cache_dir=tmp_path / "cache")
    assert len(calls) == 1
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 2


@pytest.mark.parametrize("damage", [b"", b"garbage that is not an npy file", "truncate"])
def test_corrupted_cache_entry_is_recomputed(tmp_path: Path, damage: bytes | str) -> None:
    (path,) = _write_volumes(tmp_path, 1)
    good = load_preprocessed(path, SETTINGS, cache_dir=tmp_path / "cache")
    (entry,) = (tmp_path / "cache").rglob("*.npy")
    entry.write_bytes(entry.read_bytes()[:150] if damage == "truncate" else damage)
    again = load_preprocessed(path, SETTINGS, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(again, good)
    np.testing.assert_array_equal(np.load(entry), good)  # rewritten


def test_settings_are_checked(tmp_path: Path) -> None:
    (path,) = _write_volumes(tmp_path, 1)
    with pytest.raises(ValueError, match=r"preprocessing settings must hold .*got \['interp', 'size'\]"):
        load_preprocessed(path, {"size": (4, 4, 4), "interp": "cubic"}, cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"\('size' required\); got \['normalize'\]"):
        load_preprocessed(path, {"normalize": "none"}, cache_dir=tmp_path)


def test_crop_uses_the_mask_file_in_the_key(tmp_path: Path) -> None:
    (path,) = _write_volumes(tmp_path, 1)
    mask = np.zeros((12, 10, 9), np.uint8)
    mask[2:6, 3:7, 1:5] = 1
    mask_path = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(mask, np.diag([-1, -1, 1, 1.0])), mask_path)
    settings = {**SETTINGS, "crop_to_mask": True, "size": (4, 4, 4)}
    cropped = load_preprocessed(path, settings, cache_dir=tmp_path / "cache", mask_path=mask_path)
    direct = preprocess(read_image(path), mask=read_image(mask_path).array, **settings)
    np.testing.assert_array_equal(cropped, direct)
    with pytest.raises(ValueError, match=r"vol0\.nii\.gz: image\.crop_to_mask is set but the case has no mask"):
        load_preprocessed(path, settings, cache_dir=tmp_path / "cache")


def test_preprocess_many_parallel_equals_serial(tmp_path: Path) -> None:
    paths = _write_volumes(tmp_path, 3)
    serial = preprocess_many(paths, SETTINGS, cache_dir=tmp_path / "c1", workers=1)
    parallel = preprocess_many(paths, SETTINGS, cache_dir=tmp_path / "c2", workers=2)
    assert serial.shape == (3, 8, 8, 8)
    np.testing.assert_array_equal(serial, parallel)
    assert len(list((tmp_path / "c2").rglob("*.npy"))) == 3
    with pytest.raises(ValueError, match=r"mask_paths has 1 entries for 3 images"):
        preprocess_many(paths, SETTINGS, cache_dir=tmp_path / "c1", mask_paths=[None])


# ------------------------------------------------------------------------------------ spacing, antialiasing
def test_target_spacing_keeps_millimetres_and_pads_with_background() -> None:
    array = np.zeros((40, 60), np.float32)
    array[10:30, 20:40] = 100.0  # a 20 x 20 pixel square = 10 x 10 mm at 0.5 mm
    image = Image(array=array, spacing=(0.5, 0.5), source="half_mm.png")
    out = preprocess(image, size=(32, 32), spacing=(1.0, 1.0), normalize="none")
    # resampled to 20 x 30 pixels of 1 mm, then padded (rows) and cropped (columns) around the centre
    assert out.shape == (32, 32)
    bright = out > 50
    rows, cols = np.nonzero(bright)
    assert bright.sum() == pytest.approx(100, abs=12)  # 10 x 10 mm at 1 mm per pixel
    assert (rows.min() + rows.max()) / 2 == pytest.approx(15.5, abs=1)  # centred
    assert (cols.min() + cols.max()) / 2 == pytest.approx(15.5, abs=1)
    assert out[0, 0] == 0.0 and out[-1, -1] == 0.0  # padding = the image's minimum (background)
    coarse = preprocess(Image(array=array, spacing=(1.0, 1.0), source="one_mm.png"), size=(32, 32),
                        spacing=(1.0, 1.0), normalize="none")
    assert (coarse > 50).sum() == pytest.approx(4 * bright.sum(), rel=0.15)  # same pixels, twice the size in mm


def test_target_spacing_in_3d_and_errors() -> None:
    volume = np.random.default_rng(4).normal(0, 1, (10, 20, 20)).astype(np.float32)
    image = Image(array=volume, spacing=(3.0, 0.5, 0.5), source="ct_series")
    out = preprocess(image, size=(30, 10, 10), spacing=(1.0, 1.0, 1.0), normalize="none")
    assert out.shape == (30, 10, 10)  # 10 slices of 3 mm = 30 slices of 1 mm; 20 x 0.5 mm = 10 pixels of 1 mm
    with pytest.raises(ValueError, match=r"spacing must give one positive spacing in mm per axis; got \[1\.0, 1\.0\]"):
        preprocess(image, size=(30, 10, 10), spacing=(1.0, 1.0))
    with pytest.raises(ValueError, match=r"ct_series: window width must be > 0; got 0"):
        preprocess(image, size=(30, 10, 10), window=(40, 0))


def test_downsampling_is_antialiased() -> None:
    """White noise shrunk 6x per axis: averaging ~6^3 voxels leaves SD ~ 1/sqrt(216) = 0.07; plain trilinear
    interpolation samples 8 voxels and leaves SD ~ 0.35, i.e. noise that aliases into the small image."""
    import torch
    import torch.nn.functional as F

    noise = np.random.default_rng(0).normal(0, 1, (48, 48, 48)).astype(np.float32)
    plain = F.interpolate(torch.from_numpy(noise)[None, None], size=(8, 8, 8), mode="trilinear")[0, 0].numpy()
    assert resize(noise, (8, 8, 8)).std() < 0.1 < 0.3 < plain.std()
    assert resize(noise[0], (8, 8)).std() < 0.2  # 2D: torch's antialiased bilinear (box ideal 1/6)
    np.testing.assert_allclose(resize(noise, (8, 96, 24)).shape, (8, 96, 24))  # mixed shrink and enlarge


def test_resize_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match=r"size must give one positive length per axis .*got size \(4, 0\)"):
        resize(np.ones((5, 5), np.float32), (4, 0))


# -------------------------------------------------------------------------------------- cache, with DICOM
def _ct_small() -> Path:
    from pydicom.data import get_testdata_file

    path = get_testdata_file("CT_small.dcm", download=False)
    assert path is not None, "CT_small.dcm not found: install pydicom-data"
    return Path(path)


def test_cache_hit_decodes_no_dicom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pydicom

    source = tmp_path / "ct.dcm"
    source.write_bytes(_ct_small().read_bytes())
    calls = []
    original = pydicom.dcmread
    monkeypatch.setattr(pydicom, "dcmread", lambda *a, **kw: calls.append(a[0]) or original(*a, **kw))
    settings = {"size": (16, 16), "window": (40, 400), "crop_to_mask": False, "margin": 0.1, "normalize": "minmax"}
    first = load_preprocessed(source, settings, cache_dir=tmp_path / "cache")
    assert len(calls) == 1 and first.shape == (16, 16) and first.dtype == np.float32
    second = load_preprocessed(source, settings, cache_dir=tmp_path / "cache")
    assert len(calls) == 1  # read from the .npy; pydicom not called
    np.testing.assert_array_equal(first, second)
    second += 1  # the caller owns what it gets
    np.testing.assert_array_equal(load_preprocessed(source, settings, cache_dir=tmp_path / "cache"), first)


def test_cache_of_a_dicom_with_identifiers_holds_only_numbers(tmp_path: Path) -> None:
    import pydicom

    ds = pydicom.dcmread(_ct_small())
    ds.PatientName, ds.PatientID, ds.InstitutionName = "DOE^PLANTED", "PID-PLANTED-1", "PLANTED HOSPITAL"
    ds.save_as(tmp_path / "named.dcm")
    load_preprocessed(tmp_path / "named.dcm", {"size": (8, 8)}, cache_dir=tmp_path / "cache")
    (entry,) = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    raw = entry.read_bytes()
    for value in ("PLANTED", str(ds.SOPInstanceUID), str(ds.StudyInstanceUID), "named"):
        assert value.encode() not in raw
    loaded = np.load(entry, allow_pickle=False)  # a plain array: no pickled objects
    assert loaded.dtype == np.float32 and loaded.shape == (8, 8)


def test_cache_key_with_numpy_settings_and_a_folder(tmp_path: Path) -> None:
    (path,) = _write_volumes(tmp_path, 1)
    plain = cache_key(path, {"size": (8, 8, 8), "margin": 0.1})
    assert cache_key(path, {"size": np.array([8, 8, 8]), "margin": np.float64(0.1)}) == plain
    assert cache_key(path, {"size": (8, 8, 8), "margin": 0.1, "spacing": None}) == plain
    assert cache_key(path, {"size": (8, 8, 8), "margin": 0.1, "spacing": (1, 1, 1)}) != plain
    with pytest.raises(TypeError, match=r"preprocessing setting value .* of type object is not JSON-serialisable"):
        cache_key(path, {"size": object()})
    folder = tmp_path / "series"
    folder.mkdir()
    (folder / "a.dcm").write_bytes(b"1")
    before = cache_key(folder, {"size": (8, 8, 8)})
    (folder / "b.dcm").write_bytes(b"2")  # a slice added to a series folder changes the key
    assert cache_key(folder, {"size": (8, 8, 8)}) != before


def test_preprocess_many_needs_paths(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"paths is empty; expected at least one image"):
        preprocess_many([], SETTINGS, cache_dir=tmp_path)


# --------------------------------------------- MONAI where it gives the same numbers as the code it replaced
def _old_bounding_box(mask: np.ndarray, margin: float) -> tuple[slice, ...]:
    """The bounding box code before MONAI's generate_spatial_bounding_box, frozen."""
    coords = np.argwhere(mask)
    lo, hi = coords.min(axis=0), coords.max(axis=0) + 1
    pad = np.ceil((hi - lo) * margin).astype(int)
    lo, hi = np.maximum(lo - pad, 0), np.minimum(hi + pad, mask.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


def _old_minmax(array: np.ndarray) -> np.ndarray:
    """Min-max scaling before MONAI's rescale_array, frozen."""
    lo, hi = float(array.min()), float(array.max())
    return ((array - lo) / (hi - lo) if hi > lo else np.zeros_like(array)).astype(np.float32)


def _old_preprocess(image: Image, *, size, mask=None, crop_to_mask=False, margin=0.1, window=None,
                    normalize="zscore", spacing=None) -> np.ndarray:
    """``preprocess`` before the redesign, from the frozen pieces above and the unchanged resize/crop/z-score."""
    array = image.array
    if window is not None:
        center, width = float(window[0]), float(window[1])
        array = np.clip(array, center - width / 2, center + width / 2)
    if crop_to_mask:
        array = array[_old_bounding_box(np.asarray(mask) > 0.5, margin)]
    if spacing is None:
        out = resize(array, size)
    else:
        out = pp.center_crop_or_pad(pp.resample_to_spacing(array, image.spacing, spacing), size, float(array.min()))
    return _old_minmax(out) if normalize == "minmax" else normalize_intensity(out, normalize)


@pytest.fixture(scope="module")
def reference_images(reference_dir: Path) -> dict[str, Image]:
    """Real radiographs (PNG, DICOM), an MR series, MedMNIST images and volumes, and random arrays."""
    ref = Path(reference_dir)
    images = {p.stem: read_image(p) for p in sorted((ref / "images").glob("*.png"))}
    images["dx"] = read_image(ref / "dicom" / "dx_chest" / "nih_cxr14_no_finding.dcm")
    images["mr_series"] = read_image(ref / "dicom" / "mr_t1_series")
    with np.load(ref / "medmnist" / "pneumoniamnist.npz") as data:
        images["pneumonia"] = _image(data["test_images"][0], "pneumonia")
    with np.load(ref / "medmnist" / "adrenalmnist3d_64.npz") as data:
        images["adrenal"] = _image(data["test_images"][0], "adrenal")
    rng = np.random.default_rng(7)
    for shape in ((97, 131), (21, 40, 33)):
        images[f"random{len(shape)}d"] = _image(rng.normal(100, 300, shape), "random")
    return images


def test_monai_box_and_minmax_equal_the_code_they_replaced(reference_images: dict[str, Image]) -> None:
    """Bit for bit, so cached tensors and trained models do not change."""
    for name, image in reference_images.items():
        array = image.array
        for q in (50, 90, 99.9):
            mask = array >= np.percentile(array, q)
            for margin in (0.0, 0.1, 0.5, 3.0):
                assert pp._bounding_box(mask, margin, name) == _old_bounding_box(mask, margin), (name, q, margin)
        for values in (array, array.astype(np.float64), np.round(array).astype(np.int32)):
            new, old = normalize_intensity(values, "minmax"), _old_minmax(values)
            assert new.dtype == np.float32 and new.tobytes() == old.tobytes(), name
    for constant in (np.full((4, 4), -7.0, np.float32), np.array([[np.nan, 1.0]], np.float32)):
        assert normalize_intensity(constant, "minmax").tobytes() == np.zeros(constant.shape, np.float32).tobytes()


@pytest.mark.parametrize("settings", [
    {"normalize": "minmax", "window_q": (50, 40)},
    {"normalize": "zscore", "crop_q": 90, "margin": 0.1},
    {"normalize": "minmax", "crop_q": 99, "margin": 0.5, "window_q": (50, 60)},
    {"normalize": "zscore", "spacing_factor": 2.0},
])
def test_preprocess_output_is_unchanged(reference_images: dict[str, Image], one_torch_thread, settings) -> None:
    for name, image in reference_images.items():
        array = image.array
        size = (32, 48) if array.ndim == 2 else (16, 24, 24)
        kwargs: dict = {"size": size, "normalize": settings["normalize"]}
        if "window_q" in settings:
            center, width_q = np.percentile(array, settings["window_q"])
            kwargs["window"] = (float(center), float(width_q) + 1.0)
        if "crop_q" in settings:
            kwargs.update(mask=array >= np.percentile(array, settings["crop_q"]), crop_to_mask=True,
                          margin=settings["margin"])
        if "spacing_factor" in settings:
            kwargs["spacing"] = tuple(settings["spacing_factor"] * s for s in image.spacing)
        new, old = preprocess(image, **kwargs), _old_preprocess(image, **kwargs)
        assert new.dtype == old.dtype == np.float32 and new.tobytes() == old.tobytes(), name


def test_monai_alternatives_kept_out_differ_as_documented(reference_images: dict[str, Image]) -> None:
    """Why resize, centre crop and z-score stay ours (see their docstrings): MONAI's versions differ."""
    from monai.transforms import NormalizeIntensity, Resize, ResizeWithPadOrCrop

    dx = reference_images["dx"].array  # 1024 x 1024
    ours = pp.center_crop_or_pad(dx, (1021, 1021), 0.0)
    theirs = np.asarray(ResizeWithPadOrCrop((1021, 1021))(dx[None])[0])
    np.testing.assert_array_equal(ours, dx[1:1022, 1:1022])  # (1024 - 1021) // 2 = 1
    np.testing.assert_array_equal(theirs, dx[2:1023, 2:1023])  # 1024 // 2 - 1021 // 2 = 2
    np.testing.assert_array_equal(pp.center_crop_or_pad(dx, (1030, 1030), 0.0),
                                  np.asarray(ResizeWithPadOrCrop((1030, 1030))(dx[None])[0]))  # padding agrees
    z_diff = max(float(np.abs(normalize_intensity(im.array, "zscore") - np.asarray(NormalizeIntensity()(im.array)))
                       .max()) for im in reference_images.values())
    assert 0 < z_diff <= 1e-6  # one float32 step: torch sums in another order
    small = np.asarray(Resize((64, 64), mode="bilinear", anti_aliasing=True)(dx[None])[0])
    assert np.abs(resize(dx, (64, 64)) - small).max() > 0.01 * np.ptp(dx)  # Gaussian vs torch antialiasing
