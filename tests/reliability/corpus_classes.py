"""The bad-input corpus of issue #20, class by class (see ``corpus.py`` for the ``Case`` contract).

1 paths built from data, 2 run folders, 3 silent wrong results, 4 geometry, 5 resource limits, 6 late errors.
Each builder makes one broken input in its workspace and returns a ``Case`` whose API call must raise an error
naming the file, row or key and what was expected; ``test_bad_inputs`` also checks that no file outside a run
folder changed. Cases marked ``preflight`` are also run through ``medlib run``.
"""

from __future__ import annotations

import errno
import fcntl
import gzip
import os
import struct
import zlib
from pathlib import Path
from typing import Callable
from unittest import mock

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import yaml

from tests.reliability.corpus import Workspace, _cohort, _load, _prepare, _read, first_image

API = "api"
_HELD: list[int] = []  # file descriptors of "another process's" locks, kept open for the test session


def _case(ws: Workspace, klass: int, name: str, api: Callable[[], object], error, match: str, *,
          stage: str = API, argv: list[str] | None = None):
    return ws.case(name, stage, api, error, match, argv or [], klass=klass)


def _pre(ws: Workspace, klass: int, name: str, params: Path, api, error, match: str, *extra: str):
    """A preflight case: also run through the CLI (``medlib run``)."""
    return _case(ws, klass, name, api, error, match, stage="preflight", argv=ws.run_argv(params, *extra))


def _edit(ws: Workspace, **cells) -> None:
    """Set manifest cells: ``cells`` maps a column to ``{row index: value}``."""
    df = ws.table()
    for column, values in cells.items():
        for i, value in values.items():
            df.loc[i, column] = value
    ws.write_table(df)


def _text(ws: Workspace, text: str, name: str = "params.yaml") -> Path:
    path = ws.root / name
    path.write_text(text)
    return path


def _write(path: Path, sections: dict) -> Path:
    path.write_text(yaml.safe_dump(sections, sort_keys=False))
    return path


# ------------------------------------------------------------------------------ 1: paths built from data
def _manifest_id(column: str, value: str, line_value: str):
    def build(ws):
        _edit(ws, **{column: {1: value}})
        p = ws.params()
        return _pre(ws, 1, f"{column} with {line_value}", p, _cohort(ws, p), ValueError,
                    rf"line 3: {column} .* holds a control character")
    return build


def _inside(target: str, name: str):
    def build(ws):
        from medlib.runs import inside, new_run

        run = new_run("nec", runs_dir=ws.root / "runs", run_id="r1")
        if target == "link":
            (run.path / "cams").symlink_to(ws.root, target_is_directory=True)
            path = "cams/escape.npy"
        else:
            path = target
        return _case(ws, 1, name, lambda: inside(run.path, path), ValueError,
                     r"refusing to write .*: it lies outside the run folder .*r1")
    return build


def label_with_tab(ws):
    p = ws.params(models=[{"name": "resnet18", "label": "Res\tNet"}])
    return _pre(ws, 1, "model label with a control character", p, _load(p), ValueError,
                r"nec\.yaml: models\[0\]\.label: expected a name without control characters")


def labels_same_folder(ws):
    p = ws.params(models=[{"name": "resnet18", "label": "AP only"}, {"name": "resnet18", "label": "ap  ONLY"}])
    return _pre(ws, 1, "model labels that map to one folder", p, _load(p), ValueError,
                r"models\[1\]\.label: expected a display name unique across models, ignoring case and spaces")


def study_name_slash(ws):
    p = ws.params(study={"name": "../escape"})
    return _case(ws, 1, "study name with a path", _load(p), ValueError,
                 r"study\.name: expected a short name of at most 64 letters.*got '\.\./escape'")


def runs_dir_long(ws):
    p = ws.params(runs_dir=str(ws.root / ("r" * 300)))
    return _pre(ws, 1, "runs_dir with a 300-character folder name", p, _load(p), ValueError,
                r"runs_dir: expected a path whose every part is at most 255 bytes")


def empty_name(ws):
    from medlib.runs import safe_name

    return _case(ws, 1, "an empty identifier as a file name", lambda: safe_name(float("nan"), what="case_id"),
                 ValueError, r"case_id nan is empty or missing; expected an identifier")


# ----------------------------------------------------------------------------------- 2: run folders
def _config(ws, **sections):
    from medlib.config import load_config

    return load_config(ws.params(**sections))


def _finished_run(ws, run_id="r1", **sections):
    from medlib.runs import new_run

    cfg = _config(ws, **sections)
    run = new_run("nec", runs_dir=ws.root / "runs", run_id=run_id)
    run.write_config(cfg)
    run.write_split(pd.DataFrame({"case_id": ["a", "b"], "set": ["train", "val"]}))
    run.write_metrics({"auc": 0.7})
    from medlib.runs import RunLock

    RunLock.acquire(run.path).release()  # the run that wrote it has ended
    return run


def _resume(ws, folder, **sections):
    from medlib.runs import open_run

    cfg = _config(ws, **sections)
    return lambda: open_run(folder, cfg)


def resume_other_study(ws):
    from medlib.runs import RunMismatch

    run = _finished_run(ws)
    data = yaml.safe_load((run.path / "config.yaml").read_text())
    data["study"]["name"] = "onfh"
    (run.path / "config.yaml").write_text(yaml.safe_dump(data))
    return _case(ws, 2, "resume of another study's run", _resume(ws, run.path), RunMismatch,
                 r"cannot resume .*r1: it is a run of study 'onfh', not 'nec'; it is left untouched")


def resume_other_size(ws):
    from medlib.runs import RunMismatch

    run = _finished_run(ws)
    return _case(ws, 2, "resume with another image size", _resume(ws, run.path, image={"size": [48, 48]}),
                 RunMismatch, r"cannot resume .*r1: its settings differ from these params: image\.size "
                              r"\(\[32, 32\] in the run, \[48, 48\] now\)")


def resume_other_models(ws):
    from medlib.runs import RunMismatch

    run = _finished_run(ws)
    return _case(ws, 2, "resume with another model list",
                 _resume(ws, run.path, models=[{"name": "resnet18", "label": "ResNet18"}]), RunMismatch,
                 r"cannot resume .*r1: its settings differ from these params: models")


def resume_not_a_run(ws):
    from medlib.runs import RunMismatch

    folder = ws.root / "my documents"
    folder.mkdir()
    (folder / "thesis.docx").write_bytes(b"precious")
    return _case(ws, 2, "resume of a folder that is not a run", _resume(ws, folder), RunMismatch,
                 r"cannot resume .*my documents: not a run folder \(no config\.yaml\); it is left untouched")


def resume_garbage_config(ws):
    from medlib.runs import RunMismatch

    run = _finished_run(ws)
    (run.path / "config.yaml").write_text("study: [unclosed\n")
    return _case(ws, 2, "resume of a run whose config.yaml is damaged", _resume(ws, run.path), RunMismatch,
                 r"cannot resume .*r1: its config\.yaml is not a readable run config")


def resume_damaged_checkpoint(ws):
    from medlib.runs import RunMismatch

    run = _finished_run(ws)
    ckpt = run.checkpoint_dir("ResNet18") / "checkpoint.pt"
    ckpt.write_bytes(b"PK\x03\x04" + os.urandom(200))  # a zip's magic, then garbage: a torn write
    return _case(ws, 2, "resume with a damaged checkpoint", _resume(ws, run.path), RunMismatch,
                 r"cannot resume .*r1: damaged checkpoint .*ResNet18/checkpoint\.pt")


def resume_truncated_checkpoint(ws):
    import torch

    from medlib.runs import RunMismatch

    run = _finished_run(ws)
    ckpt = run.checkpoint_dir("SimpleViT") / "best_model.pt"
    torch.save({"w": torch.zeros(64)}, ckpt)
    ckpt.write_bytes(ckpt.read_bytes()[:-40])
    return _case(ws, 2, "resume with a truncated checkpoint", _resume(ws, run.path), RunMismatch,
                 r"cannot resume .*r1: damaged checkpoint .*SimpleViT/best_model\.pt")


def write_config_mismatch(ws):
    from medlib.runs import RunMismatch, open_run

    run = _finished_run(ws)
    other = _config(ws, train={"epochs": 7})
    return _case(ws, 2, "a resumed notebook writing another config", lambda: open_run(run.path).write_config(other),
                 RunMismatch, r"its settings differ from these params: train\.epochs \(2 in the run, 7 now\)")


def write_config_not_a_run(ws):
    from medlib.runs import RunMismatch, open_run

    folder = ws.root / "elsewhere"
    folder.mkdir()
    cfg = _config(ws)
    return _case(ws, 2, "a config written into a folder that is not a run",
                 lambda: open_run(folder).write_config(cfg), RunMismatch, r"elsewhere: not a run folder")


def write_split_mismatch(ws):
    from medlib.runs import RunMismatch, open_run

    run = _finished_run(ws)
    cfg = _config(ws)

    def api():
        again = open_run(run.path, cfg)
        again.write_split(pd.DataFrame({"case_id": ["a", "b"], "set": ["val", "train"]}))
    return _case(ws, 2, "a resumed run writing another split", api, RunMismatch,
                 r"split\.csv: the run's split differs from this split")


def run_in_use(ws):
    from medlib.runs import RunInUse, RunLock

    run = _finished_run(ws)
    fd = os.open(run.path / ".lock", os.O_RDWR)  # another open file: flock treats it as another process
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    _HELD.append(fd)
    return _case(ws, 2, "a run folder another process is writing", lambda: RunLock.acquire(run.path), RunInUse,
                 r"run folder .*r1 is in use by another process \(pid \d+\); wait for it to finish")


def resume_in_use(ws):
    from medlib.runs import RunInUse

    run = _finished_run(ws)
    fd = os.open(run.path / ".lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    _HELD.append(fd)
    return _case(ws, 2, "resume of a run another process is writing", _resume(ws, run.path), RunInUse,
                 r"run folder .*r1 is in use by another process")


def new_run_exists(ws):
    from medlib.runs import new_run

    _finished_run(ws, run_id="taken")
    return _case(ws, 2, "a new run named like an existing one",
                 lambda: new_run("nec", runs_dir=ws.root / "runs", run_id="taken"), FileExistsError,
                 r"run .*nec/taken already exists; choose another run_id, or resume it")


# --------------------------------------------------------------------------- 3: silent wrong results
def yaml_duplicate_section(ws):
    p = ws.params()
    p.write_text(p.read_text() + "train: {epochs: 9}\n")
    return _pre(ws, 3, "params with a section given twice", p, _load(p), ValueError,
                r"nec\.yaml: line \d+: duplicate key 'train' \(first at line \d+\); expected each key once")


def yaml_duplicate_key(ws):
    p = _text(ws, "study: {name: nec}\ntrain:\n  epochs: 2\n  lr: 0.1\n  epochs: 20\n")
    return _case(ws, 3, "params with a key given twice in a section", _load(p), ValueError,
                 r"params\.yaml: line 5: duplicate key 'epochs' \(first at line 3\)")


def csv_duplicate_column(ws):
    text = ws.manifest.read_text().splitlines()
    header = text[0].split(",")
    text[0] = ",".join(header[:-1] + ["label"])  # the last covariate's name becomes a second 'label'
    ws.manifest.write_text("\n".join(text) + "\n")
    p = ws.params()
    return _pre(ws, 3, "manifest with a column name given twice", p, _cohort(ws, p), ValueError,
                r"manifest\.csv: line 1: column name\(s\) given more than once: 'label' \(columns \[\d+, \d+\]\)")


def split_duplicate_column(ws):
    df = ws.table()
    (ws.root / "split.csv").write_text("case_id,set,set\n" + "".join(f"{c},train,val\n" for c in df["case_id"]))
    p = ws.params(split={"split_file": str(ws.root / "split.csv")})
    return _case(ws, 3, "split file with a column name given twice", _prepare(p), ValueError,
                 r"split\.csv: line 1: column name\(s\) given more than once: 'set'")


def split_duplicate_case(ws):
    df = ws.table()
    rows = list(df["case_id"]) + [df["case_id"].iloc[0]]
    pd.DataFrame({"case_id": rows, "set": ["train"] * len(rows)}).to_csv(ws.root / "split.csv", index=False)
    p = ws.params(split={"split_file": str(ws.root / "split.csv")})
    return _case(ws, 3, "split file listing a case twice", _prepare(p), ValueError,
                 r"split\.csv: line 2: case_id 'NEC-0001' is listed 2 times; expected one set per case")


def duplicate_labels(ws):
    p = ws.params(models=[{"name": "resnet18"}, {"name": "resnet18"}])
    return _pre(ws, 3, "two models with one display name", p, _load(p), ValueError,
                r"models\[1\]\.label: expected a display name unique across models")


def rescale_slope_zero(ws):
    path = first_image(ws, "xray")
    ds = pydicom.dcmread(path)
    ds.RescaleSlope, ds.RescaleIntercept = "0", "100"
    ds.save_as(path)
    return _case(ws, 3, "DICOM with RescaleSlope 0", _read(path), ValueError,
                 r"NEC-0001\.dcm: RescaleSlope 0 and RescaleIntercept 100; expected a finite, non-zero slope")


def image_size_one(ws):
    p = ws.params(image={"size": [1, 1]})
    return _pre(ws, 3, "image size [1, 1]", p, _load(p), ValueError, r"image\.size\[0\]: expected an integer >= 8, got 1")


def _no_effect(section: str, values, key: str, why: str, **more):
    def build(ws):
        p = ws.params(**{section: values}, **more)
        return _pre(ws, 3, f"{key} that would be ignored", p, _load(p), ValueError,
                    rf"{ws.study}\.yaml: {key}: has no effect {why}.*; remove it")
    return build


def _missing_id(column: str, value: str):
    def build(ws):
        _edit(ws, **{column: {2: value}})
        p = ws.params()
        return _pre(ws, 3, f"{column} {value!r}", p, _cohort(ws, p), ValueError,
                    rf"line 4: {column} '{value}' is missing \(empty or a missing-value marker")
    return build


# ----------------------------------------------------------------------------------------- 4: geometry
def _nifti(ws, mutate: Callable[[np.ndarray, np.ndarray], tuple], match: str, name: str, klass: int = 4):
    path = ws.cohort / ws.table()["mask"].iloc[0]
    img = nib.load(path)
    data, affine = mutate(np.asarray(img.dataobj), img.affine.copy())
    nib.save(nib.Nifti1Image(data, affine), path)
    return _case(ws, klass, name, _read(path), ValueError, rf"ICH-0001\.nii\.gz: {match}")


def nifti_sheared(ws):
    def shear(data, affine):
        affine[0, 1] = 0.5 * affine[1, 1]
        return data, affine
    return _nifti(ws, shear, r"the affine is sheared or skewed", "NIfTI with a sheared affine")


def nifti_skewed(ws):
    def skew(data, affine):
        affine[:3, 2] = affine[:3, 2] + 0.2 * np.linalg.norm(affine[:3, 2]) * np.array([1.0, 0, 0])
        return data, affine
    return _nifti(ws, skew, r"the affine is sheared or skewed", "NIfTI with non-orthogonal axes")


def nifti_singular(ws):
    path = ws.cohort / ws.table()["mask"].iloc[0]
    img = nib.load(path)
    affine = img.affine.copy()
    affine[:3, 2] = 0  # every slice at one place; qform cannot hold it, the sform can
    out = nib.Nifti1Image(np.asarray(img.dataobj), None)
    out.header.set_sform(affine, code=1)
    nib.save(out, path)
    return _case(ws, 4, "NIfTI with a singular affine", _read(path), ValueError,
                 r"ICH-0001\.nii\.gz: the affine is singular")


def _series_folder(ws) -> Path:
    return next(ws.cohort / c for c in ws.table()["ct"] if (ws.cohort / c).is_dir())


def gantry_tilt(ws):
    folder = _series_folder(ws)
    files = sorted(folder.iterdir(), key=lambda f: float(pydicom.dcmread(f).ImagePositionPatient[2]))
    for k, path in enumerate(files):
        ds = pydicom.dcmread(path)
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [f"{x:g}", f"{y + 0.3 * k:.3f}", f"{z:.3f}"]  # a 17-degree tilt at 1 mm slices
        ds.save_as(path)
    return _case(ws, 4, "gantry-tilted DICOM series", _read(folder), ValueError,
                 rf"{folder.name}: gantry-tilted series: each slice is shifted 0\.3 mm in-plane")


def _mask_geometry(change: Callable[[np.ndarray, np.ndarray], tuple], name: str, match: str):
    def build(ws):
        path = ws.cohort / ws.table()["mask"].iloc[0]
        img = nib.load(path)
        data, affine = change(np.asarray(img.dataobj), img.affine.copy())
        nib.save(nib.Nifti1Image(data, affine), path)
        p = ws.params()
        return _pre(ws, 4, name, p, _prepare(p), ValueError, rf"line 2: case 'ICH-0001': mask .*ICH-0001\.nii\.gz "
                                                             rf"and image .*: {match}")
    return build


def _flip(data, affine):
    affine[:3, 0] = -affine[:3, 0]  # the x axis flipped, the data not: the mask mirrors to the other side
    return data, affine


def _shift(data, affine):
    affine[:3, 3] += [12.0, 0.0, 0.0]
    return data, affine


def _rotate(data, affine):
    c, s = np.cos(np.radians(5)), np.sin(np.radians(5))
    affine[:3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ affine[:3, :3]
    return data, affine


def _respace(data, affine):
    affine[:3, :3] = affine[:3, :3] * np.array([1.5, 1.5, 1.0])
    return data, affine


def _crop(data, affine):
    return np.ascontiguousarray(data[2:, :, :]), affine


def sequences_shifted(ws):
    path = ws.cohort / ws.table()["t2"].iloc[0]
    img = nib.load(path)
    affine = img.affine.copy()
    affine[:3, 3] += [0.0, 20.0, 0.0]
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), affine), path)
    p = ws.params()
    return _pre(ws, 4, "sequences of one patient with another origin", p, _prepare(p), ValueError,
                r"line 2: case '.*': sequence 't2' .* and image .*: the sequence 't2' does not lie on the image")


def sequences_other_fov(ws):
    path = ws.cohort / ws.table()["t1ce"].iloc[1]
    img = nib.load(path)
    nib.save(nib.Nifti1Image(np.ascontiguousarray(np.asarray(img.dataobj)[4:-4]), img.affine), path)
    p = ws.params()
    return _pre(ws, 4, "sequences of one patient with another field of view", p, _prepare(p), ValueError,
                r"line 3: case '.*': sequence 't1ce' .*: sequence 't1ce' shape \(\d+, \d+, \d+\) differs from "
                r"image shape")


# ------------------------------------------------------------------------------------ 5: resource limits
def alias_bomb(ws):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]" for i in range(8)]
    p = _text(ws, "\n".join(lines) + "\n")
    return _case(ws, 5, "YAML alias bomb (10^9 values)", _load(p), ValueError,
                 r"params\.yaml: the YAML expands to more than 100000 values through anchors and aliases")


def yaml_too_large(ws):
    p = _text(ws, "study: {name: nec}\n# " + "x" * (1 << 20) + "\n")
    return _case(ws, 5, "params file of more than 1 MiB", _load(p), ValueError,
                 r"params\.yaml: \d+ bytes; expected a params file of at most 1048576 bytes")


def params_binary(ws):
    p = ws.root / "params.yaml"
    p.write_bytes(b"study: \xff\xfe\x00garbage\n")
    return _pre(ws, 5, "params file that is not UTF-8 text", p, _load(p), ValueError,
                r"params\.yaml: not a UTF-8 text file")


def png_bomb(ws):
    path = ws.root / "bomb.png"
    ihdr = struct.pack(">IIBBBBB", 200_000, 200_000, 8, 0, 0, 0, 0)
    chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data
                                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1024))
                     + chunk(b"IEND", b""))
    return _case(ws, 5, "decompression-bomb PNG", _read(path), ValueError,
                 r"bomb\.png: (image header gives 200000 x 200000 pixels|refused as a decompression bomb)")


def nifti_truncated(ws):
    path = ws.root / "cut.nii"
    nib.save(nib.Nifti1Image(np.ones((16, 16, 16), np.float32), np.eye(4)), path)
    path.write_bytes(path.read_bytes()[:-5000])
    return _case(ws, 5, "truncated NIfTI (.nii)", _read(path), ValueError,
                 r"cut\.nii: truncated NIfTI file: \d+ bytes, its header needs \d+")


def nifti_gz_truncated(ws):
    path = ws.root / "cut.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((24, 24, 24)).astype(np.float32), np.eye(4)), path)
    path.write_bytes(path.read_bytes()[:-3000])
    return _case(ws, 5, "truncated NIfTI (.nii.gz)", _read(path), ValueError,
                 r"cut\.nii\.gz: (truncated or corrupt NIfTI data|unreadable NIfTI file)")


def nifti_absurd(ws):
    path = ws.root / "huge.nii.gz"
    img = nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4))
    img.header.set_data_shape((30000, 30000, 30000))
    raw = img.header.binaryblock + b"\0" * 4 + b"\0" * 32
    with gzip.open(path, "wb") as f:
        f.write(raw)
    return _case(ws, 5, "NIfTI header claiming 2.7e13 voxels", _read(path), ValueError,
                 r"huge\.nii\.gz: NIfTI header gives shape \(30000, 30000, 30000\)")


def dicom_absurd(ws):
    path = first_image(ws, "xray")
    ds = pydicom.dcmread(path)
    ds.Rows, ds.Columns, ds.NumberOfFrames = 65535, 65535, 1000
    ds.save_as(path)
    return _case(ws, 5, "DICOM header claiming 4e12 pixels", _read(path), ValueError,
                 r"NEC-0001\.dcm: DICOM header gives 65535 x 65535 pixels x 1000 frames")


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def disk_full_run_file(ws):
    from medlib.runs import new_run

    run = new_run("nec", runs_dir=ws.root / "runs", run_id="full")

    def api():
        with mock.patch("medlib.runs.atomic.os.fsync", _disk_full):
            run.write_metrics({"auc": 0.5})
    return _case(ws, 5, "full disk while writing a run file", api, OSError,
                 r"disk full while writing .*full/metrics\.json \(.*MiB free; No space left on device\)")


def disk_full_cache(ws):
    from medlib.data.preprocess import load_preprocessed

    image = first_image(ws, "xray")

    def api():
        with mock.patch("medlib.data.preprocess.np.save", _disk_full):
            load_preprocessed(image, {"size": [16, 16]}, cache_dir=ws.root / "cache")
    return _case(ws, 5, "full disk while writing the preprocessing cache", api, OSError,
                 r"disk full while writing the preprocessing cache .*\.npy \(No space left on device\)")


# ------------------------------------------------------------------------------------------ 6: late errors
def _range(key: str, value, match: str, section: str):
    def build(ws):
        p = ws.params(**{section: {key: value}})
        return _pre(ws, 6, f"{section}.{key}: {value!r}", p, _load(p), ValueError, rf"nec\.yaml: {match}")
    return build


def params_name_too_long(ws):
    p = ws.params()
    long = p.with_name("n" * 240 + ".yaml")
    long.write_text(p.read_text())
    return _case(ws, 6, "params file name of 240 characters", _load(long), ValueError,
                 r"n{240}\.yaml: the params file name has 240 bytes; expected at most 200")


def lr_quoted(ws):
    p = ws.params(train={"lr": 0.125})
    p.write_text(p.read_text().replace("lr: 0.125", "lr: '1e-3'"))
    return _pre(ws, 6, "a learning rate quoted as text", p, _load(p), ValueError,
                r"train\.lr: expected a number or null, got '1e-3' \(text\); write 1\.0e-3")


def model_3d_on_2d(ws):
    p = ws.params(models=[{"name": "resnet18", "label": "R3", "spatial_dims": 3}])
    return _pre(ws, 6, "a 3D model on 2D images", p, _load(p), ValueError,
                r"models\[0\]\.spatial_dims: expected 2 to match image\.size \[32, 32\] \(2D images\), got 3")


def no_validation_set(ws):
    p = ws.params(split={"ratios": [0.8, 0.0, 0.2]})
    return _pre(ws, 6, "a split without the validation set", p, _load(p), ValueError,
                r"split\.ratios: expected a validation fraction > 0 as the second ratio")


def split_file_without_val(ws):
    df = ws.table()
    sets = ["external" if s == "external" else ("train" if i % 2 else "test") for i, s in enumerate(df["set"])]
    pd.DataFrame({"case_id": df["case_id"], "set": sets}).to_csv(ws.root / "split.csv", index=False)
    p = ws.params(split={"split_file": str(ws.root / "split.csv")})
    return _pre(ws, 6, "a split file without a validation set", p, _prepare(p), ValueError,
                r"split\.csv: no case in set 'val'; expected a validation set")


def group_missing(ws):
    p = ws.params(split={"group": "hospital"})
    return _pre(ws, 6, "a grouping column that does not exist", p, _prepare(p), ValueError,
                r"manifest\.csv: split\.group: column 'hospital' is not in the manifest")


def group_empty(ws):
    _edit(ws, sex={3: ""})
    p = ws.params(split={"group": "sex"})
    return _pre(ws, 6, "a grouping column with an empty cell", p, _prepare(p), ValueError,
                r"manifest\.csv: line 5: sex '' is missing .* \(split\.group")


def crop_without_mask(ws):
    p = ws.params(image={"crop_to_mask": True})
    return _pre(ws, 6, "crop_to_mask without a mask column", p, _load(p), ValueError,
                r"cohort\.mask_column: expected a mask column \(cohort\.mask_column\) when image\.crop_to_mask is true")


def device_missing(ws):
    p = ws.params(train={"device": "cuda:7"})
    return _pre(ws, 6, "a training device this machine lacks", p, _load(p), ValueError,
                r"nec\.yaml: train\.device: 'cuda:7' but this machine has \d+ CUDA device")


def pretrained_3d(ws):
    p = ws.params(image={"size": [16, 16, 16]}, models=[{"name": "resnet10", "spatial_dims": 3, "pretrained": True}])
    return _pre(ws, 6, "ImageNet weights asked of a 3D model", p, _load(p), ValueError,
                r"models\[0\]\.pretrained: 'resnet10' \(3D\) has no ImageNet weights")


def _pixels(value: float, name: str):
    def build(ws):
        path = ws.cohort / ws.table()["mask"].iloc[1]
        img = nib.load(path)
        data = np.asarray(img.dataobj).astype(np.float32)
        data[0, 0, :3] = value
        nib.save(nib.Nifti1Image(data, img.affine), path)
        return _case(ws, 6, name, _read(path), ValueError,
                     r"ICH-0002\.nii\.gz: 3 of \d+ pixel values are NaN or infinite; expected finite numbers")
    return build


def _papermill(injected: dict, name: str, match: str):
    def build(ws):
        from medlib.pipelines.prepare import load_study

        data = yaml.safe_load(ws.params().read_text())
        data.update(injected)
        cell = "# Parameters\n" + "".join(f"{k} = {v!r}\n" for k, v in data.items())
        glob = {**data, "In": ["", cell], "config_path": "params/nec.yaml"}
        return _case(ws, 6, name, lambda: load_study("params/nec.yaml", injected=glob, check=False), ValueError, match)
    return build


#: Issue #20's class → (study of the base cohort, builder) of its cases; ``corpus.CASES`` takes them all.
_BY_CLASS: dict[int, list[tuple[str, Callable]]] = {1: [
    ("nec", _manifest_id("case_id", "NEC\n0002", "a newline")), ("nec", _manifest_id("patient_id", "P\t7", "a tab")),
    ("nec", _manifest_id("case_id", "a\x1b[31m", "an escape sequence")),
    ("nec", _inside("../../etc/passwd", "write path with ..")), ("nec", _inside("/etc/cron.d/x", "absolute write path")),
    ("nec", _inside("link", "write through a symbolic link out of the run")), ("nec", label_with_tab),
    ("nec", labels_same_folder), ("nec", study_name_slash), ("nec", runs_dir_long), ("nec", empty_name),
], 2: [
    ("nec", resume_other_study), ("nec", resume_other_size), ("nec", resume_other_models), ("nec", resume_not_a_run),
    ("nec", resume_garbage_config), ("nec", resume_damaged_checkpoint), ("nec", resume_truncated_checkpoint),
    ("nec", write_config_mismatch), ("nec", write_config_not_a_run), ("nec", write_split_mismatch),
    ("nec", run_in_use), ("nec", resume_in_use), ("nec", new_run_exists),
], 3: [
    ("nec", yaml_duplicate_section), ("nec", yaml_duplicate_key), ("nec", csv_duplicate_column),
    ("nec", split_duplicate_column), ("nec", split_duplicate_case), ("nec", duplicate_labels),
    ("nec", rescale_slope_zero), ("nec", image_size_one),
    ("nec", _no_effect("image", {"margin": 0.3}, "image\\.margin", "unless image\\.crop_to_mask is true")),
    ("nec", _no_effect("train", {"focal_gamma": 3.0}, "train\\.focal_gamma", "with train\\.loss 'ce'")),
    ("nec", _no_effect("train", {"loss": "focal", "focal_weight": 0.5}, "train\\.focal_weight",
                       "unless train\\.loss is 'ce\\+focal'")),
    ("nec", _no_effect("radiomics", {"bin_width": 10.0}, "radiomics\\.bin_width", "in design 'classifier'")),
    ("nec", _no_effect("cohort", {"source_limit": 5}, "cohort\\.source_limit", "without cohort\\.source")),
    ("ich", _no_effect("explain", {"n_cases": 2}, "explain\\.n_cases", "in design 'features'")),
    ("ich", _no_effect("train", {"epochs": 5}, "train\\.epochs", "in design 'features'")),
    ("ich", _no_effect("image", {"size": [16, 16, 16]}, "image\\.size", "in design 'features'")),
    ("nec", _missing_id("case_id", "NA")), ("nec", _missing_id("patient_id", "None")),
    ("nec", _missing_id("case_id", "null")), ("nec", _missing_id("patient_id", "n/a")),
    ("ich", _mask_geometry(_flip, "mask with a flipped axis", "the mask does not lie on the image")),
    ("ich", _mask_geometry(_shift, "mask shifted by 12 mm", "the mask does not lie on the image")),
], 4: [
    ("ich", nifti_sheared), ("ich", nifti_skewed), ("ich", nifti_singular), ("ich", gantry_tilt),
    ("ich", _mask_geometry(_rotate, "mask rotated by 5 degrees", "the mask does not lie on the image")),
    ("ich", _mask_geometry(_respace, "mask on a coarser grid", r"mask spacing .* differs from image spacing")),
    ("ich", _mask_geometry(_crop, "mask on a smaller grid", r"mask shape \(\d+, \d+, \d+\) differs from image shape")),
    ("glioma", sequences_shifted), ("glioma", sequences_other_fov),
], 5: [
    ("nec", alias_bomb), ("nec", yaml_too_large), ("nec", params_binary), ("nec", png_bomb), ("nec", nifti_truncated),
    ("nec", nifti_gz_truncated), ("nec", nifti_absurd), ("nec", dicom_absurd), ("nec", disk_full_run_file),
    ("nec", disk_full_cache),
], 6: [
    ("nec", _range("epochs", 0, r"train\.epochs: expected an integer >= 1, got 0", "train")),
    ("nec", _range("lr", -0.001, r"train\.lr: expected a number > 0 or null, got -0\.001", "train")),
    ("nec", _range("batch_size", 0, r"train\.batch_size: expected an integer >= 1, got 0", "train")),
    ("nec", params_name_too_long), ("nec", lr_quoted), ("nec", model_3d_on_2d), ("nec", no_validation_set),
    ("nec", split_file_without_val), ("nec", group_missing), ("nec", group_empty), ("nec", crop_without_mask),
    ("nec", device_missing), ("nec", pretrained_3d),
    ("ich", _pixels(float("nan"), "NaN voxels in a NIfTI")), ("ich", _pixels(float("inf"), "infinite voxels")),
    ("nec", _papermill({"trian": {"epochs": 3}}, "a misspelled section on the papermill route",
                       r"papermill parameters.*: Unknown config key\(s\) \['trian'\]")),
    ("nec", _papermill({"train": {"epochs": 0}}, "an invalid value on the papermill route",
                       r"papermill parameters.*: train\.epochs: expected an integer >= 1, got 0")),
    ("nec", _papermill({"train": {"epochz": 3}}, "a misspelled key on the papermill route",
                       r"papermill parameters.*: Unknown config key train\.epochz")),
]}


def _key(i: int, builder: Callable) -> str:
    return f"c{i:03d}_{getattr(builder, '__name__', 'case')}"


_ALL = [(klass, study, b) for klass, items in _BY_CLASS.items() for study, b in items]
CLASS_CASES: dict[str, tuple[str, Callable]] = {_key(i, b): (study, b) for i, (_, study, b) in enumerate(_ALL)}
#: case key → its class (1-6); the corpus's other cases are class 0.
CLASS_OF: dict[str, int] = {_key(i, b): klass for i, (klass, _, b) in enumerate(_ALL)}
