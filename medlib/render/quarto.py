"""The Quarto engine: ``quarto render <reports>`` run in the project root (the folder with ``_quarto.yml``).

Quarto writes the website and Typst PDFs without re-executing the notebooks, and mirrors the project's folders,
so its pages are ``<out>/reports/*.html`` beside its ``site_libs/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["quarto_project", "render_quarto"]


def quarto_project(reports: Path) -> Path | None:
    """The Quarto project folder of ``reports``: the nearest folder, ``reports`` or above, with ``_quarto.yml``."""
    for folder in (reports, *reports.parents):
        if (folder / "_quarto.yml").is_file():
            return folder
    return None


def render_quarto(reports: Path, site: Path, pdf: bool) -> list[str]:
    """``quarto render <reports>`` in the project root (``_quarto.yml``), output into ``site``.

    Returns:
        Notes (none: Quarto prints its own).

    Raises:
        FileNotFoundError: no ``_quarto.yml`` in ``reports`` or a folder above.
        RuntimeError: Quarto failed; the message holds the end of its output.
    """
    project = quarto_project(reports)
    if project is None:
        raise FileNotFoundError(f"no Quarto project file (_quarto.yml) in {reports} or a folder above it")
    target = os.path.relpath(reports, project)
    cmd = [shutil.which("quarto") or "quarto", "render", target, "--output-dir",
           os.path.relpath(site, project)] + ([] if pdf else ["--to", "html"])
    proc = subprocess.run(cmd, cwd=project, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"quarto render {target} (in {project}) failed (exit {proc.returncode}):\n{tail}")
    return []
