"""Render executed study notebooks (``reports/*.ipynb``) into a static HTML site and one PDF per study.

Two engines produce the same pages under ``reports/_site/``: ``index.html`` (the suite), ``<study>.html`` and
``<study>.pdf`` per executed notebook, and ``methods.html`` (flat with pandoc; in ``reports/`` below it with
Quarto, which mirrors the project's folders).

* **Quarto** (:mod:`medlib.render.quarto`), when ``quarto`` is on PATH and the reports folder lies in a Quarto
  project (``_quarto.yml`` in it or a folder above; the project root's file here): ``quarto render reports``
  run in the project root (website + Typst PDFs, notebooks never re-executed).
* **pandoc + Typst** (:mod:`medlib.render.pandoc`) otherwise (the default on our machines and CI, where Quarto
  cannot be installed): each notebook becomes a pandoc Markdown document (:mod:`medlib.render.notebook`, which
  documents the notebook conventions); pandoc (from the ``pypandoc_binary`` wheel) writes self-contained HTML
  and Typst source, and the ``typst`` wheel compiles the PDF. Both run offline.

The pages (:mod:`medlib.render.pages`): the index (``index.qmd``, or a default introduction), one page per
executed notebook in alphabetical order of their titles, and ``methods.qmd`` when present. Outputs are built
in a temporary folder beside ``out_dir`` and moved into place at the end, so a failed render leaves the
previous site untouched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from medlib.render.cells import check_executed, notebook_summary, notebook_title, parse_cell_options
from medlib.render.notebook import RenderWarning, notebook_to_markdown, resolve_references
from medlib.render.pages import find_reports
from medlib.render.pandoc import build_site
from medlib.render.quarto import quarto_project, render_quarto

__all__ = ["ENGINES", "RenderResult", "RenderWarning", "check_executed", "find_reports", "notebook_summary",
           "notebook_title", "notebook_to_markdown", "parse_cell_options", "quarto_project", "render_reports",
           "resolve_references"]

ENGINES = ("auto", "quarto", "pandoc")


@dataclass(frozen=True)
class RenderResult:
    """What :func:`render_reports` wrote.

    Attributes:
        engine: ``"quarto"`` or ``"pandoc"``.
        out_dir: the site folder.
        pages: the HTML pages: the index, the studies by file name, then the others.
        pdfs: one PDF per study (empty with ``pdf=False``).
        seconds: wall time of the render.
        notes: warnings raised while rendering (unresolved references, skipped notebooks).
    """

    engine: str
    out_dir: Path
    pages: tuple[Path, ...]
    pdfs: tuple[Path, ...]
    seconds: float
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        """Several lines for the command line."""
        lines = [f"rendered {len(self.pages)} pages and {len(self.pdfs)} PDFs with {self.engine} into "
                 f"{self.out_dir} ({self.seconds:.1f} s)"]
        lines += [f"  {p}" for p in (*self.pages, *self.pdfs)]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _choose_engine(engine: str, reports: Path) -> str:
    """``"quarto"`` or ``"pandoc"`` for the ``engine`` asked for (``"auto"``: Quarto when it can run)."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}; got {engine!r}")
    quarto = shutil.which("quarto")
    if engine == "quarto" and quarto is None:
        raise FileNotFoundError("engine='quarto' but quarto is not on PATH; use engine='pandoc' "
                                "(pandoc + Typst from the Python wheels) or install Quarto")
    if engine == "quarto" and quarto_project(reports) is None:
        raise FileNotFoundError(f"engine='quarto' needs a Quarto project file (_quarto.yml) in {reports} or a "
                                f"folder above it (the project root has one)")
    if engine == "auto":
        return "quarto" if quarto and quarto_project(reports) is not None else "pandoc"
    return engine



def _publish(staging: Path, out: Path) -> None:
    """Replace ``out`` by ``staging`` with renames only (the old site stays whole until the swap)."""
    os.chmod(staging, 0o755)
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        os.replace(out, old)
    os.replace(staging, out)
    if old.exists():
        shutil.rmtree(old)


def render_reports(reports_dir: str | Path = "reports", out_dir: str | Path = "reports/_site", *,
                   engine: str = "auto", pdf: bool = True) -> RenderResult:
    """Render the executed notebooks of ``reports_dir`` into an HTML site and one PDF per study.

    Args:
        reports_dir: folder of executed notebooks (``medlib run`` writes them), ``index.qmd`` and
            ``methods.qmd``; for Quarto, inside the project whose ``_quarto.yml`` is at the root.
        out_dir: the site folder; replaced as a whole, only once everything rendered.
        engine: ``"quarto"`` (needs ``quarto`` on PATH and a ``_quarto.yml`` in ``reports_dir`` or above),
            ``"pandoc"`` (pandoc + Typst from the Python wheels), or ``"auto"``: Quarto when it is on PATH and
            the project file exists, pandoc otherwise.
        pdf: also write ``<study>.pdf``.

    Returns:
        The engine used and the pages and PDFs written.

    Raises:
        FileNotFoundError: no reports folder, no executed notebook, or Quarto asked for but missing.
        ValueError: a notebook holds a failed cell (the message names it), or a bad ``engine``.
        RuntimeError: pandoc, Typst or Quarto failed (their message is included).
    """
    start = time.perf_counter()
    reports, out = Path(reports_dir).resolve(), Path(out_dir).resolve()  # pandoc runs in other folders
    find_reports(reports)
    chosen = _choose_engine(engine, reports)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RenderWarning)
            notes = (render_quarto if chosen == "quarto" else build_site)(reports, staging, pdf)
        _publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    notes = [*(str(w.message) for w in caught if issubclass(w.category, RenderWarning)), *notes]
    order = {stem: i for i, stem in enumerate(["index", *(p.stem for p in find_reports(reports)), "methods"])}
    rank = lambda p: (order.get(p.stem, len(order)), p.stem)  # noqa: E731
    pages = [p for p in out.rglob("*.html") if "site_libs" not in p.relative_to(out).parts]
    return RenderResult(engine=chosen, out_dir=out, pages=tuple(sorted(pages, key=rank)),
                        pdfs=tuple(sorted(out.rglob("*.pdf"), key=rank)) if pdf else (),
                        seconds=time.perf_counter() - start, notes=tuple(notes))
