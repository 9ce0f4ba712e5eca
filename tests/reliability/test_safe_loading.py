"""Safe loading: a pickle that runs code is refused by every loader medlib has, YAML is read with the safe loader,
and the notebook's parameters are validated before injection and cannot become code."""

from __future__ import annotations

import ast
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from medlib.config import ConfigError
from medlib.cli.runner import PROJECT_ROOT, run_study


class _Payload:
    """Unpickling this object runs ``os.system('touch <marker>')``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def malicious(path: Path, marker: Path, *, wrap=lambda payload: payload) -> Path:
    torch.save(wrap(_Payload(marker)), path)
    return path


def test_the_payload_really_runs_code_when_unpickled(tmp_path):
    marker = tmp_path / "PWNED"
    path = malicious(tmp_path / "probe.pt", marker)
    torch.load(path, weights_only=False)  # what medlib must never do
    assert marker.exists()


def test_resume_checkpoint_loader_refuses_a_malicious_pickle(tmp_path):
    from medlib.learn.train import load_checkpoint

    marker = tmp_path / "PWNED"
    path = malicious(tmp_path / "checkpoint.pt", marker, wrap=lambda p: {"format": 1, "state": p})
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load_checkpoint(path, trainer=None, meta={})
    assert not marker.exists()


def test_fit_resume_refuses_a_malicious_checkpoint(tmp_path):
    from medlib.config import TrainConfig
    from medlib.data.tensors import CaseTensors
    from medlib.learn.models import build_model
    from medlib.learn.train import fit

    marker = tmp_path / "PWNED"
    malicious(tmp_path / "checkpoint.pt", marker)
    g = torch.Generator().manual_seed(0)
    data = CaseTensors(torch.randn(8, 1, 16, 16, generator=g), torch.tensor([0, 1] * 4),
                       tuple(f"c{i}" for i in range(8)), tuple(f"p{i}" for i in range(8)))
    model = build_model("resnet18", in_channels=1, spatial_dims=2)
    with pytest.raises(pickle.UnpicklingError):
        fit(model, data, data, TrainConfig(epochs=1, batch_size=4, threads=1, device="cpu"),
            checkpoint_dir=tmp_path, resume=True, progress=False)
    assert not marker.exists()


def test_weights_file_loader_refuses_a_malicious_pickle(tmp_path):
    from medlib.learn.models import build_model, load_weights

    marker = tmp_path / "PWNED"
    path = malicious(tmp_path / "medicalnet.pth", marker, wrap=lambda p: {"state_dict": p})
    with pytest.raises(pickle.UnpicklingError):
        load_weights(build_model("resnet10", in_channels=1, spatial_dims=3), path)
    assert not marker.exists()


def test_preprocessing_cache_never_unpickles(tmp_path):
    from medlib.data.preprocess import cache_key, load_preprocessed
    from medlib.synth import generate

    manifest = generate("nec", tmp_path / "data", scale=0.1, image_size=16)
    image = next((manifest.parent / "images").glob("*.dcm"))
    settings = {"size": [16, 16]}
    key = cache_key(image, settings)
    entry = tmp_path / "cache" / key[:2] / f"{key}.npy"
    entry.parent.mkdir(parents=True)
    marker = tmp_path / "PWNED"
    np.save(entry, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    array = load_preprocessed(image, settings, cache_dir=tmp_path / "cache")
    assert array.shape == (16, 16) and array.dtype == np.float32  # recomputed, the entry replaced
    assert not marker.exists()


def test_run_config_is_read_with_the_safe_loader(tmp_path):
    from medlib.runs.folder import new_run

    run = new_run("nec", runs_dir=tmp_path / "runs", run_id="r1")
    marker = tmp_path / "PWNED"
    (run.path / "config.yaml").write_text(f"study: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(Exception, match="could not determine a constructor"):
        run.read_config()
    assert not marker.exists()


def test_bad_override_is_rejected_before_any_notebook_runs(tmp_path):
    reports = tmp_path / "reports"
    with pytest.raises(ConfigError, match=r"train\.epochs: expected an integer"):
        run_study("nec", params=PROJECT_ROOT / "params/smoke/nec.yaml", reports_dir=reports,
                  overrides=["train.epochs=__import__('os').system('touch PWNED')"])
    assert not reports.exists()
    assert not (PROJECT_ROOT / "PWNED").exists()


@pytest.mark.parametrize("title", [
    'x"\nimport os; os.system("touch PWNED")\n#',
    "x'''; import os; os.system('touch PWNED'); '''",
    'x\\"); __import__("os").system("touch PWNED"); ("',
])
def test_injected_parameters_stay_strings(title, tmp_path, monkeypatch):
    """The override strings papermill injects are string literals, whatever they hold."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    from medlib.config import parse_overrides

    overrides = [f"study.title={title}", "train.epochs=1"]
    parse_overrides(overrides)  # a valid override: it reaches the notebook
    nb = parameterize_notebook(load_notebook_node(str(PROJECT_ROOT / "notebooks/study.ipynb")),
                               {"config_path": "params/nec.yaml", "overrides": overrides, "run_id": "r",
                                "resume": ""})
    injected = next(c for c in nb.cells if "injected-parameters" in c.get("metadata", {}).get("tags", []))
    tree = ast.parse(injected.source)
    assert all(isinstance(node, ast.Assign) for node in tree.body)  # only assignments, no calls
    assert not any(isinstance(node, ast.Call) for node in ast.walk(tree))
    namespace: dict = {}
    monkeypatch.chdir(tmp_path)
    exec(compile(tree, "<injected>", "exec"), namespace)  # noqa: S102 - the point of the test
    assert namespace["overrides"] == overrides
    assert not (tmp_path / "PWNED").exists()
    json.dumps(namespace["overrides"])
