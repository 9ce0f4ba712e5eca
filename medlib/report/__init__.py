"""What a study report shows, built from the run's record: tables, the reporting checklist, sentences and figures.

- ``format``: how numbers are written (estimates with intervals, p-values, counts, durations, set names).
- ``tables``: thresholds frozen on validation, performance (numbers: ``performance_values``; display:
  ``performance_table``), DeLong, calibration, split summary, cohort flow and provenance tables.
- ``reference``: reference keys and the comparison of this run's numbers with published results.
- ``checklist`` (answers in ``checklist_answers``): the CLAIM 2024 checklist, filled from the run summary.
- ``narrative``: the report's sentences about the study, from the params file.
- ``figures``: matplotlib figures (ROC, calibration, decision curves, confusion, learning curves, Grad-CAM,
  habitats); ``display``: tables as Markdown and figures in the notebook.

Nothing here computes a statistic (``medlib.stats`` does) or names a study: every study-specific word comes from
the run's config and record. The figure functions are imported on first use, so tables load without matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

from medlib.report.checklist import AUTHOR, CLAIM_2024, ChecklistItem, claim_checklist
from medlib.report.display import markdown_table, show_figure, show_markdown, show_table
from medlib.report.format import (
    NOT_RECORDED,
    fmt_count_pct,
    fmt_estimate,
    fmt_number,
    fmt_p,
    fmt_seconds,
    join_words,
    plural,
    set_label,
)
from medlib.report.reference import ReferenceKey, parse_reference_key, reference_comparison
from medlib.report.tables import (
    calibration_table,
    cohort_flow,
    delong_table,
    method_note,
    performance_table,
    performance_values,
    provenance_table,
    split_summary,
)

_FIGURES = ("model_colors", "plot_calibration", "plot_cam_gallery", "plot_cam_volume_gallery",
            "plot_confusion_matrices", "plot_decision_curve", "plot_example_images", "plot_habitat_map",
            "plot_learning_curves", "plot_roc")

__all__ = [
    "AUTHOR", "CLAIM_2024", "NOT_RECORDED", "ChecklistItem", "ReferenceKey", "calibration_table", "claim_checklist",
    "cohort_flow", "delong_table", "fmt_count_pct", "fmt_estimate", "fmt_number", "fmt_p", "fmt_seconds",
    "join_words", "markdown_table", "method_note", "parse_reference_key", "performance_table",
    "performance_values", "plural", "provenance_table", "reference_comparison", "set_label", "show_figure",
    "show_markdown", "show_table", "split_summary", *_FIGURES,
]


def __getattr__(name: str) -> Any:
    if name not in _FIGURES:
        raise AttributeError(f"module 'medlib.report' has no attribute {name!r}")
    return getattr(importlib.import_module("medlib.report.figures"), name)
