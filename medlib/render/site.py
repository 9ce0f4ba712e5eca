"""The report site: the executed notebooks of a reports folder → a Quarto website, a Typst PDF per study and a
manuscript per study, in ``<reports>/_site/``.

The reports folder is the Quarto project. ``render_reports`` writes its project files (``_quarto.yml`` from
``templates/site.yml`` with the pages that exist and a navigation bar linking only those, ``index.qmd`` listing
the published studies and naming the runs that failed, ``methods.qmd``), runs ``quarto render`` into a staging
folder, builds each study's manuscript (:mod:`medlib.render.manuscript`) into ``manuscripts/<study>/`` of that
folder, and only then swaps it for the old site, so a failed render leaves the previous site whole.

The layout, the same on every machine:

``_site/index.html``, ``_site/<study>.html`` + ``<study>.pdf``, ``_site/methods.html``,
``_site/sweep-<study>-<name>.html`` (``medlib sweep``), ``_site/benchmarks/<name>.html``,
``_site/manuscripts/<study>/index.html`` + ``<study>.pdf`` + ``<study>.docx``, and Quarto's ``site_libs/``.

After ``medlib render`` has written the project files, ``quarto render reports`` renders the same site (without
the manuscripts); run ``medlib render`` again after a new study so that the pages and the navigation bar follow.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from medlib.render.manuscript import build_manuscript, manuscript_files, manuscript_problem
from medlib.render.notebooks import Failure, Report, scan_reports
from medlib.render.quarto import QUARTO_REQUIRED, quarto_version, run_quarto

__all__ = ["RenderResult", "Site", "collect_site", "render_reports", "write_project"]

TEMPLATES = Path(__file__).resolve().parent / "templates"
_NAV_MAX = 24  # a title longer than this is shown by its file name in the navigation bar


@dataclass(frozen=True)
class Site:
    """The pages of one site.

    Attributes:
        reports: published study notebooks, by title.
        failures: notebooks not published (failed runs), by name.
        sweeps: sweep summary pages (``sweep-*.md``), by name.
        benchmarks: published benchmark notebooks (``benchmarks/*.ipynb``), by title.
        methods: whether ``methods.qmd`` is part of the site.
    """

    reports: list[Report]
    failures: list[Failure]
    sweeps: list[Path] = field(default_factory=list)
    benchmarks: list[Report] = field(default_factory=list)
    methods: bool = True


@dataclass(frozen=True)
class RenderResult:
    """What :func:`render_reports` wrote.

    Attributes:
        out_dir: the site folder.
        pages: the HTML pages (index first).
        pdfs: the study PDFs.
        manuscripts: per study, the manuscript files (HTML, PDF, DOCX).
        failures: the runs not published.
        quarto: the Quarto version used.
        seconds: wall time.
        notes: what was skipped and why.
    """

    out_dir: Path
    pages: tuple[Path, ...]
    pdfs: tuple[Path, ...]
    manuscripts: dict[str, tuple[Path, ...]]
    failures: tuple[Failure, ...]
    quarto: str
    seconds: float
    notes: tuple[str, ...] = ()

    @property
    def engine(self) -> str:
        """Always ``"quarto"`` (kept for callers that print it)."""
        return "quarto"

    def summary(self) -> str:
        """Several lines for the command line."""
        lines = [f"rendered {len(self.pages)} pages, {len(self.pdfs)} PDFs and {len(self.manuscripts)} manuscripts "
                 f"with Quarto {self.quarto} into {self.out_dir} ({self.seconds:.1f} s); open "
                 f"{self.out_dir / 'index.html'}"]
        lines += [f"  manuscript {stem}: {', '.join(p.name for p in files)}"
                  for stem, files in self.manuscripts.items()]
        lines += [f"  not published: {f.stem}: {f.error}; log: {_shown(f.log)}" for f in self.failures]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _shown(path: Path) -> str:
    """A path as the user typed it: relative to the current folder when inside it."""
    rel = os.path.relpath(path.resolve(), Path.cwd())
    return str(path.resolve()) if rel.startswith("..") else rel


def _nav_text(report: Report) -> str:
    return report.title if len(report.title) <= _NAV_MAX else report.stem


def _copy_benchmarks(source: Path | None, reports: Path) -> None:
    """Copy executed benchmark notebooks (``<source>/**/*.ipynb``, e.g. ``benchmarks/results``) into
    ``<reports>/benchmarks/`` so that they become pages of the site; a copy is refreshed when the source is newer."""
    if source is None or not source.is_dir():
        return
    for nb in sorted(source.rglob("*.ipynb")):
        if nb.name.startswith((".", "_")) or ".ipynb_checkpoints" in nb.parts:
            continue
        target = reports / "benchmarks" / nb.name
        if not target.exists() or target.stat().st_mtime < nb.stat().st_mtime:
            target.parent.mkdir(exist_ok=True)
            shutil.copy2(nb, target)


def collect_site(reports_dir: str | Path, *, benchmarks: str | Path | None = None) -> Site:
    """The pages of the site of ``reports_dir``.

    Args:
        benchmarks: a folder of executed benchmark notebooks to publish too (copied into
            ``<reports>/benchmarks/``).

    Raises:
        FileNotFoundError: no reports folder, or nothing to publish and no failed run to name.
        ValueError: a published notebook breaks the labelled-cell rule (:mod:`medlib.render.notebooks`).
    """
    reports = Path(reports_dir)
    if not reports.is_dir():
        raise FileNotFoundError(f"reports folder not found: {reports} (run a study first: medlib run STUDY)")
    _copy_benchmarks(Path(benchmarks) if benchmarks else None, reports)
    published, failures = scan_reports(reports)
    bench, bench_failures = scan_reports(reports / "benchmarks") if (reports / "benchmarks").is_dir() else ([], [])
    sweeps = sorted(reports.glob("sweep-*.md"))
    if not (published or failures or sweeps or bench):
        raise FileNotFoundError(f"no executed notebooks (*.ipynb) in the reports folder {reports} (run a study "
                                "first: medlib run STUDY)")
    return Site(reports=published, failures=[*failures, *bench_failures], sweeps=sweeps, benchmarks=bench)


def _navbar(site: Site) -> list[dict[str, Any]]:
    nav: list[dict[str, Any]] = [{"href": "index.qmd", "text": "Overview"}]
    nav += [{"href": r.path.name, "text": _nav_text(r)} for r in site.reports]
    if site.sweeps:
        nav.append({"text": "Sweeps", "menu": [{"href": p.name, "text": p.stem} for p in site.sweeps]})
    if site.benchmarks:
        nav.append({"text": "Benchmarks", "menu": [{"href": f"benchmarks/{r.path.name}", "text": _nav_text(r)}
                                                   for r in site.benchmarks]})
    if site.methods:
        nav.append({"href": "methods.qmd", "text": "Methods"})
    return nav


def _study_summary(report: Report) -> str:
    """The study's question from the run's config, or ``""`` when the run folder is not there."""
    config = report.run_dir / "config.yaml" if report.run_dir else None
    if config is None or not config.is_file():
        return ""
    data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    return " ".join(str(data.get("study", {}).get("question", "")).split())


def _index(site: Site, manuscripts: dict[str, bool], pdf: bool = True) -> str:
    """``index.qmd``: the introduction, the published studies with their links, the failed runs and their logs."""
    parts = ["---", 'title: "Study reports"', "format: html", "toc: false", "---", "",
             (TEMPLATES / "index.md").read_text(encoding="utf-8").strip(), "", "## Studies", ""]
    if not site.reports:
        parts.append("No study run has finished yet.")
    for r in site.reports:
        links = [f"[Report]({r.path.name})", *([f"[PDF]({r.stem}.pdf)"] if pdf else [])]
        if manuscripts.get(r.stem):
            files = manuscript_files(r.stem)
            links.append(f"manuscript: [HTML](manuscripts/{r.stem}/{files['html']}), "
                         f"[PDF](manuscripts/{r.stem}/{files['pdf']}), [Word](manuscripts/{r.stem}/{files['docx']})")
        summary = _study_summary(r)
        parts += [f"- **[{r.title}]({r.path.name})**{f': {summary}' if summary else ''}  ", f"  {' · '.join(links)}"]
    if site.failures:
        parts += ["", "## Runs that failed", "",
                  "These runs did not finish and are not published. Each line gives the error and the notebook that "
                  "holds the failed cell and its traceback (the log).", ""]
        for f in site.failures:
            still = f" The page of the previous successful run (`{f.previous.name}`) is still published." \
                if f.previous else ""
            parts.append(f"- `{f.stem}`: {f.error}. Log: `{_shown(f.log)}`.{still}")
    for title, pages in (("Sweeps", [(p.name, p.stem) for p in site.sweeps]),
                         ("Benchmarks", [(f"benchmarks/{r.path.name}", r.title) for r in site.benchmarks])):
        if pages:
            parts += ["", f"## {title}", "", *[f"- [{text}]({href})" for href, text in pages]]
    return "\n".join(parts) + "\n"


def write_project(reports_dir: str | Path, site: Site, *, manuscripts: dict[str, bool] | None = None,
                  pdf: bool = True) -> Path:
    """Write the Quarto project files of ``site`` into ``reports_dir``: ``_quarto.yml``, ``index.qmd`` and
    ``methods.qmd``; without ``pdf`` the Typst format is left out (so no page links a PDF that is not there).
    Returns the ``_quarto.yml`` written."""
    reports = Path(reports_dir)
    config = yaml.safe_load((TEMPLATES / "site.yml").read_text(encoding="utf-8"))
    if not pdf:
        config["format"].pop("typst")
    config["quarto-required"] = QUARTO_REQUIRED
    config["project"]["render"] = (["index.qmd", *(r.path.name for r in site.reports), *(p.name for p in site.sweeps),
                                    *(f"benchmarks/{r.path.name}" for r in site.benchmarks)]
                                   + (["methods.qmd"] if site.methods else []))
    config["website"]["navbar"]["left"] = _navbar(site)
    header = ("# Written by `medlib render` from medlib/render/templates/site.yml, with the pages that exist; it is\n"
              "# rewritten on every render (edit the template instead). `quarto render` in this folder renders the\n"
              "# same site.\n")
    (reports / "index.qmd").write_text(_index(site, manuscripts or {}, pdf), encoding="utf-8")
    if site.methods:
        shutil.copyfile(TEMPLATES / "methods.qmd", reports / "methods.qmd")
    path = reports / "_quarto.yml"
    path.write_text(header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=110), encoding="utf-8")
    return path


def _publish(staging: Path, out: Path) -> None:
    """Replace ``out`` by ``staging`` with renames only (the old site stays whole until the swap)."""
    os.chmod(staging, 0o755)
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        os.replace(out, old)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(staging), str(out))
    if old.exists():
        shutil.rmtree(old)


def _render_site_and_manuscripts(reports: Path, staging: Path, with_manuscript: list,
                                 ready: Mapping[str, Future]) -> dict[str, tuple[Path, ...]]:
    """Render the site into ``staging`` and each report's manuscript into ``staging/manuscripts/<stem>``
    (those of ``ready`` are being built elsewhere: waited on, then moved in).

    The Quarto runs are independent (the site is one project, each manuscript its own under
    ``_manuscripts/<stem>``), so they run side by side, as many as there are cores; each one is mostly a
    single-threaded Quarto process. The manuscripts are built beside the staging folder and moved into it once
    the site is done, since a project render may clear its output folder first.
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    aside = Path(tempfile.mkdtemp(prefix=".manuscripts-", dir=reports))
    here = [r for r in with_manuscript if r.stem not in ready]
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(os.cpu_count() or 1, 1 + len(here)))) as pool:
            site_job = pool.submit(run_quarto, ["render", ".", "--output-dir", staging.name], cwd=reports,
                                   what="the report site")
            jobs = {r.stem: pool.submit(build_manuscript, r, aside / r.stem) for r in here}
            jobs |= {r.stem: ready[r.stem] for r in with_manuscript if r.stem in ready}
            site_job.result()
            built = {stem: job.result() for stem, job in jobs.items()}
        for stem, files in built.items():
            (staging / "manuscripts").mkdir(exist_ok=True)
            shutil.move(str(files[0].parent), str(staging / "manuscripts" / stem))
        return {stem: tuple(staging / "manuscripts" / stem / f.name for f in files) for stem, files in built.items()}
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def render_reports(reports_dir: str | Path = "reports", out_dir: str | Path | None = None, *, pdf: bool = True,
                   manuscripts: bool = True, benchmarks: str | Path | None = None,
                   built_manuscripts: Mapping[str, Future] | None = None) -> RenderResult:
    """Render the executed notebooks of ``reports_dir`` with Quarto: the site, a PDF per study and, with
    ``manuscripts``, a manuscript per study (see the module docstring for the layout).

    Args:
        reports_dir: the folder of executed notebooks (``medlib run`` writes them).
        out_dir: the site folder, replaced as a whole once everything rendered (default ``<reports>/_site``).
        pdf: also write each study page's Typst PDF.
        manuscripts: also build each study's manuscript (HTML, PDF, DOCX) from its run record.
        benchmarks: a folder of executed benchmark notebooks to publish too (e.g. ``benchmarks/results``).
        built_manuscripts: manuscripts being built elsewhere (``medlib demo`` builds each as its study
            finishes), by report stem: futures of ``build_manuscript``'s files, all in one folder outside the
            site, which is moved into the site; the site renders while they finish. The other reports'
            manuscripts are built here.

    Returns:
        The pages, PDFs and manuscripts written, and the runs not published.

    Raises:
        QuartoNotFound: Quarto is not installed (the message says how to install it).
        FileNotFoundError: no reports folder or nothing in it to publish.
        ValueError: a published notebook breaks the labelled-cell rule.
        RuntimeError: Quarto failed (the end of its output is in the message).
    """
    start = time.perf_counter()
    reports = Path(reports_dir).resolve()
    out = Path(out_dir).resolve() if out_dir else reports / "_site"
    version = quarto_version()  # before any work: a missing Quarto is one clear message
    site = collect_site(reports, benchmarks=benchmarks)
    problems = {r.stem: manuscript_problem(r) for r in site.reports} if manuscripts else {}
    write_project(reports, site, manuscripts={stem: p is None for stem, p in problems.items()}, pdf=pdf)
    staging = Path(tempfile.mkdtemp(prefix=".site-", dir=reports))
    notes = [f"no manuscript for {stem}: {p}" for stem, p in problems.items() if p]
    try:
        built = _render_site_and_manuscripts(reports, staging, [r for r in site.reports
                                                                if problems.get(r.stem, "skip") is None],
                                             ready=built_manuscripts or {})
        _publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    skip = {"site_libs", "manuscripts"}
    pages = sorted((p for p in out.glob("**/*.html") if not skip & set(p.relative_to(out).parts)),
                   key=lambda p: (p.name != "index.html", str(p.relative_to(out))))
    return RenderResult(out_dir=out, pages=tuple(pages), pdfs=tuple(sorted(out.glob("*.pdf"))),
                        manuscripts={s: tuple(out / "manuscripts" / s / p.name for p in files)
                                     for s, files in built.items()},
                        failures=tuple(site.failures), quarto=version, seconds=time.perf_counter() - start,
                        notes=tuple(notes))
