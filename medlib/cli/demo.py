"""``medlib demo``: every built-in study on its synthetic cohort, then the site, the PDFs and the manuscripts.

The studies run in lanes: ``--jobs`` spawned processes, each limited to ``cores // jobs`` threads
(``medlib.threads.limit_threads``; the notebook kernels inherit the limit), taking the studies in the order of
``DEMO_STUDIES``. A lane first writes its study's synthetic cohort when ``<data>/<study>/manifest.csv`` is
missing (``medlib.synth.generate``: renamed into place only when complete), then runs the study. When a study
finishes, the building of its manuscript is queued on the same lanes, so a lane that is done with its studies
builds manuscripts while the other still trains; the site is rendered when the last study is done, beside the
manuscripts still being built (``medlib.render.site.render_reports``).

Each lane prints its steps and progress as plain lines prefixed with the study and its elapsed time
(``[nec 01:23] ...``). What could stop the demo half-way is refused before any lane starts: ``--jobs`` below
one, an unknown study, a cohort folder that holds something other than a cohort.
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from medlib.progress import Console

if TYPE_CHECKING:
    from medlib.cli.runner import StudyRun

__all__ = ["DEMO_STUDIES", "DemoLane", "run_demo"]

#: The order the lanes take the studies: with two lanes, the two longest start first, and the two shorter ones
#: follow on whichever lane is free (glioma then NEC on one, ONFH then ICH on the other, on 2 cores).
DEMO_STUDIES = ("onfh", "glioma", "ich", "nec")


@dataclass(frozen=True)
class DemoLane:
    """What one study's lane did: the study's run (``medlib.cli.runner.StudyRun``) and the seconds spent
    writing its synthetic cohort (0 when it was there)."""

    run: StudyRun
    cohort_seconds: float


def lane_pool(workers: int):
    """A pool of ``workers`` spawned processes, each limited to ``cores // workers`` threads."""
    import os
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from medlib.threads import limit_threads

    return ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=limit_threads,
                               initargs=(max(1, (os.cpu_count() or 1) // workers),))


def write_cohort(study: str, data: Path, scale: float) -> float:
    """Write the synthetic cohort of ``study`` into ``data/<study>/``; returns the seconds it took."""
    from medlib import synth

    start = time.perf_counter()
    synth.generate(study, data, seed=0, scale=scale)
    return time.perf_counter() - start


def _lane(study: str, params: Path, reports: str, quiet: bool, data: Path, scale: float) -> DemoLane:
    """One study in its lane: its cohort when missing, then the study, progress lines prefixed by the study."""
    from medlib.cli.runner import run_study

    console = Console(quiet=quiet, lane=study)
    cohort_seconds = 0.0
    if not (data / study / "manifest.csv").is_file():
        with console.step(f"wrote the synthetic cohort into {data / study}"):
            cohort_seconds = write_cohort(study, data, scale)
    run = run_study(study, params=params, reports_dir=reports, console=console,
                    overrides=[f"cohort.manifest={data / study / 'manifest.csv'}"])
    return DemoLane(run=run, cohort_seconds=cohort_seconds)


def _manuscript(study: str, reports: str, out: Path) -> tuple[Path, ...]:
    """Build the manuscript of ``reports/<study>.ipynb`` into ``out`` (``medlib.render.manuscript``)."""
    from medlib.render.manuscript import render_manuscript

    return render_manuscript(study, reports, out)


def _params(study: str, smoke: bool) -> Path:
    """The built-in params file of a demo study (``params/smoke/`` with ``--smoke``)."""
    return Path("params") / ("smoke" if smoke else "") / f"{study}.yaml"


def check_cohort_folders(studies: Sequence[str], data: Path) -> None:
    """Refuse, before any lane starts, a ``data/<study>`` folder that is not empty and holds no ``manifest.csv``:
    the demo would neither read it nor write over it."""
    for study in studies:
        folder = data / study
        if (folder.exists() and not (folder / "manifest.csv").is_file()
                and (not folder.is_dir() or any(folder.iterdir()))):
            raise FileExistsError(f"{folder} exists but holds no manifest.csv, so it is not a synthetic cohort the "
                                  f"demo can use or write; move it away or pass another --data folder")


def run_studies(studies: Sequence[str], *, smoke: bool, reports: str, jobs: int, quiet: bool, data: Path,
                scale: float, manuscripts: Path | None = None) -> tuple[list[DemoLane], dict[str, Future]]:
    """Run ``studies`` in ``jobs`` lanes (see the module docstring).

    With ``manuscripts`` (a folder) and more than one lane, each finished study's manuscript is queued on the
    lanes and built into ``manuscripts/<study>/``.

    Returns:
        Each study's ``DemoLane`` in the order of ``studies``, and the manuscripts' futures by study (their
        results: the HTML, PDF and DOCX built). The first study that fails raises its error, after the lanes
        already running have finished (their reports are kept); studies not yet started are cancelled.
    """
    from medlib.resources import display_path

    calls = {study: _params(study, smoke) for study in studies}
    lanes = min(jobs, len(calls))

    def finished(lane: DemoLane) -> DemoLane:
        print(f"{lane.run.study}: report {display_path(lane.run.report)} ({lane.run.seconds:.0f} s)", flush=True)
        return lane

    if lanes < 2:
        return [finished(_lane(study, params, reports, quiet, data, scale)) for study, params in calls.items()], {}
    pool = lane_pool(lanes)
    try:
        running = {pool.submit(_lane, study, params, reports, quiet, data, scale): study
                   for study, params in calls.items()}
        done, built = {}, {}
        while running:
            ended, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in ended:
                study = running.pop(future)
                lane = done[study] = finished(future.result())
                if manuscripts is not None:
                    built[study] = pool.submit(_manuscript, lane.run.report.stem, reports,
                                               manuscripts / lane.run.report.stem)
        return [done[study] for study in studies], built
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=False)  # the queued manuscripts go on; their futures are waited on by the render


def run_demo(studies: Sequence[str], *, data: Path, reports: str, jobs: int, smoke: bool, scale: float,
             console: Console) -> int:
    """The whole demo (see the module docstring): lanes, the site, the targets and the time per step."""
    import shutil
    import tempfile

    from medlib.cli.targets import demo_targets, format_targets, write_targets
    from medlib.render.site import render_reports
    from medlib.resources import display_path, find_params

    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1; got {jobs}")
    for study in studies:
        find_params(_params(study, smoke))  # an unknown study: refused here, listing the built-in ones
    check_cohort_folders(studies, data)
    start = time.perf_counter()
    Path(reports).mkdir(parents=True, exist_ok=True)
    aside = Path(tempfile.mkdtemp(prefix=".manuscripts-demo-", dir=reports))
    built: dict[str, Future] = {}
    try:
        lanes, built = run_studies(studies, smoke=smoke, reports=reports, jobs=jobs, quiet=console.quiet,
                                   data=data, scale=scale, manuscripts=aside)
        studies_s = time.perf_counter() - start
        t0 = time.perf_counter()
        with console.step("rendered the reports"):
            rendered = render_reports(reports, Path(reports) / "_site", built_manuscripts=built)
        render_s = time.perf_counter() - t0
    finally:
        for future in built.values():
            future.cancel()
        wait(list(built.values()))  # none still writing into the folder removed next
        shutil.rmtree(aside, ignore_errors=True)
    runs = [lane.run for lane in lanes]
    timings = [("synthetic cohorts (in the lanes)", sum(lane.cohort_seconds for lane in lanes))]
    timings += [(r.study, r.seconds) for r in runs]
    timings += [(f"cohorts and studies ({min(jobs, len(studies))} at a time)", studies_s), ("render", render_s),
                ("total", time.perf_counter() - start)]
    print(rendered.summary() if hasattr(rendered, "summary") else rendered)
    targets = demo_targets({r.study: r.run_dir for r in runs if r.run_dir is not None})
    written = write_targets(targets, Path(reports) / "demo-targets.json", seconds=dict(timings))
    print("\n" + format_targets(targets) + f"\n(written to {display_path(written)})")
    if not console.quiet:
        print("\nTime per step:")
        for name, seconds in timings:
            print(f"  {name:<36} {seconds:7.1f} s")
    return 0
