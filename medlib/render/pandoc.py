"""The pandoc + Typst engine: each page becomes self-contained HTML (images inlined, MathML, no CDN), and each
study page also Typst source compiled to PDF. Used wherever Quarto is not installed (our machines and CI).

Templates: ``medlib/render/templates/`` (``page.html``, ``site.css``, ``report.typst``).
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from pathlib import Path
from typing import Any, Mapping

import yaml

from medlib.render.pages import Page, site_pages
from medlib.render.tools import compile_typst, medlib_version, run_pandoc, templates_dir

__all__ = ["build_site"]


def _site_links(markdown: str) -> str:
    """Links to site sources (``methods.qmd``, ``<study>.ipynb``) point at their pages, as Quarto does."""
    return re.sub(r"\]\((?![a-z]+:)([^)\s]+?)\.(?:qmd|ipynb)(#[^)\s]*)?\)", r"](\1.html\2)", markdown)


def _nav(pages: list[Page], current: str) -> list[dict[str, Any]]:
    return [{"href": f"{p.stem}.html", "text": p.nav, **({"current": True} if p.stem == current else {})}
            for p in pages]


def _write_page(page: Page, pages: list[Page], build: Path, site: Path, common: Mapping[str, Any],
                pdf: bool) -> list[str]:
    """Write one page's HTML (and PDF for a study) into ``site``; returns typst warnings."""
    source = build / f"{page.stem}.md"
    source.write_text(_site_links(page.markdown), encoding="utf-8")
    for name, data in page.assets.items():
        (build / name).parent.mkdir(parents=True, exist_ok=True)
        (build / name).write_bytes(data)
    meta = {**common, "nav": _nav(pages, page.stem), "header-title": page.nav}
    if page.study and pdf:
        meta["pdf"] = f"{page.stem}.pdf"
    meta_file = build / f"{page.stem}.meta.yaml"
    meta_file.write_text(yaml.safe_dump(meta, allow_unicode=True), encoding="utf-8")
    templates = templates_dir()
    base = ["-f", "markdown", "--standalone", "--columns=100000", f"--metadata-file={meta_file.name}"]
    html = ["-t", "html5", "--embed-resources", "--mathml", f"--template={templates / 'page.html'}",
            f"--css={templates / 'site.css'}", f"--resource-path={build}", "-o", str(site / f"{page.stem}.html")]
    toc = ["--toc", "--toc-depth=2"] if page.study else []
    run_pandoc([*base, *html, *toc, source.name], cwd=build)
    if not (page.study and pdf):
        return []
    typ = build / f"{page.stem}.typ"
    run_pandoc([*base, "-t", "typst", f"--template={templates / 'report.typst'}", "-o", typ.name, source.name],
               cwd=build)
    return compile_typst(typ, site / f"{page.stem}.pdf")


def build_site(reports: Path, site: Path, pdf: bool) -> list[str]:
    """Render every page of the site into ``site`` (an empty folder) with pandoc and Typst.

    Args:
        reports: the reports folder (executed notebooks, ``index.qmd``, ``methods.qmd``).
        site: the output folder.
        pdf: also write ``<study>.pdf``.

    Returns:
        Notes (Typst warnings).

    Raises:
        ValueError: a notebook holds a failed cell.
        RuntimeError: pandoc or Typst failed (their message is included).
    """
    pages = site_pages(reports)
    common = {
        "site-title": "medlib study reports",
        "footer": f"Rendered {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC by medlib {medlib_version()} "
                  f"with pandoc{' and Typst' if pdf else ''} (Quarto not used).",
    }
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="medlib-render-") as tmp:
        for page in pages:
            notes += _write_page(page, pages, Path(tmp), site, common, pdf)
    return notes
