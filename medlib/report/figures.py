"""Report figures. Every function returns a matplotlib ``Figure``; statistics come from ``medlib.stats``.

One style for all figures (``_style``), colour-blind-safe colours (Okabe & Ito) with one colour per model in every
figure (``model_colors``), and legends that name the method. Titles show case ids only, never identifiers.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from medlib import stats
from medlib.report.format import set_title

OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
GROUP_COLORS = {"TP": "#009E73", "TN": "#0072B2", "FP": "#E69F00", "FN": "#D55E00"}
RC = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8, "axes.spines.top": False,
      "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.25, "figure.dpi": 110, "savefig.dpi": 150,
      "figure.constrained_layout.use": True}


def model_colors(models: Sequence[str]) -> dict[str, str]:
    """One colour per model, in order of first appearance (the same in every figure of a report)."""
    return {m: OKABE_ITO[i % len(OKABE_ITO)] for i, m in enumerate(dict.fromkeys(models))}


def _style():
    return plt.rc_context(RC)


def _subset(predictions: pd.DataFrame, set_name: str) -> pd.DataFrame:
    part = predictions[predictions["set"] == set_name]
    if part.empty:
        raise ValueError(f"no predictions on the {set_name!r} set; sets present: {sorted(predictions['set'].unique())}")
    return part


def _models(predictions: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(predictions["model"]))


def _groups(rows: pd.DataFrame) -> np.ndarray | None:
    """Patient ids when a patient has several rows (clustered intervals), else None."""
    if "patient_id" not in rows.columns:
        return None
    ids = rows["patient_id"].astype(str).to_numpy()
    return ids if len(np.unique(ids)) < len(ids) else None


def _skip_note(ax, notes: list[str]) -> None:
    """Write why some models have no curve (too few cases, one class) on the axes: never a crash, never NaN."""
    if notes:
        ax.text(0.5, 0.5, "\n".join(notes), transform=ax.transAxes, ha="center", va="center", fontsize=7,
                wrap=True, bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "grey"})


def _title(kind: str, set_name: str, part: pd.DataFrame) -> str:
    n = part["case_id"].nunique()
    patients = part["patient_id"].nunique() if "patient_id" in part.columns else n
    who = f"n = {n}" + (f", {patients} patients" if patients < n else "")
    return f"{kind}, {set_title(set_name)} ({who})"


def plot_roc(predictions: pd.DataFrame, *, set_name: str) -> plt.Figure:
    """ROC curves of all models on one set; AUC with its DeLong 95% CI on the logit scale in the legend
    (Obuchowski's clustered variance when a patient has several cases). A model whose cases are too few or of one
    class gets a sentence on the figure instead of a curve."""
    part = _subset(predictions, set_name)
    colors = model_colors(_models(predictions))
    clustered = any(_groups(part[part["model"] == m]) is not None for m in _models(part))
    with _style():
        fig, ax = plt.subplots(figsize=(4.6, 4.2))
        ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey", label="Chance")
        notes = []
        for model in _models(part):
            rows = part[part["model"] == model]
            y, s = rows["y_true"].to_numpy(), rows["score"].to_numpy()
            problem = stats.not_estimable(y, f"{model}: ROC")
            if problem:
                notes.append(problem)
                continue
            fpr, tpr, _ = stats.roc_curve(y, s)
            est = stats.auc_ci(y, s, groups=_groups(rows))
            ax.plot(fpr, tpr, lw=1.8, color=colors[model],  # straight segments: tied scores give a diagonal
                    label=f"{model}: AUC {est.value:.3f} ({est.lo:.3f}–{est.hi:.3f})")
        _skip_note(ax, notes)
        ax.set(xlabel="1 − specificity (false positive rate)", ylabel="Sensitivity (true positive rate)",
               xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), aspect="equal")
        ax.set_title(_title("ROC", set_name, part))
        method = "Obuchowski clustered DeLong" if clustered else "DeLong"
        ax.legend(loc="lower right", title=f"AUC (95% CI: {method},\nlogit scale)", frameon=True, framealpha=0.9,
                  edgecolor="none", fontsize=7, title_fontsize=7)
    return fig


def _risks(rows: pd.DataFrame, recalibration: Mapping | None, model: str) -> np.ndarray:
    p = rows["score"].to_numpy(dtype=float)
    if recalibration is None or model not in recalibration:
        return p
    return recalibration[model].apply(p)


def _risk_words(recalibration: Mapping | None) -> str:
    if recalibration is None:
        return "original predicted risks"
    if all(not r.fitted for r in recalibration.values()):
        return "original predicted risks (no recalibration could be fitted)"
    return "risks recalibrated on the validation set (frozen)"


def plot_calibration(predictions: pd.DataFrame, *, set_name: str, n_bins: int = 10,
                     recalibration: Mapping | None = None, n_boot: int = 200) -> plt.Figure:
    """Calibration curves: LOWESS-smoothed observed risk with a bootstrap 95% band (patients resampled when a patient
    has several cases), binned observed fractions (quantile bins) with Wilson 95% CIs, and the histogram of
    predicted risks below. With ``recalibration`` (model -> ``medlib.stats.Recalibrator``, fitted on validation) the
    recalibrated risks are shown, and the title says so."""
    part = _subset(predictions, set_name)
    models = _models(part)
    colors = model_colors(_models(predictions))
    with _style():
        fig, (ax, hist) = plt.subplots(2, 1, figsize=(4.8, 6.2), height_ratios=(3, 1), sharex=True)
        ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey", label="Perfect calibration")
        notes = []
        for model in models:
            rows = part[part["model"] == model]
            y, p = rows["y_true"].to_numpy(), _risks(rows, recalibration, model)
            problem = stats.not_estimable(y, f"{model}: calibration")
            if problem:
                notes.append(problem)
                continue
            band = stats.loess_band(y, p, groups=_groups(rows), n_boot=n_boot)
            ax.fill_between(band["predicted"], band["lo"], band["hi"], color=colors[model], alpha=0.18, lw=0)
            cal = stats.calibration(y, p, n_bins=n_bins)
            ax.plot(band["predicted"], band["observed"], lw=1.6, color=colors[model],
                    label=f"{model}: LOWESS; intercept {cal.intercept:.2f}, slope {cal.slope:.2f}")
            c = cal.curve
            ax.errorbar(c["mean_predicted"], c["observed"], yerr=[c["observed"] - c["observed_lo"],
                        c["observed_hi"] - c["observed"]], fmt="o", ms=3.5, lw=0.8, capsize=2, color=colors[model])
            hist.hist(p, bins=20, range=(0, 1), histtype="step", lw=1.3, color=colors[model])
        _skip_note(ax, notes)
        ax.set(ylabel="Observed fraction positive", xlim=(-0.01, 1.01), ylim=(-0.01, 1.01))
        ax.set_title(f"{_title('Calibration', set_name, part)}\n{_risk_words(recalibration)}", fontsize=9)
        hist.set(xlabel="Predicted probability", ylabel="Cases")
        fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", frameon=False, fontsize=7,
                   title=f"LOWESS with bootstrap 95% band; points: {n_bins} quantile bins, Wilson 95% CI",
                   title_fontsize=7)
    return fig


def plot_decision_curve(predictions: pd.DataFrame, *, set_name: str, thresholds: Sequence[float] | None = None,
                        recalibration: Mapping | None = None, n_boot: int = 200) -> plt.Figure:
    """Net benefit of each model (dcurves' definition) with a bootstrap 95% band, against treat-all (from every case
    of the set) and treat-none. With ``recalibration`` the curves use the recalibrated risks, and the title says so."""
    part = _subset(predictions, set_name)
    thresholds = np.round(np.arange(0.01, 0.91, 0.01), 2) if thresholds is None else np.asarray(thresholds)
    colors = model_colors(_models(predictions))
    with _style():
        fig, ax = plt.subplots(figsize=(6.4, 3.8))
        notes = []
        for model in _models(part):
            rows = part[part["model"] == model]
            y = rows["y_true"].to_numpy()
            problem = stats.not_estimable(y, f"{model}: net benefit")
            if problem:
                notes.append(problem)
                continue
            nb = stats.net_benefit_band(y, _risks(rows, recalibration, model), thresholds, groups=_groups(rows),
                                        n_boot=n_boot)
            ax.fill_between(nb["threshold"], nb["lo"], nb["hi"], color=colors[model], alpha=0.15, lw=0)
            ax.plot(nb["threshold"], nb["net_benefit_model"], lw=1.8, color=colors[model], label=model)
        ax.plot(thresholds, stats.treat_all_net_benefit(part, thresholds), lw=1, color="grey",
                label="Treat all (all cases of the set)")
        ax.axhline(0, lw=1, color="black", label="Treat none")
        _skip_note(ax, notes)
        prevalence = part.groupby("case_id")["y_true"].first().mean()
        ax.set(xlabel="Threshold probability", ylabel="Net benefit", ylim=(-0.05, max(prevalence, 0.05) * 1.15),
               xlim=(0, thresholds.max()))
        ax.set_title(f"{_title('Decision curves', set_name, part)}\n{_risk_words(recalibration)}", fontsize=9)
        ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1),
                  title="bands: bootstrap 95%", title_fontsize=7)
    return fig


def plot_confusion_matrices(predictions: pd.DataFrame, thresholds: Mapping[str, float], *, set_name: str,
                            labels: Sequence[str] = ("negative", "positive")) -> plt.Figure:
    """One confusion matrix per model at its frozen threshold: counts and row percentages.

    Raises:
        ValueError: no predictions on ``set_name``.
        KeyError: a model of the set has no threshold.
    """
    import textwrap

    part = _subset(predictions, set_name)
    models = _models(part)
    missing = [m for m in models if m not in thresholds]
    if missing:
        raise KeyError(f"no threshold for model {missing[0]!r}; thresholds given for {sorted(thresholds)}")
    names = [textwrap.fill(str(label), 14) for label in labels]
    with _style():
        fig, axes = plt.subplots(1, len(models), figsize=(3.1 * len(models), 3.1), squeeze=False)
        for ax, model in zip(axes[0], models):
            rows = part[part["model"] == model]
            y, pred = rows["y_true"].to_numpy().astype(int), (rows["score"].to_numpy() >= thresholds[model]).astype(int)
            matrix = np.array([[np.sum((y == t) & (pred == p)) for p in (0, 1)] for t in (0, 1)])
            share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
            ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
            for (i, j), count in np.ndenumerate(matrix):
                ax.text(j, i, f"{count}\n{share[i, j]:.0%}", ha="center", va="center",
                        color="white" if share[i, j] > 0.6 else "black", fontsize=9)
            ax.set_xticks([0, 1], labels=names)
            first = ax is axes[0, 0]  # the actual-class labels once, at the left
            ax.set_yticks([0, 1], labels=names if first else ["", ""], va="center")
            ax.set(xlabel="Predicted", ylabel="Actual" if first else "",
                   title=f"{model}\nthreshold {thresholds[model]:.3f}")
            ax.grid(False)
    return fig


def plot_learning_curves(histories: Mapping[str, pd.DataFrame]) -> plt.Figure:
    """Training and validation loss, and validation AUC, per epoch and model."""
    colors = model_colors(list(histories))
    with _style():
        fig, (loss_ax, auc_ax) = plt.subplots(1, 2, figsize=(8, 3.2))
        for model, hist in histories.items():
            loss_ax.plot(hist["epoch"], hist["train_loss"], color=colors[model], lw=1.5, label=f"{model} (train)")
            loss_ax.plot(hist["epoch"], hist["val_loss"], color=colors[model], lw=1.5, ls="--",
                         label=f"{model} (validation)")
            auc_ax.plot(hist["epoch"], hist["val_auc"], color=colors[model], lw=1.5, marker="o", ms=3, label=model)
            best = hist.loc[hist["val_auc"].idxmax()] if hist["val_auc"].notna().any() else None
            if best is not None:
                auc_ax.scatter([best["epoch"]], [best["val_auc"]], s=60, facecolors="none", edgecolors=colors[model])
        loss_ax.set(xlabel="Epoch", ylabel="Loss", title="Loss")
        auc_ax.set(xlabel="Epoch", ylabel="Validation AUC", title="Validation AUC (circle: kept epoch)",
                   ylim=(0, 1.02))
        loss_ax.legend(frameon=False, fontsize=7)
        auc_ax.legend(frameon=False, fontsize=7, loc="lower right")
    return fig


def _grey(ax, image: np.ndarray, title: str = "") -> None:
    lo, hi = np.percentile(image, [1, 99])
    ax.imshow(image, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1)
    ax.set_title(title, fontsize=7)
    ax.axis("off")


def plot_example_images(images: Sequence[np.ndarray], titles: Sequence[str], *, ncols: int = 4) -> plt.Figure:
    """A montage of 2D images (volumes: pass a slice) with their titles."""
    n = len(images)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    with _style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(2.2 * ncols, 2.35 * nrows), squeeze=False)
        for ax in axes.ravel():
            ax.axis("off")
        for ax, image, title in zip(axes.ravel(), images, titles):
            _grey(ax, np.asarray(image), title)
    return fig


def _cam_colorbar(fig: plt.Figure, axes: np.ndarray) -> None:
    """One scale for every overlay of a gallery (maps are in [0, 1], relative to each case's peak)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    bar = fig.colorbar(ScalarMappable(Normalize(0, 1), "jet"), ax=list(axes.ravel()), shrink=0.6, aspect=30, pad=0.01,
                       ticks=[0, 0.5, 1])
    bar.set_label("Grad-CAM (relative)", fontsize=7)
    bar.ax.tick_params(labelsize=7)


def _case_title(row: pd.Series) -> str:
    return f"{row['group']} · {row['case_id']}\nscore {row['score']:.2f} · truth {int(row['y_true'])}"


def plot_cam_gallery(images: np.ndarray, cams: np.ndarray, info: pd.DataFrame, *,
                     view_names: Sequence[str] | None = None, alpha: float = 0.45) -> plt.Figure:
    """2D Grad-CAM gallery: per case its first view under the map, other views beside it, titled by group."""
    from medlib.explain.gradcam import overlay

    n, views = images.shape[0], images.shape[1]
    names = list(view_names or [f"view {v + 1}" for v in range(views)])
    ncols = min(4, n) * views
    nrows = int(np.ceil(n / max(1, ncols // views)))
    with _style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(2.1 * ncols + 0.6, 2.6 * nrows), squeeze=False,
                                 layout="compressed")  # "compressed": made for grids of fixed-aspect images
        for ax in axes.ravel():
            ax.axis("off")
        flat = axes.ravel()
        for i in range(n):
            row = info.iloc[i]
            ax = flat[i * views]
            ax.imshow(overlay(images[i, 0], cams[i], alpha=alpha))
            ax.set_title(f"{_case_title(row)}\n{names[0]} + Grad-CAM", fontsize=7,
                         color=GROUP_COLORS.get(row["group"], "black"))
            for v in range(1, views):
                _grey(flat[i * views + v], images[i, v], names[v])
        _cam_colorbar(fig, axes)
    return fig


def plot_cam_volume_gallery(images: np.ndarray, cams: np.ndarray, info: pd.DataFrame, *,
                            view_names: Sequence[str] | None = None, n_slices: int = 3,
                            alpha: float = 0.45, cases_per_row: int = 3) -> plt.Figure:
    """3D Grad-CAM gallery: per case a few axial slices around the map's peak, first sequence under the map;
    ``cases_per_row`` cases side by side, so a gallery of a dozen cases fits a page."""
    from medlib.explain.gradcam import overlay, volume_slices

    n = images.shape[0]
    name = (list(view_names) if view_names else ["channel 1"])[0]
    per_row = max(1, min(cases_per_row, n))
    nrows = int(np.ceil(n / per_row))
    with _style():
        fig, axes = plt.subplots(nrows, per_row * n_slices, figsize=(1.5 * per_row * n_slices + 0.6, 2.0 * nrows),
                                 squeeze=False, layout="compressed")
        for ax in axes.ravel():
            ax.axis("off")
        for i in range(n):
            row = info.iloc[i]
            r, first = divmod(i, per_row)
            picks = volume_slices(images[i, 0], cams[i], n=n_slices)
            for j, k in enumerate(picks):
                ax = axes[r, first * n_slices + j]
                ax.imshow(overlay(images[i, 0, k], cams[i, k], alpha=alpha))
                title = f"{_case_title(row)}\n" if j == 0 else "\n\n"
                ax.set_title(f"{title}{name} slice {k}", fontsize=7, color=GROUP_COLORS.get(row["group"], "black"))
        _cam_colorbar(fig, axes)
    return fig


def plot_habitat_map(slice_image: np.ndarray, habitat_slice: np.ndarray, *, title: str = "",
                     window: tuple[float, float] | None = None) -> plt.Figure:
    """Habitat subregions (1..k) over an image slice, cropped to the ROI with a margin, with a legend.

    Args:
        slice_image: the 2D slice.
        habitat_slice: its habitat labels, 0 outside the ROI and 1..k inside.
        title: the figure's title (e.g. the case id).
        window: display window ``(centre, width)`` of the image, as in the config (e.g. ``(40, 80)`` HU);
            None: the slice's 1st to 99th percentile.

    Returns:
        The figure: the whole slice and the ROI enlarged, one window for both.

    Raises:
        ValueError: ``habitat_slice`` has no labelled pixel.
    """
    from matplotlib.patches import Patch

    k = int(habitat_slice.max())
    if k < 1:
        raise ValueError("habitat_slice has no labelled voxel (labels 1..k); pick a slice through the region")
    rows, cols = np.nonzero(habitat_slice)
    pad = 6
    box = (slice(max(rows.min() - pad, 0), rows.max() + pad + 1), slice(max(cols.min() - pad, 0), cols.max() + pad + 1))
    colors = [OKABE_ITO[h % len(OKABE_ITO)] for h in range(k)]
    if window is not None:
        lo, hi = window[0] - window[1] / 2, window[0] + window[1] / 2
    else:
        lo, hi = np.percentile(slice_image, [1, 99])
    with _style():
        fig, (full, zoom) = plt.subplots(1, 2, figsize=(6.4, 3.2))
        for ax, region in ((full, (slice(None), slice(None))), (zoom, box)):
            image, labels = slice_image[region], habitat_slice[region]
            ax.imshow(image, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1)  # one window for both panels
            rgba = np.zeros((*labels.shape, 4))
            for h in range(1, k + 1):
                rgba[labels == h] = matplotlib.colors.to_rgba(colors[h - 1], 0.55)
            ax.imshow(rgba)
            ax.axis("off")
        full.set_title("Slice" + (f" (window {window[0]:g}/{window[1]:g})" if window is not None else ""))
        zoom.set_title("Habitat subregions")
        zoom.legend(handles=[Patch(color=colors[h - 1], label=f"Habitat {h}") for h in range(1, k + 1)],
                    loc="lower right", frameon=True, fontsize=7)
        if title:
            fig.suptitle(title, fontsize=9)
    return fig

