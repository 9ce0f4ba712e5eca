"""The feature design: radiomics of a 3D region of interest (whole ROI and habitat subregions), deep features
of the ROI's largest slices from a CNN, LASSO selection and an SVM per feature set, fitted on the training set
only (the ICH design; any cohort with an image and a mask column).

The steps, in the order a notebook calls them: ``extract_features`` → ``fit_feature_models`` →
``medlib.pipelines.record.freeze_and_score`` → ``medlib.pipelines.record.run_summary``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd

from medlib.config import StudyConfig
from medlib.pipelines.prepare import Prepared


@dataclass
class FeatureSet:
    """The design's feature tables, one row per case (indexed by case_id)."""

    radiomics: pd.DataFrame
    deep: pd.DataFrame
    habitats: dict[str, pd.DataFrame]
    seconds: dict[str, float] = field(default_factory=dict)

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
    """

    predictions: pd.DataFrame
    selected: dict[str, pd.DataFrame]
    candidates: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    features: FeatureSet | None = None


def _deep_backbone(cfg: StudyConfig):
    """The deep-feature CNN, initialised from the run's seed (``train.seed``), so that two runs with the same
    params give the same features; the caller's random state is left as it was."""
    import torch

    from medlib.learn.models import build_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        net = build_model(cfg.radiomics.deep_model, in_channels=1, num_classes=2, spatial_dims=2,
                          pretrained=False)
    return net.eval()


def extract_features(cfg: StudyConfig, prepared: Prepared) -> FeatureSet:
    """Radiomics of the whole ROI, radiomics per habitat subregion, and CNN deep features of ROI slices."""
    from medlib.data.imaging import read_image
    from medlib.radiomics.features import ich_deep_features, radiomics_table

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
    net = _deep_backbone(cfg)
    deep_rows = {}
    for case_id, image_path, mask_path in cases:
        image, mask = read_image(image_path), read_image(mask_path).array > 0.5
        deep_rows[case_id] = ich_deep_features(image.array, mask, image.spacing, net,
                                               offsets_mm=rc.deep_offsets_mm, window=rc.deep_window,
                                               size=rc.deep_size, case_id=case_id)
    seconds["deep features"] = time.perf_counter() - start
    deep = pd.DataFrame.from_dict(deep_rows, orient="index").add_prefix("f")
    return FeatureSet(radiomics=radiomics.loc[table["case_id"]], deep=deep.loc[table["case_id"]],
                      habitats={name: t.loc[table["case_id"]] for name, t in habitats.items()}, seconds=seconds)


def _split_habitats(table: pd.DataFrame, k: int) -> dict[str, pd.DataFrame]:
    out = {}
    for h in range(1, k + 1):
        cols = [c for c in table.columns if c.startswith(f"habitat{h}_")]
        if cols:
            out[f"Habitat {h}"] = table[cols]
    return out


def fit_feature_models(cfg: StudyConfig, prepared: Prepared, features: FeatureSet) -> FeatureResults:
    """LASSO selection + SVM per feature set, fitted on the training set only; predictions for every set."""
    from medlib.radiomics.fusion import fit_study_models

    start = time.perf_counter()
    y = prepared.table.set_index("case_id")["y"]
    predictions, fitted = fit_study_models(features.tables(), y, prepared.split.table, seed=cfg.train.seed,
                                           n_jobs=cfg.radiomics.workers)
    return FeatureResults(predictions=predictions, selected={name: f.selected for name, f in fitted.items()},
                          candidates={name: len(f.features) for name, f in fitted.items()},
                          seconds={"fit": time.perf_counter() - start})


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

