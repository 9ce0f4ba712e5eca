"""The CLAIM 2024 checklist, filled from the run summary.

Tejani AS, Klontzas ME, Gatti AA, et al. Checklist for Artificial Intelligence in Medical Imaging (CLAIM):
2024 Update. Radiol Artif Intell 2024;6(4):e240300. doi:10.1148/ryai.240300. 44 items; the short texts
below are our paraphrases, numbered and grouped as in the published checklist.

Every answer comes from the run summary (``medlib.pipelines.record.run_summary``, plain data): an item the
summary cannot answer goes to the author (``"author to complete"``); a value the summary lacks is written
``"not recorded in this run"``; an item the pipeline marks as not applying (``run["not_applicable"]``) reads
``"not applicable: <reason>"``. Which tables and figures answer an item comes from ``run["sections"]``, the
labels of the tables and figures this run's report contains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import pandas as pd

from medlib.report.checklist_answers import ANSWERS
from medlib.report.format import AUTHOR, redact

__all__ = ["AUTHOR", "CLAIM_2024", "ChecklistItem", "claim_checklist", "fill_checklist"]


@dataclass(frozen=True)
class ChecklistItem:
    """One checklist item: its number, section, a short paraphrase, where the report answers it, and the
    key of the filler that answers it from the run (None: the author must answer it)."""

    number: int | str
    section: str
    topic: str
    where: tuple[str, ...] = ()
    fill: str | None = None
    needs_where: bool = False  # the answer is the referenced table/figure itself


_M, _R = "Methods", "Results"
CLAIM_2024: tuple[ChecklistItem, ...] = (
    ChecklistItem(1, "Title/Abstract", "Title says the study uses AI and names the kind of method", (), "ai_method"),
    ChecklistItem(2, "Title/Abstract", "Abstract summarises design, methods, results and conclusions"),
    ChecklistItem(3, "Introduction", "Scientific and clinical background; intended use and role of the AI"),
    ChecklistItem(4, "Introduction", "Aims, objectives and hypotheses", (), "aims"),
    ChecklistItem(5, f"{_M}: study design", "Prospective or retrospective design"),
    ChecklistItem(6, f"{_M}: study design", "Study goal (e.g. model development, feasibility, non-inferiority)",
                  (), "goal"),
    ChecklistItem(7, f"{_M}: data", "Where the data came from", ("@tbl-cohort",), "sources"),
    ChecklistItem(8, f"{_M}: data", "Inclusion and exclusion criteria", ("@tbl-cohort",), "eligibility"),
    ChecklistItem(9, f"{_M}: data", "Pre-processing of the data", (), "preprocessing"),
    ChecklistItem(10, f"{_M}: data", "How any subsets of the data were selected"),
    ChecklistItem(11, f"{_M}: data", "How the data were de-identified", (), "deidentification"),
    ChecklistItem(12, f"{_M}: data", "How missing data were handled", (), "missing"),
    ChecklistItem(13, f"{_M}: data", "Image acquisition protocol (equipment, parameters)", (), "acquisition"),
    ChecklistItem(14, f"{_M}: reference standard", "How the reference standard was defined and obtained", (),
                  "reference_standard"),
    ChecklistItem(15, f"{_M}: reference standard", "Why this reference standard was chosen"),
    ChecklistItem(16, f"{_M}: reference standard", "Who annotated, with what qualifications and preparation"),
    ChecklistItem(17, f"{_M}: reference standard", "How the test set was annotated"),
    ChecklistItem(18, f"{_M}: reference standard", "Inter- and intra-rater variability of the annotations"),
    ChecklistItem(19, f"{_M}: data partitions", "How data were assigned to partitions, with proportions",
                  ("@tbl-cohort",), "partitions"),
    ChecklistItem(20, f"{_M}: data partitions", "Level at which partitions are disjoint (patient, image, ...)",
                  ("@tbl-cohort",), "disjoint"),
    ChecklistItem(21, f"{_M}: testing data", "Intended sample size of the test data and its justification",
                  ("@tbl-cohort",), "sample_size"),
    ChecklistItem(22, f"{_M}: model", "Detailed model description (inputs, outputs, architecture)", (), "models"),
    ChecklistItem(23, f"{_M}: model", "Software libraries, frameworks and packages, with versions",
                  ("@tbl-provenance",), "software"),
    ChecklistItem(24, f"{_M}: model", "Initialisation of model parameters (random, transfer learning)", (),
                  "initialisation"),
    ChecklistItem(25, f"{_M}: training", "Training details: augmentation, hyperparameters, models trained",
                  ("@fig-learning", "@tbl-features", "@fig-habitats"), "training"),
    ChecklistItem(26, f"{_M}: training", "How the final model was selected", ("@fig-learning",), "selection"),
    ChecklistItem(27, f"{_M}: training", "Ensembling, if any", (), "ensembling"),
    ChecklistItem(28, f"{_M}: evaluation", "Performance metrics", ("@tbl-performance", "@tbl-calibration", "@fig-dca"),
                  "metrics"),
    ChecklistItem(29, f"{_M}: evaluation", "Statistical significance and uncertainty (e.g. CIs)",
                  ("@tbl-performance", "@tbl-delong"), "statistics"),
    ChecklistItem(30, f"{_M}: evaluation", "Robustness or sensitivity analyses"),
    ChecklistItem(31, f"{_M}: evaluation", "Explainability methods and how they were checked",
                  ("@fig-cam", "@tbl-cam-sanity", "@tbl-selected", "@fig-habitats"), "explainability"),
    ChecklistItem(32, f"{_M}: evaluation", "Evaluation on internal data", ("@tbl-performance",), "internal"),
    ChecklistItem(33, f"{_M}: evaluation", "Testing on external data", ("@tbl-performance",), "external"),
    ChecklistItem(34, f"{_M}: evaluation", "Clinical trial registration, if applicable"),
    ChecklistItem(35, f"{_R}: data", "Numbers of patients and examinations included and excluded",
                  ("@tbl-cohort",), "flow"),
    ChecklistItem(36, f"{_R}: data", "Demographic and clinical characteristics per partition",
                  ("@tbl-table1-set", "@tbl-table1-outcome"), "characteristics", needs_where=True),
    ChecklistItem(37, f"{_R}: model performance", "Performance metrics with statistical uncertainty",
                  ("@tbl-performance", "@fig-roc", "@tbl-delong", "@tbl-calibration", "@fig-calibration", "@fig-dca"),
                  "performance"),
    ChecklistItem(38, f"{_R}: model performance", "Diagnostic performance estimates and their precision",
                  ("@tbl-performance", "@fig-confusion"), "diagnostic"),
    ChecklistItem(39, f"{_R}: model performance", "Failure analysis of incorrect results",
                  ("@fig-cam", "@fig-confusion"), "failures", needs_where=True),
    ChecklistItem(40, "Discussion", "Limitations (bias, statistical uncertainty, generalisability)"),
    ChecklistItem(41, "Discussion", "Implications for practice, intended use and clinical role"),
    ChecklistItem(42, "Other information", "Reference to the full protocol or further technical details",
                  ("@tbl-provenance",), "protocol"),
    ChecklistItem(43, "Other information", "Availability of code, trained model and data",
                  ("@tbl-provenance",), "availability"),
    ChecklistItem(44, "Other information", "Funding and other support; role of funders"),
)


# --------------------------------------------------------------------------------------------- the table


def _sections(run: Mapping[str, Any]) -> frozenset[str]:
    if "sections" not in run:
        raise KeyError("the run summary has no 'sections': the list of the labels of the tables and figures this "
                       "run's report contains (e.g. ['tbl-cohort', 'tbl-performance', 'fig-roc'])")
    labels = run["sections"]
    if isinstance(labels, str) or not all(isinstance(x, str) for x in labels):
        raise TypeError(f"run['sections'] must be a list of labels such as 'tbl-performance'; got {labels!r}")
    return frozenset("@" + x.lstrip("@") for x in labels)


def _not_applicable(run: Mapping[str, Any], answers: Mapping[str, Any] = ANSWERS) -> Mapping[str, str]:
    reasons = run.get("not_applicable") or {}
    unknown = sorted(set(reasons) - set(ANSWERS) - set(answers))
    if unknown:
        raise KeyError(f"run['not_applicable'] names unknown checklist answer(s) {unknown}. Available: "
                       f"{sorted(set(ANSWERS) | set(answers))}")
    return reasons


def claim_checklist(run: Mapping[str, Any]) -> pd.DataFrame:
    """The CLAIM 2024 checklist (Tejani et al. 2024, 44 items), filled from the run summary where it can be.

    Args:
        run: the run summary as plain data (``medlib.pipelines.record.run_summary``). Required: ``sections``,
            the labels of the tables and figures this run's report contains (``"tbl-performance"`` or
            ``"@tbl-performance"``): an item points only at those, and an item answered only by a missing
            table goes back to the author. Read when present: ``question, population, manifest,
            image_columns, positive, negative, positive_meaning, negative_meaning, n_cases, n_patients,
            partitions`` (list of ``set, cases, patients, positives``), ``split,
            split_hash, preprocessing, models`` (list of ``name, label, parameters, pretrained, weights_path,
            inputs``), ``training`` (``optimizer, lr, epochs, batch_size, loss, augment, seed, patience`` and
            any other settings), ``thresholds`` (model -> ``value, method``), ``threshold_method,
            explainability, provenance`` (``medlib, python, packages, git_commit, cohort_hash``) and
            ``not_applicable`` (answer key, e.g. ``"selection"``, -> the reason it does not apply).

    Returns:
        44 rows with columns ``item, section, topic, where, value``; ``value`` is ``"author to complete"``
        (or starts with it) where the software cannot know the answer, and says ``"not recorded in this
        run"`` for a value the summary lacks.

    Raises:
        TypeError: ``run`` is not a mapping, or ``run["sections"]`` is not a list of labels.
        KeyError: ``run`` has no ``sections``, or ``not_applicable`` names an unknown answer.
        ValueError: a partition without a ``set``.
    """
    return fill_checklist(CLAIM_2024, run, ANSWERS)


def fill_checklist(items: tuple[ChecklistItem, ...], run: Mapping[str, Any],
                   answers: Mapping[str, Any]) -> pd.DataFrame:
    """Fill any checklist (CLAIM, TRIPOD+AI) from the run summary: each item's answer from ``answers[item.fill]``,
    pointing only at the run's sections; "not applicable: <reason>" where the run says so; else the author's.

    Raises:
        TypeError, KeyError, ValueError: as :func:`claim_checklist`.
    """
    if not isinstance(run, Mapping):
        raise TypeError(f"run must be a mapping of run metadata; got {type(run).__name__}")
    present, not_applicable = _sections(run), _not_applicable(run, answers)
    rows = []
    for it in items:
        where = [w for w in it.where if w in present]
        if it.fill in not_applicable:
            value = f"not applicable: {not_applicable[it.fill]}"
        else:
            value = answers[it.fill](run, present) if it.fill else None
            value = None if it.needs_where and not where else value
        rows.append({"item": it.number, "section": it.section, "topic": it.topic,
                     "where": ", ".join(where) if where else ("" if value else "manuscript"),
                     "value": redact(value) if value else AUTHOR})
    return pd.DataFrame(rows, columns=["item", "section", "topic", "where", "value"])
