"""Cohort manifests and patient-level splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medlib.data.cohort import CohortError, assert_disjoint, load_cohort, read_split, split_cohort, split_hash
from medlib.config import CohortConfig

CFG = CohortConfig(manifest="m.csv", image_columns=("ap", "frog"), positive="failure", negative="success",
                   covariates=("age",))


def write_cohort(root: Path, rows: list[dict]) -> Path:
    for row in rows:
        for col in ("ap", "frog"):
            if row.get(col):
                (root / row[col]).write_bytes(b"x")
    path = root / "manifest.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def good_rows(n: int = 6) -> list[dict]:
    return [{"case_id": f"c{i}", "patient_id": f"p{i // 2}", "label": "failure" if i % 3 == 0 else "success",
             "ap": f"c{i}_ap.dcm", "frog": f"c{i}_frog.dcm", "age": 40 + i} for i in range(n)]


def test_load_cohort_resolves_paths_and_labels(tmp_path):
    cohort = load_cohort(write_cohort(tmp_path, good_rows()), CFG)
    assert list(cohort.table["y"]) == [1, 0, 0, 1, 0, 0]
    assert all(Path(p).is_absolute() and Path(p).exists() for p in cohort.table["ap"])
    assert len(cohort.hash) == 64


@pytest.mark.parametrize("change, message", [
    (lambda r: r[1].update(label="maybe"), r"column 'label': 1 of 6 rows holds a value that is neither "
                                           r"cohort.positive 'failure' nor cohort.negative 'success': 'maybe' "
                                           r"\(1 row\); first at line 3"),
    (lambda r: r[2].update(case_id="c0"), r"duplicate case_id 'c0'"),
    (lambda r: r[0].update(patient_id=""), r"line 2: patient_id '' is missing \(empty or a missing-value marker"),
    (lambda r: r[0].update(case_id="NA"), r"line 2: case_id 'NA' is missing \(empty or a missing-value marker"),
    (lambda r: r[1].update(patient_id="None"), r"line 3: patient_id 'None' is missing"),
    (lambda r: r[2].update(case_id="c\x01"), r"line 4: case_id 'c\\x01' holds a control character"),
    (lambda r: r[3].update(frog=""), r"line 5: case 'c3' has no 'frog' image \(missing view\)"),
    (lambda r: r[4].update(ap="nowhere.dcm"), r"line 6: ap file not found: .*nowhere.dcm"),
])
def test_bad_rows_are_named(tmp_path, change, message):
    rows = good_rows()
    path = write_cohort(tmp_path, rows)
    change(rows)
    pd.DataFrame(rows).to_csv(path, index=False)
    with pytest.raises(CohortError, match=message):
        load_cohort(path, CFG)


def test_all_bad_rows_reported_at_once_and_capped(tmp_path):
    rows = good_rows(40)
    path = write_cohort(tmp_path, rows)
    for r in rows:
        r["ap"] = "gone.dcm"
    pd.DataFrame(rows).to_csv(path, index=False)
    with pytest.raises(CohortError, match=r"40 problem\(s\)[\s\S]*and 20 more"):
        load_cohort(path, CFG)


def test_missing_columns_and_manifest(tmp_path):
    path = tmp_path / "m.csv"
    pd.DataFrame({"case": ["a"], "patient_id": ["p"]}).to_csv(path, index=False)
    with pytest.raises(CohortError, match=r"missing column\(s\) \['case_id', 'label', 'ap', 'frog', 'age'\]"):
        load_cohort(path, CFG)
    with pytest.raises(FileNotFoundError, match="cohort manifest not found"):
        load_cohort(tmp_path / "absent.csv", CFG)


def test_bad_set_value(tmp_path):
    rows = good_rows()
    rows[0]["set"] = "holdout"
    with pytest.raises(CohortError, match=r"values \['holdout'\] are not allowed"):
        load_cohort(write_cohort(tmp_path, rows), CFG)


def fake_table(n_patients: int, bilateral: float, prevalence: float, rng, n_external: int = 0) -> pd.DataFrame:
    rows = []
    for p in range(n_patients):
        y = int(rng.random() < prevalence)
        for side in range(1 + int(rng.random() < bilateral)):
            rows.append({"case_id": f"p{p}-{side}", "patient_id": f"p{p}", "y": y, "set": ""})
    for e in range(n_external):
        rows.append({"case_id": f"e{e}", "patient_id": f"e{e}", "y": e % 2, "set": "external"})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", range(25))
@pytest.mark.parametrize("ratios", [(0.7, 0.3), (0.75, 0.25, 0.0), (0.6, 0.2, 0.2)])
def test_split_properties(seed, ratios):
    rng = np.random.default_rng(seed)
    table = fake_table(int(rng.integers(40, 200)), bilateral=0.0, prevalence=rng.uniform(0.2, 0.6), rng=rng,
                       n_external=6)
    split = split_cohort(table, ratios=ratios, seed=seed)
    assert_disjoint(split)
    assert (split.loc[split["case_id"].str.startswith("e"), "set"] == "external").all()
    internal = split[split["set"] != "external"]
    for name, ratio in zip(["train", "val", "test"], ratios):
        part = internal[internal["set"] == name]
        for cls in (0, 1):
            n_cls = int((internal["y"] == cls).sum())
            target = ratio / sum(ratios) * n_cls
            assert abs(int((part["y"] == cls).sum()) - target) <= 1.0
    again = split_cohort(table, ratios=ratios, seed=seed)
    assert split.equals(again) and split_hash(split) == split_hash(again)


@pytest.mark.parametrize("seed", range(10))
def test_bilateral_patients_stay_together(seed):
    rng = np.random.default_rng(seed)
    table = fake_table(120, bilateral=0.3, prevalence=0.3, rng=rng)
    split = split_cohort(table, ratios=(0.75, 0.25), seed=seed)
    assert split.groupby("patient_id")["set"].nunique().max() == 1
    sizes = split["set"].value_counts()
    assert abs(sizes["train"] - 0.75 * len(split)) <= 3


def test_different_seeds_differ():
    table = fake_table(100, 0.0, 0.4, np.random.default_rng(0))
    assert split_hash(split_cohort(table, seed=1)) != split_hash(split_cohort(table, seed=2))


def test_split_too_small_for_a_set():
    table = pd.DataFrame({"case_id": ["a", "b", "c"], "patient_id": ["a", "b", "c"], "y": [1, 0, 0]})
    with pytest.raises(ValueError, match="the val set has no positive case"):
        split_cohort(table, ratios=(0.7, 0.3), seed=0)


def test_bad_ratios():
    table = fake_table(20, 0.0, 0.5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="split.ratios must be"):
        split_cohort(table, ratios=(0.0, 1.0))


def test_assert_disjoint_names_patient():
    split = pd.DataFrame({"case_id": ["a", "b"], "patient_id": ["P7", "P7"], "set": ["train", "test"]})
    with pytest.raises(CohortError, match=r"1 patient\(s\) span two sets: P7 in \['test', 'train'\]"):
        assert_disjoint(split)


def test_user_split_is_checked_for_leakage(tmp_path):
    cohort = load_cohort(write_cohort(tmp_path, good_rows()), CFG)
    user = pd.DataFrame({"case_id": [f"c{i}" for i in range(6)],
                         "set": ["train", "val", "train", "train", "val", "val"]})
    user.to_csv(tmp_path / "split.csv", index=False)
    with pytest.raises(CohortError, match=r"patient\(s\) span two sets: p0 in \['train', 'val'\]"):
        read_split(tmp_path / "split.csv", cohort)
    user["set"] = ["train", "train", "val", "val", "test", "test"]
    user.to_csv(tmp_path / "split.csv", index=False)
    assert len(read_split(tmp_path / "split.csv", cohort)) == 6


@pytest.mark.parametrize("seed", range(5))
def test_grouped_stratified_kfold(seed):
    rng = np.random.default_rng(seed)
    table = fake_table(150, bilateral=0.3, prevalence=0.35, rng=rng, n_external=4)
    splits = [split_cohort(table, ratios=(0.8, 0.2), seed=seed, folds=5, fold=k) for k in range(5)]
    tests = [set(s.loc[s["set"] == "test", "case_id"]) for s in splits]
    internal = set(table.loc[table["set"] != "external", "case_id"])
    assert set().union(*tests) == internal                      # every internal case is tested once
    assert sum(len(t) for t in tests) == len(internal)           # ... and only once
    for s in splits:
        assert_disjoint(s)
        assert (s.loc[s["case_id"].str.startswith("e"), "set"] == "external").all()
        test = s[s["set"] == "test"]
        assert abs(test["y"].mean() - table.loc[table["set"] != "external", "y"].mean()) < 0.08


def test_bad_fold():
    table = fake_table(30, 0.0, 0.5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="split.folds must be > 1"):
        split_cohort(table, folds=5, fold=5)


def test_lesion_masks_are_resolved_and_checked_against_their_image(tmp_path):
    """cohort.lesion_masks columns are paths relative to the manifest like the images; a mask on another pixel
    grid is refused by check_geometry, naming the row and the mask column."""
    from PIL import Image

    from medlib import synth
    from medlib.config import load_config
    from medlib.data.cohort import check_geometry

    manifest = synth.generate("nec", tmp_path / "data", seed=0, scale=0.1, image_size=64)
    cfg = load_config(Path(__file__).resolve().parents[1] / "params" / "smoke" / "nec.yaml").cohort
    cohort = load_cohort(manifest, cfg)
    masks = cohort.table["lesion_mask"]
    assert all(Path(m).is_absolute() and Path(m).is_file() for m in masks)
    check_geometry(cohort)  # the synthetic masks lie on their radiographs
    Image.fromarray(np.zeros((7, 9), np.uint8)).save(masks.iloc[0])  # another grid
    with pytest.raises(CohortError, match=r"line 2: .*lesion mask 'lesion_mask'"):
        check_geometry(load_cohort(manifest, cfg))
