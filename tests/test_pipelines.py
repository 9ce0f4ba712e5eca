"""Study steps that the notebooks call, on tiny in-memory inputs (the whole flow runs in test_notebooks.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from medlib.pipelines import classifier
from medlib.config import ModelConfig, StudyConfig, StudySection
from medlib.learn.models import build_model


STUDY = StudySection(name="t", title="T", question="Q?", population="P.", unit="image", positive="p", negative="n")


def _results(model_cfg: ModelConfig, in_channels: int = 1) -> classifier.DeepResults:
    torch.manual_seed(0)
    net = build_model(model_cfg.name, in_channels=in_channels, spatial_dims=model_cfg.spatial_dims).eval()
    return classifier.DeepResults(predictions=pd.DataFrame(), models={model_cfg.display_name: net})


@pytest.mark.parametrize("cam_layer, expected", [
    (None, "layer3 (2 × 2 map; default for this input size)"),  # layer4 of 28 x 28 would be one cell
    ("layer2", "layer2 (4 × 4 map; models[].cam_layer)"),
])
def test_cam_sanity_names_the_layer_and_its_map(cam_layer, expected):
    model_cfg = ModelConfig(name="resnet18", label="R", cam_layer=cam_layer)
    cfg = StudyConfig(study=STUDY, models=(model_cfg,))
    results = _results(model_cfg)
    images = np.random.default_rng(0).normal(size=(3, 1, 28, 28)).astype(np.float32)
    assert classifier.cam_layer(cfg, results, model="R", input_shape=images.shape[1:]) == (cam_layer or "layer3")
    table = classifier.cam_sanity(cfg, results, images, model="R")
    assert table.loc[0, "layer"] == expected and table.loc[0, "cases"] == 3


def test_cam_sanity_of_a_volume_model():
    model_cfg = ModelConfig(name="resnet10", label="V", spatial_dims=3)
    cfg = StudyConfig(study=STUDY, models=(model_cfg,))
    images = np.random.default_rng(0).normal(size=(2, 3, 32, 32, 32)).astype(np.float32)
    table = classifier.cam_sanity(cfg, _results(model_cfg, in_channels=3), images, model="V")
    assert table.loc[0, "layer"] == "layer3 (2 × 2 × 2 map; default for this input size)"


def test_deep_feature_backbone_is_seeded_by_the_run():
    from medlib.config import RadiomicsConfig, TrainConfig
    from medlib.pipelines.features import _deep_backbone

    def cfg(seed):
        return StudyConfig(study=STUDY, design="features", radiomics=RadiomicsConfig(enabled=True, deep_model="resnet18"),
                           train=TrainConfig(seed=seed))

    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    a, b, c = (_deep_backbone(cfg(s)).state_dict() for s in (0, 0, 1))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's random state is untouched
