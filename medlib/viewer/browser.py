"""The JupyterLab case browser (ipywidgets), wiring the pure functions of the other viewer modules.

The package's public names are in ``medlib.viewer`` (``from medlib import viewer``); this module holds only
:class:`CohortBrowser`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import pandas as pd

from medlib.schema import ordered_sets
from medlib.viewer.cases import OUTCOMES, _esc, case_info_html, filter_cases
from medlib.viewer.cohort import ALL, case_table
from medlib.viewer.images import (Panel, cam_for_view, default_slice, default_window, figure_png, intensity_range,
                                  render_case, slice_volume, window_image)
from medlib.viewer.run import RunThreshold, cam_path, model_inputs, read_run, run_thresholds

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["CohortBrowser"]


@dataclass
class _CaseData:
    """The current case's images, read once; derived overlays are cached per case."""

    case_id: str
    images: dict[str, Any]
    mask: np.ndarray | None
    derived: dict[Any, Any] = field(default_factory=dict)


class CohortBrowser:
    """Browse a cohort's cases, and a finished run's predictions and Grad-CAMs, in JupyterLab.

    Filters: label, set, and (with a run) model and outcome (TP/FP/TN/FN at the model's threshold). The
    image shows every input of the case side by side (one view, two views, three MR sequences), with a
    window/level per input, a slice slider and axis choice for volumes, the mask outline and the habitat
    subregions (when the cohort has a mask), and the run's Grad-CAM with an opacity slider. Beside it:
    the case's covariates, the score and the threshold, with where the threshold came from.

    Each new case opens with its inputs' default windows (the params file's ``image.window`` when set, else
    the 1st to 99th percentile) and, for volumes, the slice with the largest mask area (else the middle one).

    Display it in a notebook cell (``browser`` or ``display(browser.widget)``); the widgets are attributes,
    so a script or a test can set values and read what is shown (``image.value`` is PNG bytes,
    ``last_panels`` the arrays drawn).

    Args:
        cohort: a validated ``Cohort`` (``medlib.data.cohort.load_cohort``).
        run_dir: a finished run folder ``runs/<study>/<run-id>/`` (optional).
        config: the study's ``StudyConfig`` (optional; the run's ``config.yaml`` is used when not given).
    """

    def __init__(self, cohort: Any, *, run_dir: str | Path | None = None, config: Any = None) -> None:
        self.cohort = cohort
        self.run = read_run(run_dir)
        self.config = config if config is not None else self.run.config
        self.run_config = self.run.config if self.run.config is not None else config
        self.table, self.sets_note = case_table(cohort, run=self.run)
        self.thresholds = self._thresholds()
        self.last_panels: list[Panel] = []
        self._case: _CaseData | None = None
        self._quiet_depth = 0
        self._build()
        self.refresh()

    # -- set-up
    def _thresholds(self) -> dict[str, RunThreshold]:
        """The run's frozen thresholds (none without a run)."""
        if self.run.predictions is None:
            return {}
        return run_thresholds(self.run.predictions, self.run.metrics)

    @property
    def image_columns(self) -> tuple[str, ...]:
        """The cohort's image inputs, drawn left to right."""
        return tuple(self.cohort.config.image_columns)

    @property
    def mask_column(self) -> str | None:
        """The cohort's mask column (None: no mask)."""
        return self.cohort.config.mask_column

    def _build(self) -> None:
        import ipywidgets as w

        cfg = self.cohort.config
        models = list(self.thresholds)
        self.label_filter = w.Dropdown(description="Label", options=[
            ("all", ALL), (f"{cfg.negative} (negative)", "0"), (f"{cfg.positive} (positive)", "1")])
        self.set_filter = w.Dropdown(description="Set", options=[ALL, *ordered_sets(self.table["set"])])
        self.model_select = w.Dropdown(description="Model", options=models or ["(no run)"], disabled=not models)
        self.outcome_filter = w.Dropdown(description="Outcome", options=[ALL, *OUTCOMES], disabled=not models)
        self.case_select = w.Select(description="Case", options=[], rows=12)
        self.count = w.HTML()
        self.notes = w.HTML()
        self._build_view_controls(w)
        self.image = w.Image(format="png")
        self.info = w.HTML()
        self.status = w.HTML()
        self._wire()

    def _build_view_controls(self, w: Any) -> None:
        self.axis = w.Dropdown(description="Axis", options=[("0 (slices)", 0), ("1 (rows)", 1), ("2 (columns)", 2)])
        self.slice = w.IntSlider(description="Slice", min=0, max=0, continuous_update=False)
        self.window = {c: (w.FloatSlider(description=f"{c} level", continuous_update=False, readout_format=".4g"),
                           w.FloatSlider(description=f"{c} width", continuous_update=False, readout_format=".4g"))
                       for c in self.image_columns}
        has_mask, has_cams = self.mask_column is not None, self.run.cams_dir is not None
        self.show_mask = w.Checkbox(description="mask outline", value=has_mask, disabled=not has_mask)
        self.show_habitats = w.Checkbox(description="habitat subregions", value=False, disabled=not has_mask)
        self.show_cam = w.Checkbox(description="Grad-CAM", value=False, disabled=not has_cams)
        self.cam_alpha = w.FloatSlider(description="CAM opacity", min=0.0, max=1.0, step=0.05, value=0.4,
                                       continuous_update=False, disabled=not has_cams)

    def _wire(self) -> None:
        for widget in (self.label_filter, self.set_filter, self.model_select, self.outcome_filter):
            widget.observe(lambda _: self.refresh(), names="value")
        self.case_select.observe(lambda change: None if self._quiet_depth else self.show_case(change["new"]),
                                 names="value")
        self.axis.observe(lambda _: self._reset_slice(), names="value")
        redraw = [self.slice, self.show_mask, self.show_habitats, self.show_cam, self.cam_alpha]
        for widget in redraw + [s for pair in self.window.values() for s in pair]:
            widget.observe(lambda _: self.render(), names="value")

    @contextlib.contextmanager
    def _quiet(self) -> Iterator[None]:
        """Batch widget updates without a redraw per change."""
        self._quiet_depth += 1
        try:
            yield
        finally:
            self._quiet_depth -= 1

    @property
    def widget(self) -> Any:
        """The whole browser as one ipywidgets box."""
        import ipywidgets as w

        if not hasattr(self, "_widget"):
            filters = w.HBox([w.VBox([self.label_filter, self.set_filter]),
                              w.VBox([self.model_select, self.outcome_filter])])
            windows = [s for pair in self.window.values() for s in pair]
            controls = w.VBox([self.axis, self.slice, *windows, self.show_mask, self.show_habitats,
                               self.show_cam, self.cam_alpha])
            left = w.VBox([self.case_select, self.count, controls], layout=w.Layout(flex="0 0 auto"))
            view = w.VBox([self.image, self.status], layout=w.Layout(flex="1 1 auto", min_width="320px",
                                                                   max_width="480px"))
            self.info.layout = w.Layout(flex="1 1 300px", min_width="260px")  # beside the image, text wraps
            self._widget = w.VBox([filters, self.notes, w.HBox([left, view, self.info],
                                                                 layout=w.Layout(flex_flow="row wrap"))])
        return self._widget

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # -- filtering
    @property
    def model(self) -> str | None:
        """The selected model (None without a run's predictions)."""
        return self.model_select.value if self.thresholds else None

    def filtered(self) -> pd.DataFrame:
        """The cases the current filters select (with the model's score and outcome when there is a run)."""
        label = None if self.label_filter.value == ALL else int(self.label_filter.value)
        return filter_cases(self.table, label=label,
                            set_name=None if self.set_filter.value == ALL else self.set_filter.value,
                            outcome=None if self.outcome_filter.value == ALL else self.outcome_filter.value,
                            predictions=self.run.predictions if self.model else None,
                            thresholds=self.thresholds, model=self.model)

    def refresh(self) -> None:
        """Apply the filters: update the case list, the counts and the threshold note; show the selected case."""
        cases = self.filtered()
        label_col = self.cohort.config.label_column
        options = [(f"{r['case_id']} · {r[label_col]}" + (f" · {r['outcome']}" if r.get("outcome") else ""),
                    str(r["case_id"])) for _, r in cases.iterrows()]
        current = self.case_select.value
        self._filtered = cases
        with self._quiet():
            self.case_select.options = options
            values = [v for _, v in options]
            self.case_select.value = current if current in values else (values[0] if values else None)
        self.count.value = f"{len(cases)} of {len(self.table)} cases"
        self.notes.value = self._notes_html()
        self.show_case(self.case_select.value)

    def _notes_html(self) -> str:
        parts = [self.sets_note]
        if self.model:
            t = self.thresholds[self.model]
            parts.append(f"Threshold for {self.model}: {t.value:.4g} ({t.source}).")
        elif self.run.path is None:
            parts.append("No run given: no predictions, outcomes or Grad-CAM.")
        return "<br>".join(_esc(p) for p in parts)

    # -- the case
    def show_case(self, case_id: str | None) -> None:
        """Read the case's images (once) and draw it; None clears the view."""
        if case_id is None:
            self._case, self.last_panels = None, []
            self.image.value, self.info.value = b"", "<i>no case matches the filters</i>"
            return
        if self._case is None or self._case.case_id != case_id:
            self._case = self._read_case(case_id)
            self._reset_controls()
        self.info.value = self._info()
        self.render()

    def _row(self, case_id: str) -> pd.Series:
        source = self._filtered if case_id in set(self._filtered["case_id"]) else self.table
        return source[source["case_id"] == case_id].iloc[0]

    def _read_case(self, case_id: str) -> _CaseData:
        from medlib.data.imaging import read_image

        row = self._row(case_id)
        images = {c: read_image(row[c]) for c in self.image_columns}
        mask = read_image(row[self.mask_column]).array > 0.5 if self.mask_column else None
        return _CaseData(case_id=case_id, images=images, mask=mask)

    def _info(self) -> str:
        cfg = self.cohort.config
        return case_info_html(self._row(self._case.case_id), cfg.covariates, label_column=cfg.label_column,
                              images=self._case.images, model=self.model,
                              threshold=self.thresholds.get(self.model) if self.model else None)

    def _reset_controls(self) -> None:
        """New case: each input's window to its default, the slice to the mask's largest or the middle one."""
        with self._quiet():
            for column, image in self._case.images.items():
                self._set_window(column, image)
            volume = self._volume_shape() is not None
            for widget in (self.axis, self.slice):
                widget.layout.display = None if volume else "none"
            self._reset_slice()

    def _default_window(self, image: Any) -> tuple[float, float]:
        window = getattr(getattr(self.config, "image", None), "window", None)
        return tuple(window) if window else default_window(image.array)

    def _set_window(self, column: str, image: Any) -> None:
        lo, hi = intensity_range(image.array)
        center, width = self._default_window(image)
        span = hi - lo
        level, wide = self.window[column]
        _set_slider(level, min(lo, center), max(hi, center), center, span / 200)
        _set_slider(wide, span / 200, max(2 * span, width), width, span / 200)

    def _volume_shape(self) -> tuple[int, ...] | None:
        first = self._case.images[self.image_columns[0]].array
        return first.shape if first.ndim == 3 else None

    def _reset_slice(self) -> None:
        shape = self._volume_shape() if self._case is not None else None
        if shape is None:
            return
        mask = self._case.mask if self._case.mask is not None and self._case.mask.shape == shape else None
        with self._quiet():
            _set_slider(self.slice, 0, shape[self.axis.value] - 1, default_slice(shape, self.axis.value, mask), 1)
        self.render()

    # -- drawing
    def panels(self) -> list[Panel]:
        """The current case's panels as the controls set them (one per image column)."""
        return [self._panel(column) for column in self.image_columns]

    def _panel(self, column: str) -> Panel:
        array = self._case.images[column].array
        level, wide = (s.value for s in self.window[column])
        title = f"{self._case.case_id} · {column}"
        index = None
        if array.ndim == 3:
            index = min(self.slice.value, array.shape[self.axis.value] - 1)
            title += f" · axis {self.axis.value} slice {index}"

        def cut(layer: np.ndarray | None) -> np.ndarray | None:
            """The layer's 2D view on this image's grid (None if it is on another grid)."""
            if layer is None or layer.shape != array.shape:
                return None
            return layer if index is None else slice_volume(layer, self.axis.value, index)

        mask = self._case.mask if self.show_mask.value else None
        habitats = self._habitats(array) if self.show_habitats.value else None
        cam = self._cam(column, array.shape) if self.show_cam.value else None
        return Panel(title=title, image=window_image(cut(array), level, wide), mask=cut(mask),
                     habitats=cut(habitats), cam=cut(cam))

    def _habitats(self, array: np.ndarray) -> np.ndarray | None:
        """Habitat labels of the first input's volume inside the mask (cached per case)."""
        mask = self._case.mask
        if mask is None or array.ndim != 3 or mask.shape != array.shape or not mask.any():
            return None
        key = ("habitats", id(array))
        if key not in self._case.derived:
            from medlib.radiomics.features import habitat_labels

            k = getattr(getattr(self.config, "radiomics", None), "habitats", 0) or 3
            seed = getattr(getattr(self.config, "train", None), "seed", 0)
            try:
                self._case.derived[key] = habitat_labels(array, mask, k=k, seed=seed, case_id=self._case.case_id)
            except ValueError as err:  # e.g. too few distinct voxels in the ROI: said under the image
                self._case.derived[key] = None
                self._case.derived["habitat_error"] = f"Habitats not drawn: {err}"
        return self._case.derived[key]

    def _cam(self, column: str, shape: tuple[int, ...]) -> np.ndarray | None:
        """The model's stored Grad-CAM for this input, on the image grid (cached per case and model)."""
        model = self.model
        inputs = model_inputs(self.run_config, model, self.image_columns) if model else ()
        if column not in inputs:
            return None
        key = ("cam", model, column)
        if key not in self._case.derived:
            path = cam_path(self.run.cams_dir, model, self._case.case_id)
            self._case.derived[key] = None if path is None else cam_for_view(
                np.load(path, allow_pickle=False), shape, view=inputs.index(column), n_views=len(inputs))
        return self._case.derived[key]

    def figure(self) -> "Figure":
        """The current view as a matplotlib figure (for a static report; close it after use)."""
        self.last_panels = self.panels()
        return render_case(self.last_panels, cam_alpha=self.cam_alpha.value)

    def render(self) -> None:
        """Redraw the current case into ``image`` (PNG)."""
        if self._quiet_depth or self._case is None:
            return
        self.image.value = figure_png(self.figure(), close=True)
        notes = []
        if self.show_cam.value and all(p.cam is None for p in self.last_panels):
            notes.append(f"No Grad-CAM stored for {self._case.case_id} and {self.model} in the run's cams/.")
        if self.show_habitats.value and all(p.habitats is None for p in self.last_panels):
            notes.append(self._case.derived.get("habitat_error", "Habitats are drawn on a volume with a mask."))
        self.status.value = "<br>".join(_esc(n) for n in notes if n)


def _set_slider(slider: Any, lo: float, hi: float, value: float, step: float) -> None:
    """Set a slider's range and value in an order its validation accepts."""
    slider.min, slider.max = min(slider.min, lo), max(slider.max, hi)
    slider.value = value
    slider.min, slider.max = lo, hi
    slider.step = step if step > 0 else 1