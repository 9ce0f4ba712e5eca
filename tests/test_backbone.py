"""The deep-feature backbone's weights are a setting, checked and recorded (issue 15.1): ImageNet files checked
against torchvision's published hash, a backbone trained on training ROIs only and deterministic, random weights
only as a labelled ablation."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from medlib.config import RadiomicsConfig
from medlib.radiomics import backbone
from medlib.radiomics.deep import slice_features


def _slices(n=12, size=16, seed=0):
    rng = np.random.default_rng(seed)
    y = np.array([0, 1] * (n // 2))
    x = rng.random((n, size, size), dtype=np.float32) * 0.2
    x[y == 1, 4:12, 4:12] += 0.7  # positives carry a bright square
    return x, y


def test_the_setting_exists_and_defaults_to_a_trained_backbone():
    assert RadiomicsConfig().deep_weights == "trained" and RadiomicsConfig().deep_epochs >= 1
    with pytest.raises(Exception, match="deep_weights"):
        RadiomicsConfig(deep_weights="pretrained")


def test_imagenet_file_missing_names_the_file_and_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        backbone.imagenet_backbone("resnet18")
    message = str(err.value)
    assert "resnet18-f37072fd.pth" in message and str(tmp_path) in message
    assert "radiomics.deep_weights: imagenet" in message


def _fake_imagenet_file(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(1)
    state = torchvision.models.resnet18(weights=None).state_dict()
    path = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"  # torchvision's published name
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    return path, state


def test_imagenet_file_with_another_hash_is_refused(tmp_path, monkeypatch):
    path, _ = _fake_imagenet_file(tmp_path, monkeypatch)
    with pytest.raises(ValueError, match="does not start with torchvision's published hash 'f37072fd'"):
        backbone.imagenet_backbone("resnet18")
    assert backbone.published_hash_prefix(path) == "f37072fd"


def test_imagenet_weights_are_loaded_normalised_and_recorded(tmp_path, monkeypatch):
    import torchvision

    path, state = _fake_imagenet_file(tmp_path, monkeypatch)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()  # reference: hashlib on the whole file
    monkeypatch.setattr(backbone, "published_hash_prefix", lambda p: digest[:8])
    net, weights = backbone.imagenet_backbone("resnet18")
    assert weights.kind == "imagenet" and weights.sha256 == digest and not weights.ablation
    assert "resnet18-f37072fd.pth" in weights.source and "torch cache" in weights.source
    # reference: torchvision's resnet18 with the same state, fed ImageNet-normalised 3-channel slices
    ref = torchvision.models.resnet18(weights=None)
    ref.load_state_dict(state)
    ref.fc = torch.nn.Identity()
    x, _ = _slices(n=2)
    t = torch.from_numpy(x)[:, None].repeat(1, 3, 1, 1)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    sd = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = ref.eval()((t - mean) / sd).numpy().mean(axis=0)
    np.testing.assert_allclose(slice_features(net, x), expected, rtol=1e-4, atol=1e-5)


def test_trained_backbone_is_deterministic_and_learns():
    x, y = _slices()
    net_a, a = backbone.trained_backbone("resnet18", x, y, epochs=1, seed=3, batch_size=4, cases=12)
    net_b, b = backbone.trained_backbone("resnet18", x, y, epochs=1, seed=3, batch_size=4, cases=12)
    assert a.sha256 == b.sha256 and a.kind == "trained"
    np.testing.assert_array_equal(slice_features(net_a, x), slice_features(net_b, x))
    _, c = backbone.trained_backbone("resnet18", x, y, epochs=1, seed=4, batch_size=4, cases=12)
    assert c.sha256 != a.sha256
    _, untrained = backbone.random_backbone("resnet18", seed=3)
    assert untrained.sha256 != a.sha256
    assert "12 training-set cases only" in a.source and "1 epochs" not in a.source and "(1 epoch," in a.source


def test_random_weights_are_an_ablation():
    _, w = backbone.random_backbone("resnet18", seed=0)
    assert w.ablation and "ablation" in w.source and w.as_dict()["ablation"] is True


def test_feature_pipeline_trains_on_training_cases_only():
    """The trained backbone must not change when validation or test slices change."""
    from medlib.config import StudyConfig, StudySection
    from medlib.pipelines.features import deep_backbone

    study = StudySection(name="t", title="t", question="q", population="p", unit="patient", positive="a",
                         negative="b")
    cfg = StudyConfig(study=study, design="features", cohort={"mask_column": "mask"},
                      radiomics=RadiomicsConfig(enabled=True, deep_model="resnet18", deep_epochs=1))
    x, y = _slices(n=16)
    table = pd.DataFrame({"case_id": [f"c{i}" for i in range(16)], "y": y,
                          "set": ["train"] * 8 + ["val"] * 4 + ["test"] * 4})
    prepared = SimpleNamespace(table=table)
    slices = {c: x[i:i + 1] for i, c in enumerate(table["case_id"])}
    _, first = deep_backbone(cfg, prepared, slices)
    changed = {c: (s if set_ == "train" else 1 - s) for (c, s), set_ in zip(slices.items(), table["set"])}
    _, second = deep_backbone(cfg, prepared, changed)
    assert first.sha256 == second.sha256 and first.details["cases"] == 8 and first.details["slices"] == 8
