"""Tests for medlib.data.imaging.window: the DICOM VOI window functions (PS3.3 C.11.2.1.2-3), the linear
display window and the clip, the one owner of windowing (viewer, preprocessing, ICH slices)."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pytest

from medlib.data.imaging import window as window_module
from medlib.data.imaging.window import apply_window, check_window, clip_window, linear_window


def test_doctest() -> None:
    assert doctest.testmod(window_module).failed == 0


@pytest.mark.parametrize("function, x, expected", [
    ("LINEAR", [-161.5, 40, 241.5], [0.0, (40 - 39.5) / 399 + 0.5, 1.0]),  # ends of C.11.2.1.2.1, centre
    ("LINEAR_EXACT", [-160, 40, 240], [0.0, 0.5, 1.0]),
    ("SIGMOID", [40, 40 + 100, -1e6], [0.5, 1 / (1 + np.exp(-1.0)), 0.0]),
])
def test_functions(function: str, x: list[float], expected: list[float]) -> None:
    out = apply_window(np.array(x), 40, 400, function=function)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_width_one_is_a_threshold_and_input_is_untouched() -> None:
    values = np.array([99.0, 99.5, 99.6, 100.0])
    np.testing.assert_array_equal(apply_window(values, 100, 1), [0, 0, 1, 1])
    np.testing.assert_array_equal(values, [99.0, 99.5, 99.6, 100.0])


@pytest.mark.parametrize("kwargs, message", [
    ({"width": 0.5}, r"a LINEAR window needs a width >= 1; got 0\.5"),
    ({"width": 0, "function": "SIGMOID"}, r"a SIGMOID window needs a width > 0; got 0"),
    ({"width": 10, "function": "GAMMA"}, r"VOI LUT function must be one of \['LINEAR', 'LINEAR_EXACT', 'SIGMOID'\]"),
])
def test_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        apply_window(np.zeros(3), 0, **kwargs)


def test_check_window() -> None:
    assert check_window([40, "400"]) == (40.0, 400.0)
    for bad in (None, (1, 2, 3), ("a", 1)):
        with pytest.raises(ValueError, match=r"window must be \(center, width\), two numbers"):
            check_window(bad)


# ------------------------------------------------ one owner: the copies it replaced, frozen as they were
def _viewer_window_image(array, center, width):
    """medlib.viewer.browser.window_image before the redesign (float64 arithmetic)."""
    values = np.asarray(array, dtype=np.float64)
    return np.clip((values - (float(center) - float(width) / 2)) / float(width), 0.0, 1.0).astype(np.float32)


def _radiomics_window(image, window):
    """medlib.radiomics.features._window before the redesign (float32 arithmetic)."""
    centre, width = window
    low = centre - width / 2
    return np.clip((image.astype(np.float32) - low) / width, 0.0, 1.0)


def _linear_exact(values, center, width):
    """apply_window(function="LINEAR_EXACT") before the redesign."""
    values = np.asarray(values, dtype=np.float64)
    return np.clip((values - center) / width + 0.5, 0.0, 1.0).astype(np.float32)


def _arrays(reference_dir):
    from medlib.data.imaging import read_image

    ref = Path(reference_dir)
    arrays = [read_image(p).array for p in sorted((ref / "images").glob("*.png"))]
    arrays.append(read_image(ref / "dicom" / "dx_chest" / "nih_cxr14_no_finding.dcm").array)
    arrays.append(read_image(ref / "dicom" / "mr_t1_series").array[::5])
    with np.load(ref / "medmnist" / "adrenalmnist3d.npz") as data:
        arrays.append(data["test_images"][:3].astype(np.float32))
    rng = np.random.default_rng(11)
    return arrays + [rng.normal(0, 500, (64, 80)).astype(np.float32), rng.normal(0, 500, (64, 80))]


def test_linear_window_gives_the_answers_of_the_copies_it_replaced(reference_dir) -> None:
    """Bit for bit what the ICH slices and DICOM LINEAR_EXACT computed; the viewer's display to 1e-5 (it
    computed in float64, the window now follows the input's float32, which the display cannot show)."""
    for array in _arrays(reference_dir):
        before = array.copy()
        for center, width in [(40.0, 80.0), (float(np.median(array)), float(array.std()) + 1), (0.1, 0.3),
                              (1000.5, 3.1)]:
            new = linear_window(array, center, width)
            assert new.dtype == np.float32
            if array.dtype == np.float32:
                np.testing.assert_array_equal(new, _radiomics_window(array, (center, width)))
            np.testing.assert_array_equal(apply_window(array, center, width, function="LINEAR_EXACT"),
                                          _linear_exact(array, center, width))
            np.testing.assert_allclose(new, _viewer_window_image(array, center, width), rtol=0, atol=1e-5)
        np.testing.assert_array_equal(array, before)


def test_linear_window_equals_monai_scale_intensity_range(reference_dir) -> None:
    from monai.transforms import ScaleIntensityRange

    for array in _arrays(reference_dir)[:4]:
        center, width = float(np.median(array)), float(array.std()) + 1
        monai = ScaleIntensityRange(center - width / 2, center + width / 2, 0.0, 1.0, clip=True)(array)
        np.testing.assert_array_equal(linear_window(array, center, width), np.asarray(monai))


@pytest.mark.parametrize("function", [linear_window, clip_window])
@pytest.mark.parametrize("width", [0, -3, float("nan")])
def test_windows_reject_a_width_that_is_not_positive(function, width) -> None:
    with pytest.raises(ValueError, match=r"window width must be > 0; got (0|-3|nan)$"):
        function(np.zeros(3), 0, width)


def test_clip_window_keeps_units_and_dtype() -> None:
    values = np.linspace(-1000, 1000, 11, dtype=np.float32)
    out = clip_window(values, 40, 80)
    assert out.dtype == np.float32 and out.min() == 0.0 and out.max() == 80.0
    np.testing.assert_array_equal(out, np.clip(values, 0.0, 80.0))
    assert values.min() == -1000  # the input is untouched
