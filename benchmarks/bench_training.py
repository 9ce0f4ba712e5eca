"""Training throughput: medlib's cached in-memory pipeline against decoding the image files every epoch.

Run by hand (not a test): ``.venv/bin/python benchmarks/bench_training.py`` (``--files N`` for fewer or more
radiographs, ``--side`` for their size). ``run()`` returns the rows as dictionaries so ``medlib bench`` can
collect them.

The input is what a hospital exports: full-size digital radiographs (default 2048 x 2048, 12 bits stored, as a
bedside DX detector writes them), in two encodings, each written to a temporary folder:

* uncompressed (Explicit VR Little Endian, 8 MB a file), and
* JPEG 2000 lossless (how many PACS archive them; decoded by pylibjpeg-openjpeg).

Two pipelines train the same ResNet18 (1 channel, 64 x 64, the NEC demo's size; batch 32, Adam, no
augmentation) with the same training step, ``medlib.learn.train.train_one_epoch``, for 3 epochs:

* **cached** (medlib): ``medlib.data.tensors.load_case_tensors`` reads every file once through medlib's readers and
  preprocessing (VOI window, resize with antialiasing, z-score) into the on-disk cache and one in-memory tensor;
  epochs index that tensor. Its first epoch is charged with the preprocessing (a cold cache).
* **plain** (the usual tutorial loop): a ``torch.utils.data.DataLoader`` whose dataset calls the same reader and
  preprocessing (``medlib.data.preprocess.compute_preprocessed``) on every access, every epoch.

Printed: images/s of each epoch, and the ratio cached / plain from the second epoch on (the mean of epochs 2-3).
On CUDA, also the cached pipeline with mixed precision (bf16, or fp16 + GradScaler) and channels-last against
fp32 with contiguous memory, on the images repeated 10x at batch 128.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from medlib.config import ImageConfig
from medlib.data.tensors import CaseTensors, load_case_tensors
from medlib.learn.models import build_model
from medlib.data.preprocess import compute_preprocessed
from medlib.learn.train import amp_dtype_for, resolve_device, seed_everything, train_one_epoch

SIZE = (64, 64)
EPOCHS = 3
ENCODINGS = ("uncompressed", "jpeg2000-lossless")


def radiograph(rng: np.random.Generator, side: int, positive: bool) -> np.ndarray:
    """A 12-bit image shaped like a radiograph: smooth anatomy, quantum noise, a bright disc for positives."""
    yy, xx = np.mgrid[:side, :side] / side
    body = 1800 + 900 * np.exp(-((xx - 0.5) ** 2 + (yy - 0.55) ** 2) / 0.08)
    disc = ((xx - 0.4) ** 2 + (yy - 0.45) ** 2 < 0.01) * 500 * positive
    return np.clip(body + disc + rng.normal(0, 60, (side, side)), 0, 4095).astype(np.uint16)


def write_radiographs(folder: Path, n: int, *, side: int, encoding: str, seed: int = 0) -> list[Path]:
    """``n`` DX DICOM files of ``side`` x ``side`` pixels, 12 bits stored, in the given encoding."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import (ExplicitVRLittleEndian, JPEG2000Lossless, DigitalXRayImageStorageForPresentation,
                             generate_uid)

    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = DigitalXRayImageStorageForPresentation
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.PatientID = "DX", f"BENCH{i:04d}"
        ds.Rows = ds.Columns = side
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.WindowCenter, ds.WindowWidth = 2200, 2400
        ds.PixelData = radiograph(rng, side, positive=bool(i % 2)).tobytes()
        if encoding == "jpeg2000-lossless":
            ds.compress(JPEG2000Lossless)
        elif encoding != "uncompressed":
            raise ValueError(f"encoding must be one of {ENCODINGS}; got {encoding!r}")
        path = folder / f"case_{i:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _table(paths: list[Path]) -> pd.DataFrame:
    return pd.DataFrame({"case_id": [p.stem for p in paths], "patient_id": [p.stem for p in paths],
                         "y": [i % 2 for i in range(len(paths))], "xray": [str(p) for p in paths]})


class DecodingDataset(torch.utils.data.Dataset):
    """The plain loop's dataset: reads and preprocesses its file on every access (no cache)."""

    def __init__(self, paths: list[Path], settings: dict) -> None:
        self.paths, self.settings = paths, settings

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.from_numpy(compute_preprocessed(self.paths[i], self.settings))[None], i % 2


def _setup(device: torch.device, *, channels_last: bool = False):
    seed_everything(0)
    model = build_model("resnet18", in_channels=1, image_size=SIZE).to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3), torch.nn.CrossEntropyLoss()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _train_epochs(data: CaseTensors, device: torch.device, *, epochs: int, batch_size: int = 32,
                  amp: bool = False, channels_last: bool = False) -> list[float]:
    model, opt, loss_fn = _setup(device, channels_last=channels_last)
    amp_dtype = amp_dtype_for(device, amp)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    gen, times = torch.Generator().manual_seed(0), []
    for _ in range(epochs):
        _sync(device)
        start = time.perf_counter()
        train_one_epoch(model, data, loss_fn=loss_fn, optimizer=opt, batch_size=batch_size, generator=gen,
                        augment=False, device=device, amp_dtype=amp_dtype, scaler=scaler,
                        channels_last=channels_last)
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


def cached_epochs(paths: list[Path], device: torch.device, cache_dir: Path, *,
                  epochs: int = EPOCHS) -> list[float]:
    """Seconds per epoch of medlib's pipeline; the first epoch includes filling the (cold) disk cache."""
    start = time.perf_counter()
    image_cfg = ImageConfig(size=SIZE, cache_dir=str(cache_dir))
    data = load_case_tensors(_table(paths), ["xray"], image_cfg).to(device)
    load_s = time.perf_counter() - start
    times = _train_epochs(data, device, epochs=epochs)
    return [times[0] + load_s, *times[1:]]


def plain_epochs(paths: list[Path], device: torch.device, *, epochs: int = EPOCHS,
                 batch_size: int = 32) -> list[float]:
    """Seconds per epoch of a DataLoader loop that reads and preprocesses every file on every epoch."""
    settings = dict(size=SIZE, window=None, crop_to_mask=False, margin=0.1, normalize="zscore")
    loader = torch.utils.data.DataLoader(DecodingDataset(paths, settings), batch_size=batch_size, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    model, opt, loss_fn = _setup(device)
    model.train()
    times = []
    for _ in range(epochs):
        _sync(device)
        start = time.perf_counter()
        for x, y in loader:
            if len(y) < 2:
                continue  # as train_one_epoch: BatchNorm cannot train on one case
            x, y = x.to(device), y.to(device)
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            opt.step()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


def _row(name: str, n: int, times: list[float], device: torch.device, **extra: Any) -> dict[str, Any]:
    later = float(np.mean(times[1:]))
    return {"benchmark": name, "device": str(device), "images": n,
            **{f"epoch{i + 1}_img_s": round(n / t, 1) for i, t in enumerate(times)},
            "later_epochs_img_s": round(n / later, 1), **extra}


def _gpu_rows(data_paths: list[Path], device: torch.device, cache_dir: Path) -> list[dict[str, Any]]:
    image_cfg = ImageConfig(size=SIZE, cache_dir=str(cache_dir))
    base = load_case_tensors(_table(data_paths), ["xray"], image_cfg)
    repeat = 10
    data = CaseTensors(base.x.repeat(repeat, 1, 1, 1), base.y.repeat(repeat), base.case_id * repeat,
                       base.patient_id * repeat).to(device)
    n = len(data)
    fp32 = _row("resnet18 64x64 fp32 contiguous", n, _train_epochs(data, device, epochs=EPOCHS), device)
    amp = _row("resnet18 64x64 AMP + channels-last", n,
               _train_epochs(data, device, epochs=EPOCHS, amp=True, channels_last=True), device,
               amp_dtype=str(amp_dtype_for(device, True)))
    return [fp32, amp, {"benchmark": "AMP+channels-last / fp32 images/s (epochs 2+)", "device": str(device),
                        "ratio": round(amp["later_epochs_img_s"] / fp32["later_epochs_img_s"], 2)}]


def run(n_files: int = 96, side: int = 2048) -> list[dict[str, Any]]:
    """Measure, print and return the rows (images/s per epoch; ratios cached / plain from epoch 2 on)."""
    device = resolve_device("auto")
    rows = []
    for encoding in ENCODINGS:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "cohort"
            folder.mkdir()
            paths = write_radiographs(folder, n_files, side=side, encoding=encoding)
            mb = sum(p.stat().st_size for p in paths) / len(paths) / 2**20
            name = f"{side}x{side} {encoding} ({mb:.1f} MB/file) -> resnet18 {SIZE[0]}x{SIZE[1]}"
            cached = _row(f"cached (medlib): {name}", n_files,
                          cached_epochs(paths, device, Path(tmp) / "cache"), device)
            plain = _row(f"decode every epoch: {name}", n_files, plain_epochs(paths, device), device)
            rows += [cached, plain, {"benchmark": f"cached / decode-every-epoch images/s (epochs 2+), {encoding}",
                                     "device": str(device),
                                     "ratio": round(cached["later_epochs_img_s"] / plain["later_epochs_img_s"], 2),
                                     "ratio_epoch1": round(cached["epoch1_img_s"] / plain["epoch1_img_s"], 2)}]
            if device.type == "cuda" and encoding == ENCODINGS[0]:
                rows += _gpu_rows(paths, device, Path(tmp) / "cache")
    for row in rows:
        print("  ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=96)
    parser.add_argument("--side", type=int, default=2048)
    args = parser.parse_args()
    run(args.files, args.side)
