"""Report figures: each returns a Figure with the expected axes, lines and legend entries, saves as PNG, uses one
colour per model across figures, counts correctly and never shows a patient identifier."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from medlib.report import figures as plots

MODELS = ("ResNet-18", "DenseNet-121", "Clinical + imaging fusion")
THRESHOLDS = {"ResNet-18": 0.5, "DenseNet-121": 0.45, "Clinical + imaging fusion": 0.55}
SECRET = "PATIENT-SECRET"


# ---------------------------------------------------------------- fake study outputs
def fake_predictions(n: int = 100, seed: int = 0) -> pd.DataFrame:
    """The long predictions table of 3 models on 100 validation and 100 test cases (some patients bilateral)."""
    rng = np.random.default_rng(seed)
    frames = []
    for set_name in ("val", "test"):
        y = (rng.random(n) < 0.35).astype(int)
        cases = [f"{set_name}-{i:03d}" for i in range(n)]
        patients = [f"{SECRET}-{set_name}-{i // 2 if i < 40 else i}" for i in range(n)]
        for model, signal in zip(MODELS, (1.6, 2.2, 2.8)):
            logit = -0.8 + signal * (y - 0.35) + rng.normal(0, 1, n)
            frames.append(pd.DataFrame({"model": model, "set": set_name, "case_id": cases, "patient_id": patients,
                                        "y_true": y, "score": 1 / (1 + np.exp(-logit))}))
    return pd.concat(frames, ignore_index=True)


def fake_histories(epochs: int = 20) -> dict[str, pd.DataFrame]:
    out = {}
    for k, model in enumerate(MODELS[:2]):
        e = np.arange(1, epochs + 1)
        out[model] = pd.DataFrame({"epoch": e, "train_loss": 0.7 * np.exp(-e / (6 + k)) + 0.1,
                                   "val_loss": 0.6 * np.exp(-e / 8) + 0.2 + 0.004 * e,
                                   "val_auc": 0.9 - 0.35 * np.exp(-e / (4 + k))})
    return out


def _blob(shape: tuple[int, ...], centre: tuple[float, ...], width: float) -> np.ndarray:
    grids = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    return np.exp(-sum((g - c) ** 2 for g, c in zip(grids, centre)) / (2 * width ** 2))


def _case_info(n: int) -> pd.DataFrame:
    groups = (["TP", "FN", "FP", "TN"] * n)[:n]
    return pd.DataFrame({"case_id": [f"test-{i:03d}" for i in range(n)], "group": groups,
                         "score": np.linspace(0.9, 0.1, n), "y_true": [int(g in ("TP", "FN")) for g in groups],
                         "patient_id": [f"{SECRET}-{i}" for i in range(n)]})


def fake_cam_cases(n: int = 8, views: int = 2, size: int = 64):
    """images [n, views, H, W], maps [n, H, W], the gallery table (with a patient_id column that must never
    show), and the same images as a list with titles for the example montage."""
    rng = np.random.default_rng(1)
    images = np.stack([[200 * _blob((size, size), (size * 0.5, size * (0.3 + 0.1 * v)), size / 5)
                        + rng.normal(0, 10, (size, size)) for v in range(views)] for _ in range(n)])
    cams = np.stack([_blob((size, size), (20 + i, 25 + 2 * i), 7) for i in range(n)])
    info = _case_info(n)
    flat = [images[i, v] for i in range(n) for v in range(views)]
    titles = [f"{c} · view {v + 1} · {'collapse' if y else 'no collapse'}"
              for c, y in zip(info["case_id"], info["y_true"]) for v in range(views)]
    return images, cams, info, flat, titles


def fake_volume_cases(n: int = 4, channels: int = 2, shape: tuple[int, int, int] = (16, 24, 24)):
    rng = np.random.default_rng(2)
    images = np.stack([[100 * _blob(shape, (8, 12, 12), 6) + rng.normal(0, 5, shape) for _ in range(channels)]
                       for _ in range(n)])
    cams = np.stack([_blob(shape, (3 + 3 * i, 9, 15), 3) for i in range(n)])
    return images, cams, _case_info(n)


def fake_habitat(size: int = 96):
    rng = np.random.default_rng(3)
    brain = 35 * (_blob((size, size), (48, 48), 30) > 0.2) + rng.normal(0, 3, (size, size)) - 1000 * (
        _blob((size, size), (48, 48), 30) <= 0.2)
    lesion = _blob((size, size), (40, 55), 8)
    image = brain + 40 * (lesion > 0.3)
    habitat = np.where(lesion > 0.8, 1, np.where(lesion > 0.55, 2, np.where(lesion > 0.3, 3, 0)))
    return image, habitat


@pytest.fixture(scope="module")
def predictions() -> pd.DataFrame:
    return fake_predictions()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ---------------------------------------------------------------- helpers
def _texts(fig: plt.Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(Text)]


def _legend_texts(ax) -> list[str]:
    legend = ax.get_legend() or ax.figure.legends[0]  # an axes legend, or the figure's (calibration)
    return [t.get_text() for t in legend.get_texts()]


def _line_color(ax, label_start: str) -> str:
    line = next(ln for ln in ax.get_lines() if ln.get_label().startswith(label_start))
    return matplotlib.colors.to_hex(line.get_color())


def _saves(fig: plt.Figure, path) -> None:
    fig.savefig(path, dpi=60)  # low resolution: fast, and enough to prove it renders
    assert path.stat().st_size > 2_000


def _drawn_tick_labels(axis, limits) -> list[Text]:
    lo, hi = sorted(limits)
    return [label for tick, label in zip(axis.get_ticklocs(), axis.get_ticklabels()) if lo <= tick <= hi]


def _no_overlapping_text(fig: plt.Figure) -> None:
    """Titles, axis labels, tick labels and legends neither overlap nor leave the figure once drawn."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = []
    for ax in fig.axes:
        items = [ax.title, *([ax.get_legend()] if ax.get_legend() else [])]
        if ax.axison:
            items += [ax.xaxis.label, ax.yaxis.label, *_drawn_tick_labels(ax.xaxis, ax.get_xlim()),
                      *_drawn_tick_labels(ax.yaxis, ax.get_ylim())]
        boxes += [(ax, item.get_window_extent(renderer)) for item in items if item.get_visible()
                  and (not isinstance(item, Text) or item.get_text())]
    for i, (_, a) in enumerate(boxes):
        assert 0 <= a.x0 and a.x1 <= fig.bbox.width + 1 and 0 <= a.y0 and a.y1 <= fig.bbox.height + 1, \
            "text cut off at the figure edge"
        for _, b in boxes[i + 1:]:
            assert not a.overlaps(b), "two texts overlap"


# ---------------------------------------------------------------- performance figures
def test_roc(predictions, tmp_path):
    fig = plots.plot_roc(predictions, set_name="test")
    (ax,) = fig.axes
    assert len(ax.get_lines()) == 1 + len(MODELS)
    legend = _legend_texts(ax)
    assert legend[0] == "Chance" and len(legend) == 1 + len(MODELS)
    for model, text in zip(MODELS, legend[1:]):
        assert text.startswith(model) and "AUC" in text and "–" in text
    assert "DeLong" in ax.get_legend().get_title().get_text()
    assert "n = 100" in ax.get_title()
    _saves(fig, tmp_path / "roc.png")
    _no_overlapping_text(fig)


def test_roc_auc_in_legend_matches_stats(predictions):
    from medlib.stats import auc_ci

    rows = predictions[(predictions["set"] == "val") & (predictions["model"] == MODELS[1])]
    est = auc_ci(rows["y_true"], rows["score"])
    legend = _legend_texts(plots.plot_roc(predictions, set_name="val").axes[0])
    assert f"AUC {est.value:.3f} ({est.lo:.3f}–{est.hi:.3f})" in legend[2]


def test_roc_curve_through_tied_scores_is_straight():
    """Tied scores give a diagonal segment (pROC, scikit-learn), not a staircase below the curve."""
    preds = pd.DataFrame({"model": "m", "set": "test", "case_id": list("abcdef"), "y_true": [0, 1, 0, 1, 0, 1],
                          "score": [0.2, 0.5, 0.5, 0.9, 0.1, 0.7]})
    line = plots.plot_roc(preds, set_name="test").axes[0].get_lines()[1]
    x, y = line.get_path().vertices.T
    area = np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2)  # the area under the drawn line
    assert area == pytest.approx(8.5 / 9)  # Mann-Whitney by hand: the tie counts 1/2


def test_calibration(predictions, tmp_path):
    fig = plots.plot_calibration(predictions, set_name="test", n_bins=5)
    ax, hist = fig.axes
    legend = _legend_texts(ax)
    assert legend[0] == "Perfect calibration" and len(legend) == 1 + len(MODELS)
    assert all("LOWESS" in t and "intercept" in t and "slope" in t for t in legend[1:])
    assert len(ax.collections) >= len(MODELS)  # a bootstrap band per model (and the binned points' error bars)
    assert "LOWESS with bootstrap 95% band" in fig.legends[0].get_title().get_text()
    assert "Wilson 95% CI" in fig.legends[0].get_title().get_text()
    assert len(hist.patches) == len(MODELS)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # the long legend sits outside the plot, never over the curves
    assert not fig.legends[0].get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))
    _saves(fig, tmp_path / "calibration.png")
    _no_overlapping_text(fig)


def test_decision_curve(predictions, tmp_path):
    fig = plots.plot_decision_curve(predictions, set_name="val")
    (ax,) = fig.axes
    assert _legend_texts(ax) == [*MODELS, "Treat all (all cases of the set)", "Treat none"]
    assert "bootstrap 95%" in ax.get_legend().get_title().get_text() and "(tuning set)" in ax.get_title()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # beside the plot, never over the curves
    assert not ax.get_legend().get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))
    model_line = ax.get_lines()[0]
    assert model_line.get_xdata()[0] == pytest.approx(0.01) and model_line.get_xdata()[-1] == pytest.approx(0.9)
    _saves(fig, tmp_path / "dca.png")
    _no_overlapping_text(fig)


def test_same_colour_for_a_model_in_every_figure(predictions):
    only_two = predictions[~((predictions["set"] == "test") & (predictions["model"] == MODELS[0]))]
    colours = plots.model_colors(MODELS)
    assert len(set(colours.values())) == len(MODELS)
    assert plots.model_colors(list(MODELS) * 2) == colours
    for fig in (plots.plot_roc(predictions, set_name="test"), plots.plot_calibration(predictions, set_name="test"),
                plots.plot_decision_curve(predictions, set_name="test"),
                plots.plot_roc(only_two, set_name="test")):  # a model missing from the set keeps the others' colours
        ax = fig.axes[0]
        for model in MODELS:
            if any(ln.get_label().startswith(model) for ln in ax.get_lines()):
                assert _line_color(ax, model) == colours[model].lower()
    learning = plots.plot_learning_curves(fake_histories()).axes[1]
    for model in MODELS[:2]:
        assert _line_color(learning, model) == colours[model].lower()


def test_confusion_matrices_count_like_a_hand_count(predictions, tmp_path):
    labels = ("no ONFH collapse", "ONFH collapse")  # long labels must not run into each other
    fig = plots.plot_confusion_matrices(predictions, THRESHOLDS, set_name="test", labels=labels)
    assert len(fig.axes) == len(MODELS)
    test = predictions[predictions["set"] == "test"]
    for ax, model in zip(fig.axes, MODELS):
        rows = test[test["model"] == model]
        pred = rows["score"] >= THRESHOLDS[model]
        y = rows["y_true"] == 1
        expected = [(~y & ~pred).sum(), (~y & pred).sum(), (y & ~pred).sum(), (y & pred).sum()]
        cells = [t for t in ax.texts]
        counts = [int(t.get_text().split("\n")[0]) for t in cells]
        assert counts == expected and sum(counts) == 100
        cell_of = {(round(t.get_position()[1]), round(t.get_position()[0])): int(t.get_text().split("\n")[0])
                   for t in cells}  # (actual row, predicted column)
        assert cell_of[(1, 0)] == (y & ~pred).sum()  # false negatives: actual positive, predicted negative
        assert model in ax.get_title() and f"{THRESHOLDS[model]:.3f}" in ax.get_title()
        assert [t.get_text().replace("\n", " ") for t in ax.get_xticklabels()] == list(labels)
    _saves(fig, tmp_path / "confusion.png")
    _no_overlapping_text(fig)


def test_confusion_matrices_missing_threshold(predictions):
    with pytest.raises(KeyError, match="no threshold for model 'DenseNet-121'"):
        plots.plot_confusion_matrices(predictions, {"ResNet-18": 0.5}, set_name="test")


@pytest.mark.parametrize("plot", [plots.plot_roc, plots.plot_calibration, plots.plot_decision_curve,
                                  lambda p, set_name: plots.plot_confusion_matrices(p, THRESHOLDS,
                                                                                    set_name=set_name)])
def test_a_set_without_predictions(predictions, plot):
    with pytest.raises(ValueError, match=r"no predictions on the 'external' set; sets present: \['test', 'val'\]"):
        plot(predictions, set_name="external")


def test_learning_curves(tmp_path):
    fig = plots.plot_learning_curves(fake_histories())
    loss_ax, auc_ax = fig.axes
    assert len(loss_ax.get_lines()) == 4 and len(_legend_texts(loss_ax)) == 4
    assert _legend_texts(auc_ax) == list(MODELS[:2])
    assert len(auc_ax.collections) == 2  # the kept epoch of each model
    _saves(fig, tmp_path / "learning.png")
    _no_overlapping_text(fig)


# ---------------------------------------------------------------- images, no identifiers
def test_example_images(tmp_path):
    *_, images, titles = fake_cam_cases(n=3, views=2)
    fig = plots.plot_example_images(images, titles, ncols=4)
    assert len(fig.axes) == 8  # 6 images in 2 rows of 4
    assert [ax.get_title() for ax in fig.axes[:6]] == titles
    assert all(not ax.images for ax in fig.axes[6:])
    _saves(fig, tmp_path / "examples.png")


@pytest.mark.parametrize("views", [1, 2])
def test_cam_gallery_titles_show_case_ids_only(tmp_path, views):
    images, cams, info, *_ = fake_cam_cases(n=5, views=views, size=32)
    fig = plots.plot_cam_gallery(images, cams, info, view_names=["AP", "frog-leg"][:views])
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 5 * views
    text = "\n".join(_texts(fig))
    assert SECRET not in text
    for case, group in zip(info["case_id"], info["group"]):
        assert f"{group} · {case}" in text
    overlay = panels[0].images[0].get_array()
    assert overlay.shape == (32, 32, 3)
    _saves(fig, tmp_path / f"cam{views}.png")
    _no_overlapping_text(fig)


def test_cam_volume_gallery(tmp_path):
    images, cams, info = fake_volume_cases()
    fig = plots.plot_cam_volume_gallery(images, cams, info, view_names=["T1", "T2"], n_slices=3)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 4 * 3 and len(fig.axes) == 2 * 9 + 1  # 3 cases a row, 2 rows, and the colour bar
    assert len({round(ax.get_position().y0, 3) for ax in panels}) == 2  # cases side by side, not one column
    text = "\n".join(_texts(fig))
    assert SECRET not in text and "T1 slice" in text
    for i, case in enumerate(info["case_id"]):
        assert case in panels[3 * i].get_title()
    _saves(fig, tmp_path / "volume.png")
    _no_overlapping_text(fig)


def test_no_identifier_in_any_figure(predictions):
    images, cams, info, flat, titles = fake_cam_cases(n=4, size=32)
    figures = [plots.plot_roc(predictions, set_name="test"), plots.plot_calibration(predictions, set_name="test"),
               plots.plot_decision_curve(predictions, set_name="test"),
               plots.plot_confusion_matrices(predictions, THRESHOLDS, set_name="test"),
               plots.plot_example_images(flat, titles), plots.plot_cam_gallery(images, cams, info),
               plots.plot_cam_volume_gallery(*fake_volume_cases())]
    for fig in figures:
        assert not [t for t in _texts(fig) if SECRET in t]


def test_habitat_map(tmp_path):
    image, habitat = fake_habitat()
    fig = plots.plot_habitat_map(image, habitat, title="Case test-007")
    assert len(fig.axes) == 2
    assert _legend_texts(fig.axes[1]) == ["Habitat 1", "Habitat 2", "Habitat 3"]
    assert fig.get_suptitle() == "Case test-007"
    assert [ax.get_title() for ax in fig.axes] == ["Slice", "Habitat subregions"]  # no study's anatomy named
    lo, hi = np.percentile(image, [1, 99])
    assert fig.axes[0].images[0].get_clim() == pytest.approx((lo, hi))
    _saves(fig, tmp_path / "habitat.png")
    _no_overlapping_text(fig)


def test_habitat_map_window():
    image, habitat = fake_habitat()
    fig = plots.plot_habitat_map(image, habitat, window=(40, 100))  # (centre, width), as in the config
    assert fig.axes[0].get_title() == "Slice (window 40/100)"
    assert all(ax.images[0].get_clim() == (-10, 90) for ax in fig.axes)  # one window for both panels


def test_habitat_map_needs_a_region():
    with pytest.raises(ValueError, match="habitat_slice has no labelled voxel"):
        plots.plot_habitat_map(np.zeros((8, 8)), np.zeros((8, 8), int))


def test_figures_use_no_global_style(predictions):
    before = dict(matplotlib.rcParams)
    plots.plot_roc(predictions, set_name="test")
    assert dict(matplotlib.rcParams) == before


def test_a_set_without_events_gets_a_sentence_not_a_crash(predictions):
    """Acceptance: no events / one class / fewer than 5 cases -> a message on the figure, never NaN, never a crash."""
    part = predictions[(predictions["set"] == "test") & (predictions["y_true"] == 0)]
    for plot in (plots.plot_roc, plots.plot_calibration, plots.plot_decision_curve):
        fig = plot(part, set_name="test")
        texts = " ".join(t.get_text() for t in fig.axes[0].texts)
        assert "not estimable: no events" in texts and "nan" not in texts.lower()


def test_decision_curve_uses_recalibrated_risks_and_says_so(predictions):
    from medlib.pipelines.record import freeze_recalibration
    from medlib.stats import net_benefit

    recal = freeze_recalibration(predictions)
    fig = plots.plot_decision_curve(predictions, set_name="test", recalibration=recal, thresholds=[0.1, 0.3, 0.5])
    ax = fig.axes[0]
    assert "recalibrated on the validation set" in ax.get_title()
    rows = predictions[(predictions["set"] == "test") & (predictions["model"] == MODELS[0])]
    expected = net_benefit(rows["y_true"], recal[MODELS[0]].apply(rows["score"]), [0.1, 0.3, 0.5])
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), expected["net_benefit_model"])
