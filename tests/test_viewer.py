"""The cohort and model browser (medlib.viewer): pure functions on tiny arrays and tables, the widgets driven
without a kernel on small synthetic cohorts (NEC radiographs, glioma MR volumes, a hand-made CT with masks) and a
fake finished run, and the explore notebook under papermill."""

from __future__ import annotations

import dataclasses
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medlib import viewer

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# ------------------------------------------------------------------------------------------------ fixtures


def _load(study: str, manifest: Path):
    from medlib.data.cohort import load_cohort
    from medlib.config import load_config

    cfg = load_config(PROJECT_ROOT / "params" / "smoke" / f"{study}.yaml", [f"cohort.manifest={manifest}"])
    return cfg, load_cohort(manifest, cfg.cohort)


def _metrics(thresholds: dict[str, float], description: str = "") -> dict:
    """metrics.json as a run writes it: Youden thresholds chosen on validation."""
    from medlib.schema import FrozenThreshold, RunMetrics

    return RunMetrics(thresholds={m: FrozenThreshold(value=v, method="youden", description=description)
                                  for m, v in thresholds.items()}).to_json()


@pytest.fixture(scope="module")
def nec(tmp_path_factory, fake_run):
    from medlib import synth

    root = tmp_path_factory.mktemp("nec")
    manifest = synth.generate("nec", root / "data", scale=0.1, image_size=64)
    cfg, cohort = _load("nec", manifest)
    metrics = _metrics({"ResNet18": 0.5}, "Youden index on the validation set")
    metrics["thresholds"]["SimpleViT"] = {"value": 0.4, "method": "youden", "target": None, "chosen_on": "val"}
    run = fake_run(root, cfg, cohort, {"ResNet18": (16, 16)}, metrics)
    return cfg, cohort, run


@pytest.fixture(scope="module")
def glioma(tmp_path_factory, fake_run):
    from medlib import synth

    root = tmp_path_factory.mktemp("glioma")
    manifest = synth.generate("glioma", root / "data", scale=0.1, image_size=16)
    cfg, cohort = _load("glioma", manifest)
    run = fake_run(root, cfg, cohort, {"ResNet10-3D": (8, 8, 8)}, _metrics({"ResNet10-3D": 0.5}))
    return cfg, cohort, run


@pytest.fixture(scope="module")
def onfh(tmp_path_factory, fake_run):
    from medlib import synth

    root = tmp_path_factory.mktemp("onfh")
    manifest = synth.generate("onfh", root / "data", scale=0.1, image_size=32)
    cfg, cohort = _load("onfh", manifest)
    run = fake_run(root, cfg, cohort, {"AP only": (8, 8), "Both views": (2, 8, 8)},
                   _metrics({"AP only": 0.5, "Both views": 0.5}))
    return cfg, cohort, run


@pytest.fixture(scope="module")
def masked(tmp_path_factory):
    """Four small CT-like NIfTI volumes with a two-tissue lesion mask (habitats need a mask and a volume)."""
    import nibabel as nib

    from medlib.data.cohort import load_cohort
    from medlib.config import CohortConfig

    root = tmp_path_factory.mktemp("masked")
    rng = np.random.default_rng(1)
    z, y, x = np.indices((10, 20, 20))
    lesion = (z - 5) ** 2 + (y - 10) ** 2 + (x - 10) ** 2 <= 16
    rows = []
    for i in range(4):
        ct = rng.normal(30, 5, lesion.shape) + np.where(lesion & (x < 10), 40, 0) + np.where(lesion, 30, 0)
        # NIfTI stores (x, y, z); the reader returns (D, H, W) = (z, y, x)
        nib.save(nib.Nifti1Image(ct.astype(np.float32).T, np.eye(4)), root / f"ct{i}.nii.gz")
        nib.save(nib.Nifti1Image(lesion.astype(np.uint8).T, np.eye(4)), root / f"mask{i}.nii.gz")
        rows.append({"case_id": f"C{i}", "patient_id": f"P{i}", "label": str(i % 2), "ct": f"ct{i}.nii.gz",
                     "mask": f"mask{i}.nii.gz", "age": 60 + i})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    config = CohortConfig(image_columns=("ct",), mask_column="mask", covariates=("age",))
    return load_cohort(root / "manifest.csv", config)


def _png_shape(data: bytes) -> tuple[int, ...]:
    from matplotlib.image import imread

    return imread(io.BytesIO(data), format="png").shape


def _all_text(widget) -> list[str]:
    """Every string a widget tree shows: descriptions, values, option labels, tooltips, HTML."""
    out = []
    for name in ("description", "value", "tooltip", "placeholder"):
        value = getattr(widget, name, None)
        if isinstance(value, str):
            out.append(value)
    out += [str(label) for label in getattr(widget, "_options_labels", ())]
    for child in getattr(widget, "children", ()):
        out += _all_text(child)
    return out


# ------------------------------------------------------------------------------------------ pure: images


@pytest.mark.parametrize("center, width, values, expected", [
    (40, 80, [0, 40, 80, 200], [0.0, 0.5, 1.0, 1.0]),
    (0.5, 1.0, [0.0, 0.25, 1.0], [0.0, 0.25, 1.0]),
    (0, 2, [-5, 0, 5], [0.0, 0.5, 1.0]),
])
def test_window_image_maps_window_to_unit_range(center, width, values, expected):
    original = np.array(values, dtype=np.float64)
    out = viewer.window_image(original, center, width)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected)
    np.testing.assert_array_equal(original, values)  # input unchanged


@pytest.mark.parametrize("width", [0, -3])
def test_window_image_rejects_non_positive_width(width):
    with pytest.raises(ValueError, match="window width must be > 0"):
        viewer.window_image(np.zeros(3), 0, width)


def test_default_window_and_range_of_constant_image():
    assert viewer.intensity_range(np.full((4, 4), 7.0)) == (7.0, 8.0)
    assert viewer.default_window(np.arange(101.0), percentiles=(0, 100)) == (50.0, 100.0)
    _, width = viewer.default_window(np.full((3, 3), 2.0))
    assert width > 0


@pytest.mark.parametrize("axis, shape", [(0, (5, 6)), (1, (4, 6)), (2, (4, 5))])
def test_slice_volume_along_each_axis(axis, shape):
    vol = np.arange(4 * 5 * 6).reshape(4, 5, 6)
    out = viewer.slice_volume(vol, axis, 2)
    assert out.shape == shape
    np.testing.assert_array_equal(out, np.take(vol, 2, axis=axis))


@pytest.mark.parametrize("vol, axis, index, error, match", [
    (np.zeros((4, 4)), 0, 0, ValueError, "must be 3-D"),
    (np.zeros((4, 4, 4)), 3, 0, ValueError, "axis must be 0, 1 or 2"),
    (np.zeros((4, 5, 6)), 1, 5, IndexError, r"outside 0\.\.4 along axis 1"),
])
def test_slice_volume_errors(vol, axis, index, error, match):
    with pytest.raises(error, match=match):
        viewer.slice_volume(vol, axis, index)


def test_default_slice_follows_the_mask():
    mask = np.zeros((6, 8, 8), bool)
    mask[4, 2:6, 2:6] = True
    mask[1, 3, 3] = True
    assert viewer.default_slice(mask.shape, 0, mask) == 4
    assert viewer.default_slice(mask.shape, 2) == 4
    assert viewer.default_slice(mask.shape, 0, np.zeros_like(mask)) == 3


def test_mask_outline():
    m = np.zeros((6, 6))
    m[1:5, 1:5] = 1
    outline = viewer.mask_outline(m)
    assert outline.sum() == 12 and not outline[2:4, 2:4].any() and not outline[0].any()
    full = viewer.mask_outline(np.ones((3, 3)))  # the image border closes the outline
    assert full.sum() == 8
    with pytest.raises(ValueError, match="mask must be 2-D"):
        viewer.mask_outline(np.ones((2, 2, 2)))


def test_fit_to_shape_and_cam_for_view():
    assert viewer.fit_to_shape(np.ones((16, 16)), (128, 100)).shape == (128, 100)
    with pytest.raises(ValueError, match="dimensions differ"):
        viewer.fit_to_shape(np.ones((4, 4)), (4, 4, 4))
    views = np.stack([np.zeros((8, 8)), np.arange(64.0).reshape(8, 8)])
    cam = viewer.cam_for_view(views, (32, 32), view=1, n_views=2)
    assert cam.shape == (32, 32) and cam.max() == pytest.approx(1.0) and cam.min() >= 0
    assert viewer.cam_for_view(views, (32, 32), view=0, n_views=2).max() == 0  # an all-zero map stays zero
    with pytest.raises(ValueError, match="has 2 views; the model reads 3"):
        viewer.cam_for_view(views, (32, 32), view=0, n_views=3)
    with pytest.raises(ValueError, match="does not fit an image"):
        viewer.cam_for_view(np.ones((2, 2, 2, 2)), (4, 4))
    assert viewer.cam_for_view(np.ones((4, 4, 4)), (8, 8, 8)).shape == (8, 8, 8)  # one map for all channels


# ------------------------------------------------------------------------------------ pure: outcomes


def test_outcome_of():
    assert viewer.outcome_of([1, 0, 0, 1], [0.9, 0.8, 0.1, 0.2], 0.5).tolist() == ["TP", "FP", "TN", "FN"]
    assert viewer.outcome_of([1], [0.5], 0.5).tolist() == ["TP"]  # scores at the threshold are positive
    with pytest.warns(RuntimeWarning, match="undefined"):
        assert viewer.outcome_of([1, 0], [0.2, 0.3], float("nan")).tolist() == ["", ""]
    with pytest.raises(ValueError, match="same shape"):
        viewer.outcome_of([1, 0], [0.2], 0.5)


def _predictions() -> pd.DataFrame:
    return pd.DataFrame({
        "case_id": ["a", "b", "c", "d"] * 2, "patient_id": ["a", "b", "c", "d"] * 2,
        "model": ["m1"] * 4 + ["m2"] * 4, "set": ["val", "val", "test", "test"] * 2,
        "y_true": [1, 0, 1, 0] * 2, "score": [0.8, 0.3, 0.6, 0.7, 0.1, 0.9, 0.4, 0.2]})


def test_run_thresholds_come_from_metrics_json_only(monkeypatch):
    from medlib.schema import RunMetrics

    def choose(*args, **kwargs):
        raise AssertionError("the viewer chose a threshold itself")

    monkeypatch.setattr("medlib.stats.choose_threshold", choose)
    metrics = RunMetrics.from_json({"thresholds": {"m1": {"value": 0.55, "method": "youden"}}})
    with pytest.warns(RuntimeWarning, match="model 'm2': the run's metrics.json stores no threshold"):
        out = viewer.run_thresholds(_predictions(), metrics)
    assert out["m1"] == viewer.RunThreshold(0.55, "stored in the run's metrics.json: youden, chosen on val")
    assert np.isnan(out["m2"].value) and out["m2"].source == "undefined: not stored in the run's metrics.json"
    described = RunMetrics.from_json({"thresholds": {"m1": {"value": 0.5, "description": "fixed at 0.5"},
                                                     "m2": {"value": None}}})
    out = viewer.run_thresholds(_predictions(), described)
    assert out["m1"].source == "stored in the run's metrics.json: fixed at 0.5" and np.isnan(out["m2"].value)


def test_read_run_needs_metrics_json(tmp_path):
    from medlib.runs.folder import new_run

    assert viewer.read_run(None) == viewer.RunData() and viewer.read_run("") == viewer.RunData()
    run = new_run("demo", runs_dir=tmp_path, run_id="r1")
    preds = _predictions()
    run.write_split(preds[preds["model"] == "m1"][["case_id", "patient_id", "y_true", "set"]]
                    .rename(columns={"y_true": "y"}))
    run.write_predictions(preds)
    with pytest.raises(FileNotFoundError, match=r"r1/metrics\.json not found"):
        viewer.read_run(run.path)
    run.write_metrics({"auc": 0.8})
    with pytest.raises(ValueError, match=r"r1/metrics\.json: metrics\.json must hold 'thresholds'"):
        viewer.read_run(run.path)
    run.write_metrics(_metrics({"m1": 0.5, "m2": 0.4}))
    read = viewer.read_run(run.path)
    assert read.config is None and read.cams_dir is None and read.metrics.thresholds["m2"].value == 0.4
    assert set(viewer.run_thresholds(read.predictions, read.metrics)) == {"m1", "m2"}


def test_filter_cases():
    table = pd.DataFrame({"case_id": list("abcd"), "y": [1, 0, 1, 0], "set": ["val", "val", "test", "test"]})
    before = table.copy()
    assert viewer.filter_cases(table, label=1)["case_id"].tolist() == ["a", "c"]
    assert viewer.filter_cases(table, set_name="test", label=0)["case_id"].tolist() == ["d"]
    preds, thresholds = _predictions(), {"m1": 0.5, "m2": viewer.RunThreshold(0.5, "x")}
    out = viewer.filter_cases(table, predictions=preds, thresholds=thresholds, model="m1")
    assert out["outcome"].tolist() == ["TP", "TN", "TP", "FP"] and out["threshold"].eq(0.5).all()
    assert viewer.filter_cases(table, outcome="FN", predictions=preds, thresholds=thresholds,
                               model="m2")["case_id"].tolist() == ["a", "c"]
    pd.testing.assert_frame_equal(table, before)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"label": 2}, ValueError, "label must be 0"),
    ({"outcome": "XX"}, ValueError, "outcome must be one of"),
    ({"outcome": "TP"}, ValueError, "needs the run's predictions and a model"),
    ({"model": "nope", "predictions": _predictions(), "thresholds": {"m1": 0.5}}, KeyError, "Unknown model 'nope'"),
    ({"model": "m2", "predictions": _predictions(), "thresholds": {"m1": 0.5}}, KeyError, "no threshold for model"),
])
def test_filter_cases_errors(kwargs, error, match):
    table = pd.DataFrame({"case_id": list("abcd"), "y": [1, 0, 1, 0], "set": ["val"] * 4})
    with pytest.raises(error, match=match):
        viewer.filter_cases(table, **kwargs)


def test_render_case_draws_one_axis_per_panel():
    panels = [viewer.Panel("a", np.random.default_rng(0).random((20, 30)), mask=np.ones((20, 30)),
                           habitats=np.ones((20, 30), int), cam=np.ones((20, 30))),
              viewer.Panel("b", np.zeros((20, 30)))]
    fig = viewer.render_case(panels, cam_alpha=0.3, title="case")
    assert len(fig.axes) == 2 and fig.axes[0].get_title() == "a"
    assert _png_shape(viewer.figure_png(fig, close=True))[2] in (3, 4)
    with pytest.raises(ValueError, match="at least one panel"):
        viewer.render_case([])
    with pytest.raises(ValueError, match="must be 2-D"):
        viewer.render_case([viewer.Panel("v", np.zeros((2, 2, 2)))])
    with pytest.raises(ValueError, match=r"cam_alpha must be in \[0, 1\]"):
        viewer.render_case(panels, cam_alpha=1.5)


@pytest.mark.parametrize("module", ["images", "cohort", "cases", "run", "browser"])
def test_docstring_examples(module):
    import doctest
    import importlib

    mod = importlib.import_module(f"medlib.viewer.{module}")
    assert doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE).failed == 0


def test_the_package_face_holds_what_the_explore_notebook_calls():
    """The explore notebook does ``from medlib import viewer``; each name has one owner module."""
    import medlib
    from medlib.viewer import browser

    for name in ("read_run", "case_table", "class_balance", "image_stats", "size_spacing_table",
                 "intensity_histograms", "plot_intensity_histograms", "flag_out_of_range", "plot_image_stats",
                 "CohortBrowser"):
        assert name in viewer.__all__ and getattr(medlib.viewer, name) is getattr(viewer, name), name
    assert browser.__all__ == ["CohortBrowser"]


def test_window_image_is_the_data_layers_window():
    from medlib.data.imaging.window import linear_window

    assert viewer.window_image is linear_window


# ------------------------------------------------------------------------------------- cohort overview


def test_class_balance_and_robust_z():
    t = pd.DataFrame({"patient_id": ["a", "a", "b", "c"], "y": [1, 1, 0, 0], "set": ["", "", "external", ""]})
    out = viewer.class_balance(t)
    assert out["set"].tolist() == ["external", "internal", "all"]
    assert out.set_index("set").loc["internal", ["cases", "patients", "positive"]].tolist() == [3, 2, 2]
    np.testing.assert_allclose(viewer.robust_z([1.0, 2.0, 3.0, 4.0, 100.0]).round(2),
                               [-1.35, -0.67, 0.0, 0.67, 65.43])
    assert viewer.robust_z([5, 5, 5, 9]).tolist()[:3] == [0.0, 0.0, 0.0]
    assert viewer.robust_z([5, 5, 5, 5]).tolist() == [0.0] * 4


def test_case_table_sets_come_from_the_run_only(nec):
    cfg, cohort, run = nec
    before = cohort.table.copy()
    table, note = viewer.case_table(cohort)
    assert note == viewer.NO_RUN_NOTE and set(table["set"]) <= {"internal", "external"}
    empty, _ = viewer.case_table(cohort, run=viewer.read_run(None))
    pd.testing.assert_frame_equal(empty, table)  # no split is ever computed here
    data = viewer.read_run(run)
    short = dataclasses.replace(data, split=data.split.iloc[1:])
    table, note = viewer.case_table(cohort, run=short)
    assert note == "Sets from the run's split.csv (fake)."
    assert table["set"].iloc[0] == "not in split"
    assert table["set"].iloc[1:].tolist() == data.split["set"].iloc[1:].tolist()
    pd.testing.assert_frame_equal(cohort.table, before)


def test_flag_out_of_range_flags_and_keeps_the_cohort():
    stats = pd.DataFrame({"case_id": [f"c{i}" for i in range(8)], "column": "x",
                          "mean": [10, 11, 10.5, 9.8, 10.2, 10.1, 60, 10], "std": [1, 1.1, 0.9, 1, 1.05, 0.95, 1, 1],
                          "voxels": [100] * 7 + [400]})
    table = pd.DataFrame({"case_id": stats["case_id"], "x": ""})
    flags = viewer.flag_out_of_range(table, ["x"], z=4, stats=stats)
    assert flags["case_id"].tolist() == ["c6", "c7"]
    assert "mean z=" in flags["reason"][0] and flags["reason"][1] == "voxels z=+6.4"  # MAD 0: mean absolute deviation
    assert len(table) == 8
    with pytest.raises(KeyError, match=r"image column\(s\) \['nope'\]"):
        viewer.flag_out_of_range(table, ["nope"], stats=stats)


def test_image_stats_and_histograms_by_scanner(nec, glioma):
    _, cohort, _ = nec
    stats = viewer.image_stats(cohort.table, ["xray"], sample=4)
    assert len(stats) == 4 and set(stats["shape"]) == {"64×64"} and stats["manufacturer"].str.len().gt(0).all()
    sizes = viewer.size_spacing_table(stats)
    assert sizes["images"].sum() == 4
    hist = viewer.intensity_histograms(cohort.table, "xray", sample=6, bins=10)
    assert set(hist["by"]) == {"manufacturer"} and hist.groupby("group")["images"].first().sum() == 6
    widths = (hist["bin_right"] - hist["bin_left"])
    for _, part in hist.groupby("group"):  # each group's density integrates to 1
        assert (part["density"] * widths[part.index]).sum() == pytest.approx(1.0)
    mr = viewer.intensity_histograms(glioma[1].table, "t1", sample=3, bins=8)
    assert set(mr["by"]) == {"all"} and mr["group"].unique().tolist() == ["all"]  # NIfTI has no manufacturer
    assert len(viewer.plot_intensity_histograms({"xray": hist, "t1": mr}).axes) == 2
    import matplotlib.pyplot as plt

    plt.close("all")


# ---------------------------------------------------------------------------------------------- widgets


def test_browser_without_run_filters_by_label_and_set(nec):
    cfg, cohort, _ = nec
    b = viewer.CohortBrowser(cohort, config=cfg)
    assert len(b.case_select.options) == len(cohort.table)
    assert b.model_select.disabled and b.outcome_filter.disabled and b.show_cam.disabled
    assert "No run given: sets are not shown" in b.notes.value  # never a split the viewer made itself
    assert list(b.set_filter.options) == ["all", "external", "internal"]
    b.label_filter.value = "1"
    shown = [v for _, v in b.case_select.options]
    positives = cohort.table.loc[cohort.table["y"] == 1, "case_id"].tolist()
    assert shown == positives and b.count.value.startswith(f"{len(positives)} of")
    b.set_filter.value = "external"
    expected = cohort.table.query("y == 1 and set == 'external'")["case_id"].tolist()
    assert [v for _, v in b.case_select.options] == expected and b.case_select.value == expected[0]
    assert [p.image.shape for p in b.last_panels] == [(64, 64)]
    assert _png_shape(b.image.value)[:2] == (345, 320)  # 3.2 x 3.45 inches at 100 dpi
    assert b.axis.layout.display == "none"  # no axis control for 2D images


def test_window_sliders_change_the_image(nec):
    cfg, cohort, _ = nec
    b = viewer.CohortBrowser(cohort, config=cfg)
    level, width = b.window["xray"]
    before = b.image.value
    width.value = width.min
    assert b.image.value != before
    shown = b.last_panels[0].image
    assert np.isin(shown, [0.0, 1.0]).mean() > 0.9  # the narrowest window is nearly a threshold


def test_browser_with_run_outcomes_thresholds_and_cam(nec):
    from medlib.schema import ordered_sets

    cfg, cohort, run = nec
    b = viewer.CohortBrowser(cohort, run_dir=run, config=cfg)
    assert list(b.model_select.options) == ["ResNet18", "SimpleViT"] and "split.csv" in b.notes.value
    assert "0.5 (stored in the run's metrics.json: Youden index on the validation set)" in b.notes.value
    assert list(b.set_filter.options) == ["all", *ordered_sets(b.run.split["set"])]
    b.model_select.value = "SimpleViT"
    assert "0.4 (stored in the run's metrics.json: youden, chosen on val)" in b.notes.value
    b.model_select.value = "ResNet18"
    for outcome in viewer.OUTCOMES:
        b.outcome_filter.value = outcome
        expected = viewer.filter_cases(b.table, outcome=outcome, predictions=b.run.predictions,
                                       thresholds=b.thresholds, model="ResNet18")["case_id"].tolist()
        assert [v for _, v in b.case_select.options] == expected
    b.outcome_filter.value = "all"
    assert "score" in b.info.value and "threshold source" in b.info.value
    plain = b.image.value
    b.show_cam.value = True
    assert b.image.value != plain and b.last_panels[0].cam.shape == (64, 64)
    faint = b.image.value
    b.cam_alpha.value = 0.9
    assert b.image.value not in (plain, faint)
    b.show_cam.value = False
    assert b.image.value == plain and b.last_panels[0].cam is None
    b.show_cam.value = True
    b.model_select.value = "SimpleViT"  # no CAMs stored for this model: said, not hidden
    assert "No Grad-CAM stored" in b.status.value


def test_no_identifiers_or_paths_in_any_widget(nec):
    from medlib.synth import planted_identifier_strings

    cfg, cohort, run = nec
    b = viewer.CohortBrowser(cohort, run_dir=run, config=cfg)
    texts = []
    for case_id in [v for _, v in b.case_select.options][:6]:
        b.case_select.value = case_id
        texts += _all_text(b.widget)
    blob = "\n".join(texts)
    assert "Carestream" in blob or "manufacturer" in blob  # the technical metadata is there
    for planted in planted_identifier_strings():
        assert planted not in blob
    assert str(cohort.manifest.parent) not in blob  # no image paths


def test_glioma_three_sequences_with_slice_axis_and_3d_cam(glioma):
    cfg, cohort, run = glioma
    b = viewer.CohortBrowser(cohort, run_dir=run, config=cfg)
    assert [p.image.shape for p in b.last_panels] == [(16, 16)] * 3
    assert b.axis.layout.display is None and b.slice.max == 15 and b.slice.value == 8
    before = b.image.value
    b.slice.value = 3
    assert b.image.value != before and "slice 3" in b.last_panels[0].title
    vol = b._case.images["t2"].array
    level, width = (s.value for s in b.window["t2"])
    np.testing.assert_array_equal(b.last_panels[1].image, viewer.window_image(vol[3], level, width))
    b.axis.value = 2
    assert b.slice.max == 15 and all("axis 2" in p.title for p in b.last_panels)
    b.show_cam.value = True
    assert all(p.cam is not None and p.cam.shape == (16, 16) for p in b.last_panels)  # one map, three channels
    assert len(b.window) == 3 and b.window["t1ce"][0].description == "t1ce level"


def test_two_views_side_by_side_with_per_view_cams(onfh):
    cfg, cohort, run = onfh
    b = viewer.CohortBrowser(cohort, run_dir=run, config=cfg)
    assert [p.title.split(" · ")[1] for p in b.last_panels] == ["ap", "frog"]
    assert [p.image.shape for p in b.last_panels] == [(32, 32), (32, 32)]
    b.show_cam.value = True
    b.model_select.value = "AP only"  # a single-view model: its map goes on the AP view only
    assert b.last_panels[0].cam is not None and b.last_panels[1].cam is None
    b.model_select.value = "Both views"  # one map per view, in the model's input order
    ap, frog = (p.cam for p in b.last_panels)
    stored = np.load(viewer.cam_path(run / "cams", "Both views", b.case_select.value))  # named as the run names it
    np.testing.assert_allclose(ap, viewer.cam_for_view(stored, (32, 32), view=0, n_views=2))
    np.testing.assert_allclose(frog, viewer.cam_for_view(stored, (32, 32), view=1, n_views=2))


def test_mask_outline_and_habitats_on_a_volume(masked):
    b = viewer.CohortBrowser(masked)
    assert viewer.NO_RUN_NOTE in b.notes.value and not b.show_mask.disabled
    assert b.slice.value == 5  # the slice with the largest mask area
    panel = b.last_panels[0]
    assert panel.mask is not None and panel.habitats is None
    outlined = b.image.value
    b.show_mask.value = False
    assert b.image.value != outlined
    b.show_habitats.value = True
    labels = b.last_panels[0].habitats
    assert labels.shape == (20, 20) and set(np.unique(labels)) == {0, 1, 2, 3}
    assert not b.status.value
    b.label_filter.value = "1"
    assert [v for _, v in b.case_select.options] == ["C1", "C3"]


# --------------------------------------------------------------------------------------------- notebook


@pytest.mark.slow
def test_explore_notebook_runs_headless(nec, tmp_path):
    import papermill as pm

    from medlib.synth import planted_identifier_strings

    cfg, cohort, run = nec
    source = PROJECT_ROOT / "notebooks" / "explore.ipynb"
    committed = json.loads(source.read_text())
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in committed["cells"] if c["cell_type"] == "code")
    out = tmp_path / "explore.ipynb"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pm.execute_notebook(str(source), str(out), kernel_name="python3", cwd=str(PROJECT_ROOT),
                            progress_bar=False, parameters={
                                "config_path": "params/smoke/nec.yaml", "run_dir": str(run),
                                "overrides": [f"cohort.manifest={cohort.manifest}"], "sample": 12})
    text = out.read_text()
    nb = json.loads(text)
    outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    kinds = {k for o in outputs for k in o.get("data", {})}
    assert {"image/png", "text/markdown", "application/vnd.jupyter.widget-view+json"} <= kinds
    for planted in planted_identifier_strings():
        assert planted not in text
