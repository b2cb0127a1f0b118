"""Training-loader throughput next to a model's train-step time: is loading what the GPU waits for?

Measures, for batch size B:
* mmnist: clips generated on the fly from MNIST digits (sequences/s);
* kth: clips read from the memory-mapped uint8 cache and resized to 128x128 (sequences/s);
* the train step (forward, backward, Adam) of a small conv predictor on the same batch shape.

Real data is used when found (``--data-root`` holding ``moving_mnist/`` or ``mnist/`` and
``kth/``, else ``$VPBENCH_TEST_DATA`` laid out like ``shared/data``); otherwise small synthetic
digits and AVIs are made in a temporary folder. Runs in well under two minutes:

    .venv/bin/python benchmarks/loader_speed.py --seconds 5 --workers 0 2

A loader running in the main process (0 workers) is also measured with one torch thread:
on a busy machine the batch collation contends for torch's thread pool with everything else.
"""

from __future__ import annotations

import argparse
import gzip
import os
import struct
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler

from vpbench_kth.dataset import KTH
from vpbench_mmnist.dataset import MovingMNIST


def _mnist_root(data_root: Path | None, tmp: Path) -> tuple[Path, str]:
    for root in [data_root, Path(os.environ["VPBENCH_TEST_DATA"]) if os.environ.get("VPBENCH_TEST_DATA") else None]:
        if root is None:
            continue
        for sub in ("moving_mnist", "mnist"):
            if (root / sub / "train-images-idx3-ubyte.gz").is_file():
                return root, f"real MNIST digits in {root / sub}"
    folder = tmp / "mm" / "moving_mnist"
    folder.mkdir(parents=True)
    images = np.random.default_rng(0).integers(0, 256, size=(1000, 28, 28), dtype=np.uint8)
    header = struct.pack(">BBBBIII", 0, 0, 8, 3, *images.shape)
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        (folder / name).write_bytes(gzip.compress(header + images.tobytes(), compresslevel=1))
    return tmp / "mm", "synthetic digits"


def _kth_root(data_root: Path | None, tmp: Path) -> tuple[Path, str]:
    if data_root is not None and (data_root / "kth").is_dir() and KTH(KTH.Config(), data_root).videos():
        return data_root, f"KTH under {data_root / 'kth'}"
    shared = os.environ.get("VPBENCH_TEST_DATA")
    avi = tmp / "kth" / "kth" / "avi"
    avi.mkdir(parents=True)
    if shared and (Path(shared) / "kth" / "avi").is_dir():
        for f in (Path(shared) / "kth" / "avi").glob("*.avi"):
            (avi / f.name).symlink_to(f)
        return tmp / "kth", f"the real KTH AVIs in {Path(shared) / 'kth' / 'avi'}"
    import av

    for name, n in (("person01_boxing_d1_uncomp.avi", 300), ("person01_jogging_d2_uncomp.avi", 300)):
        with av.open(str(avi / name), "w") as c:
            s = c.add_stream("mpeg4", rate=25)
            s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
            for k in range(n):
                img = np.random.default_rng(k).integers(0, 256, (120, 160, 3), dtype=np.uint8)
                for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    c.mux(p)
            for p in s.encode():
                c.mux(p)
    return tmp / "kth", "synthetic AVIs"


def loader_rate(split: Dataset[torch.Tensor], batch: int, workers: int, seconds: float) -> float:
    """Sequences per second a shuffled DataLoader delivers (after a warm-up batch)."""
    sampler = RandomSampler(split, replacement=True, num_samples=10**7)  # type: ignore[arg-type]
    loader = DataLoader(split, batch_size=batch, sampler=sampler, num_workers=workers,
                        persistent_workers=workers > 0, prefetch_factor=4 if workers else None)
    it = iter(loader)
    next(it)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        n += next(it).shape[0]
    rate = n / (time.perf_counter() - start)
    del it
    return rate


class SmallConv(nn.Module):
    """Per-frame conv net predicting all S frames from the T context frames stacked as channels."""

    def __init__(self, c: int, t: int, s: int, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(c * t, hidden, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, c * s, 3, padding=1),
        )  # fmt: skip
        self.s = s

    def forward(self, ctx: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = ctx.shape
        return self.net(ctx.reshape(b, t * c, h, w)).reshape(b, self.s, c, h, w)


def step_time(batch: torch.Tensor, t: int, device: str, steps: int) -> float:
    """Seconds per optimiser step of :class:`SmallConv` on ``batch`` ``[B, T+S, C, H, W]``."""
    batch = batch.to(device)
    model = SmallConv(batch.shape[2], t, batch.shape[1] - t).to(device)
    opt = torch.optim.Adam(model.parameters(), 1e-3)

    def one() -> None:
        loss = ((model(batch[:, :t]) - batch[:, t:]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    one()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        one()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", type=Path, default=None)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=5.0, help="measuring time per loader setting")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--steps", type=int, default=5, help="timed train steps per dataset")
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    threads0 = torch.get_num_threads()
    print(f"device {device}, torch threads {torch.get_num_threads()}, cpu cores {os.cpu_count()}, batch {args.batch_size}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        root, what = _mnist_root(args.data_root, tmp)
        mm = MovingMNIST(MovingMNIST.Config(test_set="generated"), root)
        rows.append(("mmnist", what, mm.split("train"), mm.context))
        root, what = _kth_root(args.data_root, tmp)
        kth = KTH(KTH.Config(), root)
        t0 = time.perf_counter()
        decoded = kth.build_cache()
        print(f"kth: decoded {decoded} videos into the cache in {time.perf_counter() - t0:.1f} s ({what})")
        rows.append(("kth", what, kth.split("train"), kth.context))
        print(f"{'dataset':8} {'loader':>10} {'seq/s':>9}   {'train step':>10} {'seq/s':>9}   data")
        for name, what, split, t in rows:
            batch = torch.stack([split[i] for i in range(args.batch_size)])
            step = step_time(batch, t, device, args.steps)
            settings = [(w, threads) for w in args.workers for threads in ([threads0, 1] if w == 0 else [threads0])]
            for w, threads in dict.fromkeys(settings):
                torch.set_num_threads(threads)  # collate in the main process uses torch's thread pool
                rate = loader_rate(split, args.batch_size, w, args.seconds)
                torch.set_num_threads(threads0)
                label = f"{w}w/{threads}thr"
                print(f"{name:8} {label:>10} {rate:9.1f}   {step * 1e3:8.1f}ms {args.batch_size / step:9.1f}   "
                      f"{what}, clip {tuple(batch.shape[1:])}")


if __name__ == "__main__":
    main()
