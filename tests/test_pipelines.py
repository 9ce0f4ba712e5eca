"""Study steps that the notebooks call, on tiny in-memory inputs (the whole flow runs in test_notebooks.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from medlib.pipelines import classifier
from medlib.config import ImageConfig, ModelConfig, StudyConfig, StudySection
from medlib.learn.models import build_model


STUDY = StudySection(name="t", title="T", question="Q?", population="P.", unit="image", positive="p", negative="n")


def _results(model_cfg: ModelConfig, in_channels: int = 1) -> classifier.DeepResults:
    torch.manual_seed(0)
    net = build_model(model_cfg.name, in_channels=in_channels, spatial_dims=model_cfg.spatial_dims).eval()
    return classifier.DeepResults(predictions=pd.DataFrame(), models={model_cfg.display_name: net})


@pytest.mark.parametrize("cam_layer, expected", [
    (None, "layer1 (7 × 7 map; layer4 would give 1 × 1 at this input size, under the 7 × 7 minimum: an earlier "
           "layer was chosen automatically; HiResCAM maps)"),  # layer4 of 28 x 28 would be one cell
    ("layer2", "layer2 (4 × 4 map; models[].cam_layer; HiResCAM maps)"),
])
def test_cam_sanity_names_the_layer_and_its_map(cam_layer, expected):
    model_cfg = ModelConfig(name="resnet18", label="R", cam_layer=cam_layer)
    cfg = StudyConfig(study=STUDY, models=(model_cfg,))
    results = _results(model_cfg)
    images = np.random.default_rng(0).normal(size=(3, 1, 28, 28)).astype(np.float32)
    assert classifier.cam_layer(cfg, results, model="R", input_shape=images.shape[1:]).layer == (cam_layer or "layer1")
    table = classifier.cam_sanity(cfg, results, images, model="R")
    assert table.loc[0, "layer"] == expected and table.loc[0, "cases"] == 3


def test_cam_sanity_of_a_volume_model():
    model_cfg = ModelConfig(name="resnet10", label="V", spatial_dims=3)
    cfg = StudyConfig(study=STUDY, models=(model_cfg,), image=ImageConfig(size=(32, 32, 32)))
    images = np.random.default_rng(0).normal(size=(2, 3, 32, 32, 32)).astype(np.float32)
    table = classifier.cam_sanity(cfg, _results(model_cfg, in_channels=3), images, model="V")
    assert table.loc[0, "layer"] == ("layer2 (4 × 4 × 4 map; layer4 would give 1 × 1 × 1 at this input size, under "
                                     "the 4 × 4 × 4 minimum: an earlier layer was chosen automatically; HiResCAM "
                                     "maps)")


