"""What the demo must show, checked from each study's run record and printed at the end of ``medlib demo``.

The demo exists to show that medlib's models learn and that their Grad-CAM maps point at the lesion, on
synthetic cohorts where the answer is known. Two targets, read from each run's ``metrics.json`` (written by the
study notebook, ``medlib.pipelines.record``), never recomputed here:

* every CNN (the ``classifier`` design) reaches ``AUC_TARGET`` on every untouched set (test, external);
* the best CNN of each study (highest validation AUC, the model the report's Grad-CAM figure shows) hits the
  lesion in the pointing game on at least ``POINTING_TARGET`` of the scored cases and more often than the
  centre-of-image baseline.

Models that are not CNNs (the feature design's radiomics, deep features and fusion; the vision transformer) are
listed, not judged: the targets are about the CNNs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from medlib.schema import TUNING_SET, UNTOUCHED_SETS

__all__ = ["AUC_TARGET", "POINTING_TARGET", "demo_targets", "format_targets", "write_targets"]

AUC_TARGET = 0.85
POINTING_TARGET = 0.70


def _record(run_dir: Path) -> tuple[set[str], dict[str, Any]]:
    """The display names of the run's CNNs (none in the feature design) and its ``metrics.json``."""
    from medlib.learn.models import NOT_CONVOLUTIONAL
    from medlib.runs.folder import open_run

    run = open_run(run_dir)
    config = run.read_config(raw=True)
    models = config.get("models") or []
    cnns = {m.get("label") or m.get("name") for m in models if m.get("name") not in NOT_CONVOLUTIONAL}
    return (cnns if config.get("design", "classifier") == "classifier" else set()), run.read_metrics()


def demo_targets(runs: Mapping[str, Path]) -> dict[str, pd.DataFrame]:
    """The targets of every study's run (``study → run folder``).

    Returns:
        ``auc``: one row per model and untouched set (study, cnn, model, set, auc, lo, hi, met);
        ``pointing``: one row per study with a scored localisation (study, model, set, outcome, scored,
        pointing, lo, hi, centre, met). ``met`` is None where no target applies (not a CNN: the feature design,
        a vision transformer).
    """
    aucs, pointing = [], []
    for study, run_dir in runs.items():
        cnns, metrics = _record(Path(run_dir))
        val_auc = {}
        for r in metrics.get("performance", ()):
            if r.get("metric") != "auc":
                continue
            if r["set"] == TUNING_SET:
                val_auc[r["model"]] = r.get("value")
            if r["set"] in UNTOUCHED_SETS:
                auc = r.get("value")
                cnn = r["model"] in cnns
                aucs.append({"study": study, "cnn": cnn, "model": r["model"], "set": r["set"], "auc": auc,
                             "lo": r.get("lo"), "hi": r.get("hi"),
                             "met": (auc is not None and auc >= AUC_TARGET) if cnn else None})
        scored = [r for r in metrics.get("localisation", ()) if not r.get("note") and r["model"] in cnns]
        if scored:
            best = max(scored, key=lambda r: val_auc.get(r["model"]) or float("-inf"))
            hit, centre = best.get("pointing"), best.get("centre_pointing")
            pointing.append({"study": study, "model": best["model"], "set": best.get("set", ""),
                             "outcome": best.get("outcome", ""), "scored": best.get("scored"), "pointing": hit,
                             "lo": best.get("pointing_low"), "hi": best.get("pointing_high"), "centre": centre,
                             "met": hit is not None and centre is not None and hit >= POINTING_TARGET
                             and hit > centre})
    return {"auc": pd.DataFrame(aucs), "pointing": pd.DataFrame(pointing)}


def _verdict(met: Any) -> str:
    return "–" if met is None or pd.isna(met) else ("met" if met else "MISSED")


def _num(value: Any, pattern: str = "{:.3f}") -> str:
    return "–" if value is None or pd.isna(value) else pattern.format(value)


def format_targets(targets: Mapping[str, pd.DataFrame]) -> str:
    """The targets as plain text lines for the terminal."""
    lines = [f"Demo targets: test and external AUC >= {AUC_TARGET} for every CNN; for each study's best CNN the "
             f"pointing game >= {POINTING_TARGET:.0%} and above the centre baseline"]
    auc = targets["auc"]
    if not auc.empty:
        lines.append(f"  {'study':<8} {'model':<16} {'set':<9} {'AUC (95% CI)':<22} target")
        for _, r in auc.iterrows():
            ci = f"{_num(r['auc'])} ({_num(r['lo'])} to {_num(r['hi'])})"
            note = _verdict(r["met"]) if r["cnn"] else "– (not a CNN)"
            lines.append(f"  {r['study']:<8} {r['model']:<16} {r['set']:<9} {ci:<22} {note}")
    pointing = targets["pointing"]
    if not pointing.empty:
        lines.append(f"  {'study':<8} {'best model':<16} {'set':<9} {'pointing (95% CI)':<22} {'centre':<7} target")
        for _, r in pointing.iterrows():
            ci = f"{_num(r['pointing'], '{:.0%}')} ({_num(r['lo'], '{:.0%}')} to {_num(r['hi'], '{:.0%}')})"
            lines.append(f"  {r['study']:<8} {r['model']:<16} {r['set']:<9} {ci:<22} "
                         f"{_num(r['centre'], '{:.0%}'):<7} {_verdict(r['met'])} ({r['scored']} {r['outcome']} cases)")
    return "\n".join(lines)


def write_targets(targets: Mapping[str, pd.DataFrame], path: Path, *, seconds: Mapping[str, float]) -> Path:
    """``demo-targets.json`` beside the reports: the targets' rows and the demo's time per step."""
    data = {"auc_target": AUC_TARGET, "pointing_target": POINTING_TARGET, "seconds": dict(seconds),
            **{k: json.loads(v.to_json(orient="records")) for k, v in targets.items()}}
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return path
