"""Speed of one training step with the recipe's optimizer (``medlib.learn.recipe.build_optimizer``: torch's
fused AdamW) against torch's default per-tensor AdamW loop on the CPU, measured in the same run on the same
models, one thread.

Run by hand (not a test): ``.venv/bin/python benchmarks/bench_optimizer.py [--steps N]``. ``run()`` returns the
rows as dictionaries so ``medlib bench`` can collect them.

Per model: the optimizer step alone (gradients set once), and a whole training step (forward, backward,
step) on a batch of 16 at the demo's input size, so the share of the step the optimizer took is visible. The
two optimizers' updates agree to float rounding; the largest difference of the parameters after the timed
steps is printed.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

from medlib.config import TrainConfig
from medlib.learn.models import build_model
from medlib.learn.recipe import build_optimizer

#: (model, spatial_dims, input side): the demo's models at the demo's sizes.
MODELS = (("resnet18", 2, 64), ("densenet121", 2, 64), ("resnet10", 3, 32), ("resnet18", 3, 32))


def _optimizer(model: torch.nn.Module, dims: int, which: str) -> torch.optim.Optimizer:
    """The recipe's optimizer (``fused``), or torch's per-tensor AdamW loop over the same parameter groups."""
    fused = build_optimizer(model, TrainConfig(), dims)
    if which == "fused":
        return fused
    groups = [{"params": list(g["params"]), "weight_decay": g["weight_decay"]} for g in fused.param_groups]
    return torch.optim.AdamW(groups, lr=fused.param_groups[0]["lr"], foreach=False, fused=False)


def _seconds(fn, steps: int) -> float:
    fn()  # the first call allocates the optimizer state
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def _one(name: str, dims: int, side: int, steps: int) -> dict[str, Any]:
    torch.manual_seed(0)
    model = build_model(name, in_channels=1, num_classes=2, spatial_dims=dims)
    x, y = torch.randn(16, 1, *(side,) * dims), torch.randint(0, 2, (16,))
    start_state = {k: v.clone() for k, v in model.state_dict().items()}
    results = {}
    for which in ("fused", "loop"):
        model.load_state_dict(start_state)
        optimizer = _optimizer(model, dims, which)
        gen = torch.Generator().manual_seed(1)
        for p in model.parameters():
            p.grad = torch.randn(p.shape, generator=gen) * 1e-3
        step_s = _seconds(optimizer.step, steps)
        after = [p.detach().clone() for p in model.parameters()]

        def train_step(optimizer: torch.optim.Optimizer = optimizer) -> None:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()

        results[which] = (step_s, _seconds(train_step, steps), after)
    (fused_s, fused_train, a), (loop_s, loop_train, b) = results["fused"], results["loop"]
    return {"benchmark": f"AdamW step, {name} {dims}D "
                         f"({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters)",
            "seconds": round(fused_s, 4), "baseline_seconds": round(loop_s, 4), "ratio": round(loop_s / fused_s, 1),
            "train_step_seconds": round(fused_train, 3), "baseline_train_step_seconds": round(loop_train, 3),
            "train_step_ratio": round(loop_train / fused_train, 2),
            "max_difference": max(float((p - q).abs().max()) for p, q in zip(a, b))}


def run(steps: int = 5) -> list[dict[str, Any]]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return [_one(name, dims, side, steps) for name, dims, side in MODELS]
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    for row in run(parser.parse_args().steps):
        print(f"{row['benchmark']}: step {row['seconds'] * 1000:.0f} ms, per-tensor loop "
              f"{row['baseline_seconds'] * 1000:.0f} ms, {row['ratio']}x; training step (batch 16) "
              f"{row['train_step_seconds'] * 1000:.0f} ms vs {row['baseline_train_step_seconds'] * 1000:.0f} ms, "
              f"{row['train_step_ratio']}x; largest parameter difference {row['max_difference']:.1e}")
