"""Explore a cohort and a finished run in JupyterLab; reads the run's record and recomputes nothing it decided.

Modules:

* :mod:`medlib.viewer.images`: display windows, slices, mask outlines, Grad-CAM maps fitted to the image, panels
  rendered to a figure or PNG;
* :mod:`medlib.viewer.cohort`: the case table with the run's sets, class balance, image statistics, intensity
  histograms and out-of-range flags, for the explore notebook;
* :mod:`medlib.viewer.run`: reading a finished run (``split.csv``, ``predictions.csv``, ``metrics.json``,
  ``cams/``) and its frozen thresholds;
* :mod:`medlib.viewer.cases`: TP/FP/TN/FN outcomes, case filters and the case's information panel;
* :mod:`medlib.viewer.browser`: the ipywidgets ``CohortBrowser`` (it re-exports every name below, so
  ``from medlib.viewer import browser as viewer`` works as ``from medlib import viewer`` does).
"""

from medlib.viewer.browser import CohortBrowser
from medlib.viewer.cases import (DISPLAY_META, OUTCOMES, case_info_html, filter_cases, outcome_of,
                                 with_outcomes)
from medlib.viewer.cohort import (ALL, INTERNAL, NO_RUN_NOTE, NOT_IN_SPLIT, case_table, class_balance,
                                  flag_out_of_range, image_stats, intensity_histograms, plot_image_stats,
                                  plot_intensity_histograms, robust_z, size_spacing_table)
from medlib.viewer.images import (HABITAT_COLORS, MASK_COLOR, Panel, cam_for_view, default_slice, default_window,
                                  figure_png, fit_to_shape, intensity_range, mask_outline, render_case,
                                  slice_volume, window_image)
from medlib.viewer.run import RunData, RunThreshold, cam_path, model_inputs, read_run, run_thresholds

__all__ = [
    "CohortBrowser",
    "window_image", "intensity_range", "default_window", "slice_volume", "default_slice", "mask_outline",
    "fit_to_shape", "cam_for_view", "Panel", "render_case", "figure_png", "HABITAT_COLORS", "MASK_COLOR",
    "ALL", "INTERNAL", "NOT_IN_SPLIT", "NO_RUN_NOTE", "case_table", "class_balance", "image_stats",
    "size_spacing_table", "intensity_histograms", "robust_z", "flag_out_of_range", "plot_intensity_histograms",
    "plot_image_stats", "OUTCOMES", "DISPLAY_META", "outcome_of", "with_outcomes", "filter_cases",
    "case_info_html", "RunData", "read_run", "RunThreshold", "run_thresholds", "cam_path", "model_inputs",
]
