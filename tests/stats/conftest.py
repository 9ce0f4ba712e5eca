"""Fixtures for the statistics tests: the pROC aSAH data and expected values, the dcurves data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="session")
def asah(reference_dir: Path) -> pd.DataFrame:
    """pROC's aSAH data, with ``y`` = 1 for outcome "Poor" (pROC's cases)."""
    df = pd.read_csv(reference_dir / "proc" / "asah.csv")
    return df.assign(y=(df["outcome"] == "Poor").astype(int))


@pytest.fixture(scope="session")
def proc_expected(reference_dir: Path) -> dict:
    """Values asserted by pROC 1.19.0.1's own test suite."""
    return json.loads((reference_dir / "proc" / "expected.json").read_text())


@pytest.fixture(scope="session")
def dcurves_df(reference_dir: Path) -> pd.DataFrame:
    return pd.read_csv(reference_dir / "dcurves" / "df_binary.csv")


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
