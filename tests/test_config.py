"""Study configuration: typed, validated, ranges checked at load; unknown and missing keys are errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from medlib.config import (ConfigError, ImageConfig, StudyConfig, StudySection, TrainConfig, config_from_dict,
                           config_to_dict, load_config, parse_overrides)

PARAMS = Path(__file__).resolve().parents[1] / "params"
ALL_PARAMS = sorted(PARAMS.glob("*.yaml")) + sorted(PARAMS.glob("smoke/*.yaml"))
SMOKE_OF = {"nec": "nec", "onfh": "onfh", "ich": "ich", "glioma": "glioma", "medmnist": "pneumoniamnist"}

STUDY = ("study: {name: x, title: A title, question: 'Is it?', population: Everyone., unit: case, positive: pos,\n"
         "        negative: neg}\n")
VALID = STUDY + "models: [{name: resnet18, label: R}]\n"


@pytest.mark.parametrize("path", ALL_PARAMS, ids=lambda p: str(p.relative_to(PARAMS)))
def test_every_params_file_is_valid(path):
    cfg = load_config(path)
    s = cfg.study
    assert isinstance(s, StudySection) and s.name and s.title and cfg.cohort.manifest
    assert s.question.endswith("?") and s.population and s.unit and s.positive and s.negative and s.background
    assert set(s.inputs) == set(cfg.cohort.image_columns)  # every input is described
    assert s.reference is not None and s.reference.source and s.reference.results
    assert cfg.models or cfg.radiomics.enabled
    assert (cfg.design == "features") == cfg.radiomics.enabled


@pytest.mark.parametrize("smoke, full", SMOKE_OF.items())
def test_smoke_params_describe_the_same_study(smoke, full):
    tiny, real = load_config(PARAMS / "smoke" / f"{smoke}.yaml").study, load_config(PARAMS / f"{full}.yaml").study
    assert tiny.name == real.name == smoke and tiny.title.endswith("(smoke test)")
    assert dataclasses.replace(tiny, title=real.title, reference=real.reference) == real
    assert tiny.reference.source == real.reference.source
    assert tiny.reference.results.items() <= real.reference.results.items()


def test_medmnist_files_follow_the_benchmark():
    for name in ("pneumoniamnist", "adrenalmnist3d"):
        cfg = load_config(PARAMS / f"{name}.yaml")
        assert cfg.design == "classifier" and cfg.study.name == "medmnist"
        assert cfg.study.reference.source == "MedMNIST v2 (Yang et al., Scientific Data 2023)"


def write(tmp_path, text):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, message", [
    (VALID + "train: {epochs: 3, lerning_rate: 0.1}\n", r"Unknown config key train.lerning_rate"),
    (VALID + "bogus: 1\n", r"Unknown config key bogus"),
    (VALID + "train: {epochs: three}\n", r"train.epochs: expected an integer, got 'three'"),
    (VALID + "train: {epochs: true}\n", r"train.epochs: expected an integer, got True"),
    (VALID + "train: {epochs: 3.0}\n", r"train.epochs: expected an integer, got 3.0"),
    (VALID + "train: {lr: true}\n", r"train.lr: expected a number or null, got True"),
    (VALID + "train: {lr: .nan}\n", r"train.lr: expected a finite number, got nan"),
    (VALID + "train: {amp: yes please}\n", r"train.amp: expected true or false, got 'yes please'"),
    (VALID + "train: {loss: hinge}\n", r"train.loss: expected one of \['ce', 'focal', 'ce\+focal'\], got 'hinge'"),
    (VALID + "image: {size: 64}\n", r"image.size: expected a list, got 64"),
    (VALID + "image: {window: [40]}\n", r"image.window: expected a list of 2 numbers or null, got \[40\]"),
    (VALID + "train: null\n", r"train: expected a mapping of TrainConfig keys \(epochs, batch_size, "),
    (STUDY + "models: [{name: resnet18, depth: 3}]\n", r"Unknown config key models\[0\].depth. Allowed keys "
                                                       r"under models\[0\]: \['cam_layer', "),
    (STUDY + "models: [{name: resnet18}, {name: densenet121, spatial_dims: two}]\n",
     r"models\[1\].spatial_dims: expected one of \[2, 3\], got 'two'"),
    (VALID + "models: [{name: resnet18}]\n", r"p.yaml: line 4: duplicate key 'models' \(first at line 3\); expected each key once"),
    ("- a\n- b\n", r"expected a mapping of config keys"),
    ("a: [unclosed\n", r"not valid YAML"),
])
def test_bad_params_name_the_key_and_file(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_config(write(tmp_path, text))
    assert "p.yaml" in str(info.value)


RANGES = [
    ("train.epochs=0", r"train.epochs: expected an integer >= 1, got 0"),
    ("train.batch_size=0", r"train.batch_size: expected an integer >= 1, got 0"),
    ("train.lr=0", r"train.lr: expected a number > 0 or null, got 0"),
    ("train.lr=-0.1", r"train.lr: expected a number > 0 or null, got -0.1"),
    ("train.weight_decay=-1.0e-4", r"train.weight_decay: expected a number >= 0, got -0.0001"),
    ("train.patience=-1", r"train.patience: expected an integer >= 0, got -1"),
    ("train.focal_gamma=-1", r"train.focal_gamma: expected a number >= 0, got -1"),
    ("train.focal_alpha=1.5", r"train.focal_alpha: expected a number in \[0, 1\] or null, got 1.5"),
    ("train.focal_alpha=-0.1", r"train.focal_alpha: expected a number in \[0, 1\] or null, got -0.1"),
    ("train.focal_weight=-1", r"train.focal_weight: expected a number >= 0, got -1"),
    ("train.grad_clip=0", r"train.grad_clip: expected a number > 0 or null, got 0"),
    ("train.threads=0", r"train.threads: expected an integer >= 1 or null, got 0"),
    ("split.ratios=[0.5, 0.6]", r"split.ratios: expected 2 or 3 fractions \(train, val\[, test\]\) in \[0, 1\] that "
                                r"sum to 1, the first > 0, got \[0.5, 0.6\]"),
    ("split.ratios=[1.0]", r"split.ratios: expected 2 or 3 fractions .*, got \[1.0\]"),
    ("split.ratios=[0.5, 0.2, 0.2, 0.1]", r"split.ratios: expected 2 or 3 fractions .*, got \[0.5, 0.2, 0.2, 0.1\]"),
    ("split.ratios=[0.0, 1.0]", r"split.ratios: expected .*the first > 0, got \[0.0, 1.0\]"),
    ("split.ratios=[1.5, -0.5]", r"split.ratios\[0\]: expected a number in \[0, 1\], got 1.5"),
    ("split.folds=1", r"split.folds: expected 0 \(none\) or an integer >= 2, got 1"),
    ("split.folds=-2", r"split.folds: expected 0 \(none\) or an integer >= 2, got -2"),
    ("split.fold=-1", r"split.fold: expected an integer >= 0, got -1"),
    ("split.fold=2", r"split.fold: expected 0 when split.folds is 0 \(no cross-validation\).*, got 2"),
    (["split.folds=5", "split.fold=5"], r"split.fold: expected an integer in \[0, 4\] \(split.folds is 5\), got 5"),
    ("image.size=[64]", r"image.size: expected a list of 2 \(H, W\) or 3 \(D, H, W\) integers >= 8, got \[64\]"),
    ("image.size=[8, 8, 8, 8]", r"image.size: expected a list of 2 \(H, W\) or 3 .*, got \[8, 8, 8, 8\]"),
    ("image.size=[64, 4]", r"image.size\[1\]: expected an integer >= 8, got 4"),
    ("image.margin=-0.1", r"image.margin: expected a number >= 0, got -0.1"),
    ("explain.n_cases=0", r"explain.n_cases: expected an integer >= 1, got 0"),
    ("threshold.method=sensitivity", r"threshold.target: expected a number in \(0, 1\] \(the target sensitivity\) "
                                     r"for method 'sensitivity', got None"),
    (["threshold.method=sensitivity", "threshold.target=0"],
     r"threshold.target: expected a number in \(0, 1\].*, got 0"),
    (["threshold.method=sensitivity", "threshold.target=1.5"], r"threshold.target: .*'sensitivity', got 1.5"),
    ("threshold.method=fixed", r"threshold.target: expected a number in \[0, 1\] \(the threshold\) for method "
                               r"'fixed', got None"),
    (["threshold.method=fixed", "threshold.target=-0.5"], r"threshold.target: .*'fixed', got -0.5"),
    ("threshold.target=0.5", r"threshold.target: expected null for method 'youden'.*, got 0.5"),
    ("radiomics.bin_width=0", r"radiomics.bin_width: expected a number > 0, got 0"),
    ("radiomics.habitats=1", r"radiomics.habitats: expected 0 \(none\) or an integer >= 2, got 1"),
    ("radiomics.deep_size=4", r"radiomics.deep_size: expected an integer >= 8, got 4"),
    ("radiomics.workers=0", r"radiomics.workers: expected an integer >= 1, got 0"),
    ("radiomics.resample_mm=0", r"radiomics.resample_mm: expected a number > 0 or null, got 0"),
    ("cohort.max_errors=0", r"cohort.max_errors: expected an integer >= 1, got 0"),
    ("cohort.source_limit=0", r"cohort.source_limit: expected an integer >= 1 or null, got 0"),
    ("cohort.negative=1", r"cohort.negative: expected a label value other than cohort.positive \('1'\), got '1'"),
    (["cohort.covariates=[age, sex]", "cohort.categorical=[sex, race]"],
     r"cohort.categorical: expected names among cohort.covariates \['age', 'sex'\], got \['race'\]"),
    ("models=[{name: resnet18, width: 0}]", r"models\[0\].width: expected a number > 0, got 0"),
    ("models=[{name: resnet18}, {name: resnet18}]",
     r"models\[1\].label: expected a display name unique across models, ignoring case and spaces \(models\[0\] is "
     r"'resnet18'\); set models\[\].label, got 'resnet18'"),
    ("models=[{name: resnet18, label: Res Net}, {name: vgg16, label: ' res  net '}]",
     r"models\[1\].label: expected a display name unique .*ignoring case and spaces.*got 'res  net'"),
    ("models=[{name: resnet18, label: \"a\\tb\"}]", r"models\[0\].label: expected a name without control characters"),
    ("models=[{name: resnet18, label: R, spatial_dims: 3}]",
     r"models\[0\].spatial_dims: expected 2 to match image.size \[64, 64\] \(2D images\), got 3"),
    ("models=[{name: resnet18, label: R, spatial_dims: 4}]", r"models\[0\].spatial_dims: expected one of \[2, 3\], got 4"),
    ("split.ratios=[1, 0]", r"split.ratios: expected a validation fraction > 0 as the second ratio \(the threshold is "
                            r"chosen on the validation set\), got \[1.0, 0.0\]"),
    ("image.crop_to_mask=true", r"cohort.mask_column: expected a mask column \(cohort.mask_column\) when "
                                r"image.crop_to_mask is true, got None"),
    ("runs_dir=" + "r" * 300, r"runs_dir: expected a path whose every part is at most 255 bytes \(one part has 300\)"),
    ("cohort.manifest=\"a\\tb.csv\"", r"cohort.manifest: expected a path without control characters"),
    ("study.name=" + "n" * 65, r"study.name: expected a short name of at most 64 letters"),
    ("image.margin=0.2", r"image.margin: has no effect unless image.crop_to_mask is true; remove it"),
    ("train.focal_gamma=1", r"train.focal_gamma: has no effect with train.loss 'ce'; remove it"),
    ("cohort.source_limit=5", r"cohort.source_limit: has no effect without cohort.source; remove it"),
    ("radiomics.habitats=2", r"radiomics.habitats: has no effect in design 'classifier'; remove it"),
    (["split.split_file=s.csv", "split.seed=3"], r"split.seed: has no effect with split.split_file"),
    ("models=[{name: resnet18, label: R, multiview: shared}]",
     r"models\[0\].multiview: has no effect for a model that reads one 2D image column"),
    ("models=[{name: resnet18, label: A}, {name: vgg16}, {name: densenet121, label: A}]",
     r"models\[2\].label: expected a display name unique .*, got 'A'"),
    ("study.name=runs/../x", r"study.name: expected a short name of at most 64 letters, digits, '_' and '-' "
                             r"\(starting with a letter or digit\), got 'runs/../x'"),
    ("study.name=_x", r"study.name: expected a short name .*, got '_x'"),
    ("study.title=' '", r"study.title: expected one line of text, got ' '"),
    ("study.inputs={ct: a CT}", r"study.inputs: expected keys among cohort.image_columns \['image'\], got \['ct'\]"),
    ("study.reference={source: S, results: {auc: 0.9}}",
     r"study.reference.results\['auc'\]: expected a key '<model label>.<metric>' or "
     r"'<model label>.<set>_<metric>', e.g. 'ResNet18.accuracy' or 'Fused.test_auc', got 'auc'"),
    ("study.reference={source: S, results: {R.accuracy: 91.9}}",
     r"study.reference.results\['R.accuracy'\]: expected a number in \[0, 1\], got 91.9"),
    ("study.reference={source: S, results: {}}",
     r"study.reference.results: expected a mapping \(at least 1 entry\), got \{\}"),
    ("study.reference={results: {R.auc: 0.9}}",
     r"study.reference.source: expected one line of text \(the publication the results come from.*\), got nothing: "
     r"the key is missing"),
]


@pytest.mark.parametrize("overrides, message", RANGES, ids=[str(o) for o, _ in RANGES])
def test_ranges_are_checked_at_load(tmp_path, overrides, message):
    path = write(tmp_path, VALID)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path, [overrides] if isinstance(overrides, str) else overrides)
    assert str(info.value).startswith(f"{path}: ")


def test_boundary_values_are_accepted(tmp_path):
    cfg = load_config(write(tmp_path, VALID), [
        "train.patience=0", "train.weight_decay=0", "train.loss=ce+focal", "train.focal_alpha=0", "train.focal_gamma=0",
        "train.grad_clip=null", "train.threads=null", "split.ratios=[0.5, 0.5, 0]", "split.folds=2", "split.fold=1",
        "image.size=[8, 8, 8]", "models=[{name: resnet18, label: R, spatial_dims: 3}]", "image.crop_to_mask=true",
        "cohort.mask_column=mask", "image.margin=0", "threshold.method=sensitivity", "threshold.target=1",
        "cohort.max_errors=1"])
    assert cfg.split.ratios == (0.5, 0.5, 0.0) and cfg.image.size == (8, 8, 8) and cfg.threshold.target == 1.0
    features = load_config(write(tmp_path, STUDY + "design: features\nradiomics: {enabled: true}\n"), [
        "radiomics.habitats=0", "radiomics.resample_mm=null", "threshold.method=fixed", "threshold.target=0.5",
        "split.ratios=[1, 0]"])  # a fixed threshold needs no validation set in a features design
    assert features.radiomics.habitats == 0 and features.split.ratios == (1.0, 0.0)
    assert load_config(write(tmp_path, VALID), ["threshold.method=fixed", "threshold.target=0"]).threshold.target == 0
    assert load_config(write(tmp_path, VALID), ["split.ratios=[0.6, 0.2, 0.2]"]).split.ratios == (0.6, 0.2, 0.2)


def test_text_numbers_say_how_to_write_a_number(tmp_path):
    """YAML 1.1 (PyYAML) reads 1e-3 as text; medlib reads it as the number YAML 1.2 (and every reader) means, and
    a number quoted as text names the spelling that works."""
    assert yaml.safe_load("lr: 1e-3") == {"lr": "1e-3"}  # the quirk medlib's loader removes
    assert load_config(write(tmp_path, VALID + "train: {lr: 1e-3}\n")).train.lr == 0.001
    assert load_config(write(tmp_path, VALID + "train: {weight_decay: 5E4}\n")).train.weight_decay == 5e4
    assert load_config(write(tmp_path, VALID), ["train.lr=2e-4"]).train.lr == 2e-4
    with pytest.raises(ConfigError,
                       match=r"p.yaml: train.lr: expected a number or null, got '1e-3' \(text\); write 1.0e-3"):
        load_config(write(tmp_path, VALID + "train: {lr: '1e-3'}\n"))
    with pytest.raises(ConfigError, match=r"train.weight_decay: expected a number, got '5E4' \(text\); write 5.0e\+4"):
        load_config(write(tmp_path, VALID + "train: {weight_decay: '5E4'}\n"))
    with pytest.raises(ConfigError, match=r"train.lr: expected a number or null, got '0.5' \(text\); write 0.5"):
        load_config(write(tmp_path, VALID + "train: {lr: '0.5'}\n"))
    with pytest.raises(ConfigError, match=r"train.epochs: expected an integer, got '3' \(text\); write 3"):
        load_config(write(tmp_path, VALID + "train: {epochs: '3'}\n"))
    assert load_config(write(tmp_path, VALID + "train: {lr: 1.0e-3}\n")).train.lr == 0.001


def test_text_fields_take_numbers_as_text(tmp_path):
    cfg = load_config(write(tmp_path, VALID + "cohort: {positive: 1, negative: 0}\n"))
    assert cfg.cohort.positive == "1" and cfg.cohort.negative == "0"
    with pytest.raises(ConfigError, match=r"study.positive: expected a string, got True"):
        load_config(write(tmp_path, VALID), ["study.positive=yes"])  # YAML 1.1: yes is a boolean
    with pytest.raises(ConfigError, match=r"study.unit: expected a string, got 3"):
        load_config(write(tmp_path, VALID), ["study.unit=3"])  # the study's words are text, never numbers


def test_integers_become_floats_and_lists_tuples(tmp_path):
    cfg = load_config(write(tmp_path, VALID + "train: {lr: 1}\nimage: {size: [32, 32], window: [40, 80]}\n"))
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)
    assert cfg.image.size == (32, 32) and cfg.image.window == (40.0, 80.0) and isinstance(cfg.models, tuple)


# ------------------------------------------------------------------------------------------- study: section


def test_study_section_is_read(tmp_path):
    cfg = load_config(write(tmp_path, VALID))
    assert cfg.study == StudySection(name="x", title="A title", question="Is it?", population="Everyone.",
                                     unit="case", positive="pos", negative="neg")
    assert cfg.study.inputs == {} and cfg.study.background is None and cfg.study.reference is None
    assert cfg.design == "classifier"


@pytest.mark.parametrize("key", ["name", "title", "question", "population", "unit", "positive", "negative"])
def test_missing_study_key(tmp_path, key):
    data = yaml.safe_load(VALID)
    del data["study"][key]
    with pytest.raises(ConfigError, match=rf"p.yaml: study.{key}: expected .*, got nothing: the key is missing"):
        load_config(write(tmp_path, yaml.safe_dump(data)))


def test_missing_study_question_says_what_it_is(tmp_path):
    data = yaml.safe_load(VALID)
    del data["study"]["question"]
    with pytest.raises(ConfigError, match=r"study.question: expected one line of text \(the clinical question, one "
                                          r"sentence\), got nothing: the key is missing"):
        load_config(write(tmp_path, yaml.safe_dump(data)))


def test_unknown_study_key(tmp_path):
    with pytest.raises(ConfigError, match=r"p.yaml: Unknown config key study.questoin. Allowed keys under study: "
                                          r"\['background', 'inputs', 'name', "):
        load_config(write(tmp_path, VALID), ["study.questoin=Why?"])


def test_missing_study_section(tmp_path):
    with pytest.raises(ConfigError, match=r"p.yaml: study: expected a mapping of StudySection keys \(name, title, "
                                          r"question, .*\), got nothing: the key is missing"):
        load_config(write(tmp_path, "models: [{name: resnet18}]\n"))


@pytest.mark.parametrize("text, message", [
    ("study: nec\n", r"study: expected a mapping of StudySection keys .*, got 'nec' \(the short name moved to "
                     r"study.name\)"),
    (VALID + "title: NEC\n", r"Unknown config key title \(moved to study.title\)"),
    (VALID + "reference: {ResNet18.accuracy: 0.919}\n",
     r"Unknown config key reference \(moved to study.reference.results, with study.reference.source"),
])
def test_old_study_keys_say_where_they_moved(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_multiline_text_and_optional_parts(tmp_path):
    text = STUDY.replace("question: 'Is it?'", "question: '  Is it?  '") + (
        "cohort: {image_columns: [ap, frog]}\n"
        "models: [{name: resnet18, label: R, inputs: [ap]}]\n")
    data = yaml.safe_load(text)
    data["study"].update(inputs={"ap": "one AP radiograph"}, background="Line one.\nLine two.\n",
                         reference={"source": "Author et al. 2024", "results": {"Both views.test_auc": 0.78}})
    cfg = config_from_dict(data)
    assert cfg.study.question == "Is it?" and cfg.study.background == "Line one.\nLine two."
    assert cfg.study.reference.results == {"Both views.test_auc": 0.78}
    data["study"]["population"] = "Two\nlines"
    with pytest.raises(ConfigError, match=r"<dict>: study.population: expected one line of text, got 'Two\\nlines'"):
        config_from_dict(data)


# ------------------------------------------------------------------------------------------- design


def test_features_design_needs_radiomics(tmp_path):
    with pytest.raises(ConfigError, match=r"p.yaml: radiomics.enabled: expected true for design 'features'.*, "
                                          r"got False"):
        load_config(write(tmp_path, VALID + "design: features\n"))


def test_radiomics_needs_features_design(tmp_path):
    with pytest.raises(ConfigError, match=r"p.yaml: design: expected 'features' when radiomics.enabled is true, "
                                          r"got 'classifier'"):
        load_config(write(tmp_path, VALID + "radiomics: {enabled: true}\n"))
    cfg = load_config(write(tmp_path, STUDY + "design: features\nradiomics: {enabled: true}\n"))
    assert cfg.design == "features" and cfg.radiomics.enabled


def test_unknown_design(tmp_path):
    with pytest.raises(ConfigError, match=r"design: expected one of \['classifier', 'features'\], got 'cnn'"):
        load_config(write(tmp_path, VALID + "design: cnn\n"))


# ------------------------------------------------------------------------------------------- errors, overrides


def test_each_problem_is_one_line_and_the_list_is_capped(tmp_path):
    text = VALID + "train: {epochs: 0, batch_size: 0, lr: 0, weight_decay: -1, focal_gamma: -1, patience: -1}\n"
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    lines = str(info.value).splitlines()
    assert len(lines) == 6 and all(line.startswith(f"{tmp_path / 'p.yaml'}: ") for line in lines)
    assert lines[0].endswith("train.epochs: expected an integer >= 1, got 0")
    assert lines[-1].endswith("... and 1 more problem(s)")


def test_overrides_are_typed_and_validated(tmp_path):
    path = write(tmp_path, VALID + "train: {epochs: 30}\n")
    cfg = load_config(path, ["train.epochs=3", "image.size=[32, 32]", "threshold.method=sensitivity",
                             "threshold.target=0.9", "study.title=Another title"])
    assert cfg.train.epochs == 3 and cfg.image.size == (32, 32) and cfg.threshold.method == "sensitivity"
    assert cfg.train.lr == TrainConfig().lr  # untouched defaults survive the merge
    assert cfg.study.title == "Another title" and cfg.study.name == "x"
    with pytest.raises(ConfigError, match="train.epochs: expected an integer"):
        load_config(path, ["train.epochs=__import__('os').system('echo pwned')"])
    with pytest.raises(ConfigError, match=r"train.epochs: expected an integer >= 1, got 0"):
        load_config(path, ["train.epochs=0"])
    with pytest.raises(ConfigError, match=r"Unknown config key study.titel"):
        load_config(path, {"study": {"titel": "x"}})
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
    assert plain["study"]["reference"]["results"]["Both views.auc"] == 0.78
    assert plain["study"]["name"] == "onfh" and plain["design"] == "classifier"
    assert config_from_dict(yaml.safe_load(yaml.safe_dump(plain)), source="config.yaml") == cfg


def test_stdlib_dataclass_functions_work():
    """``dataclasses.replace/asdict/fields`` are used across medlib on these classes; replace validates again."""
    cfg = load_config(PARAMS / "smoke" / "nec.yaml")
    assert [f.name for f in dataclasses.fields(StudyConfig)][:2] == ["study", "design"]
    moved = dataclasses.replace(cfg, cohort=dataclasses.replace(cfg.cohort, manifest="/abs/manifest.csv"))
    assert moved.cohort.manifest == "/abs/manifest.csv" and moved.study is cfg.study
    assert dataclasses.asdict(cfg.train)["epochs"] == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.epochs = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="greater than 0"):
        dataclasses.replace(TrainConfig(), lr=0.0)
    with pytest.raises(ValueError, match="greater than or equal to 8"):
        ImageConfig(size=(4, 8, 8))


def test_lesion_outcome_names_a_label_and_the_maps_explain_that_class():
    """The ONFH masks mark the necrotic segment, evidence for failure (the negative class): the localisation is
    scored on failures with the map of failure, and a map of the other class is refused before any work."""
    onfh = load_config("params/onfh.yaml")
    assert onfh.cohort.lesion_outcome == onfh.cohort.negative and onfh.cohort.lesion_class == 0
    assert onfh.explain.target == "negative"
    with pytest.raises(ConfigError, match=r"explain\.target.*'negative'.*'failure'"):
        load_config("params/onfh.yaml", ["explain.target=positive"])
    with pytest.raises(ConfigError, match=r"cohort\.lesion_outcome.*'success'.*'failure'"):
        load_config("params/onfh.yaml", ["cohort.lesion_outcome=collapse"])
    nec = load_config("params/nec.yaml")
    assert nec.cohort.lesion_outcome is None and nec.cohort.lesion_class == 1 and nec.explain.target == "positive"
