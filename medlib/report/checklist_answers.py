"""The answers of the CLAIM 2024 checklist (:mod:`medlib.report.checklist`), each from the run summary.

One function per answer key (:data:`ANSWERS`), called with the run summary and the labels of the tables and
figures the report contains (``"@tbl-performance"``). An answer is None when the summary cannot give it (the
item goes to the author); a value the summary lacks reads ``"not recorded in this run"``, never ``"?"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

from medlib.report.format import AUTHOR, METRICS, NOT_RECORDED, fmt_number, join_words, plural, set_label
from medlib.schema import SETS as SET_ORDER

__all__ = ["ANSWERS", "Answer"]

Run = Mapping[str, Any]
Labels = frozenset[str]  # the report's table and figure labels, each as "@label"
Answer = Callable[[Run, Labels], "str | None"]


# --------------------------------------------------------------------------------------------- helpers


def _text(value: Any) -> str:
    """A summary value as report text: lists joined, floats short, booleans yes/no, None not recorded."""
    if value is None:
        return NOT_RECORDED
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value)
    return str(value)


def _count(value: Any, noun: str) -> str:
    return plural(value, noun) if value is not None else f"{noun}s {NOT_RECORDED}"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _partitions(run: Run) -> list[Mapping[str, Any]]:
    parts = list(run.get("partitions") or [])
    for i, p in enumerate(parts):
        if not isinstance(p, Mapping) or "set" not in p:
            raise ValueError(f"run['partitions'][{i}] must be a mapping with 'set', 'cases', 'patients', "
                             f"'positives'; got {p!r}")
    order = {s: i for i, s in enumerate(SET_ORDER)}
    return sorted(parts, key=lambda p: order.get(str(p["set"]), len(order)))


def _partition_text(p: Mapping[str, Any]) -> str:
    text = f"{set_label(p['set'])} {_count(p.get('cases'), 'case')} / {_count(p.get('patients'), 'patient')}"
    if p.get("positives") is not None and p.get("cases"):
        text += f", {int(p['positives'])} positive ({100 * int(p['positives']) / int(p['cases']):.1f}%)"
    return text


def _find_partition(run: Run, *names: str) -> Mapping[str, Any] | None:
    parts = {str(p["set"]): p for p in _partitions(run)}
    return next((parts[n] for n in names if n in parts), None)


def _model_label(m: Mapping[str, Any], i: int) -> str:
    return str(m.get("label") or m.get("name") or f"model {i + 1}")


def _prov(run: Run) -> Mapping[str, Any]:
    return run.get("provenance") or {}


Phrase = tuple[str, Callable[[Any], str]]  # (what the setting is called, its value as a phrase)


def _phrases(values: Mapping[str, Any], known: Mapping[str, Phrase], skip: tuple[str, ...] = ()) -> list[str]:
    """One phrase per setting, in the summary's order: known keys as ``known[key]`` says (a None value: "<name>
    not recorded in this run"), then any other key as ``"<key> <value>"``."""
    out = [known[k][1](v) if v is not None else f"{known[k][0]} {NOT_RECORDED}"
           for k, v in values.items() if k in known]
    return out + [f"{k.replace('_', ' ')} {_text(v)}" for k, v in values.items() if k not in known and k not in skip]


# --------------------------------------------------------------------------------------------- fillers


def _ai_method(run: Run, sections: Labels) -> str | None:
    models = run.get("models") or []
    names = ", ".join(_model_label(m, i) for i, m in enumerate(models))
    return (f"Models compared: {names}" if len(models) > 1 else f"Model evaluated: {names}") if models else None


def _aims(run: Run, sections: Labels) -> str | None:
    return f"Question: {run['question']} Hypotheses: {AUTHOR}" if run.get("question") else None


def _goal(run: Run, sections: Labels) -> str | None:
    models = run.get("models") or []
    if not models:
        return None
    what = (f"Model development and comparison of {len(models)} models" if len(models) > 1 else
            "Development of 1 model")
    testing = [w for w, s in (("internal", "test"), ("external", "external")) if _find_partition(run, s)]
    return f"{what}, with {join_words(testing)} testing" if testing else f"{what}; no held-out test set"


def _sources(run: Run, sections: Labels) -> str | None:
    if not run.get("manifest"):
        return None
    text = f"Cohort manifest {run['manifest']}"
    if _prov(run).get("cohort_hash"):
        text += f" (sha256 {str(_prov(run)['cohort_hash'])[:12]}…)"
    cols = run.get("image_columns")
    return text + (f"; image inputs: {_text(cols)}" if cols else "")


def _cases_patients(run: Run) -> str:
    n = run.get("n_patients")
    patients = f"from {plural(n, 'patient')}" if n is not None else f"(number of patients {NOT_RECORDED})"
    return f"{plural(run['n_cases'], 'case')} {patients}"


def _eligibility(run: Run, sections: Labels) -> str | None:
    if run.get("n_cases") is None:
        return None
    population = f"Population: {run['population']} " if run.get("population") else ""
    return (f"{population}{_cases_patients(run)}; every manifest row passed validation (label and all images "
            f"present). Clinical eligibility criteria: {AUTHOR}")


_PREPROCESSING = {
    "size": ("image size", lambda v: f"resized to {'×'.join(map(str, v))}"),
    "window": ("window", lambda v: v if isinstance(v, str) else f"window centre/width {v[0]:g}/{v[1]:g}"),
    "normalize": ("intensity normalisation", lambda v: f"intensity normalisation {v}"),
}


def _preprocessing(run: Run, sections: Labels) -> str | None:
    pre = dict(run.get("preprocessing") or {})
    if not pre:
        return None
    if "window" in pre and pre["window"] is None:
        pre["window"] = "header VOI window or none"  # no fixed window: the image's own VOI window, if any
    return _capital("; ".join(_phrases(pre, _PREPROCESSING)))


def _reference_standard(run: Run, sections: Labels) -> str | None:
    if run.get("positive") is None:
        return None
    negative = run.get("negative") if run.get("negative") is not None else f"negative class ({NOT_RECORDED})"
    meaning = "; ".join(f"{run[k]}: {run[f'{k}_meaning']}" for k in ("positive", "negative")
                        if run.get(k) is not None and run.get(f"{k}_meaning"))
    return (f"Outcome: {run['positive']} (positive class) vs {negative}" + (f" ({meaning})" if meaning else "")
            + f"; how it was established: {AUTHOR}")


def _partitions_answer(run: Run, sections: Labels) -> str | None:
    parts = "; ".join(_partition_text(p) for p in _partitions(run))
    return "; ".join(filter(None, [str(run.get("split") or "").rstrip(". "), parts])) or None


def _disjoint(run: Run, sections: Labels) -> str | None:
    if not run.get("split_hash"):
        return None
    return f"Patient level: every patient's cases lie in one set (checked); split hash {str(run['split_hash'])[:12]}"


def _sample_size(run: Run, sections: Labels) -> str | None:
    test = _find_partition(run, "test", "external")
    return None if test is None else f"{_partition_text(test)}; sample size justification: {AUTHOR}"


def _tuned_text(m: Mapping[str, Any]) -> list[str]:
    """A feature model: features kept of the candidates, and its tuned hyperparameters (never "parameters")."""
    parts = [f"{plural(m['selected_features'], 'feature')} kept by LASSO of {m.get('candidate_features', NOT_RECORDED)} "
             f"candidates"]
    t = m.get("tuning") or {}
    if t:
        parts.append(f"LASSO alpha {fmt_number(t.get('lasso_alpha'))}, SVM C {_text(t.get('svm_C'))}"
                     + (f", gamma {_text(t['gamma'])}" if t.get("gamma") is not None else ""))
    if m.get("backbone"):
        parts.append(f"deep features from {m['backbone'].get('model')} ({m['backbone'].get('kind')} weights)")
    return parts


def _model_text(m: Mapping[str, Any], i: int) -> str:
    parts = [f"registry name {m['name']}"] if m.get("name") else []
    n = m.get("parameters")
    if "selected_features" in m:
        parts += _tuned_text(m)
    else:
        parts.append(plural(n, "parameter", thousands=True) if n is not None else f"parameters {NOT_RECORDED}")
    if m.get("inputs"):
        parts.append(f"inputs: {_text(m['inputs'])}")
    return f"{_model_label(m, i)} ({'; '.join(parts)}); output: probability of the positive class"


def _models(run: Run, sections: Labels) -> str | None:
    return "; ".join(_model_text(m, i) for i, m in enumerate(run.get("models") or [])) or None


def _software(run: Run, sections: Labels) -> str | None:
    prov = _prov(run)
    items = [f"medlib {prov['medlib']}"] if prov.get("medlib") else []
    items += [f"Python {prov['python']}"] if prov.get("python") else []
    items += [f"{k} {v}" for k, v in (prov.get("packages") or {}).items() if v != "not installed"]
    return ", ".join(items) or None


def _init_text(m: Mapping[str, Any]) -> str:
    if m.get("weights_path"):
        return f"weights from {Path(str(m['weights_path'])).name}"
    if m.get("pretrained") is None:
        return f"initialisation {NOT_RECORDED}"
    return "ImageNet-pretrained weights" if m["pretrained"] else "random initialisation"


def _initialisation(run: Run, sections: Labels) -> str | None:
    models = run.get("models") or []
    if not models:
        return None
    if run.get("deep_weights"):
        w = run["deep_weights"]
        return (f"Deep-feature backbone {w.get('model')}: {w.get('source')}; SHA-256 {w.get('sha256')}"
                + ("; an ablation" if w.get("ablation") else "")
                + ". LASSO and SVM are fitted to the features: no initialised weights")
    inits = "; ".join(f"{_model_label(m, i)}: {_init_text(m)}" for i, m in enumerate(models))
    seed = (run.get("training") or {}).get("seed")
    return inits + (f" (seed {seed})" if seed is not None else "")


_TRAINING = {
    "optimizer": ("optimizer", lambda v: f"optimizer {v}"),
    "lr": ("learning rate", lambda v: f"learning rate {float(v):.3g}"),  # as the methods paragraph gives it
    "epochs": ("number of epochs", lambda v: f"up to {plural(v, 'epoch')}"),
    "batch_size": ("batch size", lambda v: f"batch size {v}"),
    "loss": ("loss", lambda v: f"loss {v}"),
    "augment": ("augmentation", lambda v: f"augmentation {'on' if v else 'off'}"),
    "seed": ("seed", lambda v: f"seed {v}"),
    "class_weights": ("class weights", lambda v: "inverse-frequency class weights" if v else "no class weights"),
    "habitats": ("habitat subregions", lambda v: f"{plural(v, 'habitat subregion')} per ROI" if v else
                 "no habitat subregions"),
}


def _training(run: Run, sections: Labels) -> str | None:
    t = run.get("training") or {}
    if not t:
        return None
    n = len(run.get("models") or [])
    trained = f"; {plural(n, 'model')} trained, one per configuration" if n else ""
    return _capital(", ".join(_phrases(t, _TRAINING, skip=("patience",)))) + trained


def _selection(run: Run, sections: Labels) -> str | None:
    if run.get("model_selection"):
        return _capital(str(run["model_selection"]))
    t = run.get("training") or {}
    if not t:
        return None
    if "epochs" not in t:
        return f"Selection of the final model {NOT_RECORDED}"
    patience = t.get("patience")
    stopping = (f"early stopping patience {NOT_RECORDED}" if patience is None else
                "no early stopping" if int(patience) == 0 else f"early stopping, patience {plural(patience, 'epoch')}")
    return f"Weights of the epoch with the highest validation AUC ({stopping})"


def _metrics(run: Run, sections: Labels) -> str | None:
    parts = [("@tbl-performance", "AUC, accuracy, sensitivity, specificity, precision, NPV, F1"),
             ("@tbl-calibration", "Brier score, calibration intercept and slope"),
             ("@fig-dca", "net benefit (decision curves)")]
    return "; ".join(text for label, text in parts if label in sections) or None


def _intervals(run: Run) -> str:
    """The interval methods the run recorded (``run["intervals"]``: metric -> method or methods); without them,
    a pointer to the performance table's note rather than a claim."""
    recorded = run.get("intervals") or {}
    if not recorded:
        return "95% CIs by the methods named under the performance table"
    by_method: dict[str, list[str]] = {}
    for metric, methods in recorded.items():
        for method in ([methods] if isinstance(methods, str) else list(methods)):
            by_method.setdefault(str(method), []).append(METRICS.get(metric, str(metric)))
    return "95% CIs: " + "; ".join(f"{join_words(ms)} by {m}" for m, ms in by_method.items())


def _statistics(run: Run, sections: Labels) -> str | None:
    parts = [("@tbl-performance", _intervals(run)),
             ("@tbl-delong", "paired DeLong tests between models with Holm-adjusted p-values")]
    return "; ".join(text for label, text in parts if label in sections) or None


def _internal(run: Run, sections: Labels) -> str | None:
    method, test = run.get("threshold_method"), _find_partition(run, "test")
    parts = [f"threshold chosen on the validation set ({method}) and frozen"] if method else []
    parts += [f"held-out internal test set: {_partition_text(test)}"] if test is not None else []
    parts += [str(run["training_scores"])] if run.get("training_scores") else []
    return "; ".join(parts) or None


def _external(run: Run, sections: Labels) -> str | None:
    ext = _find_partition(run, "external")
    if ext is not None:
        return f"External test set: {_partition_text(ext)}"
    return "No external test set in this run" if run.get("partitions") else None


def _flow(run: Run, sections: Labels) -> str | None:
    if run.get("n_cases") is None:
        return None
    parts = "; ".join(_partition_text(p) for p in _partitions(run))
    return f"{_cases_patients(run)} included" + (f": {parts}" if parts else "")


def _characteristics(run: Run, sections: Labels) -> str | None:
    by = [w for label, w in (("@tbl-table1-set", "by set"), ("@tbl-table1-outcome", "by outcome")) if label in sections]
    return f"Baseline characteristics {join_words(by)} (Table 1)" if by else None


def _performance(run: Run, sections: Labels) -> str | None:
    if "@tbl-performance" not in sections:
        return None
    sets = [set_label(p["set"]).lower() for p in _partitions(run) if p["set"] != "train"]
    where = f"{join_words(sets)} set{'s' if len(sets) > 1 else ''}" if sets else "evaluation sets"
    shown = [text for labels, text in ((("@fig-roc",), "ROC curves"), (("@tbl-delong",), "paired DeLong tests"),
                                       (("@tbl-calibration", "@fig-calibration"), "calibration"),
                                       (("@fig-dca",), "decision curves")) if set(labels) & sections]
    return f"All models on the {where} with 95% CIs" + (f"; {join_words(shown)}" if shown else "")


def _diagnostic(run: Run, sections: Labels) -> str | None:
    th = run.get("thresholds") or {}
    if not th:
        return None
    return "Sensitivity, specificity and predictive values at the frozen thresholds: " + "; ".join(
        f"{m} {fmt_number((v or {}).get('value'))} ({(v or {}).get('method') or f'method {NOT_RECORDED}'})"
        for m, v in th.items())


def _failures(run: Run, sections: Labels) -> str | None:
    shown = [text for label, text in (("@fig-cam", "Grad-CAM of true/false positive and negative cases"),
                                      ("@fig-confusion", "confusion matrices")) if label in sections]
    return _capital(", ".join(shown)) or None


def _protocol(run: Run, sections: Labels) -> str:
    commit = _prov(run).get("git_commit")
    return ("Resolved configuration (config.yaml) and provenance (provenance.json) saved with the run; git commit "
            f"{str(commit)[:12] if commit else NOT_RECORDED}")


def _availability(run: Run, sections: Labels) -> str:
    prov = _prov(run)
    return (f"Code: medlib {prov.get('medlib') or NOT_RECORDED}, git commit {prov.get('git_commit') or NOT_RECORDED}; "
            f"trained model and data: {AUTHOR}")


#: answer key (``ChecklistItem.fill``) -> the function that answers it from the run summary
ANSWERS: dict[str, Answer] = {
    "ai_method": _ai_method,
    "aims": _aims,
    "goal": _goal,
    "sources": _sources,
    "eligibility": _eligibility,
    "preprocessing": _preprocessing,
    "deidentification": lambda run, s: f"{AUTHOR} (the report shows case ids only, no patient identifiers)",
    "missing": lambda run, s: ("Cases with a missing image, view or label are rejected when the manifest is "
                               "validated; no imputation"),
    "acquisition": lambda run, s: None,
    "reference_standard": _reference_standard,
    "partitions": _partitions_answer,
    "disjoint": _disjoint,
    "sample_size": _sample_size,
    "models": _models,
    "software": _software,
    "initialisation": _initialisation,
    "training": _training,
    "selection": _selection,
    "ensembling": lambda run, s: "None: each model is evaluated on its own" if run.get("models") else None,
    "metrics": _metrics,
    "statistics": _statistics,
    "explainability": lambda run, s: run.get("explainability") or None,
    "internal": _internal,
    "external": _external,
    "flow": _flow,
    "characteristics": _characteristics,
    "performance": _performance,
    "diagnostic": _diagnostic,
    "failures": _failures,
    "protocol": _protocol,
    "availability": _availability,
}
