"""The CAM gallery figure (``medlib.report.cam``): per case the image, the overlay, the lesion outline and the
map's maximum; a colour bar; a readable size; volumes at the map's maximum and at the lesion's centre."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from medlib.report.cam import PAGE_WIDTH, lesion_centre_slice, plot_cam_cases  # noqa: E402

GROUPS = ["TP", "TP", "FN", "FN", "FP", "FP"]


def _gallery(dims: int, views: int = 1, masks: bool = True):
    rng = np.random.default_rng(0)
    shape = (32, 32) if dims == 2 else (12, 32, 32)
    n = len(GROUPS)
    images = rng.normal(size=(n, views, *shape)).astype(np.float32)
    cams = np.zeros((n, *shape), np.float32)
    lesion = np.zeros((n, *shape), bool)
    for i in range(n):
        if dims == 2:
            lesion[i, 10:16, 20:26] = True
            cams[i, 12, 22] = 1.0
        else:
            lesion[i, 7:10, 10:16, 20:26] = True   # centroid slice 8
            cams[i, 3, 12, 22] = 1.0               # the map's maximum on slice 3
    cases = pd.DataFrame({"case_id": [f"case-{i}" for i in range(n)], "group": GROUPS,
                          "score": np.linspace(0.9, 0.1, n), "y_true": [1, 1, 1, 1, 0, 0]})
    return SimpleNamespace(model="ResNet18", images=images, cams=cams, cases=cases,
                           views=tuple(["AP", "frog-leg"][:views]), spatial_dims=dims,
                           masks=lesion if masks else None)


def _panels(fig):
    return [ax for ax in fig.axes if ax.images]


def _titles(fig):
    return [ax.get_title(loc="left") for ax in fig.axes]


@pytest.mark.parametrize("views", [1, 2])
def test_2d_gallery_has_image_overlay_outline_and_colour_bar(tmp_path, views):
    fig = plot_cam_cases(_gallery(2, views))
    panels = _panels(fig)
    assert len(panels) == 6 * (views + 1)  # per case: the image, the overlay, the other view
    assert sum(bool(ax.collections) for ax in panels) == 6 * 2  # the lesion outline on image and overlay
    assert fig.get_size_inches()[0] == pytest.approx(PAGE_WIDTH)
    fig.canvas.draw()  # the layout engine places the panels when drawing
    width = panels[0].get_position().width * PAGE_WIDTH
    # readable when printed at the page width: 4 panels a row (one view) about 1.5 in, 6 (two views) about 1 in;
    # the gallery this replaces printed volume panels at about 0.7 in
    assert width > (1.4 if views == 1 else 0.95), f"panels {width:.2f} in wide"
    titles = "\n".join(_titles(fig))
    for case, group in zip([f"case-{i}" for i in range(6)], GROUPS):
        assert f"{group} · {case}" in titles
    assert any(ax.get_ylabel() == "Grad-CAM (relative to the case's peak)" for ax in fig.axes)  # colour bar
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["lesion outline (white)", "map maximum"]
    fig.savefig(tmp_path / "cam.png")


def test_gallery_names_the_maps_method():
    """Maps from a layer before the last block are HiResCAM's: the title and colour bar say so."""
    fig = plot_cam_cases(SimpleNamespace(**{**vars(_gallery(2)), "method": "HiResCAM"}))
    assert fig._suptitle.get_text() == "ResNet18: HiResCAM on test cases"
    assert any(ax.get_ylabel() == "HiResCAM (relative to the case's peak)" for ax in fig.axes)
    assert not any("Grad-CAM" in t for t in _titles(fig))


def test_3d_gallery_shows_the_maps_maximum_and_the_lesions_central_slice(tmp_path):
    fig = plot_cam_cases(_gallery(3))
    titles = _titles(fig)
    assert sum("slice 3 (map max)" in t for t in titles) == 6
    assert sum("slice 8 (lesion)" in t for t in titles) == 6
    assert len(_panels(fig)) == 18
    fig.canvas.draw()
    assert _panels(fig)[0].get_position().width * PAGE_WIDTH > 0.95
    fig.savefig(tmp_path / "cam3d.png")


def test_without_masks_no_outline_and_no_legend_entry():
    fig = plot_cam_cases(_gallery(2, masks=False))
    assert not any(ax.collections for ax in _panels(fig))
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["map maximum"]
    fig3 = plot_cam_cases(_gallery(3, masks=False))
    assert sum("(map max)" in t for t in _titles(fig3)) == 6


def test_lesion_centre_slice_and_errors():
    mask = np.zeros((10, 4, 4), bool)
    mask[2:5] = True       # slices 2, 3, 4 with equal area: centroid 3
    mask[9, 0, 0] = True   # one voxel on slice 9 moves it by 6 / 49
    assert lesion_centre_slice(mask) == 3
    assert lesion_centre_slice(np.zeros((5, 2, 2))) is None
    with pytest.raises(ValueError, match="spatial_dims must be 2 or 3; got 1"):
        plot_cam_cases(SimpleNamespace(**{**vars(_gallery(2)), "spatial_dims": 1}))
    empty = _gallery(2)
    empty.cases = empty.cases.iloc[:0]
    with pytest.raises(ValueError, match="has no case"):
        plot_cam_cases(empty)
