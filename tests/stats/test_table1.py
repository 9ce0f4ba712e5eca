"""medlib.stats.table1: aSAH by outcome, hand-checked against pandas/scipy, and piece by piece against tableone."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from tableone import TableOne

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


def run_tableone(df: pd.DataFrame, by: str, categorical: list[str], continuous: list[str],
                 nonnormal: list[str]) -> TableOne:
    """Python tableone on the same columns (missing values not counted as a level), its warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tableone's own notes and pandas deprecation warnings
        return TableOne(df, columns=[*continuous, *categorical], categorical=categorical, continuous=continuous,
                        groupby=by, nonnormal=nonnormal, include_null=False, pval=True, htest_name=True,
                        smd=df[by].nunique() == 2)


def cohort(seed: int, groups: tuple[str, ...]) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(30, 250))
    g = rng.choice(list(groups), size=n)
    df = pd.DataFrame({"group": g, "age": np.round(rng.normal(60, 12, n), 0),
                       "bmi": np.round(rng.normal(26, 4, n), 1), "crp": np.round(rng.lognormal(1, 1, n), 2),
                       "sex": rng.choice(["F", "M"], size=n),
                       "stage": rng.choice(["I", "II", "III"], size=n, p=[0.5, 0.3, 0.2])})
    df.loc[rng.choice(n, size=5, replace=False), "crp"] = np.nan
    df.loc[rng.choice(n, size=3, replace=False), "stage"] = np.nan
    return df


COHORT = {"categorical": ["sex", "stage"], "continuous": ["age", "bmi", "crp"]}
COHORT_DESIGNS = [(s, ("A", "B")) for s in range(6)] + [(s, ("x", "y", "z")) for s in range(6, 10)]


@pytest.mark.parametrize("seed, groups", COHORT_DESIGNS)
def test_medians_quartiles_and_counts_equal_tableone(seed, groups):
    df = cohort(seed, groups)
    ref = run_tableone(df, "group", **COHORT, nonnormal=[])
    desc, cat = ref.cont_describe, ref.cat_describe
    for col in COHORT["continuous"]:
        for g in groups:
            values = df.loc[df["group"] == g, col].dropna().to_numpy()
            quartiles = [desc[k][g].loc[col] for k in ("median", "q25", "q75")]
            assert np.percentile(values, [50, 25, 75]).tolist() == quartiles
            assert values.mean() == pytest.approx(desc["mean"][g].loc[col], rel=1e-13)  # summation order only
            assert values.std(ddof=1) == pytest.approx(desc["std"][g].loc[col], rel=1e-13)
    table = table1(df, by="group", **COHORT, nonnormal=None)
    for level in ("F", "M", "I", "II", "III"):
        row = table[table["level"] == level].iloc[0]
        var = "sex" if level in ("F", "M") else "stage"
        assert [int(row[g].split(" ")[0]) for g in groups] == [cat["freq"][g].loc[(var, level)] for g in groups]


def test_a_mean_on_a_rounding_boundary_prints_differently_in_tableone():
    """Why means and SDs stay NumPy's: pandas' grouped mean sums in another order (last bit differs)."""
    values = [20.4, 28.2, 24.2, 28.3, 20.1, 23.7]  # mean 24.15, a rounding boundary at one decimal
    df = pd.DataFrame({"g": ["a"] * 6 + ["b"] * 2, "x": [*values, 1.0, 2.0]})
    ref = run_tableone(df, "g", [], ["x"], [])
    assert ref.cont_describe["mean"]["a"].loc["x"] == 24.150000000000002 != np.mean(values) == 24.149999999999995
    assert table1(df, by="g", decimals=1, nonnormal=None).loc[1, "a"] == "24.1 ± 3.6"


@pytest.mark.parametrize("seed, groups", COHORT_DESIGNS)
def test_p_values_equal_tableone_where_the_tests_agree(seed, groups):
    df = cohort(seed, groups)
    facts = table1_tests(df, by="group", **COHORT).set_index("variable")
    skewed = facts.index[facts["nonnormal"]].tolist()
    ref = run_tableone(df, "group", **COHORT, nonnormal=skewed).htest_table
    same = {"Welch t-test": "Welch’s T-test", "one-way ANOVA": "One-way ANOVA", "Kruskal-Wallis": "Kruskal-Wallis",
            "chi-square test": "Chi-squared", "chi-square test (Yates)": "Chi-squared",
            "Fisher's exact test": "Fisher's exact"}
    compared = 0
    for var, fact in facts.iterrows():
        if fact["test"] == "Mann-Whitney U":  # tableone: Kruskal-Wallis for two non-normal groups
            assert ref.loc[var, "Test"] == "Kruskal-Wallis"
            continue
        assert ref.loc[var, "Test"] == same[fact["test"]]
        assert fact["p_value"] == pytest.approx(ref.loc[var, "P-Value"], rel=1e-12)
        compared += 1
    assert compared >= 3


def test_smd_matches_tableone(asah, facts):
    ref = run_tableone(asah, "outcome", ["gender", "wfns"], ["age", "s100b"], [])
    for var in ("age", "s100b", "gender", "wfns"):
        assert facts.loc[var, "smd"] == pytest.approx(abs(float(ref.smd_table.loc[var].iloc[0])), rel=1e-9)


def test_singular_smd_uses_the_generalised_inverse_like_r_tableone():
    """Group a has one level only and b lacks it: the averaged covariance is singular. R's tableone
    (MASS::ginv) and smd_categorical give sqrt(2); Python's tableone (numpy.linalg.inv) gives NaN."""
    df = pd.DataFrame({"g": ["a"] * 4 + ["b"] * 6, "stage": ["II"] * 4 + ["I"] * 3 + ["III"] * 3})
    assert table1_tests(df, by="g", categorical=["stage"])["smd"].tolist() == pytest.approx([math.sqrt(2)])
    assert smd_categorical([0, 4, 0], [3, 0, 3]) == pytest.approx(math.sqrt(2))
    assert np.isnan(float(run_tableone(df, "g", ["stage"], [], []).smd_table.loc["stage"].iloc[0]))


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


def test_sets_split_at_random_get_smds_not_p_values_and_count_patients(asah):
    """Table 1 by set (issue 15, item 12): one SMD column per set against the first, equal to tableone's
    pairwise SMD, no p-value; patients and rows counted separately (item 4)."""
    rng = np.random.default_rng(0)
    df = asah.assign(set=pd.Categorical(rng.choice(["train", "val", "test"], len(asah)),
                                        categories=["train", "val", "test"]), pid=np.arange(len(asah)) // 2)
    out = table1(df, by="set", categorical=["gender"], continuous=["age"], nonnormal=None, compare="smd",
                 patient="pid", unit="hips")
    assert "p-value" not in out.columns and "test" in out.columns  # "test" is the group here
    assert list(out.columns[-2:]) == ["SMD train vs val", "SMD train vs test"]
    assert out.iloc[0, :4].tolist() == ["n (hips)", "", "", str(len(df))]
    assert out.iloc[1]["Overall"] == str(df["pid"].nunique())
    assert out.iloc[1]["val"] == str(df.loc[df["set"] == "val", "pid"].nunique())
    ref = TableOne(df[["age", "gender", "set"]], columns=["age", "gender"], categorical=["gender"],
                   groupby="set", smd=True, pval=False)
    smd = ref.smd_table
    age = out[out["variable"].str.startswith("age")].iloc[0]
    col = [c for c in smd.columns if "train" in c and "val" in c][0]
    assert float(age["SMD train vs val"]) == pytest.approx(abs(float(smd.loc["age", col])), abs=1e-3)
    tests = table1(df, by="set", categorical=["gender"], continuous=["age"], nonnormal=None)
    assert "p-value" in tests.columns  # by outcome the tests stay
