"""A manuscript per study: a Quarto manuscript project built from the run record and the executed notebook,
rendered to HTML, PDF (Typst) and DOCX (for journals' submission systems).

``build_manuscript(report, out)`` writes the project into ``<reports>/_manuscripts/<study>/`` (Quarto ignores
folders starting with ``_`` when it renders the site):

- ``_quarto.yml`` (``templates/manuscript.yml``): ``project: type: manuscript``, the three formats;
- ``<study>.qmd``: the article (:mod:`medlib.render.article`), regenerated on every build;
- ``<study>.ipynb``: a copy of the executed notebook, embedded from (``{{< embed <study>.ipynb#fig-roc >}}``);
- ``methods.bib`` (the method references), ``references.json`` (the study's own reference, CSL JSON) and
  ``medlib.csl`` (a small numeric style: pandoc and Quarto ship none, and rendering is offline);

then runs ``quarto render`` there and copies ``index.html``, ``<study>.pdf``, ``<study>.docx`` (and the HTML's
support files) into ``out``. ``quarto render reports/_manuscripts/<study>`` renders it again by hand.

The study's reference: the params file's ``study.reference.source`` names the publication. When a
``references.bib`` beside the params file (or in its parent folder) holds an entry whose title or shorttitle the
source quotes, that entry is cited; otherwise the source text itself is the reference.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import yaml

from medlib.render.article import RunRecord, article_markdown
from medlib.render.notebooks import Report, check_labelled_cells, load_notebook, scan_reports
from medlib.render.quarto import QUARTO_REQUIRED, quarto_version, run_quarto

__all__ = ["build_manuscript", "manuscript_files", "manuscript_problem", "render_manuscript", "study_citation"]

TEMPLATES = Path(__file__).resolve().parent / "templates"
_LABEL = re.compile(r"^#\|\s*label:\s*(\S+)\s*$", re.M)


def manuscript_files(stem: str) -> dict[str, str]:
    """The file names of a study's manuscript: ``{"html": "index.html", "pdf": ..., "docx": ...}``."""
    return {"html": "index.html", "pdf": f"{stem}.pdf", "docx": f"{stem}.docx"}


def manuscript_problem(report: Report) -> str | None:
    """Why ``report`` cannot get a manuscript (its run record is missing), or None when it can."""
    if report.run_dir is None:
        return (f"{report.path.name} does not name its run folder (run it again with this medlib: the study "
                f"notebook's set-up cell announces it)")
    missing = [n for n in ("config.yaml", "split.csv", "metrics.json", "provenance.json")
               if not (report.run_dir / n).is_file()]
    return f"its run folder {report.run_dir} lacks {', '.join(missing)}" if missing else None


def _one_output_labels(notebook: Path) -> list[str]:
    """Labels of the notebook's cells that hold exactly one output (a section the run does not hold has none)."""
    nb = load_notebook(notebook)
    check_labelled_cells(nb, notebook.name)
    labels = []
    for cell in nb["cells"]:
        src = "".join(cell.get("source", "")) if isinstance(cell.get("source"), list) else str(cell.get("source", ""))
        match = _LABEL.search(src) if cell.get("cell_type") == "code" else None
        shown = [o for o in cell.get("outputs", []) if o.get("name") != "stderr"]
        if match and len(shown) == 1:
            labels.append(match.group(1))
    return labels


def _normalise(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.casefold()).strip()


def study_citation(source: str, bib: Path, folder: Path) -> tuple[str, Path | None]:
    """The citation key of ``source`` (``study.reference.source``) in ``bib``, and the bib to copy.

    Returns ``("study-reference", None)`` when ``bib`` is missing or no entry's title or shorttitle is quoted
    in ``source``. Pandoc (inside Quarto) reads the ``.bib``: no BibTeX parser of our own.
    """
    if not bib.is_file():
        return "study-reference", None
    entries = _csljson(bib, folder)
    wanted = _normalise(source)
    for entry in entries:
        for key in ("title", "title-short"):
            if entry.get(key) and _normalise(str(entry[key])) in wanted:
                return str(entry["id"]), bib
    return "study-reference", None


def _csljson(bib: Path, folder: Path) -> list[dict]:
    out = folder / ".references.json"
    run_quarto(["pandoc", str(bib.resolve()), "-f", "biblatex", "-t", "csljson", "-o", out.name], cwd=folder,
               what=f"reading {bib}")
    try:
        return json.loads(out.read_text(encoding="utf-8"))
    finally:
        out.unlink(missing_ok=True)


def _source_entry(key: str, source: str) -> str:
    """A BibLaTeX entry whose title is ``study.reference.source`` as written (LaTeX specials escaped, braces
    dropped, case protected), for a reference no ``references.bib`` holds. A ``.bib`` rather than CSL JSON:
    Quarto's HTML metadata step reads every bibliography file with pandoc, which takes ``.json`` for its own AST."""
    text = re.sub(r"([%&#$_])", r"\\\1", re.sub(r"[{}\\]", "", source))
    return f"@misc{{{key},\n  title = {{{{{text}}}}}\n}}\n"


def _params_bib(report: Report) -> Path:
    """``references.bib`` beside the run's params file, else in its parent folder (the built-in studies'
    ``params/references.bib`` serves ``params/smoke/*.yaml`` too)."""
    params = report.params
    if params is None:
        return Path("/nonexistent/references.bib")
    for folder in (params.parent, params.parent.parent):
        if (folder / "references.bib").is_file():
            return folder / "references.bib"
    return params.parent / "references.bib"


def _write_project(report: Report, rec: RunRecord, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    stem = report.stem
    shutil.copyfile(report.path, folder / f"{stem}.ipynb")
    for name in ("methods.bib", "medlib.csl"):
        shutil.copyfile(TEMPLATES / name, folder / name)
    config = yaml.safe_load((TEMPLATES / "manuscript.yml").read_text(encoding="utf-8"))
    config["quarto-required"] = QUARTO_REQUIRED
    config["manuscript"] = {"article": f"{stem}.qmd", "notebooks": [{"notebook": f"{stem}.ipynb",
                                                                      "title": f"{rec.cfg.study.title}: the report"}]}
    (folder / "_quarto.yml").write_text("# Written by `medlib manuscript` from medlib/render/templates/manuscript.yml"
                                        "\n" + yaml.safe_dump(config, sort_keys=False, allow_unicode=True),
                                        encoding="utf-8")
    citation, study_bib = None, "% no published study to compare with (study.reference is not set)\n"
    if rec.cfg.study.reference is not None:
        source = " ".join(rec.cfg.study.reference.source.split())
        citation, bib = study_citation(source, _params_bib(report), folder)
        study_bib = bib.read_text(encoding="utf-8") if bib else _source_entry(citation, source)
    (folder / "references.bib").write_text(study_bib, encoding="utf-8")
    text = article_markdown(rec, notebook=f"{stem}.ipynb", labels=_one_output_labels(report.path), citation=citation)
    (folder / f"{stem}.qmd").write_text(text, encoding="utf-8")


def build_manuscript(report: Report, out: Path) -> tuple[Path, ...]:
    """Write and render the manuscript of ``report`` into ``out`` (see the module docstring).

    Returns:
        The HTML, PDF and DOCX written into ``out``.

    Raises:
        FileNotFoundError: the run record is missing (the message names what).
        RuntimeError: Quarto failed (the end of its output is in the message).
    """
    problem = manuscript_problem(report)
    if problem:
        raise FileNotFoundError(f"no manuscript for {report.stem}: {problem}")
    folder = report.path.parent / "_manuscripts" / report.stem
    if folder.exists():
        shutil.rmtree(folder)  # regenerated as a whole: no stale article, notebook or output
    _write_project(report, RunRecord.load(report.run_dir), folder)
    run_quarto(["render"], cwd=folder, what=f"the manuscript of {report.stem}")
    built = folder / "_manuscript"
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(built, out)
    files = manuscript_files(report.stem)
    return tuple(out / files[k] for k in ("html", "pdf", "docx"))


def render_manuscript(study: str, reports_dir: str | Path = "reports", out_dir: str | Path | None = None
                      ) -> tuple[Path, ...]:
    """``medlib manuscript STUDY``: the manuscript of ``<reports>/<study>.ipynb`` into ``out_dir`` (default
    ``<reports>/_site/manuscripts/<study>/``, where the site's index links it).

    Raises:
        QuartoNotFound: Quarto is not installed (the message says how to install it).
        FileNotFoundError: no such published report (the message lists those there), or its run record is missing.
        RuntimeError: Quarto failed.
    """
    quarto_version()  # a missing Quarto is one clear message, before any work
    reports = Path(reports_dir).resolve()
    published, failures = scan_reports(reports)
    found = [r for r in published if r.stem == study]
    if not found:
        failed = [f for f in failures if f.stem == study]
        why = (f"its run failed ({failed[0].error}; log: {failed[0].log})" if failed else
               f"there is no {study}.ipynb; published reports: {[r.stem for r in published]}")
        raise FileNotFoundError(f"no manuscript for {study} in {reports}: {why}")
    out = Path(out_dir) if out_dir else reports / "_site" / "manuscripts" / study
    return build_manuscript(found[0], out.resolve())
