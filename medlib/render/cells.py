"""Reading an executed notebook's cells: Quarto cell options, failed cells, front matter, title and summary.

* **Cell options** are ``#| key: value`` lines (YAML) at the top of a code cell (:func:`parse_cell_options`).
* A cell with an error output, or one papermill marked as failed, stops the render (:func:`check_executed`).
* **Title**: the ``title`` of YAML front matter (``---`` block) in the first raw or Markdown cell, else the
  notebook metadata ``title``, else the first-level heading (``# ...``) that opens the first Markdown cell
  (removed from the body), else the file name (:func:`notebook_title`); the first paragraph after the title
  is the study's summary on the index page (:func:`notebook_summary`).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import yaml

__all__ = ["FRONT_MATTER", "check_executed", "front_matter", "join_text", "notebook_summary", "notebook_title",
           "parse_cell_options", "source_text", "strip_front_matter"]

_OPTION_LINE = re.compile(r"^#\|\s?(.*)$")
#: a YAML front matter block (``---`` ... ``---``) at the start of a text
FRONT_MATTER = re.compile(r"^\s*---\s*\n(.*?)\n---\s*(\n|$)", re.S)


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


def source_text(cell: Mapping[str, Any]) -> str:
    """A cell's source as one string (nbformat stores it as a string or a list of lines)."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def join_text(value: Any) -> str:
    """An output's text or mime payload as one string (a string or a list of lines in the notebook)."""
    return "".join(value) if isinstance(value, list) else str(value)


def _cell_name(index: int, cell: Mapping[str, Any]) -> str:
    label = parse_cell_options(source_text(cell))[0].get("label") if cell.get("cell_type") == "code" else None
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


def front_matter(cells: list[Mapping[str, Any]]) -> tuple[dict[str, Any], int]:
    """YAML front matter of the first raw or Markdown cell, and the index of the first body cell."""
    if cells and cells[0].get("cell_type") in ("raw", "markdown"):
        match = FRONT_MATTER.match(source_text(cells[0]))
        if match:
            try:
                meta = yaml.safe_load(match.group(1)) or {}
            except yaml.YAMLError as err:
                raise ValueError(f"front matter of the first cell is not valid YAML ({err})") from None
            if not isinstance(meta, dict):
                raise ValueError(f"front matter must be a YAML mapping; got {match.group(1)!r}")
            rest = source_text(cells[0])[match.end():].strip()
            if rest:  # front matter followed by Markdown in the same cell
                return meta, 0
            return meta, 1
    return {}, 0


def strip_front_matter(text: str) -> str:
    """``text`` without a leading YAML front matter block."""
    return FRONT_MATTER.sub("", text, count=1)


def notebook_title(nb: Mapping[str, Any], default: str = "Report") -> tuple[str, bool]:
    """The report title, and whether it came from an opening ``#`` heading (to drop from the body).

    Order: front matter ``title``, notebook metadata ``title``, the first-level heading opening the first
    Markdown cell, ``default``.
    """
    cells = list(nb.get("cells", []))
    meta, _ = front_matter(cells)
    if meta.get("title"):
        return str(meta["title"]), False
    if nb.get("metadata", {}).get("title"):
        return str(nb["metadata"]["title"]), False
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            match = re.match(r"^\s*#\s+(.+?)\s*#*\s*$", strip_front_matter(source_text(cell)).lstrip().split(
                "\n", 1)[0])
            return (match.group(1), True) if match else (default, False)
    return default, False


def notebook_summary(nb: Mapping[str, Any]) -> str:
    """The first paragraph of narrative after the title (the index page shows it), or ``""``."""
    _, from_heading = notebook_title(nb)
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        text = strip_front_matter(source_text(cell)).strip()
        if from_heading:
            text = text.split("\n", 1)[1].strip() if "\n" in text else ""
            from_heading = False
        paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip() and not p.lstrip().startswith("#")]
        if paragraphs:
            return " ".join(paragraphs[0].split())
    return ""
