"""``medlib new NAME --from STUDY``: the scaffold of a user's own study.

It writes ``NAME/NAME.yaml`` (the built-in study's settings, its cohort pointed at ``manifest.csv`` beside it, and
a ``study:`` section of ``TODO:`` lines to replace: ``medlib run`` refuses to start while one is left, because
every sentence of the report about the study comes from there), ``NAME/manifest.csv`` (the columns the settings
expect, with two example rows to replace) and ``NAME/README.md`` (what to do next and where the outputs go).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from medlib.resources import bundled, display_path, workspace

__all__ = ["Scaffold", "scaffold_study"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")

_STUDY_SECTION = """\
# What the study is about, in the words the report uses: every sentence of the report about your study comes
# from here (medlib run refuses to start while a TODO: line is left). One line each unless said otherwise.
study:
  name: {name}                 # short id: run folders go to runs/{name}/<run-id>/
  title: "TODO: the report's title"
  question: "TODO: the clinical question, one sentence"
  population: "TODO: who is included, one sentence"
  unit: "TODO: what one row of the manifest is, a singular noun (patient, hip, image)"
  positive: "TODO: what the positive label ({positive}) means, e.g. needed surgery"
  negative: "TODO: what the negative label ({negative}) means"
  inputs:                      # optional: what each image column shows
{inputs}
  # background: "..."          # optional paragraph: the design this study follows (may name a paper)
  # reference:                 # optional: published results; the report compares only when given
  #   source: "Author et al., Journal 2024"
  #   results: {{ResNet18.auc: 0.90}}
"""

_README = """\
# {name}

Made by `medlib new {name} --from {template}`.

1. Write the `study:` section of `{name}.yaml` (every `TODO:` line): the report tells your study in these words.
2. Put one row per case in `manifest.csv` (replace the two example rows): `case_id`, `patient_id` (the unit of
   splitting), `{label}` (`{positive}` or `{negative}`), one column per image input ({columns}) with a path
   relative to `manifest.csv`, `set` (`external` marks an external test cohort, else empty) and the covariates
   named in `cohort.covariates`.
3. Run it: `medlib run -f {params}`.

The run folder is `{runs}/{name}/<run-id>/` (config, split, predictions, metrics, Grad-CAM maps, provenance) and
the report `{reports}/{name}.ipynb`; `medlib render` turns it into `{reports}/_site/{name}.html` and a PDF.
Relative paths in `{name}.yaml` are read relative to this folder (then the workspace).
"""


@dataclass(frozen=True)
class Scaffold:
    """What ``scaffold_study`` wrote, and where the run's outputs will go."""

    folder: Path
    params: Path
    manifest: Path
    readme: Path
    report: Path
    runs: Path


def _template(name: str) -> dict:
    path = bundled("params") / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in bundled("params").glob("*.yaml"))
        raise FileNotFoundError(f"--from {name}: no built-in study of that name; choose one of {known}")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


#: The cohort keys a scaffold keeps from its template; the rest (a public data source, lesion masks of the
#: synthetic cohort) belong to the template's own data.
_COHORT_KEYS = ("image_columns", "mask_column", "label_column", "positive", "negative", "covariates", "categorical")


def _params_text(name: str, template: dict) -> str:
    cohort = {"manifest": "manifest.csv", **{k: v for k, v in template.get("cohort", {}).items() if k in _COHORT_KEYS}}
    rest = {k: v for k, v in template.items() if k not in ("study", "design", "cohort")}
    columns = cohort.get("image_columns", ["image"])
    inputs = "\n".join(f'    {c}: "TODO: what the {c} image shows, e.g. one PA radiograph (PNG)"' for c in columns)
    study = _STUDY_SECTION.format(name=name, inputs=inputs, positive=cohort.get("positive", "1"),
                                  negative=cohort.get("negative", "0"))
    head = (f"# {name}: params of a study made by `medlib new`. Every key is documented in medlib/config.py.\n"
            f"# Relative paths are read relative to this file's folder.\n"
            f"design: {template.get('design', 'classifier')}\n")
    body = yaml.safe_dump({"cohort": cohort, **rest}, sort_keys=False, default_flow_style=None, width=110)
    return head + study + body


def _manifest_text(template: dict) -> str:
    cohort = template.get("cohort", {})
    columns = list(cohort.get("image_columns", ["image"]))
    mask = cohort.get("mask_column")
    label = cohort.get("label_column", "label")
    header = ["case_id", "patient_id", label, *columns, *([mask] if mask else []), "set",
              *cohort.get("covariates", [])]
    rows = []
    for i, value in ((1, cohort.get("positive", "1")), (2, cohort.get("negative", "0"))):
        cells = [f"case{i:03d}", f"P{i:03d}", str(value), *(f"images/case{i:03d}_{c}.png" for c in columns),
                 *([f"masks/case{i:03d}.nii.gz"] if mask else []), ""]
        rows.append(cells + [""] * len(cohort.get("covariates", [])))
    return "\n".join(",".join(r) for r in [header, *rows]) + "\n"


def scaffold_study(name: str, *, template: str = "nec", folder: str | Path | None = None,
                   root: Path | None = None) -> Scaffold:
    """Write a new study's params, example manifest and README into ``folder`` (default ``./NAME``).

    Args:
        name: the study's short name (``study.name``; the params file and the report are named after it).
        template: the built-in study whose settings (design, image size, models, training) are copied.
        folder: where to write (must not exist, or be empty).
        root: the workspace the run's outputs go under (default :func:`medlib.resources.workspace`).

    Raises:
        ValueError: a name that cannot be a study name. FileNotFoundError: an unknown template.
        FileExistsError: the folder exists and is not empty.
    """
    if not _NAME.fullmatch(name):
        raise ValueError(f"study name {name!r}: expected at most 64 letters, digits, '_' and '-', starting with a "
                         f"letter or digit (it names the params file, the report and runs/<name>/)")
    data = _template(template)
    out = Path(folder) if folder is not None else Path(name)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} already exists and is not empty; choose another name or --dir")
    root = root or workspace()
    out.mkdir(parents=True, exist_ok=True)
    params, manifest, readme = out / f"{name}.yaml", out / "manifest.csv", out / "README.md"
    params.write_text(_params_text(name, data), encoding="utf-8")
    manifest.write_text(_manifest_text(data), encoding="utf-8")
    cohort = data.get("cohort", {})
    runs, reports = root / str(data.get("runs_dir", "runs")), root / "reports"
    readme.write_text(_README.format(
        name=name, template=template, label=cohort.get("label_column", "label"),
        positive=cohort.get("positive", "1"), negative=cohort.get("negative", "0"),
        columns=", ".join(f"`{c}`" for c in cohort.get("image_columns", ["image"])),
        params=display_path(params.resolve(), root=Path.cwd()), runs=display_path(runs, root=root),
        reports=display_path(reports, root=root)), encoding="utf-8")
    return Scaffold(folder=out, params=params, manifest=manifest, readme=readme,
                    report=reports / f"{name}.ipynb", runs=runs / name)
