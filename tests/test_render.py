"""medlib.render without running Quarto: which notebooks are published, the labelled-cell rule, the study
notebook's cells, the article's words and numbers for a user's own study, and the message when Quarto is missing.

The real renders (site, PDF, DOCX) are in tests/render/test_quarto_render.py.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest

from medlib.render import notebooks as nbs

ROOT = Path(__file__).resolve().parents[1]
NEC_WORDS = re.compile(r"neonat|infant|\bNEC\b|bowel|enterocolitis", re.IGNORECASE)


def _cell(label: str | None, *outputs: dict) -> dict:
    head = f"#| label: {label}\n" if label else ""
    return {"cell_type": "code", "metadata": {}, "source": head + "show()", "outputs": list(outputs),
            "execution_count": 1}


def _md(text: str) -> dict:
    return {"output_type": "display_data", "data": {"text/markdown": text}, "metadata": {}}


def _notebook(*cells: dict, title: str = "My study", run_dir: str | None = None) -> dict:
    front = {"cell_type": "raw", "metadata": {}, "source": f'---\ntitle: "{title}"\n---'}
    setup = _cell(None, {"output_type": "display_data", "metadata": {},
                         "data": {nbs.RUN_MIME: {"run_dir": run_dir}}}) if run_dir else _cell(None)
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {"papermill": {"parameters": {
        "config_path": "params/my.yaml"}}}, "cells": [front, setup, *cells]}


def _write(path: Path, nb: dict, mtime: float | None = None) -> Path:
    path.write_text(json.dumps(nb))
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_published_failed_and_stale_notebooks(tmp_path):
    ok = _notebook(_cell("tbl-a", _md("| a |\n|---|\n| 1 |")), run_dir=str(tmp_path / "runs" / "r1"))
    error = {"output_type": "error", "ename": "ValueError", "evalue": "bad manifest", "traceback": []}
    _write(tmp_path / "alpha.ipynb", ok, mtime=2000)
    _write(tmp_path / "alpha.failed.ipynb", _notebook(_cell(None, error)), mtime=1000)  # older: history
    _write(tmp_path / "beta.ipynb", ok, mtime=1000)
    _write(tmp_path / "beta.failed.ipynb", _notebook(_cell(None, error)), mtime=2000)  # newer: named
    _write(tmp_path / "gamma.ipynb", _notebook(_cell("fig-x", error)))  # an error inside: not published
    _write(tmp_path / ".tmp.ipynb", _notebook(_cell(None, error)))  # a temporary file: ignored
    published, failed = nbs.scan_reports(tmp_path)
    assert [r.stem for r in published] == ["alpha", "beta"]
    assert published[0].title == "My study" and published[0].run_dir == tmp_path / "runs" / "r1"
    assert published[0].params == ROOT / "params" / "my.yaml"
    assert [(f.stem, f.log.name, f.previous is not None) for f in failed] == [
        ("beta", "beta.failed.ipynb", True), ("gamma", "gamma.ipynb", False)]
    assert failed[0].error == "ValueError: bad manifest (cell 2)"


def test_a_labelled_cell_with_two_displays_is_refused_by_name(tmp_path):
    two = _cell("tbl-performance", _md("A note."), _md("| a |\n|---|\n| 1 |"))
    warned = _cell("fig-roc", {"output_type": "stream", "name": "stderr", "text": "UserWarning"}, _md("x"))
    nbs.check_labelled_cells(_notebook(warned), "ok.ipynb")  # warnings (stderr) are not displays
    _write(tmp_path / "s.ipynb", _notebook(two))
    with pytest.raises(ValueError, match=r"s\.ipynb: cell 2 \(label tbl-performance\) displays 2 outputs"):
        nbs.scan_reports(tmp_path)


def test_study_notebook_labelled_cells_display_one_thing():
    """The template's rule: a labelled cell makes exactly one show_table/show_figure call and nothing else."""
    nb = json.loads((ROOT / "notebooks" / "study.ipynb").read_text())
    labelled = [("".join(c["source"])) for c in nb["cells"] if c["cell_type"] == "code"
                and "#| label:" in "".join(c["source"])]
    assert len(labelled) >= 15
    for src in labelled:
        code = "\n".join(line for line in src.splitlines() if not line.startswith("#|"))
        assert len(re.findall(r"\bshow_(table|figure|markdown)\(", code)) == 1, src
        assert not re.search(r"\bprint\(|\brun\.write_|\bsave_", code), src
    setup = "".join(nb["cells"][1]["source"])
    assert "show_run_record(run.path)" in setup and "include: false" in setup


def test_missing_quarto_is_one_clear_line(monkeypatch, tmp_path, capsys):
    from medlib.cli.commands import main
    from medlib.render import quarto

    monkeypatch.setattr(quarto, "_candidates", lambda: [tmp_path / "no-quarto"])
    with pytest.raises(quarto.QuartoNotFound, match=r"Quarto is required .*`make setup`.*conda-forge quarto"):
        quarto.find_quarto()
    (tmp_path / "reports").mkdir()
    assert main(["render", "--reports", str(tmp_path / "reports")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Quarto is required" in err[0] and "Traceback" not in err[0]


def _user_record():
    """A run record of a user's own study (not a built-in one), with hand-set numbers."""
    from medlib.config import config_from_dict
    from medlib.render.article import RunRecord
    from medlib.schema import FrozenThreshold, RunMetrics

    cfg = config_from_dict({
        "study": {"name": "scaphoid", "title": "Scaphoid fracture on wrist radiographs",
                  "question": "Does a wrist radiograph show a scaphoid fracture?",
                  "population": "Adults seen after a fall on the outstretched hand.", "unit": "wrist",
                  "positive": "fracture on follow-up imaging", "negative": "no fracture on follow-up",
                  "inputs": {"wrist": "posteroanterior wrist radiograph (PNG)"}},
        "cohort": {"manifest": "manifest.csv", "image_columns": ["wrist"], "positive": "fracture",
                   "negative": "intact"},
        "split": {"ratios": [0.5, 0.25, 0.25], "seed": 3}, "models": [{"name": "resnet18", "label": "ResNet18"}]})
    split = pd.DataFrame({"case_id": [f"c{i}" for i in range(12)], "patient_id": [f"p{i}" for i in range(12)],
                          "y": [0, 1] * 6, "set": ["train"] * 6 + ["val"] * 3 + ["test"] * 3})

    def row(set_name, metric, v, lo, hi):
        return {"model": "ResNet18", "set": set_name, "metric": metric, "value": v, "lo": lo, "hi": hi}

    perf = (row("val", "auc", 0.9, 0.7, 1.0), row("test", "auc", 0.8125, 0.6042, 0.9583),
            row("test", "sensitivity", 0.5, 0.2, 0.8), row("test", "specificity", 1.0, 0.44, 1.0))
    metrics = RunMetrics(thresholds={"ResNet18": FrozenThreshold(0.42, "youden", None, "val", "Youden index")},
                         performance=perf)
    return RunRecord(cfg=cfg, split=split, metrics=metrics, provenance={"medlib": "0.1", "split_hash": "ab" * 32},
                     run_id="20250101-000000")


def test_article_tells_the_users_study_with_the_run_records_numbers():
    from medlib.render.article import article_markdown

    text = article_markdown(_user_record(), notebook="my.ipynb", labels=["fig-roc", "tbl-performance"],
                            citation=None)
    front = json.loads(text.split("---\n")[1])
    assert front["title"] == "Scaphoid fracture on wrist radiographs"
    assert "Does a wrist radiograph show a scaphoid fracture?" in front["abstract"]
    assert "AUC 0.812 (0.604–0.958)" in front["abstract"]  # metrics.json's test AUC, 3 decimals
    assert "lower 95% confidence limit of its AUC, 0.604, is above 0.5" in front["abstract"]
    assert "Adults seen after a fall on the outstretched hand." in text and "12 wrists" in text
    assert "{{< embed my.ipynb#fig-roc >}}" in text and "tbl-cohort" not in text  # only cells with an output
    for heading in ("## Introduction", "## Methods", "## Results", "## Discussion", "## Limitations",
                    "## References"):
        assert heading in text
    assert "[@delong1988" in text and "[@wilson1927]" in text and "@collins2024tripodai" in text
    assert not NEC_WORDS.search(text) and "?" not in text.replace("scaphoid fracture?", "")


def test_templates_are_valid():
    import xml.dom.minidom

    import yaml

    from medlib.render.site import TEMPLATES

    style = xml.dom.minidom.parse(str(TEMPLATES / "medlib.csl")).documentElement
    assert style.tagName == "style" and style.getAttribute("class") == "in-text"
    for name in ("site.yml", "manuscript.yml"):
        config = yaml.safe_load((TEMPLATES / name).read_text())
        assert config["execute"]["enabled"] is False and config["quarto-required"].startswith(">=")
    bib = (TEMPLATES / "methods.bib").read_text()
    for key in ("delong1988", "wilson1927", "vickers2006", "vancalster2019", "selvaraju2017", "tejani2024claim",
                "collins2024tripodai"):
        assert f"{{{key}," in bib


def test_project_lists_and_links_only_the_pages_that_exist(tmp_path):
    """The generated _quarto.yml renders and links exactly the published notebooks, sweeps and benchmarks; a
    failed run is named in the index with its log; without PDFs no page links one."""
    import yaml

    from medlib.render.site import collect_site, write_project

    reports, bench = tmp_path / "reports", tmp_path / "bench" / "medmnist"
    reports.mkdir()
    bench.mkdir(parents=True)
    _write(reports / "alpha.ipynb", _notebook(_cell("tbl-a", _md("x")), title="Alpha: a study"))
    error = {"output_type": "error", "ename": "KeyError", "evalue": "'y'", "traceback": []}
    _write(reports / "beta.failed.ipynb", _notebook(_cell(None, error)))
    (reports / "sweep-alpha-lr.md").write_text("# Sweep lr: alpha\n")
    _write(bench / "pneumoniamnist.ipynb", _notebook(_cell(None), title="PneumoniaMNIST"))
    site = collect_site(reports, benchmarks=tmp_path / "bench")
    config = yaml.safe_load(write_project(reports, site, manuscripts={"alpha": True}, pdf=False).read_text())
    pages = config["project"]["render"]
    assert pages == ["index.qmd", "alpha.ipynb", "sweep-alpha-lr.md", "benchmarks/pneumoniamnist.ipynb",
                     "methods.qmd"]
    assert all((reports / p).is_file() for p in pages)
    nav = config["website"]["navbar"]["left"]
    hrefs = [i["href"] for i in nav if "href" in i] + [m["href"] for i in nav for m in i.get("menu", [])]
    assert sorted(hrefs) == sorted(pages) and "typst" not in config["format"]
    index = (reports / "index.qmd").read_text()
    assert "beta" not in pages and "`beta`: KeyError: 'y' (cell 2). Log: `" in index and "beta.failed.ipynb" in index
    assert "manuscripts/alpha/alpha.pdf" in index and "(alpha.pdf)" not in index
