"""Real Quarto renders a smoke study's site and manuscript: every page and format exists, every internal link
resolves, the PDF and the DOCX carry the AUC of the run record, and a failed run is named, not published.

One render per session (module fixture): the smoke notebook (conftest), then ``render_reports`` with the
manuscripts. The expected numbers are read from the run folder's ``metrics.json``, never from the renderer.
"""

from __future__ import annotations

import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

pytestmark = pytest.mark.slow

STUDY = "nec"


@pytest.fixture(scope="module")
def rendered(quarto, smoke_reports):
    from medlib.render.site import render_reports

    return render_reports(smoke_reports, manuscripts=True)


@pytest.fixture(scope="module")
def test_auc(rendered, smoke_reports) -> str:
    """The AUC on the primary set (test, else external) of the model with the best validation AUC, as metrics.json
    holds it, to 3 decimals."""
    from medlib.render.notebooks import scan_reports
    from medlib.schema import PRIMARY_SET_ORDER

    report = next(r for r in scan_reports(smoke_reports)[0] if r.stem == STUDY)
    perf = json.loads((report.run_dir / "metrics.json").read_text())["performance"]
    val = {r["model"]: r["value"] for r in perf if r["set"] == "val" and r["metric"] == "auc"}
    best = max(val, key=val.get)
    primary = next(s for s in PRIMARY_SET_ORDER if any(r["set"] == s for r in perf))
    auc = next(r["value"] for r in perf if r["model"] == best and r["set"] == primary and r["metric"] == "auc")
    return f"{auc:.3f}"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.links.append(value)


def _internal_links(page: Path) -> list[str]:
    parser = _Links()
    parser.feed(page.read_text(errors="replace"))
    return [u for u in parser.links if not urlsplit(u).scheme and not u.startswith(("#", "//", "mailto:"))]


def test_every_page_and_format_exists(rendered):
    site = rendered.out_dir
    assert site == (rendered.out_dir.parent / "_site")  # one layout: <reports>/_site/, flat
    for name in ("index.html", f"{STUDY}.html", f"{STUDY}.pdf", "methods.html", f"manuscripts/{STUDY}/index.html",
                 f"manuscripts/{STUDY}/{STUDY}.pdf", f"manuscripts/{STUDY}/{STUDY}.docx"):
        assert (site / name).is_file(), name
    for pdf in (site / f"{STUDY}.pdf", site / f"manuscripts/{STUDY}/{STUDY}.pdf"):
        assert pdf.read_bytes()[:4] == b"%PDF"
    assert set(rendered.manuscripts) == {STUDY}
    assert rendered.quarto and re.match(r"\d+\.\d+", rendered.quarto)


def test_every_internal_link_resolves(rendered):
    site = rendered.out_dir
    pages = [p for p in site.rglob("*.html") if "site_libs" not in p.parts]
    broken = []
    for page in pages:
        for link in _internal_links(page):
            target = (page.parent / unquote(urlsplit(link).path)).resolve()
            if urlsplit(link).path and not target.exists():
                broken.append(f"{page.relative_to(site)} → {link}")
    assert len(pages) >= 4 and broken == []


def test_navbar_links_only_existing_pages(rendered):
    index = (rendered.out_dir / "index.html").read_text()
    nav = index[index.find("<nav"):index.find("</nav>")]
    hrefs = set(re.findall(r'href="([^"#]+\.html)"', nav))
    assert hrefs >= {"./index.html", f"./{STUDY}.html", "./methods.html"}
    assert all((rendered.out_dir / h).is_file() for h in hrefs)


def test_failed_run_is_named_with_its_log_and_not_published(rendered, smoke_reports):
    site = rendered.out_dir
    assert not list(site.rglob("broken*.html")) and not list(site.rglob("broken*.pdf"))
    index = (site / "index.html").read_text()
    assert "Runs that failed" in index and "broken.failed.ipynb" in index and "ZeroDivisionError" in index
    assert [f.stem for f in rendered.failures] == ["broken"]


def test_math_is_offline(rendered):
    methods = (rendered.out_dir / "methods.html").read_text()
    assert "<math" in methods and "mathjax" not in methods.lower()


def test_manuscript_pdf_carries_the_auc_of_the_run_record(rendered, pdftotext, test_auc):
    pdf = rendered.out_dir / "manuscripts" / STUDY / f"{STUDY}.pdf"
    text = subprocess.run([pdftotext, "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    flat = " ".join(text.split())
    assert test_auc in flat
    for heading in ("Abstract", "Introduction", "Methods", "Results", "Discussion", "Limitations", "References"):
        assert heading in flat, heading
    assert "DeLong" in flat and "Biometrics" in flat  # cited, and listed by the CSL style
    assert "?@" not in flat and "??" not in flat  # every cross-reference and citation resolved


def test_a_checklist_longer_than_a_page_continues_on_the_next_pages(rendered, pdftotext):
    """The CLAIM checklist (44 items) runs over several pages of the study's PDF, its rows in order; as one
    unbreakable Typst figure its rows from the page's foot on were printed over each other on its first page."""
    pdf = rendered.out_dir / f"{STUDY}.pdf"
    pages = subprocess.run([pdftotext, str(pdf), "-"], capture_output=True, text=True, check=True).stdout.split("\f")
    flat = [" ".join(page.split()) for page in pages]
    title = next(i for i, page in enumerate(flat) if "CLAIM 2024 checklist, filled" in page)
    last = next(i for i, page in enumerate(flat) if "role of funders" in page)  # item 44, the last
    assert last > title, (title, last)


def test_manuscript_docx_opens_and_carries_the_auc(rendered, test_auc):
    docx = pytest.importorskip("docx")
    doc = docx.Document(str(rendered.out_dir / "manuscripts" / STUDY / f"{STUDY}.docx"))
    text = "\n".join(p.text for p in doc.paragraphs)
    cells = "\n".join(c.text for t in doc.tables for row in t.rows for c in row.cells)
    assert test_auc in text
    assert "Results" in text and len(doc.tables) >= 1 and cells.strip()


def test_manuscript_of_a_failed_or_unknown_study_is_a_clear_error(quarto, smoke_reports, tmp_path):
    from medlib.render.manuscript import render_manuscript

    with pytest.raises(FileNotFoundError, match=r"broken.*run failed.*ZeroDivisionError.*broken\.failed\.ipynb"):
        render_manuscript("broken", smoke_reports, tmp_path / "b")
    with pytest.raises(FileNotFoundError, match=r"no nosuch\.ipynb; published reports: \['nec'\]"):
        render_manuscript("nosuch", smoke_reports, tmp_path / "n")


def test_a_manuscript_built_beforehand_is_moved_into_the_site(quarto, smoke_reports, tmp_path):
    """``medlib demo`` builds each study's manuscript while the other studies still run and hands the futures to
    ``render_reports``: their folder is moved into the site as it is, not built again."""
    from concurrent.futures import Future

    from medlib.render.manuscript import manuscript_files
    from medlib.render.site import render_reports

    folder = tmp_path / "built" / STUDY
    folder.mkdir(parents=True)
    files = tuple(folder / name for name in manuscript_files(STUDY).values())
    for f in files:
        f.write_text(f"built beforehand: {f.name}")
    done: Future = Future()
    done.set_result(files)
    result = render_reports(smoke_reports, tmp_path / "site", pdf=False, built_manuscripts={STUDY: done})
    moved = tmp_path / "site" / "manuscripts" / STUDY
    assert {f.name: f.read_text() for f in moved.iterdir()} == {f.name: f"built beforehand: {f.name}" for f in files}
    assert result.manuscripts[STUDY] == tuple(moved / f.name for f in files) and not folder.exists()
    assert f"manuscripts/{STUDY}/" in (tmp_path / "site" / "index.html").read_text()
