"""Report cells of the #18 analyses on a small synthetic run: tables have the rows the statistics give, a subgroup
with one class reads "not estimable", figures draw, and the duplicate check writes the run record and stops."""

from __future__ import annotations

import json
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medlib.config import AnalysisConfig, ImageConfig
from medlib.report import analyses
from medlib.schema import FrozenThreshold
from medlib.stats import auc


@pytest.fixture(scope="module")
def run_parts(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    rng = np.random.default_rng(0)
    n = 400
    sets = np.array(["train"] * 160 + ["val"] * 80 + ["test"] * 100 + ["external"] * 60)
    y = (rng.random(n) < 0.3).astype(int)
    site = np.where(sets == "external", "B", rng.choice(["A", "C"], n))
    vendor = np.where(np.arange(n) % 7 == 0, "rare", "common")
    age = rng.normal(60, 12, n) + 8 * (sets == "external")
    images = []
    for i in range(n):
        a = (rng.random((32, 32)) * 255).astype(np.uint8)
        images.append(str(root / f"{i}.png"))
        Image.fromarray(a).save(images[-1])
    images[-1] = images[0]  # an external case whose image is a training image
    table = pd.DataFrame({"case_id": [f"c{i}" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)],
                          "y": y, "set": sets, "site": site, "vendor": vendor, "age": age, "image": images})
    # the rare vendor's test cases have no event: not estimable
    table.loc[(table.vendor == "rare"), "y"] = 0
    score = np.clip(1 / (1 + np.exp(-(2 * table.y - 1 + rng.normal(0, 1, n)))), 0.01, 0.99)
    preds = pd.DataFrame({"case_id": table.case_id, "patient_id": table.patient_id, "model": "CNN",
                          "set": table.set, "y_true": table.y, "score": score})
    cfg = SimpleNamespace(cohort=SimpleNamespace(image_columns=("image",), covariates=("age", "site"),
                                                 categorical=("site",)),
                          analysis=AnalysisConfig(subgroups=("site", "vendor", "age"), allow_exact_duplicates=True),
                          image=ImageConfig())
    prepared = SimpleNamespace(table=table, cohort=SimpleNamespace(manifest=root / "manifest.csv"))
    return cfg, prepared, preds, {"CNN": FrozenThreshold(value=0.5, method="fixed", target=0.5)}


def _few(prepared):
    """Twenty training and twenty external cases (hashing every image of 400 would make the test slow)."""
    t = prepared.table
    return SimpleNamespace(table=pd.concat([t.head(20), t.tail(20)], ignore_index=True), cohort=prepared.cohort)


def test_subgroup_table_and_forest(run_parts):
    cfg, prepared, preds, thr = run_parts
    rep = analyses.subgroup_analysis(cfg, prepared, preds, thr, set_name="test")
    table = analyses.subgroup_table(rep)
    rare = table[(table.Covariate == "vendor") & (table.Level == "rare")]
    assert rare["AUC (95% CI)"].iloc[0].startswith("not estimable: 0 with the outcome")
    site = table[table.Covariate == "site"]
    sub = preds[(preds.set == "test") & (prepared.table.site == "A").to_numpy()]
    assert site[site.Level == "A"]["AUC (95% CI)"].iloc[0].startswith(f"{auc(sub.y_true, sub.score):.3f}")
    assert len(table[table.Covariate == "age"]) == 3  # tertile bands
    assert "tertiles" in analyses.subgroup_paragraph(rep)
    assert analyses.plot_forest(rep).axes


def test_sample_size_and_warnings(run_parts):
    cfg, prepared, preds, thr = run_parts
    t = analyses.sample_size_table(cfg, prepared, SimpleNamespace(predictions=preds))
    assert list(t.Set) == ["Training (development)"] * 2 + ["Validation", "Test", "External test"]
    with_p = analyses.sample_size_table(cfg, prepared, SimpleNamespace(predictions=preds, candidates={"CNN": 10}))
    assert with_p.Criterion.str.startswith("(i)").any()
    text = analyses.sample_size_warnings(prepared, preds)
    assert "Test set:" in text and "at least 100" in text


def test_pr_roc_figure_and_shift(run_parts):
    cfg, prepared, preds, thr = run_parts
    assert len(analyses.plot_pr_roc(preds, set_name="test", n_boot=50).axes) == 2
    check = analyses.duplicate_check(cfg, _few(prepared))
    shift = analyses.shift_table(cfg, prepared, check, preds)
    age = shift[shift.Variable == "age"]
    assert age["|SMD| > 0.1"].iloc[0] == "yes"
    assert shift.Variable.str.startswith("membership model AUC").any()


def test_duplicate_check_records_and_stops(run_parts, tmp_path):
    cfg, prepared, preds, thr = run_parts
    run = SimpleNamespace(path=tmp_path)
    few = _few(prepared)
    check = analyses.duplicate_check(cfg, few, run)
    assert list(zip(check.pairs.case_a, check.pairs.case_b, check.pairs.kind)) == [("c0", "c399", "exact")]
    record = json.loads((tmp_path / "duplicates.json").read_text())
    assert record["pairs"][0]["case_b"] == "c399"
    assert "1 exact" in analyses.duplicates_paragraph(check, few)
    strict = SimpleNamespace(cohort=cfg.cohort, analysis=AnalysisConfig(), image=cfg.image)
    from medlib.data.duplicates import DuplicateImagesError

    with pytest.raises(DuplicateImagesError, match="c0"):
        analyses.duplicate_check(strict, few, run)


def test_duplicates_table_lists_the_most_similar_and_counts_the_rest():
    """A flood of pairs (11 458 in a synthetic CT cohort) made an 850 kB table; the report shows the 20 most
    similar and one line for the others, which stay in duplicates.json."""
    n = 45
    pairs = pd.DataFrame({"case_a": [f"a{i}" for i in range(n)], "set_a": "train",
                          "case_b": [f"b{i}" for i in range(n)], "set_b": "test", "column": "ct",
                          "kind": ["exact"] + ["near"] * (n - 1), "similarity": np.linspace(1.0, 0.92, n)})
    check = analyses.DuplicateCheck(pairs=pairs, statistics=pd.DataFrame(), similarity=0.91, n_images=90)
    table = analyses.duplicates_table(check)
    assert len(table) == 21 and table["Image A"].iloc[0] == "a0 (Training)"
    assert table["Image A"].iloc[-1] == "... and 25 more pairs"
    assert table["Kind"].iloc[-1] == "0 identical, 25 near" and table["Similarity"].iloc[-1] == "0.920 to 0.964"
    assert len(analyses.duplicates_table(check, limit=50)) == n


def test_duplicates_paragraph_names_the_method_that_compared_the_images():
    """Volumes are compared by correlation of their individual structure, images by a perceptual hash; the
    paragraph says which, with the threshold."""
    empty = pd.DataFrame(columns=["case_a", "set_a", "case_b", "set_b", "column", "kind", "similarity"])
    prepared = SimpleNamespace(table=pd.DataFrame({"case_id": [], "set": []}))
    words = {ndim: analyses.duplicates_paragraph(analyses.DuplicateCheck(empty, pd.DataFrame(), 0.93, 10, ndim=ndim),
                                                 prepared) for ndim in (2, 3)}
    assert "perceptual difference hash" in words[2] and "volume" not in words[2]
    assert "correlation of each volume's individual structure" in words[3] and "hash" not in words[3]
    assert all("is >= 0.93. No pair spans two sets" in w for w in words.values())
    windowed = analyses.DuplicateCheck(empty, pd.DataFrame(), 0.93, 10, ndim=3, window=(40.0, 80.0))
    assert "is >= 0.93, intensities compared in the window of centre 40 and width 80 (image.window). No pair" in \
        analyses.duplicates_paragraph(windowed, prepared)
