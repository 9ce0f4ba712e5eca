"""Feature models for the ICH design: scaling + LASSO selection + SVM, fitted on the training set only.

One pipeline per feature table (radiomics, deep, fused, one per habitat subregion)::

    StandardScaler -> SelectFromModel(L1 logistic regression, C by stratified CV) -> SVC with Platt scaling

Why an L1-penalised *logistic* regression rather than ``LassoCV`` on the 0/1 label: the outcome is binary, so
the logistic likelihood is the right loss for choosing features, and ``LogisticRegressionCV`` picks C by
stratified cross-validated AUC, the study's metric. ``LassoCV`` (least squares on 0/1) is what many radiomics
papers call "LASSO"; it tends to select a similar set, but its CV criterion is the squared error of a linear
probability model. Solver ``liblinear`` is exact for L1 on small tables. Coefficients are on the standardised
scale, so their magnitudes are comparable between features.

At least one feature always survives: if the cross-validated C zeroes every coefficient, the selector keeps
the first feature to enter the L1 path (the smallest C in the grid with a non-zero coefficient), and records
that it did (``fallback_C_``).

Everything is fitted on the rows of the training set only; validation, test and external rows are only
predicted. Features that are constant or non-finite in the training set are dropped before fitting and the
drop is reported (``FittedFeatureModel.dropped``, also from
:func:`fit_study_models`), never silently.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_selection import SelectFromModel
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from medlib.schema import PREDICTION_COLUMNS, SETS

_CS = np.logspace(-3, 2, 20)  # inverse L1 strengths searched by cross-validation


class L1SelectFromModel(SelectFromModel):
    """``SelectFromModel`` over an L1 logistic regression that never selects zero features.

    If every coefficient at the cross-validated C is zero, the feature with the largest |coefficient| at the
    smallest C (in the estimator's grid ``Cs_``) giving a non-zero coefficient is kept; ``fallback_C_`` records
    that C (None when no fallback was needed).
    """

    def fit(self, X: Any, y: Any = None, **fit_params: Any) -> "L1SelectFromModel":
        super().fit(X, y, **fit_params)
        self.fallback_C_ = None
        self.fallback_feature_ = None
        if not super()._get_support_mask().any():
            self.fallback_C_, self.fallback_coef_ = self._first_on_path(X, y)
            self.fallback_feature_ = int(np.argmax(np.abs(self.fallback_coef_)))
        return self

    def _first_on_path(self, X: Any, y: Any) -> tuple[float, np.ndarray]:
        est = self.estimator_
        coef = np.zeros(np.shape(X)[1])
        for C in sorted(getattr(est, "Cs_", _CS)):
            coef = LogisticRegression(C=C, l1_ratio=1.0, solver="liblinear", max_iter=1000,
                                      random_state=est.random_state).fit(X, y).coef_.ravel()
            if np.any(coef != 0):
                return float(C), coef
        return float(C), coef

    def _get_support_mask(self) -> np.ndarray:
        mask = super()._get_support_mask()
        if getattr(self, "fallback_feature_", None) is not None:
            mask = np.zeros_like(mask)
            mask[self.fallback_feature_] = True
        return mask

    def coefficients(self) -> np.ndarray:
        """The L1 coefficient of each selected feature (the fallback path's coefficient when it was used)."""
        coef = self.estimator_.coef_.ravel() if self.fallback_C_ is None else self.fallback_coef_
        return coef[self.get_support()]


def build_fusion_model(*, seed: int = 0, cv: int = 5, kernel: str = "rbf") -> Pipeline:
    """The unfitted pipeline: StandardScaler -> L1 logistic selection (C by stratified CV AUC) -> Platt-scaled SVC.

    The SVC's probabilities are Platt scaling (a sigmoid on the SVM's decision values) fitted on
    cross-validated decision values, with the final SVC fitted on all training rows:
    ``CalibratedClassifierCV(SVC(), method="sigmoid", ensemble=False)``, which is what ``SVC(probability=True)``
    does inside libsvm and what scikit-learn 1.9 recommends in its place (``probability=`` is deprecated).

    Args:
        seed: seeds the CV folds of the L1 selection and of the Platt scaling, and liblinear; fits are
            deterministic for a seed.
        cv: stratified folds for choosing C.
        kernel: SVC kernel, "rbf" (default) or "linear".
    """
    lasso = LogisticRegressionCV(Cs=_CS, l1_ratios=(1.0,), solver="liblinear", scoring="roc_auc",
                                 cv=StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed),
                                 max_iter=1000, random_state=seed, use_legacy_attributes=False)
    return Pipeline([
        ("scale", StandardScaler()),
        ("lasso", L1SelectFromModel(lasso, threshold=1e-5)),
        ("svm", CalibratedClassifierCV(SVC(kernel=kernel), method="sigmoid", ensemble=False,
                                       cv=StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed))),
    ])


@dataclass(frozen=True)
class FittedFeatureModel:
    """A feature model fitted on training rows.

    Attributes:
        name: model name in the Predictions table ("Radiomics", "Deep", "Fused", "Habitat 1", ...).
        pipeline: the fitted scikit-learn pipeline.
        features: the training columns fed to the pipeline, in order (after dropping).
        selected: DataFrame (feature, coefficient) of the LASSO-selected features, largest |coefficient| first.
        dropped: DataFrame (feature, reason) of columns dropped before fitting.
        C: the inverse L1 strength used for selection (cross-validated, or the fallback's).
        seed: the seed it was fitted with.
    """

    name: str
    pipeline: Pipeline
    features: tuple[str, ...]
    selected: pd.DataFrame
    dropped: pd.DataFrame
    C: float
    seed: int


def _binary_labels(y: Any, n: int, what: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"{what}: y must be 1-D with one label per row ({n}); got shape {y.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"{what}: y must hold 0/1 labels; got values {sorted(set(y.tolist()))[:10]}")
    return y.astype(int)


def _usable_columns(X: pd.DataFrame) -> tuple[list[str], pd.DataFrame]:
    """Columns fit for training, and a (feature, reason) table of the rest."""
    numeric = X.select_dtypes(include=[np.number, bool])
    dropped = [(c, "not numeric") for c in X.columns if c not in numeric.columns]
    values = numeric.to_numpy(dtype=float)
    finite = np.isfinite(values).all(axis=0)
    constant = np.zeros(len(numeric.columns), dtype=bool)
    constant[finite] = np.ptp(values[:, finite], axis=0) == 0
    dropped += [(c, "non-finite values in the training set") for c in numeric.columns[~finite]]
    dropped += [(c, "zero variance in the training set") for c in numeric.columns[constant]]
    keep = [c for c, f, k in zip(numeric.columns, finite, constant) if f and not k]
    return keep, pd.DataFrame(dropped, columns=["feature", "reason"])


def fit_feature_model(X_train: pd.DataFrame, y_train: Any, *, name: str, seed: int = 0, cv: int = 5,
                      kernel: str = "rbf") -> FittedFeatureModel:
    """Fit :func:`build_fusion_model` on training rows.

    Columns that are non-numeric, non-finite or constant in ``X_train`` are dropped first and listed in
    ``dropped``. The CV folds are ``min(cv, minority class count)``.

    Raises:
        ValueError: labels not 0/1 or one class only, fewer than 2 cases of a class, or no usable column.
    """
    if not isinstance(X_train, pd.DataFrame):
        raise TypeError(f"{name}: X_train must be a pandas DataFrame; got {type(X_train).__name__}")
    y = _binary_labels(y_train, len(X_train), name)
    minority = int(min(np.sum(y == 0), np.sum(y == 1)))
    if minority < 2:
        raise ValueError(f"{name}: the training set needs at least 2 cases of each class; got "
                         f"{int(np.sum(y == 0))} negative and {int(np.sum(y == 1))} positive")
    keep, dropped = _usable_columns(X_train)
    if not keep:
        raise ValueError(f"{name}: no usable feature in the training set ({len(dropped)} dropped: "
                         f"{dropped['reason'].value_counts().to_dict()})")
    pipeline = build_fusion_model(seed=seed, cv=min(cv, minority), kernel=kernel)
    pipeline.fit(X_train[keep].to_numpy(dtype=float), y)
    selector: L1SelectFromModel = pipeline.named_steps["lasso"]
    selected = pd.DataFrame({"feature": np.asarray(keep)[selector.get_support()],
                             "coefficient": selector.coefficients()})
    selected = selected.reindex(selected["coefficient"].abs().sort_values(ascending=False).index)
    C = selector.fallback_C_ if selector.fallback_C_ is not None else float(np.ravel(selector.estimator_.C_)[0])
    return FittedFeatureModel(name=name, pipeline=pipeline, features=tuple(keep),
                              selected=selected.reset_index(drop=True), dropped=dropped, C=C, seed=seed)


def predict_scores(fitted: FittedFeatureModel, X: pd.DataFrame) -> np.ndarray:
    """Probability of the positive class (label 1) for each row of ``X``.

    Raises:
        KeyError: ``X`` lacks a column the model was fitted on.
        ValueError: a used column holds NaN or inf, naming the rows.
    """
    missing = [c for c in fitted.features if c not in X.columns]
    if missing:
        raise KeyError(f"{fitted.name}: X lacks {len(missing)} feature column(s) the model was fitted on, "
                       f"e.g. {missing[:5]}")
    values = X[list(fitted.features)].to_numpy(dtype=float)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        raise ValueError(f"{fitted.name}: non-finite feature values in row(s) {list(X.index[bad][:10])}")
    proba = fitted.pipeline.predict_proba(values)
    return proba[:, list(fitted.pipeline.classes_).index(1)]


def feature_model_predictions(fitted: FittedFeatureModel, X: pd.DataFrame, y: Any, case_ids: Sequence[Any],
                              patient_ids: Sequence[Any], *, set_name: str) -> pd.DataFrame:
    """Rows of the project-wide Predictions table for one model on one set.

    Returns:
        DataFrame with columns case_id, patient_id, model, set, y_true, score.
    """
    n = len(X)
    if len(case_ids) != n or len(patient_ids) != n:
        raise ValueError(f"{fitted.name}: case_ids ({len(case_ids)}) and patient_ids ({len(patient_ids)}) "
                         f"must have one entry per row of X ({n})")
    return pd.DataFrame({"case_id": list(case_ids), "patient_id": list(patient_ids), "model": fitted.name,
                         "set": set_name, "y_true": _binary_labels(y, n, fitted.name),
                         "score": predict_scores(fitted, X)}, columns=list(PREDICTION_COLUMNS))


def _split_frame(split: pd.DataFrame) -> pd.DataFrame:
    frame = split.reset_index() if "case_id" not in split.columns else split
    if "case_id" not in frame.columns or "set" not in frame.columns:
        raise ValueError(f"split must have case_id (column or index) and set columns; got {list(split.columns)}")
    if frame["case_id"].duplicated().any():
        dups = frame.loc[frame["case_id"].duplicated(), "case_id"].tolist()
        raise ValueError(f"split has duplicated case ids, e.g. {dups[:5]}")
    unknown = sorted(set(frame["set"]) - set(SETS))
    if unknown:
        raise ValueError(f"split has unknown set name(s) {unknown}; expected {list(SETS)}")
    if "patient_id" not in frame.columns:
        frame = frame.assign(patient_id=frame["case_id"])
    return frame


def _labels_for(y: pd.Series | Mapping | Sequence, frame: pd.DataFrame) -> np.ndarray:
    if isinstance(y, (pd.Series, Mapping)):
        series = pd.Series(y)
        missing = [c for c in frame["case_id"] if c not in series.index]
        if missing:
            raise ValueError(f"y has no label for {len(missing)} case(s) of the split, e.g. {missing[:5]}")
        return series.loc[frame["case_id"]].to_numpy()
    return np.asarray(y)


def _fit_recording_warnings(X: pd.DataFrame, y: np.ndarray, **kwargs: Any
                            ) -> tuple[FittedFeatureModel, list[tuple[str, type[Warning]]]]:
    """:func:`fit_feature_model`, returning the warnings it raised (a joblib worker's would go to its stderr)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = fit_feature_model(X, y, **kwargs)
    return fitted, list(dict.fromkeys((str(w.message), w.category) for w in caught))  # each distinct one once


def fit_study_models(feature_tables: Mapping[str, pd.DataFrame], y: pd.Series | Sequence[int],
                     split: pd.DataFrame, *, seed: int = 0, cv: int = 5, n_jobs: int = 1
                     ) -> tuple[pd.DataFrame, dict[str, FittedFeatureModel]]:
    """Fit one model per feature table on the training set and predict every set.

    Args:
        feature_tables: model name -> features indexed by case_id (e.g. "Radiomics", "Deep", "Fused" with
            "rad_"/"deep_" prefixed columns, "Habitat 1", ...).
        y: 0/1 labels: a Series indexed by case_id, or a sequence aligned with ``split``'s rows.
        split: case_id (column or index), set (train/val/test/external) and optionally patient_id.
        seed: passed to :func:`fit_feature_model`.
        cv: CV folds for choosing the L1 strength.
        n_jobs: models fitted in parallel (joblib processes); each fit is deterministic for ``seed``, so the
            result does not depend on ``n_jobs``.

    Returns:
        ``(predictions, fitted)``: the Predictions long table (case_id, patient_id, model, set, y_true,
        score) for every model and set, and per model the :class:`FittedFeatureModel` (selected features with
        coefficients, columns dropped before fitting and why, the L1 strength ``C``).

    Raises:
        ValueError: a table lacks cases of the split, or no training rows.
    """
    frame = _split_frame(split)
    labels = _binary_labels(_labels_for(y, frame), len(frame), "y")
    train = (frame["set"] == "train").to_numpy()
    if not train.any():
        raise ValueError("split has no training rows (set == 'train')")
    order = [s for s in SETS if (frame["set"] == s).any()]
    tables = {}
    for name, table in feature_tables.items():
        missing = [c for c in frame["case_id"] if c not in table.index]
        if missing:
            raise ValueError(f"{name}: feature table lacks {len(missing)} case(s) of the split, e.g. {missing[:5]}")
        tables[name] = table.loc[frame["case_id"]]
    fits = Parallel(n_jobs=n_jobs)(delayed(_fit_recording_warnings)(X.iloc[train], labels[train], name=name,
                                                                     seed=seed, cv=cv) for name, X in tables.items())
    parts, fitted_models = [], {}
    for (name, X), (fitted, caught) in zip(tables.items(), fits):
        for message, category in caught:  # raised here, as a serial fit would, not on a worker's stderr
            warnings.warn(f"{name}: {message}", category, stacklevel=2)
        for set_name in order:
            rows = (frame["set"] == set_name).to_numpy()
            parts.append(feature_model_predictions(fitted, X.iloc[rows], labels[rows], frame["case_id"][rows].tolist(),
                                                   frame["patient_id"][rows].tolist(), set_name=set_name))
        fitted_models[name] = fitted
    predictions = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(PREDICTION_COLUMNS))
    return predictions, fitted_models
