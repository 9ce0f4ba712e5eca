"""medlib.stats.table1: aSAH by outcome, hand-checked against pandas/scipy and tableone's SMDs."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from medlib.stats import table1, table1_tests
from medlib.stats.table1 import smd_categorical

ARGS = {"by": "outcome", "categorical": ["gender", "wfns"], "continuous": ["age", "s100b", "ndka"]}


@pytest.fixture(scope="module")
def facts(asah):
    return table1_tests(asah, **ARGS).set_index("variable")


@pytest.fixture(scope="module")
def table(asah):
    return table1(asah, **ARGS, labels={"age": "Age (years)"})


def test_tests_chosen_by_stated_rules(facts):
    assert facts["test"].to_dict() == {
        "age": "Welch t-test", "s100b": "Mann-Whitney U", "ndka": "Mann-Whitney U",
        "gender": "chi-square test (Yates)", "wfns": "chi-square test (expected count < 5)"}
    assert facts["nonnormal"].to_dict() == {"age": False, "s100b": True, "ndka": True, "gender": False,
                                            "wfns": False}
    assert (facts["missing"] == 0).all()


def test_p_values_equal_scipy(asah, facts):
    good, poor = (asah.loc[asah["outcome"] == g] for g in ("Good", "Poor"))
    assert facts.loc["gender", "p_value"] == pytest.approx(
        stats.chi2_contingency(pd.crosstab(asah["outcome"], asah["gender"]))[1], rel=1e-12)
    assert facts.loc["age", "p_value"] == pytest.approx(
        stats.ttest_ind(good["age"], poor["age"], equal_var=False).pvalue, rel=1e-12)
    assert facts.loc["s100b", "p_value"] == pytest.approx(
        stats.mannwhitneyu(good["s100b"], poor["s100b"]).pvalue, rel=1e-12)
    assert facts.loc["gender", "p_value"] == pytest.approx(0.0845, abs=5e-5)


def test_summaries_by_hand(asah, table):
    age = table[table["variable"] == "Age (years), mean ± SD"].iloc[0]
    for group in ("Good", "Poor"):
        values = asah.loc[asah["outcome"] == group, "age"]
        assert age[group] == f"{values.mean():.1f} ± {values.std():.1f}"
    assert (age["Good"], age["Poor"], age["p-value"], age["SMD"]) == ("48.9 ± 13.8", "55.0 ± 13.3", "0.024", "0.446")
    s100b = table[table["variable"] == "s100b, median [Q1, Q3]"].iloc[0]
    assert s100b["Poor"] == "0.300 [0.120, 0.560]" and s100b["p-value"] == "<0.001"
    assert table.iloc[0][["variable", "Overall", "Good", "Poor"]].tolist() == ["n", "113", "72", "41"]


def test_categorical_rows(table):
    female = table[table["level"] == "Female"].iloc[0]
    male = table[table["level"] == "Male"].iloc[0]
    assert female["variable"] == "gender, n (%)" and male["variable"] == ""
    assert (female["Good"], female["Poor"], female["Overall"]) == ("50 (69.4)", "21 (51.2)", "71 (62.8)")
    assert male["p-value"] == "" and female["test"].startswith("chi-square")
    assert table[table["variable"].str.startswith("wfns")]["level"].tolist() == ["1"]
    assert list(table.columns) == ["variable", "level", "missing", "Overall", "Good", "Poor", "p-value", "test",
                                   "SMD"]
    assert "| Age (years), mean ± SD |" in table.to_markdown(index=False)


def test_smd_matches_tableone(asah, facts):
    tableone = pytest.importorskip("tableone")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tableone's own pandas deprecation warnings
        ref = tableone.TableOne(asah, columns=["age", "s100b", "gender", "wfns"], categorical=["gender", "wfns"],
                                groupby="outcome", smd=True, pval=False)
    for var in ("age", "s100b", "gender", "wfns"):
        assert facts.loc[var, "smd"] == pytest.approx(float(ref.smd_table.loc[var].iloc[0]), rel=1e-9)


@pytest.mark.parametrize("a, b, expected", [
    ([30, 70], [50, 50], 0.2 / np.sqrt((0.21 + 0.25) / 2)),
    ([10, 10], [10, 10], 0.0),
])
def test_smd_categorical_two_levels(a, b, expected):
    assert smd_categorical(a, b) == pytest.approx(expected)


def test_fisher_for_sparse_2x2_and_tests_for_three_groups():
    df = pd.DataFrame({"g": ["a"] * 10 + ["b"] * 10, "sex": ["F"] * 9 + ["M"] + ["F"] * 3 + ["M"] * 7,
                       "x": np.r_[np.arange(10.0), np.arange(10.0) + 3]})
    facts = table1_tests(df, by="g", categorical=["sex"]).set_index("variable")
    assert facts.loc["sex", "test"] == "Fisher's exact test"
    assert facts.loc["sex", "p_value"] == pytest.approx(stats.fisher_exact([[9, 1], [3, 7]]).pvalue)
    three = df.assign(g=["a", "b", "c", "d"] * 5)
    t3 = table1_tests(three, by="g", categorical=["sex"], nonnormal=None).set_index("variable")
    assert t3.loc["x", "test"] == "one-way ANOVA" and np.isnan(t3.loc["x", "smd"])
    t3 = table1_tests(three, by="g", nonnormal=["x"]).set_index("variable")
    assert t3.loc["x", "test"] == "Kruskal-Wallis"
    assert "SMD" not in table1(three, by="g").columns


def test_missing_counted_and_input_not_mutated(asah):
    df = asah.copy()
    df.loc[:4, "age"] = np.nan
    df.loc[:1, "gender"] = np.nan
    before = df.copy()
    facts = table1_tests(df, **ARGS).set_index("variable")
    assert facts.loc["age", "missing"] == 5 and facts.loc["gender", "missing"] == 2
    pd.testing.assert_frame_equal(df, before)
    female = table1(df, **ARGS).set_index("level").loc["Female"]
    assert female["Overall"].endswith(f"({100 * (df['gender'] == 'Female').sum() / 111:.1f})")


def test_default_continuous_is_numeric_columns(asah):
    facts = table1_tests(asah.drop(columns=["rowname", "y"]), by="outcome", categorical=["gender"])
    assert facts["variable"].tolist() == ["gos6", "age", "wfns", "s100b", "ndka", "gender"]


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"by": "sex"}, KeyError, r"column\(s\) \['sex'\] not in the data frame"),
    ({"by": "outcome", "continuous": ["gender"]}, ValueError, r"continuous column\(s\) \['gender'\] are not numeric"),
    ({"by": "outcome", "nonnormal": "shapiro"}, ValueError, "nonnormal must be 'auto', a list of column names or None"),
    ({"by": "outcome", "continuous": ["age"], "nonnormal": ["ndka"]}, ValueError, r"nonnormal names \['ndka'\]"),
    ({"by": "outcome", "continuous": ["age"], "labels": {"sex": "Sex"}}, KeyError, r"labels for unknown variable\(s\)"),
])
def test_errors(asah, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        table1(asah, **kwargs)


def test_group_column_errors(asah):
    with pytest.raises(ValueError, match=r"grouping column 'outcome' has 1 missing value\(s\)"):
        table1(asah.assign(outcome=asah["outcome"].where(asah.index > 0)), by="outcome")
    with pytest.raises(ValueError, match="needs at least 2 groups; got \\['Good'\\]"):
        table1(asah[asah["outcome"] == "Good"], by="outcome")
