"""Checkpoints of ``fit``: what is written after every epoch, read back on resume, and checked to belong to the run.

A checkpoint (``checkpoint.pt``) holds the model, optimizer, scheduler and scaler states, the torch, CUDA and
shuffling/augmentation RNG states and the run's progress (:class:`TrainState`: history, best weights and epoch,
early-stopping counter, process count), so a resumed run ends exactly where an uninterrupted one does (CPU).
``best_model.pt`` holds the best epoch's state dict alone. Files are written to a temporary name and renamed
(``os.replace``), and hold only tensors and plain types, so they load with ``torch.load(weights_only=True)``.

A checkpoint records ``meta`` (:func:`run_meta`: the training config without the fields that may change between
a run and its resume, and a hash of the training cases); resuming with another config, training set or process
count is an error, never a silent restart.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import math
import os
import pickle
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from medlib.data.tensors import CaseTensors
from medlib.learn import ddp as distributed

CHECKPOINT_NAME = "checkpoint.pt"   # everything needed to resume, rewritten every epoch
BEST_NAME = "best_model.pt"         # the best model's state dict alone
CHECKPOINT_FORMAT = 1
# config fields that may differ between a run and its resume (the process count is checked by TrainState)
_IGNORED_ON_RESUME = ("device", "threads", "distributed")


@dataclass
class TrainState:
    """Everything about a run's progress that a checkpoint must restore (besides modules and RNGs)."""

    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_auc: float = -math.inf   # NaN AUCs count as -inf
    best_loss: float = math.inf
    best_state: dict[str, torch.Tensor] | None = None
    bad_epochs: int = 0
    finished: bool = False
    stopped_early: bool = False
    world_size: int = 1           # processes that trained it (DistributedDataParallel); 1 = one process

    def improved(self, auc: float, loss: float) -> bool:
        """Higher validation AUC is better; at equal AUC (e.g. both 1.0 or both undefined) lower loss is."""
        key = -math.inf if math.isnan(auc) else auc
        return key > self.best_auc or (key == self.best_auc and loss < self.best_loss)


@dataclass
class Trainer:
    """The stateful pieces of one ``fit``: what a checkpoint saves besides ``TrainState``."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    scaler: torch.amp.GradScaler
    generator: torch.Generator
    device: torch.device


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of ``model``'s state dict on the CPU (the best weights kept in ``TrainState``)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary name beside ``path``, then ``os.replace`` (a crash never leaves half a file)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)  # never leave a partial temporary behind
        if shutil.disk_usage(path.parent).free < 2**20:  # torch reports a full disk as a RuntimeError
            raise OSError(errno.ENOSPC, f"disk full while writing checkpoint {path}; free space and resume") from err
        raise


def save_checkpoint(path: str | Path, trainer: Trainer, state: TrainState, *, meta: dict[str, Any]) -> None:
    """Write everything needed to resume to ``path`` atomically (temporary file, then ``os.replace``).

    Holds the model, optimizer, scheduler and scaler states, the torch, CUDA and shuffling/augmentation RNG
    states, the history, the best weights and epoch, the early-stopping counter and ``meta`` (the training
    config and a hash of the training cases). Only tensors and plain types, so ``weights_only`` loading works.
    """
    checkpoint = {
        "format": CHECKPOINT_FORMAT, "meta": meta, "model": cpu_state(trainer.model),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict() if trainer.scheduler is not None else None,
        "scaler": trainer.scaler.state_dict() if trainer.scaler.is_enabled() else {},
        "rng": {"torch": torch.get_rng_state(), "generator": trainer.generator.get_state(),
                "cuda": torch.cuda.get_rng_state_all() if trainer.device.type == "cuda" else []},
        "state": {f.name: getattr(state, f.name) for f in dataclasses.fields(TrainState)},
    }
    save_atomic(checkpoint, Path(path))


def load_checkpoint(path: str | Path, trainer: Trainer, *, meta: dict[str, Any], world_size: int = 1) -> TrainState:
    """Restore ``trainer`` (in place) and return the ``TrainState`` saved by ``save_checkpoint``.

    Args:
        path: the checkpoint.
        trainer: restored in place.
        meta: the run's training config and training-set hash; must match the checkpoint's.
        world_size: processes the resumed run uses; an unfinished run must resume with as many as it had.

    Raises:
        FileNotFoundError: no checkpoint at ``path``.
        ValueError: the checkpoint was written for another training config, training set or process count.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint to resume from: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise  # refused by weights_only: not a medlib checkpoint (the safe-loading tests expect this error)
    except (RuntimeError, EOFError) as err:
        raise ValueError(f"{path}: damaged checkpoint (truncated or corrupt: {err}); delete it to retrain "
                         "this model") from err
    return _restore(ckpt, trainer, path, meta=meta, world_size=world_size)


def _restore(ckpt: dict[str, Any], trainer: Trainer, path: Path, *, meta: dict[str, Any],
             world_size: int) -> TrainState:
    """Apply a loaded checkpoint to ``trainer`` after checking that it belongs to this run."""
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: checkpoint format {ckpt.get('format')!r}; expected {CHECKPOINT_FORMAT}")
    diff = {k: (ckpt["meta"].get(k), v) for k, v in meta.items() if ckpt["meta"].get(k) != v}
    if diff:
        shown = "; ".join(f"{k}: checkpoint {old!r} vs now {new!r}" for k, (old, new) in diff.items())
        raise ValueError(f"{path} was written by a different run ({shown}); resume with the same training "
                         f"config and data, or start afresh with resume=False")
    state = TrainState(**ckpt["state"])
    if not state.finished and state.world_size != world_size:
        raise ValueError(f"{path} was written by a run of {state.world_size} process(es) and is unfinished; "
                         f"resume it with {state.world_size} (torchrun --nproc_per_node={state.world_size}), "
                         f"not {world_size}, or start afresh with resume=False")
    trainer.model.load_state_dict(ckpt["model"])
    trainer.optimizer.load_state_dict(ckpt["optimizer"])
    if trainer.scheduler is not None:
        trainer.scheduler.load_state_dict(ckpt["scheduler"])
    if ckpt["scaler"]:
        trainer.scaler.load_state_dict(ckpt["scaler"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    trainer.generator.set_state(ckpt["rng"]["generator"])
    if trainer.device.type == "cuda" and ckpt["rng"]["cuda"]:
        torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
    return state


def run_meta(cfg, train: CaseTensors) -> dict[str, Any]:
    """What a checkpoint must share with the run resuming it: the training config (less ``device``, ``threads``
    and ``distributed``) and a hash of the training cases' ids."""
    config = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in _IGNORED_ON_RESUME}
    cases = hashlib.sha256("\n".join(train.case_id).encode()).hexdigest()[:16]
    return {"config": config, "train_cases": cases}


def start_state(trainer: Trainer, resume_dir: Path | None, meta: dict, group: tuple[int, int] | None,
                log: Callable[[str], None]) -> TrainState:
    """A fresh ``TrainState``, or the one in ``resume_dir``'s checkpoint (read by rank 0 and sent to all).

    Args:
        trainer: restored in place when a checkpoint is found.
        resume_dir: the folder holding ``checkpoint.pt``; None = start afresh.
        meta: :func:`run_meta` of this run; must match the checkpoint's.
        group: ``(rank, world_size)`` under DistributedDataParallel, None in one process.
        log: receives the "resumed from" line.

    Raises:
        ValueError: the checkpoint belongs to another run or process count (see :func:`load_checkpoint`).
    """
    world = group[1] if group is not None else 1
    if resume_dir is None:
        return TrainState(world_size=world)
    path = resume_dir / CHECKPOINT_NAME

    def read() -> dict[str, Any] | None:
        return torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None

    ckpt = read() if group is None else distributed.from_main(read)
    if ckpt is None:
        return TrainState(world_size=world)
    state = _restore(ckpt, trainer, path, meta=meta, world_size=world)
    log(f"resumed from {path} after epoch {state.epoch}")
    return state
