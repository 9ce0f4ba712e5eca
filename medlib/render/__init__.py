"""Rendering with Quarto: the report site, a PDF per study and a manuscript per study (HTML, PDF, DOCX).

- ``site``: ``render_reports`` (the Quarto website of a reports folder, atomically replaced) and ``RenderResult``.
- ``manuscript``: ``build_manuscript`` (a Quarto manuscript project per study) and ``article`` (its text, from
  the run record).
- ``notebooks``: which executed notebooks are published, which failed and where their log is; the one-output
  rule of labelled cells; where a notebook's run record is.
- ``quarto``: finding Quarto (``QuartoNotFound`` says how to install it) and running it.
- ``templates/``: the Quarto project files (``site.yml``, ``manuscript.yml``), ``methods.qmd``, the method
  references (``methods.bib``) and the citation style (``medlib.csl``).

Nothing here knows a study: titles, words and numbers come from the notebooks and run records.
"""

from medlib.render.manuscript import build_manuscript
from medlib.render.notebooks import check_labelled_cells, scan_reports
from medlib.render.quarto import QuartoNotFound, find_quarto
from medlib.render.site import RenderResult, render_reports

__all__ = ["QuartoNotFound", "RenderResult", "build_manuscript", "check_labelled_cells", "find_quarto",
           "render_reports", "scan_reports"]
