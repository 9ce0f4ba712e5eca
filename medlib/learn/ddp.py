"""Process-group helpers for DistributedDataParallel training (one process per GPU; gloo on the CPU).

``medlib.learn.train.fit`` uses them: ``shard_indices`` gives each rank its share of an epoch,
``all_gather_predictions`` puts the shards back together and ``from_main`` runs a step on rank 0 and hands its
result to every rank. Outside a process group ``is_main`` is true and ``barrier`` does nothing, so single-process
code can call them. ``training_group``, ``wrap``, ``broadcast_buffers`` and ``mean_over_ranks`` are the steps
``fit`` takes around its loop when ``train.distributed`` is set. The ``torchrun`` entry point that trains a whole
study is ``medlib.pipelines.torchrun``; it wraps the loop and is never imported by it (nor by this module).
"""

from __future__ import annotations

import math
import os
import pickle
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T")
ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
LAUNCH_HINT = ("torchrun --nproc_per_node=N -m medlib.pipelines.torchrun --params params/<study>.yaml "
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


# ------------------------------------------------------------------------------------------ fit's steps
@dataclass
class DdpRank:
    """This process's part in a DistributedDataParallel ``fit``.

    Attributes:
        wrapped: the DistributedDataParallel wrapper (the trainer keeps the plain module).
        rank: this process, 0 .. world_size - 1.
        world_size: processes in the group.
    """

    wrapped: nn.Module
    rank: int
    world_size: int


def training_group(enabled: bool, n_train: int) -> tuple[int, int] | None:
    """``(rank, world_size)`` when ``enabled`` (``train.distributed``) and the process group has more than one
    process; None otherwise (one process trains alone).

    Args:
        enabled: ``TrainConfig.distributed``.
        n_train: training cases, shared by the processes.

    Raises:
        RuntimeError: ``enabled`` without an initialised ``torch.distributed`` process group.
        ValueError: fewer than 2 training cases per process.
    """
    if not enabled:
        return None
    if not is_initialized():
        raise RuntimeError("train.distributed is true but no torch.distributed process group is initialised: "
                           "launch with `torchrun --nproc_per_node=N -m medlib.pipelines.torchrun --params "
                           "params/<study>.yaml`, or call medlib.learn.ddp.init_from_env() in every process "
                           "first; set train.distributed: false to train in one process")
    rank, world = dist.get_rank(), dist.get_world_size()
    if world == 1:
        return None
    if math.ceil(n_train / world) < 2:
        raise ValueError(f"{n_train} training cases cannot be shared by {world} processes: each needs at "
                         f"least 2 per epoch")
    return rank, world


def wrap(model: nn.Module, device: torch.device, group: tuple[int, int]) -> DdpRank:
    """Wrap ``model`` (already on ``device``) in DistributedDataParallel, which sends rank 0's weights to every
    rank; ``group`` is ``(rank, world_size)`` from :func:`training_group`."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    wrapped = DistributedDataParallel(model, device_ids=ids, output_device=ids[0] if ids else None)
    return DdpRank(wrapped, *group)


def broadcast_buffers(model: nn.Module) -> None:
    """Give every rank rank 0's buffers (BatchNorm statistics of each rank's last batch differ), in place."""
    device = comm_device()
    for buffer in model.buffers():
        synced = buffer.to(device)
        dist.broadcast(synced, src=0)
        buffer.copy_(synced)


def mean_over_ranks(value: float, world_size: int) -> float:
    """The mean of ``value`` over the ``world_size`` ranks (summed in float64 on every rank)."""
    total = torch.tensor([value], dtype=torch.float64, device=comm_device())
    dist.all_reduce(total)
    return float(total) / world_size
