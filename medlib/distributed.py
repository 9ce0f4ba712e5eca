"""Multi-GPU training with ``torchrun`` (DistributedDataParallel), one process per GPU; gloo on the CPU.

Launch a study's CNNs on every GPU of a machine::

    torchrun --standalone --nproc_per_node=4 -m medlib.distributed --params params/nec.yaml \\
        --run-dir runs/nec/ddp-1 [-p train.epochs=50 ...] [--resume]

Every process loads the config (``train.distributed`` is switched on), joins the process group that torchrun
describes in its environment (``init_from_env``), and trains every configured model with
``medlib.study.train_models``, whose ``medlib.train.fit`` shards each epoch across the processes. Rank 0 alone
writes: it prepares the cohort and split once and sends them to the other ranks, preprocesses the images into
the cache before the others read it, and writes ``config.yaml``, ``split.csv``, the checkpoints,
``predictions.csv`` and ``provenance.json`` into the run folder. The study's notebook then reports on the
trained models: ``medlib run <study> --resume runs/<study>/<id>`` (finished checkpoints are loaded, not
trained again).

The helpers (``shard_indices``, ``all_gather_predictions``, ``from_main``) are what ``fit`` uses; outside a
process group ``is_main`` is true and ``barrier`` does nothing, so single-process code can call them.
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")
ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
LAUNCH_HINT = ("torchrun --nproc_per_node=N -m medlib.distributed --params params/<study>.yaml "
               "--run-dir runs/<study>/<id>")


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the group.

    Attributes:
        rank: 0 .. world_size - 1 over all machines; rank 0 writes.
        world_size: processes in the group.
        local_rank: the process's index on its machine (its GPU).
        device: ``cuda:<local_rank>`` with NCCL, else the CPU.
        backend: ``"nccl"`` or ``"gloo"``.
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str


def init_from_env(*, backend: str | None = None) -> DistInfo:
    """Join the process group that torchrun describes in the environment.

    Reads ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` (torchrun sets them). The
    backend is NCCL when CUDA is available, else gloo; with NCCL the process's GPU becomes
    ``cuda:LOCAL_RANK``. A group that is already initialised is joined as it is.

    Args:
        backend: ``"nccl"`` or ``"gloo"``; None = by CUDA availability.

    Returns:
        ``DistInfo``.

    Raises:
        KeyError: a variable is missing (not started by torchrun).
        ValueError: an unknown backend. RuntimeError: NCCL without a GPU for this ``LOCAL_RANK``.
    """
    missing = [k for k in ENV_VARS if k not in os.environ]
    if missing:
        raise KeyError(f"environment lacks {missing}: start every process with torchrun, e.g. `{LAUNCH_HINT}`")
    rank, world, local = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend not in ("nccl", "gloo"):
        raise ValueError(f"Unknown backend {backend!r}. Expected 'nccl' or 'gloo'")
    device = torch.device("cpu")
    if backend == "nccl":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if local >= count:
            raise RuntimeError(f"LOCAL_RANK {local} needs GPU cuda:{local} but this machine has {count}; start "
                               f"at most {count} processes per machine (--nproc_per_node), or use gloo")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend, init_method="env://", rank=rank, world_size=world)
    return DistInfo(rank=rank, world_size=world, local_rank=local, device=device, backend=dist.get_backend())


def is_initialized() -> bool:
    """Whether this process belongs to an initialised ``torch.distributed`` process group."""
    return dist.is_available() and dist.is_initialized()


def is_main() -> bool:
    """True on rank 0, and in a process outside any process group."""
    return not is_initialized() or dist.get_rank() == 0


def barrier() -> None:
    """Wait for every rank (a no-op outside a process group)."""
    if is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def cleanup() -> None:
    """Leave the process group (a no-op outside one)."""
    if is_initialized():
        dist.destroy_process_group()


def local_device() -> torch.device:
    """This process's GPU: ``cuda:LOCAL_RANK`` (the current CUDA device when ``LOCAL_RANK`` is unset)."""
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", torch.cuda.current_device())))


def comm_device() -> torch.device:
    """Where tensors for collectives must live: this process's GPU with NCCL, else the CPU."""
    return local_device() if dist.get_backend() == "nccl" else torch.device("cpu")


def shard_indices(n: int, rank: int, world_size: int, *, generator: torch.Generator | None) -> torch.Tensor:
    """This rank's share of one pass over ``n`` cases, as ``torch.utils.data.DistributedSampler`` makes it.

    A permutation of ``range(n)`` drawn from ``generator`` (``None``: case order) is padded to a multiple of
    ``world_size`` by repeating its start, and rank ``r`` takes every ``world_size``-th index from position
    ``r``. The shares are equal in size (``ceil(n / world_size)``), together cover every case, and are disjoint
    when ``world_size`` divides ``n``; otherwise the ``world_size - n % world_size`` padded cases are seen
    twice. Generators in the same state on every rank give every rank the same permutation, so the shares
    fit together.

    Args:
        n: cases.
        rank: this process, ``0 <= rank < world_size``.
        world_size: processes.
        generator: a CPU ``torch.Generator`` (consumed as ``torch.randperm(n)`` consumes it), or None.

    Returns:
        int64 tensor of ``ceil(n / world_size)`` case indices.

    Raises:
        ValueError: ``n < 1``, ``world_size < 1`` or a rank outside ``[0, world_size)``.

    Example:
        >>> shard_indices(5, 1, 2, generator=None).tolist()
        [1, 3, 0]
    """
    if n < 1:
        raise ValueError(f"n must be >= 1; got {n}")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size; got rank {rank}, world_size {world_size}")
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    total = math.ceil(n / world_size) * world_size
    if total > n:
        order = order.repeat(math.ceil(total / n))[:total]
    return order[rank:total:world_size]


def all_gather_predictions(local: torch.Tensor, n: int) -> torch.Tensor:
    """Put every rank's rows for its ``shard_indices(n, ..., generator=None)`` share back together.

    Every rank passes the rows (logits, scores) it computed for its share, in that share's order; every rank
    gets all ``n`` rows in case order, padding dropped.

    Args:
        local: ``[ceil(n / world_size), ...]``, the same shape on every rank.
        n: cases in the whole set.

    Returns:
        ``[n, ...]`` on ``local``'s device.

    Raises:
        RuntimeError: no process group. ValueError: ``local`` has the wrong number of rows.
    """
    if not is_initialized():
        raise RuntimeError("all_gather_predictions needs an initialised process group (init_from_env)")
    world = dist.get_world_size()
    if local.shape[0] != math.ceil(n / world):
        raise ValueError(f"local must hold ceil({n} / {world}) = {math.ceil(n / world)} rows, one per case of "
                         f"this rank's shard; got shape {tuple(local.shape)}")
    device = comm_device()
    parts = [torch.empty_like(local, device=device) for _ in range(world)]
    dist.all_gather(parts, local.detach().to(device).contiguous())
    return torch.stack(parts, dim=1).flatten(0, 1)[:n].to(local.device)


def from_main(fn: Callable[[], T]) -> T:
    """Call ``fn`` on rank 0 only and hand its result to every rank (pickled), or raise its error on every rank.

    Outside a process group ``fn`` is simply called. Every rank must call ``from_main`` at the same point.

    Raises:
        Whatever ``fn`` raised on rank 0 (as ``RuntimeError`` when the exception cannot be pickled).
    """
    if not is_initialized():
        return fn()
    box: list[Any] = [None]
    if dist.get_rank() == 0:
        try:
            box = [(True, fn())]
        except Exception as err:  # sent to every rank and raised there, so no rank waits forever
            try:
                pickle.dumps(err)
            except Exception:
                err = RuntimeError(f"{type(err).__name__}: {err}")
            box = [(False, err)]
    device = comm_device() if dist.get_backend() == "nccl" else None
    dist.broadcast_object_list(box, src=0, device=device)
    ok, value = box[0]
    if not ok:
        raise value
    return value


# ------------------------------------------------------------------------------------------ torchrun entry
@dataclass(frozen=True)
class _CheckpointPaths:
    """The run folder as ranks other than 0 see it: the checkpoint folders rank 0 made, nothing created."""

    paths: Mapping[str, str]

    def checkpoint_dir(self, model_name: str) -> Path:
        return Path(self.paths[model_name])


def _open_run(cfg, run_dir: str | None, *, resume: bool):
    from medlib.rundir import new_run, open_run

    if resume:
        if not run_dir:
            raise ValueError("--resume needs --run-dir: the run folder whose checkpoints to continue from")
        return open_run(run_dir)
    if not run_dir:
        return new_run(cfg.study, runs_dir=cfg.runs_dir)
    path = Path(run_dir)
    if path.exists():
        raise FileExistsError(f"run folder {path} exists: pass --resume to continue it, or choose a new --run-dir")
    return new_run(path.parent.name, runs_dir=path.parent.parent, run_id=path.name)


def _prepare_on_main(cfg, run):
    """Rank 0: the cohort and split (as ``medlib.study.prepare``), config and split written, images cached."""
    from medlib import study

    prepared = study.prepare(cfg)
    run.write_config(cfg)
    run.write_split(prepared.split)
    for columns in dict.fromkeys(tuple(study.model_inputs(cfg, m)) for m in cfg.models):
        study.load_tensors(cfg, prepared, columns)  # fills the preprocessing cache before other ranks read it
    paths = {m.display_name: str(run.checkpoint_dir(m.display_name)) for m in cfg.models}
    return prepared, paths


def train_study(cfg, *, run_dir: str | None = None, resume: bool = False, progress: bool | None = None) -> Path:
    """Train every configured CNN of a study with DDP; every rank of the process group calls this.

    Rank 0 creates (or, with ``resume``, reopens) the run folder, prepares the cohort and split exactly as
    ``medlib.study.prepare`` does and sends them to the other ranks; then every rank runs
    ``medlib.study.train_models`` (``cfg.train.distributed`` must be on) and rank 0 writes ``predictions.csv``
    and ``provenance.json``. Other ranks write nothing.

    Args:
        cfg: the ``StudyConfig``.
        run_dir: ``runs/<study>/<id>``; None = a new timestamped run under ``cfg.runs_dir``.
        resume: continue the run folder's checkpoints (an existing ``run_dir``).
        progress: tqdm bars on rank 0; None = as ``medlib.train.fit`` decides.

    Returns:
        The run folder.

    Raises:
        ValueError: ``cfg.train.distributed`` is off, or ``resume`` without ``run_dir``.
        FileExistsError: a new run's folder exists. FileNotFoundError: a resumed run's folder does not.
    """
    from medlib import study
    from medlib.rundir import collect_provenance

    if not cfg.train.distributed:
        raise ValueError("train_study trains with DDP: set train.distributed: true")
    started = time.perf_counter()
    run = None

    def setup():
        nonlocal run
        run = _open_run(cfg, run_dir, resume=resume)
        return (run.path, *_prepare_on_main(cfg, run))

    path, prepared, paths = from_main(setup)
    results = study.train_models(cfg, prepared, run if is_main() else _CheckpointPaths(paths), resume=resume,
                                 progress=progress)
    if is_main():
        run.write_predictions(results.predictions)
        world = dist.get_world_size() if is_initialized() else 1
        durations = {**{f"train {m}": s for m, s in results.seconds.items()},
                     "total": time.perf_counter() - started}
        run.write_provenance(collect_provenance(
            seeds={"split": cfg.split.seed, "train": cfg.train.seed}, cohort_hash=prepared.cohort.hash,
            split_hash=prepared.split_hash, durations=durations,
            device=f"{world} processes (DDP): {study.device_name(cfg)}"))
    barrier()
    return Path(path)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="torchrun --nproc_per_node=N -m medlib.distributed",
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
    """The ``torchrun -m medlib.distributed`` entry point; returns the exit status (0)."""
    from medlib import study
    from medlib.train import resolve_device

    args = _parser().parse_args(argv)
    cfg = study.load_study(args.params, [*args.param, "train.distributed=true"])
    cpu = resolve_device(cfg.train.device).type == "cpu"
    info = init_from_env(backend="gloo" if cpu else None)
    try:
        path = train_study(cfg, run_dir=args.run_dir, resume=args.resume,
                           progress=False if args.no_progress else None)
        if info.rank == 0:
            print(f"{cfg.study}: {len(cfg.models)} model(s) trained on {info.world_size} processes "
                  f"({info.backend}) into {path}", flush=True)
    finally:
        cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
