"""Hand-crafted and deep features of a study's ROIs, and the models fitted on them.

Modules, each the one owner of its contract:

* ``features``: pyradiomics settings and extraction for one ROI (``radiomics_features``), per habitat
  subregion (``habitat_radiomics``), and for many cases with a process pool (``radiomics_table``).
* ``ibsi``: the IBSI 1 digital-phantom verification: pyradiomics names mapped to IBSI features, the known
  deviations and the phantom's settings.
* ``habitats``: ROI subregions by intensity and local texture (``habitat_labels``).
* ``deep``: slices around the largest ROI cross-section and pooled CNN activations (``ich_deep_features``).
* ``backbone``: the deep features' CNN and where its weights came from (``build_backbone``, ``BackboneWeights``):
  trained on training ROIs only, torchvision's ImageNet file (SHA-256 checked) or random (an ablation).
* ``fusion``: LASSO selection + SVM per feature set, tuned in patient-grouped folds and fitted on the training
  set only (``fit_study_models``).

The names below are the package's public face, e.g. ``from medlib.radiomics import radiomics_table``. They are
imported on first use, so that the process-pool workers of ``radiomics_table``, which import
``medlib.radiomics.features``, do not load scikit-learn's models for ``fusion`` or torch for ``deep``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name → the module of this package that defines it.
_PUBLIC = {
    **dict.fromkeys(("FEATURE_CLASSES", "resolve_settings", "radiomics_settings", "radiomics_features",
                     "habitat_radiomics", "radiomics_table"), "features"),
    **dict.fromkeys(("IBSI_PHANTOM_MAP", "IBSI_KNOWN_DEVIATIONS", "ibsi_phantom_settings"), "ibsi"),
    "habitat_labels": "habitats",
    **dict.fromkeys(("SliceSelection", "largest_slice_index", "slice_indices", "select_slices", "extract_features",
                     "ich_deep_features"), "deep"),
    **dict.fromkeys(("L1SelectFromModel", "build_fusion_model", "FittedFeatureModel", "fit_feature_model",
                     "predict_scores", "feature_model_predictions", "fit_study_models", "patient_folds",
                     "tune_hyperparameters", "out_of_fold_scores"), "fusion"),
    **dict.fromkeys(("BackboneWeights", "build_backbone"), "backbone"),
}

__all__ = [  # the keys of _PUBLIC, spelled out for linters and readers
    "FEATURE_CLASSES", "resolve_settings", "radiomics_settings", "radiomics_features", "habitat_radiomics",
    "radiomics_table",
    "IBSI_PHANTOM_MAP", "IBSI_KNOWN_DEVIATIONS", "ibsi_phantom_settings",
    "habitat_labels",
    "SliceSelection", "largest_slice_index", "slice_indices", "select_slices", "extract_features",
    "ich_deep_features",
    "L1SelectFromModel", "build_fusion_model", "FittedFeatureModel", "fit_feature_model", "predict_scores",
    "feature_model_predictions", "fit_study_models", "patient_folds", "tune_hyperparameters", "out_of_fold_scores",
    "BackboneWeights", "build_backbone",
]

if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from medlib.radiomics.backbone import BackboneWeights, build_backbone
    from medlib.radiomics.deep import (SliceSelection, extract_features, ich_deep_features, largest_slice_index,
                                       select_slices, slice_indices)
    from medlib.radiomics.features import (FEATURE_CLASSES, habitat_radiomics, radiomics_features,
                                           radiomics_settings, radiomics_table, resolve_settings)
    from medlib.radiomics.fusion import (FittedFeatureModel, L1SelectFromModel, build_fusion_model,
                                         feature_model_predictions, fit_feature_model, fit_study_models,
                                         out_of_fold_scores, patient_folds, predict_scores, tune_hyperparameters)
    from medlib.radiomics.habitats import habitat_labels
    from medlib.radiomics.ibsi import IBSI_KNOWN_DEVIATIONS, IBSI_PHANTOM_MAP, ibsi_phantom_settings


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
