"""medlib.render: executed notebook → Markdown (cells, notebook) → pages → self-contained HTML site and Typst PDFs
(pandoc engine), or Quarto (site)."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell

from medlib.render import site as render
from medlib.render.cells import parse_cell_options
from medlib.render.notebook import RenderWarning, notebook_to_markdown
from medlib.render.pages import find_reports
from medlib.render.site import render_reports
from medlib.render.tools import run_pandoc

pytest.importorskip("pypandoc")
pytest.importorskip("typst")

STDERR_TEXT = "UserWarning: something noisy 47%|####"
TABLE_MD = ("| model | AUC | 95% CI |\n|:---|---:|:---|\n| resnet18 | 0.871 | 0.802–0.931 |\n"
            "| densenet121 | 0.843 | 0.770–0.910 |")


def _png() -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3), dpi=60)
    ax.plot([0, 0.2, 1], [0, 0.8, 1], label="resnet18")
    ax.plot([0, 1], [0, 1], ls="--", color="grey")
    ax.set(xlabel="1 - specificity", ylabel="sensitivity")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _code(source: str, *outputs, tags=()) -> nbformat.NotebookNode:
    cell = new_code_cell(source, execution_count=1, outputs=list(outputs))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def make_notebook(*, error: bool = False) -> nbformat.NotebookNode:
    """A small executed study notebook with every kind of cell the reports use."""
    png = _png()
    cells = [
        new_markdown_cell("# Demo: a tiny study\n\nA synthetic cohort with $n = 40$ patients."),
        _code('config_path: str = "params/demo.yaml"  # study config', tags=["parameters"]),
        _code('config_path = "params/smoke/demo.yaml"', tags=["injected-parameters"]),
        new_markdown_cell("## Performance\n\nThe ROC curves are in @fig-roc; the AUCs in [@tbl-performance] "
                          "(table [-@tbl-performance]). Code stays: `@fig-roc`."),
        _code('#| label: tbl-performance\n#| tbl-cap: "AUC with DeLong 95% CI."\nshow_table(perf)',
              new_output("display_data", data={"text/markdown": "Threshold chosen on validation data.",
                                               "text/plain": "<IPython.core.display.Markdown object>"}),
              new_output("display_data", data={"text/markdown": TABLE_MD, "text/plain": "<Markdown>"})),
        _code('#| label: fig-roc\n#| fig-cap: "ROC curves on the test set."\nshow_figure(fig)',
              new_output("stream", name="stderr", text=STDERR_TEXT),
              new_output("stream", name="stdout", text="epoch 3 loss 0.41\n"),
              new_output("display_data", data={"image/png": png, "text/plain": "<Figure size 240x180>"})),
        _code("#| include: false\nresults = train()", new_output("stream", name="stdout", text="hidden-stdout")),
        new_markdown_cell("## Conclusion\n\nSee @fig-roc again."),
    ]
    if error:
        cells.append(_code("1 / 0", new_output("error", ename="ZeroDivisionError", evalue="division by zero",
                                               traceback=[])))
    nb = new_notebook(cells=cells)
    nb.metadata["papermill"] = {"parameters": {"config_path": "params/smoke/demo.yaml"},
                                "end_time": "2025-01-02T03:04:05.678901"}
    return nb


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[Path, render.RenderResult]:
    reports = tmp_path_factory.mktemp("reports")
    nbformat.write(make_notebook(), reports / "demo.ipynb")
    (reports / "methods.qmd").write_text("---\ntitle: Methods\n---\n\nAUC: $\\hat\\theta = P(X > Y)$.\n")
    result = render_reports(reports, reports / "_site", engine="pandoc")
    return reports, result


# ------------------------------------------------------------------------------------- Markdown


def test_parse_cell_options():
    options, code = parse_cell_options('#| label: fig-roc\n#| fig-cap: "ROC: test"\n#| echo: true\nplot()')
    assert options == {"label": "fig-roc", "fig-cap": "ROC: test", "echo": True}
    assert code == "plot()"
    assert parse_cell_options("x = 1") == ({}, "x = 1")


def test_parse_cell_options_rejects_bad_yaml():
    with pytest.raises(ValueError, match="cell options"):
        parse_cell_options("#| label: [unclosed\nx = 1")


def test_notebook_to_markdown():
    nb = make_notebook()
    before = nbformat.writes(nb)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RenderWarning)
        markdown, assets = notebook_to_markdown(nb, name="demo.ipynb", assets_dir="demo_files")
    assert nbformat.writes(nb) == before  # input not mutated
    assert markdown.startswith("---\n") and "title: 'Demo: a tiny study'" in markdown
    assert "# Demo" not in markdown  # the opening heading became the title
    assert "![**Figure 1.** ROC curves on the test set.](demo_files/fig-roc.png){#fig-roc}" in markdown
    assert ": **Table 1.** AUC with DeLong 95% CI. {#tbl-performance}" in markdown
    assert "Threshold chosen on validation data." in markdown
    assert "[Figure 1](#fig-roc)" in markdown and "[Table 1](#tbl-performance)" in markdown
    assert "(table [1](#tbl-performance))" in markdown
    assert "`@fig-roc`" in markdown  # code spans are not touched
    for hidden in (STDERR_TEXT, "epoch 3", "hidden-stdout", "config_path: str", "\"params/smoke", "show_table"):
        assert hidden not in markdown
    assert list(assets) == ["demo_files/fig-roc.png"] and assets["demo_files/fig-roc.png"][:4] == b"\x89PNG"


@pytest.mark.parametrize("options, shown, hidden", [
    ("#| output: true", ["```", "epoch 3 loss"], ["noise"]),
    ("#| output: asis", ["**bold from stdout**"], ["```", "noise"]),
    ("#| echo: true", ["```python", "print(x)"], ["epoch 3 loss"]),
    ("#| output: false", [], ["epoch 3", "<b>"]),
])
def test_cell_options(options, shown, hidden):
    text = "**bold from stdout**" if "asis" in options else "epoch 3 loss"
    cell = _code(f"{options}\nprint(x)", new_output("stream", name="stdout", text=text),
                 new_output("stream", name="stderr", text="noise"))
    markdown, _ = notebook_to_markdown(new_notebook(cells=[cell]))
    for s in shown:
        assert s in markdown
    for s in hidden:
        assert s not in markdown


def test_labelled_cells_without_output_take_no_number():
    """A section a run does not hold (its labelled cell shows nothing) leaves no gap in the numbering."""
    png = _png()
    nb = new_notebook(cells=[
        _code('#| label: fig-habitats\n#| fig-cap: "Habitats."\nif False: show_figure(fig)'),
        _code('#| label: tbl-delong\n#| tbl-cap: "DeLong."\nif False: show_table(t)'),
        _code('#| label: fig-roc\n#| fig-cap: "ROC."\nshow_figure(fig)',
              new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"})),
        _code('#| label: tbl-performance\n#| tbl-cap: "AUC."\nshow_table(perf)',
              new_output("display_data", data={"text/markdown": TABLE_MD, "text/plain": "<Markdown>"})),
        new_markdown_cell("See @fig-roc and @tbl-performance."),
    ])
    markdown, _ = notebook_to_markdown(nb)
    assert "**Figure 1.** ROC." in markdown and ": **Table 1.** AUC. {#tbl-performance}" in markdown
    assert "Figure 2" not in markdown and "Table 2" not in markdown


def test_front_matter_title_and_html_table():
    html = ('<div><style scoped>.x {color: red}</style><table class="dataframe"><thead><tr><th>site</th>'
            '<th>n</th></tr></thead><tbody><tr><td>A</td><td>12</td></tr></tbody></table></div>')
    nb = new_notebook(cells=[
        new_raw_cell("---\ntitle: From front matter\nsubtitle: Sub\n---"),
        new_markdown_cell("# A section heading"),
        _code('#| label: tbl-sites\n#| tbl-cap: "Sites."\ndf',
              new_output("execute_result", data={"text/html": html, "text/plain": "  site   n"}, execution_count=1)),
    ])
    markdown, _ = notebook_to_markdown(nb)
    assert "title: From front matter" in markdown and "subtitle: Sub" in markdown
    assert "# A section heading" in markdown
    assert re.search(r"\|\s*site\s*\|\s*n\s*\|", markdown) and "color: red" not in markdown
    assert ": **Table 1.** Sites. {#tbl-sites}" in markdown


def test_unresolved_reference_warns():
    nb = new_notebook(cells=[new_markdown_cell("See @fig-missing.")])
    with pytest.warns(RenderWarning, match="@fig-missing"):
        markdown, _ = notebook_to_markdown(nb, name="x.ipynb")
    assert "**?@fig-missing**" in markdown


def test_failed_cell_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"bad\.ipynb: cell 8 raised an error .*ZeroDivisionError"):
        notebook_to_markdown(make_notebook(error=True), name="bad.ipynb")
    nbformat.write(make_notebook(error=True), tmp_path / "bad.ipynb")
    with pytest.raises(ValueError, match="bad.ipynb"):
        render_reports(tmp_path, tmp_path / "_site", engine="pandoc")
    assert not (tmp_path / "_site").exists() and not list(tmp_path.glob(".*tmp*"))


def test_missing_reports(tmp_path):
    with pytest.raises(FileNotFoundError, match="reports folder not found"):
        render_reports(tmp_path / "nope", tmp_path / "site")
    (tmp_path / "x.failed.ipynb").write_text("{}")
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path))):
        render_reports(tmp_path, tmp_path / "site")


def test_engine_choice(tmp_path, monkeypatch):
    nbformat.write(make_notebook(), tmp_path / "demo.ipynb")
    monkeypatch.setattr(render.shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match="quarto is not on PATH"):
        render_reports(tmp_path, tmp_path / "_site", engine="quarto")
    with pytest.raises(ValueError, match="engine must be one of"):
        render_reports(tmp_path, tmp_path / "_site", engine="latex")
    assert render._choose_engine("auto", tmp_path) == "pandoc"
    monkeypatch.setattr(render.shutil, "which", lambda name: "/usr/bin/quarto")
    assert render._choose_engine("auto", tmp_path) == "pandoc"  # no _quarto.yml in this folder
    (tmp_path / "_quarto.yml").write_text("project:\n  type: website\n")
    assert render._choose_engine("auto", tmp_path) == "quarto"
    (tmp_path / "reports").mkdir()
    assert render.quarto_project(tmp_path / "reports") == tmp_path  # the project file is found above
    assert render._choose_engine("auto", tmp_path / "reports") == "quarto"


FAKE_QUARTO = """#!/bin/sh
echo "$@" > "$FAKE_QUARTO_LOG"
if [ -n "$FAKE_QUARTO_FAIL" ]; then echo "ERROR: compilation failed" >&2; exit 1; fi
while [ $# -gt 0 ]; do [ "$1" = "--output-dir" ] && out="$2"; shift; done
mkdir -p "$out/reports" "$out/site_libs"; echo '<html></html>' > "$out/site_libs/lib.html"
echo '<html></html>' > "$out/reports/index.html"; echo '%PDF-1.7' > "$out/reports/demo.pdf"
"""


def test_quarto_engine(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "quarto").write_text(FAKE_QUARTO)
    (bin_dir / "quarto").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_QUARTO_LOG", str(tmp_path / "args.txt"))
    project = tmp_path / "project"
    reports = project / "reports"
    reports.mkdir(parents=True)
    nbformat.write(make_notebook(), reports / "demo.ipynb")
    shutil.copy(Path(__file__).resolve().parents[1] / "_quarto.yml", project)  # the root's project file
    result = render_reports(reports, reports / "_site")
    assert result.engine == "quarto"
    assert [p.name for p in result.pages] == ["index.html"] and [p.name for p in result.pdfs] == ["demo.pdf"]
    assert (reports / "_site" / "reports" / "index.html").is_file()  # Quarto mirrors the project's folders
    assert (tmp_path / "args.txt").read_text().startswith("render reports --output-dir reports/.")
    monkeypatch.setenv("FAKE_QUARTO_FAIL", "1")
    with pytest.raises(RuntimeError, match=r"quarto render .* failed \(exit 1\):\nERROR: compilation failed"):
        render_reports(reports, reports / "_site", engine="quarto", pdf=False)
    assert "--to html" in (tmp_path / "args.txt").read_text()
    assert (reports / "_site" / "reports" / "index.html").exists()  # the previous site is kept


def test_project_quarto_config_is_valid():
    root = Path(__file__).resolve().parents[1]
    import yaml

    config = yaml.safe_load((root / "_quarto.yml").read_text())  # at the project root
    assert config["project"]["type"] == "website"
    assert config["execute"]["enabled"] is False
    assert {"html", "typst"} <= set(config["format"])
    assert config["format"]["html"]["html-math-method"] == "mathml"  # no MathJax CDN
    assert config["project"]["execute-dir"] == "project"
    render_list = config["project"]["render"]
    assert {"reports/index.qmd", "reports/methods.qmd", "reports/*.ipynb", "!reports/*.failed.ipynb"} <= set(
        render_list)
    assert not any(item.lstrip("!").startswith("notebooks") or item == "*.ipynb" for item in render_list)
    for page in ("index.qmd", "methods.qmd"):
        assert (root / "reports" / page).is_file()
    for item in config["website"]["navbar"]["left"]:  # navigation targets are project-relative sources
        assert (root / item["href"]).is_file() or item["href"].endswith(".ipynb"), item
        assert item["href"].startswith("reports/"), item


# ------------------------------------------------------------------------------------------ site


def test_site_pages(site):
    _, result = site
    assert result.engine == "pandoc"
    assert [p.name for p in result.pages] == ["index.html", "demo.html", "methods.html"]
    assert [p.name for p in result.pdfs] == ["demo.pdf"]
    assert "demo.pdf" in result.summary()
    index = (result.out_dir / "index.html").read_text()
    assert 'href="demo.html"' in index and "Demo: a tiny study" in index and "synthetic cohort" in index
    methods = (result.out_dir / "methods.html").read_text()
    assert "<math" in methods and "$" not in re.sub(r"<[^>]+>", "", methods.split("<main>")[1])


def test_study_html(site):
    _, result = site
    html = (result.out_dir / "demo.html").read_text()
    assert "<table" in html and "densenet121" in html and "0.802–0.931" in html
    assert "data:image/png;base64," in html
    assert "Figure 1." in html and "Table 1." in html
    assert 'href="#fig-roc">Figure 1</a>' in html and 'href="#tbl-performance">Table 1</a>' in html
    assert 'id="fig-roc"' in html and 'id="tbl-performance"' in html
    assert "?@" not in html
    for hidden in (STDERR_TEXT, "epoch 3", "hidden-stdout", "show_table", "params/demo.yaml"):
        assert hidden not in html
    assert "<math" in html  # MathML, no MathJax
    external = re.findall(r"<(?:script|link|img|iframe)[^>]*(?:src|href)=\"(https?://[^\"]*)", html)
    assert external == [] and "<script" not in html
    for page in ("index", "demo", "methods"):
        assert f'href="{page}.html"' in html  # nav bar


def test_study_pdf(site):
    _, result = site
    pdf = result.out_dir / "demo.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) not installed: PDF text not checked")
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    for expected in ("Demo: a tiny study", "Figure 1.", "Table 1.", "densenet121", "0.843", "0.802–0.931",
                     "ROC curves on the test set", "AUC with DeLong 95% CI"):
        assert expected in text
    assert "Figure 1" in text.split("Conclusion")[1]  # the cross-reference resolved in the PDF too
    assert STDERR_TEXT not in text and "epoch 3" not in text


def test_typst_source_has_real_table(tmp_path):
    markdown, assets = notebook_to_markdown(make_notebook(), assets_dir="demo_files")
    typ = run_pandoc(["-f", "markdown", "-t", "typst", "--columns=100000"], stdin=markdown)
    assert "#table(" in typ and "[densenet121]" in typ and "<tbl-performance>" in typ and "<fig-roc>" in typ


def test_rerender_replaces_site_atomically(tmp_path):
    nbformat.write(make_notebook(), tmp_path / "demo.ipynb")
    out = tmp_path / "_site"
    render_reports(tmp_path, out, engine="pandoc", pdf=False)
    marker = out / "stale.html"
    marker.write_text("old")
    nbformat.write(make_notebook(error=True), tmp_path / "broken.ipynb")
    with pytest.raises(ValueError, match="broken.ipynb"):
        render_reports(tmp_path, out, engine="pandoc", pdf=False)
    assert marker.exists() and (out / "demo.html").exists()  # a failed render leaves the old site whole
    (tmp_path / "broken.ipynb").unlink()
    again = render_reports(tmp_path, out, engine="pandoc", pdf=False)
    assert not marker.exists() and again.pdfs == () and (out / "demo.html").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folders left


def test_relative_folders_get_every_page(tmp_path, monkeypatch):
    """The CLI default is the relative ``reports/_site``; pandoc runs in another folder, so paths must resolve."""
    reports = tmp_path / "reports"
    reports.mkdir()
    nbformat.write(make_notebook(), reports / "demo.ipynb")
    monkeypatch.chdir(tmp_path)
    result = render_reports("reports", "reports/_site", engine="pandoc")
    written = sorted(p.name for p in (tmp_path / "reports" / "_site").iterdir())
    assert "index.html" in written and "demo.html" in written and "demo.pdf" in written
    assert len(result.pages) >= 2


def _titled(title: str) -> nbformat.NotebookNode:
    return new_notebook(cells=[new_markdown_cell(f"# {title}\n\nSummary of {title}.")])


def test_pages_follow_titles_not_study_names(tmp_path):
    """Navigation and index list the studies alphabetically by title; file names only break ties."""
    for stem, title in (("zeta", "Alpha: first by title"), ("alpha", "Omega: last by title"), ("mid", "Mu study")):
        nbformat.write(_titled(title), tmp_path / f"{stem}.ipynb")
    (tmp_path / "x.failed.ipynb").write_text("{}")
    (tmp_path / "_draft.ipynb").write_text("{}")
    assert [p.name for p in find_reports(tmp_path)] == ["alpha.ipynb", "mid.ipynb", "zeta.ipynb"]
    result = render_reports(tmp_path, tmp_path / "_site", engine="pandoc", pdf=False)
    assert [p.name for p in result.pages] == ["index.html", "alpha.html", "mid.html", "zeta.html"]
    index = (result.out_dir / "index.html").read_text()
    assert index.index("zeta.html") < index.index("mid.html") < index.index("alpha.html")
    nav = re.findall(r'href="(\w+)\.html"', (result.out_dir / "mid.html").read_text().split("<main>")[0])
    assert list(dict.fromkeys(nav)) == ["index", "zeta", "mid", "alpha"]
    assert ">Alpha<" in (result.out_dir / "mid.html").read_text()  # the short name before the ":" in the nav


def test_old_import_paths_and_package_face():
    """``medlib.render.site.render_reports`` (the CLI, the notebook tests) and the package's public names."""
    import medlib.render
    from medlib.render import cells, notebook, pages, quarto

    assert render.render_reports is medlib.render.render_reports is render_reports
    assert render.notebook_to_markdown is notebook.notebook_to_markdown is medlib.render.notebook_to_markdown
    assert render.parse_cell_options is cells.parse_cell_options and render.find_reports is pages.find_reports
    assert render.quarto_project is quarto.quarto_project and render.RenderWarning is medlib.render.RenderWarning
    assert not hasattr(render, "STUDY_ORDER")


def test_quarto_needs_a_project(tmp_path):
    from medlib.render.quarto import render_quarto

    with pytest.raises(FileNotFoundError, match="no Quarto project file"):
        render_quarto(tmp_path, tmp_path / "_site", pdf=False)

