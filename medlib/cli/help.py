"""The words of ``medlib --help`` and ``medlib COMMAND --help`` (examples, exit codes), and the exit code of an
error: 2 for bad input found before the work (params, manifest, images, arguments), 1 for a failure while working.
"""

from __future__ import annotations

__all__ = ["BAD_INPUT", "EPILOG", "EXAMPLES", "exit_code"]

EPILOG = """\
exit codes: 0 ok; 2 bad input (params, manifest, images, arguments: reported before any long work);
1 a failure while working (a notebook cell failed: the partial notebook is kept); 130 interrupted.
Progress and one line per finished step go to stdout (live bars on stderr on a terminal); -q/--quiet prints only
the result and errors; --debug shows the traceback of an error."""

EXAMPLES: dict[str, tuple[str, ...]] = {
    "new": (
        "medlib new scaphoid --from nec        # scaphoid/scaphoid.yaml, scaphoid/manifest.csv, scaphoid/README.md",
        "medlib new knee --from onfh --dir studies/knee",
    ),
    "synth": (
        "medlib synth                          # every demo cohort into data/synth/",
        "medlib synth nec --scale 0.2 --out data/small",
    ),
    "run": (
        "medlib run nec                        # params/nec.yaml -> reports/nec.ipynb, runs/nec/<run-id>/",
        "medlib run -f scaphoid/scaphoid.yaml  # your study -> reports/scaphoid.ipynb",
        "medlib run nec -p train.epochs=3 -p image.size=[32,32] --run-id quick",
        "medlib run nec --resume runs/nec/20250101-120000",
        "medlib run -f scaphoid/scaphoid.yaml --quiet > run.log",
    ),
    "sweep": (
        "medlib sweep nec --grid sweeps/nec-lr.yaml",
        "medlib sweep nec --grid sweeps/nec-lr.yaml --scheduler tcp://127.0.0.1:8786",
    ),
    "render": (
        "medlib render                         # reports/*.ipynb -> reports/_site/ (HTML, PDF, manuscripts)",
        "medlib render --no-pdf --no-manuscripts",
    ),
    "manuscript": (
        "medlib manuscript nec                 # reports/nec.ipynb -> reports/_site/manuscripts/nec/",
        "medlib manuscript scaphoid --out paper/",
    ),
    "demo": (
        "medlib demo                           # synthetic cohorts, every study two at a time, the site",
        "medlib demo nec --smoke --jobs 1      # the tiny NEC run, in about a minute",
    ),
    "bench": (
        "medlib bench",
        "medlib bench train                    # only benchmarks whose name holds 'train'",
    ),
}

#: Errors that mean the input is wrong (found before the work): exit code 2.
BAD_INPUT: tuple[type[BaseException], ...] = (ValueError, LookupError, FileNotFoundError, FileExistsError,
                                              NotADirectoryError, IsADirectoryError)


def exit_code(err: BaseException) -> int:
    """2 for bad input (a ``ConfigError``, ``CohortError``, missing file, unknown name, bad value), else 1.

    A notebook's failure (``StudyFailed``) is 1 whatever its cause: the work had started.
    """
    from medlib.cli.runner import StudyFailed

    if isinstance(err, StudyFailed):
        return 1
    return 2 if isinstance(err, BAD_INPUT) else 1
