"""Training and prediction: ``fit`` (early stopping on validation AUC, checkpoints, exact resume) and ``predict``.

``fit`` is a short loop over small functions: ``train_one_epoch``, ``evaluate``, ``save_checkpoint``,
``load_checkpoint``. The training set is a ``CaseTensors`` held in memory (on the GPU when it fits). On CUDA,
training uses mixed precision (bf16 where supported, else fp16 with a ``GradScaler``) and channels-last
memory; on the CPU it is fp32 and deterministic for ``TrainConfig.seed``: the same model, data and config give
bit-identical weights, and a run resumed from a checkpoint ends exactly where an uninterrupted run does.

With ``TrainConfig.distributed`` under ``torchrun`` (``medlib.pipelines.torchrun``), ``fit`` trains with
DistributedDataParallel (process-group steps in ``medlib.learn.ddp``): every process takes its shard of each
epoch's shuffled training set, validation is scored in shards and gathered, every process makes the same
early-stopping decision, and only rank 0 writes checkpoints.

Checkpoint files, the run's progress (``TrainState``) and the resume checks are ``medlib.learn.checkpoints``;
its public names are also importable from here.
"""

from __future__ import annotations

import logging
import math
import random
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from medlib.data.tensors import CaseTensors, iterate_batches
from medlib.learn import ddp as distributed
from medlib.learn.checkpoints import (BEST_NAME, CHECKPOINT_NAME, TrainState, Trainer, cpu_state, load_checkpoint,
                                      run_meta, save_atomic, save_checkpoint, start_state)
from medlib.learn.losses import build_loss
from medlib.learn.recipe import augment as augment_cases
from medlib.learn.recipe import build_optimizer, build_scheduler, steps_per_epoch

__all__ = ["EvalResult", "FitResult", "amp_dtype_for", "evaluate", "fit", "predict", "resolve_device",
           "seed_everything", "train_one_epoch",
           # checkpoints (medlib.learn.checkpoints), importable from here as before
           "BEST_NAME", "CHECKPOINT_NAME", "TrainState", "Trainer", "load_checkpoint", "save_checkpoint"]


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global RNG and torch (CPU and CUDA); call once before building a
    model so that its initial weights are reproducible. Library code takes generators instead."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` → ``cuda`` when available, else ``cpu``; ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` as given.

    Raises:
        RuntimeError: CUDA asked for explicitly but not available (no silent fallback to the CPU).
        ValueError: an unknown device name.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"Unknown device {name!r}. Expected 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index or 0) >= count:
            raise RuntimeError(f"train.device is {name!r} but this machine has {count} CUDA device(s); "
                               f"set train.device to 'auto' or 'cpu'")
    elif device.type != "cpu":
        raise ValueError(f"Unknown device {name!r}. Expected 'auto', 'cpu', 'cuda' or 'cuda:N'")
    return device


def amp_dtype_for(device: torch.device, enabled: bool) -> torch.dtype | None:
    """The autocast dtype: bf16 on CUDA when supported, else fp16; None (fp32) on the CPU or when disabled."""
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _memory_format(spatial_dims: int) -> torch.memory_format:
    return torch.channels_last if spatial_dims == 2 else torch.channels_last_3d


@dataclass
class FitResult:
    """What ``fit`` returns.

    Attributes:
        model: the model with the best epoch's weights loaded (on the training device).
        history: one row per epoch: epoch, train_loss, val_loss, val_auc, lr, seconds.
        best_epoch: the epoch whose weights ``model`` holds (highest validation AUC, ties to lower loss).
        best_val_auc: its validation AUC (NaN when validation has one class).
        stopped_early: whether early stopping ended training before ``cfg.epochs``.
        device: the device trained on.
    """

    model: nn.Module
    history: pd.DataFrame
    best_epoch: int
    best_val_auc: float
    stopped_early: bool
    device: str


@dataclass
class EvalResult:
    """Loss, AUC and class-1 probabilities of one pass over a set."""

    loss: float
    auc: float
    scores: np.ndarray



def _roc_auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y_true)) < 2:
        return math.nan
    return float(roc_auc_score(y_true, y_score))


def train_one_epoch(model: nn.Module, data: CaseTensors, *, loss_fn: nn.Module, optimizer: torch.optim.Optimizer,
                    batch_size: int, generator: torch.Generator, augment: bool = True,
                    device: torch.device | None = None, amp_dtype: torch.dtype | None = None,
                    scaler: torch.amp.GradScaler | None = None, grad_clip: float | None = None,
                    channels_last: bool | None = None, scheduler=None, flip: bool = True) -> float:
    """One pass over ``data`` in a random order from ``generator``; returns the mean training loss.

    ``scheduler`` (``medlib.learn.recipe.build_scheduler``) is stepped after every optimisation step; ``flip``
    allows left-right flips in the augmentation (``medlib.learn.recipe.augment``).
    Batches are moved to ``device`` (a no-op when the data is there), augmented there, and run under
    autocast when ``amp_dtype`` is set. A last batch of one case is skipped (BatchNorm cannot train on it).
    ``channels_last`` (None = on CUDA only) converts each batch to channels-last memory, to match a model
    converted with ``model.to(memory_format=torch.channels_last)`` as ``fit`` does on CUDA.

    Raises:
        FloatingPointError: the loss is not finite (training diverged; lower ``train.lr``).
    """
    device = device or next(model.parameters()).device
    channels_last = device.type == "cuda" if channels_last is None else channels_last
    model.train()
    total, count = torch.zeros((), device=device), 0
    for x, y in iterate_batches(data, batch_size, shuffle=True, generator=generator, min_batch=2):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if augment:
            x = augment_cases(x, generator=generator, spatial_dims=data.spatial_dims, flip=flip)
        if channels_last:
            x = x.contiguous(memory_format=_memory_format(data.spatial_dims))
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext():
            logits = model(x)
        loss = loss_fn(logits.float(), y)
        if scaler is not None and scaler.is_enabled():
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        if scaler is not None and scaler.is_enabled():
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += loss.detach() * len(y)
        count += len(y)
    mean = total.item() / max(count, 1)
    if not math.isfinite(mean):
        raise FloatingPointError(f"training loss is {mean}: training diverged; lower train.lr or set grad_clip")
    return mean


@torch.inference_mode()
def _logits(model: nn.Module, data: CaseTensors, *, batch_size: int, device: torch.device,
            amp_dtype: torch.dtype | None = None) -> torch.Tensor:
    model.eval()
    out = []
    for x, _ in iterate_batches(data, batch_size, shuffle=False):
        x = x.to(device, non_blocking=True)
        if device.type == "cuda":
            x = x.contiguous(memory_format=_memory_format(data.spatial_dims))
        with torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext():
            out.append(model(x).float())
    n_classes = out[0].shape[1] if out else 2
    return torch.cat(out) if out else torch.zeros((0, n_classes), device=device)


def evaluate(model: nn.Module, data: CaseTensors, loss_fn: nn.Module, *, batch_size: int,
             device: torch.device | None = None, amp_dtype: torch.dtype | None = None) -> EvalResult:
    """Loss, ROC AUC and class-1 softmax probabilities of ``model`` on ``data`` (eval mode, no gradients).

    The AUC is NaN when ``data`` holds one class only (``fit`` warns about that once).
    """
    device = device or next(model.parameters()).device
    logits = _logits(model, data, batch_size=batch_size, device=device, amp_dtype=amp_dtype)
    return _scored(logits, data, loss_fn)


def _scored(logits: torch.Tensor, data: CaseTensors, loss_fn: nn.Module) -> EvalResult:
    """``evaluate``'s result from the logits of every case of ``data``, in case order."""
    y = data.y.to(logits.device)
    loss = float(loss_fn(logits, y)) if len(y) else math.nan
    scores = torch.softmax(logits, dim=1)[:, 1].cpu().numpy()
    if not np.isfinite(scores).all():
        raise FloatingPointError("model outputs are not finite: training diverged; lower train.lr")
    return EvalResult(loss=loss, auc=_roc_auc(data.y.cpu().numpy(), scores), scores=scores)




# ------------------------------------------------------------------------------------------ fit
def _place(data: CaseTensors, device: torch.device, log: Callable[[str], None]) -> CaseTensors:
    """The set on ``device`` when it takes under 40% of the free GPU memory; else pinned CPU memory."""
    if device.type != "cuda":
        return data.to(device)
    free, _ = torch.cuda.mem_get_info(device)
    if data.x.numel() * data.x.element_size() < 0.4 * free:
        return data.to(device)
    log(f"{len(data)} cases ({data.x.numel() * 4 / 2**30:.1f} GiB) do not fit the GPU: batches are copied "
        f"from pinned CPU memory")
    return CaseTensors(data.x.pin_memory(), data.y.pin_memory(), data.case_id, data.patient_id)


def _make_trainer(model: nn.Module, cfg, device: torch.device, spatial_dims: int, n_train: int) -> Trainer:
    """Model on ``device``, the recipe's optimizer and per-step schedule (``medlib.learn.recipe``), the scaler
    and the shuffling generator; ``n_train`` is this process's share of the training set."""
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=_memory_format(spatial_dims))
    optimizer = build_optimizer(model, cfg, spatial_dims)
    scheduler = build_scheduler(optimizer, cfg, steps=steps_per_epoch(n_train, cfg.batch_size))
    fp16 = amp_dtype_for(device, cfg.amp) == torch.float16
    scaler = torch.amp.GradScaler(device.type, enabled=fp16)
    return Trainer(model, optimizer, scheduler, scaler, torch.Generator().manual_seed(cfg.seed), device)


def _auto_progress(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    return True  # medlib.progress.progress_bar picks the form (bar, notebook widget, plain lines) or none (--quiet)


def _check_inputs(train: CaseTensors, val: CaseTensors, cfg) -> None:
    if len(train) < 2 or len(val) < 1:
        raise ValueError(f"need at least 2 training and 1 validation case; got {len(train)} and {len(val)}")
    if train.x.shape[1:] != val.x.shape[1:]:
        raise ValueError(f"training and validation images differ: {tuple(train.x.shape[1:])} vs "
                         f"{tuple(val.x.shape[1:])}")
    if cfg.epochs < 1 or cfg.batch_size < 2:
        raise ValueError(f"need train.epochs >= 1 and train.batch_size >= 2; got {cfg.epochs}, {cfg.batch_size}")
    if len(set(val.y.tolist())) < 2:
        warnings.warn(f"the validation set has one class only ({len(val)} cases): validation AUC is undefined "
                      f"(NaN) and the best epoch is chosen by validation loss", UserWarning, stacklevel=3)


def _epoch(trainer: Trainer, state: TrainState, train: CaseTensors, val: CaseTensors, loss_fn: nn.Module,
           cfg, ddp: distributed.DdpRank | None = None) -> dict[str, float]:
    """Train and validate one epoch, update the best weights and early-stopping counter; return the row."""
    start = time.perf_counter()
    amp = amp_dtype_for(trainer.device, cfg.amp)
    lr = trainer.optimizer.param_groups[0]["lr"]
    val_batch = max(cfg.batch_size, 64)
    if ddp is None:
        train_loss = train_one_epoch(trainer.model, train, loss_fn=loss_fn, optimizer=trainer.optimizer,
                                     batch_size=cfg.batch_size, generator=trainer.generator, augment=cfg.augment,
                                     device=trainer.device, amp_dtype=amp, scaler=trainer.scaler,
                                     grad_clip=cfg.grad_clip, scheduler=trainer.scheduler,
                                     flip=cfg.flip)
        result = evaluate(trainer.model, val, loss_fn, batch_size=val_batch, device=trainer.device, amp_dtype=amp)
    else:
        train_loss = _ddp_train_epoch(trainer, ddp, train, loss_fn, cfg, amp)
        result = _ddp_evaluate(trainer, ddp, val, loss_fn, batch_size=val_batch, amp_dtype=amp)
    state.epoch += 1
    if state.improved(result.auc, result.loss):
        state.best_epoch, state.best_state, state.bad_epochs = state.epoch, cpu_state(trainer.model), 0
        state.best_auc = -math.inf if math.isnan(result.auc) else result.auc
        state.best_loss = result.loss
    else:
        state.bad_epochs += 1
    row = dict(epoch=state.epoch, train_loss=train_loss, val_loss=result.loss, val_auc=result.auc, lr=lr,
               seconds=time.perf_counter() - start)
    state.history.append(row)
    return row


def _loop(trainer: Trainer, state: TrainState, train: CaseTensors, val: CaseTensors, cfg, *,
          checkpoint_dir: Path | None, meta: dict, progress: bool, callback,
          ddp: distributed.DdpRank | None = None) -> None:
    from medlib.progress import progress_bar

    loss_fn = build_loss(cfg, train.class_counts()).to(trainer.device)
    with progress_bar(total=cfg.epochs, initial=state.epoch, desc="train", unit="epoch", disable=not progress,
                      leave=False) as bar:
        while not state.finished:
            row = _epoch(trainer, state, train, val, loss_fn, cfg, ddp)
            state.stopped_early = 0 < cfg.patience <= state.bad_epochs and state.epoch < cfg.epochs
            state.finished = state.epoch >= cfg.epochs or state.stopped_early
            if checkpoint_dir is not None:
                save_checkpoint(checkpoint_dir / CHECKPOINT_NAME, trainer, state, meta=meta)
                if state.best_epoch == state.epoch:
                    save_atomic(state.best_state, checkpoint_dir / BEST_NAME)
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_auc=f"{row['val_auc']:.3f}", refresh=False)
            bar.update(1)
            if callback is not None:
                callback(state.epoch, dict(row))


def fit(model: nn.Module, train: CaseTensors, val: CaseTensors, cfg, *, checkpoint_dir: Path | None = None,
        resume: bool = False, progress: bool | None = None, log: Callable[[str], None] | None = None,
        callback: Callable[[int, dict], None] | None = None) -> FitResult:
    """Train ``model`` on ``train``, select the epoch with the best validation AUC, and return it.

    The recipe of ``medlib.learn.recipe`` (AdamW, warm-up and cosine decay per step, flips, small affine and
    intensity augmentation), gradient clipping, early stopping after ``cfg.patience`` epochs without a better
    validation AUC (0 disables it). A checkpoint is written atomically to
    ``checkpoint_dir`` after every epoch; ``resume=True`` continues from it and ends with exactly the weights
    of an uninterrupted run (CPU). Shuffling and augmentation draw from a ``torch.Generator`` seeded with
    ``cfg.seed``, dropout from torch's global RNG, which ``fit`` seeds and restores afterwards (``fork_rng``),
    so the caller's RNG state is untouched. The model is moved to the training device and returned there.

    With ``cfg.distributed`` every process of a ``torch.distributed`` group of more than one process calls
    ``fit`` with the same arguments (``medlib.pipelines.torchrun`` does this under torchrun) and the model is wrapped
    in DistributedDataParallel on ``cuda:LOCAL_RANK`` (or the CPU, gloo). ``cfg.batch_size`` is per process:
    a step sees ``batch_size * world_size`` cases; the learning rate is not scaled. Each epoch, the shared
    generator (the same on every rank) draws one permutation of the training set, padded by repetition to a
    multiple of the process count as ``DistributedSampler`` does, and each rank trains on its equal share;
    augmentation and dropout draw from per-rank seeds derived from it. BatchNorm statistics are rank 0's
    (DDP's ``broadcast_buffers``, and again after each epoch). Validation is scored in shards and gathered,
    and rank 0's loss and AUC are broadcast, so every rank keeps the same best epoch and stops together; the
    returned model (the unwrapped module) holds the same weights on every rank. Only rank 0 creates
    ``checkpoint_dir``, writes checkpoints, and reads one on resume (sent to the other ranks); only rank 0
    shows progress and logs. ``callback`` runs on every rank.

    Args:
        model: a registry model (``medlib.learn.models``); its initial weights come from the caller.
        train, val: the sets, held in memory (copied to the GPU when they fit).
        cfg: ``medlib.config.TrainConfig``.
        checkpoint_dir: where ``checkpoint.pt`` and ``best_model.pt`` go; None = no checkpoints.
        resume: continue from ``checkpoint_dir/checkpoint.pt`` when it exists.
        progress: a progress bar (``medlib.progress.progress_bar``: a terminal bar, a notebook widget, plain
            lines or ``medlib run``'s events); None = on unless ``--quiet``.
        log: receives one-line messages (resume, data placement, early stop); None = the ``medlib.learn.train``
            logger.
        callback: called after each epoch's checkpoint with ``(epoch, history row)``; raising stops training.

    Returns:
        ``FitResult`` with the best weights loaded.

    Raises:
        RuntimeError: ``cfg.device`` names CUDA and none is available; ``cfg.distributed`` without an
        initialised process group. ValueError: too few cases, mismatched shapes, or a checkpoint from another
        run. FloatingPointError: training diverged.
    """
    log = log or logging.getLogger("medlib.learn.train").info
    _check_inputs(train, val, cfg)
    group = distributed.training_group(cfg.distributed, len(train))
    device = _training_device(cfg, group)
    if group is not None and group[0] != 0:
        log, progress = (lambda message: None), False
    previous_threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    cuda_devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=cuda_devices):
            torch.manual_seed(cfg.seed)
            state, trainer = _fit(model, train, val, cfg, device, checkpoint_dir, resume, progress, log, callback,
                                  group)
    finally:
        torch.set_num_threads(previous_threads)
    model.load_state_dict(state.best_state)
    history = pd.DataFrame(state.history, columns=["epoch", "train_loss", "val_loss", "val_auc", "lr", "seconds"])
    best_auc = history.loc[history["epoch"] == state.best_epoch, "val_auc"].iloc[0]
    return FitResult(model=model, history=history, best_epoch=state.best_epoch, best_val_auc=float(best_auc),
                     stopped_early=state.stopped_early, device=str(device))


def _fit(model, train, val, cfg, device, checkpoint_dir, resume, progress, log, callback, group=None):
    share = len(train) if group is None else math.ceil(len(train) / group[1])
    trainer = _make_trainer(model, cfg, device, train.spatial_dims, share)
    meta = run_meta(cfg, train)
    writes = group is None or group[0] == 0
    if checkpoint_dir is not None:
        checkpoint_dir = Path(checkpoint_dir)
        if writes:
            checkpoint_dir.mkdir(parents=True, exist_ok=True)
    elif resume:
        raise ValueError("resume=True needs a checkpoint_dir")
    state = start_state(trainer, checkpoint_dir if resume else None, meta, group, log)
    if not state.finished:
        train, val = _place(train, device, log), _place(val, device, log)
        ddp = distributed.wrap(trainer.model, trainer.device, group) if group is not None else None
        _loop(trainer, state, train, val, cfg, checkpoint_dir=checkpoint_dir if writes else None, meta=meta,
              progress=_auto_progress(progress), callback=callback, ddp=ddp)
    if state.stopped_early:
        log(f"early stopping after epoch {state.epoch}: no better validation AUC for {cfg.patience} epochs; "
            f"best epoch {state.best_epoch}")
    return state, trainer


# ------------------------------------------------------------------------------------------ distributed
def _training_device(cfg, group: tuple[int, int] | None) -> torch.device:
    """``cfg.device``; under DDP, CUDA means this process's GPU (``LOCAL_RANK``) and NCCL needs CUDA."""
    device = resolve_device(cfg.device)
    if group is None:
        return device
    import torch.distributed as dist

    if device.type == "cuda":
        if device.index is not None:
            raise ValueError(f"train.device is {cfg.device!r}; with train.distributed each process uses the GPU "
                             f"of its LOCAL_RANK: set train.device to 'auto' or 'cuda'")
        return distributed.local_device()
    if dist.get_backend() == "nccl":
        raise ValueError("train.device is 'cpu' but the process group uses NCCL, which needs GPUs: "
                         "initialise it with the gloo backend (init_from_env(backend='gloo'))")
    return device


def _ddp_train_epoch(trainer: Trainer, ddp: distributed.DdpRank, train: CaseTensors, loss_fn: nn.Module,
                     cfg, amp: torch.dtype | None) -> float:
    """This rank's share of one epoch; returns the mean training loss over all ranks.

    The shared generator (same seed and state on every rank) draws the epoch's permutation, which
    ``shard_indices`` splits, and a seed; this rank's augmentation and dropout draw from seed + rank, so the
    shared generator stays the same on every rank (and in the checkpoint rank 0 writes).
    """
    shard = train.subset(distributed.shard_indices(len(train), ddp.rank, ddp.world_size,
                                                   generator=trainer.generator))
    seed = int(torch.randint(2**62, (1,), generator=trainer.generator)) + ddp.rank
    torch.manual_seed(seed)
    loss = train_one_epoch(ddp.wrapped, shard, loss_fn=loss_fn, optimizer=trainer.optimizer,
                           batch_size=cfg.batch_size, generator=torch.Generator().manual_seed(seed),
                           augment=cfg.augment, device=trainer.device, amp_dtype=amp, scaler=trainer.scaler,
                           grad_clip=cfg.grad_clip, scheduler=trainer.scheduler, flip=cfg.flip)
    distributed.broadcast_buffers(trainer.model)  # BatchNorm statistics of the last batch differ: take rank 0's
    return distributed.mean_over_ranks(loss, ddp.world_size)


def _ddp_evaluate(trainer: Trainer, ddp: distributed.DdpRank, val: CaseTensors, loss_fn: nn.Module, *,
                  batch_size: int, amp_dtype: torch.dtype | None) -> EvalResult:
    """``evaluate`` with each rank scoring its shard of ``val``; every rank gets rank 0's loss and AUC."""
    idx = distributed.shard_indices(len(val), ddp.rank, ddp.world_size, generator=None)
    logits = _logits(trainer.model, val.subset(idx), batch_size=batch_size, device=trainer.device,
                     amp_dtype=amp_dtype)
    result = _scored(distributed.all_gather_predictions(logits, len(val)), val, loss_fn)
    auc, loss = distributed.from_main(lambda: (result.auc, result.loss))
    return EvalResult(loss=loss, auc=auc, scores=result.scores)


# ------------------------------------------------------------------------------------------ predict
def predict(model: nn.Module, data: CaseTensors, *, model_name: str, set_name: str, batch_size: int = 64,
            device: str = "auto") -> pd.DataFrame:
    """Class-1 probabilities of every case: the long Predictions table everything downstream reads.

    The model is put in eval mode and moved to ``device``; inference runs in fp32.

    Returns:
        DataFrame with columns case_id, patient_id, model, set, y_true, score (softmax probability of
        class 1), one row per case in ``data``'s order.

    Raises:
        RuntimeError: ``device`` names CUDA and none is available.
    """
    dev = resolve_device(device)
    model.to(dev)
    logits = _logits(model, data, batch_size=batch_size, device=dev)
    scores = torch.softmax(logits, dim=1)[:, 1].cpu().numpy().astype(np.float64)
    return pd.DataFrame({"case_id": list(data.case_id), "patient_id": list(data.patient_id),
                         "model": model_name, "set": set_name, "y_true": data.y.cpu().numpy().astype(int),
                         "score": scores})
