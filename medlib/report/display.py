"""Notebook display helpers: tables as Markdown so Quarto and pandoc make real tables of them.

Only presentation lives here: a DataFrame becomes a pipe table (``text/markdown``), a figure is shown
and closed. Report cells carry their Quarto labels and captions (``#| label: tbl-...``) themselves.
"""

from __future__ import annotations

import math

import pandas as pd


def _cell(value: object, digits: int) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.{digits}f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(df: pd.DataFrame, *, digits: int = 3, index: bool = False) -> str:
    """A pipe table of ``df``, floats with ``digits`` decimals, NaN as an en dash."""
    frame = df.reset_index() if index else df
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    align = "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(frame[c]) else ":---" for c in frame.columns) + "|"
    rows = ["| " + " | ".join(_cell(v, digits) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, align, *rows])


def show_table(df: pd.DataFrame, *, digits: int = 3, index: bool = False) -> None:
    """Display ``df`` as a Markdown table in the notebook (and so in the rendered report)."""
    from IPython.display import Markdown, display

    display(Markdown(markdown_table(df, digits=digits, index=index)))


def show_markdown(text: str) -> None:
    """Display Markdown text (narrative computed from the run, e.g. the split description)."""
    from IPython.display import Markdown, display

    display(Markdown(text))


def show_figure(fig) -> None:
    """Display a matplotlib figure once and close it (no duplicate output, no leaked figures)."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    display(fig)
    plt.close(fig)
