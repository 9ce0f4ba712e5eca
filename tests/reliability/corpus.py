"""The bad-input corpus: each case builds one broken input in a temporary folder from a tiny synthetic cohort.

A case says how to reach the broken input through the Python API (a zero-argument call that must raise) and
through the command line (``medlib`` arguments that must exit non-zero with one informative line on stderr),
the exception type the API raises and a regular expression both messages must match: it names the file, row
or key and what was expected.

``stage`` says where medlib catches it:

* ``preflight``: ``medlib run`` rejects it before any notebook starts or any run folder exists (unreadable images
  too: every image is read once and every mask's geometry checked before the notebook starts);
* ``notebook``: only a study notebook meets it (an empty ROI, found by radiomics); the CLI line is ``StudyFailed: <study>:
  <original error type>: <message>`` and the run folder is marked ``failed.json``;
* ``synth``: another CLI command (``medlib synth``);
* ``api``: reached through the Python API only (a run folder's guard, a reader, a write that runs out of disk).

``klass`` is the class of issue #20 a case belongs to (1 paths from data, 2 run folders, 3 silent wrong results,
4 geometry, 5 resource limits, 6 late errors; 0 the general malformed inputs before it). The classes' cases are
in ``corpus_classes.py`` and join ``CASES`` at the end of this module.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import yaml

from medlib.cli.runner import PROJECT_ROOT

SMOKE = PROJECT_ROOT / "params" / "smoke"


@dataclass(frozen=True)
class Case:
    """One bad input, ready to run."""

    name: str
    stage: str                    # "preflight", "notebook" or "synth"
    api: Callable[[], object]     # must raise ``error`` matching ``match``
    error: type | tuple[type, ...]
    match: str
    argv: list[str]               # arguments of ``python -m medlib``
    runs_dir: Path | None = None  # where a run folder would appear
    reports: Path | None = None   # where a report would appear
    study: str = "nec"
    env: dict = field(default_factory=dict)  # extra environment of the CLI process
    klass: int = 0                # issue #20's class (see the module docstring)


@dataclass
class Workspace:
    """A case's folder: a private copy of a base cohort plus a params file pointing at it."""

    root: Path
    study: str
    cohort: Path
    overrides: dict = field(default_factory=dict)

    @property
    def manifest(self) -> Path:
        return self.cohort / "manifest.csv"

    def table(self) -> pd.DataFrame:
        return pd.read_csv(self.manifest, dtype=str, keep_default_na=False)

    def write_table(self, df: pd.DataFrame) -> None:
        df.to_csv(self.manifest, index=False)

    def params(self, **sections) -> Path:
        """A params file: the study's smoke params pointed at this cohort, with ``sections`` merged in."""
        data = yaml.safe_load((SMOKE / f"{self.study}.yaml").read_text())
        data["cohort"]["manifest"] = str(self.manifest)
        data["runs_dir"] = str(self.root / "runs")
        if data.get("design") != "features":  # a features design reads no image section
            data.setdefault("image", {})["cache_dir"] = str(self.root / "cache")
        for key, value in sections.items():
            if key == "split" and "split_file" in value:  # the file gives the sets: ratios and seed would be unused
                data[key] = dict(value)
            elif isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        path = self.root / f"{self.study}.yaml"  # the report is named after the params file
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def run_argv(self, params: Path, *extra: str) -> list[str]:
        return ["run", self.study, "-f", str(params), "--reports", str(self.root / "reports"), *extra]

    def case(self, name: str, stage: str, api: Callable[[], object], error, match: str, argv: list[str],
             klass: int = 0) -> Case:
        return Case(name, stage, api, error, match, argv, self.root / "runs", self.root / "reports", self.study,
                    klass=klass)


def workspace(base: Path, tmp: Path, study: str) -> Workspace:
    """Copy the base cohort of ``study`` into ``tmp``."""
    cohort = tmp / "cohort" / study
    shutil.copytree(base / study, cohort)
    return Workspace(tmp, study, cohort)


def first_image(ws: Workspace, column: str) -> Path:
    return ws.cohort / ws.table()[column].iloc[0]


# ------------------------------------------------------------------------------------------- API helpers
def _cohort(ws: Workspace, params: Path):
    from medlib.data.cohort import load_cohort
    from medlib.config import load_config

    return lambda: load_cohort(ws.manifest, load_config(params).cohort)


def _prepare(params: Path):
    from medlib.pipelines.prepare import load_study, prepare

    return lambda: prepare(load_study(params))


def _load(params: Path, overrides=()):
    from medlib.pipelines.prepare import load_study

    return lambda: load_study(params, list(overrides))


def _read(path: Path):
    from medlib.data.imaging import read_image

    return lambda: read_image(path)


def _ich_case(ws: Workspace):
    """Read the first ICH case's CT and mask as the radiomics step does (shapes and mask checked)."""
    from medlib.config import RadiomicsConfig
    from medlib.radiomics.features import radiomics_table

    row = ws.table().iloc[0]
    case = (row["case_id"], str(ws.cohort / row["ct"]), str(ws.cohort / row["mask"]))
    return lambda: radiomics_table([case], RadiomicsConfig(feature_classes=("firstorder",), resample_mm=None))


# ------------------------------------------------------------------------------------------- the cases
def manifest_wrong_columns(ws):
    ws.write_table(ws.table().rename(columns={"xray": "image_path", "label": "outcome"}))
    p = ws.params()
    return ws.case("manifest with wrong column names", "preflight", _cohort(ws, p), ValueError,
                   r"manifest\.csv: missing column\(s\) \['label', 'xray'\].*Expected case_id", ws.run_argv(p))


def label_outside_allowed(ws):
    df = ws.table()
    df.loc[3, "label"] = "maybe"
    ws.write_table(df)
    p = ws.params()
    return ws.case("label value outside the allowed set", "preflight", _cohort(ws, p), ValueError,
                   r"column 'label': 1 of \d+ rows holds a value that is neither cohort\.positive 'surgery' nor "
                   r"cohort\.negative 'no_surgery': 'maybe' \(1 row\); first at line 5", ws.run_argv(p))


def duplicate_case_ids(ws):
    df = ws.table()
    df.loc[2, "case_id"] = df.loc[1, "case_id"]
    ws.write_table(df)
    p = ws.params()
    return ws.case("duplicate case ids", "preflight", _cohort(ws, p), ValueError,
                   r"line 3: duplicate case_id 'NEC-0002'", ws.run_argv(p))


def missing_image_file(ws):
    path = first_image(ws, "xray")
    path.unlink()
    p = ws.params()
    return ws.case("missing image file", "preflight", _cohort(ws, p), ValueError,
                   rf"line 2: xray file not found: .*{path.name}", ws.run_argv(p))


def empty_image_cell(ws):
    df = ws.table()
    df.loc[0, "xray"] = ""
    ws.write_table(df)
    p = ws.params()
    return ws.case("manifest row without an image path", "preflight", _cohort(ws, p), ValueError,
                   r"line 2: case 'NEC-0001' has no 'xray' image", ws.run_argv(p))


def empty_manifest(ws):
    ws.manifest.write_bytes(b"")
    p = ws.params()
    return ws.case("empty manifest file", "preflight", _cohort(ws, p), ValueError,
                   r"manifest\.csv: not a readable CSV table.*expected a UTF-8 CSV", ws.run_argv(p))


def binary_manifest(ws):
    ws.manifest.write_bytes(bytes(range(256)) * 8)
    p = ws.params()
    return ws.case("binary garbage as manifest", "preflight", _cohort(ws, p), ValueError,
                   r"manifest\.csv: (not a readable CSV table|missing column)", ws.run_argv(p))


def missing_manifest(ws):
    p = ws.params(cohort={"manifest": str(ws.cohort / "nope.csv")})
    return ws.case("manifest that does not exist", "preflight", _prepare(p), FileNotFoundError,
                   r"cohort manifest not found: .*nope\.csv \(set cohort\.manifest", ws.run_argv(p))


def bad_set_column(ws):
    df = ws.table()
    df.loc[0, "set"] = "holdout"
    ws.write_table(df)
    p = ws.params()
    return ws.case("set column with an unknown value", "preflight", _cohort(ws, p), ValueError,
                   r"column 'set': values \['holdout'\] are not allowed; use 'external'", ws.run_argv(p))


def patient_in_two_sets(ws):
    df = ws.table()
    df.loc[1, "patient_id"] = df.loc[0, "patient_id"]
    ws.write_table(df)
    split = pd.DataFrame({"case_id": df["case_id"], "set": ["train", "val"] + ["train"] * (len(df) - 2)})
    split.loc[df["set"] == "external", "set"] = "external"
    split.loc[len(df) // 2:, "set"] = split.loc[len(df) // 2:, "set"].replace("train", "val")
    split.to_csv(ws.root / "split.csv", index=False)
    p = ws.params(split={"split_file": str(ws.root / "split.csv")})
    return ws.case("a patient in two sets of a user split", "preflight", _prepare(p), ValueError,
                   r"patient-level leakage: 1 patient\(s\) span two sets: NEC-0001 in \['train', 'val'\]",
                   ws.run_argv(p))


def split_unknown_case(ws):
    df = ws.table()
    pd.DataFrame({"case_id": list(df["case_id"][:-1]) + ["GHOST-1"],
                  "set": ["train"] * len(df)}).to_csv(ws.root / "split.csv", index=False)
    p = ws.params(split={"split_file": str(ws.root / "split.csv")})
    return ws.case("user split naming an unknown case", "preflight", _prepare(p), ValueError,
                   r"split\.csv: .*1 case_id\(s\) not in the cohort, e\.g\. \['GHOST-1'\]", ws.run_argv(p))


def split_file_missing(ws):
    p = ws.params(split={"split_file": str(ws.root / "nosplit.csv")})
    return ws.case("split file that does not exist", "preflight", _prepare(p), FileNotFoundError,
                   r"split file not found: .*nosplit\.csv \(split\.split_file", ws.run_argv(p))


def class_empty_after_split(ws):
    df = ws.table()
    internal = df["set"] != "external"
    pos = df.index[internal & (df["label"] == "surgery")]
    ws.write_table(df.drop(pos[1:]))  # one positive internal case left: val (or train) gets none
    p = ws.params()
    return ws.case("a class with no cases after splitting", "preflight", _prepare(p), ValueError,
                   r"the (train|val) set has no positive case after splitting .* too small for ratios",
                   ws.run_argv(p))


def onfh_missing_view(ws):
    df = ws.table()
    df.loc[4, "frog"] = ""
    ws.write_table(df)
    p = ws.params()
    return ws.case("a hip missing one view (ONFH)", "preflight", _cohort(ws, p), ValueError,
                   rf"line 6: case '{df.loc[4, 'case_id']}' has no 'frog' image \(missing view\)", ws.run_argv(p))


def ich_missing_mask(ws):
    df = ws.table()
    (ws.cohort / df.loc[0, "mask"]).unlink()
    p = ws.params()
    return ws.case("missing mask file (ICH)", "preflight", _cohort(ws, p), ValueError,
                   r"line 2: mask file not found: .*ICH-0001\.nii\.gz", ws.run_argv(p))


# -- params and overrides
def params_unknown_key(ws):
    p = ws.params(train={"epochs": 2, "learning_rate": 0.1})
    return ws.case("params file with an unknown key", "preflight", _load(p), ValueError,
                   r"nec\.yaml: Unknown config key train\.learning_rate\. Allowed keys under train", ws.run_argv(p))


def params_wrong_type(ws):
    p = ws.params(train={"epochs": "ten"})
    return ws.case("params file with a wrong type", "preflight", _load(p), ValueError,
                   r"nec\.yaml: train\.epochs: expected an integer, got 'ten'", ws.run_argv(p))


def params_bad_literal(ws):
    p = ws.params(image={"normalize": "histogram"})
    return ws.case("params value outside a Literal", "preflight", _load(p), ValueError,
                   r"image\.normalize: expected one of \['zscore', 'minmax', 'none'\], got 'histogram'",
                   ws.run_argv(p))


def params_not_yaml(ws):
    p = ws.root / "params.yaml"
    p.write_text("study: nec\ntrain: {epochs: 2\n")
    return ws.case("params file that is not valid YAML", "preflight", _load(p), ValueError,
                   r"params\.yaml: not valid YAML", ws.run_argv(p))


def params_top_level_list(ws):
    p = ws.root / "params.yaml"
    p.write_text("- study\n- nec\n")
    return ws.case("params file that is a list", "preflight", _load(p), ValueError,
                   r"params\.yaml: expected a mapping of config keys at the top level", ws.run_argv(p))


def params_yaml_tag_attack(ws):
    marker = ws.root / "PWNED"
    p = ws.root / "params.yaml"
    p.write_text(f"study: !!python/object/apply:os.system ['touch {marker}']\n")
    return ws.case("YAML tag attack in the params file (!!python/object)", "preflight", _load(p), ValueError,
                   r"params\.yaml: not valid YAML.*could not determine a constructor for the tag "
                   r"'tag:yaml\.org,2002:python/object/apply:os\.system'", ws.run_argv(p))


def params_missing(ws):
    p = ws.root / "absent.yaml"
    return ws.case("params file that does not exist", "preflight", _load(p), FileNotFoundError,
                   r"params file not found: .*absent\.yaml", ws.run_argv(p))


def study_key_missing(ws):
    p = ws.params()
    data = yaml.safe_load(p.read_text())
    del data["study"]["question"]
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return ws.case("study section without its clinical question", "preflight", _load(p), ValueError,
                   r"nec\.yaml: study\.question: expected .*the key is missing", ws.run_argv(p))


def params_out_of_range(ws):
    p = ws.params(train={"epochs": 0})
    return ws.case("params value out of range", "preflight", _load(p), ValueError,
                   r"nec\.yaml: train\.epochs: expected an integer >= 1, got 0", ws.run_argv(p))


def builtin_study_unknown(ws):
    from medlib.cli.runner import run_study

    argv = ["run", "necrosis", "--reports", str(ws.root / "reports")]
    return Case("built-in study that does not exist", "preflight",
                lambda: run_study("necrosis", reports_dir=ws.root / "reports"), FileNotFoundError,
                r"params file not found: params/necrosis\.yaml.*studies: \[.*'nec'", argv, ws.root / "runs",
                ws.root / "reports")


def params_study_mismatch(ws):
    p = ws.params(study={"name": "onfh"})
    from medlib.cli.runner import run_study

    return ws.case("params file of another study", "preflight",
                   lambda: run_study("nec", params=p, reports_dir=ws.root / "reports"), ValueError,
                   r"nec\.yaml: study\.name: expected 'nec', got 'onfh'", ws.run_argv(p))


def override_yaml_tag(ws):
    marker = ws.root / "PWNED"
    p = ws.params()
    item = f"study.title=!!python/object/apply:os.system ['touch {marker}']"
    return ws.case("override with a YAML tag that would run code", "preflight", _load(p, [item]), ValueError,
                   r"override .study\.title=!!python/object/apply:os\.system.*not a YAML scalar",
                   ws.run_argv(p, "-p", item))


def override_python_code(ws):
    p = ws.params()
    item = "train.epochs=__import__('os').system('touch PWNED')"
    return ws.case("override string that is Python code", "preflight", _load(p, [item]), ValueError,
                   r"train\.epochs: expected an integer, got \"__import__\('os'\)", ws.run_argv(p, "-p", item))


def override_unknown_key(ws):
    p = ws.params()
    item = "train.__class__=1"
    return ws.case("override of an attribute that is not a key", "preflight", _load(p, [item]), ValueError,
                   r"Unknown config key train\.__class__", ws.run_argv(p, "-p", item))


def override_no_equals(ws):
    p = ws.params()
    return ws.case("override without key=value", "preflight", _load(p, ["train.epochs"]), ValueError,
                   r"override 'train\.epochs': expected key=value", ws.run_argv(p, "-p", "train.epochs"))


def model_unknown(ws):
    p = ws.params(models=[{"name": "resnet1000", "label": "Big"}])
    return ws.case("a model name that does not exist", "preflight", _load(p), KeyError,
                   r"models\[0\]\.name: unknown model 'resnet1000' for spatial_dims 2\. Available: ",
                   ws.run_argv(p))


def pretrained_missing(ws):
    hub = ws.root / "torch-home"  # an empty torch hub: the ImageNet file is absent

    def api():
        old = os.environ.get("TORCH_HOME")
        os.environ["TORCH_HOME"] = str(hub)
        try:
            return _load(p, [item])()
        finally:
            os.environ.pop("TORCH_HOME") if old is None else os.environ.__setitem__("TORCH_HOME", old)

    p = ws.params()
    item = "models=[{name: resnet18, label: ResNet18, pretrained: true}]"
    case = ws.case("pretrained weights that are missing", "preflight", api, FileNotFoundError,
                   r"ImageNet weights for 'resnet18' not found: expected resnet18-[0-9a-f]+\.pth in .*"
                   r"models\[\]\.pretrained: true", ws.run_argv(p, "-p", item))
    return dataclasses.replace(case, env={"TORCH_HOME": str(hub)})


def weights_path_missing(ws):
    p = ws.params(models=[{"name": "resnet18", "weights_path": str(ws.root / "medicalnet.pth")}])
    return ws.case("local weights file that is missing", "preflight", _load(p), FileNotFoundError,
                   r"models\[0\]\.weights_path: weights file not found: .*medicalnet\.pth", ws.run_argv(p))


def width_unsupported(ws):
    p = ws.params(models=[{"name": "resnet18", "width": 0.5}])
    return ws.case("a width multiplier on a model without one", "preflight", _load(p), ValueError,
                   r"models\[0\]\.width: width 0\.5 is not supported by the 2D model 'resnet18'", ws.run_argv(p))


def run_id_traversal(ws):
    p = ws.params()
    from medlib.cli.runner import run_study

    return ws.case("run id with path traversal (../../etc)", "preflight",
                   lambda: run_study("nec", params=p, run_id="../../etc", reports_dir=ws.root / "reports"),
                   ValueError, r"run ids may hold letters, digits.*got '\.\./\.\./etc'",
                   ws.run_argv(p, "--run-id", "../../etc"))


def run_id_exists(ws):
    p = ws.params()
    (ws.root / "runs" / "nec" / "taken").mkdir(parents=True)
    from medlib.cli.runner import run_study

    return ws.case("run id of an existing run (no --resume)", "preflight",
                   lambda: run_study("nec", params=p, run_id="taken", reports_dir=ws.root / "reports"),
                   FileExistsError, r"run .*runs/nec/taken already exists; choose another --run-id",
                   ws.run_argv(p, "--run-id", "taken"))


def resume_missing(ws):
    p = ws.params()
    gone = ws.root / "runs" / "nec" / "never-ran"
    from medlib.cli.runner import run_study

    return ws.case("resume of a run folder that does not exist", "preflight",
                   lambda: run_study("nec", params=p, resume=str(gone), reports_dir=ws.root / "reports"),
                   FileNotFoundError, r"cannot resume .*never-ran: not a run folder",
                   ws.run_argv(p, "--resume", str(gone)))


def unknown_study(ws):
    p = ws.params()
    from medlib.cli.runner import run_study

    argv = ["run", "necrosis", "-f", str(p), "--reports", str(ws.root / "reports")]
    return Case("study name that does not match the params file", "preflight",
                lambda: run_study("necrosis", params=p, reports_dir=ws.root / "reports"), ValueError,
                r"study\.name: expected 'necrosis', got 'nec'", argv, ws.root / "runs", ws.root / "reports")


def synth_unknown_study(ws):
    from medlib import synth

    out = ws.root / "synth"
    return Case("medlib synth of an unknown study", "synth", lambda: synth.generate("brain", out), KeyError,
                r"Unknown study 'brain'\. Available: \['glioma', 'ich', 'nec', 'onfh'\]",
                ["synth", "brain", "--out", str(out)])


def synth_bad_scale(ws):
    from medlib import synth

    out = ws.root / "synth"
    return Case("medlib synth with a negative scale", "synth", lambda: synth.generate("nec", out, scale=-1),
                ValueError, r"scale must be > 0; got -1", ["synth", "nec", "--out", str(out), "--scale", "-1"])


# -- images (read only inside a study notebook)
def _dicom_case(ws, name: str, mutate: Callable[[Path], None], match: str, error=ValueError):
    path = first_image(ws, "xray")
    mutate(path)
    p = ws.params()
    return ws.case(name, "preflight", _read(path), error, match, ws.run_argv(p))


def dicom_corrupt(ws):
    def garbage(path):
        path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))
    return _dicom_case(ws, "corrupt DICOM (random bytes)", garbage, r"NEC-0001\.dcm: not a DICOM file")


def dicom_truncated(ws):
    def cut(path):
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return _dicom_case(ws, "truncated DICOM (second half missing)", cut,
                       r"NEC-0001\.dcm: (unreadable or truncated DICOM|.*pixel data)")


def dicom_no_pixels(ws):
    def strip(path):
        ds = pydicom.dcmread(path)
        del ds.PixelData
        ds.save_as(path)
    return _dicom_case(ws, "DICOM without pixel data", strip, r"NEC-0001\.dcm: .*(no|without) (Pixel Data|pixel)")


def dicom_unsupported_syntax(ws):
    def jpeg2000(path):
        from pydicom.encaps import encapsulate

        ds = pydicom.dcmread(path)
        ds.PixelData = encapsulate([ds.PixelData])  # one "JPEG 2000" frame that holds raw pixels
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.90"
        ds.save_as(path, enforce_file_format=True)
    return _dicom_case(ws, "undecodable transfer syntax (JPEG 2000 header, raw bytes)", jpeg2000,
                       r"NEC-0001\.dcm: .*(JPEG 2000|1\.2\.840\.10008\.1\.2\.4\.90)")


def unsupported_file_kind(ws):
    def text(path):
        path.with_suffix(".txt").write_text("not an image")
    path = first_image(ws, "xray")
    text(path)
    df = ws.table()
    df.loc[0, "xray"] = df.loc[0, "xray"].replace(".dcm", ".txt")
    ws.write_table(df)
    p = ws.params()
    return ws.case("image of an unsupported kind (.txt)", "preflight", _read(path.with_suffix(".txt")), ValueError,
                   r"NEC-0001\.txt: unsupported image file; expected DICOM", ws.run_argv(p))


def _series(ws) -> Path:
    return ws.cohort / ws.table()["ct"].iloc[0]


def series_mixed_orientation(ws):
    folder = _series(ws)
    path = sorted(folder.iterdir())[5]
    ds = pydicom.dcmread(path)
    ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]  # a sagittal slice in an axial series
    ds.save_as(path)
    p = ws.params()
    return ws.case("DICOM series with mixed orientations", "preflight", _read(folder), ValueError,
                   r"ICH-0001: mixed slice orientations in one series", ws.run_argv(p))


def series_missing_slice(ws):
    folder = _series(ws)
    files = sorted(folder.iterdir(), key=lambda f: float(pydicom.dcmread(f).ImagePositionPatient[2]))
    files[len(files) // 2].unlink()
    p = ws.params()
    return ws.case("DICOM series with a missing slice", "preflight", _read(folder), ValueError,
                   r"ICH-0001: inconsistent slice spacing", ws.run_argv(p))


def _mask(ws) -> Path:
    return ws.cohort / ws.table()["mask"].iloc[0]


def nifti_wrong_dims(ws):
    path = _mask(ws)
    img = nib.load(path)
    data = np.asarray(img.dataobj)
    nib.save(nib.Nifti1Image(np.stack([data, data], axis=-1), img.affine), path)
    p = ws.params()
    return ws.case("NIfTI with the wrong number of dimensions (4D, 2 volumes)", "preflight", _read(path), ValueError,
                   r"ICH-0001\.nii\.gz: NIfTI image has shape \(\d+, \d+, \d+, 2\); expected a 3D volume",
                   ws.run_argv(p))


def mask_shape_mismatch(ws):
    path = _mask(ws)
    img = nib.load(path)
    data = np.asarray(img.dataobj)
    nib.save(nib.Nifti1Image(np.ascontiguousarray(data[:, :, :-3]), img.affine), path)
    p = ws.params()
    return ws.case("image and mask shape mismatch (ICH)", "preflight", _ich_case(ws), ValueError,
                   r"ICH-0001.*mask shape \(\d+, \d+, \d+\) .*differs from image shape", ws.run_argv(p))


def mask_empty(ws):
    path = _mask(ws)
    img = nib.load(path)
    nib.save(nib.Nifti1Image(np.zeros(img.shape, np.uint8), img.affine), path)
    p = ws.params()
    return ws.case("empty mask (ICH)", "notebook", _ich_case(ws), ValueError,
                   r"ICH-0001.*the mask is empty", ws.run_argv(p))


#: (study of the base cohort, builder): every case of the corpus.
CASES: dict[str, tuple[str, Callable]] = {f.__name__: (study, f) for study, f in [
    ("nec", manifest_wrong_columns), ("nec", label_outside_allowed), ("nec", duplicate_case_ids),
    ("nec", missing_image_file), ("nec", empty_image_cell), ("nec", empty_manifest), ("nec", binary_manifest),
    ("nec", missing_manifest), ("nec", bad_set_column), ("nec", patient_in_two_sets),
    ("nec", split_unknown_case), ("nec", split_file_missing), ("nec", class_empty_after_split),
    ("onfh", onfh_missing_view), ("ich", ich_missing_mask),
    ("nec", params_unknown_key), ("nec", params_wrong_type), ("nec", params_bad_literal), ("nec", params_not_yaml),
    ("nec", params_top_level_list), ("nec", params_yaml_tag_attack), ("nec", params_missing),
    ("nec", params_study_mismatch), ("nec", study_key_missing), ("nec", params_out_of_range),
    ("nec", builtin_study_unknown), ("nec", override_yaml_tag), ("nec", override_python_code),
    ("nec", override_unknown_key), ("nec", override_no_equals), ("nec", model_unknown),
    ("nec", pretrained_missing), ("nec", weights_path_missing), ("nec", width_unsupported),
    ("nec", run_id_traversal),
    ("nec", run_id_exists), ("nec", resume_missing), ("nec", unknown_study),
    ("nec", synth_unknown_study), ("nec", synth_bad_scale),
    ("nec", dicom_corrupt), ("nec", dicom_truncated), ("nec", dicom_no_pixels), ("nec", dicom_unsupported_syntax),
    ("nec", unsupported_file_kind), ("ich", series_mixed_orientation), ("ich", series_missing_slice),
    ("ich", nifti_wrong_dims), ("ich", mask_shape_mismatch), ("ich", mask_empty),
]}

#: The cases of issue #20's six classes (``klass`` 1-6), kept in their own module.
from tests.reliability.corpus_classes import CLASS_CASES  # noqa: E402 - they build on the helpers above

CASES.update(CLASS_CASES)
