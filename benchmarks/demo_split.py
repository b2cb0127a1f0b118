"""The README demo's timing split (train / test), the way before issue 23 and now, back to back.

The demo is ``vpbench run --model shrvq --dataset glyphs`` at ``configs/shrvq-glyphs.yaml``
(2,440 steps, validation on 16 clips every 610, then the 1,000-clip test pass). In one
process, one thread, this script runs it twice on the same seed, ``old`` then ``new``:

* train: ``execute_run`` of the demo config, optionally shortened (``--train-steps``: the
  validation count is kept, ``eval_every`` = steps / 4), with a 4-clip test set and no
  profile, so its time is the training's (``record.train.wall_time_s``). In ``old``,
  S-HR-VQVAE's validation predictions use ``ReferenceIncrementalSampler`` (the sampler
  before issue 23); the training steps themselves did not change in issue 23.
* test: the demo's test pass on that run's checkpoint, ``--clips`` clips, timed stage by
  stage with ``benchmarks/eval_speed.py``'s ``test_pass``: ``old`` = the path before issue 23
  (reference sampler, former metrics, baselines scored, FLOPs re-counted, clips regenerated
  for the checksum), ``new`` = the current path with an empty cache (a first demo), and
  ``new (warm)`` = the current path again (a repeated demo: baselines and FLOPs cached).

Both runs train from the same seed, so the checkpoints are the same up to the validation
that selects ``best.pt`` (same tokens, so the same choice); the script checks that the test
numbers print the same.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/demo_split.py                       # the whole demo, twice
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/demo_split.py --train-steps 100 --clips 250

Measured on the shared 2-core machine (load average 6-16 from other jobs), ``--train-steps 100
--clips 250``, before the warm-up was added (train s / test s):

    old first:  old 270.2 / 154.6, new 65.6 / 75.6, new warm 65.6 / 43.4
    new first:  new 117.7 / 172.7, new warm 117.7 / 33.9, old 55.5 / 112.6

so the order decided the ratio (test old/new 2.04x one way, 0.65x the other): the first path
in the process paid the first calls, and the load moved between runs. The whole demo (2,440
steps, 1,000 clips) twice did not fit in the session. Test numbers printed the same every time.
With the warm-up (load average 7-9), same arguments:

    path        train s  test s  total s  test share
    old            79.0   105.3    184.3        57%
    new            75.6    41.3    116.9        35%
    new (warm)     75.6    29.0    104.6        28%
    old / new: train 1.05x, test 2.55x, total 1.58x; warm: test 3.63x, total 1.76x
    sampler in the test pass: 56.1 s old, 25.5 s new, 24.4 s warm (2.2x)

The whole demo, default arguments, on the idle machine (2026-12-03, load average about 1: this
script alone; code of eb359b8), 29 min 33 s in all:

    path        train s  test s  total s  test share
    old           758.5   145.8    904.3        16%
    new           684.3    74.7    759.0        10%
    new (warm)    684.3    62.4    746.8         8%
    old / new: train 1.11x, test 1.95x, total 1.19x; warm: test 2.33x, total 1.21x
    sampler in the test pass: 111.3 s old, 55.8 s new, 56.4 s warm (2.0x);
    the rest of the test pass: 34.5 s old, 18.9 s new, 6.0 s warm (1.8x / 5.8x)

The test pass is now 75% (cold) to 90% (warm) sampler. benchmarks/shrvq_sampler_floor.py puts
the sampler's floor at batch 250 at 2.6-2.7x the reference sampler's time, and here the reference
took 111.3 s: a floor of about 41-43 s for the 1,000 clips. The 3x (48.6 s) leaves the sampler
29.7 s cold, below that floor, and 42.6 s warm, at it. Test numbers printed the same in all passes.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_speed import FORMAT, test_pass  # noqa: E402

from vpbench.config import default_config_file, load_yaml  # noqa: E402
from vpbench.engine.run import RunRequest, execute_run  # noqa: E402
from vpbench.plugins import get_registry  # noqa: E402
from vpbench_shrvq.model import SHRVQVAE  # noqa: E402

MODEL, DATASET = "shrvq", "glyphs"


def train(registry: Any, mode: str, steps: int | None, root: Path) -> tuple[float, dict[str, Any], Path]:
    """Train the demo config: (train wall s, model config, best.pt)."""
    sets = ["dataset.test_length=4", "eval.profile=false"]
    if steps is not None:
        sets += [f"train.max_steps={steps}", f"train.eval_every={max(1, steps // 4)}"]
    original = SHRVQVAE.predict_indices
    if mode == "old":  # validation predictions with the sampler before issue 23
        SHRVQVAE.predict_indices = functools.partialmethod(original, reference=True)  # type: ignore[assignment]
    try:
        req = RunRequest(model=MODEL, dataset=DATASET, sets=sets, out=root / f"train-{mode}", device="cpu",
                         progress=False, data_root=root / f"data-{mode}")
        record, run_dir = execute_run(req, registry, echo=lambda s: None)
    finally:
        SHRVQVAE.predict_indices = original  # type: ignore[method-assign]
    return record.train.wall_time_s, record.model.config, run_dir / "checkpoints" / "best.pt"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-steps", type=int, default=None, help="training steps (default: the demo's 2,440)")
    ap.add_argument("--clips", type=int, default=1000, help="test clips (default: the demo's 1,000)")
    ap.add_argument("--new-first", action="store_true", help="run the new path first (to see the order's effect)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    registry = get_registry()
    source = default_config_file(MODEL, DATASET)
    batch = int((load_yaml(source) if source else {}).get("eval", {}).get("batch_size", 32))
    steps = args.train_steps or int((load_yaml(source) if source else {}).get("train", {}).get("max_steps", 0))
    print(f"README demo ({MODEL} on {DATASET}, {source}), 1 thread: {steps} training steps, {args.clips} test clips, "
          f"eval batch {batch}")
    rows: dict[str, tuple[float, float]] = {}
    results = {}
    with tempfile.TemporaryDirectory(prefix="vpbench-demo-split-") as tmp:
        root = Path(tmp)
        # untimed warm-up of both paths (first calls: oneDNN kernels, allocator, imports): without
        # it, whichever path runs first was 2-4x slower on the shared machine, in either order
        for mode in ("old", "new"):
            _, cfg, ckpt = train(registry, mode, 2, root / f"warm-up-{mode}")
            test_pass("old" if mode == "old" else "cold", registry, MODEL, cfg, ckpt, 8, 8,
                      root / f"warm-up-{mode}" / "data", root / "warm-up-runs")
        print("  (warm-up of both paths done)", flush=True)
        for mode in ("new", "old") if args.new_first else ("old", "new"):
            wall, cfg, ckpt = train(registry, mode, args.train_steps, root)
            print(f"  {mode}: trained in {wall:.1f} s", flush=True)
            data_root = root / f"test-data-{mode}"
            passes = ["old"] if mode == "old" else ["cold", "warm"]
            for p in passes:
                t0 = time.perf_counter()
                clock, res = test_pass(p, registry, MODEL, cfg, ckpt, args.clips, batch, data_root, root / "runs")
                test_s = time.perf_counter() - t0
                label = {"old": "old", "cold": "new", "warm": "new (warm)"}[p]
                rows[label] = (wall, test_s)
                results[label] = res
                print(f"  {label}: test pass {test_s:.1f} s (sampler {clock.get(f'predict {MODEL}', 0.0):.1f} s)", flush=True)
    print(f"\n{'path':<12}{'train s':>10}{'test s':>10}{'total s':>10}{'test share':>12}")
    for label in ("old", "new", "new (warm)"):
        tr, te = rows[label]
        print(f"{label:<12}{tr:10.1f}{te:10.1f}{tr + te:10.1f}{te / (tr + te):11.0%}")
    old_tr, old_te = rows["old"]
    for label in ("new", "new (warm)"):
        tr, te = rows[label]
        print(f"old / {label}: train {old_tr / tr:.2f}x, test {old_te / te:.2f}x, total {(old_tr + old_te) / (tr + te):.2f}x")
    same = all(
        format(v.mean, FORMAT[m]) == format(results[label][pred].metrics["openstl"][m].mean, FORMAT[m])
        for label in ("new", "new (warm)")
        for pred, r in results["old"].items()
        for m, v in r.metrics["openstl"].items()
    )
    print(f"test numbers print the same in all passes: {same}")


if __name__ == "__main__":
    main()
