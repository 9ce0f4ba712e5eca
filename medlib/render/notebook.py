"""An executed notebook → one pandoc Markdown document: numbered figures and tables, cross-references, images.

The conventions (a subset of Quarto's; :mod:`medlib.render.cells` reads the options, title and front matter):

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
* **Title**: front matter ``title``, notebook metadata ``title``, or the opening ``# ...`` heading (removed
  from the body), else the file name.
* A cell with an error output, or one papermill marked as failed, stops the render with a ``ValueError``
  naming the notebook and the cell.
"""

from __future__ import annotations

import base64
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from medlib.render.cells import (
    check_executed,
    front_matter,
    join_text,
    notebook_title,
    parse_cell_options,
    source_text,
    strip_front_matter,
)
from medlib.render.tools import run_pandoc

__all__ = ["RenderWarning", "notebook_to_markdown", "resolve_references", "yaml_block"]

_SKIP_TAGS = {"parameters", "injected-parameters"}
_IMAGE_MIMES = {"image/png": "png", "image/jpeg": "jpg", "image/svg+xml": "svg"}
_LABEL = r"(?:[Ff]ig|[Tt]bl)-[A-Za-z0-9_]+(?:[-_][A-Za-z0-9_]+)*"
_REF = re.compile(rf"\[(-?)@({_LABEL})\]|(?<![\w.@])@({_LABEL})")
_CODE_SPANS = re.compile(r"(```.*?```|~~~.*?~~~|`[^`\n]+`)", re.S)
_TABLE_LINE = re.compile(r"^\s*[|+]")
_PIPE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_HTML_TO_MD = "markdown-grid_tables-simple_tables-multiline_tables-raw_html-native_divs-fenced_divs"


class RenderWarning(UserWarning):
    """Something in a notebook the renderer could not honour (e.g. an unresolved cross-reference)."""


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


def _caption_table(text: str, caption: Callable[[], str]) -> tuple[str, bool]:
    """Attach a pandoc table caption (``: caption {#tbl-x}``) after the first table in ``text``; ``caption`` is
    called only when there is a table (it takes the table's number)."""
    span = _find_table(text)
    if span is None:
        return text, False
    lines = text.split("\n")
    start, end = span
    parts = lines[:start] + [""] + lines[start:end] + ["", caption(), ""] + lines[end:]
    return "\n".join(parts).strip("\n"), True


def _html_table_to_markdown(html: str) -> str:
    """Convert a ``text/html`` table (e.g. a pandas DataFrame) to Markdown with pandoc's HTML reader."""
    html = re.sub(r"<style.*?</style>", "", html, flags=re.S | re.I)
    return run_pandoc(["-f", "html", "-t", _HTML_TO_MD, "--wrap=none"], stdin=html).strip()


def _output_markdown(output: Mapping[str, Any], options: Mapping[str, Any]) -> tuple[str, str] | None:
    """(kind, content) of one output: ("image", mime), ("md", text), ("pre", text), or None to drop it."""
    kind = output.get("output_type")
    show_text = options.get("output") in (True, "asis")
    if kind == "stream":
        if output.get("name") != "stdout" or not show_text:
            return None
        text = join_text(output.get("text", ""))
        return ("md", text) if options.get("output") == "asis" else ("pre", text)
    if kind not in ("display_data", "execute_result"):
        return None
    data = output.get("data", {})
    for mime in _IMAGE_MIMES:
        if mime in data:
            return "image", mime
    if "text/markdown" in data:
        return "md", join_text(data["text/markdown"])
    if "text/html" in data and re.search(r"<table", join_text(data["text/html"]), re.I):
        return "md", _html_table_to_markdown(join_text(data["text/html"]))
    if "text/latex" in data and re.match(r"^\s*\$", join_text(data["text/latex"])):
        return "md", join_text(data["text/latex"])
    if "text/plain" in data and show_text:
        return "pre", join_text(data["text/plain"])
    return None


def _image_bytes(output: Mapping[str, Any], mime: str) -> bytes:
    payload = output["data"][mime]
    if mime == "image/svg+xml":
        return join_text(payload).encode()
    return base64.b64decode(join_text(payload))


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
    options, code = parse_cell_options(source_text(cell))
    if options.get("include") is False or _SKIP_TAGS & set(cell.get("metadata", {}).get("tags", [])):
        return
    if options.get("echo") is True and code.strip():
        doc.blocks.append(("code", f"```python\n{code}\n```"))
    if options.get("output") is False:
        return
    label = str(options.get("label", ""))
    captioned = label.lower().startswith("tbl-")  # numbered when its table arrives: an empty cell takes no number
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
            if captioned:
                content, used = _caption_table(content, lambda: f": **{doc.number(label)}.** "
                                               f"{str(options.get('tbl-cap', '')).strip()} {{#{label}}}")
                captioned = not used
            doc.blocks.append(("md", content))
    if images:  # a labelled figure cell without an image (a section this run does not hold) takes no number
        doc.blocks.extend(("md", b) for b in _figure_blocks(doc, images, options, index))


def _markdown_cell(doc: _Doc, index: int, cell: Mapping[str, Any], drop_heading: bool) -> bool:
    text = strip_front_matter(source_text(cell)) if index == 0 else source_text(cell)
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


def yaml_block(meta: Mapping[str, Any]) -> str:
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
        assets_dir: folder prefix of the extracted images inside the document (e.g. ``"<study>_files"``).

    Returns:
        The Markdown text (with YAML front matter holding ``title``) and the images it refers to, as
        ``{relative path: bytes}``.

    Raises:
        ValueError: a cell failed during execution, or cell options / front matter are not valid YAML.
    """
    check_executed(nb, name)
    cells = list(nb.get("cells", []))
    meta, first = front_matter(cells)
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
    return yaml_block(header) + "\n" + body + "\n", doc.assets

