"""Feature models for the ICH design: scaling + LASSO selection + SVM, tuned and fitted on the training set only.

One pipeline per feature table (radiomics, deep, fused, one per habitat subregion)::

    StandardScaler -> SelectFromModel(L1 logistic regression, C) -> SVC(C, gamma) with Platt scaling

The three hyperparameters (the LASSO strength alpha = 1/C, the SVM's C and its RBF gamma) are chosen together
on cross-validated AUC (:func:`tune_hyperparameters`, the search ``GridSearchCV`` makes), in an **inner cross-validation grouped by patient**
(``StratifiedGroupKFold``): a patient's rows are never on both sides of an inner fold, so a patient with several
cases cannot make a setting look better than it is. Only training rows take part. The training-set AUC a report
shows is **out-of-fold** (:func:`fit_feature_model` returns ``oof``): each training case is scored by a model
fitted without its patient (outer folds grouped by patient), never by resubstitution; the hyperparameters are
those tuned on the training set, or re-tuned in each outer fold with ``nested=True``.

Why an L1-penalised *logistic* regression rather than ``LassoCV`` on the 0/1 label: the outcome is binary, so
the logistic likelihood is the right loss for choosing features. ``LassoCV`` (least squares on 0/1) is what many
radiomics papers call "LASSO"; it tends to select a similar set. Solver ``liblinear`` is exact for L1 on small
tables. Coefficients are on the standardised scale, so their magnitudes are comparable between features.

At least one feature always survives: if the chosen C zeroes every coefficient, the selector keeps the first
feature to enter the L1 path (the smallest C in the grid with a non-zero coefficient), and records that it did
(``fallback_C_``).

Validation, test and external rows are only predicted. Features that are constant or non-finite in the training
set are dropped before fitting and the drop is reported (``FittedFeatureModel.dropped``, also from
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
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from medlib.schema import PREDICTION_COLUMNS, SETS

#: The grid searched by the inner cross-validation: LASSO inverse strengths C = 1/alpha, SVM C, RBF gamma.
LASSO_CS = tuple(float(c) for c in np.logspace(-1.5, 0.5, 5))
SVM_CS = (0.1, 1.0, 10.0, 100.0)
SVM_GAMMAS = (0.01, 0.1, 1.0)
_CS = np.logspace(-3, 2, 20)  # the L1 path searched for the fallback feature


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


def build_fusion_model(*, seed: int = 0, cv: int | Sequence = 5, kernel: str = "rbf", lasso_C: float = 1.0,
                       svm_C: float = 1.0, gamma: float | str = "scale", calibrate: bool = True) -> Pipeline:
    """The unfitted pipeline: StandardScaler -> L1 logistic selection (``lasso_C``) -> SVC (``svm_C``, ``gamma``).

    With ``calibrate`` the SVC's probabilities are Platt scaling (a sigmoid on the SVM's decision values) fitted
    on cross-validated decision values, with the final SVC fitted on all rows:
    ``CalibratedClassifierCV(SVC(), method="sigmoid", ensemble=False)``, what ``SVC(probability=True)`` does
    inside libsvm and what scikit-learn 1.9 recommends in its place. Without it the last step is the bare SVC
    (decision values: what the inner cross-validation ranks by AUC).

    Args:
        seed: seeds liblinear; fits are deterministic for a seed.
        cv: the Platt scaling's folds: a number of stratified folds, or the (train, test) index pairs of folds
            grouped by patient (:func:`patient_folds`).
        kernel: SVC kernel, "rbf" (default) or "linear" (``gamma`` unused).
        lasso_C, svm_C, gamma: the hyperparameters (:func:`tune_hyperparameters` chooses them).
    """
    lasso = LogisticRegression(C=lasso_C, l1_ratio=1.0, solver="liblinear", max_iter=1000, random_state=seed)
    svm = SVC(kernel=kernel, C=svm_C, gamma=gamma)
    if calibrate:
        svm = CalibratedClassifierCV(svm, method="sigmoid", ensemble=False, cv=cv)
    return Pipeline([("scale", StandardScaler()), ("lasso", L1SelectFromModel(lasso, threshold=1e-5)),
                     ("svm", svm)])


def patient_folds(y: np.ndarray, groups: np.ndarray, *, cv: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds grouped by patient (``StratifiedGroupKFold``): no patient on both sides of a fold.

    The number of folds is ``min(cv, patients with a positive row, patients with a negative row)``.

    Raises:
        ValueError: fewer than 2 patients of a class.
    """
    y, groups = np.asarray(y), np.asarray(groups)
    per_class = [len(np.unique(groups[y == k])) for k in (0, 1)]
    k = min(cv, *per_class)
    if k < 2:
        raise ValueError(f"grouped cross-validation needs at least 2 patients of each class; got {per_class[0]} "
                         f"with a negative and {per_class[1]} with a positive case")
    return list(StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y, groups))


def tune_hyperparameters(X: np.ndarray, y: np.ndarray, groups: np.ndarray, *, seed: int = 0, cv: int = 5,
                         kernel: str = "rbf") -> tuple[dict[str, Any], float]:
    """LASSO C and SVM C/gamma by cross-validated AUC over :data:`LASSO_CS` x :data:`SVM_CS` x
    :data:`SVM_GAMMAS`, in folds grouped by patient (:func:`patient_folds`) of the rows given (training only).

    The same search as scikit-learn's ``GridSearchCV(pipeline, grid, scoring="roc_auc", cv=folds)`` (the
    reference in ``tests/test_fusion.py``: same folds, same scores, same choice, ties to the first setting in
    grid order), written as a loop so that the scaler and LASSO of each fold and C are fitted once and shared by
    the SVM's 12 settings (a twelfth of the LASSO fits), and the AUC is ``medlib.stats``' rank AUC (equal to
    scikit-learn's, without its per-call checks), which keeps the search within seconds on a CPU.

    Returns:
        ``({"lasso_C", "svm_C", "gamma"}, mean inner-CV AUC of that setting)``.
    """
    from medlib.stats.delong import auc

    folds = patient_folds(y, groups, cv=cv, seed=seed)
    gammas = SVM_GAMMAS if kernel == "rbf" else (None,)
    scores = np.full((len(LASSO_CS), len(SVM_CS), len(gammas), len(folds)), np.nan)
    for f, (fit_rows, held) in enumerate(folds):
        if len(np.unique(y[held])) < 2:
            continue  # an AUC needs both classes; such a fold does not vote
        for i, lasso_C in enumerate(LASSO_CS):
            front = Pipeline(build_fusion_model(seed=seed, lasso_C=lasso_C, calibrate=False).steps[:2])
            X_fit = front.fit_transform(X[fit_rows], y[fit_rows])
            X_held = front.transform(X[held])
            for j, svm_C in enumerate(SVM_CS):
                for k, gamma in enumerate(gammas):
                    svm = SVC(kernel=kernel, C=svm_C, gamma="scale" if gamma is None else gamma)
                    scores[i, j, k, f] = auc(y[held], svm.fit(X_fit, y[fit_rows]).decision_function(X_held))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all folds one-class: nan, the first setting is taken
        mean = np.nanmean(scores, axis=-1)
    i, j, k = np.unravel_index(int(np.argmax(np.nan_to_num(mean, nan=-np.inf))), mean.shape)
    params = {"lasso_C": LASSO_CS[i], "svm_C": SVM_CS[j], "gamma": gammas[k]}
    return params, float(mean[i, j, k])


def _fit_with(X: np.ndarray, y: np.ndarray, groups: np.ndarray, params: Mapping[str, Any], *, seed: int, cv: int,
              kernel: str) -> Pipeline:
    """:func:`build_fusion_model` with ``params``, Platt-scaled in folds grouped by patient, fitted on the rows."""
    return build_fusion_model(seed=seed, cv=patient_folds(y, groups, cv=cv, seed=seed), kernel=kernel,
                              lasso_C=params["lasso_C"], svm_C=params["svm_C"],
                              gamma=params["gamma"] if params["gamma"] is not None else "scale").fit(X, y)


def out_of_fold_scores(X: np.ndarray, y: np.ndarray, groups: np.ndarray, *, params: Mapping[str, Any] | None = None,
                       seed: int = 0, cv: int = 5, kernel: str = "rbf") -> np.ndarray:
    """Training-set scores, each from a model fitted without the case's patient (never resubstitution).

    The outer folds are :func:`patient_folds` (seed + 1, so they differ from the inner ones). With ``params``
    (the hyperparameters tuned on the whole training set) each fold refits the pipeline with them; without,
    each fold also re-tunes them in its own inner folds (fully nested: honest but 6 searches instead of 1).
    """
    oof = np.full(len(y), np.nan)
    for fit_rows, held in patient_folds(y, groups, cv=cv, seed=seed + 1):
        chosen = params or tune_hyperparameters(X[fit_rows], y[fit_rows], groups[fit_rows], seed=seed, cv=cv,
                                                kernel=kernel)[0]
        model = _fit_with(X[fit_rows], y[fit_rows], groups[fit_rows], chosen, seed=seed, cv=cv, kernel=kernel)
        oof[held] = _positive_proba(model, X[held])
    return oof


def _positive_proba(pipeline: Pipeline, X: np.ndarray) -> np.ndarray:
    return pipeline.predict_proba(X)[:, list(pipeline.classes_).index(1)]


@dataclass(frozen=True)
class FittedFeatureModel:
    """A feature model tuned and fitted on training rows.

    Attributes:
        name: model name in the Predictions table ("Radiomics", "Deep", "Fused", "Habitat 1", ...).
        pipeline: the fitted scikit-learn pipeline.
        features: the training columns fed to the pipeline, in order (after dropping).
        selected: DataFrame (feature, coefficient) of the LASSO-selected features, largest |coefficient| first.
        dropped: DataFrame (feature, reason) of columns dropped before fitting.
        C: the inverse L1 strength used for selection (the tuned one, or the fallback's).
        seed: the seed it was fitted with.
        svm_C, gamma: the tuned SVM hyperparameters (gamma None for a linear kernel).
        cv_auc: the mean inner-CV AUC of the chosen setting (patient-grouped folds).
        folds: the number of inner folds.
        oof: out-of-fold scores of the training rows, in their order (None when not computed).
    """

    name: str
    pipeline: Pipeline
    features: tuple[str, ...]
    selected: pd.DataFrame
    dropped: pd.DataFrame
    C: float
    seed: int
    svm_C: float = 1.0
    gamma: float | None = None
    cv_auc: float = float("nan")
    folds: int = 0
    oof: np.ndarray | None = None

    def tuning(self) -> dict[str, Any]:
        """The tuned hyperparameters and how they were chosen, as plain data for the run summary."""
        return {"lasso_alpha": 1.0 / self.C, "lasso_C": self.C, "svm_C": self.svm_C, "gamma": self.gamma,
                "inner_cv_auc": self.cv_auc, "folds": self.folds, "selected": len(self.selected),
                "candidates": len(self.features)}


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
                      kernel: str = "rbf", groups: Sequence[Any] | None = None,
                      out_of_fold: bool = True, nested: bool = False) -> FittedFeatureModel:
    """Tune (inner CV grouped by patient) and fit :func:`build_fusion_model` on training rows.

    Columns that are non-numeric, non-finite or constant in ``X_train`` are dropped first and listed in
    ``dropped``.

    Args:
        groups: patient id of each row; None = each row its own patient.
        out_of_fold: also compute the out-of-fold training scores (:func:`out_of_fold_scores`).
        nested: re-tune the hyperparameters inside each outer fold of the out-of-fold scores.

    Raises:
        ValueError: labels not 0/1 or one class only, fewer than 2 patients of a class, or no usable column.
    """
    if not isinstance(X_train, pd.DataFrame):
        raise TypeError(f"{name}: X_train must be a pandas DataFrame; got {type(X_train).__name__}")
    y = _binary_labels(y_train, len(X_train), name)
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    if len(groups) != len(y):
        raise ValueError(f"{name}: groups must give one patient per row ({len(y)}); got {len(groups)}")
    minority = int(min(np.sum(y == 0), np.sum(y == 1)))
    if minority < 2:
        raise ValueError(f"{name}: the training set needs at least 2 cases of each class; got "
                         f"{int(np.sum(y == 0))} negative and {int(np.sum(y == 1))} positive")
    keep, dropped = _usable_columns(X_train)
    if not keep:
        raise ValueError(f"{name}: no usable feature in the training set ({len(dropped)} dropped: "
                         f"{dropped['reason'].value_counts().to_dict()})")
    values = X_train[keep].to_numpy(dtype=float)
    params, score = tune_hyperparameters(values, y, groups, seed=seed, cv=cv, kernel=kernel)
    pipeline = _fit_with(values, y, groups, params, seed=seed, cv=cv, kernel=kernel)
    selector: L1SelectFromModel = pipeline.named_steps["lasso"]
    selected = pd.DataFrame({"feature": np.asarray(keep)[selector.get_support()],
                             "coefficient": selector.coefficients()})
    selected = selected.reindex(selected["coefficient"].abs().sort_values(ascending=False).index)
    C = selector.fallback_C_ if selector.fallback_C_ is not None else params["lasso_C"]
    oof = (out_of_fold_scores(values, y, groups, params=None if nested else params, seed=seed, cv=cv, kernel=kernel)
           if out_of_fold else None)
    return FittedFeatureModel(name=name, pipeline=pipeline, features=tuple(keep),
                              selected=selected.reset_index(drop=True), dropped=dropped, C=C, seed=seed,
                              svm_C=params["svm_C"], gamma=params["gamma"], cv_auc=score,
                              folds=len(patient_folds(y, groups, cv=cv, seed=seed)), oof=oof)


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
                              patient_ids: Sequence[Any], *, set_name: str,
                              scores: np.ndarray | None = None) -> pd.DataFrame:
    """Rows of the project-wide Predictions table for one model on one set.

    ``scores`` replaces the model's predictions (the training set's out-of-fold scores).

    Returns:
        DataFrame with columns case_id, patient_id, model, set, y_true, score.
    """
    n = len(X)
    if len(case_ids) != n or len(patient_ids) != n:
        raise ValueError(f"{fitted.name}: case_ids ({len(case_ids)}) and patient_ids ({len(patient_ids)}) "
                         f"must have one entry per row of X ({n})")
    return pd.DataFrame({"case_id": list(case_ids), "patient_id": list(patient_ids), "model": fitted.name,
                         "set": set_name, "y_true": _binary_labels(y, n, fitted.name),
                         "score": predict_scores(fitted, X) if scores is None else np.asarray(scores, float)},
                        columns=list(PREDICTION_COLUMNS))


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
        cv: inner CV folds (grouped by patient) for the hyperparameters, and outer folds of the out-of-fold
            training scores.
        n_jobs: models fitted in parallel (joblib processes); each fit is deterministic for ``seed``, so the
            result does not depend on ``n_jobs``.

    Returns:
        ``(predictions, fitted)``: the Predictions long table (case_id, patient_id, model, set, y_true,
        score) for every model and set (training rows: out-of-fold scores), and per model the :class:`FittedFeatureModel` (selected features with
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
    patients = frame["patient_id"].to_numpy()[train]
    fits = Parallel(n_jobs=n_jobs)(delayed(_fit_recording_warnings)(X.iloc[train], labels[train], name=name,
                                                                     seed=seed, cv=cv, groups=patients)
                                   for name, X in tables.items())
    parts, fitted_models = [], {}
    for (name, X), (fitted, caught) in zip(tables.items(), fits):
        for message, category in caught:  # raised here, as a serial fit would, not on a worker's stderr
            warnings.warn(f"{name}: {message}", category, stacklevel=2)
        for set_name in order:
            rows = (frame["set"] == set_name).to_numpy()
            oof = fitted.oof if set_name == "train" else None  # training rows: out-of-fold, never resubstitution
            parts.append(feature_model_predictions(fitted, X.iloc[rows], labels[rows], frame["case_id"][rows].tolist(),
                                                   frame["patient_id"][rows].tolist(), set_name=set_name, scores=oof))
        fitted_models[name] = fitted
    predictions = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(PREDICTION_COLUMNS))
    return predictions, fitted_models
