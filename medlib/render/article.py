"""The manuscript's text, from the run record: every sentence about the study comes from the run's
``config.yaml`` (through :mod:`medlib.report.narrative`, the same sentences as the report) and every number from
its ``split.csv``, ``metrics.json`` and ``provenance.json``. Figures and tables are embedded from the executed
notebook (``{{< embed >}}``), so the numbers in the text, the tables and the notebook are the same by
construction.

Sections: a title page with a structured abstract (background, methods, results, conclusions), introduction,
methods, results, discussion, limitations and references (cited from ``methods.bib`` and the study's
reference). Nothing here names a study: a user's cohort gets an article about the user's study.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from medlib.config import StudyConfig
from medlib.report import narrative
from medlib.report.format import fmt_estimate, fmt_number, join_words, plural
from medlib.runs.folder import open_run
from medlib.schema import PRIMARY_SET_ORDER, RunMetrics, SplitRecord, ordered_sets, set_label

__all__ = ["RunRecord", "article_markdown"]


@dataclass(frozen=True)
class RunRecord:
    """What a finished run wrote, read back for the manuscript.

    Attributes:
        cfg: the run's config (``config.yaml``).
        split: the split (``split.csv``).
        metrics: thresholds and performance (``metrics.json``).
        provenance: versions, seeds, hashes, device, durations (``provenance.json``).
        run_id: the run folder's name.
    """

    cfg: StudyConfig
    split: pd.DataFrame
    metrics: RunMetrics
    provenance: Mapping[str, Any]
    run_id: str

    @classmethod
    def load(cls, run_dir: Path) -> "RunRecord":
        """Read a run folder.

        Raises:
            FileNotFoundError: the folder or one of its files is missing (the message names it).
        """
        run = open_run(run_dir)
        return cls(cfg=run.read_config(), split=run.read_split(), metrics=RunMetrics.from_json(run.read_metrics()),
                   provenance=run.read_provenance(), run_id=run.run_id)

    @property
    def sets(self) -> list[str]:
        return ordered_sets(self.split["set"].unique())

    @property
    def primary(self) -> str:
        """The set the figures show (``schema.PRIMARY_SET_ORDER``)."""
        return next(s for s in PRIMARY_SET_ORDER if s in self.sets)

    def value(self, model: str, set_name: str, metric: str) -> Mapping[str, Any] | None:
        """The ``metrics.json`` row of one model, set and metric, or None."""
        for row in self.metrics.performance:
            if row["model"] == model and row["set"] == set_name and row["metric"] == metric:
                return row
        return None

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(str(r["model"]) for r in self.metrics.performance))

    def best_model(self) -> str | None:
        """The model with the highest validation AUC (the rule the report uses), or None without a validation
        set (then no model is singled out: choosing on the test set would bias it)."""
        aucs = {m: (self.value(m, "val", "auc") or {}).get("value") for m in self.models}
        aucs = {m: float(v) for m, v in aucs.items() if v is not None and v == v}
        return max(aucs, key=aucs.get) if aucs else None


def _auc(rec: RunRecord, model: str, set_name: str) -> str:
    row = rec.value(model, set_name, "auc")
    return fmt_estimate((row["value"], row["lo"], row["hi"])) if row else "not computed"


def _metric(rec: RunRecord, model: str, set_name: str, metric: str) -> str:
    row = rec.value(model, set_name, metric)
    return fmt_estimate((row["value"], row["lo"], row["hi"])) if row else "not computed"


def _set_counts(rec: RunRecord, set_name: str) -> str:
    rows = rec.split[rec.split["set"] == set_name]
    n, patients, unit = len(rows), int(rows["patient_id"].nunique()), rec.cfg.study.unit
    counted = plural(n, unit) if n == patients else f"{plural(n, unit)} from {plural(patients, 'patient')}"
    return f"{counted}, {int(rows['y'].sum())} positive"


def _included(rec: RunRecord) -> str:
    """``"49 cases"``, or ``"432 cases from 339 patients"`` when patients hold several cases (in the study's unit)."""
    n, patients = len(rec.split), int(rec.split["patient_id"].nunique())
    unit = rec.cfg.study.unit
    return plural(n, unit) if n == patients else f"{plural(n, unit)} from {plural(patients, 'patient')}"


def _split_record(rec: RunRecord) -> SplitRecord:
    from medlib.data.cohort import split_hash
    from medlib.pipelines.prepare import split_sentence

    cfg = rec.cfg
    how = (f"User-provided split from {Path(cfg.split.split_file).name}, checked for patient overlap."  # as prepare
           if cfg.split.split_file else split_sentence(cfg))
    return SplitRecord(table=rec.split, hash=str(rec.provenance.get("split_hash") or split_hash(rec.split)), how=how)


def _conclusions(rec: RunRecord, best: str | None) -> list[str]:
    """Per highlighted model: whether the 95% CI of its primary-set AUC lies above 0.5 (a fact, not a claim)."""
    where = f"the {set_label(rec.primary).lower()} set"
    out = []
    for m in [best] if best else rec.models:
        row = rec.value(m, rec.primary, "auc")
        if not row or row["lo"] is None or row["lo"] != row["lo"]:
            continue
        out.append(f"{m} discriminated better than chance on {where} (the lower 95% confidence limit of its AUC, "
                   f"{fmt_number(row['lo'])}, is above 0.5)" if row["lo"] > 0.5 else
                   f"{m} was not shown to discriminate better than chance on {where} (the 95% CI of its AUC "
                   f"includes 0.5)")
    return out


def _abstract(rec: RunRecord, best: str | None) -> str:
    cfg, primary = rec.cfg, rec.primary
    shown = [best] if best else rec.models
    results = "; ".join(f"{m}: AUC {_auc(rec, m, primary)}, sensitivity {_metric(rec, m, primary, 'sensitivity')}, "
                        f"specificity {_metric(rec, m, primary, 'specificity')}" for m in shown)
    lead = (f"{best} had the highest validation AUC. " if best else "")
    conclusions = _conclusions(rec, best)
    n_primary = int((rec.split["set"] == primary).sum())
    return "\n\n".join([
        f"**Background.** {cfg.study.question}",
        f"**Methods.** {narrative.design_sentence(cfg)} {_included(rec)} were included. Each model's operating "
        f"threshold was chosen on the validation set and frozen before the other sets were scored.",
        f"**Results.** {lead}On the {set_label(primary).lower()} set ({_set_counts(rec, primary)}), with 95% "
        f"confidence intervals: {results}.",
        f"**Conclusions.** {'; '.join(conclusions) + '. ' if conclusions else ''}These estimates come from one run "
        f"on {plural(n_primary, cfg.study.unit)}; they need confirmation on independent data before any clinical use.",
    ])


def _discussion(rec: RunRecord, best: str | None, labels: Sequence[str]) -> str:
    conclusions = _conclusions(rec, best)
    parts = [f"{'; '.join(conclusions)}." if conclusions else ""]
    if "tbl-delong" in labels:
        parts.append("Whether the models differ is tested pairwise with the DeLong test (@tbl-delong).")
    if "fig-cam" in labels:
        parts.append("The Grad-CAM maps (@fig-cam) show where the best model's score for the positive class came "
                     "from on correctly and wrongly classified test cases.")
    elif rec.cfg.design == "features":
        parts.append(narrative.explain_paragraph(rec.cfg, labels))
    return " ".join(p for p in parts if p)


def _threshold_rule(cfg: StudyConfig) -> str:
    """How the thresholds were chosen, from the config (``threshold.method`` and ``target``)."""
    t = cfg.threshold
    if t.method == "fixed":
        return f"fixed in advance at {fmt_number(t.target)}"
    if t.method == "sensitivity":
        return f"chosen on the validation set for a target sensitivity of {fmt_number(t.target)}"
    return "chosen on the validation set by maximising Youden's index (sensitivity + specificity - 1)"


def _statistics(rec: RunRecord, labels: Sequence[str]) -> str:
    cfg = rec.cfg
    values = join_words([f"{m} {fmt_number(t.value)}" for m, t in rec.metrics.thresholds.items()])
    parts = [f"The operating threshold of each model was {_threshold_rule(cfg)} and frozen for the other sets "
             f"({values}); a case is called positive when its score is at least the threshold. The AUC is given "
             f"with DeLong 95% "
             f"confidence intervals [@delong1988; @sun2014]; accuracy, sensitivity, specificity, precision and "
             f"negative predictive value with Wilson score intervals [@wilson1927]; F1 with a stratified bootstrap "
             f"percentile interval."]
    if "tbl-delong" in labels:
        parts.append("Models were compared with the paired DeLong test on the same cases, with Holm's adjustment "
                     "for multiple comparisons [@holm1979].")
    if "tbl-calibration" in labels or "fig-calibration" in labels:
        parts.append("Calibration was assessed by the calibration intercept and slope, the Brier score and "
                     "reliability curves [@vancalster2019].")
    if "fig-dca" in labels:
        parts.append("Clinical usefulness was assessed with decision curves (net benefit against treating all and "
                     "treating none) [@vickers2006].")
    if "fig-cam" in labels:
        parts.append("Explanation maps were computed with Grad-CAM [@selvaraju2017] and compared with those of the "
                     "same model with randomised weights [@adebayo2018].")
    prov = rec.provenance
    parts.append(f"The analysis ran with medlib {prov.get('medlib', 'of unrecorded version')} (Python "
                 f"{prov.get('python', 'of unrecorded version')}) on {prov.get('device', 'an unrecorded device')}; "
                 f"run `{rec.run_id}`, split seed {cfg.split.seed}, training seed {cfg.train.seed}.")
    return " ".join(parts)


def _see(labels: Sequence[str], *wanted: str) -> str:
    """`` (@tbl-performance, @fig-roc)``: cross-references to the embedded tables and figures that exist."""
    shown = [f"@{label}" for label in wanted if label in labels]
    return f" ({', '.join(shown)})" if shown else ""


def _results(rec: RunRecord, best: str | None, labels: Sequence[str] = ()) -> str:
    lines = []
    for set_name in (s for s in ordered_sets(r["set"] for r in rec.metrics.performance) if s != "train"):
        aucs = join_words([f"{m} {_auc(rec, m, set_name)}" for m in rec.models if rec.value(m, set_name, "auc")])
        lines.append(f"On the {set_label(set_name).lower()} set ({_set_counts(rec, set_name)}), the AUCs (95% CI) "
                     f"were: {aucs}.")
    if best:
        p = rec.primary
        lines.append(f"{best}, the model with the highest validation AUC, had on the {set_label(p).lower()} set a "
                     f"sensitivity of {_metric(rec, best, p, 'sensitivity')} and a specificity of "
                     f"{_metric(rec, best, p, 'specificity')} at its frozen threshold "
                     f"({fmt_number(rec.metrics.thresholds[best].value)}).")
    lines.append(f"Every model and set is in the performance table{_see(labels, 'tbl-performance', 'fig-roc')}.")
    if any(label in labels for label in ("fig-calibration", "tbl-calibration", "fig-dca")):
        lines.append(f"Calibration and clinical usefulness are shown for the {set_label(rec.primary).lower()} set"
                     f"{_see(labels, 'fig-calibration', 'tbl-calibration', 'fig-dca')}.")
    return " ".join(lines)


def _limitations(rec: RunRecord) -> str:
    cfg, primary = rec.cfg, rec.primary
    n = rec.split[rec.split["set"] == primary]
    items = [f"The {set_label(primary).lower()} set holds {plural(len(n), cfg.study.unit)} "
             f"({int(n['y'].sum())} positive), so the confidence intervals above are wide."]
    if "external" not in rec.sets:
        items.append("There is no external test set: every estimate comes from one split of one cohort.")
    items.append(f"One split (seed {cfg.split.seed}) and one training seed ({cfg.train.seed}) were used; the "
                 f"variation across seeds and splits is not estimated here.")
    if "val" in rec.sets:
        n_val = int((rec.split["set"] == "val").sum())
        items.append(f"The thresholds were chosen on {plural(n_val, 'validation case')}"
                     f"; threshold metrics on the validation set itself are optimistic.")
    return "\n".join(f"- {item}" for item in items)


def _embeds(notebook: str, labels: Sequence[str], wanted: Sequence[str]) -> str:
    return "\n\n".join(f"{{{{< embed {notebook}#{label} >}}}}" for label in wanted if label in labels)


def article_markdown(rec: RunRecord, *, notebook: str, labels: Sequence[str], citation: str | None) -> str:
    """The article (Quarto Markdown) of one run.

    Args:
        rec: the run record.
        notebook: the executed notebook's file name, beside the article (embedded from).
        labels: the notebook's labelled cells that hold one output (only these are embedded).
        citation: the bibliography key of the study's reference, or None.
    """
    cfg = rec.cfg
    best = rec.best_model()
    front = {"title": cfg.study.title, "subtitle": f"Generated by medlib from run {rec.run_id}",
             "abstract": _abstract(rec, best), "bibliography": ["methods.bib", "references.bib"],
             "csl": "medlib.csl", "citeproc": True}
    reference = (f" The design follows a published study [@{citation}]; its results are compared with this run's in "
                 f"the Discussion." if citation else "")
    sections = [
        "---", json.dumps(front, ensure_ascii=False, indent=1), "---", "",  # JSON is YAML: no escaping to get wrong
        "## Introduction", "", cfg.study.question, "", (cfg.study.background or "").strip() + reference, "",
        "The report follows the CLAIM 2024 checklist [@tejani2024claim] and the TRIPOD+AI statement "
        "[@collins2024tripodai].", "",
        "## Methods", "", "### Participants and data", "", f"**Population.** {cfg.study.population}", "",
        f"**Outcome.** Positive (*{cfg.cohort.positive}*): {cfg.study.positive}. Negative (*{cfg.cohort.negative}*): "
        f"{cfg.study.negative}.", "", narrative.cohort_paragraph(cfg, _split_record(rec)), "",
        _embeds(notebook, labels, ["tbl-cohort", "tbl-table1-set"]), "",
        "### Models", "", narrative.design_sentence(cfg), "", narrative.models_paragraph(cfg), "",
        "### Statistical analysis", "", _statistics(rec, labels), "",
        "## Results", "", _results(rec, best, labels), "",
        _embeds(notebook, labels, ["tbl-performance", "fig-roc", "tbl-delong", "fig-calibration", "tbl-calibration",
                                   "fig-dca", "fig-confusion", "fig-cam"]), "",
        "## Discussion", "", _discussion(rec, best, labels),
    ]
    if cfg.study.reference is not None:
        comparison = narrative.reference_paragraph(cfg).rstrip().rstrip(".") + _see(labels, "tbl-reference") + "."
        sections += ["", comparison, "",
                     _embeds(notebook, labels, ["tbl-reference"])]
    sections += ["", "## Limitations", "", _limitations(rec), "", "## References", "", "::: {#refs}", ":::", ""]
    return "\n".join(sections)
