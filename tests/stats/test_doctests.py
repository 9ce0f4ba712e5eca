"""Every statistics docstring example runs and gives the printed result."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["roc", "delong", "bootstrap", "compare", "metrics", "calibration", "dca", "table1", "multitest",
           "results", "_validate"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"medlib.stats.{name}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in medlib.stats.{name}"


def test_public_api_is_exported():
    import medlib.stats as stats

    for name in stats.__all__:
        assert hasattr(stats, name), name
    for name in ["auc", "roc_curve", "auc_ci", "delong_test", "delong_unpaired_test", "compare_models",
                 "wilson_ci", "choose_threshold", "binary_metrics", "calibration", "net_benefit",
                 "decision_curve", "table1", "UndefinedMetricWarning", "check_binary_scores"]:
        assert name in stats.__all__, name
