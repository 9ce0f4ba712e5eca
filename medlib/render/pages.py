"""The pages of the site: one per executed notebook, the index (the suite's overview) and the methods page.

``index.qmd`` and ``methods.qmd`` in the reports folder are plain Markdown with YAML front matter (Quarto renders
them directly). Without ``index.qmd`` a default introduction is used; without ``methods.qmd`` there is no
methods page. Study pages follow in alphabetical order of their titles, in the navigation bar and on the index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import yaml

from medlib.render.cells import FRONT_MATTER, notebook_summary, notebook_title
from medlib.render.notebook import notebook_to_markdown, yaml_block

__all__ = ["Page", "find_reports", "site_pages"]

_DEFAULT_INDEX = ("Study reports", "Each page is one executed study notebook: its cohort, models, performance with "
                  "confidence intervals, calibration, decision curves and explainability. A PDF of each "
                  "study is linked from its page.")
_STUDIES_DIV = re.compile(r"^:::+\s*\{#studies[^}]*\}\s*\n:::+\s*$", re.M)


@dataclass(frozen=True)
class Page:
    """One page of the site: file stem, navigation text, title and pandoc Markdown (+ images).

    Attributes:
        stem: the file name without suffix (``<stem>.html``, ``<stem>.pdf``).
        nav: its text in the navigation bar.
        title: its title.
        markdown: the pandoc Markdown document, YAML front matter first.
        assets: the images it refers to, ``{relative path: bytes}``.
        summary: a study's first paragraph (the index lists it).
        study: whether it is a study report (these also get a PDF and a table of contents).
    """

    stem: str
    nav: str
    title: str
    markdown: str
    assets: Mapping[str, bytes] = field(default_factory=dict)
    summary: str = ""
    study: bool = False


def find_reports(reports_dir: str | Path) -> list[Path]:
    """The executed notebooks in ``reports_dir``, sorted by file name; ``*.failed.ipynb`` and notebooks whose
    name starts with ``.`` or ``_`` are skipped.

    Raises:
        FileNotFoundError: the folder is missing or holds no executed notebooks.
    """
    folder = Path(reports_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"reports folder not found: {folder} (run a study first: medlib run STUDY)")
    found = [p for p in folder.glob("*.ipynb")
             if not p.name.startswith((".", "_")) and not p.name.endswith(".failed.ipynb")]
    if not found:
        raise FileNotFoundError(f"no executed notebooks (*.ipynb) in the reports folder {folder} "
                                "(run a study first: medlib run STUDY)")
    return sorted(found, key=lambda p: p.name)


def _short_name(title: str, stem: str) -> str:
    """The text before the ``:`` of a short title names the study in the navigation bar, else the file stem."""
    head = title.split(":", 1)[0].strip()
    return head if ":" in title and 0 < len(head) <= 24 else stem


def study_page(path: Path) -> Page:
    """The page of one executed notebook.

    Raises:
        ValueError: a cell failed during execution, or cell options / front matter are not valid YAML.
    """
    import nbformat

    nb = nbformat.read(path, as_version=4)
    markdown, assets = notebook_to_markdown(nb, name=path.name, assets_dir=f"{path.stem}_files")
    title, _ = notebook_title(nb, default=path.stem)
    return Page(stem=path.stem, nav=_short_name(title, path.stem), title=title, markdown=markdown,
                assets=assets, summary=notebook_summary(nb), study=True)


def qmd_page(path: Path, stem: str, nav: str, default_title: str, default_body: str = "") -> Page:
    """A plain-Markdown ``.qmd`` page (YAML front matter + Markdown); Quarto-only keys are ignored."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    match = FRONT_MATTER.match(text)
    meta = (yaml.safe_load(match.group(1)) or {}) if match else {}
    body = text[match.end():] if match else (text or default_body)
    title = str(meta.get("title") or default_title)
    header = {k: meta[k] for k in ("subtitle", "date") if k in meta}
    return Page(stem=stem, nav=nav, title=title, markdown=yaml_block({**header, "title": title}) + "\n" + body)


def index_page(reports: Path, studies: list[Page]) -> Page:
    """The suite's page: ``index.qmd``'s text, with the list of studies in its ``::: {#studies}`` div
    (where Quarto puts its listing) or appended under a "Studies" heading."""
    page = qmd_page(reports / "index.qmd", "index", "Overview", *_DEFAULT_INDEX)
    items = []
    for s in studies:
        summary = f"\n\n    {s.summary}" if s.summary else ""
        items.append(f"-   **[{s.title}]({s.stem}.html)**{summary}\n\n    [Report]({s.stem}.html) · "
                     f"[PDF]({s.stem}.pdf)")
    listing = "::: study-list\n" + "\n\n".join(items) + "\n:::"
    if _STUDIES_DIV.search(page.markdown):
        markdown = _STUDIES_DIV.sub(lambda _: listing, page.markdown)
    else:
        markdown = f"{page.markdown.rstrip()}\n\n## Studies\n\n{listing}\n"
    return Page(stem="index", nav="Overview", title=page.title, markdown=markdown)


def site_pages(reports: Path) -> list[Page]:
    """Every page of the site in navigation order: the index, the studies by title, then the methods page.

    Raises:
        FileNotFoundError: no reports folder or no executed notebook in it.
        ValueError: a notebook holds a failed cell (the message names it).
    """
    studies = sorted((study_page(p) for p in find_reports(reports)), key=lambda p: (p.title.casefold(), p.stem))
    pages = [index_page(reports, studies), *studies]
    if (reports / "methods.qmd").is_file():
        pages.append(qmd_page(reports / "methods.qmd", "methods", "Methods", "Methods"))
    return pages
