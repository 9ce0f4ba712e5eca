"""medlib.stats._validate: the boundary checks and their messages."""

from __future__ import annotations

import numpy as np
import pytest

from medlib.stats._validate import (
    UndefinedMetricWarning,
    both_classes,
    check_binary_scores,
    check_labels,
    check_probabilities,
)


@pytest.mark.parametrize("labels, expected", [
    ([0, 1, 1], [0, 1, 1]),
    ([True, False], [1, 0]),
    ([0.0, 1.0], [0, 1]),
    (np.array([1, 1], dtype=np.uint8), [1, 1]),
])
def test_labels_accepted(labels, expected):
    assert check_labels(labels).tolist() == expected


@pytest.mark.parametrize("labels, match", [
    ([0, 1, 2], r"got values \[0, 1, 2\]"),
    ([-1, 1], r"got values \[-1, 1\]"),
    (["no", "yes"], r"got values \['no', 'yes'\]"),
    ([0.5, 1], r"got values \[0.5, 1.0\]"),
    (list(range(20)), r"\.\.\. \(20 distinct\)"),
])
def test_labels_rejected(labels, match):
    with pytest.raises(ValueError, match=match):
        check_labels(labels)


def test_check_binary_scores_returns_new_typed_arrays():
    y_in, s_in = [0, 1], [1, 2]
    y, s = check_binary_scores(y_in, s_in)
    assert y.dtype == np.int8 and s.dtype == np.float64 and y_in == [0, 1]


@pytest.mark.parametrize("scores, match", [
    ([0.1, np.inf, -np.inf], r"y_score has 2 NaN or infinite value\(s\) out of 3"),
    ([0.1, 0.2], "y_true and y_score must have one entry per case; got 3 and 2"),
])
def test_scores_rejected(scores, match):
    with pytest.raises(ValueError, match=match):
        check_binary_scores([0, 1, 1], scores)


def test_probabilities_and_one_class():
    with pytest.raises(ValueError, match=r"1 value\(s\) lie outside \(min -0.2, max 0.5\)"):
        check_probabilities([-0.2, 0.5])
    with pytest.warns(UndefinedMetricWarning, match=r"all 2 cases are negative \(0\)"):
        assert not both_classes(np.array([0, 0]), "X")
    assert both_classes(np.array([0, 1]), "X")
