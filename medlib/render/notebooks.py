"""The executed notebooks of a reports folder: which are published, which failed, and where their run record is.

* A notebook is **published** when no cell holds an error and papermill marked none as failed. A notebook
  ``<name>.failed.ipynb`` (``medlib run`` keeps the partial notebook of a run that failed), or a notebook with an
  error in it, is **not** published; the index names it, its error and the path of the notebook that holds the
  log. A failure older than a successful notebook of the same name is stale and is not mentioned.
* Every **labelled cell** (``#| label: fig-...`` / ``tbl-...``) must display at most one thing (Quarto attaches
  the caption to one output; two Markdown outputs in one labelled cell make its Lua filter fail, and
  ``{{< embed >}}`` takes one output). :func:`check_labelled_cells` says which cell breaks the rule.
* The notebook's **run folder** is the one the study notebook announced with :func:`show_run_record` (an
  invisible output of its set-up cell); :func:`run_folder` reads it back.

Why not nbformat's reader: a notebook is JSON, and only a few keys are read here; ``json`` keeps this module free
of the validation a partial (failed) notebook may not pass.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

__all__ = ["RUN_MIME", "Failure", "Report", "check_labelled_cells", "first_error", "load_notebook", "params_file",
           "run_folder", "scan_reports", "show_run_record"]

#: The MIME type of the set-up cell's output that names the run folder (Quarto and Jupyter show nothing for it).
RUN_MIME = "application/vnd.medlib.run+json"
_LABEL = re.compile(r"^#\|\s*label:\s*(\S+)\s*$", re.M)
_FRONT_MATTER = re.compile(r"^\s*---\s*\n(.*?)\n---\s*(\n|$)", re.S)


@dataclass(frozen=True)
class Report:
    """One published notebook.

    Attributes:
        path: the notebook (``<reports>/<stem>.ipynb``).
        stem: its file stem; its page is ``<stem>.html`` and its PDF ``<stem>.pdf``.
        title: the title of its front matter (``study.title``), else the stem.
        run_dir: the run folder it wrote, or None when it does not say.
        params: the params file it ran with (papermill's ``config_path``), or None.
    """

    path: Path
    stem: str
    title: str
    run_dir: Path | None
    params: Path | None = None


@dataclass(frozen=True)
class Failure:
    """A notebook that is not published.

    Attributes:
        stem: the report's name (``<stem>.failed.ipynb`` → ``<stem>``).
        log: the notebook that holds the failed cell and its traceback.
        error: ``"<Error>: <message> (cell N)"``.
        previous: the older successful notebook still published under this name, or None.
    """

    stem: str
    log: Path
    error: str
    previous: Path | None = None


def load_notebook(path: Path) -> dict[str, Any]:
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable notebook ({err})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ValueError(f"{path}: not a notebook (no 'cells' list)")
    return nb


def _source(cell: Mapping[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def first_error(nb: Mapping[str, Any]) -> str | None:
    """``"<Error>: <message> (cell N)"`` of the first cell that failed, or None when none did."""
    for index, cell in enumerate(nb.get("cells", [])):
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if errors:
            return f"{errors[0].get('ename', 'Error')}: {errors[0].get('evalue', '')} (cell {index})"
        if cell.get("metadata", {}).get("papermill", {}).get("exception"):
            return f"papermill marked cell {index} as failed"
    return None


def _title(nb: Mapping[str, Any], default: str) -> str:
    cells = nb.get("cells", [])
    if cells and cells[0].get("cell_type") in ("raw", "markdown"):
        match = _FRONT_MATTER.match(_source(cells[0]))
        try:
            meta = yaml.safe_load(match.group(1)) if match else None
        except yaml.YAMLError:
            meta = None
        if isinstance(meta, dict) and meta.get("title"):
            return str(meta["title"])
    return str(nb.get("metadata", {}).get("title") or default)


def show_run_record(run_dir: str | Path) -> None:
    """Announce the run folder in the notebook (an output no report shows), for the manuscript to find it."""
    from IPython.display import display

    from medlib.resources import display_path

    # relative to the workspace (never the user's absolute path in a report); run_folder resolves it again
    display({RUN_MIME: {"run_dir": display_path(Path(run_dir).resolve())}}, raw=True)


def run_folder(nb: Mapping[str, Any]) -> Path | None:
    """The run folder announced by :func:`show_run_record`, or None."""
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            data = output.get("data", {}).get(RUN_MIME)
            if isinstance(data, Mapping) and data.get("run_dir"):
                from medlib.resources import workspace

                path = Path(str(data["run_dir"])).expanduser()
                return path if path.is_absolute() else workspace() / path
    return None


def params_file(nb: Mapping[str, Any]) -> Path | None:
    """The params file papermill ran the notebook with; a relative path is relative to the project root (the
    folder papermill ran in)."""
    path = nb.get("metadata", {}).get("papermill", {}).get("parameters", {}).get("config_path")
    if not path:
        return None
    from medlib.resources import find_params, workspace

    try:
        return find_params(path)
    except FileNotFoundError:  # moved or deleted since the run: where it was, for the page to name
        return Path(path) if Path(path).is_absolute() else workspace() / path


def check_labelled_cells(nb: Mapping[str, Any], name: str) -> None:
    """Refuse a labelled cell that displays more than one thing (stderr, i.e. warnings, is not counted).

    Raises:
        ValueError: names the notebook, the cell and its label, and the rule.
    """
    for index, cell in enumerate(nb.get("cells", [])):
        match = _LABEL.search(_source(cell)) if cell.get("cell_type") == "code" else None
        if not match:
            continue
        shown = [o for o in cell.get("outputs", []) if not (o.get("output_type") == "stream"
                                                             and o.get("name") == "stderr")]
        if len(shown) > 1:
            raise ValueError(f"{name}: cell {index} (label {match.group(1)}) displays {len(shown)} outputs; a "
                             f"labelled cell must display one thing (one show_table or show_figure call, no print), "
                             f"so that its caption and {{{{< embed >}}}} take the right output. Compute in an "
                             f"unlabelled cell above it")


def scan_reports(folder: Path) -> tuple[list[Report], list[Failure]]:
    """The published notebooks of ``folder`` (sorted by title) and the failed ones (sorted by name).

    Notebooks whose name starts with ``.`` or ``_`` (temporary files) are ignored.

    Raises:
        FileNotFoundError: ``folder`` does not exist.
        ValueError: a published notebook breaks the labelled-cell rule, or a file is not a notebook.
    """
    if not folder.is_dir():
        raise FileNotFoundError(f"reports folder not found: {folder} (run a study first: medlib run STUDY)")
    reports, failures = [], []
    paths = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith((".", "_")))
    for path in (p for p in paths if not p.name.endswith(".failed.ipynb")):
        nb = load_notebook(path)
        error = first_error(nb)
        if error:
            failures.append(Failure(stem=path.stem, log=path, error=error))
            continue
        check_labelled_cells(nb, path.name)
        reports.append(Report(path=path, stem=path.stem, title=_title(nb, path.stem), run_dir=run_folder(nb),
                              params=params_file(nb)))
    published = {r.stem: r.path for r in reports}
    for path in (p for p in paths if p.name.endswith(".failed.ipynb")):
        stem = path.name[: -len(".failed.ipynb")]
        previous = published.get(stem)
        if previous is not None and previous.stat().st_mtime >= path.stat().st_mtime:
            continue  # a later run of the same name succeeded: the failure is history
        failures.append(Failure(stem=stem, log=path, error=first_error(load_notebook(path)) or "the run did not finish",
                                previous=previous))
    return sorted(reports, key=lambda r: (r.title.casefold(), r.stem)), sorted(failures, key=lambda f: f.stem)
