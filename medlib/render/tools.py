"""The external tools of the renderer, from Python wheels: pandoc (``pypandoc_binary``) and Typst (``typst``).

Both run offline and give the same output on every machine (Typst uses its embedded fonts only).
"""

from __future__ import annotations

import subprocess
from importlib import resources
from pathlib import Path

__all__ = ["compile_typst", "medlib_version", "pandoc_path", "run_pandoc", "templates_dir"]


def pandoc_path() -> str:
    """The pandoc executable of the ``pypandoc_binary`` wheel.

    Raises:
        ImportError: ``pypandoc`` is not installed.
    """
    try:
        import pypandoc
    except ImportError as err:
        raise ImportError("the pandoc renderer needs the 'pypandoc_binary' package (pandoc inside a wheel); "
                          "install medlib's dependencies or put Quarto on PATH") from err
    return pypandoc.get_pandoc_path()


def run_pandoc(args: list[str], *, stdin: str | None = None, cwd: Path | None = None) -> str:
    """Run pandoc with ``args`` and return its standard output.

    Raises:
        RuntimeError: pandoc failed; the message holds its arguments, exit code and standard error.
    """
    proc = subprocess.run([pandoc_path(), *args], input=stdin, capture_output=True, text=True, cwd=cwd,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"pandoc {' '.join(args)} failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def compile_typst(source: Path, pdf: Path) -> list[str]:
    """Typst source → PDF with the ``typst`` wheel and its embedded fonts only (same PDF on every machine).

    Returns:
        Typst's warnings, each prefixed with the PDF's name.

    Raises:
        ImportError: ``typst`` is not installed.
        RuntimeError: Typst could not compile the source (its message is included).
    """
    try:
        import typst
    except ImportError as err:
        raise ImportError("PDF output needs the 'typst' package; install it or render with pdf=False") from err
    try:
        _, found = typst.compile_with_warnings(str(source), output=str(pdf), root=str(source.parent),
                                               ignore_system_fonts=True)
    except typst.TypstError as err:
        raise RuntimeError(f"typst could not compile {source.name}: {err}") from None
    return [f"{source.stem}.pdf: typst: {w}" for w in found]


def templates_dir() -> Path:
    """The folder of the page template, style sheet and Typst template (``medlib/render/templates``)."""
    return Path(str(resources.files("medlib.render") / "templates"))


def medlib_version() -> str:
    """The installed medlib version, or ``"dev"`` when running from a checkout that is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("medlib")
    except PackageNotFoundError:  # a checkout on sys.path: the version is cosmetic here (the page footer)
        return "dev"
