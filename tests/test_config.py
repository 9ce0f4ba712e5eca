"""Study configuration: typed, validated, unknown keys are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from medlib.config import ConfigError, config_to_dict, load_config, parse_overrides

PARAMS = Path(__file__).resolve().parents[1] / "params"


@pytest.mark.parametrize("path", sorted(PARAMS.glob("*.yaml")) + sorted(PARAMS.glob("smoke/*.yaml")),
                         ids=lambda p: str(p.relative_to(PARAMS)))
def test_every_params_file_is_valid(path):
    cfg = load_config(path)
    assert cfg.study and cfg.cohort.manifest
    assert cfg.models or cfg.radiomics.enabled


def write(tmp_path, text):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, message", [
    ("study: x\ntrain: {epochs: 3, lerning_rate: 0.1}\n", r"Unknown config key train.lerning_rate"),
    ("study: x\nbogus: 1\n", r"Unknown config key bogus"),
    ("train: {epochs: three}\n", r"train.epochs: expected an integer, got 'three'"),
    ("train: {lr: true}\n", r"train.lr: expected a number, got True"),
    ("train: {loss: hinge}\n", r"train.loss: expected one of \['ce', 'focal', 'ce\+focal'\], got 'hinge'"),
    ("image: {size: 64}\n", r"image.size: expected a list, got 64"),
    ("models: [{name: resnet18, depth: 3}]\n", r"Unknown config key models\[0\].depth"),
    ("- a\n- b\n", r"expected a mapping of config keys"),
    ("a: [unclosed\n", r"not valid YAML"),
])
def test_bad_params_name_the_key_and_file(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_config(write(tmp_path, text))
    assert "p.yaml" in str(info.value)


def test_overrides_are_typed_and_validated(tmp_path):
    path = write(tmp_path, "study: x\ntrain: {epochs: 30}\n")
    cfg = load_config(path, ["train.epochs=3", "image.size=[32, 32]", "threshold.method=sensitivity"])
    assert cfg.train.epochs == 3 and cfg.image.size == (32, 32) and cfg.threshold.method == "sensitivity"
    assert cfg.train.lr == 2e-3  # untouched defaults survive the merge
    with pytest.raises(ConfigError, match="train.epochs: expected an integer"):
        load_config(path, ["train.epochs=__import__('os').system('echo pwned')"])
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_overrides(["train.epochs"])


def test_yaml_is_loaded_safely(tmp_path):
    path = write(tmp_path, "study: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="params file not found"):
        load_config("nowhere.yaml")


def test_round_trip_to_plain_dict():
    cfg = load_config(PARAMS / "onfh.yaml")
    plain = config_to_dict(cfg)
    assert plain["models"][2]["inputs"] == ["ap", "frog"]
    assert plain["reference"]["Both views.auc"] == 0.78
