"""The ``medlib`` command: ``new``, ``synth``, ``run``, ``sweep``, ``render``, ``manuscript``, ``demo``, ``bench``.

Errors print one line on stderr (``--debug`` shows the traceback) and set the exit code: 0 ok, 2 bad input
(params, manifest, images, arguments: found before any long work), 1 a failure while working, 130 interrupted.
Progress and one summary line per finished step go to stdout (live bars on stderr when on a terminal);
``--quiet`` prints only the result and errors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from medlib.cli.demo import DEMO_STUDIES
from medlib.cli.help import EPILOG, EXAMPLES, exit_code
from medlib.progress import Console


def _console(args: argparse.Namespace, **kwargs) -> Console:
    return Console(quiet=getattr(args, "quiet", False), **kwargs)


def _cmd_new(args: argparse.Namespace) -> int:
    from medlib.cli.new import scaffold_study
    from medlib.resources import display_path

    made = scaffold_study(args.name, template=args.template, folder=args.dir)
    print(f"created {made.folder}/: {made.params.name} (params: write its study: section), {made.manifest.name} "
          f"(example manifest: one row per case), {made.readme.name}")
    print(f"next: fill them in, then  medlib run -f {made.params}")
    print(f"the report will be {display_path(made.report, root=Path.cwd())}, the run folders "
          f"{display_path(made.runs, root=Path.cwd())}/<run-id>/")
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from medlib import synth

    console = _console(args)
    studies = args.studies or list(DEMO_STUDIES)
    for study in studies:
        with console.step(f"synthetic {study} cohort") as step:
            manifest = synth.generate(study, Path(args.out), seed=args.seed, scale=args.scale,
                                      overwrite=args.overwrite)
            step["detail"] = str(manifest)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from medlib.cli.runner import run_study
    from medlib.resources import display_path

    console = _console(args)
    result = run_study(args.study, params=args.params, overrides=args.param or (), run_id=args.run_id or "",
                       resume=args.resume or "", reports_dir=args.reports, console=console)
    shown = display_path(result.run_dir) if result.run_dir else "?"
    print(f"{result.study}: report {display_path(result.report)} ({result.seconds:.0f} s); run folder {shown}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from medlib.cli.sweep import load_sweep, run_sweep, write_summary

    sweep = load_sweep(args.grid)
    if sweep.study != args.study:
        raise ValueError(f"{args.grid} is a sweep of study {sweep.study!r}, not {args.study!r}")
    out = Path(args.out) / sweep.study / sweep.name
    status = run_sweep(sweep, out, scheduler=args.scheduler, workers=args.workers)
    page = write_summary(sweep, out, Path(args.reports))
    failed = status[status["status"] != "done"]
    print(f"{len(status) - len(failed)} of {len(status)} runs done; summary: {page}")
    for _, row in failed.iterrows():
        print(f"  {row['config_id']}: {row['status']} {row['error']}")
    return 0 if failed.empty else 1


def _cmd_render(args: argparse.Namespace) -> int:
    from medlib.render.site import render_reports

    result = render_reports(args.reports, args.out, pdf=not args.no_pdf, manuscripts=not args.no_manuscripts,
                            benchmarks=args.benchmarks)
    print(result.summary())
    return 0


def _cmd_manuscript(args: argparse.Namespace) -> int:
    from medlib.render.manuscript import render_manuscript

    files = render_manuscript(args.study, args.reports, args.out)
    print("\n".join(str(f) for f in files))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from medlib.cli.demo import run_demo

    data = Path(args.data or ("data/smoke" if args.smoke else "data/synth")).resolve()
    return run_demo(list(args.studies or DEMO_STUDIES), data=data, reports=args.reports, jobs=args.jobs,
                    smoke=args.smoke, scale=args.scale, console=_console(args))


def _cmd_bench(args: argparse.Namespace) -> int:
    import importlib.util

    for path in sorted(Path("benchmarks").glob("bench_*.py")):
        if args.only and not any(key in path.stem for key in args.only):
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"\n== {path.stem} ==", flush=True)
        module.run()
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("medlib")
    except PackageNotFoundError:  # a checkout on sys.path without an install
        from medlib import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medlib", description=__doc__.splitlines()[0], epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"medlib {_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress or step lines; only the result "
                                                                    "and errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("new", help="scaffold a study of your own: params with a study: section, a manifest")
    p.add_argument("name", help="the study's short name (letters, digits, '_', '-'): NAME/NAME.yaml, "
                                "reports/NAME.ipynb, runs/NAME/")
    p.add_argument("--from", dest="template", default="nec", metavar="STUDY",
                   help="the built-in study whose settings are copied (default nec)")
    p.add_argument("--dir", help="where to write (default ./NAME; must not exist or be empty)")
    p.set_defaults(func=_cmd_new)

    p = sub.add_parser("synth", help="write the synthetic demo cohorts (DICOM/NIfTI + manifest)")
    p.add_argument("studies", nargs="*", help=f"studies to generate (default: {' '.join(DEMO_STUDIES)})")
    p.add_argument("--out", default="data/synth")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=float, default=1.0, help="multiply the number of patients")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("run", help="execute the study notebook with papermill into reports/<params name>.ipynb")
    p.add_argument("study", nargs="?", help="a built-in study (params/STUDY.yaml); optional with -f")
    p.add_argument("-f", "--params", help="params file (default params/STUDY.yaml); the report is named after it")
    p.add_argument("-p", "--param", action="append", metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--run-id")
    p.add_argument("--resume", metavar="RUN", help="continue an interrupted run from its checkpoints")
    p.add_argument("--reports", default="reports")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("sweep", help="run a grid of configurations on Dask and aggregate them")
    p.add_argument("study")
    p.add_argument("--grid", required=True, help="grid YAML (see medlib/cli/sweep.py)")
    p.add_argument("--scheduler", help="address of an existing Dask scheduler (default: a local cluster)")
    p.add_argument("--workers", type=int, help="local worker processes (default: cores)")
    p.add_argument("--out", default="sweeps")
    p.add_argument("--reports", default="reports")
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("render", help="render the executed notebooks with Quarto: the site, PDFs and manuscripts")
    p.add_argument("--reports", default="reports")
    p.add_argument("--out", default="reports/_site")
    p.add_argument("--no-pdf", action="store_true", help="HTML pages only")
    p.add_argument("--no-manuscripts", action="store_true", help="skip the manuscripts (HTML, PDF, DOCX per study)")
    p.add_argument("--benchmarks", default="benchmarks/results", help="executed benchmark notebooks to publish too")
    p.set_defaults(func=_cmd_render)

    p = sub.add_parser("manuscript", help="build one study's manuscript (HTML, PDF, DOCX) with Quarto")
    p.add_argument("study", help="the report's name: reports/STUDY.ipynb")
    p.add_argument("--reports", default="reports")
    p.add_argument("--out", help="output folder (default REPORTS/_site/manuscripts/STUDY)")
    p.set_defaults(func=_cmd_manuscript)

    p = sub.add_parser("demo", help="synthetic cohorts → every study → rendered reports")
    p.add_argument("studies", nargs="*")
    p.add_argument("--data", default=None, help="where the synthetic cohorts are (written when missing); "
                   "default data/synth, or data/smoke with --smoke")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--smoke", action="store_true", help="use params/smoke/*.yaml (tiny, for tests)")
    p.add_argument("--reports", default="reports")
    p.add_argument("--jobs", type=int, default=2,
                   help="studies run at a time, each with cores/jobs torch threads (default 2; 1 = one by one)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("bench", help="run every benchmark in benchmarks/ and print figures and ratios")
    p.add_argument("only", nargs="*", help="substrings of benchmark names to run")
    p.set_defaults(func=_cmd_bench)
    _finish_subparsers(sub)
    return parser


def _finish_subparsers(sub: argparse._SubParsersAction) -> None:
    """Every command: its examples and the exit codes under ``--help``, and ``--quiet``/``--debug`` accepted
    after the command too (``medlib run nec --quiet``)."""
    for name, p in sub.choices.items():
        p.formatter_class = argparse.RawDescriptionHelpFormatter
        p.description = p.description or next((a.help for a in sub._choices_actions if a.dest == name), None)
        p.epilog = "examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES.get(name, ())) + "\n\n" + EPILOG
        p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress lines")
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")


def one_line(err: BaseException) -> str:
    """The error's message on one line (a manifest's list of bad rows joined with ' | '); KeyError unquoted."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines) or type(err).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 2 bad input, 1 failure, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    if not args.debug:
        from medlib.progress import plain_warnings

        plain_warnings()  # one line each, no path of this machine
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("medlib: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # the CLI boundary: one line for the user, the traceback with --debug
        if args.debug:
            raise
        print(f"medlib {args.command}: {type(err).__name__}: {one_line(err)}", file=sys.stderr)
        return exit_code(err)


if __name__ == "__main__":
    sys.exit(main())
