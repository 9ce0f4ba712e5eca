"""Golden outputs of every public :mod:`medlib.stats` function, captured before the library refactor.

``expected.json`` beside this file holds what the hand-written code (commit cf465e7) returned for each case
below: numbers, strings, table shapes and dtypes, the warnings it issued and the errors it raised. The
refactor replaced hand-written pieces with statsmodels, scikit-learn and tableone; ``test_golden.py`` proves
the new code reproduces every case (numbers to 1e-10, strings and warnings exactly).

Regenerate only on purpose, when a behaviour change is intended and reviewed:
``.venv/bin/python tests/stats/golden/cases.py --write``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import medlib.stats as st
from medlib.stats.table1 import format_p, smd_categorical, smd_continuous

HERE = Path(__file__).resolve().parent
EXPECTED = HERE / "expected.json"
MARKERS = ("wfns", "s100b", "ndka")


# ---------------------------------------------------------------------------------------------- data


def _scores(seed: int, n: int, *, ties: int | None = None, prevalence: float = 0.4) -> tuple:
    """Labels and scores; ``ties`` rounds the scores to that many decimals (many tied scores)."""
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=n) < prevalence).astype(int)
    s = rng.normal(size=n) + 0.8 * y
    return y, (np.round(s, ties) if ties is not None else s)


def _probs(seed: int, n: int, *, ties: int | None = None, extremes: bool = False) -> tuple:
    rng = np.random.default_rng(seed)
    p = 1 / (1 + np.exp(-rng.normal(-0.3, 1.4, n)))
    y = (rng.uniform(size=n) < np.clip(1.3 * p - 0.1, 0, 1)).astype(int)
    if ties is not None:
        p = np.round(p, ties)
    if extremes:
        p[:3], p[3:6] = 0.0, 1.0
    return y, p


def _predictions(seed: int, n: int = 90, models: tuple = ("cnn", "radiomics", "fusion")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=n) < 0.35).astype(int)
    frames = []
    for set_name in ("val", "test"):
        for k, m in enumerate(models):
            s = 1 / (1 + np.exp(-(rng.normal(size=n) + (0.5 + 0.4 * k) * (2 * y - 1))))
            frames.append(pd.DataFrame({"case_id": np.arange(n), "patient_id": np.arange(n) // 2, "model": m,
                                        "set": set_name, "y_true": y, "score": np.round(s, 3)}))
    return pd.concat(frames, ignore_index=True)


def _cohort(seed: int, n: int = 160, groups: tuple = ("A", "B"), missing: bool = True,
            categorical_by: bool = False) -> pd.DataFrame:
    """A baseline table: normal, skewed and integer variables; binary, 3-level and sparse categorical ones."""
    rng = np.random.default_rng(seed)
    g = rng.choice(list(groups), size=n, p=np.r_[0.55, np.full(len(groups) - 1, 0.45 / (len(groups) - 1))])
    shift = np.array([list(groups).index(v) for v in g])
    df = pd.DataFrame({
        "group": g,
        "age": np.round(rng.normal(55 + 2.5 * shift, 12), 0),
        "bmi": np.round(rng.normal(26 + 0.5 * shift, 4), 1),
        "crp": np.round(rng.lognormal(1 + 0.3 * shift, 1.0), 2),
        "marker": rng.gamma(2.0, 0.05 + 0.02 * shift),
        "lesions": rng.poisson(2 + shift),
        "sex": rng.choice(["F", "M"], size=n, p=[0.45, 0.55]),
        "stage": rng.choice(["I", "II", "III"], size=n, p=[0.5, 0.3, 0.2]),
        "smoker": rng.choice([0, 1], size=n, p=[0.93, 0.07]),
        "site": rng.choice([1, 2, 10], size=n),
    })
    if missing:
        for col, k in (("age", 4), ("crp", 7), ("sex", 3), ("stage", 5)):
            df.loc[rng.choice(n, size=k, replace=False), col] = np.nan
    if categorical_by:
        df["group"] = pd.Categorical(df["group"], categories=list(reversed(groups)) + ["unused"])
        df["stage"] = pd.Categorical(df["stage"], categories=["III", "II", "I", "IV"])
    return df


# --------------------------------------------------------------------------------------------- cases


def _roc_cases(asah: pd.DataFrame) -> dict[str, Callable[[], Any]]:
    y = asah["y"].to_numpy()
    cases: dict[str, Callable[[], Any]] = {}
    datasets = {f"asah_{m}": (y, asah[m].to_numpy()) for m in MARKERS}
    datasets |= {"rand_small": _scores(1, 9), "rand_ties": _scores(2, 300, ties=0),
                 "rand_ties1": _scores(3, 250, ties=1), "rand_large": _scores(4, 700),
                 "rand_rare": _scores(5, 400, prevalence=0.05), "two": ([0, 1], [0.3, 0.3]),
                 "one_case": ([0, 0, 0, 1], [0.1, 0.2, 0.3, 0.9]), "one_class": ([1, 1, 1, 1], [0.1, 0.2, 0.3, 0.4]),
                 "bool_int_scores": ([False, True, True, False, True], [3, 3, 4, 1, 2])}
    for name, (yy, ss) in datasets.items():
        cases[f"auc/{name}"] = lambda yy=yy, ss=ss: st.auc(yy, ss)
        cases[f"roc_curve/{name}"] = lambda yy=yy, ss=ss: st.roc_curve(yy, ss)
        cases[f"delong_var/{name}"] = lambda yy=yy, ss=ss: st.delong_var(yy, ss)
        cases[f"auc_ci_delong/{name}"] = lambda yy=yy, ss=ss: st.auc_ci(yy, ss, transform="none")
        cases[f"auc_ci_delong90/{name}"] = lambda yy=yy, ss=ss: st.auc_ci(yy, ss, level=0.9, transform="none")
        cases[f"auc_ci_boot/{name}"] = lambda yy=yy, ss=ss: st.auc_ci(yy, ss, method="bootstrap", n_boot=300, seed=3)
        cases[f"bootstrap_auc/{name}"] = lambda yy=yy, ss=ss: st.bootstrap_auc(yy, ss, n_boot=50, seed=11)
        cases[f"threshold_youden/{name}"] = lambda yy=yy, ss=ss: st.choose_threshold(yy, ss)
        cases[f"threshold_sens/{name}"] = lambda yy=yy, ss=ss: st.choose_threshold(yy, ss, method="sensitivity",
                                                                                   target=0.8)
    ys, ss = _scores(6, 240, ties=1)
    cases["auc_ci_boot_groups"] = lambda: st.auc_ci(ys, ss, method="bootstrap", n_boot=400, seed=5,
                                                    groups=np.arange(240) // 3)
    cases["auc_ci_boot_groups_warn"] = lambda: st.auc_ci([1, 0, 0, 1, 1, 1, 1], [0.9, 0.1, 0.95, 0.8, 0.3, 0.7, 0.6],
                                                         method="bootstrap", n_boot=200, groups=[0, 0, 0, 1, 2, 3, 4])
    cases["bootstrap_auc_groups"] = lambda: st.bootstrap_auc(ys, ss, n_boot=40, seed=2, groups=np.arange(240) % 37)
    cases["delong_cov/asah"] = lambda: st.delong_cov(y, [asah[m] for m in MARKERS])
    cases["delong_cov/array"] = lambda: st.delong_cov(ys, np.vstack([ss, ss[::-1], np.round(ss)]))
    cases["delong_cov/one_class"] = lambda: st.delong_cov([0, 0, 0], [[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]])
    for a, b in (("wfns", "s100b"), ("wfns", "ndka"), ("ndka", "s100b"), ("s100b", "s100b")):
        cases[f"delong_test/{a},{b}"] = lambda a=a, b=b: st.delong_test(y, asah[a], asah[b])
        cases[f"delong_test80/{a},{b}"] = lambda a=a, b=b: st.delong_test(y, asah[a], asah[b], level=0.8)
        cases[f"delong_unpaired/{a},{b}"] = lambda a=a, b=b: st.delong_unpaired_test(y, asah[a], y[::-1], asah[b])
    y1, s1 = _scores(7, 150, ties=1)
    y2, s2 = _scores(8, 90)
    cases["delong_test/rand"] = lambda: st.delong_test(y1, s1, np.round(s1 + np.random.default_rng(1).normal(
        size=150), 1))
    cases["delong_unpaired/rand"] = lambda: st.delong_unpaired_test(y1, s1, y2, s2, level=0.9)
    cases["delong_unpaired/one_class"] = lambda: st.delong_unpaired_test([1, 1], [0.1, 0.2], y2, s2)
    cases["delong_unpaired/few"] = lambda: st.delong_unpaired_test([0, 1, 1], [0.1, 0.2, 0.3], y2, s2)
    cases["delong_test/one_class"] = lambda: st.delong_test([0, 0], [0.1, 0.2], [0.2, 0.1])
    cases["delong_test/one_case"] = lambda: st.delong_test([0, 0, 1], [0.1, 0.2, 0.3], [0.2, 0.1, 0.3])
    preds = _predictions(9)
    for adjust in ("holm", "bonferroni", None):
        cases[f"compare_models/{adjust}"] = lambda adjust=adjust: st.compare_models(preds, adjust=adjust)
    cases["compare_models/test_only"] = lambda: st.compare_models(preds, set_name="test")
    cases["compare_models/one_model"] = lambda: st.compare_models(preds[preds["model"] == "cnn"])
    partial = preds[~((preds["model"] == "fusion") & (preds["case_id"] < 17))]
    cases["compare_models/partial"] = lambda: st.compare_models(partial)
    cases["compare_models/bad_adjust"] = lambda: st.compare_models(preds, adjust="fdr")
    cases["compare_models/bad_set"] = lambda: st.compare_models(preds, set_name="external")
    cases["decision_curve/preds"] = lambda: st.decision_curve(preds, np.round(np.arange(0, 100, 3) / 100, 2))
    cases["decision_curve/test"] = lambda: st.decision_curve(preds, [0.05, 0.1, 0.2, 0.5], set_name="test")
    return cases


def _metric_cases() -> dict[str, Callable[[], Any]]:
    cases: dict[str, Callable[[], Any]] = {}
    for k, n in ((0, 0), (0, 1), (1, 1), (0, 10), (10, 10), (7, 50), (1, 3), (49, 50), (113, 250), (5, 5000),
                 (2499, 5000), (3, 7)):
        for level in (0.95, 0.9, 0.99, 0.5):
            cases[f"wilson_ci/{k},{n},{level}"] = lambda k=k, n=n, level=level: st.wilson_ci(k, n, level=level)
    cases["wilson_ci/float_counts"] = lambda: st.wilson_ci(7.0, 50.0)
    cases["wilson_ci/np_counts"] = lambda: st.wilson_ci(np.int64(7), np.int64(50))
    for bad in ((8, 7), (-1, 5), (1.5, 4), (True, 4)):
        cases[f"wilson_ci/bad{bad}"] = lambda bad=bad: st.wilson_ci(*bad)
    cases["wilson_ci/bad_level"] = lambda: st.wilson_ci(3, 5, level=1.0)
    for seed in range(6):
        y, s = _scores(20 + seed, 120 + 37 * seed, ties=1 if seed % 2 else None)
        cases[f"binary_metrics/{seed}"] = lambda y=y, s=s: st.binary_metrics(y, s, 0.4, n_boot=300, seed=1)
    cases["binary_metrics/threshold_obj"] = lambda: st.binary_metrics(
        *_scores(30, 200), st.choose_threshold(*_scores(31, 200)), level=0.9, n_boot=100)
    cases["binary_metrics/all_negative_calls"] = lambda: st.binary_metrics([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], 0.9)
    cases["binary_metrics/one_class"] = lambda: st.binary_metrics([0, 0, 0], [0.1, 0.6, 0.3], 0.5, n_boot=20)
    cases["metrics_table"] = lambda: st.metrics_table({
        "a": st.binary_metrics(*_scores(32, 80), 0.5, n_boot=50), "b": st.binary_metrics(*_scores(33, 60), 0.2)})
    cases["threshold_fixed"] = lambda: st.choose_threshold([0, 1], [0.2, 0.7], method="fixed", target=0.5)
    cases["threshold_one_class"] = lambda: st.choose_threshold([1, 1], [0.2, 0.7])
    cases["threshold_bad"] = lambda: st.choose_threshold([0, 1], [0.2, 0.7], method="youden", target=0.5)
    return cases


def _multitest_cases() -> dict[str, Callable[[], Any]]:
    cases: dict[str, Callable[[], Any]] = {}
    rng = np.random.default_rng(40)
    families = {"rand25": rng.uniform(0, 0.2, 25), "rand200": rng.uniform(size=200),
                "ties": np.array([0.01, 0.02, 0.02, 0.02, 0.04, 0.5, 0.5, 1.0]),
                "nan": np.array([0.01, np.nan, 0.03, np.nan, 0.2]), "all_nan": np.array([np.nan, np.nan]),
                "single": np.array([0.02]), "zeros_ones": np.array([0.0, 1.0, 0.0, 0.3]),
                "scalar": 0.03, "list": [0.01, 0.04, 0.03]}
    for name, p in families.items():
        for method in ("holm", "bonferroni", None):
            cases[f"adjust_pvalues/{name}/{method}"] = lambda p=p, method=method: st.adjust_pvalues(p, method)
    cases["adjust_pvalues/default"] = lambda: st.adjust_pvalues([0.01, 0.04, 0.03])
    cases["adjust_pvalues/bad_method"] = lambda: st.adjust_pvalues([0.1], "fdr_bh")
    cases["adjust_pvalues/bad_p"] = lambda: st.adjust_pvalues([0.1, 1.2], "holm")
    cases["adjust_pvalues/neg_p"] = lambda: st.adjust_pvalues([-0.1, np.nan], None)
    return cases


def _calibration_cases() -> dict[str, Callable[[], Any]]:
    cases: dict[str, Callable[[], Any]] = {}
    datasets = {"rand": _probs(50, 800), "ties2": _probs(51, 500, ties=2), "ties1": _probs(52, 300, ties=1),
                "extremes": _probs(53, 200, extremes=True), "small": _probs(54, 12),
                "const": (np.array([0, 1, 0, 1, 1]), np.full(5, 0.4)), "sep": ([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]),
                "one_class": ([1, 1, 1], [0.2, 0.5, 0.9]), "edges": ([0, 1, 0, 1, 1], [0.0, 0.2, 0.4, 0.6, 1.0])}
    for name, (y, p) in datasets.items():
        for strategy in ("quantile", "uniform"):
            for n_bins in (1, 3, 10):
                cases[f"reliability_curve/{name}/{strategy}/{n_bins}"] = (
                    lambda y=y, p=p, strategy=strategy, n_bins=n_bins:
                    st.reliability_curve(y, p, n_bins=n_bins, strategy=strategy))
        cases[f"calibration/{name}"] = lambda y=y, p=p: st.calibration(y, p)
        cases[f"calibration90/{name}"] = lambda y=y, p=p: st.calibration(y, p, n_bins=5, strategy="uniform",
                                                                         level=0.9)
    cases["reliability_curve/level"] = lambda: st.reliability_curve(*_probs(55, 400), n_bins=7, level=0.8)
    cases["reliability_curve/bad_bins"] = lambda: st.reliability_curve([0, 1], [0.2, 0.3], n_bins=0)
    cases["reliability_curve/bad_bins_float"] = lambda: st.reliability_curve([0, 1], [0.2, 0.3], n_bins=2.5)
    cases["reliability_curve/bad_strategy"] = lambda: st.reliability_curve([0, 1], [0.2, 0.3], strategy="kmeans")
    cases["reliability_curve/bad_p"] = lambda: st.reliability_curve([0, 1], [0.2, 1.3])
    return cases


def _dca_cases(dcurves: pd.DataFrame) -> dict[str, Callable[[], Any]]:
    y = dcurves["cancer"].to_numpy()
    cases: dict[str, Callable[[], Any]] = {
        f"net_benefit/{col}": lambda col=col: st.net_benefit(y, dcurves[col].to_numpy())
        for col in ("famhistory", "cancerpredmarker")}
    cases["net_benefit/thresholds"] = lambda: st.net_benefit(y, dcurves["cancerpredmarker"], [0.0, 0.05, 0.5, 0.95])
    cases["net_benefit/bad"] = lambda: st.net_benefit(y, dcurves["cancerpredmarker"], [0.5, 1.0])
    return cases


def _table1_cases(asah: pd.DataFrame) -> dict[str, Callable[[], Any]]:
    cases: dict[str, Callable[[], Any]] = {}
    args = {"by": "outcome", "categorical": ["gender", "wfns"], "continuous": ["age", "s100b", "ndka"]}
    frames = {"asah": (asah, args),
              "asah_default": (asah.drop(columns=["rowname", "y"]), {"by": "outcome", "categorical": ["gender"]}),
              "asah_gos6": (asah, {"by": "gos6", "categorical": ["gender"], "continuous": ["age", "s100b"]}),
              "asah_gender": (asah, {"by": "gender", "categorical": ["outcome", "wfns"], "continuous": ["ndka"]})}
    cont, cat = ["age", "bmi", "crp", "marker", "lesions"], ["sex", "stage", "smoker", "site"]
    for seed in range(8):
        groups = ("A", "B") if seed < 5 else ("ctrl", "low", "high")
        frames[f"cohort{seed}"] = (_cohort(60 + seed, n=40 + 45 * seed, groups=groups, missing=seed % 2 == 0,
                                           categorical_by=seed in (3, 6)),
                                   {"by": "group", "categorical": cat, "continuous": cont})
    frames["cohort_small"] = (_cohort(70, n=14), {"by": "group", "categorical": cat, "continuous": cont})
    frames["cohort_default"] = (_cohort(71).drop(columns=["sex", "stage"]), {"by": "group", "categorical": ["site"]})
    frames["cohort_nonnormal_none"] = (_cohort(72), {"by": "group", "categorical": cat, "continuous": cont,
                                                     "nonnormal": None})
    frames["cohort_nonnormal_list"] = (_cohort(73), {"by": "group", "categorical": cat, "continuous": cont,
                                                     "nonnormal": ["age", "marker"]})
    frames["cohort_by_int"] = (_cohort(74).assign(group=lambda d: (d["group"] == "B").astype(int)),
                               {"by": "group", "categorical": ["sex"], "continuous": ["age"]})
    degenerate = pd.DataFrame({"g": ["a"] * 4 + ["b"] * 4 + ["c"],
                               "x": [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 5.0],
                               "y": [1.0, 2.0, 3.0, np.nan, 4.0, np.nan, np.nan, np.nan, 7.0],
                               "sex": ["F", "F", "F", "F", "M", "M", "M", "M", "F"],
                               "arm": ["t", "t", "c", "c", "t", "c", "t", "c", np.nan]})
    frames["degenerate3"] = (degenerate, {"by": "g", "categorical": ["sex", "arm"]})
    frames["degenerate2"] = (degenerate[degenerate["g"] != "c"], {"by": "g", "categorical": ["sex", "arm"]})
    sparse = pd.DataFrame({"g": ["a"] * 10 + ["b"] * 10, "sex": ["F"] * 9 + ["M"] + ["F"] * 3 + ["M"] * 7,
                           "x": np.r_[np.arange(10.0), np.arange(10.0) + 3]})
    frames["fisher"] = (sparse, {"by": "g", "categorical": ["sex"]})
    frames["fisher_unused_level"] = (sparse.assign(sex=pd.Categorical(sparse["sex"], categories=["M", "X", "F"])),
                                     {"by": "g", "categorical": ["sex"]})
    frames["separated"] = (pd.DataFrame({"g": ["a"] * 6 + ["b"] * 6, "sex": ["F"] * 6 + ["M"] * 6,
                                         "x": np.r_[np.arange(6.0), np.arange(6.0) + 10]}),
                           {"by": "g", "categorical": ["sex"]})
    for name, (df, kw) in frames.items():
        cases[f"table1_tests/{name}"] = lambda df=df, kw=kw: st.table1_tests(
            df, **{k: v for k, v in kw.items() if k in ("by", "categorical", "continuous", "nonnormal")})
        cases[f"table1/{name}"] = lambda df=df, kw=kw: st.table1(df, **kw)
    cases["table1/asah_labels_decimals"] = lambda: st.table1(asah, **args, labels={"age": "Age (years)",
                                                                                   "wfns": "WFNS grade"}, decimals=2)
    cases["table1/asah_nonnormal_list"] = lambda: st.table1(asah, **args, nonnormal=["age"], decimals=0)
    cases["table1/non_unique_index"] = lambda: st.table1(pd.concat([asah.iloc[:40], asah.iloc[:40]]), **args)
    group_named = _cohort(75).assign(group=lambda d: d["group"].map({"A": "Test", "B": "Missing"}))
    cases["table1/reserved_group_names"] = lambda: st.table1(group_named, by="group", categorical=["sex"],
                                                             continuous=["age", "crp"])
    cases["table1/only_categorical"] = lambda: st.table1(asah, by="outcome", categorical=["gender"], continuous=[])
    cases["table1/errors_key"] = lambda: st.table1(asah, by="sex")
    cases["table1/errors_cont"] = lambda: st.table1(asah, by="outcome", continuous=["gender"])
    cases["table1/errors_nonnormal"] = lambda: st.table1(asah, by="outcome", nonnormal="shapiro")
    cases["table1/errors_labels"] = lambda: st.table1(asah, by="outcome", continuous=["age"], labels={"sex": "S"})
    cases["table1/errors_one_group"] = lambda: st.table1(asah[asah["outcome"] == "Good"], by="outcome")
    cases["table1/errors_missing_by"] = lambda: st.table1(asah.assign(outcome=asah["outcome"].where(asah.index > 0)),
                                                          by="outcome")
    for a, b in (([1, 2, 3], [2, 3, 4]), ([1.5, 2.5, 9.0, 4.0], [0.1, 0.2]), ([1, 1], [1, 1]), ([1, 1], [2, 2]),
                 (np.arange(50.0), np.arange(30.0) ** 1.5)):
        cases[f"smd_continuous/{a},{b}"] = lambda a=a, b=b: smd_continuous(a, b)
    for a, b in (([30, 70], [50, 50]), ([10, 10], [10, 10]), ([5, 3, 2], [1, 6, 3]), ([0, 4, 6], [3, 0, 7]),
                 ([0, 6], [6, 0]), ([4, 0, 0], [0, 2, 2]), ([12, 30, 1, 7], [9, 11, 0, 30])):
        cases[f"smd_categorical/{a},{b}"] = lambda a=a, b=b: smd_categorical(a, b)
    for p in (0.0271, 0.00001, 0.001, 0.0009999, 0.0495, 0.9996, 1.0, float("nan")):
        cases[f"format_p/{p}"] = lambda p=p: format_p(p)
    return cases


def all_cases(reference_dir: Path) -> dict[str, Callable[[], Any]]:
    """Every golden case, by name; each is a call of a public function on fixed data."""
    asah = pd.read_csv(reference_dir / "proc" / "asah.csv")
    asah = asah.assign(y=(asah["outcome"] == "Poor").astype(int))
    dcurves = pd.read_csv(reference_dir / "dcurves" / "df_binary.csv")
    return {**_roc_cases(asah), **_metric_cases(), **_multitest_cases(), **_calibration_cases(),
            **_dca_cases(dcurves), **_table1_cases(asah)}


# ------------------------------------------------------------------------------------------- encoding


def encode(obj: Any) -> Any:
    """A JSON-able description of a result: values (floats exactly, as JSON numbers), types, dtypes, shapes."""
    if isinstance(obj, pd.DataFrame):
        return {"__frame__": {"columns": [str(c) for c in obj.columns], "dtypes": [str(t) for t in obj.dtypes],
                              "index": [encode(i) for i in obj.index],
                              "data": [[encode(v) for v in obj[c].tolist()] for c in obj.columns]}}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {"__dataclass__": type(obj).__name__,
                "fields": {f.name: encode(getattr(obj, f.name)) for f in dataclasses.fields(obj)}}
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": str(obj.dtype), "shape": list(obj.shape), "data": [encode(v) for v in obj.ravel()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [encode(v) for v in obj]}
    if isinstance(obj, list):
        return [encode(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj)
    if isinstance(obj, str) or obj is None:
        return obj
    raise TypeError(f"cannot encode {type(obj).__name__}")


def run_case(func: Callable[[], Any]) -> dict[str, Any]:
    """Call ``func`` and record its result or error and every warning it issued (category and message)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out: dict[str, Any] = {"result": encode(func())}
        except Exception as err:  # noqa: BLE001 - the error itself is the recorded behaviour
            out = {"error": [type(err).__name__, str(err)]}
    out["warnings"] = [[w.category.__name__, str(w.message)] for w in caught]
    return out


def compare(expected: Any, actual: Any, path: str = "", rel: float = 1e-10, abs_: float = 1e-10) -> list[str]:
    """Differences between two encodings: floats within ``rel``/``abs_``, everything else (types too) exactly."""
    if type(expected) is not type(actual):
        return [f"{path}: expected {type(expected).__name__} {expected!r}, got {type(actual).__name__} {actual!r}"]
    if isinstance(expected, float):
        if math.isnan(expected) and math.isnan(actual) or expected == actual \
                or math.isclose(expected, actual, rel_tol=rel, abs_tol=abs_):
            return []
        return [f"{path}: expected {expected!r}, got {actual!r}"]
    if isinstance(expected, dict):
        if expected.keys() != actual.keys():
            return [f"{path}: keys {sorted(expected)} != {sorted(actual)}"]
        return [d for k in expected for d in compare(expected[k], actual[k], f"{path}/{k}", rel, abs_)]
    if isinstance(expected, list):
        if len(expected) != len(actual):
            return [f"{path}: length {len(expected)} != {len(actual)}"]
        return [d for i, (e, a) in enumerate(zip(expected, actual)) for d in compare(e, a, f"{path}[{i}]", rel, abs_)]
    return [] if expected == actual else [f"{path}: expected {expected!r}, got {actual!r}"]


def dump(results: dict[str, Any]) -> str:
    """JSON with one case per line (floats round-trip exactly; NaN and Infinity as Python's json writes them)."""
    lines = [f"{json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in sorted(results.items())]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _reference_dir() -> Path:
    root = HERE.parents[2]
    for c in (root.parent / "shared" / "reference", root / ".." / "shared" / "reference"):
        if c.is_dir():
            return c.resolve()
    raise FileNotFoundError("reference data not found beside the project root")


if __name__ == "__main__":
    if "--write" not in sys.argv:
        sys.exit("pass --write to overwrite expected.json with the current outputs")
    results = {name: run_case(func) for name, func in all_cases(_reference_dir()).items()}
    EXPECTED.write_text(dump(results))
    print(f"wrote {len(results)} cases to {EXPECTED}")
