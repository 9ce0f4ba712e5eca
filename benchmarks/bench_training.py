"""Training throughput: the cached in-memory pipeline against decoding image files every epoch.

Run by hand (not a test): ``.venv/bin/python benchmarks/bench_training.py``. ``run()`` returns the rows as
dictionaries so ``medlib bench`` can collect them.

1. ResNet18 (2D, 1 channel) at 64x64, batch 32, Adam, no augmentation, 2 epochs per pipeline over 200
   synthetic 256x256 16-bit DICOM files written to a temporary folder:
   * cached: every file is decoded and resized once into a ``CaseTensors`` (on the GPU when there is one),
     and ``medlib.train.train_one_epoch`` indexes that tensor;
   * plain: a ``torch.utils.data.DataLoader`` whose dataset reads, decodes and resizes every file on every
     epoch (the usual tutorial loop), with the same training step.
   Both use the same decoder; images/s of the second epoch (the first includes warm-up) and their ratio.
2. On CUDA only: the cached pipeline with mixed precision (bf16, or fp16 + GradScaler) and channels-last
   against fp32 with contiguous memory, on the 200 images repeated 10x, batch 128.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from medlib.data import CaseTensors
from medlib.models import build_model
from medlib.train import amp_dtype_for, resolve_device, seed_everything, train_one_epoch

SIZE = 64


def write_dicoms(folder: Path, n: int = 200, side: int = 256, seed: int = 0) -> list[Path]:
    """``n`` synthetic 16-bit MONOCHROME2 DICOM files (a bright disc on noise for the positives)."""
    from pydicom.dataset import FileMetaDataset, Dataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side]
    disc = (yy - side / 2) ** 2 + (xx - side / 2) ** 2 < (side / 5) ** 2
    paths = []
    for i in range(n):
        img = rng.normal(1000, 200, (side, side)) + (i % 2) * 400 * disc
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.PatientID, ds.Modality = f"P{i:04d}", "DX"
        ds.Rows = ds.Columns = side
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = np.clip(img, 0, 65535).astype(np.uint16).tobytes()
        path = folder / f"case_{i:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def decode(path: Path) -> torch.Tensor:
    """Read a DICOM file, resize to SIZE x SIZE and z-score it: ``[1, SIZE, SIZE]`` float32."""
    import pydicom

    pixels = pydicom.dcmread(path).pixel_array.astype(np.float32)
    img = F.interpolate(torch.from_numpy(pixels)[None, None], size=(SIZE, SIZE), mode="bilinear",
                        antialias=True)[0]
    return (img - img.mean()) / (img.std() + 1e-6)


class DecodingDataset(torch.utils.data.Dataset):
    """The plain loop's dataset: decodes its file on every access."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return decode(self.paths[i]), i % 2


def _setup(device: torch.device, *, channels_last: bool = False):
    seed_everything(0)
    model = build_model("resnet18", in_channels=1, image_size=(SIZE, SIZE)).to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3), torch.nn.CrossEntropyLoss()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cached_epochs(paths: list[Path], device: torch.device, *, epochs: int = 2, batch_size: int = 32,
                  repeat: int = 1, amp: bool = False, channels_last: bool = False) -> list[float]:
    """Seconds per epoch of ``train_one_epoch`` over the images decoded once into memory."""
    x = torch.stack([decode(p) for p in paths]).repeat(repeat, 1, 1, 1)
    n = len(x)
    data = CaseTensors(x, torch.arange(n) % 2, tuple(map(str, range(n))), tuple(map(str, range(n)))).to(device)
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


def plain_epochs(paths: list[Path], device: torch.device, *, epochs: int = 2, batch_size: int = 32) -> list[float]:
    """Seconds per epoch of a DataLoader loop that decodes every file on every epoch."""
    loader = torch.utils.data.DataLoader(DecodingDataset(paths), batch_size=batch_size, shuffle=True,
                                         generator=torch.Generator().manual_seed(0), drop_last=False)
    model, opt, loss_fn = _setup(device)
    model.train()
    times = []
    for _ in range(epochs):
        _sync(device)
        start = time.perf_counter()
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


def _row(name: str, n: int, times: list[float], device: torch.device, **extra: Any) -> dict[str, Any]:
    return {"benchmark": name, "device": str(device), "images": n, "epoch1_s": round(times[0], 3),
            "epoch2_s": round(times[-1], 3), "images_per_s": round(n / times[-1], 1), **extra}


def run(n_files: int = 200) -> list[dict[str, Any]]:
    """Measure, print and return the rows (images/s of the second epoch; ratios in the last rows)."""
    device = resolve_device("auto")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_dicoms(Path(tmp), n_files)
        start = time.perf_counter()
        for p in paths:
            decode(p)
        decode_s = time.perf_counter() - start
        cached = _row("resnet18 64x64 cached in memory", n_files, cached_epochs(paths, device), device)
        plain = _row("resnet18 64x64 decode every epoch", n_files, plain_epochs(paths, device), device)
        rows += [cached, plain, {"benchmark": "cached / decode-every-epoch images/s (epoch 2)",
                                 "device": str(device), "ratio": round(cached["images_per_s"] /
                                                                       plain["images_per_s"], 2),
                                 "decode_only_images_per_s": round(n_files / decode_s, 1)}]
        if device.type == "cuda":
            repeat = 10
            fp32 = _row("resnet18 64x64 fp32 contiguous", n_files * repeat,
                        cached_epochs(paths, device, batch_size=128, repeat=repeat), device)
            amp = _row("resnet18 64x64 AMP + channels-last", n_files * repeat,
                       cached_epochs(paths, device, batch_size=128, repeat=repeat, amp=True, channels_last=True),
                       device, amp_dtype=str(amp_dtype_for(device, True)))
            rows += [fp32, amp, {"benchmark": "AMP+channels-last / fp32 images/s (epoch 2)", "device": str(device),
                                 "ratio": round(amp["images_per_s"] / fp32["images_per_s"], 2)}]
    for row in rows:
        print("  ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    return rows


if __name__ == "__main__":
    run()
