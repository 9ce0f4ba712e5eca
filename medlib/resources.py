"""Where medlib's own files are, where a user's files are, and how a relative path is read.

medlib runs from a source checkout (``make setup``: an editable install) or from a wheel (``pip install``). Its
own files, the notebook templates (``notebooks/``) and the built-in params (``params/``), sit at the top of the
checkout; a wheel carries the same folders inside the package, under ``medlib/_bundle/`` (pyproject.toml maps
them there), so both layouts are found the same way by :func:`bundled`.

The **workspace** is the folder a study's outputs go under (``runs/``, ``reports/``, the preprocessing cache)
and the folder the built-in params' data paths (``data/synth/nec/manifest.csv``) are relative to: the checkout's
root when medlib runs from one, otherwise the current folder (:func:`workspace`; ``MEDLIB_WORKSPACE`` overrides
both). A notebook's kernel starts in ``notebooks/``, so nothing here depends on the current folder inside one.

**Relative paths in a params file** (``cohort.manifest``, ``cohort.source``, ``split.split_file``,
``models[].weights_path``) are read relative to the params file's folder; when nothing is there, relative to the
workspace (so ``params/nec.yaml``'s ``data/synth/nec/manifest.csv`` and a copy of it in ``params/`` keep working).
Image paths inside a manifest are relative to the manifest (``medlib.data.cohort``). A params file named on the
command line or in a notebook (``params/nec.yaml``) is looked for in the current folder, then the workspace,
then among the built-in params (:func:`find_params`).

Paths written into records (run folders, executed notebooks) are shown by :func:`display_path`: relative to the
workspace when inside it, so no absolute path of the user's machine ends up in a report.

Written here rather than taken from a library: ``importlib.resources`` finds files inside the installed package
only, not the checkout's top-level folders, and the search order above is medlib's own rule.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

__all__ = ["BUNDLE_DIR", "PACKAGE_DIR", "INPUT_KEYS", "bundled", "display_path", "display_paths", "find_params",
           "resolve_input", "resolve_inputs", "source_root", "workspace"]

PACKAGE_DIR = Path(__file__).resolve().parent
#: Inside a wheel: the checkout's notebooks/ and params/ (pyproject.toml's force-include).
BUNDLE_DIR = PACKAGE_DIR / "_bundle"
WORKSPACE_ENV = "MEDLIB_WORKSPACE"
#: The params keys that name input files, read relative to the params file (then the workspace).
INPUT_KEYS = ("cohort.manifest", "cohort.source", "split.split_file", "models[].weights_path")


def source_root() -> Path | None:
    """The checkout medlib runs from (the folder holding ``pyproject.toml`` beside ``medlib/``), or None when it
    runs from an installed wheel."""
    root = PACKAGE_DIR.parent
    return root if (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir() else None


def bundled(name: str) -> Path:
    """A folder of medlib's own files (``"notebooks"``, ``"params"``): the wheel's copy, else the checkout's.

    Raises:
        FileNotFoundError: neither exists (a broken install).
    """
    for base in (BUNDLE_DIR, source_root()):
        if base is not None and (base / name).is_dir():
            return base / name
    raise FileNotFoundError(f"medlib's {name}/ folder is missing: not in {BUNDLE_DIR} (a wheel) nor beside the "
                            f"package (a checkout); reinstall medlib")


def workspace() -> Path:
    """The folder outputs go under and built-in data paths are relative to: ``MEDLIB_WORKSPACE``, else the
    checkout's root, else the current folder."""
    env = os.environ.get(WORKSPACE_ENV, "").strip()
    if env:
        return Path(env).expanduser().resolve()
    return source_root() or Path.cwd().resolve()


def find_params(path: str | Path, *, root: Path | None = None) -> Path:
    """The params file a user named: as given (the current folder), else in the workspace ``root``, else among the
    built-in params (``params/nec.yaml``, ``nec.yaml``, ``smoke/nec.yaml`` and ``nec`` all name
    ``params/nec.yaml``'s copy in the package).

    Raises:
        FileNotFoundError: found nowhere; the message lists where it looked and the built-in studies.
    """
    path = Path(path).expanduser()
    root = root or workspace()
    tried = [path] if path.is_absolute() else [path, root / path]
    if not path.is_absolute():
        builtin = bundled("params")
        rel = Path(*path.parts[1:]) if path.parts and path.parts[0] == "params" else path
        tried += [builtin / rel, builtin / rel.with_suffix(".yaml")] if rel.parts else []
    for candidate in tried:
        if candidate.is_file():
            return candidate.resolve()
    known = sorted(p.stem for p in bundled("params").glob("*.yaml"))
    raise FileNotFoundError(f"params file not found: {path} (looked in {', '.join(str(t) for t in dict.fromkeys(tried))}); "
                            f"built-in studies: {known}")


def resolve_input(value: str | None, base: Path | None, root: Path) -> str | None:
    """One input path of a params file, made absolute: relative to ``base`` (the params file's folder) when
    something is there, else relative to the workspace ``root``. Empty and absolute values are returned as given."""
    if not value or Path(value).expanduser().is_absolute():
        return str(Path(value).expanduser()) if value else value
    if base is not None and (base / value).exists():
        return str((base / value).resolve())
    return str((root / value).resolve())


def resolve_inputs(cfg: Any, params_file: str | Path | None, *, root: Path | None = None) -> Any:
    """The config with every input path (:data:`INPUT_KEYS`) resolved by :func:`resolve_input`, and a relative
    ``runs_dir`` and ``image.cache_dir`` placed under the workspace, so the study reads and writes the same files
    whatever the current folder (a notebook's kernel starts in ``notebooks/``).

    Args:
        cfg: a ``StudyConfig``.
        params_file: the params file the config came from (None: injected parameters, read against ``root``).
        root: the workspace (default :func:`workspace`).
    """
    root = root or workspace()
    base = Path(params_file).resolve().parent if params_file else None

    def at(value: str | None) -> str | None:
        return resolve_input(value, base, root)

    def under_root(value: str) -> str:
        return value if Path(value).is_absolute() else str(root / value)

    return _map_paths(cfg, at, under_root)


def _map_paths(cfg: Any, inputs: Any, outputs: Any) -> Any:
    """``cfg`` with ``inputs`` applied to the input paths and ``outputs`` to ``runs_dir`` and ``image.cache_dir``."""
    replace = dataclasses.replace
    return replace(
        cfg,
        cohort=replace(cfg.cohort, manifest=inputs(cfg.cohort.manifest), source=inputs(cfg.cohort.source)),
        split=replace(cfg.split, split_file=inputs(cfg.split.split_file)),
        models=tuple(replace(m, weights_path=inputs(m.weights_path)) for m in cfg.models),
        image=replace(cfg.image, cache_dir=outputs(cfg.image.cache_dir)),
        runs_dir=outputs(cfg.runs_dir))


def display_paths(cfg: Any, *, root: Path | None = None) -> Any:
    """The config with every path :func:`resolve_inputs` touches shown by :func:`display_path` (for the run's
    ``config.yaml``: no absolute path of the user's machine in a run record)."""
    def shown(value: str | None) -> str | None:
        return display_path(value, root=root) if value else value

    return _map_paths(cfg, shown, shown)


def display_path(path: str | Path, *, root: Path | None = None) -> str:
    """A path as records show it: relative to the workspace when inside it (``data/my/manifest.csv``), else
    ``~/...`` under the home folder, else as given."""
    path = Path(path)
    root = root or workspace()
    if path.is_absolute():
        for base, prefix in ((root, ""), (Path.home(), "~")):
            try:
                rel = path.resolve().relative_to(base.resolve())
            except ValueError:
                continue
            return str(Path(prefix) / rel) if prefix else (rel.as_posix() or ".")
    return str(path)
