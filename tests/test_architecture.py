"""The house rules of docs/DESIGN.md, checked on the source: layers, no import circles, one owner per contract,
small modules, thin notebooks, declared dependencies and the public API."""

from __future__ import annotations

import ast
import json
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "medlib"

#: Layers, bottom to top: a module may import its own layer and the layers below, never one above.
LAYERS = [
    {"medlib.schema", "medlib.config", "medlib.config_errors", "medlib.threads", "medlib.progress", "medlib.resources"},
    {"medlib.data", "medlib.stats", "medlib.synth"},
    {"medlib.learn", "medlib.radiomics", "medlib.explain"},
    {"medlib.runs"},
    {"medlib.pipelines"},
    {"medlib.report"},
    {"medlib.render", "medlib.viewer"},
    {"medlib.cli", "medlib.__main__"},
]
MAX_LINES = 500
#: Modules that are mostly data tables (feature-name maps), allowed to be longer.
DATA_TABLES: set[str] = set()


def _modules() -> dict[str, Path]:
    return {".".join(f.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): f
            for f in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found |= {base} | {f"{base}.{a.name}" for a in node.names}
    return {d for d in found if d in modules and d != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {n: _imports(n, f, modules) for n, f in modules.items()}


def _layer(module: str) -> int | None:
    for i, layer in enumerate(LAYERS):
        if any(module == top or module.startswith(top + ".") for top in layer):
            return i
    return None


def test_no_import_cycle():
    graph = {n: {d for d in deps if not n.startswith(d + ".") and not d.startswith(n + ".")}
             for n, deps in _graph().items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for d in graph[n]:
            if state.get(d) == 1:
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)


def test_imports_point_down_the_layers():
    upward = []
    for module, deps in _graph().items():
        mine = _layer(module)
        if mine is None:
            continue
        upward += [f"{module} imports {d}" for d in deps if (_layer(d) or 0) > mine]
    assert not upward, "imports that point up a layer:\n" + "\n".join(sorted(upward))


def test_every_module_has_a_layer():
    assert [m for m in _modules() if m != "medlib" and _layer(m) is None] == []


def test_no_module_over_the_size_limit():
    long = {name: len(path.read_text().splitlines()) for name, path in _modules().items()}
    assert {n: k for n, k in long.items() if k > MAX_LINES and n not in DATA_TABLES} == {}


def test_predictions_columns_and_set_names_are_spelled_once():
    """Only medlib/schema.py spells the predictions table's columns or the list of set names."""
    columns = re.compile(r"""["']patient_id["'],\s*["']model["'],\s*["']set["'],\s*["']y_true["']""")
    sets = re.compile(r"""\(\s*["']train["'],\s*["']val["'],\s*["']test["'],\s*["']external["']""")
    offenders = [str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py")
                 if p.name != "schema.py" and (columns.search(p.read_text()) or sets.search(p.read_text()))]
    assert offenders == []


def _normalised_cells(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    out = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        lines = [re.sub(r"\s+", "", line.split("#")[0]) for line in "".join(cell["source"]).splitlines()]
        text = "".join(lines)
        if text:
            out.append(text)
    return out


def test_notebooks_repeat_at_most_ten_cells_of_each_other():
    cells = {p.name: _normalised_cells(p) for p in (ROOT / "notebooks").glob("*.ipynb")}
    repeated = [(name, c) for name, own in cells.items() for c in own
                if any(c in other for n, other in cells.items() if n != name)]
    assert len(repeated) <= 10, repeated


def test_notebooks_hold_no_study_specific_words():
    words = re.compile(r"neonat|infant|\bNEC\b|bowel|enterocolitis|femoral|\bhips?\b|hematoma|glioma|ONFH",
                       re.IGNORECASE)
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            text = "".join(cell["source"])
            if "parameters" in cell.get("metadata", {}).get("tags", []):
                continue  # the default params file's path
            assert not words.search(text), f"{path.name}: {text[:120]}"


def _imported_distributions() -> set[str]:
    top = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                top |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                top.add(node.module.split(".")[0])
    return {t for t in top if t != "medlib" and t not in sys.stdlib_module_names}


#: import name → distribution name, where they differ.
IMPORT_TO_DIST = {"PIL": "pillow", "pydantic_core": "pydantic", "sklearn": "scikit-learn", "yaml": "pyyaml", "pytorch_grad_cam": "grad-cam",
                  "radiomics": "pyradiomics-bhklab", "SimpleITK": "simpleitk", "vit_pytorch": "vit-pytorch",
                  "IPython": "ipython", "pypandoc": "pypandoc-binary", "skimage": "scikit-image",
                  "dask_jobqueue": "dask-jobqueue"}


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = project["dependencies"]
    return {re.split(r"[<>=!~\[ ;]", n, maxsplit=1)[0].lower().replace("_", "-") for n in names}


def test_every_imported_package_is_declared():
    used = {IMPORT_TO_DIST.get(t, t).lower().replace("_", "-") for t in _imported_distributions()}
    missing = sorted(used - _declared() - {"pylibjpeg", "openjpeg"})
    assert missing == []


def test_torch_is_pinned_in_one_place():
    pins = [line for line in (ROOT / "pyproject.toml").read_text().splitlines() if re.search(r'"torch[=<>]', line)]
    assert len(pins) == 1 and "==" in pins[0]
    assert not (ROOT / "requirements.txt").exists(), "pyproject.toml is the one list of dependencies"


@pytest.mark.parametrize("name", ["load_config", "load_study", "prepare", "fit_models", "build_model", "run_study",
                                  "stats", "schema", "freeze_thresholds", "read_image"])
def test_public_api_names_resolve(name):
    import medlib

    assert getattr(medlib, name) is not None and name in dir(medlib)


def test_no_values_travel_in_dataframe_attrs():
    """Records are typed (medlib.schema, pipeline dataclasses); pandas' attrs are lost on most operations."""
    pattern = re.compile(r"\.attrs\b")
    offenders = [str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []
