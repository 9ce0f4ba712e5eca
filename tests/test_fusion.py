"""Tests for medlib.radiomics.fusion: training-only fitting, LASSO selection, determinism, Predictions schema."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medlib.radiomics.fusion import (
    build_fusion_model,
    feature_model_predictions,
    fit_feature_model,
    fit_study_models,
    predict_scores,
)
from medlib.schema import PREDICTION_COLUMNS


def _problem(n=120, p=15, seed=0):
    """Features f0..f{p-1}; the outcome depends on f0 and f1 only."""
    rng = np.random.default_rng(seed)
    ids = [f"c{i:03d}" for i in range(n)]
    X = pd.DataFrame(rng.normal(size=(n, p)), columns=[f"f{i}" for i in range(p)], index=ids)
    y = pd.Series(((X["f0"] + 0.8 * X["f1"] + rng.normal(scale=0.6, size=n)) > 0).astype(int), index=ids)
    sets = np.array(["train"] * 70 + ["val"] * 20 + ["test"] * 20 + ["external"] * 10)
    split = pd.DataFrame({"case_id": ids, "patient_id": [f"p{i // 2}" for i in range(n)], "set": sets})
    return X, y, split


@pytest.fixture(scope="module")
def problem():
    return _problem()


@pytest.fixture(scope="module")
def fitted(problem):
    X, y, split = problem
    train = (split["set"] == "train").to_numpy()
    return fit_feature_model(X[train], y[train], name="Radiomics", seed=0)


def test_pipeline_steps():
    assert list(build_fusion_model().named_steps) == ["scale", "lasso", "svm"]


def test_fitted_on_training_rows_only(problem, fitted):
    X, _, split = problem
    train = (split["set"] == "train").to_numpy()
    scaler = fitted.pipeline.named_steps["scale"]
    np.testing.assert_allclose(scaler.mean_, X[train].mean().to_numpy())
    assert not np.allclose(scaler.mean_, X.mean().to_numpy())


def test_lasso_finds_informative_features(fitted):
    chosen = list(fitted.selected["feature"])
    assert chosen[:2] == ["f0", "f1"] or chosen[:2] == ["f1", "f0"]
    assert len(chosen) <= 8
    assert (fitted.selected["coefficient"] > 0).iloc[:2].all()
    assert list(fitted.selected.columns) == ["feature", "coefficient"]


def test_scores_are_probabilities_and_discriminate(problem, fitted):
    X, y, split = problem
    test = (split["set"] == "test").to_numpy()
    scores = predict_scores(fitted, X[test])
    assert scores.shape == (test.sum(),) and ((scores >= 0) & (scores <= 1)).all()
    from sklearn.metrics import roc_auc_score
    assert roc_auc_score(y[test], scores) > 0.8


def test_deterministic_for_a_seed(problem, fitted):
    X, y, split = problem
    train = (split["set"] == "train").to_numpy()
    again = fit_feature_model(X[train], y[train], name="Radiomics", seed=0)
    np.testing.assert_array_equal(predict_scores(again, X), predict_scores(fitted, X))
    pd.testing.assert_frame_equal(again.selected, fitted.selected)


def test_zero_variance_and_non_finite_columns_dropped_with_note(problem):
    X, y, split = problem
    X = X.assign(const=3.0, broken=np.r_[np.nan, np.zeros(len(X) - 1)] + X["f2"].to_numpy())
    train = (split["set"] == "train").to_numpy()
    model = fit_feature_model(X[train], y[train], name="R", seed=0)
    dropped = dict(zip(model.dropped["feature"], model.dropped["reason"]))
    assert dropped == {"const": "zero variance in the training set",
                       "broken": "non-finite values in the training set"}
    assert "const" not in model.features and "broken" not in model.features


def test_at_least_one_feature_survives():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 4))
    y = np.array([0, 1] * 20)  # unrelated to X: a strong L1 penalty zeroes every coefficient
    pipe = build_fusion_model(lasso_C=1e-3, cv=3).fit(X, y)
    selector = pipe.named_steps["lasso"]
    assert selector.fallback_C_ is not None  # the fallback was exercised
    assert selector.get_support().sum() == 1 and len(selector.coefficients()) == 1
    assert pipe.predict_proba(X).shape == (40, 2)


def test_fit_input_errors(problem):
    X, y, _ = problem
    with pytest.raises(ValueError, match="at least 2 cases of each class"):
        fit_feature_model(X.iloc[:10], np.r_[np.zeros(9), 1], name="m")
    with pytest.raises(ValueError, match="0/1 labels"):
        fit_feature_model(X.iloc[:10], np.arange(10), name="m")
    with pytest.raises(ValueError, match="no usable feature"):
        fit_feature_model(pd.DataFrame({"a": np.ones(10)}), np.r_[np.zeros(5), np.ones(5)], name="m")


def test_predict_errors_name_rows_and_columns(problem, fitted):
    X, _, _ = problem
    with pytest.raises(KeyError, match="lacks"):
        predict_scores(fitted, X.drop(columns=["f0"]))
    bad = X.iloc[:3].copy()
    bad.iloc[1, 0] = np.nan
    with pytest.raises(ValueError, match="c001"):
        predict_scores(fitted, bad)


def test_feature_model_predictions_schema(problem, fitted):
    X, y, split = problem
    rows = (split["set"] == "val").to_numpy()
    table = feature_model_predictions(fitted, X[rows], y[rows], split["case_id"][rows], split["patient_id"][rows],
                                      set_name="val")
    assert tuple(table.columns) == PREDICTION_COLUMNS
    assert (table["model"] == "Radiomics").all() and (table["set"] == "val").all()
    assert table["y_true"].tolist() == y[rows].tolist()


@pytest.fixture(scope="module")
def study(problem):
    X, y, split = problem
    tables = {"Radiomics": X[["f0", "f2", "f3", "f4"]], "Deep": X[["f1", "f5", "f6"]]}
    tables["Fused"] = pd.concat([tables["Radiomics"].add_prefix("rad_"), tables["Deep"].add_prefix("deep_")],
                                axis=1)
    return tables, fit_study_models(tables, y, split, seed=0)


def test_fit_study_models_predicts_every_set(problem, study):
    _, y, split = problem
    tables, (predictions, selected) = study
    assert tuple(predictions.columns) == PREDICTION_COLUMNS
    counts = predictions.groupby(["model", "set"]).size()
    for model in tables:
        for set_name, n in split["set"].value_counts().items():
            assert counts[(model, set_name)] == n
    merged = predictions.merge(split, on="case_id")
    assert (merged["set_x"] == merged["set_y"]).all() and (merged["patient_id_x"] == merged["patient_id_y"]).all()
    assert (predictions["y_true"].to_numpy() == y.loc[predictions["case_id"]].to_numpy()).all()
    assert set(selected) == set(tables)
    assert any(f.startswith("rad_") for f in selected["Fused"].selected["feature"])
    assert selected["Fused"].dropped.empty and selected["Fused"].C > 0


def test_fit_study_models_ignores_non_training_rows(problem, study):
    """Perturbing val/test/external features changes nothing that was fitted."""
    X, y, split = problem
    tables, (predictions, selected) = study
    rng = np.random.default_rng(9)
    held_out = (split["set"] != "train").to_numpy()
    noisy = {}
    for name, table in tables.items():
        t = table.copy()
        t.loc[held_out] = rng.normal(scale=5.0, size=(held_out.sum(), t.shape[1]))
        noisy[name] = t
    y_noisy = y.copy()
    y_noisy[held_out] = 1 - y_noisy[held_out]
    again, selected_again = fit_study_models(noisy, y_noisy, split, seed=0)
    train = predictions["set"] == "train"
    np.testing.assert_array_equal(again.loc[train, "score"], predictions.loc[train, "score"])
    for name in tables:
        pd.testing.assert_frame_equal(selected_again[name].selected, selected[name].selected)


def test_fit_study_models_in_parallel_equals_serial(study, problem):
    _, y, split = problem
    tables, (predictions, selected) = study
    again, selected_again = fit_study_models(tables, y, split, seed=0, n_jobs=2)
    pd.testing.assert_frame_equal(again, predictions)
    for name in tables:
        pd.testing.assert_frame_equal(selected_again[name].selected, selected[name].selected)
        pd.testing.assert_frame_equal(selected_again[name].dropped, selected[name].dropped)
        assert selected_again[name].C == selected[name].C


def test_fit_study_models_raises_each_fit_warning_once_with_the_model_name(study, problem, monkeypatch):
    """Warnings of a fit are recorded where it ran (a joblib worker's stderr is nobody's) and raised again here."""
    import warnings

    from medlib.radiomics import fusion

    _, y, split = problem
    tables, _ = study
    original = fusion.fit_feature_model

    def noisy_fit(*args, **kwargs):
        for _ in range(3):
            warnings.warn("liblinear did not converge", RuntimeWarning)
        return original(*args, **kwargs)

    monkeypatch.setattr(fusion, "fit_feature_model", noisy_fit)
    with pytest.warns(RuntimeWarning) as caught:
        fit_study_models({"Radiomics": tables["Radiomics"]}, y, split, seed=0)
    assert [str(w.message) for w in caught if w.category is RuntimeWarning] == [
        "Radiomics: liblinear did not converge"]


def test_fit_study_models_reports_dropped_and_missing_cases(problem):
    X, y, split = problem
    table = X[["f0", "f1"]].assign(const=1.0)
    _, selected = fit_study_models({"R": table}, y, split, seed=0)
    assert selected["R"].dropped.to_dict("records") == [{"feature": "const",
                                                         "reason": "zero variance in the training set"}]
    with pytest.raises(ValueError, match="lacks 1 case"):
        fit_study_models({"R": table.iloc[1:]}, y, split, seed=0)
    with pytest.raises(ValueError, match="unknown set name"):
        fit_study_models({"R": table}, y, split.assign(set="holdout"), seed=0)


# ------------------------------------------------------------------ tuning grouped by patient (issue 15.9)


def _duplicated_noise(n_patients=36, copies=3, p=8, seed=5):
    """Pure-noise features, each patient's row repeated: anything above chance is leakage between folds."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n_patients, p))
    y = np.repeat(rng.permutation(np.arange(n_patients) % 2), copies)
    X = pd.DataFrame(np.repeat(base, copies, axis=0) + rng.normal(scale=1e-3, size=(n_patients * copies, p)),
                     columns=[f"f{i}" for i in range(p)])
    return X, y, np.repeat(np.arange(n_patients), copies)


def test_inner_folds_never_split_a_patient():
    from medlib.radiomics.fusion import patient_folds

    _, y, groups = _duplicated_noise()
    folds = patient_folds(y, groups, cv=4, seed=0)
    assert len(folds) == 4
    for fit_rows, held in folds:
        assert not set(groups[fit_rows]) & set(groups[held])
        assert set(y[held]) == {0, 1}
    with pytest.raises(ValueError, match="at least 2 patients of each class"):
        patient_folds(np.array([0, 0, 1, 1]), np.array([1, 1, 2, 2]), cv=3, seed=0)


def test_tuning_is_the_search_gridsearchcv_makes():
    """Reference: scikit-learn's GridSearchCV over the same pipeline, grid and patient folds."""
    from sklearn.model_selection import GridSearchCV

    from medlib.radiomics.fusion import LASSO_CS, SVM_CS, SVM_GAMMAS, patient_folds, tune_hyperparameters

    X, y, _ = _problem(seed=2)
    X, y = X.to_numpy()[:60, :6], y.to_numpy()[:60]
    groups = np.arange(60) // 2
    params, score = tune_hyperparameters(X, y, groups, seed=0, cv=3)
    grid = {"lasso__estimator__C": list(LASSO_CS), "svm__C": list(SVM_CS), "svm__gamma": list(SVM_GAMMAS)}
    search = GridSearchCV(build_fusion_model(calibrate=False), grid, scoring="roc_auc",
                          cv=patient_folds(y, groups, cv=3, seed=0), refit=False).fit(X, y)
    assert params == {"lasso_C": search.best_params_["lasso__estimator__C"], "svm_C": search.best_params_["svm__C"],
                      "gamma": search.best_params_["svm__gamma"]}
    assert score == pytest.approx(search.best_score_, abs=1e-12)


def test_training_auc_is_out_of_fold_by_patient_never_resubstitution():
    from sklearn.metrics import roc_auc_score

    X, y, groups = _duplicated_noise()
    ids = [f"c{i}" for i in range(len(y))]
    X.index = ids
    split = pd.DataFrame({"case_id": ids, "patient_id": [f"p{g}" for g in groups], "set": "train"})
    split.loc[split["patient_id"].isin({"p0", "p1", "p2", "p3"}), "set"] = "val"
    preds, fitted = fit_study_models({"Noise": X}, pd.Series(y, index=ids), split, seed=0, cv=3)
    train = preds[preds["set"] == "train"]
    rows = (split["set"] == "train").to_numpy()
    resub = predict_scores(fitted["Noise"], X[rows])
    assert not np.allclose(train["score"].to_numpy(), resub)  # not the model's own fit on these rows
    np.testing.assert_allclose(train["score"].to_numpy(), fitted["Noise"].oof)
    # noise: an honest (patient-grouped, out-of-fold) AUC is near chance; resubstitution memorises the patients
    # (its ranking is far from chance, in either direction: the Platt sigmoid fitted on noise may invert it)
    assert abs(roc_auc_score(y[rows], train["score"]) - 0.5) < 0.25
    assert abs(roc_auc_score(y[rows], resub) - 0.5) > 0.3
    tuning = fitted["Noise"].tuning()
    assert tuning["folds"] == 3 and tuning["lasso_alpha"] == pytest.approx(1 / tuning["lasso_C"])
    assert {"svm_C", "gamma", "inner_cv_auc", "selected", "candidates"} <= set(tuning)
