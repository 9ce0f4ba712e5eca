"""Training: it learns, it is deterministic on the CPU, resume is exact, devices are explicit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from medlib.config import TrainConfig
from medlib.data.tensors import CaseTensors
from medlib.learn.models import build_model
from medlib.learn.checkpoints import BEST_NAME, CHECKPOINT_NAME, load_checkpoint
from medlib.learn.train import FitResult, fit, predict, resolve_device, seed_everything

CPU = TrainConfig(epochs=3, batch_size=8, lr=1e-3, device="cpu", patience=0, threads=1)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def toy(n: int, seed: int, *, size: int = 32, shift: float = 1.0, channels: int = 1) -> CaseTensors:
    """A separable toy problem: positives have a brighter central square."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, channels, size, size, generator=g)
    q = size // 4
    x[y == 1, :, q:3 * q, q:3 * q] += shift
    return CaseTensors(x, y.long(), tuple(f"s{seed}c{i}" for i in range(n)),
                       tuple(f"s{seed}p{i // 2}" for i in range(n)))


class TinyNet(nn.Module):
    """Conv + BatchNorm + dropout: exercises running statistics and the global RNG in resume tests."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Dropout(0.3))
        self.head = nn.Linear(128, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _tiny() -> TinyNet:
    seed_everything(0)
    return TinyNet()


@pytest.fixture(scope="module")
def sets() -> tuple[CaseTensors, CaseTensors]:
    return toy(32, 1, size=16), toy(16, 2, size=16)


def test_resnet_learns_separable_toy_problem():
    train, val = toy(40, 1), toy(20, 2)
    seed_everything(0)
    model = build_model("resnet18", in_channels=1, image_size=(32, 32))
    result = fit(model, train, val, dataclasses.replace(CPU, epochs=2), progress=False)
    assert isinstance(result, FitResult) and result.device == "cpu"
    assert result.best_val_auc > 0.9
    assert list(result.history.columns) == ["epoch", "train_loss", "val_loss", "val_auc", "lr", "seconds"]
    assert result.history["epoch"].tolist() == [1, 2]
    assert result.history["val_auc"].iloc[result.best_epoch - 1] == result.best_val_auc
    preds = predict(result.model, val, model_name="ResNet18", set_name="val", device="cpu")
    assert list(preds.columns) == ["case_id", "patient_id", "model", "set", "y_true", "score"]
    assert preds["case_id"].tolist() == list(val.case_id) and (preds["set"] == "val").all()
    assert preds["score"].between(0, 1).all()


def test_3d_fit_and_predict():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, 16, 16, 16, generator=g)
    y = torch.tensor([0, 1] * 4)
    data = CaseTensors(x, y, tuple(map(str, range(8))), tuple(map(str, range(8))))
    seed_everything(0)
    model = build_model("resnet10", in_channels=3, spatial_dims=3)
    result = fit(model, data, data, dataclasses.replace(CPU, epochs=1, batch_size=4), progress=False)
    assert len(predict(result.model, data, model_name="r10", set_name="train")) == 8


def test_two_runs_same_seed_identical(sets):
    train, val = sets
    scores = []
    for _ in range(2):
        result = fit(_tiny(), train, val, CPU, progress=False)
        scores.append(predict(result.model, val, model_name="tiny", set_name="val", device="cpu")["score"])
    pd.testing.assert_series_equal(scores[0], scores[1], check_exact=True)


def test_fit_does_not_touch_callers_rng(sets):
    model = _tiny()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fit(model, *sets, dataclasses.replace(CPU, epochs=1), progress=False)
    assert torch.equal(torch.rand(3), expected)


class Interrupt(Exception):
    pass


def test_resume_is_exact(sets, tmp_path):
    train, val = sets
    full = fit(_tiny(), train, val, CPU, checkpoint_dir=tmp_path / "full", progress=False)

    def stop_after_two(epoch, row):
        if epoch == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit(_tiny(), train, val, CPU, checkpoint_dir=tmp_path / "cut", progress=False, callback=stop_after_two)
    messages, epochs_run = [], []
    seed_everything(99)  # other initial weights: only the checkpoint can make the runs agree
    resumed = fit(TinyNet(), train, val, CPU, checkpoint_dir=tmp_path / "cut", resume=True, progress=False,
                  log=messages.append, callback=lambda epoch, row: epochs_run.append(epoch))
    assert any("after epoch 2" in m for m in messages) and epochs_run == [3]
    assert resumed.history["epoch"].tolist() == [1, 2, 3] and resumed.best_epoch == full.best_epoch
    cols = ["train_loss", "val_loss", "val_auc", "lr"]
    pd.testing.assert_frame_equal(resumed.history[cols], full.history[cols], check_exact=True)
    for key, value in full.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    a = predict(full.model, val, model_name="m", set_name="val", device="cpu")
    b = predict(resumed.model, val, model_name="m", set_name="val", device="cpu")
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert (tmp_path / "cut" / BEST_NAME).is_file()
    assert not list((tmp_path / "cut").glob(".*tmp*"))


def test_resume_of_finished_run_returns_best(sets, tmp_path):
    first = fit(_tiny(), *sets, dataclasses.replace(CPU, epochs=1), checkpoint_dir=tmp_path, progress=False)
    again = fit(_tiny(), *sets, dataclasses.replace(CPU, epochs=1), checkpoint_dir=tmp_path, resume=True,
                progress=False)
    assert again.best_epoch == first.best_epoch and len(again.history) == 1
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[key])


def test_resume_with_other_config_is_an_error(sets, tmp_path):
    fit(_tiny(), *sets, dataclasses.replace(CPU, epochs=1), checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"different run.*'lr': 0.001.*'lr': 0.01"):
        fit(_tiny(), *sets, dataclasses.replace(CPU, epochs=1, lr=1e-2), checkpoint_dir=tmp_path, resume=True,
            progress=False)


def test_checkpoint_loads_with_weights_only(sets, tmp_path):
    fit(_tiny(), *sets, dataclasses.replace(CPU, epochs=1), checkpoint_dir=tmp_path, progress=False)
    ckpt = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    assert ckpt["state"]["epoch"] == 1 and isinstance(ckpt["rng"]["generator"], torch.Tensor)
    assert set(torch.load(tmp_path / BEST_NAME, weights_only=True)) == set(TinyNet().state_dict())


def test_load_checkpoint_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume from"):
        load_checkpoint(tmp_path / CHECKPOINT_NAME, None, meta={})


def test_early_stopping(sets):
    # lr 1e-30 (the config refuses 0): no float32 weight moves, so epoch 1 stays best and patience 2 stops
    # after epoch 3
    result = fit(_tiny(), *sets, dataclasses.replace(CPU, epochs=10, lr=1e-30, patience=2, augment=False),
                 progress=False)
    assert result.stopped_early and len(result.history) == 3 and result.best_epoch == 1


def test_single_class_validation_warns(sets):
    train, val = sets
    one_class = val.subset([i for i in range(len(val)) if val.y[i] == 0])
    with pytest.warns(UserWarning, match="validation set has one class only"):
        result = fit(_tiny(), train, one_class, dataclasses.replace(CPU, epochs=2), progress=False)
    assert result.history["val_auc"].isna().all() and result.best_epoch in (1, 2)


@pytest.mark.parametrize("loss, optimizer, scheduler", [("ce+focal", "adamw", "none"), ("focal", "adam", "cosine")])
def test_losses_and_optimizers_run(sets, loss, optimizer, scheduler):
    cfg = dataclasses.replace(CPU, epochs=1, loss=loss, optimizer=optimizer, scheduler=scheduler,
                              class_weights=True, weight_decay=1e-4, grad_clip=None)
    assert len(fit(_tiny(), *sets, cfg, progress=False).history) == 1


def test_bad_inputs(sets):
    train, val = sets
    with pytest.raises(ValueError, match="need at least 2 training and 1 validation case"):
        fit(_tiny(), train.subset([0]), val, CPU, progress=False)
    with pytest.raises(ValueError, match="resume=True needs a checkpoint_dir"):
        fit(_tiny(), train, val, CPU, resume=True, progress=False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_explicit_cuda_without_gpu_is_an_error(sets):
    with pytest.raises(RuntimeError, match=r"train.device is 'cuda' but this machine has 0 CUDA device"):
        fit(_tiny(), *sets, dataclasses.replace(CPU, device="cuda"), progress=False)
    with pytest.raises(RuntimeError, match="0 CUDA device"):
        predict(_tiny(), sets[1], model_name="m", set_name="val", device="cuda:0")


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="Unknown device 'tpu'"):
        resolve_device("tpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_amp_channels_last_fit():
    train, val = toy(48, 1), toy(24, 2)
    seed_everything(0)
    model = build_model("resnet18", in_channels=1, image_size=(32, 32))
    result = fit(model, train, val, dataclasses.replace(CPU, device="cuda", amp=True, threads=None),
                 progress=False)
    assert result.device.startswith("cuda") and result.best_val_auc > 0.9
    assert next(result.model.parameters()).is_cuda
    assert result.model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    preds = predict(result.model, val, model_name="m", set_name="val", device="cuda")
    assert preds["score"].between(0, 1).all()


def test_package_face_and_old_import_paths():
    """``medlib.learn`` re-exports each owner's public names; the old paths in ``train`` and ``models`` still work."""
    import medlib.learn
    from medlib.learn import checkpoints, losses, models, train, weights

    for name in medlib.learn.__all__:
        value = getattr(medlib.learn, name)
        owner = next(m for m in (checkpoints, losses, models, train, weights)
                     if getattr(value, "__module__", None) == m.__name__ or vars(m).get(name) is value)
        assert getattr(owner, name) is value
    for name in ("BEST_NAME", "CHECKPOINT_NAME", "load_checkpoint", "save_checkpoint", "TrainState"):
        assert getattr(train, name) is getattr(checkpoints, name)
    for name in ("imagenet_weights_file", "require_imagenet_weights", "load_weights"):
        assert getattr(models, name) is getattr(weights, name)


def test_training_progress_follows_the_caller():
    """The loop asks for a bar unless told not to; medlib.progress picks its form (terminal bar, notebook widget,
    plain lines) or none under --quiet (tests/test_progress.py)."""
    from medlib.learn.train import _auto_progress

    assert _auto_progress(None) is True and _auto_progress(False) is False and _auto_progress(True) is True


# ---------------------------------------------------------------- the one recipe
def test_warmup_cosine_factor_by_hand():
    from medlib.learn.recipe import WARMUP_START, lr_factor, steps_per_epoch

    # 10 steps, 2 of warm-up: 0.01, 0.01 + 0.99 / 2, then 0.5 (1 + cos(pi k / 8)) for k = step - 2
    assert lr_factor(0, total=10, warmup=2) == pytest.approx(WARMUP_START)
    assert lr_factor(1, total=10, warmup=2) == pytest.approx(0.505)
    assert lr_factor(2, total=10, warmup=2) == pytest.approx(1.0)
    assert lr_factor(4, total=10, warmup=2) == pytest.approx(0.5 * (1 + 2 ** -0.5))
    assert lr_factor(10, total=10, warmup=2) == pytest.approx(0.0)
    assert [steps_per_epoch(n, 8) for n in (16, 17, 18, 3)] == [2, 2, 3, 1]  # a last batch of one is dropped


def test_scheduler_steps_per_batch_and_history_shows_it(sets):
    cfg = dataclasses.replace(CPU, epochs=3, warmup_epochs=1.0, scheduler="warmup_cosine", lr=1e-2)
    result = fit(_tiny(), *sets, cfg, progress=False)
    # 32 training cases in batches of 8: 4 steps an epoch, 12 in all, 4 of warm-up; the history records the
    # rate at the start of each epoch: step 0 (0.01 x), step 4 (peak), step 8 (cosine at 4 of 8 steps: 0.5)
    np.testing.assert_allclose(result.history["lr"], [1e-4, 1e-2, 5e-3], rtol=1e-6)


def test_recipe_defaults_and_no_decay_on_norms():
    from medlib.learn.recipe import build_optimizer

    cfg = TrainConfig()
    assert (cfg.optimizer, cfg.scheduler, cfg.lr, cfg.weight_decay, cfg.augment, cfg.flip) == \
        ("adamw", "warmup_cosine", None, 0.05, True, True)
    opt = build_optimizer(TinyNet(), cfg, 2)
    assert isinstance(opt, torch.optim.AdamW)
    assert opt.param_groups[0]["lr"] == 1e-3  # the 2D rate
    decayed, kept = opt.param_groups
    assert decayed["weight_decay"] == 0.05 and kept["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decayed["params"]) and all(p.ndim == 1 for p in kept["params"])


def test_learning_rate_is_a_third_in_3d_unless_set():
    """The fan-in rule: 3 x 3 x 3 kernels have three times the inputs of 3 x 3 ones, so a third of the rate."""
    from medlib.learn.recipe import build_optimizer, default_lr, learning_rate

    assert default_lr(2) == 1e-3 and default_lr(3) == pytest.approx(1e-3 / 3)
    assert learning_rate(TrainConfig(), 3) == pytest.approx(1e-3 / 3)
    assert learning_rate(TrainConfig(lr=2e-3), 3) == 2e-3  # a set rate is used as it is
    opt = build_optimizer(torch.nn.Conv3d(1, 2, 3), TrainConfig(), 3)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3 / 3)
    with pytest.raises(ValueError, match="spatial_dims must be 2 or 3"):
        default_lr(1)


def test_optimizer_uses_the_fused_kernel_with_the_same_update():
    """The fused AdamW kernel (one pass over the parameters) steps as torch's per-tensor loop does."""
    from medlib.learn.recipe import build_optimizer

    torch.manual_seed(0)
    a, b = TinyNet(), TinyNet()
    b.load_state_dict(a.state_dict())
    start = [p.detach().clone() for p in a.parameters()]
    fused = build_optimizer(a, TrainConfig(), 2)
    assert all(g["fused"] for g in fused.param_groups)
    same_b = dict(zip(map(id, a.parameters()), b.parameters()))  # a's parameter -> b's twin
    loop = torch.optim.AdamW([{"params": [same_b[id(p)] for p in g["params"]], "weight_decay": g["weight_decay"]}
                              for g in fused.param_groups], lr=1e-3, foreach=False)
    x, y = torch.randn(8, 1, 16, 16), torch.randint(0, 2, (8,))
    for step in range(3):
        for net, opt in ((a, fused), (b, loop)):
            torch.manual_seed(step)  # the same dropout masks
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert not any(p.equal(q) for p, q in zip(a.parameters(), start))  # every parameter moved


def test_intensity_jitter_is_bounded_and_reproducible():
    from medlib.learn.recipe import intensity_jitter

    x = torch.randn(64, 2, 16, 16) * 3 + 5
    a = intensity_jitter(x, generator=torch.Generator().manual_seed(0), noise=0.0)
    b = intensity_jitter(x, generator=torch.Generator().manual_seed(0), noise=0.0)
    assert torch.equal(a, b) and not torch.equal(a, x)
    # without noise each channel is m + a (x - m) + b s: its SD scales by a in [0.85, 1.15], its mean moves by
    # b s with |b| <= 0.1
    ratio = a.flatten(2).std(2) / x.flatten(2).std(2)
    assert ratio.min() >= 0.85 - 1e-5 and ratio.max() <= 1.15 + 1e-5
    shift = (a.flatten(2).mean(2) - x.flatten(2).mean(2)) / x.flatten(2).std(2)
    assert shift.abs().max() <= 0.1 + 1e-5
    assert (ratio[:, 0] != ratio[:, 1]).all()  # channels vary independently


def lesions(n: int, seed: int, size: int = 28) -> tuple[CaseTensors, np.ndarray]:
    """A lesion toy problem: positives carry a small bright blob at a random place; every case carries a
    distractor bar at a random place (both classes), over smooth noise. Returns the cases and the lesion masks."""
    rng = np.random.default_rng(seed)
    rr, cc = np.mgrid[:size, :size]
    x = rng.normal(0, 1, (n, 1, size, size)).astype(np.float32)
    masks = np.zeros((n, size, size), bool)
    y = np.arange(n) % 2
    for i in range(n):
        r0, c0 = rng.integers(3, size - 6, 2)
        x[i, 0, r0:r0 + 2, c0:c0 + 6] += 1.5  # the distractor
        if y[i]:
            r, c = rng.integers(5, size - 5, 2)
            masks[i] = (rr - r) ** 2 + (cc - c) ** 2 <= 9
            x[i, 0][masks[i]] += 2.5
    return CaseTensors(torch.from_numpy(x), torch.from_numpy(y).long(), tuple(f"l{seed}c{i}" for i in range(n)),
                       tuple(f"l{seed}p{i}" for i in range(n))), masks


def test_tiny_lesion_run_learns_with_the_default_recipe():
    """The recipe's defaults, a registry ResNet-18 and a few epochs: well above chance on held-out cases, and
    its Grad-CAM (at the automatically chosen layer) points at the lesions more often than the centre does."""
    from sklearn.metrics import roc_auc_score

    from medlib.explain.gradcam import GradCAMExplainer
    from medlib.explain.localisation import score_localisation
    from medlib.learn.sizes import choose_cam_layer

    (train, _), (val, _), (test, masks) = lesions(64, 0), lesions(32, 1), lesions(48, 2)
    seed_everything(0)
    model = build_model("resnet18", in_channels=1, image_size=(28, 28))
    cfg = TrainConfig(epochs=5, batch_size=8, device="cpu", threads=1, patience=0)
    result = fit(model, train, val, cfg, progress=False)
    scores = predict(result.model, test, model_name="r", set_name="test", device="cpu")["score"]
    auc = roc_auc_score(test.y.numpy(), scores)
    assert auc > 0.85, f"test AUC {auc:.2f}"
    layer = choose_cam_layer(result.model, (1, 28, 28))
    assert layer.layer == "layer1" and layer.cells == (7, 7)
    positives = test.y.numpy() == 1
    with GradCAMExplainer(result.model, layer=layer.layer) as cam:
        maps = cam(test.x[positives], targets="positive")
    loc = score_localisation(maps, masks[positives])
    assert loc.pointing.mean() > loc.centre_pointing.mean() + 0.2, (loc.pointing.mean(), loc.centre_pointing.mean())
