"""Tests for medlib.data.imaging.png and medlib.data.imaging.medmnist on the reference PNGs and MedMNIST files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from medlib.data.imaging import read_medmnist, read_png


# ------------------------------------------------------------------------------------------------------ PNG
@pytest.mark.parametrize("name", ["00000001_000.png", "00027426_000.png"])
def test_reference_pngs(reference_dir: Path, name: str) -> None:
    path = reference_dir / "images" / name
    image = read_png(path)
    assert image.array.shape == (512, 512) and image.array.dtype == np.float32
    with PILImage.open(path) as img:
        np.testing.assert_array_equal(image.array, np.asarray(img.convert("L")))
    assert image.spacing == (1.0, 1.0) and image.meta["format"] == "PNG" and image.meta["bits"] == 8


def test_16_bit_png_keeps_its_values(tmp_path: Path) -> None:
    data = (np.arange(20 * 30, dtype=np.uint16).reshape(20, 30) * 97).astype(np.uint16)
    PILImage.fromarray(data).save(tmp_path / "deep.png")
    image = read_png(tmp_path / "deep.png")
    np.testing.assert_array_equal(image.array, data)
    assert image.meta["bits"] == 16


@pytest.mark.parametrize("suffix", ["png", "jpg", "tif"])
def test_rgb_becomes_luma_grey(tmp_path: Path, suffix: str) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    path = tmp_path / f"colour.{suffix}"
    PILImage.fromarray(rgb).save(path)
    image = read_png(path)
    with PILImage.open(path) as img:
        expected = np.asarray(img.convert("L"))
    assert image.array.shape == (16, 24)
    np.testing.assert_array_equal(image.array, expected)
    if suffix == "png":  # lossless: compare with ITU-R 601-2 luma directly
        np.testing.assert_allclose(image.array, rgb @ np.array([0.299, 0.587, 0.114]), atol=1.0)


def test_unreadable_image_is_named(tmp_path: Path) -> None:
    path = tmp_path / "fake.png"
    path.write_bytes(b"\x89PNG but not really" * 10)
    with pytest.raises(ValueError, match=r"fake\.png: unreadable image file"):
        read_png(path)


# ------------------------------------------------------------------------------------------------- MedMNIST
def test_pneumoniamnist_official_splits(reference_dir: Path) -> None:
    splits = read_medmnist(reference_dir / "medmnist" / "pneumoniamnist.npz")
    assert {k: len(v[1]) for k, v in splits.items()} == {"train": 4708, "val": 524, "test": 624}
    for images, labels in splits.values():
        assert images.shape[1:] == (28, 28) and images.dtype == np.uint8
        assert labels.ndim == 1 and set(np.unique(labels)) == {0, 1}
    assert int(splits["train"][1].sum()) == 3494 and int((splits["train"][1] == 0).sum()) == 1214


def test_adrenalmnist3d_official_splits(reference_dir: Path) -> None:
    splits = read_medmnist(reference_dir / "medmnist" / "adrenalmnist3d.npz")
    assert {k: len(v[1]) for k, v in splits.items()} == {"train": 1188, "val": 98, "test": 298}
    for images, labels in splits.values():
        assert images.shape[1:] == (28, 28, 28)
        assert len(images) == len(labels) and set(np.unique(labels)) <= {0, 1}


def test_medmnist_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"MedMNIST file not found: .*nothing\.npz"):
        read_medmnist(tmp_path / "nothing.npz")


def test_medmnist_missing_key_and_length_mismatch(tmp_path: Path) -> None:
    x, y = np.zeros((4, 28, 28), np.uint8), np.zeros((4, 1), np.uint8)
    np.savez(tmp_path / "nokey.npz", train_images=x, train_labels=y, val_images=x, val_labels=y, test_images=x)
    with pytest.raises(ValueError, match=r"nokey\.npz: key 'test_labels' missing"):
        read_medmnist(tmp_path / "nokey.npz")
    np.savez(tmp_path / "short.npz", train_images=x, train_labels=y[:3], val_images=x, val_labels=y,
             test_images=x, test_labels=y)
    with pytest.raises(ValueError, match=r"short\.npz: train has 4 images but 3 labels"):
        read_medmnist(tmp_path / "short.npz")


def test_medmnist_multilabel_kept_and_bad_images_rejected(tmp_path: Path) -> None:
    x, y = np.zeros((4, 28, 28), np.uint8), np.eye(4, 14, dtype=np.uint8)  # ChestMNIST: 14 labels per image
    np.savez(tmp_path / "multi.npz", **{f"{s}_images": x for s in ("train", "val", "test")},
             **{f"{s}_labels": y for s in ("train", "val", "test")})
    splits = read_medmnist(tmp_path / "multi.npz")
    assert splits["train"][1].shape == (4, 14) and splits["train"][1].dtype == np.int64
    np.savez(tmp_path / "float.npz", **{f"{s}_images": x.astype(np.float32) for s in ("train", "val", "test")},
             **{f"{s}_labels": y for s in ("train", "val", "test")})
    with pytest.raises(ValueError, match=r"float\.npz: train_images has shape \(4, 28, 28\) and dtype float32; "
                                         r"expected uint8"):
        read_medmnist(tmp_path / "float.npz")


def test_8_bit_grey_jpeg(tmp_path: Path) -> None:
    grey = np.tile(np.arange(0, 256, 8, dtype=np.uint8), (16, 1))
    PILImage.fromarray(grey).save(tmp_path / "grey.jpg", quality=100)
    image = read_png(tmp_path / "grey.jpg")
    assert image.array.shape == (16, 32) and image.meta["bits"] == 8 and image.meta["mode"] == "L"
    np.testing.assert_allclose(image.array, grey, atol=3)  # JPEG is lossy even at quality 100
