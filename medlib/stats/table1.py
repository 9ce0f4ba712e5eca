"""Table 1: baseline characteristics by group, with tests and standardised mean differences.

Rules (stated so a methods section can quote them):

* Continuous variables: mean ± SD when treated as normal, median [Q1, Q3] (linear-interpolation quartiles,
  R type 7) otherwise. With ``nonnormal="auto"`` a variable is non-normal when the Shapiro-Wilk test gives
  p < 0.05 in any group (groups with fewer than 3 values or no spread are not tested).
* Continuous tests: two groups, Welch's t-test (unequal variances) if normal, Mann-Whitney U (two-sided;
  SciPy's default: exact for small samples without ties, else normal approximation with continuity
  correction) if not; more groups, one-way ANOVA or Kruskal-Wallis.
* Categorical variables: n (%) with percentages of the non-missing values in each column; Pearson's
  chi-square test (Yates' continuity correction for 2x2, as R's ``chisq.test``), replaced by Fisher's exact
  test for a 2x2 table with any expected count < 5.
* SMD (two groups only): absolute standardised mean difference, (m1 - m2) / sqrt((s1^2 + s2^2) / 2) for
  continuous variables and the multinomial form of Yang & Dalton (2012) for categorical ones, as R's
  ``tableone`` (Yoshida) and Python's ``tableone`` (Pollard et al. 2018) compute them (but see below for a
  singular covariance).
* Missing: count of missing values per variable (over all groups); tests use the non-missing values.

Counting: one row is one unit; the ``n`` row and the n (%) counts are numbers of rows, not of distinct
patients. Pass one row per patient to describe patients.

Why this module does not call the Python ``tableone`` package (Pollard et al. 2018, *JAMIA Open* 1:26-31),
piece by piece (each point is a test in ``tests/stats/test_table1.py``):

* Medians, quartiles and counts per level: ``tableone`` gives the same numbers, from the same NumPy
  percentiles and pandas cross-tabulation this module calls; the per-group values and the contingency table
  also feed the tests below, which ``tableone`` cannot run, so it would compute them a second time.
* Means and SDs: ``tableone`` takes them from pandas' grouped aggregation, whose summation order differs
  from NumPy's in the last bit. That changes the printed value when a mean lies on a rounding boundary:
  the mean of 20.4, 28.2, 24.2, 28.3, 20.1 and 23.7 prints as 24.1 here and 24.2 in ``tableone`` (14 of
  4,612 summaries of random cohorts differed).
* Tests: ``tableone`` reports no test statistic, uses Kruskal-Wallis for two non-normal groups (the rule
  here is Mann-Whitney U), runs an ANOVA when a group has a single value, and skips a variable with an empty
  group. Where both run the same test, the p-values are equal.
* Normality: ``tableone`` has no automatic rule (its ``nonnormal`` is a list); the Shapiro-Wilk rule is ours.
* SMD: equal for ordinary tables; but ``tableone`` inverts the covariance with ``numpy.linalg.inv`` and
  returns NaN when it is singular (e.g. one group has a single level), where R's ``tableone`` uses the
  generalised inverse ``MASS::ginv`` as :func:`smd_categorical` does, and it takes the SD of a one-value
  group as 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

SHAPIRO_ALPHA = 0.05
NONNORMAL_RULE = "Shapiro-Wilk p < 0.05 in any group"


# ------------------------------------------------------------------------------------------- Columns


def _resolve_columns(df: pd.DataFrame, by: str, categorical: Sequence[str],
                     continuous: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """Check the named columns and return (categorical, continuous) lists."""
    named = [by, *categorical, *(continuous or ())]
    missing = [c for c in named if c not in df.columns]
    if missing:
        raise KeyError(f"column(s) {missing} not in the data frame. Available: {list(df.columns)}")
    n_missing_by = int(df[by].isna().sum())
    if n_missing_by:
        raise ValueError(f"grouping column {by!r} has {n_missing_by} missing value(s); drop or fill them first")
    if df[by].nunique() < 2:
        raise ValueError(f"grouping column {by!r} needs at least 2 groups; got {df[by].unique().tolist()}")
    cat = [c for c in categorical if c != by]
    if continuous is None:
        continuous = [c for c in df.columns if c != by and c not in cat and _is_numeric(df[c])]
    bad = [c for c in continuous if not _is_numeric(df[c])]
    if bad:
        raise ValueError(f"continuous column(s) {bad} are not numeric; list them in categorical instead")
    return cat, list(continuous)


def _is_numeric(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


def _resolve_nonnormal(df: pd.DataFrame, by: str, continuous: list[str],
                       nonnormal: str | Sequence[str] | None) -> set[str]:
    if nonnormal is None:
        return set()
    if isinstance(nonnormal, str):
        if nonnormal != "auto":
            raise ValueError(f"nonnormal must be 'auto', a list of column names or None; got {nonnormal!r}")
        return {c for c in continuous if _shapiro_rejects(df, by, c)}
    unknown = [c for c in nonnormal if c not in continuous]
    if unknown:
        raise ValueError(f"nonnormal names {unknown} that are not continuous columns {continuous}")
    return set(nonnormal)


def _shapiro_rejects(df: pd.DataFrame, by: str, col: str) -> bool:
    """True when the Shapiro-Wilk test gives p < 0.05 in any group with >= 3 values and some spread."""
    for _, values in _groups(df, by, col):
        if len(values) >= 3 and np.ptp(values) > 0 and stats.shapiro(values).pvalue < SHAPIRO_ALPHA:
            return True
    return False


def _group_order(df: pd.DataFrame, by: str) -> list[Any]:
    """The groups present: in category order when ``by`` is categorical (e.g. train, val, test), else sorted."""
    if isinstance(df[by].dtype, pd.CategoricalDtype):
        present = set(df[by].dropna())
        return [g for g in df[by].cat.categories if g in present]
    return sorted(df[by].unique())


def _groups(df: pd.DataFrame, by: str, col: str) -> list[tuple[Any, np.ndarray]]:
    """Non-missing values of ``col`` per group, groups in ``_group_order``."""
    return [(g, df.loc[df[by] == g, col].dropna().to_numpy()) for g in _group_order(df, by)]


# ------------------------------------------------------------------------------------------- Tests


def _continuous_test(groups: list[np.ndarray], nonnormal: bool) -> tuple[str, float, float]:
    """(test name, statistic, p) for one continuous variable."""
    groups = [g for g in groups if len(g)]
    if len(groups) < 2 or any(len(g) < 2 for g in groups):
        return "not tested (fewer than 2 values in a group)", math.nan, math.nan
    if len(groups) == 2:
        if nonnormal:
            res = stats.mannwhitneyu(groups[0], groups[1], alternative="two-sided")
            return "Mann-Whitney U", float(res.statistic), float(res.pvalue)
        res = stats.ttest_ind(groups[0], groups[1], equal_var=False)
        return "Welch t-test", float(res.statistic), float(res.pvalue)
    res = stats.kruskal(*groups) if nonnormal else stats.f_oneway(*groups)
    return ("Kruskal-Wallis" if nonnormal else "one-way ANOVA"), float(res.statistic), float(res.pvalue)


def _categorical_test(counts: np.ndarray) -> tuple[str, float, float]:
    """(test name, statistic, p) for a groups x levels contingency table."""
    counts = counts[:, counts.sum(axis=0) > 0]
    counts = counts[counts.sum(axis=1) > 0]
    if counts.shape[0] < 2 or counts.shape[1] < 2:
        return "not tested (one level or one group)", math.nan, math.nan
    chi2, p, _, expected = stats.chi2_contingency(counts)
    if counts.shape == (2, 2) and expected.min() < 5:
        res = stats.fisher_exact(counts)
        return "Fisher's exact test", float(res.statistic), float(res.pvalue)
    name = "chi-square test" + (" (Yates)" if counts.shape == (2, 2) else "")
    if expected.min() < 5:
        name += " (expected count < 5)"
    return name, float(chi2), float(p)


def smd_continuous(a: Any, b: Any) -> float:
    """Absolute standardised mean difference |m1 - m2| / sqrt((s1^2 + s2^2) / 2) (SD with n - 1).

    As R ``tableone::ExtractSmd`` and Python ``tableone``; see Austin (2009, *Stat Med* 28:3083-3107).

    Example:
        >>> round(smd_continuous([1, 2, 3], [2, 3, 4]), 3)
        1.0
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    pooled = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    diff = float(abs(a.mean() - b.mean()))
    return 0.0 if diff == 0 else (diff / pooled if pooled > 0 else math.inf)


def smd_categorical(counts_a: Any, counts_b: Any) -> float:
    """Multinomial SMD of Yang & Dalton (2012, SAS Global Forum 335-2012) from two count vectors.

    sqrt((p_a - p_b)' S^-1 (p_a - p_b)) over levels 2..k, S the mean of the two multinomial covariance
    matrices (pseudo-inverse when singular). For two levels it is |p_a - p_b| / sqrt((p_a q_a + p_b q_b)/2).

    Example:
        >>> round(smd_categorical([30, 70], [50, 50]), 4)
        0.417
    """
    pa = np.asarray(counts_a, dtype=np.float64) / np.sum(counts_a)
    pb = np.asarray(counts_b, dtype=np.float64) / np.sum(counts_b)
    d = (pa - pb)[1:]
    cov = sum(np.diag(p[1:]) - np.outer(p[1:], p[1:]) for p in (pa, pb)) / 2
    value = float(d @ np.linalg.pinv(cov) @ d)
    return math.sqrt(max(value, 0.0))


# ------------------------------------------------------------------------------------ Per-variable facts


def table1_tests(df: pd.DataFrame, *, by: str, categorical: Sequence[str] = (),
                 continuous: Sequence[str] | None = None,
                 nonnormal: str | Sequence[str] | None = "auto") -> pd.DataFrame:
    """The numbers behind :func:`table1`: one row per variable with its test, p-value, SMD and missing count.

    Args:
        df: One row per patient (or case).
        by: Grouping column (e.g. the outcome or the split).
        categorical: Columns summarised as n (%).
        continuous: Columns summarised as mean ± SD or median [Q1, Q3]; default every numeric column that is
            not ``by`` or categorical (other columns are left out).
        nonnormal: ``"auto"`` (Shapiro-Wilk p < 0.05 in any group), a list of column names, or ``None``.

    Returns:
        Columns ``variable, kind, nonnormal, test, statistic, p_value, smd, missing`` (smd NaN unless two
        groups).

    Raises:
        KeyError: Unknown columns.
        ValueError: Missing values in ``by``, fewer than 2 groups, non-numeric continuous columns or bad
            ``nonnormal``.

    Example:
        >>> df = pd.DataFrame({"g": [0, 0, 0, 1, 1, 1], "age": [50, 55, 60, 62, 66, 71]})
        >>> table1_tests(df, by="g")[["variable", "test"]].iloc[0].tolist()
        ['age', 'Welch t-test']
    """
    cat, cont = _resolve_columns(df, by, categorical, continuous)
    skewed = _resolve_nonnormal(df, by, cont, nonnormal)
    rows = [_continuous_facts(df, by, c, c in skewed) for c in cont]
    rows += [_categorical_facts(df, by, c) for c in cat]
    order = {c: i for i, c in enumerate([*cont, *cat])}
    return pd.DataFrame(rows).sort_values("variable", key=lambda s: s.map(order), ignore_index=True)


def _continuous_facts(df: pd.DataFrame, by: str, col: str, nonnormal: bool) -> dict[str, Any]:
    groups = [v for _, v in _groups(df, by, col)]
    test, stat, p = _continuous_test(groups, nonnormal)
    smd = smd_continuous(*groups) if len(groups) == 2 and all(len(g) > 1 for g in groups) else math.nan
    return {"variable": col, "kind": "continuous", "nonnormal": nonnormal, "test": test, "statistic": stat,
            "p_value": p, "smd": smd, "missing": int(df[col].isna().sum())}


def _crosstab(df: pd.DataFrame, by: str, col: str) -> pd.DataFrame:
    """Counts, groups (``_group_order``) x levels (category order, else sorted); missing values excluded."""
    table = pd.crosstab(df[by], df[col])
    if isinstance(df[col].dtype, pd.CategoricalDtype):
        table = table.reindex(columns=df[col].cat.categories, fill_value=0)
    return table.reindex(index=_group_order(df, by), fill_value=0)


def _categorical_facts(df: pd.DataFrame, by: str, col: str) -> dict[str, Any]:
    counts = _crosstab(df, by, col).to_numpy()
    test, stat, p = _categorical_test(counts)
    smd = smd_categorical(*counts) if len(counts) == 2 and counts.shape[1] > 1 and counts.sum(1).all() \
        else math.nan
    return {"variable": col, "kind": "categorical", "nonnormal": False, "test": test, "statistic": stat,
            "p_value": p, "smd": smd, "missing": int(df[col].isna().sum())}


# ----------------------------------------------------------------------------------------- Formatting


def format_p(p: float) -> str:
    """p-value for a table: ``"<0.001"``, else three decimals; ``""`` for NaN.

    Example:
        >>> format_p(0.0271), format_p(0.00001)
        ('0.027', '<0.001')
    """
    if p != p:
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _decimals(values: pd.Series) -> int:
    """Two significant figures before the point: ages 1 decimal, 0.14-sized values 3 (clamped 0-4)."""
    med = float(np.nanmedian(np.abs(values))) if values.notna().any() else 0.0
    if med == 0 or not math.isfinite(med):
        return 2
    return int(min(4, max(0, 2 - math.floor(math.log10(med)))))


def _summary(values: np.ndarray, nonnormal: bool, d: int) -> str:
    if len(values) == 0:
        return ""
    if nonnormal:
        q1, med, q3 = np.percentile(values, [25, 50, 75])
        return f"{med:.{d}f} [{q1:.{d}f}, {q3:.{d}f}]"
    sd = values.std(ddof=1) if len(values) > 1 else math.nan
    return f"{values.mean():.{d}f} ± {sd:.{d}f}"


def _continuous_rows(df: pd.DataFrame, by: str, fact: pd.Series, label: str,
                     decimals: int | None) -> list[dict[str, Any]]:
    col, nonnormal = fact["variable"], bool(fact["nonnormal"])
    d = _decimals(df[col]) if decimals is None else decimals
    row = {"variable": f"{label}, {'median [Q1, Q3]' if nonnormal else 'mean ± SD'}", "level": "",
           "Overall": _summary(df[col].dropna().to_numpy(), nonnormal, d)}
    row.update({str(g): _summary(v, nonnormal, d) for g, v in _groups(df, by, col)})
    return [row]


def _categorical_rows(df: pd.DataFrame, by: str, fact: pd.Series, label: str) -> list[dict[str, Any]]:
    table = _crosstab(df, by, fact["variable"])
    overall = table.sum(axis=0)
    rows = []
    for i, level in enumerate(table.columns):
        row = {"variable": f"{label}, n (%)" if i == 0 else "", "level": str(level),
               "Overall": _n_pct(overall[level], overall.sum())}
        row.update({str(g): _n_pct(table.loc[g, level], table.loc[g].sum()) for g in table.index})
        rows.append(row)
    return rows


def _n_pct(k: int, n: int) -> str:
    return f"{int(k)} ({100 * k / n:.1f})" if n else "0 (NA)"


def table1(df: pd.DataFrame, *, by: str, categorical: Sequence[str] = (),
           continuous: Sequence[str] | None = None, nonnormal: str | Sequence[str] | None = "auto",
           labels: Mapping[str, str] | None = None, decimals: int | None = None, compare: str = "tests",
           patient: str | None = None, unit: str = "cases") -> pd.DataFrame:
    """Table 1 of baseline characteristics by group, ready to print (``df.to_markdown(index=False)``).

    The rules (summaries, normality, tests, SMD, missing counts) are in the module docstring; they follow
    R's ``tableone::CreateTableOne`` conventions, with Welch's t-test, Mann-Whitney U for two non-normal
    groups and Fisher's exact test for sparse 2x2 tables.

    Args:
        df: One row per patient (or case). Not modified.
        by: Grouping column (no missing values, at least 2 groups).
        categorical: Columns summarised as n (%).
        continuous: Columns summarised as mean ± SD / median [Q1, Q3]; default every other numeric column.
        nonnormal: ``"auto"`` (Shapiro-Wilk p < 0.05 in any group), a list of column names, or ``None``.
        labels: Display names for columns, e.g. ``{"age": "Age (years)"}``.
        decimals: Decimals of continuous summaries; default two significant figures of the median.
        compare: ``"tests"`` (p-values and the test's name; for comparisons by outcome) or ``"smd"``
            (standardised mean differences only; for sets split at random, where a p-value tests a null
            hypothesis known to be true: Austin 2009, CONSORT 2010 item 15). With more than two groups, one SMD
            column per group against the first.
        patient: Column of patient ids: the table then counts patients and rows (``unit``) separately.
        unit: What one row is, for the count row (e.g. ``"cases"``, ``"hips"``).

    Returns:
        String table with columns ``variable, level, missing, Overall, <one per group>`` then ``p-value, test``
        (and ``SMD`` for two groups) or the SMD column(s); first row the count of rows, then of patients.

    Raises:
        KeyError: Unknown columns or labels.
        ValueError: See :func:`table1_tests`.

    Example:
        >>> df = pd.DataFrame({"g": ["a"] * 3 + ["b"] * 3, "age": [50, 55, 60, 62, 66, 71]})
        >>> table1(df, by="g").iloc[1, :5].tolist()
        ['age, mean ± SD', '', '0', '60.7 ± 7.5', '55.0 ± 5.0']
    """
    if compare not in ("tests", "smd"):
        raise ValueError(f"compare must be 'tests' or 'smd'; got {compare!r}")
    if patient is not None and patient not in df.columns:
        raise KeyError(f"patient column {patient!r} not in the data frame. Available: {list(df.columns)}")
    data = df.drop(columns=[patient]) if patient is not None else df
    facts = table1_tests(data, by=by, categorical=categorical, continuous=continuous, nonnormal=nonnormal)
    labels = _check_labels(labels, facts["variable"].tolist())
    groups = _group_order(df, by)
    rows = [{"variable": "n" if patient is None else f"n ({unit})", "level": "", "Overall": str(len(df)),
             **{str(g): str(int((df[by] == g).sum())) for g in groups}}]
    if patient is not None:
        rows.append({"variable": "n (patients)", "level": "", "Overall": str(df[patient].nunique()),
                     **{str(g): str(int(df.loc[df[by] == g, patient].nunique())) for g in groups}})
    for _, fact in facts.iterrows():
        label = labels.get(fact["variable"], fact["variable"])
        block = (_continuous_rows(df, by, fact, label, decimals) if fact["kind"] == "continuous"
                 else _categorical_rows(df, by, fact, label))
        block[0]["missing"] = str(fact["missing"])
        if compare == "tests":
            block[0].update({"p-value": format_p(fact["p_value"]), "test": fact["test"],
                             "SMD": "" if fact["smd"] != fact["smd"] else f"{fact['smd']:.3f}"})
        rows.extend(block)
    columns = ["variable", "level", "missing", "Overall", *map(str, groups)]
    if compare == "smd":
        smd_columns = _pairwise_smd(data, by, facts, groups, rows)
        return pd.DataFrame(rows).reindex(columns=columns + smd_columns).fillna("")
    columns += ["p-value", "test"] + (["SMD"] if len(groups) == 2 else [])
    return pd.DataFrame(rows).reindex(columns=columns).fillna("")


def _pairwise_smd(df: pd.DataFrame, by: str, facts: pd.DataFrame, groups: list[Any],
                  rows: list[dict[str, Any]]) -> list[str]:
    """Fill one SMD column per group against the first (``"SMD"`` for two groups) into the variable rows."""
    pairs = groups[1:]
    names = ["SMD"] if len(groups) == 2 else [f"SMD {groups[0]} vs {g}" for g in pairs]
    first_rows = [r for r in rows if r.get("missing", "") != ""]
    for fact, row in zip(facts.itertuples(), first_rows):
        for g, name in zip(pairs, names):
            two = df[df[by].isin([groups[0], g])]
            if fact.kind == "continuous":
                a, b = (two.loc[two[by] == x, fact.variable].dropna().to_numpy() for x in (groups[0], g))
                value = smd_continuous(a, b) if len(a) > 1 and len(b) > 1 else math.nan
            else:
                counts = _crosstab(two, by, fact.variable).reindex(index=[groups[0], g], fill_value=0).to_numpy()
                value = smd_categorical(*counts) if counts.shape[1] > 1 and counts.sum(1).all() else math.nan
            row[name] = "" if value != value else f"{value:.3f}"
    return names


def _check_labels(labels: Mapping[str, str] | None, variables: list[str]) -> Mapping[str, str]:
    unknown = [k for k in (labels or {}) if k not in variables]
    if unknown:
        raise KeyError(f"labels for unknown variable(s) {unknown}. Variables in the table: {variables}")
    return labels or {}
