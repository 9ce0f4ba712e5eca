"""medlib.stats imports only numerical libraries: never torch, never matplotlib."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import medlib.stats

ALLOWED = {"numpy", "scipy", "pandas", "statsmodels", "sklearn", "fairlearn", "medlib", "__future__"}  # fairlearn: MetricFrame (subgroups)


def test_stats_imports_only_numerical_libraries():
    """Static check of every import in medlib/stats (torch and matplotlib must never be among them)."""
    for path in Path(medlib.stats.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                top = name.split(".")[0]
                assert top in ALLOWED or top in sys.stdlib_module_names, f"{path.name} imports {name}"


def test_importing_stats_loads_neither_torch_nor_matplotlib():
    """A fresh interpreter that imports medlib.stats (and every submodule) has no torch or matplotlib loaded."""
    code = ("import sys, pkgutil, importlib, medlib.stats as s\n"
            "for m in pkgutil.iter_modules(s.__path__): importlib.import_module(f'medlib.stats.{m.name}')\n"
            "print(sorted(n for n in sys.modules if n.split('.')[0] in ('torch', 'matplotlib')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(medlib.stats.__file__).parents[2])
    assert out.stdout.strip() == "[]", out.stdout
