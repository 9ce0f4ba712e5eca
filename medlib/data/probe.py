"""Checks of a cohort that a person can act on: every image probed before training (in parallel, all bad files
listed at once) and label values that do not match the params summarised (distinct values with counts, first rows).

``medlib.data.cohort`` checks that each file exists; an existing file can still be unreadable (truncated,
not an image, a DICOM without pixel data or with an unsupported transfer syntax). Reading each image once through
the readers finds those before minutes of preprocessing and training, and lists them all.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import pandas as pd

from medlib.progress import progress_bar

__all__ = ["PROBED_ENV", "UnreadableImages", "label_mismatch", "probe_cohort", "probe_images"]


class UnreadableImages(ValueError):
    """Image files of a cohort that exist but cannot be read; the message lists them (line, case, column, file,
    the reader's reason)."""


#: Set by ``medlib run`` for the notebook's kernel to the hash of the manifest it probed before starting it, so
#: the notebook's ``prepare`` does not read every image a second time.
PROBED_ENV = "MEDLIB_PROBED_COHORT"


def probe_cohort(cohort) -> None:
    """:func:`probe_images` on a validated ``Cohort`` (every image and mask column), unless ``medlib run``
    probed this very manifest before starting the notebook."""
    if cohort.hash and os.environ.get(PROBED_ENV) == cohort.hash:
        return
    cfg = cohort.config
    probe_images(cohort.table, [*cfg.image_columns, *([cfg.mask_column] if cfg.mask_column else [])],
                 manifest=cohort.manifest, max_listed=cfg.max_errors)


def _read_problem(path: str) -> str | None:
    """The reader's complaint about one file, or None when it reads."""
    from medlib.data.imaging import read_image

    try:
        read_image(path)
    except Exception as err:  # any reader error is the file's problem, reported with the others
        text = " ".join(str(err).split()) or type(err).__name__
        return f"{type(err).__name__}: {text[:300]}"
    return None


def probe_images(table: pd.DataFrame, columns: Sequence[str], *, manifest: str | Path = "the manifest",
                 workers: int | None = None, max_listed: int = 20) -> None:
    """Read every image (and mask) of the cohort once, in threads, and list every file that cannot be read.

    Threads rather than processes: reading is file I/O and C decoding (pydicom's pixel handlers, nibabel, PIL),
    and a thread pool needs no pickling or process start-up. Each distinct file is read once.

    Args:
        table: the validated cohort table (absolute paths; rows in manifest order, so line = index + 2).
        columns: the image and mask columns.
        manifest: named in the error.
        workers: threads (default: 2 per core, at most 16).
        max_listed: bad files listed in the error (the count says how many there are).

    Raises:
        UnreadableImages: one or more files cannot be read, each listed with its manifest line, case, column and
            the reader's reason.
    """
    from medlib.resources import display_path

    cells = [(int(i) + 2, str(row["case_id"]), col, str(row[col])) for i, row in table.iterrows() for col in columns
             if str(row[col])]
    paths = list(dict.fromkeys(path for *_, path in cells))
    if not paths:
        return
    workers = workers or min(16, 2 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool, \
            progress_bar(total=len(paths), desc="reading every image once", unit="file") as bar:
        problems = {}
        for path, problem in zip(paths, pool.map(_read_problem, paths)):
            bar.update(1)
            if problem is not None:
                problems[path] = problem
    if not problems:
        return
    bad = [f"line {line}: case {case!r}, {col}: {display_path(path)}: {problems[path]}"
           for line, case, col, path in cells if path in problems]
    more = f"\n  ... and {len(bad) - max_listed} more" if len(bad) > max_listed else ""
    raise UnreadableImages(f"{display_path(manifest)}: {len(problems)} of {len(paths)} image files cannot be read "
                      f"(fix or remove these rows):\n  " + "\n  ".join(bad[:max_listed]) + more)


def label_mismatch(labels: pd.Series, positive: str, negative: str, *, label_column: str = "label",
                   first: int = 5) -> str | None:
    """One summary of the rows whose label is neither value the params name, or None when every row matches.

    ``labels`` are the manifest's label cells as text, indexed as the manifest's rows (line = index + 2). The
    summary gives each distinct value found with its count, the first few lines, and the keys to set, instead
    of one line per row.

    Example:
        >>> print(label_mismatch(pd.Series(["yes", "no", "yes", "1"]), "1", "0"))
        column 'label': 3 of 4 rows hold a value that is neither cohort.positive '1' nor cohort.negative '0': 'yes' (2 rows), 'no' (1 row); first at lines 2, 3, 4. Set cohort.positive and cohort.negative to the manifest's values, or fix these rows.
    """
    text = labels.fillna("").astype(str).str.strip()
    wrong = text[~text.isin([positive, negative])]
    if wrong.empty:
        return None
    counts = wrong.replace("", "(empty)").value_counts()
    found = ", ".join(f"{value!r} ({n} row{'' if n == 1 else 's'})" for value, n in counts.head(10).items())
    found += f", and {len(counts) - 10} more values" if len(counts) > 10 else ""
    lines = ", ".join(str(int(i) + 2) for i in wrong.index[:first])
    rows = f"{len(wrong)} of {len(text)} rows {'holds' if len(wrong) == 1 else 'hold'}"
    return (f"column {label_column!r}: {rows} a value that is neither cohort.positive {positive!r} "
            f"nor cohort.negative {negative!r}: {found}; first at line{'s' if len(wrong) > 1 else ''} {lines}. Set "
            f"cohort.positive and cohort.negative to the manifest's values, or fix these rows.")
