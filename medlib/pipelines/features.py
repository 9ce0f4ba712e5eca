"""The feature design: radiomics of a 3D region of interest (whole ROI and habitat subregions), deep features
of the ROI's largest slices from a CNN, LASSO selection and an SVM per feature set, fitted on the training set
only (the ICH design; any cohort with an image and a mask column).

The steps, in the order a notebook calls them: ``extract_features`` → ``fit_feature_models`` →
``medlib.pipelines.record.freeze_and_score`` → ``medlib.pipelines.record.run_summary``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from medlib.config import StudyConfig
from medlib.pipelines.prepare import Prepared
from medlib.radiomics.backbone import BackboneWeights


@dataclass
class FeatureSet:
    """The design's feature tables, one row per case (indexed by case_id), and where the deep features'
    backbone weights came from (``medlib.radiomics.backbone.BackboneWeights``)."""

    radiomics: pd.DataFrame
    deep: pd.DataFrame
    habitats: dict[str, pd.DataFrame]
    seconds: dict[str, float] = field(default_factory=dict)
    deep_weights: BackboneWeights | None = None

    def tables(self) -> dict[str, pd.DataFrame]:
        """Feature tables per model: radiomics, deep, fused (prefixed columns), one per habitat subregion."""
        fused = pd.concat([self.radiomics.add_prefix("rad_"), self.deep.add_prefix("deep_")], axis=1)
        return {"Radiomics": self.radiomics, "Deep": self.deep, "Fused": fused, **self.habitats}


@dataclass
class FeatureResults:
    """Fitted feature models (radiomics, deep, fused, habitats): predictions and selected features.

    Attributes:
        predictions: the predictions table (``medlib.schema.PREDICTION_COLUMNS``).
        selected: model → the features LASSO kept, with coefficients.
        candidates: model → the number of candidate features LASSO chose from (after zero-variance drops).
        seconds: step → time.
        features: the feature tables the models were fitted on.
        tuning: model → its tuned hyperparameters and inner-CV AUC (``FittedFeatureModel.tuning``).
    """

    predictions: pd.DataFrame
    selected: dict[str, pd.DataFrame]
    candidates: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    features: FeatureSet | None = None
    tuning: dict[str, dict] = field(default_factory=dict)


def deep_slices(cfg: StudyConfig, cases: list[tuple]) -> dict[object, np.ndarray]:
    """Per case, the distinct ROI slices around the largest cross-section (``radiomics.select_slices``),
    cropped, windowed and resized: an (S, size, size) array; offsets that share a slice keep it once."""
    from medlib.data.imaging import read_image
    from medlib.radiomics.deep import select_slices

    rc, out = cfg.radiomics, {}
    for case_id, image_path, mask_path in cases:
        image, mask = read_image(image_path), read_image(mask_path).array > 0.5
        chosen = select_slices(image.array, mask, image.spacing, rc.deep_offsets_mm, window=rc.deep_window,
                               size=rc.deep_size, case_id=case_id)
        out[case_id] = np.stack(list(dict(zip(chosen.indices, chosen.slices)).values()))
    return out


def deep_backbone(cfg: StudyConfig, prepared: Prepared, slices: dict[object, np.ndarray]):
    """The backbone ``radiomics.deep_weights`` asks for and its weights record. ``trained`` learns from the
    slices of the training set's cases only (``set == "train"``); no other case's slices reach it."""
    from medlib.radiomics.backbone import build_backbone

    rc = cfg.radiomics
    train = prepared.table[prepared.table["set"] == "train"]
    stacks = [slices[c] for c in train["case_id"]]
    labels = np.concatenate([np.full(len(s), y) for s, y in zip(stacks, train["y"])]) if stacks else None
    return build_backbone(rc.deep_weights, rc.deep_model, seed=cfg.train.seed, epochs=rc.deep_epochs,
                          slices=np.concatenate(stacks) if stacks else None, labels=labels, cases=len(train))


def extract_features(cfg: StudyConfig, prepared: Prepared) -> FeatureSet:
    """Radiomics of the whole ROI, radiomics per habitat subregion, and CNN deep features of ROI slices."""
    from medlib.radiomics.deep import slice_features
    from medlib.radiomics.features import radiomics_table

    rc = cfg.radiomics
    table = prepared.table
    image_col, mask_col = cfg.cohort.image_columns[0], cfg.cohort.mask_column
    cases = list(zip(table["case_id"], table[image_col], table[mask_col]))
    seconds = {}
    start = time.perf_counter()
    both = radiomics_table(cases, rc, workers=rc.workers, habitats=rc.habitats, seed=cfg.train.seed)
    habitat_columns = [c for c in both.columns if c.startswith("habitat")]
    radiomics, habitats = both.drop(columns=habitat_columns), _split_habitats(both[habitat_columns], rc.habitats)
    seconds["radiomics (whole ROI and habitats)"] = time.perf_counter() - start
    start = time.perf_counter()
    slices = deep_slices(cfg, cases)
    net, weights = deep_backbone(cfg, prepared, slices)
    seconds[f"deep-feature backbone ({rc.deep_weights})"] = time.perf_counter() - start
    start = time.perf_counter()
    deep_rows = {case_id: slice_features(net, stack) for case_id, stack in slices.items()}
    seconds["deep features"] = time.perf_counter() - start
    deep = pd.DataFrame.from_dict(deep_rows, orient="index").add_prefix("f")
    return FeatureSet(radiomics=radiomics.loc[table["case_id"]], deep=deep.loc[table["case_id"]],
                      habitats={name: t.loc[table["case_id"]] for name, t in habitats.items()}, seconds=seconds,
                      deep_weights=weights)


def _split_habitats(table: pd.DataFrame, k: int) -> dict[str, pd.DataFrame]:
    out = {}
    for h in range(1, k + 1):
        cols = [c for c in table.columns if c.startswith(f"habitat{h}_")]
        if cols:
            out[f"Habitat {h}"] = table[cols]
    return out


def fit_feature_models(cfg: StudyConfig, prepared: Prepared, features: FeatureSet) -> FeatureResults:
    """LASSO selection + SVM per feature set, tuned (inner CV grouped by patient) and fitted on the training set
    only; predictions for every set, the training set's out of fold."""
    from medlib.radiomics.fusion import fit_study_models

    start = time.perf_counter()
    y = prepared.table.set_index("case_id")["y"]
    predictions, fitted = fit_study_models(features.tables(), y, prepared.split.table, seed=cfg.train.seed,
                                           n_jobs=cfg.radiomics.workers)
    return FeatureResults(predictions=predictions, selected={name: f.selected for name, f in fitted.items()},
                          candidates={name: len(f.features) for name, f in fitted.items()},
                          seconds={"fit": time.perf_counter() - start},
                          tuning={name: f.tuning() for name, f in fitted.items()})


def habitat_example(cfg: StudyConfig, prepared: Prepared, *, set_name: str = "test"):
    """One case's largest-ROI slice and its habitat subregions, for the habitat figure (case id only)."""
    from medlib.data.imaging import read_image
    from medlib.radiomics.features import habitat_labels, largest_slice_index

    row = prepared.table[prepared.table["set"] == set_name].iloc[0]
    image = read_image(row[cfg.cohort.image_columns[0]]).array
    mask = read_image(row[cfg.cohort.mask_column]).array > 0.5
    labels = habitat_labels(image, mask, k=cfg.radiomics.habitats, seed=cfg.train.seed)
    k = largest_slice_index(mask)
    return image[k], labels[k], row["case_id"]


def selected_features_table(results: FeatureResults, *, top: int = 8) -> pd.DataFrame:
    """The features LASSO kept per model, with coefficients (largest absolute values first)."""
    rows = []
    for model, table in results.selected.items():
        ordered = table.reindex(table["coefficient"].abs().sort_values(ascending=False).index)
        for _, r in ordered.head(top).iterrows():
            rows.append({"model": model, "feature": r["feature"], "LASSO coefficient": float(r["coefficient"])})
        rows.append({"model": model, "feature": f"({len(table)} selected of {results.candidates[model]})",
                     "LASSO coefficient": float("nan")})
    return pd.DataFrame(rows)


def feature_summary(features: FeatureSet) -> pd.DataFrame:
    """How many features each model's table holds."""
    return pd.DataFrame([{"feature set": k, "features": v.shape[1], "cases": v.shape[0]}
                         for k, v in features.tables().items()])



def summary_fields(cfg: StudyConfig, results: FeatureResults) -> dict:
    """What the run summary (``medlib.pipelines.record.run_summary``) says about a feature-design run, as plain
    data: preprocessing, each model's selected and candidate features and tuned hyperparameters, the deep
    backbone's weights (kind, source, SHA-256), how models were tuned, and what the training AUC is."""
    rc = cfg.radiomics
    weights = results.features.deep_weights if results.features is not None else None
    deep_models = {"Deep", "Fused"}
    models = []
    for name, table in results.selected.items():
        model = {"name": "LASSO (L1 logistic) + SVM", "label": name, "inputs": [name],
                 "selected_features": int(len(table)), "candidate_features": results.candidates.get(name),
                 "tuning": results.tuning.get(name, {})}
        if name in deep_models and weights is not None:
            model["backbone"] = weights.as_dict()
        models.append(model)
    folds = max((t.get("folds", 0) for t in results.tuning.values()), default=0)
    return {
        "preprocessing": dict(bin_width=rc.bin_width, resample_mm=rc.resample_mm, deep_window=list(rc.deep_window),
                              deep_size=rc.deep_size),
        "models": models,
        "deep_weights": weights.as_dict() if weights is not None else None,
        "not_applicable": {},  # every item has its answer: the backbone's weights answer initialisation
        "model_selection": (f"LASSO alpha, SVM C and RBF gamma chosen together by cross-validated AUC in {folds} "
                            f"folds grouped by patient, on the training set only"),
        "training_scores": (f"training-set scores are out-of-fold ({folds} folds grouped by patient, with the tuned "
                            f"hyperparameters), never resubstitution"),
        "training": {"optimizer": "liblinear (LASSO) / libsvm (SVM)", "seed": cfg.train.seed,
                     "feature_classes": list(rc.feature_classes), "habitats": rc.habitats},
        "explainability": ("LASSO coefficients of the selected features"
                           + ("; habitat subregion maps" if rc.habitats else "")),
    }
