"""The ``medlib`` command line: ``synth``, ``run``, ``sweep``, ``render``, ``demo``, ``bench``."""

from medlib.cli.commands import main

__all__ = ["main"]
