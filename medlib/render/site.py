"""Render executed study notebooks (``reports/*.ipynb``) into a static HTML site and one PDF per study.

Two engines produce the same pages under ``reports/_site/``: ``index.html`` (the suite), ``<study>.html`` and
``<study>.pdf`` per executed notebook, and ``methods.html`` (flat with pandoc; in ``reports/`` below it with
Quarto, which mirrors the project's folders).

* **Quarto**, when ``quarto`` is on PATH and the reports folder lies in a Quarto project (``_quarto.yml`` in
  it or a folder above; the project root's file here): ``quarto render reports`` run in the project root
  (website + Typst PDFs, notebooks never re-executed). Quarto mirrors the project's folders, so its pages are
  ``reports/_site/reports/*.html`` beside its ``site_libs/``.
* **pandoc + Typst** otherwise (the default on our machines and CI, where Quarto cannot be installed): each
  notebook becomes a pandoc Markdown document (:func:`notebook_to_markdown`); pandoc (from the
  ``pypandoc_binary`` wheel) writes self-contained HTML (images inlined, MathML, no CDN) and Typst source,
  and the ``typst`` wheel compiles the PDF. Both run offline. The templates are in ``medlib/templates/``.

Outputs are built in a temporary folder beside ``out_dir`` and moved into place at the end, so a failed
render leaves the previous site untouched.

Notebook conventions (the pandoc renderer implements exactly these; they are a subset of Quarto's):

* **Cell options** are ``#| key: value`` lines (YAML) at the top of a code cell:

  - ``label: fig-<name>`` + ``fig-cap: "..."``: the cell's image output (``image/png``, ``image/jpeg`` or
    ``image/svg+xml``) is a numbered figure, "Figure 1", caption below. Several images in one figure cell
    become "Figure 1a", "1b", ... under the same label.
  - ``label: tbl-<name>`` + ``tbl-cap: "..."``: the first table in the cell's outputs is a numbered table,
    "Table 1", caption above. Show tables as Markdown (``medlib.report.display.show_table``: mime
    ``text/markdown``, a pipe table); a pandas ``text/html`` table is converted with pandoc's HTML reader.
    Other Markdown the cell displays (e.g. a sentence before the table) is kept as ordinary text.
  - ``echo: true`` shows the cell's code (the default for reports is ``false``: code hidden).
  - ``include: false`` drops the cell and its outputs; ``output: false`` drops its outputs only.
  - ``output: true`` also shows plain-text outputs (stdout, text reprs) as preformatted text;
    ``output: asis`` inserts stdout as raw Markdown. Without it these are dropped (Quarto would show them,
    so report cells should not ``print``; use ``show_markdown``).
* **Always dropped**: stderr streams (warnings, logging, tqdm progress bars), widget outputs, HTML that is
  not a table, and the papermill ``parameters`` / ``injected-parameters`` cells (tags).
* **Markdown cells** carry the narrative: headings, lists, ``$math$``, and cross-references
  ``@fig-<name>`` / ``@tbl-<name>`` (also ``[@fig-x]``, and ``[-@fig-x]`` for the number alone), resolved to
  "Figure 1" / "Table 2" with a link. An unknown label renders as **?@label** and is reported as a warning.
  Cell attachments (``attachment:x.png``) are supported.
* **Title**: the ``title`` of YAML front matter (``---`` block) in the first raw or Markdown cell, else the
  notebook metadata ``title``, else the first-level heading (``# ...``) that opens the first Markdown cell
  (removed from the body), else the file name. The text before a ``:`` of a short title names the study in
  the navigation bar ("NEC: does ..." → "NEC"); the first paragraph after the title is the study's summary on
  the index page.
* A cell with an error output, or one papermill marked as failed, stops the render with a ``ValueError``
  naming the notebook and the cell. ``*.failed.ipynb`` and hidden (``.``-prefixed) notebooks are skipped.

Site pages: ``index.qmd`` and ``methods.qmd`` in the reports folder (plain Markdown with YAML front matter;
Quarto renders them directly). Without ``index.qmd`` a default introduction is used; without
``methods.qmd`` there is no methods page.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
import shutil
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml

ENGINES = ("auto", "quarto", "pandoc")
STUDY_ORDER = ("nec", "onfh", "ich", "glioma", "medmnist")  # navigation order; others follow by name
_SKIP_TAGS = {"parameters", "injected-parameters"}
_IMAGE_MIMES = {"image/png": "png", "image/jpeg": "jpg", "image/svg+xml": "svg"}
_OPTION_LINE = re.compile(r"^#\|\s?(.*)$")
_LABEL = r"(?:[Ff]ig|[Tt]bl)-[A-Za-z0-9_]+(?:[-_][A-Za-z0-9_]+)*"
_REF = re.compile(rf"\[(-?)@({_LABEL})\]|(?<![\w.@])@({_LABEL})")
_CODE_SPANS = re.compile(r"(```.*?```|~~~.*?~~~|`[^`\n]+`)", re.S)
_TABLE_LINE = re.compile(r"^\s*[|+]")
_PIPE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_HTML_TO_MD = "markdown-grid_tables-simple_tables-multiline_tables-raw_html-native_divs-fenced_divs"
_PANDOC_FROM = "markdown-implicit_figures+implicit_figures"
_DEFAULT_INDEX = ("Study reports", "Each page is one executed study notebook: its cohort, models, performance with "
                  "confidence intervals, calibration, decision curves and explainability. A PDF of each "
                  "study is linked from its page.")


class RenderWarning(UserWarning):
    """Something in a notebook the renderer could not honour (e.g. an unresolved cross-reference)."""


@dataclass(frozen=True)
class RenderResult:
    """What :func:`render_reports` wrote.

    Attributes:
        engine: ``"quarto"`` or ``"pandoc"``.
        out_dir: the site folder.
        pages: the HTML pages, index first.
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


@dataclass
class _Doc:
    """State of one notebook's conversion: blocks of Markdown, assets and cross-reference numbers."""

    assets_dir: str
    blocks: list[tuple[str, str]] = field(default_factory=list)  # (kind, text); kind "md" or "code"
    assets: dict[str, bytes] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: {"fig": 0, "tbl": 0})

    def number(self, label: str) -> str:
        kind = label.split("-", 1)[0].lower()
        self.counts[kind] += 1
        text = f"{'Figure' if kind == 'fig' else 'Table'} {self.counts[kind]}"
        self.refs.setdefault(label, text)
        return text

    def add_asset(self, stem: str, ext: str, data: bytes) -> str:
        name = f"{self.assets_dir}/{stem}.{ext}" if self.assets_dir else f"{stem}.{ext}"
        self.assets[name] = data
        return name


# --------------------------------------------------------------------------------------------- cells


def parse_cell_options(source: str) -> tuple[dict[str, Any], str]:
    """Split Quarto ``#| key: value`` option lines off the top of a code cell.

    Args:
        source: the cell source.

    Returns:
        The options (parsed as YAML) and the remaining code.

    Raises:
        ValueError: the option lines are not valid YAML mappings.

    >>> parse_cell_options('#| label: fig-roc\\n#| fig-cap: "ROC"\\nplot()')
    ({'label': 'fig-roc', 'fig-cap': 'ROC'}, 'plot()')
    """
    lines = source.splitlines()
    options: list[str] = []
    for line in lines:
        match = _OPTION_LINE.match(line)
        if not match:
            break
        options.append(match.group(1))
    if not options:
        return {}, source
    try:
        parsed = yaml.safe_load("\n".join(options)) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"cell options are not valid YAML: {options!r} ({err})") from None
    if not isinstance(parsed, dict):
        raise ValueError(f"cell options must be 'key: value' lines; got {options!r}")
    return parsed, "\n".join(lines[len(options):]).strip("\n")


def _source(cell: Mapping[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _cell_name(index: int, cell: Mapping[str, Any]) -> str:
    label = parse_cell_options(_source(cell))[0].get("label") if cell.get("cell_type") == "code" else None
    return f"cell {index}" + (f" ({label})" if label else "")


def check_executed(nb: Mapping[str, Any], name: str = "notebook") -> None:
    """Refuse a notebook in which a cell failed.

    Raises:
        ValueError: a cell has an error output or papermill marked it as failed; the message names the
            notebook, the cell and the error.
    """
    for index, cell in enumerate(nb.get("cells", [])):
        meta = cell.get("metadata", {}).get("papermill", {})
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if errors or meta.get("exception"):
            detail = f"{errors[0].get('ename', 'Error')}: {errors[0].get('evalue', '')}" if errors else (
                "papermill marked it as failed")
            raise ValueError(f"{name}: {_cell_name(index, cell)} raised an error during execution "
                             f"({detail}); fix the notebook and run it again before rendering")


def _front_matter(cells: list[Mapping[str, Any]]) -> tuple[dict[str, Any], int]:
    """YAML front matter of the first raw or Markdown cell, and the index of the first body cell."""
    if cells and cells[0].get("cell_type") in ("raw", "markdown"):
        match = re.match(r"^\s*---\s*\n(.*?)\n---\s*(\n|$)", _source(cells[0]), re.S)
        if match:
            try:
                meta = yaml.safe_load(match.group(1)) or {}
            except yaml.YAMLError as err:
                raise ValueError(f"front matter of the first cell is not valid YAML ({err})") from None
            if not isinstance(meta, dict):
                raise ValueError(f"front matter must be a YAML mapping; got {match.group(1)!r}")
            rest = _source(cells[0])[match.end():].strip()
            if rest:  # front matter followed by Markdown in the same cell
                return meta, 0
            return meta, 1
    return {}, 0


def _strip_front_matter(text: str) -> str:
    return re.sub(r"^\s*---\s*\n.*?\n---\s*(\n|$)", "", text, count=1, flags=re.S)


def notebook_title(nb: Mapping[str, Any], default: str = "Report") -> tuple[str, bool]:
    """The report title, and whether it came from an opening ``#`` heading (to drop from the body).

    Order: front matter ``title``, notebook metadata ``title``, the first-level heading opening the first
    Markdown cell, ``default``.
    """
    cells = list(nb.get("cells", []))
    meta, _ = _front_matter(cells)
    if meta.get("title"):
        return str(meta["title"]), False
    if nb.get("metadata", {}).get("title"):
        return str(nb["metadata"]["title"]), False
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            match = re.match(r"^\s*#\s+(.+?)\s*#*\s*$", _strip_front_matter(_source(cell)).lstrip().split(
                "\n", 1)[0])
            return (match.group(1), True) if match else (default, False)
    return default, False


def notebook_summary(nb: Mapping[str, Any]) -> str:
    """The first paragraph of narrative after the title (the index page shows it), or ``""``."""
    _, from_heading = notebook_title(nb)
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        text = _strip_front_matter(_source(cell)).strip()
        if from_heading:
            text = text.split("\n", 1)[1].strip() if "\n" in text else ""
            from_heading = False
        paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip() and not p.lstrip().startswith("#")]
        if paragraphs:
            return " ".join(paragraphs[0].split())
    return ""


# ------------------------------------------------------------------------------------------ outputs


def _find_table(text: str) -> tuple[int, int] | None:
    """Line span [start, end) of the first pipe or grid table in Markdown text."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        if _TABLE_LINE.match(lines[i]):
            j = i
            while j < len(lines) and _TABLE_LINE.match(lines[j]):
                j += 1
            block = lines[i:j]
            if any(_PIPE_SEPARATOR.match(x) for x in block) or block[0].lstrip().startswith("+-"):
                return i, j
            i = j
        i += 1
    return None


def _caption_table(text: str, caption: str) -> tuple[str, bool]:
    """Attach a pandoc table caption (``: caption {#tbl-x}``) after the first table in ``text``."""
    span = _find_table(text)
    if span is None:
        return text, False
    lines = text.split("\n")
    start, end = span
    parts = lines[:start] + [""] + lines[start:end] + ["", caption, ""] + lines[end:]
    return "\n".join(parts).strip("\n"), True


def _html_table_to_markdown(html: str) -> str:
    """Convert a ``text/html`` table (e.g. a pandas DataFrame) to Markdown with pandoc's HTML reader."""
    html = re.sub(r"<style.*?</style>", "", html, flags=re.S | re.I)
    return _pandoc(["-f", "html", "-t", _HTML_TO_MD, "--wrap=none"], stdin=html).strip()


def _output_markdown(output: Mapping[str, Any], options: Mapping[str, Any]) -> tuple[str, str] | None:
    """(kind, content) of one output: ("image", mime), ("md", text), ("pre", text), or None to drop it."""
    kind = output.get("output_type")
    show_text = options.get("output") in (True, "asis")
    if kind == "stream":
        if output.get("name") != "stdout" or not show_text:
            return None
        text = _text(output.get("text", ""))
        return ("md", text) if options.get("output") == "asis" else ("pre", text)
    if kind not in ("display_data", "execute_result"):
        return None
    data = output.get("data", {})
    for mime in _IMAGE_MIMES:
        if mime in data:
            return "image", mime
    if "text/markdown" in data:
        return "md", _text(data["text/markdown"])
    if "text/html" in data and re.search(r"<table", _text(data["text/html"]), re.I):
        return "md", _html_table_to_markdown(_text(data["text/html"]))
    if "text/latex" in data and re.match(r"^\s*\$", _text(data["text/latex"])):
        return "md", _text(data["text/latex"])
    if "text/plain" in data and show_text:
        return "pre", _text(data["text/plain"])
    return None


def _image_bytes(output: Mapping[str, Any], mime: str) -> bytes:
    payload = output["data"][mime]
    if mime == "image/svg+xml":
        return _text(payload).encode()
    return base64.b64decode(_text(payload))


def _fenced(text: str, cls: str) -> str:
    fence = "`" * max(3, max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence} {{.{cls}}}\n{text.rstrip()}\n{fence}"


def _figure_blocks(doc: _Doc, images: list[tuple[Mapping[str, Any], str]], options: Mapping[str, Any],
                   cell_index: int) -> list[str]:
    """Markdown for a cell's images: numbered figures when labelled ``fig-``, plain images otherwise."""
    label = str(options.get("label", ""))
    caption = str(options.get("fig-cap", "")).strip()
    numbered = label.lower().startswith("fig-")
    number = doc.number(label) if numbered else ""
    blocks = []
    for k, (output, mime) in enumerate(images):
        suffix = chr(ord("a") + k) if len(images) > 1 else ""
        stem = f"{label or f'cell{cell_index}'}{'-' + suffix if suffix else ''}"
        path = doc.add_asset(stem, _IMAGE_MIMES[mime], _image_bytes(output, mime))
        ident = label if k == 0 else f"{label}-{suffix}"
        text = f"**{number}{suffix}.** {caption}".strip() if numbered else caption
        attrs = f"{{#{ident}}}" if numbered else ""
        blocks.append(f"![{text}]({path}){attrs}")
    return blocks


def _code_cell(doc: _Doc, index: int, cell: Mapping[str, Any]) -> None:
    options, code = parse_cell_options(_source(cell))
    if options.get("include") is False or _SKIP_TAGS & set(cell.get("metadata", {}).get("tags", [])):
        return
    if options.get("echo") is True and code.strip():
        doc.blocks.append(("code", f"```python\n{code}\n```"))
    if options.get("output") is False:
        return
    label = str(options.get("label", ""))
    table_caption = None
    if label.lower().startswith("tbl-"):
        table_caption = f": **{doc.number(label)}.** {str(options.get('tbl-cap', '')).strip()} {{#{label}}}"
    images: list[tuple[Mapping[str, Any], str]] = []
    for output in cell.get("outputs", []):
        found = _output_markdown(output, options)
        if found is None:
            continue
        kind, content = found
        if kind == "image":
            images.append((output, content))
        elif kind == "pre":
            doc.blocks.append(("code", _fenced(content, "output")))
        else:
            if table_caption:
                content, used = _caption_table(content, table_caption)
                table_caption = None if used else table_caption
            doc.blocks.append(("md", content))
    doc.blocks.extend(("md", b) for b in _figure_blocks(doc, images, options, index) if images)


def _markdown_cell(doc: _Doc, index: int, cell: Mapping[str, Any], drop_heading: bool) -> bool:
    text = _strip_front_matter(_source(cell)) if index == 0 else _source(cell)
    if drop_heading:
        text = re.sub(r"^\s*#\s+.*(\n|$)", "", text, count=1)
    for name, bundle in (cell.get("attachments") or {}).items():
        mime = next((m for m in _IMAGE_MIMES if m in bundle), None)
        if mime:
            stem = re.sub(r"[^A-Za-z0-9_-]", "_", Path(name).stem)
            path = doc.add_asset(f"attachment-{index}-{stem}", _IMAGE_MIMES[mime],
                                 _image_bytes({"data": bundle}, mime))
            text = text.replace(f"attachment:{name}", path)
    if text.strip():
        doc.blocks.append(("md", text.strip("\n")))
    return False


# ------------------------------------------------------------------------------------ cross-references


def resolve_references(text: str, refs: Mapping[str, str], *, unresolved: list[str] | None = None) -> str:
    """Replace ``@fig-x`` / ``@tbl-x`` (and ``[@fig-x]``, ``[-@fig-x]``) by linked "Figure 1" / "Table 2".

    Code spans and fenced code are left alone. Unknown labels become ``**?@label**`` and are appended to
    ``unresolved``.

    >>> resolve_references("see @fig-roc and [-@tbl-auc].", {"fig-roc": "Figure 1", "tbl-auc": "Table 2"})
    'see [Figure 1](#fig-roc) and [2](#tbl-auc).'
    """
    lookup = {k.lower(): (k, v) for k, v in refs.items()}

    def replace(match: re.Match[str]) -> str:
        minus, label = (match.group(1), match.group(2)) if match.group(2) else ("", match.group(3))
        if label.lower() not in lookup:
            if unresolved is not None:
                unresolved.append(label)
            return f"**?@{label}**"
        target, shown = lookup[label.lower()]
        return f"[{shown.split(' ', 1)[1] if minus else shown}](#{target})"

    parts = _CODE_SPANS.split(text)
    return "".join(p if i % 2 else _REF.sub(replace, p) for i, p in enumerate(parts))


# ---------------------------------------------------------------------------------------- documents


def _yaml_block(meta: Mapping[str, Any]) -> str:
    return "---\n" + yaml.safe_dump(dict(meta), allow_unicode=True, sort_keys=False, width=10_000) + "---\n"


def _run_metadata(nb: Mapping[str, Any]) -> dict[str, Any]:
    """Date and parameters of the papermill run, for the page header."""
    pm = nb.get("metadata", {}).get("papermill", {}) or {}
    meta: dict[str, Any] = {}
    end = pm.get("end_time")
    if end:
        meta["date"] = f"Executed {str(end).replace('T', ' ')[:16]} UTC"
    params = pm.get("parameters") or {}
    shown = {k: v for k, v in params.items() if v not in ("", [], None)}
    if shown:
        text = ", ".join(f"{k} = {v}" for k, v in shown.items())
        fence = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
        meta["run-parameters"] = f"{fence} {text} {fence}"
    return meta


def notebook_to_markdown(nb: Mapping[str, Any], *, name: str = "notebook",
                         assets_dir: str = "") -> tuple[str, dict[str, bytes]]:
    """Convert an executed notebook into one pandoc Markdown document (the conventions are in the module doc).

    Args:
        nb: the notebook (``nbformat.read`` result or the parsed JSON); not modified.
        name: how error messages and warnings name the notebook (e.g. its file name).
        assets_dir: folder prefix of the extracted images inside the document (e.g. ``"nec_files"``).

    Returns:
        The Markdown text (with YAML front matter holding ``title``) and the images it refers to, as
        ``{relative path: bytes}``.

    Raises:
        ValueError: a cell failed during execution, or cell options / front matter are not valid YAML.
    """
    check_executed(nb, name)
    cells = list(nb.get("cells", []))
    meta, first = _front_matter(cells)
    title, drop_heading = notebook_title(nb, default=Path(name).stem)
    doc = _Doc(assets_dir=assets_dir)
    for index, cell in enumerate(cells[first:], start=first):
        try:
            if cell.get("cell_type") == "code":
                _code_cell(doc, index, cell)
            elif cell.get("cell_type") == "markdown":
                drop_heading = _markdown_cell(doc, index, cell, drop_heading)
        except ValueError as err:
            raise ValueError(f"{name}: cell {index}: {err}") from None
    unresolved: list[str] = []
    body = "\n\n".join(text if kind == "code" else resolve_references(text, doc.refs, unresolved=unresolved)
                       for kind, text in doc.blocks)
    for label in dict.fromkeys(unresolved):
        warnings.warn(f"{name}: cross-reference @{label} matches no figure or table label", RenderWarning,
                      stacklevel=2)
    header = {**_run_metadata(nb), **{k: v for k, v in meta.items() if k != "title"}, "title": title}
    return _yaml_block(header) + "\n" + body + "\n", doc.assets


# -------------------------------------------------------------------------------------------- tools


def _pandoc_path() -> str:
    try:
        import pypandoc
    except ImportError as err:
        raise ImportError("the pandoc renderer needs the 'pypandoc_binary' package (pandoc inside a wheel); "
                          "install medlib's dependencies or put Quarto on PATH") from err
    return pypandoc.get_pandoc_path()


def _pandoc(args: list[str], *, stdin: str | None = None, cwd: Path | None = None) -> str:
    """Run the pandoc of ``pypandoc_binary``; a failure raises RuntimeError with pandoc's message."""
    proc = subprocess.run([_pandoc_path(), *args], input=stdin, capture_output=True, text=True, cwd=cwd,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"pandoc {' '.join(args)} failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def _compile_typst(source: Path, pdf: Path) -> list[str]:
    """Typst source → PDF with the ``typst`` wheel and its embedded fonts only (same PDF on every machine)."""
    try:
        import typst
    except ImportError as err:
        raise ImportError("PDF output needs the 'typst' package; install it or render with pdf=False") from err
    try:
        _, found = typst.compile_with_warnings(str(source), output=str(pdf), root=str(source.parent),
                                               ignore_system_fonts=True)
    except typst.TypstError as err:
        raise RuntimeError(f"typst could not compile {source.name}: {err}") from None
    return [f"{source.stem}.pdf: typst: {w}" for w in found]


def _templates() -> Path:
    return Path(str(resources.files("medlib.render") / "templates"))


def _medlib_version() -> str:
    try:
        from importlib.metadata import version

        return version("medlib")
    except Exception:  # not installed (running from a checkout): the version is cosmetic here
        return "dev"


# ---------------------------------------------------------------------------------------- the site


@dataclass(frozen=True)
class _Page:
    """One page of the site: file stem, navigation text, title and pandoc Markdown (+ images)."""

    stem: str
    nav: str
    title: str
    markdown: str
    assets: Mapping[str, bytes] = field(default_factory=dict)
    summary: str = ""
    study: bool = False


def find_reports(reports_dir: str | Path) -> list[Path]:
    """The executed notebooks in ``reports_dir``, in study order (nec, onfh, ich, glioma, medmnist, others).

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
    rank = {s: i for i, s in enumerate(STUDY_ORDER)}
    return sorted(found, key=lambda p: (rank.get(p.stem, len(rank)), p.stem))


def _short_name(title: str, stem: str) -> str:
    head = title.split(":", 1)[0].strip()
    return head if ":" in title and 0 < len(head) <= 24 else stem


def _study_page(path: Path) -> _Page:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    markdown, assets = notebook_to_markdown(nb, name=path.name, assets_dir=f"{path.stem}_files")
    title, _ = notebook_title(nb, default=path.stem)
    return _Page(stem=path.stem, nav=_short_name(title, path.stem), title=title, markdown=markdown,
                 assets=assets, summary=notebook_summary(nb), study=True)


def _qmd_page(path: Path, stem: str, nav: str, default_title: str, default_body: str = "") -> _Page:
    """A plain-Markdown ``.qmd`` page (YAML front matter + Markdown); Quarto-only keys are ignored."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    match = re.match(r"^\s*---\s*\n(.*?)\n---\s*(\n|$)", text, re.S)
    meta = (yaml.safe_load(match.group(1)) or {}) if match else {}
    body = text[match.end():] if match else (text or default_body)
    title = str(meta.get("title") or default_title)
    header = {k: meta[k] for k in ("subtitle", "date") if k in meta}
    return _Page(stem=stem, nav=nav, title=title, markdown=_yaml_block({**header, "title": title}) + "\n" + body)


def _index_page(reports: Path, studies: list[_Page]) -> _Page:
    """The suite's page: ``index.qmd``'s text, with the list of studies in its ``::: {#studies}`` div
    (where Quarto puts its listing) or appended under a "Studies" heading."""
    page = _qmd_page(reports / "index.qmd", "index", "Overview", *_DEFAULT_INDEX)
    items = []
    for s in studies:
        summary = f"\n\n    {s.summary}" if s.summary else ""
        items.append(f"-   **[{s.title}]({s.stem}.html)**{summary}\n\n    [Report]({s.stem}.html) · "
                     f"[PDF]({s.stem}.pdf)")
    listing = "::: study-list\n" + "\n\n".join(items) + "\n:::"
    placeholder = re.compile(r"^:::+\s*\{#studies[^}]*\}\s*\n:::+\s*$", re.M)
    if placeholder.search(page.markdown):
        markdown = placeholder.sub(lambda _: listing, page.markdown)
    else:
        markdown = f"{page.markdown.rstrip()}\n\n## Studies\n\n{listing}\n"
    return _Page(stem="index", nav="Overview", title=page.title, markdown=markdown)


def _site_links(markdown: str) -> str:
    """Links to site sources (``methods.qmd``, ``nec.ipynb``) point at their pages, as Quarto does."""
    return re.sub(r"\]\((?![a-z]+:)([^)\s]+?)\.(?:qmd|ipynb)(#[^)\s]*)?\)", r"](\1.html\2)", markdown)


def _nav(pages: list[_Page], current: str) -> list[dict[str, Any]]:
    return [{"href": f"{p.stem}.html", "text": p.nav, **({"current": True} if p.stem == current else {})}
            for p in pages]


def _write_page(page: _Page, pages: list[_Page], build: Path, site: Path, common: Mapping[str, Any],
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
    templates = _templates()
    base = ["-f", "markdown", "--standalone", "--columns=100000", f"--metadata-file={meta_file.name}"]
    html = ["-t", "html5", "--embed-resources", "--mathml", f"--template={templates / 'page.html'}",
            f"--css={templates / 'site.css'}", f"--resource-path={build}", "-o", str(site / f"{page.stem}.html")]
    toc = ["--toc", "--toc-depth=2"] if page.study else []
    _pandoc([*base, *html, *toc, source.name], cwd=build)
    if not (page.study and pdf):
        return []
    typ = build / f"{page.stem}.typ"
    _pandoc([*base, "-t", "typst", f"--template={templates / 'report.typst'}", "-o", typ.name, source.name],
            cwd=build)
    return _compile_typst(typ, site / f"{page.stem}.pdf")


def _build_site(reports: Path, site: Path, pdf: bool) -> list[str]:
    """Render every page of the pandoc site into ``site`` (an empty folder); returns notes."""
    studies = [_study_page(p) for p in find_reports(reports)]
    pages = [_index_page(reports, studies), *studies]
    if (reports / "methods.qmd").is_file():
        pages.append(_qmd_page(reports / "methods.qmd", "methods", "Methods", "Methods"))
    common = {
        "site-title": "medlib study reports",
        "footer": f"Rendered {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC by medlib {_medlib_version()} "
                  f"with pandoc{' and Typst' if pdf else ''} (Quarto not used).",
    }
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="medlib-render-") as tmp:
        for page in pages:
            notes += _write_page(page, pages, Path(tmp), site, common, pdf)
    return notes


# ------------------------------------------------------------------------------------------ engines


def quarto_project(reports: Path) -> Path | None:
    """The Quarto project folder of ``reports``: the nearest folder, ``reports`` or above, with ``_quarto.yml``."""
    for folder in (reports, *reports.parents):
        if (folder / "_quarto.yml").is_file():
            return folder
    return None


def _choose_engine(engine: str, reports: Path) -> str:
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


def _render_quarto(reports: Path, site: Path, pdf: bool) -> list[str]:
    """``quarto render <reports>`` in the project root (``_quarto.yml``), output into ``site``."""
    project = quarto_project(reports)
    target = os.path.relpath(reports, project)
    cmd = [shutil.which("quarto") or "quarto", "render", target, "--output-dir",
           os.path.relpath(site, project)] + ([] if pdf else ["--to", "html"])
    proc = subprocess.run(cmd, cwd=project, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"quarto render {target} (in {project}) failed (exit {proc.returncode}):\n{tail}")
    return []


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
            notes = (_render_quarto if chosen == "quarto" else _build_site)(reports, staging, pdf)
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
