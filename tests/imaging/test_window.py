"""Tests for medlib.data.imaging.window: the DICOM VOI window functions (PS3.3 C.11.2.1.2-3)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from medlib.data.imaging import window as window_module
from medlib.data.imaging.window import apply_window, check_window


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
