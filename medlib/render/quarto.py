"""Finding and running Quarto, the one renderer of medlib's site and manuscripts.

Quarto is looked for in this order: ``$QUARTO_PATH`` (the variable Quarto's own tools read), ``quarto`` on the
``PATH``, the project's ``.quarto/bin/quarto`` (where ``make setup`` installs the offline kit) and the virtual
environment's ``bin/quarto`` (pip's ``quarto-cli``). When none is there, :class:`QuartoNotFound` says how to
install it; the command line prints that one line.

Quarto is run as a subprocess and never re-executes a notebook (``execute: enabled: false`` in every project
medlib writes); its output is kept and only the end of it is shown when it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence

__all__ = ["QUARTO_REQUIRED", "QuartoNotFound", "find_quarto", "quarto_version", "run_quarto"]

#: The Quarto versions medlib's projects accept (``quarto-required`` in the ``_quarto.yml`` files it writes):
#: 1.7 is the first with Typst 0.13 and the manuscript features the manuscripts use; the offline kit is 1.7.34.
QUARTO_REQUIRED = ">=1.7.0"
_PROJECT_ROOT = Path(__file__).resolve().parents[2]
_HOW_TO_INSTALL = ("install Quarto >= 1.7: `make setup` (uses a quarto on the PATH, else the offline kit "
                   "../shared/tools/quarto/install.sh when present, else `pip install quarto-cli` into .venv), "
                   "`conda install -c conda-forge quarto`, or the installer from https://quarto.org; or set "
                   "QUARTO_PATH to the quarto executable")


class QuartoNotFound(FileNotFoundError):
    """No Quarto executable was found; the message says where medlib looked and how to install it."""


def _candidates() -> list[Path]:
    found = [Path(os.environ["QUARTO_PATH"])] if os.environ.get("QUARTO_PATH") else []
    on_path = shutil.which("quarto")
    found += [Path(on_path)] if on_path else []
    return found + [_PROJECT_ROOT / ".quarto" / "bin" / "quarto", Path(sys.prefix) / "bin" / "quarto"]


def find_quarto() -> Path:
    """The Quarto executable (see the module docstring for the order).

    Raises:
        QuartoNotFound: none was found; the message says how to install Quarto.
    """
    for path in _candidates():
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise QuartoNotFound(f"Quarto is required to render reports and manuscripts but was not found (QUARTO_PATH, "
                         f"PATH, {_PROJECT_ROOT / '.quarto/bin'}, {Path(sys.prefix) / 'bin'}); {_HOW_TO_INSTALL}")


def quarto_version(quarto: Path | None = None) -> str:
    """``quarto --version`` (e.g. ``1.7.34``).

    Raises:
        QuartoNotFound: no Quarto. RuntimeError: it did not answer with a version.
    """
    exe = quarto or find_quarto()
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=False)
    version = proc.stdout.strip()
    if proc.returncode != 0 or not re.match(r"^\d+\.\d+", version):
        raise RuntimeError(f"{exe} --version failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()}")
    return version


def run_quarto(args: Sequence[str], *, cwd: Path, what: str) -> str:
    """Run ``quarto <args>`` in ``cwd`` and return its output.

    The Python that runs medlib is given to Quarto (``QUARTO_PYTHON``) so that it never looks for another
    Jupyter; no notebook is executed anyway.

    Args:
        what: what is being rendered, for the error message.

    Raises:
        QuartoNotFound: no Quarto.
        RuntimeError: Quarto failed; the message holds the command, the folder and the end of its output.
    """
    exe = find_quarto()
    env = {**os.environ, "QUARTO_PYTHON": sys.executable}
    proc = subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, check=False, env=env)
    output = f"{proc.stdout}\n{proc.stderr}".strip()
    if proc.returncode != 0:
        tail = "\n".join(output.splitlines()[-20:])
        raise RuntimeError(f"quarto {' '.join(args)} ({what}, in {cwd}) failed (exit {proc.returncode}):\n{tail}")
    return output
