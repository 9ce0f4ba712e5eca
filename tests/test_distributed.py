"""Multi-process training: sharding, DDP fit on two CPU processes (gloo), the torchrun entry point.

The two-process tests start ``torchrun --standalone --nproc_per_node=2`` (a free port is picked by the
rendezvous). ``_worker`` below is what each process runs when torchrun starts this file as a script.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from medlib.learn import ddp as distributed
from medlib.pipelines import torchrun
from medlib.config import TrainConfig
from medlib.data.tensors import CaseTensors
from medlib.learn.ddp import shard_indices
from medlib.learn.checkpoints import BEST_NAME, CHECKPOINT_NAME
from medlib.learn.train import fit, seed_everything

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CFG = TrainConfig(epochs=4, batch_size=8, lr=3e-3, device="cpu", patience=0, threads=1, distributed=True)


def toy(n: int, seed: int, *, size: int = 16) -> CaseTensors:
    """A separable toy problem: positives have a brighter central square."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, 1, size, size, generator=g)
    q = size // 4
    x[y == 1, :, q:3 * q, q:3 * q] += 1.0
    return CaseTensors(x, y.long(), tuple(f"s{seed}c{i}" for i in range(n)),
                       tuple(f"s{seed}p{i // 2}" for i in range(n)))


class TinyNet(nn.Module):
    """Conv + BatchNorm + dropout: running statistics and the global RNG must stay in step across ranks."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Dropout(0.3))
        self.head = nn.Linear(128, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _torchrun(args: list[str], *, cwd: Path, timeout: float = 120, cuda: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CI": "true"}
    if not cuda:
        env["CUDA_VISIBLE_DEVICES"] = ""
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"torchrun failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-6000:]}"
    return done


# ------------------------------------------------------------------------------------------ shards
@pytest.mark.parametrize("n, world", [(8, 2), (64, 4), (7, 2), (10, 3), (2, 4), (1, 1)])
def test_shard_indices_are_equal_and_cover_every_case(n, world):
    shards = [shard_indices(n, r, world, generator=torch.Generator().manual_seed(5)) for r in range(world)]
    size = -(-n // world)
    assert all(s.dtype == torch.int64 and len(s) == size for s in shards)
    seen = torch.cat(shards)
    assert set(seen.tolist()) == set(range(n))
    assert len(seen) - len(set(seen.tolist())) == size * world - n  # only the padding repeats
    if n % world == 0:
        assert sorted(seen.tolist()) == list(range(n))  # disjoint


def test_shard_indices_follow_the_generator():
    same = [shard_indices(20, 0, 2, generator=torch.Generator().manual_seed(1)) for _ in range(2)]
    other = shard_indices(20, 0, 2, generator=torch.Generator().manual_seed(2))
    assert torch.equal(same[0], same[1]) and not torch.equal(same[0], other)
    g = torch.Generator().manual_seed(1)
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(1))
    assert torch.equal(shard_indices(20, 1, 2, generator=g), perm[1::2])  # consumed as randperm consumes it
    assert shard_indices(5, 0, 2, generator=None).tolist() == [0, 2, 4]
    assert shard_indices(5, 1, 2, generator=None).tolist() == [1, 3, 0]


@pytest.mark.parametrize("n, rank, world", [(0, 0, 1), (4, 2, 2), (4, -1, 2), (4, 0, 0)])
def test_shard_indices_bad_arguments(n, rank, world):
    with pytest.raises(ValueError, match=r"n must be >= 1|need 0 <= rank < world_size"):
        shard_indices(n, rank, world, generator=None)


# ------------------------------------------------------------------------------------------ single process
def test_distributed_without_process_group_is_an_error():
    assert not distributed.is_initialized()
    with pytest.raises(RuntimeError, match=r"train.distributed is true but no torch.distributed process group.*"
                                           r"torchrun --nproc_per_node=N -m medlib.pipelines.torchrun"):
        fit(TinyNet(), toy(16, 1), toy(8, 2), CFG, progress=False)


def test_helpers_outside_a_process_group():
    assert distributed.is_main() and distributed.from_main(lambda: 3) == 3
    distributed.barrier()
    distributed.cleanup()
    with pytest.raises(RuntimeError, match="needs an initialised process group"):
        distributed.all_gather_predictions(torch.zeros(2), 4)


def test_init_from_env_outside_torchrun_is_an_error(monkeypatch):
    for name in distributed.ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(KeyError, match=r"environment lacks \['RANK'.*start every process with torchrun"):
        distributed.init_from_env()


def test_entry_point_needs_torchrun(monkeypatch):
    for name in distributed.ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(KeyError, match="start every process with torchrun"):
        torchrun.main(["--params", str(PROJECT_ROOT / "params" / "smoke" / "nec.yaml")])


# ------------------------------------------------------------------------------------------ two processes
class Interrupt(Exception):
    pass


def _worker(out: Path, *, cuda: bool = False, study_params: Path | None = None) -> None:
    """One torchrun process: a full DDP fit, a fit cut after epoch 2 and resumed, the collectives, then the
    entry point (``main``, as ``torchrun -m medlib.pipelines.torchrun`` calls it) on a small study."""
    info = distributed.init_from_env(backend=None if cuda else "gloo")
    torch.set_num_threads(1)
    rank = info.rank
    train, val = toy(64, 1), toy(32, 2)
    report: dict = {"rank": rank, "world_size": info.world_size, "backend": info.backend}
    cfg = dataclasses.replace(CFG, device="cuda" if cuda else "cpu")
    seed_everything(rank)  # different initial weights per rank: DDP must start every rank from rank 0's
    full = fit(TinyNet(), train, val, cfg, checkpoint_dir=out / f"full-rank{rank}", progress=False)
    report["device"] = full.device
    report.update(state=full.model.state_dict(), history=full.history, best_epoch=full.best_epoch,
                  best_val_auc=full.best_val_auc)

    def stop_after_two(epoch: int, row: dict) -> None:
        if epoch == 2:
            raise Interrupt

    seed_everything(rank)  # the same start as the full run
    try:
        fit(TinyNet(), train, val, cfg, checkpoint_dir=out / f"cut-rank{rank}", progress=False,
            callback=stop_after_two)
    except Interrupt:
        pass
    seed_everything(99 + rank)
    resumed = fit(TinyNet(), train, val, cfg, checkpoint_dir=out / f"cut-rank{rank}", resume=True, progress=False)
    report.update(resumed_state=resumed.model.state_dict(), resumed_history=resumed.history)

    # lr 1e-30 (the config refuses 0): the float32 weights stay put, so patience 2 stops training early; every
    # rank must stop at the same epoch
    still = fit(TinyNet(), train, val, dataclasses.replace(cfg, epochs=10, lr=1e-30, patience=2, augment=False),
                progress=False)
    report["early_stop"] = (still.stopped_early, len(still.history), still.best_epoch)

    rows = (shard_indices(7, rank, info.world_size, generator=None).float()[:, None] * 10).to(full.device)
    report["gathered"] = distributed.all_gather_predictions(rows, 7).cpu()
    try:
        distributed.from_main(lambda: (_ for _ in ()).throw(ValueError("rank 0 says no")))
    except ValueError as err:
        report["from_main_error"] = str(err)
    torch.save(report, out / f"rank{rank}.pt")
    if study_params is not None:
        torchrun.main(["--params", str(study_params), "--run-dir", str(out / "runs" / "nec" / "ddp"),
                          "--no-progress"])
    distributed.cleanup()


STUDY = """study: {{name: nec, title: NEC, question: 'Surgery?', population: Infants with NEC., unit: infant,
        positive: needed surgery, negative: no surgery}}
cohort: {{manifest: {manifest}, image_columns: [xray], positive: surgery, negative: no_surgery}}
split: {{ratios: [0.6, 0.2, 0.2], seed: 0}}
image: {{size: [32, 32], cache_dir: {cache}}}
models: [{{name: resnet18, label: ResNet18}}]
train: {{epochs: 2, batch_size: 8, device: cpu, threads: 1}}
"""


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> tuple[Path, list[dict], str]:
    """One torchrun of ``_worker`` on 2 CPU processes (one launch: starting processes is the slow part)."""
    from medlib import synth

    out = tmp_path_factory.mktemp("ddp")
    manifest = synth.generate("nec", out / "data", seed=0, scale=0.15)
    params = out / "tiny.yaml"
    params.write_text(STUDY.format(manifest=manifest, cache=out / "cache"))
    done = _torchrun([str(Path(__file__).resolve()), "--out", str(out), "--study-params", str(params)], cwd=out)
    return out, [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)], done.stdout


@pytest.mark.slow
def test_two_process_fit_converges_with_identical_weights(two_ranks):
    _, (r0, r1), _ = two_ranks
    assert (r0["world_size"], r0["backend"], r1["rank"]) == (2, "gloo", 1)
    assert r0["best_val_auc"] > 0.9 and r0["best_epoch"] == r1["best_epoch"]
    cols = ["epoch", "train_loss", "val_loss", "val_auc", "lr"]
    pd.testing.assert_frame_equal(r0["history"][cols], r1["history"][cols], check_exact=True)
    assert r0["history"]["epoch"].tolist() == [1, 2, 3, 4]
    for key, value in r0["state"].items():  # parameters and BatchNorm buffers
        assert torch.equal(value, r1["state"][key]), key


@pytest.mark.slow
def test_only_rank_0_writes_checkpoints(two_ranks):
    out, (r0, _), _ = two_ranks
    assert (out / "full-rank0" / CHECKPOINT_NAME).is_file() and not (out / "full-rank1").exists()
    assert not (out / "cut-rank1").exists()
    best = torch.load(out / "full-rank0" / BEST_NAME, weights_only=True)
    for key, value in r0["state"].items():
        assert torch.equal(value, best[key]), key
    ckpt = torch.load(out / "full-rank0" / CHECKPOINT_NAME, weights_only=True)
    assert ckpt["state"]["world_size"] == 2 and ckpt["state"]["finished"]


@pytest.mark.slow
def test_two_process_resume_is_exact(two_ranks):
    _, ranks, _ = two_ranks
    cols = ["train_loss", "val_loss", "val_auc", "lr"]
    for r in ranks:
        pd.testing.assert_frame_equal(r["resumed_history"][cols], r["history"][cols], check_exact=True)
        for key, value in r["state"].items():
            assert torch.equal(value, r["resumed_state"][key]), key


@pytest.mark.slow
def test_collectives_and_early_stopping(two_ranks):
    _, ranks, _ = two_ranks
    for r in ranks:
        assert r["gathered"][:, 0].tolist() == [10.0 * i for i in range(7)]
        assert r["from_main_error"] == "rank 0 says no"
    stopped, epochs, best = ranks[0]["early_stop"]
    assert ranks[1]["early_stop"] == (stopped, epochs, best) and stopped and epochs == best + 2 < 10


@pytest.mark.slow
def test_unfinished_two_process_checkpoint_needs_two_processes(two_ranks):
    out, _, _ = two_ranks
    cut = out / "cut-copy"
    cut.mkdir()
    ckpt = torch.load(out / "full-rank0" / CHECKPOINT_NAME, weights_only=True)
    ckpt["state"]["finished"] = False
    torch.save(ckpt, cut / CHECKPOINT_NAME)
    single = dataclasses.replace(CFG, distributed=False)
    with pytest.raises(ValueError, match=r"run of 2 process\(es\) and is unfinished.*--nproc_per_node=2"):
        fit(TinyNet(), toy(64, 1), toy(32, 2), single, checkpoint_dir=cut, resume=True, progress=False)
    ckpt["state"]["finished"] = True  # a finished DDP run is reopened by one process (the study notebook)
    torch.save(ckpt, cut / CHECKPOINT_NAME)
    again = fit(TinyNet(), toy(64, 1), toy(32, 2), single, checkpoint_dir=cut, resume=True, progress=False)
    assert again.best_epoch == ckpt["state"]["best_epoch"] and len(again.history) == 4


@pytest.mark.slow
def test_entry_point_trains_a_study(two_ranks):
    from medlib.runs.folder import open_run
    from medlib.pipelines.classifier import train_models
    from medlib.pipelines.prepare import load_study, prepare

    out, _, stdout = two_ranks
    assert "1 model(s) trained on 2 processes (gloo)" in stdout
    run = open_run(out / "runs" / "nec" / "ddp")
    assert run.read_config().train.distributed is True
    ckpt = torch.load(run.checkpoint_dir("ResNet18") / CHECKPOINT_NAME, weights_only=True)
    assert ckpt["state"]["world_size"] == 2 and ckpt["state"]["finished"]
    predictions = run.read_predictions()
    cfg = load_study(out / "tiny.yaml")
    prepared = prepare(cfg)
    assert set(predictions["set"]) == set(prepared.sets) and len(predictions) == len(prepared.table)
    assert "2 processes (DDP)" in run.read_provenance()["device"]
    # the study notebook's path: one process reopens the finished run and predicts the same
    results = train_models(cfg, prepared, run, resume=True, progress=False)
    pd.testing.assert_frame_equal(results.predictions, predictions, check_exact=False, rtol=1e-6)


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA devices")
def test_two_gpu_nccl_fit(tmp_path):
    _torchrun([str(Path(__file__).resolve()), "--out", str(tmp_path), "--cuda"], cwd=tmp_path, cuda=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2))
    assert (r0["backend"], r0["device"], r1["device"]) == ("nccl", "cuda:0", "cuda:1")
    assert r0["best_val_auc"] > 0.9 and not (tmp_path / "full-rank1").exists()
    for key, value in r0["state"].items():
        assert torch.equal(value, r1["state"][key]), key
    assert r0["gathered"][:, 0].tolist() == [10.0 * i for i in range(7)]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cuda", action="store_true", help="NCCL on cuda:LOCAL_RANK instead of gloo on the CPU")
    parser.add_argument("--study-params", type=Path, default=None, help="also run main() on this study")
    _args = parser.parse_args()
    _worker(_args.out, cuda=_args.cuda, study_params=_args.study_params)
