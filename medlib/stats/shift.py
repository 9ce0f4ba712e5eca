"""Transportability: how far the external data lie from the development data.

Two complementary measures, shown beside the external performance so that a drop in performance can be read
against the shift that may explain it:

- **Standardised differences** per covariate and image statistic: for a numeric variable the difference in means
  over the pooled SD, ``(m1 - m2) / sqrt((s1^2 + s2^2) / 2)``; for a categorical one the multinomial SMD of Yang &
  Dalton (2012), ``sqrt((p1 - p2)' S^-1 (p1 - p2))`` with ``S`` the mean of the two groups' multinomial
  covariances (first level dropped), which is what ``tableone`` reports. |SMD| > 0.1 is the usual flag.
- A **membership model**: a logistic regression (median imputation, standardisation, one-hot categories;
  scikit-learn) that tries to tell development from external cases; its cross-validated AUC (out-of-fold
  probabilities, stratified folds) with a DeLong interval. 0.5 means the sets cannot be told apart; near 1 they
  barely overlap, and the external set tests transport to a different population.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from medlib.stats.results import Estimate
from medlib.stats.roc import auc_ci

SMD_FLAG = 0.1


def smd_numeric(a: Any, b: Any) -> float:
    """Standardised mean difference of two samples (NaN-aware); NaN when both SDs are 0 or a sample is empty."""
    x = pd.to_numeric(pd.Series(a), errors="coerce").dropna().to_numpy(float)
    z = pd.to_numeric(pd.Series(b), errors="coerce").dropna().to_numpy(float)
    if len(x) < 2 or len(z) < 2:
        return math.nan
    pooled = math.sqrt((x.var(ddof=1) + z.var(ddof=1)) / 2)
    return (x.mean() - z.mean()) / pooled if pooled > 0 else (0.0 if x.mean() == z.mean() else math.inf)


def smd_categorical(a: Any, b: Any) -> float:
    """Yang & Dalton (2012) multinomial SMD of two samples of a categorical variable (missing is a level)."""
    x = pd.Series(a).astype(object).where(pd.Series(a).notna(), "missing").astype(str)
    z = pd.Series(b).astype(object).where(pd.Series(b).notna(), "missing").astype(str)
    levels = sorted(set(x) | set(z))
    if len(levels) < 2 or not len(x) or not len(z):
        return 0.0 if len(levels) < 2 else math.nan
    p1 = x.value_counts(normalize=True).reindex(levels, fill_value=0).to_numpy()[1:]
    p2 = z.value_counts(normalize=True).reindex(levels, fill_value=0).to_numpy()[1:]
    cov = ((np.diag(p1) - np.outer(p1, p1)) + (np.diag(p2) - np.outer(p2, p2))) / 2
    d = p1 - p2
    return float(math.sqrt(max(0.0, d @ np.linalg.pinv(cov) @ d)))


def standardized_differences(development: pd.DataFrame, external: pd.DataFrame, columns: Sequence[str], *,
                             categorical: Sequence[str] = ()) -> pd.DataFrame:
    """SMD of every column between the development and the external data.

    Returns:
        Columns ``variable, kind, development, external, smd, flagged`` (summaries as ``mean (SD)`` or the
        most frequent level's share), one row per column, in the order given.

    Raises:
        KeyError: A column missing from either table (named).
    """
    missing = [c for c in columns if c not in development.columns or c not in external.columns]
    if missing:
        raise KeyError(f"columns {missing} are missing from the development or the external table")
    rows = []
    for col in columns:
        if col in categorical or not _is_numeric(development[col], external[col]):
            smd, kind = smd_categorical(development[col], external[col]), "categorical"
            summary = [_mode_share(development[col]), _mode_share(external[col])]
        else:
            smd, kind = smd_numeric(development[col], external[col]), "numeric"
            summary = [_mean_sd(development[col]), _mean_sd(external[col])]
        rows.append({"variable": col, "kind": kind, "development": summary[0], "external": summary[1], "smd": smd,
                     "flagged": bool(abs(smd) > SMD_FLAG) if not math.isnan(smd) else False})
    return pd.DataFrame(rows, columns=["variable", "kind", "development", "external", "smd", "flagged"])


def _is_numeric(a: pd.Series, b: pd.Series) -> bool:
    both = pd.concat([a, b], ignore_index=True)
    return bool(both.notna().any()) and pd.to_numeric(both, errors="coerce").notna().sum() == both.notna().sum()


def _mean_sd(values: pd.Series) -> str:
    v = pd.to_numeric(values, errors="coerce").dropna()
    return f"{v.mean():.3g} ({v.std(ddof=1):.3g})" if len(v) > 1 else "NA"


def _mode_share(values: pd.Series) -> str:
    v = values.astype(object).where(values.notna(), "missing").astype(str)
    if v.empty:
        return "NA"
    top = v.value_counts().index[0]
    return f"{top} {100 * (v == top).mean():.0f}%"


def membership_design(development: pd.DataFrame, external: pd.DataFrame, columns: Sequence[str], *,
                      categorical: Sequence[str] = ()) -> tuple[pd.DataFrame, np.ndarray]:
    """The membership model's inputs: numeric columns as they are, categorical ones one-hot; 1 = external."""
    both = pd.concat([development[list(columns)], external[list(columns)]], ignore_index=True)
    cats = [c for c in columns if c in categorical or not _is_numeric(development[c], external[c])]
    x = pd.get_dummies(both, columns=cats, dummy_na=True, dtype=float)
    x = x.apply(pd.to_numeric, errors="coerce")
    return x, np.r_[np.zeros(len(development), int), np.ones(len(external), int)]


def membership_auc(x: pd.DataFrame, member: Any, *, folds: int = 5, seed: int = 0, level: float = 0.95
                   ) -> tuple[Estimate, np.ndarray]:
    """Cross-validated AUC of a logistic model telling external (1) from development (0) cases.

    Args:
        x: Numeric inputs (NaN allowed: imputed by the training folds' medians).
        member: 1 for external, 0 for development cases.
        folds: Stratified folds (fewer when the smaller set is smaller than this).
        seed: Seed of the fold assignment.

    Returns:
        ``(estimate, out_of_fold_probabilities)``: the AUC with its DeLong interval.
    """
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(member, dtype=int)
    k = int(min(folds, np.bincount(y, minlength=2).min()))
    if k < 2 or x.shape[1] == 0:
        return Estimate(math.nan, math.nan, math.nan, "not estimable: too few cases or no inputs"), np.full(len(y),
                                                                                                          math.nan)
    model = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
                          LogisticRegression(max_iter=2000))
    prob = cross_val_predict(model, x.to_numpy(float), y, cv=StratifiedKFold(k, shuffle=True, random_state=seed),
                             method="predict_proba")[:, 1]
    est = auc_ci(y, prob, level=level)
    return Estimate(est.value, est.lo, est.hi, f"{k}-fold cross-validated logistic membership model; {est.method}"), prob
