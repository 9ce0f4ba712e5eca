"""Case tensors, loading through the preprocessing cache, batching and on-device augmentation."""

from __future__ import annotations

import dataclasses
import sys
import types

import numpy as np
import pandas as pd
import pytest
import torch

from medlib.config import ImageConfig
from medlib.data.tensors import CaseTensors, augment_batch, image_settings, iterate_batches, load_case_tensors


def _cases(n=6, shape=(1, 8, 8)) -> CaseTensors:
    x = torch.arange(n * int(np.prod(shape)), dtype=torch.float32).reshape(n, *shape)
    return CaseTensors(x, torch.arange(n) % 2, tuple(f"c{i}" for i in range(n)), tuple(f"p{i // 2}" for i in range(n)))


def test_case_tensors_basics():
    data = _cases()
    assert len(data) == 6 and data.spatial_dims == 2 and data.class_counts() == [3, 3]
    sub = data.subset([4, 1])
    assert sub.case_id == ("c4", "c1") and sub.patient_id == ("p2", "p0")
    assert torch.equal(sub.x[0], data.x[4]) and sub.y.tolist() == [0, 1]
    assert data.to("cpu") is data
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.x = data.x


@pytest.mark.parametrize("kwargs, match", [
    (dict(x=torch.zeros(2, 8, 8)), r"x must be float32 \[N, C, H, W\]"),
    (dict(x=torch.zeros(2, 1, 8, 8, dtype=torch.float64)), "got torch.float64"),
    (dict(y=torch.zeros(2)), r"y must be long \[N\] with N = 2"),
    (dict(case_id=("a",)), r"one case_id and patient_id per case \(2\)"),
])
def test_case_tensors_validation(kwargs, match):
    args = dict(x=torch.zeros(2, 1, 8, 8), y=torch.zeros(2, dtype=torch.long), case_id=("a", "b"),
                patient_id=("p", "q"))
    with pytest.raises(ValueError, match=match):
        CaseTensors(**{**args, **kwargs})


@pytest.fixture
def fake_preprocess(monkeypatch):
    """A stand-in for medlib.data.preprocess.load_preprocessed that records its calls."""
    calls = []

    def load_preprocessed(path, settings, *, cache_dir, mask_path=None):
        calls.append(dict(path=path, settings=settings, cache_dir=cache_dir, mask_path=mask_path))
        value = float(path.rsplit("_", 1)[-1].split(".")[0])
        return np.full(settings["size"], value, dtype=np.float64)

    module = types.ModuleType("medlib.data.preprocess")
    module.load_preprocessed = load_preprocessed
    monkeypatch.setitem(sys.modules, "medlib.data.preprocess", module)
    return calls


def _table(n=4):
    return pd.DataFrame({"case_id": [f"c{i}" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)],
                         "y": [i % 2 for i in range(n)], "ap": [f"/img/ap_{10 * i}.dcm" for i in range(n)],
                         "frog": [f"/img/frog_{10 * i + 1}.dcm" for i in range(n)],
                         "mask": [f"/img/mask_{i}.nii" for i in range(n)]})


@pytest.mark.parametrize("workers", [1, 2])
def test_load_case_tensors_stacks_columns_as_channels(fake_preprocess, workers):
    cfg = ImageConfig(size=(8, 8), window=(40.0, 80.0), crop_to_mask=True, cache_dir="/tmp/cache-x")
    table = _table()
    before = table.copy()
    data = load_case_tensors(table, ["ap", "frog"], cfg, mask_column="mask", workers=workers)
    assert data.x.shape == (4, 2, 8, 8) and data.x.dtype == torch.float32
    assert data.x[:, 0, 0, 0].tolist() == [0, 10, 20, 30] and data.x[:, 1, 0, 0].tolist() == [1, 11, 21, 31]
    assert data.y.tolist() == [0, 1, 0, 1] and data.case_id == ("c0", "c1", "c2", "c3")
    assert len(fake_preprocess) == 8
    call = next(c for c in fake_preprocess if c["path"] == "/img/frog_21.dcm")
    assert call["mask_path"] == "/img/mask_2.nii" and call["cache_dir"] == "/tmp/cache-x"
    assert call["settings"] == image_settings(cfg) == dict(size=(8, 8), window=(40.0, 80.0), crop_to_mask=True,
                                                            margin=0.1, normalize="zscore")
    pd.testing.assert_frame_equal(table, before)


def test_load_case_tensors_3d_and_empty(fake_preprocess):
    cfg = ImageConfig(size=(8, 12, 10))  # image.size allows at least 8 per axis
    data = load_case_tensors(_table(2), ["ap", "frog", "ap"], cfg)
    assert data.x.shape == (2, 3, 8, 12, 10) and data.spatial_dims == 3
    assert all(c["mask_path"] is None for c in fake_preprocess)
    empty = load_case_tensors(_table(0), ["ap"], cfg)
    assert empty.x.shape == (0, 1, 8, 12, 10) and len(empty) == 0


def test_load_case_tensors_accepts_leading_singleton(monkeypatch):
    module = types.ModuleType("medlib.data.preprocess")
    module.load_preprocessed = lambda path, settings, *, cache_dir, mask_path=None: np.ones((1, 8, 8))
    monkeypatch.setitem(sys.modules, "medlib.data.preprocess", module)
    assert load_case_tensors(_table(1), ["ap"], ImageConfig(size=(8, 8))).x.shape == (1, 1, 8, 8)


def test_load_case_tensors_errors(fake_preprocess):
    with pytest.raises(KeyError, match=r"table lacks columns \['lateral'\]"):
        load_case_tensors(_table(), ["lateral"], ImageConfig(size=(8, 8)))
    bad = _table().assign(y=[0, 1, 2, 1])
    with pytest.raises(ValueError, match=r"must hold 0/1 labels; found \[2\]"):
        load_case_tensors(bad, ["ap"], ImageConfig(size=(8, 8)))


def test_load_case_tensors_wrong_shape(monkeypatch):
    module = types.ModuleType("medlib.data.preprocess")
    module.load_preprocessed = lambda path, settings, *, cache_dir, mask_path=None: np.zeros((7, 8))
    monkeypatch.setitem(sys.modules, "medlib.data.preprocess", module)
    with pytest.raises(ValueError, match=r"ap_0.dcm: preprocessed image has shape \(7, 8\); expected \(8, 8\)"):
        load_case_tensors(_table(1), ["ap"], ImageConfig(size=(8, 8)))


def test_iterate_batches_covers_every_case_once():
    data = _cases(10)
    order = [c for x, y in iterate_batches(data, 4, shuffle=True, generator=torch.Generator().manual_seed(0))
             for c in x[:, 0, 0, 0].tolist()]
    assert sorted(order) == sorted(data.x[:, 0, 0, 0].tolist()) and order != sorted(order)
    again = [c for x, y in iterate_batches(data, 4, shuffle=True, generator=torch.Generator().manual_seed(0))
             for c in x[:, 0, 0, 0].tolist()]
    assert order == again
    sizes = [len(y) for _, y in iterate_batches(data, 3, shuffle=False)]
    assert sizes == [3, 3, 3, 1]
    assert [len(y) for _, y in iterate_batches(data, 3, shuffle=False, min_batch=2)] == [3, 3, 3]


def test_iterate_batches_errors():
    with pytest.raises(ValueError, match="needs a torch.Generator"):
        next(iterate_batches(_cases(), 2, shuffle=True))
    with pytest.raises(ValueError, match="batch_size must be >= 1; got 0"):
        next(iterate_batches(_cases(), 0, shuffle=False))


def test_augment_is_deterministic_and_leaves_input_alone():
    x = torch.randn(4, 2, 16, 16)
    before = x.clone()
    a = augment_batch(x, generator=torch.Generator().manual_seed(3), spatial_dims=2)
    b = augment_batch(x, generator=torch.Generator().manual_seed(3), spatial_dims=2)
    c = augment_batch(x, generator=torch.Generator().manual_seed(4), spatial_dims=2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(x, before)


def test_augment_flip_only_is_a_mirror():
    x = torch.randn(8, 2, 6, 6)
    out = augment_batch(x, generator=torch.Generator().manual_seed(0), spatial_dims=2, max_shift=0,
                        max_rotate=0, max_scale=0)
    flipped = [torch.allclose(o, xi.flip(-1), atol=1e-6) for o, xi in zip(out, x)]
    kept = [torch.allclose(o, xi, atol=1e-6) for o, xi in zip(out, x)]
    assert all(f or k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)


def test_augment_3d_same_transform_for_all_channels():
    x = torch.randn(1, 1, 8, 12, 12).repeat(2, 3, 1, 1, 1)
    out = augment_batch(x, generator=torch.Generator().manual_seed(1), spatial_dims=3)
    assert out.shape == x.shape
    assert torch.equal(out[0, 0], out[0, 1]) and torch.equal(out[0, 1], out[0, 2])
    with pytest.raises(ValueError, match="expected x with 2 spatial axes"):
        augment_batch(x, generator=torch.Generator(), spatial_dims=2)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_augment_on_gpu_matches_cpu():
    x = torch.randn(4, 1, 16, 16)
    cpu = augment_batch(x, generator=torch.Generator().manual_seed(0), spatial_dims=2)
    gpu = augment_batch(x.cuda(), generator=torch.Generator().manual_seed(0), spatial_dims=2)
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=1e-4)
