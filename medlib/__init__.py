"""medlib: a study-in-a-box for clinical imaging AI.

The public API: what a notebook or a user's script calls. Internal modules may move; these names stay.

    import medlib

    cfg = medlib.load_study("params/nec.yaml")           # validated params (medlib.config)
    prepared = medlib.prepare(cfg)                      # cohort + patient-level split (medlib.pipelines)
    results = medlib.fit_models(cfg, prepared)          # the design's models, predictions on every set
    medlib.stats.auc_ci(y_true, y_score)                # statistics (pROC / dcurves-checked)
    medlib.build_model("resnet18", in_channels=1)       # the model registry (medlib.learn)
    medlib.run_study("nec")                             # the whole study → reports/nec.ipynb (papermill)

Names are imported on first use, so ``import medlib`` stays light (torch loads only with a model). The layers,
bottom to top: ``schema``, ``config`` → ``data``, ``stats``, ``synth`` → ``learn``, ``radiomics``, ``explain``
→ ``runs`` → ``pipelines`` → ``report`` → ``render``, ``viewer`` → ``cli`` (see docs/DESIGN.md).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name → (module, attribute); attribute None = the module itself.
_PUBLIC = {
    "load_config": ("medlib.config", "load_config"),
    "StudyConfig": ("medlib.config", "StudyConfig"),
    "ConfigError": ("medlib.config", "ConfigError"),
    "load_study": ("medlib.pipelines.prepare", "load_study"),
    "prepare": ("medlib.pipelines.prepare", "prepare"),
    "fit_models": ("medlib.pipelines.design", "fit_models"),
    "freeze_thresholds": ("medlib.pipelines.record", "freeze_thresholds"),
    "load_cohort": ("medlib.data.cohort", "load_cohort"),
    "split_cohort": ("medlib.data.cohort", "split_cohort"),
    "read_image": ("medlib.data.imaging", "read_image"),
    "build_model": ("medlib.learn.models", "build_model"),
    "available_models": ("medlib.learn.models", "available_models"),
    "fit": ("medlib.learn.train", "fit"),
    "predict": ("medlib.learn.train", "predict"),
    "run_study": ("medlib.cli.runner", "run_study"),
    "render_reports": ("medlib.render.site", "render_reports"),
    "schema": ("medlib.schema", None),
    "stats": ("medlib.stats", None),
    "synth": ("medlib.synth", None),
    "viewer": ("medlib.viewer", None),
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'medlib' has no attribute {name!r}")
    module_name, attribute = _PUBLIC[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
