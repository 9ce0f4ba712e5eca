"""Dispatch on the params' ``design``: the one place that knows which pipeline fits a study's models."""

from __future__ import annotations

from medlib.config import StudyConfig
from medlib.pipelines.classifier import DeepResults, train_models
from medlib.pipelines.features import FeatureResults, extract_features, fit_feature_models
from medlib.pipelines.prepare import Prepared


def fit_models(cfg: StudyConfig, prepared: Prepared, run=None, *, resume: bool = False,
               progress: bool | None = None) -> DeepResults | FeatureResults:
    """Fit the design's models on the training set and write ``predictions.csv`` into ``run``.

    ``classifier``: every configured CNN (``medlib.pipelines.classifier.train_models``); ``features``: radiomics,
    deep and fused feature models (``extract_features`` then ``fit_feature_models``; the feature tables are kept
    in ``results.features``).
    """
    if cfg.design == "features":
        features = extract_features(cfg, prepared)
        results = fit_feature_models(cfg, prepared, features)
        results.features = features
    else:
        results = train_models(cfg, prepared, run, resume=resume, progress=progress)
    if run is not None:
        run.write_predictions(results.predictions)
    return results
