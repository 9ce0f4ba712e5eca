"""Grad-CAM explainer: maps find the lesion on a toy problem (2D and 3D), hooks and modes are restored, inputs are
not modified; the randomised-weights check; gallery case selection; overlay and slice picking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from medlib.explain.gradcam import (GROUPS, GradCAMExplainer, outcome_group, overlay, random_cam_baseline,
                            randomized_copy, select_gallery_cases, volume_slices)
from medlib.learn.models import build_model, default_cam_layer

# the bright lesion of the positive class, placed off-centre and at a different position on every axis so
# that a transposed or flipped map would miss it
SQUARE = (slice(20, 27), slice(5, 12))                   # rows, columns of a 32x32 image
CUBE = (slice(2, 6), slice(8, 12), slice(11, 15))        # D, H, W of a 16^3 volume


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class TinyCNN(nn.Module):
    """Two convolutions at full resolution, global average pooling, a linear head (2D or 3D)."""

    def __init__(self, dims: int = 2) -> None:
        super().__init__()
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        pool = nn.AdaptiveAvgPool2d if dims == 2 else nn.AdaptiveAvgPool3d
        self.features = nn.Sequential(conv(1, 8, 3, padding=1), nn.ReLU(), conv(8, 8, 3, padding=1), nn.ReLU())
        self.pool = pool(1)
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


def _toy_data(region: tuple[slice, ...], shape: tuple[int, ...], n: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand((n, 1, *shape), generator=gen) * 0.5
    y = torch.arange(n) % 2
    for i in np.flatnonzero(y.numpy()):
        x[(i, 0, *region)] += 1.5
    return x, y


def _train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> nn.Module:
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model


@pytest.fixture(scope="module")
def model_2d():
    torch.manual_seed(0)
    x, y = _toy_data(SQUARE, (32, 32), 16, seed=0)
    model = _train(TinyCNN(2), x, y, steps=25)
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() == 1.0, "toy model did not learn the square"
    return model


@pytest.fixture(scope="module")
def model_3d():
    torch.manual_seed(0)
    x, y = _toy_data(CUBE, (16, 16, 16), 8, seed=1)
    model = _train(TinyCNN(3), x, y, steps=20)
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() == 1.0, "toy model did not learn the cube"
    return model


def _positives(region, shape, seed=5):
    x, y = _toy_data(region, shape, 8, seed=seed)
    return x[y == 1]


def _assert_no_hooks(model: nn.Module) -> None:
    for name, module in model.named_modules():
        for kind in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"):
            assert not getattr(module, kind, {}), f"{kind} left on {name or 'model'}"


# ---------------------------------------------------------------- maps find the lesion
def test_2d_map_peaks_inside_the_square(model_2d):
    x = _positives(SQUARE, (32, 32))
    with GradCAMExplainer(model_2d, layer="features") as cam:
        maps = cam(x, targets="positive")
    assert maps.shape == (len(x), 32, 32) and maps.dtype == np.float32
    assert maps.min() >= 0 and maps.max() <= 1
    inside = np.zeros((32, 32), bool)
    inside[SQUARE] = True
    for m in maps:
        row, col = np.unravel_index(m.argmax(), m.shape)
        assert inside[row, col], f"peak at {(row, col)}, square at rows 20-26, cols 5-11"
        assert m[inside].mean() > 2 * m[~inside].mean()


def test_3d_map_axes_line_up_with_the_volume(model_3d):
    x = _positives(CUBE, (16, 16, 16))
    with GradCAMExplainer(model_3d, layer="features") as cam:
        maps = cam(x, targets="positive")
    assert maps.shape == (len(x), 16, 16, 16)
    inside = np.zeros((16, 16, 16), bool)
    inside[CUBE] = True
    for m in maps:
        peak = np.unravel_index(m.argmax(), m.shape)
        assert inside[peak], f"peak at {peak} (D, H, W); cube at D 2-5, H 8-11, W 11-14"
        assert m[inside].mean() > 2 * m[~inside].mean()


def _relu_scaled(maps: np.ndarray) -> np.ndarray:
    maps = np.maximum(maps, 0)
    low = maps.reshape(len(maps), -1).min(1).reshape(-1, 1, 1)
    span = maps.reshape(len(maps), -1).max(1).reshape(-1, 1, 1) - low
    return (maps - low) / np.where(span > 0, span, 1)


def test_hirescam_is_gradient_times_activation_and_equals_gradcam_at_the_last_block(model_2d):
    """HiResCAM (the maps at a layer before the last block): per cell the sum over channels of gradient times
    activation, computed here by hand with autograd; at the last block (global pooling and a linear head follow)
    it is Grad-CAM's map, so the two methods differ only where Grad-CAM's averaged gradient is not faithful."""
    x = _positives(SQUARE, (32, 32))[:4]
    inner = model_2d.features[1]  # the first convolution's ReLU: another convolution follows
    held = {}
    handle = inner.register_forward_hook(lambda module, args, out: held.update(a=out))
    logits = model_2d.eval()(x)
    handle.remove()
    grads = torch.autograd.grad(logits[:, 1].sum(), held["a"])[0]
    by_hand = _relu_scaled((grads * held["a"]).sum(1).detach().numpy())
    with GradCAMExplainer(model_2d, layer="features.1", method="hirescam") as cam:
        hires = cam(x)
    np.testing.assert_allclose(hires, by_hand, atol=1e-5)
    with GradCAMExplainer(model_2d, layer="features.1") as cam:
        assert np.abs(cam(x) - hires).max() > 1e-3  # before the last block Grad-CAM gives another map
    last = {}
    for method in ("gradcam", "hirescam"):
        with GradCAMExplainer(model_2d, layer="features.3", method=method) as cam:
            last[method] = cam(x)
    np.testing.assert_allclose(last["hirescam"], last["gradcam"], atol=1e-5)
    with pytest.raises(ValueError, match="CAM method must be one of.*'gradcam', 'hirescam'.*got 'eigen'"):
        GradCAMExplainer(model_2d, layer="features.3", method="eigen")


def test_targets_true_predicted_and_list(model_2d):
    x, y = _toy_data(SQUARE, (32, 32), 4, seed=3)
    with GradCAMExplainer(model_2d, layer="features") as cam:
        by_truth = cam(x, targets="true", y=y)
        by_prediction = cam(x, targets="predicted")
        by_list = cam(x, targets=y.tolist(), batch_size=3)
    np.testing.assert_allclose(by_truth, by_list, atol=1e-6)
    np.testing.assert_allclose(by_truth, by_prediction, atol=1e-6)  # the toy model is always right


def test_targets_negative_is_the_map_of_class_zero(model_2d):
    x, _ = _toy_data(SQUARE, (32, 32), 4, seed=3)
    with GradCAMExplainer(model_2d, layer="features") as cam:
        negative, zeros, positive = cam(x, targets="negative"), cam(x, targets=[0] * 4), cam(x, targets="positive")
    np.testing.assert_allclose(negative, zeros, atol=1e-6)
    assert not np.allclose(negative, positive)


def test_registry_resnet_gives_maps_of_the_input_size():
    model = build_model("resnet18", in_channels=1, spatial_dims=2)
    with GradCAMExplainer(model, layer=default_cam_layer(model)) as cam:
        assert cam(torch.randn(2, 1, 32, 32)).shape == (2, 32, 32)
    _assert_no_hooks(model)


def test_simplevit_map_through_its_reshape_transform():
    torch.manual_seed(0)
    model = build_model("simplevit", in_channels=1, image_size=(32, 32))
    with GradCAMExplainer(model, layer=default_cam_layer(model)) as cam:
        assert cam.reshape_transform is not None
        maps = cam(torch.randn(2, 1, 32, 32), targets="positive")
    assert maps.shape == (2, 32, 32)
    assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1
    _assert_no_hooks(model)


def test_shared_multiview_gives_one_map_per_case():
    torch.manual_seed(0)
    model = build_model("resnet18", in_channels=2, multiview="shared")
    with GradCAMExplainer(model, layer=default_cam_layer(model)) as cam:
        assert cam(torch.randn(3, 2, 64, 64)).shape == (3, 64, 64)


# ---------------------------------------------------------------- no side effects
def test_input_tensor_is_not_modified(model_2d):
    x = _positives(SQUARE, (32, 32))
    before = x.clone()
    with GradCAMExplainer(model_2d, layer="features") as cam:
        cam(x)
    assert torch.equal(x, before) and not x.requires_grad


def test_hooks_removed_after_the_context_even_on_error(model_2d):
    _assert_no_hooks(model_2d)
    with GradCAMExplainer(model_2d, layer="features") as cam:
        cam(_positives(SQUARE, (32, 32)))
        assert model_2d.features._forward_hooks  # the hooks are there while in use
    _assert_no_hooks(model_2d)
    with pytest.raises(ValueError, match="targets must be"):
        with GradCAMExplainer(model_2d, layer="features") as cam:
            cam(_positives(SQUARE, (32, 32)), targets="bogus")
    _assert_no_hooks(model_2d)


@pytest.mark.parametrize("training", [True, False])
def test_train_eval_mode_restored(model_2d, training):
    model_2d.train(training)
    with GradCAMExplainer(model_2d, layer="features") as cam:
        assert not model_2d.training
        cam(_positives(SQUARE, (32, 32)))
    assert model_2d.training is training
    assert all(m.training is training for m in model_2d.modules())
    model_2d.eval()


def test_works_inside_no_grad(model_2d):
    x = _positives(SQUARE, (32, 32))
    with GradCAMExplainer(model_2d, layer="features") as cam:
        expected = cam(x)
        with torch.no_grad():
            np.testing.assert_allclose(cam(x), expected, atol=1e-6)


# ---------------------------------------------------------------- errors
def test_unknown_layer_lists_the_layers(model_2d):
    with pytest.raises(KeyError, match=r"Unknown layer 'layer4' in TinyCNN.*'features'.*'fc'"):
        GradCAMExplainer(model_2d, layer="layer4")


def test_targets_true_without_labels(model_2d):
    with GradCAMExplainer(model_2d, layer="features") as cam:
        with pytest.raises(ValueError, match="targets='true' needs the labels y"):
            cam(_positives(SQUARE, (32, 32)), targets="true")


def test_one_target_per_case(model_2d):
    with GradCAMExplainer(model_2d, layer="features") as cam:
        with pytest.raises(ValueError, match="one target class per case: 4 cases, 2 targets"):
            cam(_positives(SQUARE, (32, 32)), targets=[1, 1])


def test_call_outside_the_context(model_2d):
    cam = GradCAMExplainer(model_2d, layer="features")
    with pytest.raises(RuntimeError, match="as a context manager"):
        cam(_positives(SQUARE, (32, 32)))


# ---------------------------------------------------------------- randomisation sanity check
def test_randomized_copy_differs_and_leaves_the_original(model_2d):
    before = {k: v.clone() for k, v in model_2d.state_dict().items()}
    rng_before = torch.get_rng_state()
    clone = randomized_copy(model_2d, seed=1)
    assert torch.equal(torch.get_rng_state(), rng_before)
    for key, value in model_2d.state_dict().items():
        assert torch.equal(value, before[key]), f"{key} of the original changed"
    for key, value in clone.state_dict().items():
        assert not torch.equal(value, before[key]), f"{key} was not re-initialised"
    again = randomized_copy(model_2d, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(clone.state_dict().values(), again.state_dict().values()))


def test_random_cam_baseline_one_row_with_a_finite_rho(model_2d):
    x = _positives(SQUARE, (32, 32))
    before = {k: v.clone() for k, v in model_2d.state_dict().items()}
    table = random_cam_baseline(model_2d, x, layer="features", seed=0)
    assert len(table) == 1
    row = table.iloc[0]
    assert row["cases"] == len(x)
    assert np.isfinite(row["mean Spearman rho"]) and -1 <= row["mean Spearman rho"] <= 1
    assert " to " in row["range"] and row["reading"]
    assert all(torch.equal(v, before[k]) for k, v in model_2d.state_dict().items())
    _assert_no_hooks(model_2d)


# ---------------------------------------------------------------- gallery selection
def _predictions(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    score = np.clip(0.3 + 0.4 * y + rng.normal(0, 0.1, n), 0, 0.9)
    score[:8] = 1 - score[:8]  # 4 false negatives and 4 false positives
    frames = [pd.DataFrame({"model": m, "set": s, "case_id": [f"c{i:03d}" for i in range(n)],
                            "patient_id": [f"PATIENT-SECRET-{i}" for i in range(n)], "y_true": y,
                            "score": np.clip(score + shift, 0, 1)})
              for m, shift in (("cnn", 0.0), ("vit", 0.1)) for s in ("val", "test")]
    return pd.concat(frames, ignore_index=True)


def test_outcome_group():
    assert outcome_group([1, 1, 0, 0], [1, 0, 1, 0]).tolist() == ["TP", "FN", "FP", "TN"]


@pytest.mark.parametrize("n_per_group", [1, 2, 3])
def test_select_gallery_cases_includes_every_group(n_per_group):
    preds = _predictions()
    chosen = select_gallery_cases(preds, 0.5, n_per_group=n_per_group, model="cnn")
    assert list(chosen.columns) == ["case_id", "group", "score", "y_true"]
    assert "patient_id" not in chosen.columns
    assert chosen["group"].value_counts().to_dict() == {g: n_per_group for g in GROUPS}
    assert list(dict.fromkeys(chosen["group"])) == list(GROUPS)
    assert chosen["case_id"].is_unique
    test = preds[(preds["model"] == "cnn") & (preds["set"] == "test")].set_index("case_id")
    for _, row in chosen.iterrows():  # the group is right for each case
        assert outcome_group([test.loc[row["case_id"], "y_true"]], [row["score"] >= 0.5])[0] == row["group"]
    fn = chosen[chosen["group"] == "FN"]["score"]  # the most confident first
    assert fn.is_monotonic_increasing


def test_select_gallery_cases_missing_groups_and_few_cases():
    preds = _predictions()
    preds = preds.assign(score=preds["y_true"] * 0.8 + 0.1)  # a perfect model: no FN, no FP
    chosen = select_gallery_cases(preds, 0.5, n_per_group=30, model="cnn", set_name="val")
    assert set(chosen["group"]) == {"TP", "TN"}
    assert len(chosen) == 40


def test_select_gallery_cases_errors():
    preds = _predictions()
    with pytest.raises(ValueError, match="no predictions of model 'cnn' on the external set"):
        select_gallery_cases(preds, 0.5, model="cnn", set_name="external")
    with pytest.raises(ValueError, match="no predictions of model 'resnet' on the test set"):
        select_gallery_cases(preds, 0.5, model="resnet")
    with pytest.raises(ValueError, match=r"several models.*\['cnn', 'vit'\].*pass model="):
        select_gallery_cases(preds, 0.5)
    with pytest.raises(ValueError, match="no predictions"):
        select_gallery_cases(preds.iloc[:0], 0.5)


def test_select_gallery_cases_does_not_modify_predictions():
    preds = _predictions()
    before = preds.copy()
    select_gallery_cases(preds, 0.5, model="vit")
    pd.testing.assert_frame_equal(preds, before)


# ---------------------------------------------------------------- overlay and slices
@pytest.mark.parametrize("image", [np.random.default_rng(0).normal(100, 30, (20, 24)), np.full((20, 24), 7.0)])
def test_overlay_shape_and_range(image):
    cam = np.random.default_rng(1).random((20, 24))
    out = overlay(image, cam, alpha=0.4)
    assert out.shape == (20, 24, 3)
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


def test_overlay_does_not_modify_inputs():
    image, cam = np.arange(12.0).reshape(3, 4), np.linspace(0, 1, 12).reshape(3, 4)
    before = image.copy(), cam.copy()
    overlay(image, cam)
    np.testing.assert_array_equal(image, before[0])
    np.testing.assert_array_equal(cam, before[1])


@pytest.mark.parametrize("peak", [0, 1, 7, 14, 15])
@pytest.mark.parametrize("n", [1, 3, 5])
def test_volume_slices_around_the_peak_within_range(peak, n):
    volume = np.zeros((16, 8, 8))
    cam = np.zeros((16, 8, 8))
    cam[peak, 2, 2] = 1
    picks = volume_slices(volume, cam, n=n)
    assert len(picks) == n and all(0 <= k < 16 for k in picks)
    assert peak in picks
    assert len(set(picks)) == n and picks == sorted(picks)


def test_volume_slices_center_and_short_volumes():
    assert volume_slices(np.zeros((16, 4, 4)), how="center", n=1) == [8]
    assert all(0 <= k < 2 for k in volume_slices(np.zeros((2, 4, 4)), np.ones((2, 4, 4)), n=3))
    with pytest.raises(ValueError, match="how must be 'cam_peak' or 'center'; got 'max'"):
        volume_slices(np.zeros((4, 4, 4)), how="max")


# --- upsampling alignment (maps line up with the input voxels in 2D and 3D) ---
class PooledMean(nn.Module):
    """logits (-s, s), s = mean of the 16x average-pooled input: the Grad-CAM of class 1 is the pooled input."""

    def __init__(self, dims: int) -> None:
        super().__init__()
        conv = (nn.Conv2d if dims == 2 else nn.Conv3d)(1, 1, 1, bias=False)  # identity; gives the map a gradient
        nn.init.ones_(conv.weight)
        self.features = nn.Sequential(conv, (nn.AvgPool2d if dims == 2 else nn.AvgPool3d)(16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.features(x).flatten(1).mean(1, keepdim=True)
        return torch.cat([-s, s], dim=1)


@pytest.mark.parametrize("cell", [(slice(32, 48), slice(16, 32)), (slice(16, 32), slice(32, 48), slice(16, 32))])
def test_upsampled_map_is_centred_on_its_feature_cell(cell):
    shape = (64,) * len(cell)
    x = torch.zeros(1, 1, *shape)
    x[(0, 0, *cell)] = 1.0
    with GradCAMExplainer(PooledMean(len(cell)), layer="features") as cam:
        m = cam(x, targets="positive")[0]
    hot = np.nonzero(m > 0.5)
    centroid = [float(axis.mean()) for axis in hot]
    expected = [(c.start + c.stop - 1) / 2 for c in cell]  # (D,) H, W
    np.testing.assert_allclose(centroid, expected, atol=0.5)
    assert all(c.start <= p < c.stop for p, c in zip(np.unravel_index(m.argmax(), m.shape), cell))


def test_a_one_cell_axis_warns():
    """A 16-slice volume through a stride-16 layer: one cell along D."""
    with GradCAMExplainer(PooledMean(3), layer="features") as cam:
        with pytest.warns(UserWarning, match=r"layer 'features' gives maps of \(1, 4, 4\) cells for inputs of "
                                             r"\(16, 64, 64\).*pick an earlier layer"):
            cam(torch.rand(1, 1, 16, 64, 64))


def test_volume_slices_of_a_map_flat_along_depth_are_central():
    from medlib.explain.gradcam import volume_slices

    cam = np.zeros((16, 8, 8))
    cam[:, 2, 2] = 1  # the same on every slice: no peak slice
    assert volume_slices(np.zeros((16, 8, 8)), cam, n=3) == volume_slices(np.zeros((16, 8, 8)), how="center", n=3)


# ---------------------------------------------------------------- never "undefined"; gallery groups
def test_random_cam_baseline_prints_a_number_for_constant_maps():
    class Constant(nn.Module):  # its Grad-CAM map is all zeros: a one-cell layer, like NEC's layer4 at 64 px
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1))
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(self.features(x).flatten(1))

    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="one cell"):
        table = random_cam_baseline(Constant(), torch.randn(3, 1, 16, 16), layer="features")
    row = table.iloc[0]
    assert row["mean Spearman rho"] == 0.0  # every map constant: no shared ordering, counted as 0
    assert row["constant maps (trained, randomised)"].startswith("3, 3")
    assert "undefined" not in " ".join(map(str, row.values)) and "3 of the trained model's maps" in row["reading"]


def test_select_gallery_cases_groups_and_min_cases():
    preds = _predictions()
    chosen = select_gallery_cases(preds, 0.5, n_per_group=2, model="cnn", groups=("TP", "FN", "FP"), min_cases=6)
    assert chosen["group"].tolist() == ["TP", "TP", "FN", "FN", "FP", "FP"]
    perfect = preds.assign(score=preds["y_true"] * 0.8 + 0.1)  # no FN, no FP: TPs first, then TNs fill up
    chosen = select_gallery_cases(perfect, 0.5, n_per_group=2, model="cnn", groups=("TP", "FN", "FP"),
                                  min_cases=6)
    assert chosen["group"].tolist() == ["TP"] * 6
    few = perfect[(perfect["y_true"] == 0) & (perfect["set"] == "test") & (perfect["model"] == "cnn")].head(3)
    chosen = select_gallery_cases(few, 0.5, n_per_group=2, model="cnn",
                                  groups=("TP", "FN", "FP"), min_cases=6)
    assert chosen["group"].tolist() == ["TN"] * 3
    with pytest.raises(ValueError, match=r"unknown groups \['XX'\]"):
        select_gallery_cases(preds, 0.5, model="cnn", groups=("TP", "XX"))


# ---------------------------------------------------------------- localisation against hand-computed values
def _toy_cams():
    """Three 10 x 10 maps and masks with scores worked out by hand (see each case)."""
    cams = np.zeros((3, 10, 10))
    masks = np.zeros((3, 10, 10), bool)
    masks[:, 2:4, 2:4] = True                   # a 2 x 2 lesion at rows 2-3, cols 2-3 (4 pixels)
    cams[0, 3, 3] = 1.0                         # case 0: peak inside; all of its energy inside
    cams[0, 2, 2] = 0.5
    cams[1, 3, 6] = 1.0                         # case 1: peak at (3, 6), 3 px right of the lesion's edge (3, 3)
    cams[1, 2, 2] = 1.0 / 3                     # energy: 1/3 inside out of 4/3 → 0.25
    cams[2] = 0.2                               # case 2: constant map: no maximum, energy share = 4/100
    return cams, masks


def test_pointing_game_by_hand():
    from medlib.explain.localisation import pointing_game, tolerance_pixels

    cams, masks = _toy_cams()
    # no tolerance: only case 0 hits; case 2 (constant) misses although quantus would count its tied maxima
    np.testing.assert_array_equal(pointing_game(cams, masks, tolerance=0), [1, 0, 0])
    # tolerance 3 px: case 1's peak is exactly 3 px from (3, 3) → a hit; 2.9 px → a miss
    np.testing.assert_array_equal(pointing_game(cams, masks, tolerance=3), [1, 1, 0])
    np.testing.assert_array_equal(pointing_game(cams, masks, tolerance=2.9), [1, 0, 0])
    assert tolerance_pixels((224, 224)) == pytest.approx(15)  # Zhang et al.'s 15 px at 224
    assert tolerance_pixels((64, 48)) == pytest.approx(48 * 15 / 224)


def test_relevance_mass_by_hand():
    from medlib.explain.localisation import relevance_mass

    cams, masks = _toy_cams()
    np.testing.assert_allclose(relevance_mass(cams, masks), [1.0, 0.25, 0.04])
    assert relevance_mass(np.zeros((1, 4, 4)), masks[:1, :4, :4])[0] == 0  # no energy anywhere, none inside
    with pytest.raises(ValueError, match="non-negative"):
        relevance_mass(-cams, masks)


def test_localisation_in_3d_and_errors():
    from medlib.explain.localisation import pointing_game, relevance_mass

    cams = np.zeros((1, 6, 6, 6))
    masks = np.zeros((1, 6, 6, 6), bool)
    masks[0, 1, 4, 5] = True
    cams[0, 1, 4, 5], cams[0, 4, 0, 0] = 1.0, 0.5   # peak on the lesion voxel, 1/3 of the energy elsewhere
    assert pointing_game(cams, masks, tolerance=0)[0] == 1
    assert pointing_game(cams[:, ::-1], masks, tolerance=0)[0] == 0  # a flipped map misses
    np.testing.assert_allclose(relevance_mass(cams, masks), [1 / 1.5])
    with pytest.raises(ValueError, match="empty"):
        pointing_game(cams, np.zeros_like(masks))
    with pytest.raises(ValueError, match="one shape"):
        relevance_mass(cams, masks[:, :3])


def test_centre_baseline_and_bootstrap():
    from medlib.explain.localisation import bootstrap_mean, centre_map, score_localisation

    centre = centre_map((9, 9))
    assert np.unravel_index(centre.argmax(), centre.shape) == (4, 4) and centre.max() == pytest.approx(1)
    cams, masks = _toy_cams()
    masks[2] = False
    masks[2, 4:6, 4:6] = True  # case 2's lesion at the centre: the baseline points at it
    scores = score_localisation(cams, masks, tolerance=0)
    np.testing.assert_array_equal(scores.centre_pointing, [0, 0, 1])
    est, low, high = bootstrap_mean(np.array([1.0, 0.0, 1.0, 1.0]), n_boot=500, seed=0)
    assert est == 0.75 and 0 <= low <= est <= high <= 1
    assert bootstrap_mean(np.ones(5)) == (1.0, 1.0, 1.0)
    diff = bootstrap_mean(np.array([1.0, 1.0, 0.0]), np.array([0.0, 1.0, 0.0]), n_boot=200)
    assert diff[0] == pytest.approx(1 / 3)
