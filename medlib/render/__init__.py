"""Rendering executed study notebooks into the HTML site and one PDF per study: ``render_reports``.

- ``site``: ``render_reports`` (engine choice, atomic replacement of the site) and ``RenderResult``.
- ``cells``: reading a notebook's cells (Quarto ``#|`` options, failed cells, front matter, title, summary).
- ``notebook``: one executed notebook → one pandoc Markdown document (numbered figures and tables,
  cross-references, images).
- ``pages``: the site's pages (index, one per study in order of title, methods).
- ``pandoc``: the pandoc + Typst engine (offline, from Python wheels); ``tools``: running pandoc and Typst.
- ``quarto``: the Quarto engine, when ``quarto`` and a ``_quarto.yml`` are there.

Nothing here knows a study: pages, titles and their order come from the notebooks and the reports folder.
"""

from medlib.render.cells import check_executed, notebook_summary, notebook_title, parse_cell_options
from medlib.render.notebook import RenderWarning, notebook_to_markdown, resolve_references
from medlib.render.pages import find_reports
from medlib.render.quarto import quarto_project
from medlib.render.site import ENGINES, RenderResult, render_reports

__all__ = ["ENGINES", "RenderResult", "RenderWarning", "check_executed", "find_reports", "notebook_summary",
           "notebook_title", "notebook_to_markdown", "parse_cell_options", "quarto_project", "render_reports",
           "resolve_references"]
