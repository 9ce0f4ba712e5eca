"""The TRIPOD+AI (2024) checklist, filled from the run summary as the CLAIM checklist is.

Collins GS, Moons KGM, Dhiman P, et al. TRIPOD+AI statement: updated guidance for reporting clinical prediction
models that use regression or machine learning methods. BMJ 2024;385:e078378. doi:10.1136/bmj-2023-078378.
27 items, 52 with their sub-items; the short texts below are our paraphrases, numbered as in the statement.

Answers come from the run summary (``medlib.pipelines.record.run_summary``) through the CLAIM answers
(:data:`medlib.report.checklist_answers.ANSWERS`) and the few TRIPOD-specific ones below; what only the authors
know reads "author to complete"; an item points only at the tables and figures this run's report holds.
"""

from __future__ import annotations

from typing import Any, Mapping

import pandas as pd

from medlib.report.checklist import ChecklistItem, fill_checklist
from medlib.report.checklist_answers import ANSWERS, Labels, Run
from medlib.report.format import AUTHOR, join_words, plural, set_label

__all__ = ["TRIPOD_AI", "tripod_checklist"]

_M, _R, _O = "Methods", "Results", "Open science"
_I = ChecklistItem
TRIPOD_AI: tuple[ChecklistItem, ...] = (
    _I("1", "Title", "Identifies a prediction model study, its target population and outcome", (), "title"),
    _I("2", "Abstract", "Abstract as in TRIPOD+AI for Abstracts"),
    _I("3a", "Introduction", "Healthcare context and rationale, with references to existing models"),
    _I("3b", "Introduction", "Target population and intended purpose in the care pathway, intended users", (),
       "population"),
    _I("3c", "Introduction", "Known health inequalities between sociodemographic groups"),
    _I("4", "Introduction", "Objectives: development, evaluation or both", (), "goal"),
    _I("5a", f"{_M}: data", "Data sources for development and evaluation; rationale; representativeness",
       ("@tbl-cohort",), "sources"),
    _I("5b", f"{_M}: data", "Dates of data collection, accrual and follow-up"),
    _I("6a", f"{_M}: participants", "Study setting, number and location of centres"),
    _I("6b", f"{_M}: participants", "Eligibility criteria", ("@tbl-cohort",), "eligibility"),
    _I("6c", f"{_M}: participants", "Treatments received and how they were handled"),
    _I("7", f"{_M}: data preparation", "Pre-processing and quality checks", (), "preparation"),
    _I("8a", f"{_M}: outcome", "Outcome, time horizon, how and when assessed", (), "reference_standard"),
    _I("8b", f"{_M}: outcome", "Qualifications of outcome assessors (subjective outcomes)"),
    _I("8c", f"{_M}: outcome", "Blinding of outcome assessment"),
    _I("9a", f"{_M}: predictors", "Choice of initial predictors and any pre-selection", ("@tbl-features",),
       "predictors"),
    _I("9b", f"{_M}: predictors", "Definition and measurement of every predictor (imaging acquisition)"),
    _I("9c", f"{_M}: predictors", "Qualifications of predictor assessors (subjective predictors)"),
    _I("10", f"{_M}: sample size", "How the study size was arrived at and why it suffices", ("@tbl-cohort",),
       "sample_size"),
    _I("11", f"{_M}: missing data", "How missing data were handled", (), "missing"),
    _I("12a", f"{_M}: analysis", "How the data were used: partitions for development and evaluation",
       ("@tbl-cohort",), "partitions"),
    _I("12b", f"{_M}: analysis", "How predictors were handled (scaling, transformation, standardisation)", (),
       "predictor_handling"),
    _I("12c", f"{_M}: analysis", "Model type, building steps, hyperparameter tuning, internal validation",
       ("@tbl-features", "@tbl-selected", "@fig-habitats", "@fig-learning"), "model_building"),
    _I("12d", f"{_M}: analysis", "Heterogeneity across clusters (e.g. centres)"),
    _I("12e", f"{_M}: analysis", "Performance measures and plots; comparison of models",
       ("@tbl-performance", "@fig-roc", "@tbl-delong", "@tbl-calibration", "@fig-calibration", "@fig-dca"),
       "measures"),
    _I("12f", f"{_M}: analysis", "Model updating (e.g. recalibration) arising from the evaluation",
       ("@tbl-recalibration",), "updating"),
    _I("12g", f"{_M}: analysis", "How predictions were calculated for evaluation", (), "prediction_calculation"),
    _I("13", f"{_M}: class imbalance", "Class imbalance methods, why, and any recalibration after them", (),
       "imbalance"),
    _I("14", f"{_M}: fairness", "Approaches to model fairness"),
    _I("15", f"{_M}: model output", "Output (probabilities, classes); how thresholds were identified", (),
       "output"),
    _I("16", f"{_M}: development vs evaluation", "Differences between development and evaluation data", (),
       "differences"),
    _I("17", f"{_M}: ethics", "Ethics approval and consent"),
    _I("18a", _O, "Funding and role of funders"),
    _I("18b", _O, "Conflicts of interest"),
    _I("18c", _O, "Where the protocol can be accessed, or that none was prepared"),
    _I("18d", _O, "Study registration"),
    _I("18e", _O, "Availability of the study data"),
    _I("18f", _O, "Availability of the analytical code", ("@tbl-provenance",), "code"),
    _I("19", "Patient and public involvement", "Patient and public involvement, or none"),
    _I("20a", f"{_R}: participants", "Flow of participants, with and without the outcome", ("@tbl-cohort",),
       "flow"),
    _I("20b", f"{_R}: participants", "Characteristics overall and per data source",
       ("@tbl-table1-set", "@tbl-table1-outcome"), "characteristics", needs_where=True),
    _I("20c", f"{_R}: participants", "Evaluation data compared with development data", ("@tbl-table1-set",),
       "comparison", needs_where=True),
    _I("21", f"{_R}: model development", "Participants and outcome events in each analysis", ("@tbl-cohort",),
       "events"),
    _I("22", f"{_R}: model specification", "The full model, for predictions in new individuals; access", (),
       "specification"),
    _I("23a", f"{_R}: model performance", "Performance with confidence intervals, including key subgroups",
       ("@tbl-performance", "@fig-roc", "@tbl-delong", "@tbl-calibration", "@fig-calibration", "@fig-dca"),
       "performance"),
    _I("23b", f"{_R}: model performance", "Heterogeneity of performance across clusters"),
    _I("24", f"{_R}: model updating", "Results of any model updating", ("@tbl-recalibration",), "updating"),
    _I("25", "Discussion", "Overall interpretation, including fairness"),
    _I("26", "Discussion", "Limitations: sample, size, overfitting, missing data, generalisability"),
    _I("27a", "Discussion", "Handling poor-quality or unavailable inputs in use"),
    _I("27b", "Discussion", "User interaction and expertise required"),
    _I("27c", "Discussion", "Next steps for research, applicability and generalisability"),
)


# --------------------------------------------------------------------------------------------- fillers


def _title(run: Run, sections: Labels) -> str | None:
    return f"Report title: {run['title']}; manuscript title: {AUTHOR}" if run.get("title") else None


def _population(run: Run, sections: Labels) -> str | None:
    parts = [f"Population: {run['population']}" if run.get("population") else "",
             f"question: {run['question']}" if run.get("question") else ""]
    text = "; ".join(p for p in parts if p)
    return f"{text}; intended use and users: {AUTHOR}" if text else None


def _preparation(run: Run, sections: Labels) -> str | None:
    parts = [ANSWERS["preprocessing"](run, sections), ANSWERS["missing"](run, sections)]
    return "; ".join(p for p in parts if p) or None


def _is_features(run: Run) -> bool:
    return run.get("design") == "features" or any("selected_features" in m for m in run.get("models") or [])


def _predictors(run: Run, sections: Labels) -> str | None:
    cols = run.get("image_columns")
    if not cols:
        return None
    if _is_features(run):
        return (f"Radiomics and deep features of the ROI on {join_words(list(cols))}; no pre-selection before "
                f"modelling: LASSO selects on the training set only")
    return f"The images ({join_words(list(cols))}) as model inputs; no hand-made predictors"


def _predictor_handling(run: Run, sections: Labels) -> str | None:
    pre = ANSWERS["preprocessing"](run, sections)
    if pre is None:
        return None
    return pre + ("; features standardised on the training set (mean 0, SD 1) before LASSO" if _is_features(run)
                  else "")


def _model_building(run: Run, sections: Labels) -> str | None:
    parts = [ANSWERS[k](run, sections) for k in ("models", "training", "selection")]
    return "; ".join(p for p in parts if p) or None


def _measures(run: Run, sections: Labels) -> str | None:
    parts = [ANSWERS["metrics"](run, sections), ANSWERS["statistics"](run, sections)]
    return "; ".join(p for p in parts if p) or None


def _updating(run: Run, sections: Labels) -> str | None:
    if run.get("recalibration"):
        return str(run["recalibration"])
    return ("Recalibration fitted on the validation set and frozen; calibration before and after it"
            if "@tbl-recalibration" in sections else None)


def _prediction_calculation(run: Run, sections: Labels) -> str | None:
    version = (run.get("provenance") or {}).get("medlib")
    if not version:
        return None
    return (f"Predicted probabilities of the positive class computed by medlib {version} from the fitted models; "
            f"every case's prediction is saved in the run folder (predictions.csv)")


def _imbalance(run: Run, sections: Labels) -> str | None:
    t = run.get("training") or {}
    if _is_features(run):
        return None  # the fitted SVM is not reweighted; whether that suits the study is the authors' call
    methods = [w for w, on in (("focal loss", "focal" in str(t.get("loss", ""))),
                               ("inverse-frequency class weights", t.get("class_weights"))) if on]
    if methods:
        return f"{_cap(join_words(methods))} during training; predicted risks are therefore distorted"
    return "No class imbalance method (plain cross-entropy, no class weights)" if "class_weights" in t else None


def _output(run: Run, sections: Labels) -> str | None:
    th = run.get("thresholds") or {}
    if not th:
        return None
    methods = sorted({str((v or {}).get("method")) for v in th.values()})
    chosen = sorted({str((v or {}).get("chosen_on") or "val") for v in th.values()})
    return (f"Probability of the positive class; classification at a threshold per model chosen on the "
            f"{join_words([set_label(c).lower() for c in chosen])} set ({join_words(methods)}) and frozen for the "
            f"other sets")


def _differences(run: Run, sections: Labels) -> str | None:
    sets = {str(p.get("set")) for p in run.get("partitions") or []}
    if not sets:
        return None
    text = "Training, validation and test sets are patient-level partitions of one cohort"
    if run.get("split"):
        text += f" ({str(run['split']).rstrip('. ')})"
    return text + (f"; differences of the external set: {AUTHOR}" if "external" in sets else "")


def _comparison(run: Run, sections: Labels) -> str:
    return "Baseline characteristics by set (Table 1), evaluation sets beside the training set"


def _events(run: Run, sections: Labels) -> str | None:
    roles = {"train": "model development" + (" and hyperparameter tuning" if _is_features(run) else ""),
             "val": "early stopping and threshold choice (tuning)" if not _is_features(run) else "threshold choice",
             "test": "evaluation", "external": "external evaluation"}
    parts = [f"{set_label(p['set'])} ({roles.get(str(p['set']), 'other')}): {plural(p.get('cases'), 'case')}, "
             f"{plural(p.get('positives'), 'event')}" for p in run.get("partitions") or []
             if p.get("cases") is not None and p.get("positives") is not None]
    return "; ".join(parts) or None


def _specification(run: Run, sections: Labels) -> str | None:
    models = ANSWERS["models"](run, sections)
    return f"{models}; access to the fitted models: {AUTHOR}" if models else None


def _code(run: Run, sections: Labels) -> str | None:
    return ANSWERS["availability"](run, sections).split("; trained model")[0]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


#: TRIPOD+AI answer keys: the CLAIM answers and these
TRIPOD_ANSWERS: dict[str, Any] = {
    **ANSWERS, "title": _title, "population": _population, "preparation": _preparation, "predictors": _predictors,
    "predictor_handling": _predictor_handling, "model_building": _model_building, "measures": _measures,
    "updating": _updating, "prediction_calculation": _prediction_calculation, "imbalance": _imbalance,
    "output": _output, "differences": _differences, "comparison": _comparison, "events": _events,
    "specification": _specification, "code": _code,
}


def tripod_checklist(run: Mapping[str, Any]) -> pd.DataFrame:
    """The TRIPOD+AI (2024) checklist (52 items), filled from the run summary where it can be.

    Args:
        run: the run summary (``medlib.pipelines.record.run_summary``), as for
            :func:`medlib.report.checklist.claim_checklist`; also read: ``design``, ``recalibration`` (a sentence
            on the recalibration fitted on validation data, when the run fitted one).

    Returns:
        52 rows with columns ``item, section, topic, where, value``.

    Raises:
        TypeError, KeyError, ValueError: as :func:`medlib.report.checklist.claim_checklist`.
    """
    return fill_checklist(TRIPOD_AI, run, TRIPOD_ANSWERS)
