"""Multi-GPU training of a study with ``torchrun`` (DistributedDataParallel), one process per GPU; gloo on the CPU.

Launch a study's CNNs on every GPU of a machine::

    torchrun --standalone --nproc_per_node=4 -m medlib.pipelines.torchrun --params params/nec.yaml \\
        --run-dir runs/nec/ddp-1 [-p train.epochs=50 ...] [--resume]

Every process loads the config (``train.distributed`` is switched on), joins the process group that torchrun
describes in its environment (``medlib.learn.ddp.init_from_env``), and trains every configured model with the
image-classifier pipeline, whose ``medlib.learn.train.fit`` shards each epoch across the processes. Rank 0 alone
writes: it prepares the cohort and split once and sends them to the other ranks, preprocesses the images into
the cache before the others read it, and writes ``config.yaml``, ``split.csv``, the checkpoints,
``predictions.csv`` and ``provenance.json`` into the run folder. The study's notebook then reports on the
trained models: ``medlib run <study> --resume runs/<study>/<id>`` (finished checkpoints are loaded, not
trained again).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import torch.distributed as dist

from medlib.learn.ddp import barrier, cleanup, from_main, init_from_env, is_initialized, is_main
from medlib.pipelines.classifier import device_name, load_tensors, model_inputs, train_models
from medlib.pipelines.prepare import load_study, prepare


@dataclass(frozen=True)
class _CheckpointPaths:
    """The run folder as ranks other than 0 see it: the checkpoint folders rank 0 made, nothing created."""

    paths: Mapping[str, str]

    def checkpoint_dir(self, model_name: str) -> Path:
        return Path(self.paths[model_name])


def _open_run(cfg, run_dir: str | None, *, resume: bool):
    from medlib.runs.folder import new_run, open_run

    if resume:
        if not run_dir:
            raise ValueError("--resume needs --run-dir: the run folder whose checkpoints to continue from")
        return open_run(run_dir)
    if not run_dir:
        return new_run(cfg.study.name, runs_dir=cfg.runs_dir)
    path = Path(run_dir)
    if path.exists():
        raise FileExistsError(f"run folder {path} exists: pass --resume to continue it, or choose a new --run-dir")
    return new_run(path.parent.name, runs_dir=path.parent.parent, run_id=path.name)


def _prepare_on_main(cfg, run):
    """Rank 0: the cohort and split (as ``medlib.pipelines.prepare.prepare``), config and split written, images
    cached."""
    prepared = prepare(cfg)
    run.write_config(cfg)
    run.write_split(prepared.split.table)
    for columns in dict.fromkeys(tuple(model_inputs(cfg, m)) for m in cfg.models):
        load_tensors(cfg, prepared, columns)  # fills the preprocessing cache before other ranks read it
    paths = {m.display_name: str(run.checkpoint_dir(m.display_name)) for m in cfg.models}
    return prepared, paths


def train_study(cfg, *, run_dir: str | None = None, resume: bool = False, progress: bool | None = None) -> Path:
    """Train every configured CNN of a study with DDP; every rank of the process group calls this.

    Rank 0 creates (or, with ``resume``, reopens) the run folder, prepares the cohort and split exactly as
    ``medlib.pipelines.prepare.prepare`` does and sends them to the other ranks; then every rank runs
    ``medlib.pipelines.classifier.train_models`` (``cfg.train.distributed`` must be on) and rank 0 writes ``predictions.csv``
    and ``provenance.json``. Other ranks write nothing.

    Args:
        cfg: the ``StudyConfig``.
        run_dir: ``runs/<study>/<id>``; None = a new timestamped run under ``cfg.runs_dir``.
        resume: continue the run folder's checkpoints (an existing ``run_dir``).
        progress: tqdm bars on rank 0; None = as ``medlib.learn.train.fit`` decides.

    Returns:
        The run folder.

    Raises:
        ValueError: ``cfg.train.distributed`` is off, or ``resume`` without ``run_dir``.
        FileExistsError: a new run's folder exists. FileNotFoundError: a resumed run's folder does not.
    """
    from medlib.runs.folder import collect_provenance

    if not cfg.train.distributed:
        raise ValueError("train_study trains with DDP: set train.distributed: true")
    started = time.perf_counter()
    run = None

    def setup():
        nonlocal run
        run = _open_run(cfg, run_dir, resume=resume)
        return (run.path, *_prepare_on_main(cfg, run))

    path, prepared, paths = from_main(setup)
    results = train_models(cfg, prepared, run if is_main() else _CheckpointPaths(paths), resume=resume,
                                 progress=progress)
    if is_main():
        run.write_predictions(results.predictions)
        world = dist.get_world_size() if is_initialized() else 1
        durations = {**{f"train {m}": s for m, s in results.seconds.items()},
                     "total": time.perf_counter() - started}
        run.write_provenance(collect_provenance(
            seeds={"split": cfg.split.seed, "train": cfg.train.seed}, cohort_hash=prepared.cohort.hash,
            split_hash=prepared.split.hash, durations=durations,
            device=f"{world} processes (DDP): {device_name(cfg)}"))
    barrier()
    return Path(path)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="torchrun --nproc_per_node=N -m medlib.pipelines.torchrun",
                                     description="Train a study's CNNs with DistributedDataParallel, one "
                                                 "process per GPU (gloo on the CPU).")
    parser.add_argument("--params", required=True, help="the study's params file, e.g. params/nec.yaml")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. -p train.epochs=50 (repeatable)")
    parser.add_argument("--run-dir", default=None,
                        help="run folder runs/<study>/<id> (default: a new timestamped one under runs_dir)")
    parser.add_argument("--resume", action="store_true", help="continue the checkpoints in --run-dir")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``torchrun -m medlib.pipelines.torchrun`` entry point; returns the exit status (0)."""
    from medlib.learn.train import resolve_device

    args = _parser().parse_args(argv)
    cfg = load_study(args.params, [*args.param, "train.distributed=true"])
    cpu = resolve_device(cfg.train.device).type == "cpu"
    info = init_from_env(backend="gloo" if cpu else None)
    try:
        path = train_study(cfg, run_dir=args.run_dir, resume=args.resume,
                           progress=False if args.no_progress else None)
        if info.rank == 0:
            print(f"{cfg.study.name}: {len(cfg.models)} model(s) trained on {info.world_size} processes "
                  f"({info.backend}) into {path}", flush=True)
    finally:
        cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
