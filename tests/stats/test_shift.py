"""Shift between development and external data: SMDs against tableone and by hand, the membership model's AUC
against scikit-learn's cross_val_predict + roc_auc_score."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from medlib.stats.shift import membership_auc, membership_design, smd_categorical, smd_numeric, \
    standardized_differences


def _sets(shift=0.0, n=120, seed=0):
    rng = np.random.default_rng(seed)
    dev = pd.DataFrame({"age": rng.normal(60, 10, n), "sex": rng.choice(["F", "M"], n),
                        "site": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])})
    ext = pd.DataFrame({"age": rng.normal(60 + 10 * shift, 10, n), "sex": rng.choice(["F", "M"], n),
                        "site": rng.choice(["a", "b", "c"], n, p=[0.2, 0.3, 0.5] if shift else [0.5, 0.3, 0.2])})
    return dev, ext


def test_smd_matches_tableone_and_hand():
    from tableone import TableOne

    dev, ext = _sets(shift=0.5)
    both = pd.concat([dev.assign(g="dev"), ext.assign(g="ext")], ignore_index=True)
    t = TableOne(both, columns=["age", "sex", "site"], categorical=["sex", "site"], groupby="g", smd=True, pval=False)
    ref = t.smd_table.iloc[:, 0].astype(float)
    got = standardized_differences(dev, ext, ["age", "sex", "site"], categorical=["sex", "site"])
    for var in ("age", "sex", "site"):
        assert abs(got.set_index("variable").loc[var, "smd"]) == pytest.approx(abs(ref.loc[var]), abs=1e-3)
    p1, p2 = (dev.sex == "M").mean(), (ext.sex == "M").mean()  # binary SMD by hand
    assert smd_categorical(dev.sex, ext.sex) == pytest.approx(abs(p1 - p2) / math.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / 2))
    a, b = dev.age.to_numpy(), ext.age.to_numpy()
    assert smd_numeric(a, b) == pytest.approx((a.mean() - b.mean()) / math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2))
    assert got.set_index("variable").loc["age", "flagged"]


def test_membership_auc_matches_sklearn_and_reads_the_shift():
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    dev, ext = _sets(shift=1.0)
    dev.loc[:5, "age"] = np.nan
    x, member = membership_design(dev, ext, ["age", "sex", "site"], categorical=["sex", "site"])
    est, prob = membership_auc(x, member, seed=2)
    model = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
                          LogisticRegression(max_iter=2000))
    ref = cross_val_predict(model, x.to_numpy(float), member, cv=StratifiedKFold(5, shuffle=True, random_state=2),
                            method="predict_proba")[:, 1]
    assert np.allclose(prob, ref)
    assert est.value == pytest.approx(roc_auc_score(member, ref))
    assert est.value > 0.75 and est.lo < est.value < est.hi
    none, _ = membership_auc(*membership_design(*_sets(shift=0.0, seed=5), ["age", "sex", "site"]), seed=0)
    assert none.lo < 0.5 + 0.1 and none.value < 0.65


def test_missing_column_is_named():
    dev, ext = _sets()
    with pytest.raises(KeyError, match="vendor"):
        standardized_differences(dev, ext, ["age", "vendor"])
