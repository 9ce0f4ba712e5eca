"""Every public statistic reproduces what the hand-written code returned before the library refactor.

``golden/expected.json`` was captured from the hand-written implementations (Wilson interval, Holm and
Bonferroni, ROC points, reliability bins, Table 1 summaries) on the pROC and dcurves reference data and on
random data; the cases are defined in ``golden/cases.py``. Numbers must agree to 1e-10, strings, dtypes,
shapes, warnings and error messages exactly.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"


def _load_cases_module():
    spec = importlib.util.spec_from_file_location("medlib_stats_golden_cases", GOLDEN / "cases.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


golden = _load_cases_module()
EXPECTED = json.loads((GOLDEN / "expected.json").read_text())


@pytest.fixture(scope="module")
def cases(reference_dir):
    return golden.all_cases(reference_dir)


def test_every_case_is_captured(cases):
    assert sorted(cases) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reproduces_captured_output(cases, name):
    diffs = golden.compare(EXPECTED[name], golden.run_case(cases[name]))
    assert not diffs, f"{name}: {len(diffs)} difference(s), first: " + "; ".join(diffs[:5])
