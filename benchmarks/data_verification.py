"""What checking the data a run reads costs: KTH cache verification and MNIST pins, against
the same calls without the checks, measured in the same process.

KTH: ``--videos`` cache entries of ``--frames`` real-sized frames (120x160 uint8; the full
KTH is 599 videos of about 480 frames) are made from random frames (the decoder is replaced:
decoding is not what is measured). Then ``KTH.checksum()`` (what a run, ``eval`` and
``score`` call: it verifies every cache entry, then hashes the recorded digests) is timed as
each new process would see it:

* reference: verification switched off (what the code did before: read each entry's JSON);
* stamped: the usual case, each array verified before and unchanged since (a stat each);
* first use: no stamp (a cache made before verification existed, or every file rewritten):
  every array is hashed once, then stamped.

MNIST: ``check()`` then ``checksum()`` of a generated-test-set Moving MNIST on the real digits
(``$VPBENCH_TEST_DATA/mnist``), in a fresh process state, with the md5 pins checked (now)
against the same steps without them (before: parse the digits; hash them for the checksum).

    .venv/bin/python benchmarks/data_verification.py --videos 60 --frames 480 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import vpbench_kth.videos as kv
import vpbench_mmnist.dataset as mm
from vpbench.data.download import file_digest
from vpbench_kth.dataset import KTH
from vpbench_kth.videos import ACTIONS


def _median_time(fn: Callable[[], object], repeats: int, before: Callable[[], None]) -> float:
    times = []
    for _ in range(repeats):
        before()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _fresh_process() -> None:
    kv._hashed.clear()
    kv._checked.clear()


def kth(videos: int, frames: int, repeats: int, tmp: Path) -> None:
    root = tmp / "data"
    avi = root / "kth" / "avi"
    avi.mkdir(parents=True)
    names = [f"person{2 + i // 24:02d}_{ACTIONS[i % 6]}_d{1 + (i // 6) % 4}_uncomp.avi" for i in range(videos)]
    for name in names:
        (avi / name).write_bytes(name.encode())  # a placeholder: the decoder below ignores it
    rng = np.random.default_rng(0)
    real_decode = kv.decode_avi
    kv.decode_avi = lambda path: rng.integers(0, 256, size=(frames, 120, 160), dtype=np.uint8)  # type: ignore[assignment]
    try:
        KTH(KTH.Config(), root).build_cache()  # type: ignore[call-arg]
    finally:
        kv.decode_avi = real_decode
    size = sum(p.stat().st_size for p in (root / "kth" / "cache").glob("*.npy"))
    checksum = lambda: KTH(KTH.Config(), root).checksum()  # type: ignore[call-arg]  # noqa: E731

    real_verify = kv.Cache.verify
    kv.Cache.verify = lambda self, video, meta: None  # type: ignore[method-assign,assignment]
    try:
        reference = _median_time(checksum, repeats, _fresh_process)
    finally:
        kv.Cache.verify = real_verify  # type: ignore[method-assign]
    stamped = _median_time(checksum, repeats, _fresh_process)

    def unstamp() -> None:
        _fresh_process()
        for meta_path in (root / "kth" / "cache").glob("*.json"):
            meta = json.loads(meta_path.read_text())
            meta.pop("verified", None)
            meta_path.write_text(json.dumps(meta))

    first = _median_time(checksum, repeats, unstamp)
    print(f"KTH cache: {videos} videos x {frames} frames of 120x160 = {size / 1e9:.2f} GB; checksum(), median of {repeats}")
    print(f"  reference (no verification):      {reference * 1e3:8.1f} ms   1.00x")
    print(f"  stamped (verified before):        {stamped * 1e3:8.1f} ms   {stamped / reference:.2f}x")
    print(f"  first use (every array hashed):   {first * 1e3:8.1f} ms   {first / reference:.2f}x"
          f"   ({size / first / 1e9:.2f} GB/s hashed)")


def mmnist(repeats: int, tmp: Path) -> None:
    shared = os.environ.get("VPBENCH_TEST_DATA")
    if not shared or not (Path(shared) / "mnist" / "train-images-idx3-ubyte.gz").is_file():
        print("MNIST: skipped (set VPBENCH_TEST_DATA to shared/data for the real digits)")
        return
    root = tmp / "mm"
    (root / "mnist").mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        (root / "mnist" / name).symlink_to(Path(shared) / "mnist" / name)
    ds = mm.MovingMNIST(mm.MovingMNIST.Config(test_set="generated"), root)  # type: ignore[call-arg]

    def fresh() -> None:
        mm._digit_cache.clear()
        mm._md5_seen.clear()

    def before() -> None:  # the steps without the pins: parse both, hash both for the checksum
        for remote in (mm.TRAIN_DIGITS, mm.TEST_DIGITS):
            mm.load_digits(ds._require(remote))
        for remote in (mm.TRAIN_DIGITS, mm.TEST_DIGITS):
            file_digest(ds._require(remote), "md5")

    def now() -> None:
        ds.check()
        ds.checksum()

    reference = _median_time(before, repeats, fresh)
    checked = _median_time(now, repeats, fresh)
    print(f"MNIST digits (real, generated test set): check() + checksum() in a fresh process, median of {repeats}")
    print(f"  reference (no pin checks):        {reference * 1e3:8.1f} ms   1.00x")
    print(f"  pins checked where used:          {checked * 1e3:8.1f} ms   {checked / reference:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=60)
    parser.add_argument("--frames", type=int, default=480)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        kth(args.videos, args.frames, args.repeats, Path(tmp))
        mmnist(args.repeats, Path(tmp))


if __name__ == "__main__":
    main()
