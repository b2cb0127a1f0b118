"""Issue 23: how fast can S-HR-VQVAE's sampler be on this CPU? The floor under its stages.

The issue asks the sampler for 3x the sequences/s of the one before it and PredRNN's
sequences/s (``benchmarks/shrvq_sampler_speed.py`` measures both). This script measures, in
one process with one thread, at ``configs/shrvq-glyphs.yaml`` and its evaluation batch, what
no rearrangement of the per-voxel Python code can remove:

* ``attention``: the cached attention of every future voxel exactly as
  :class:`~vpbench_shrvq.prior.IncrementalSampler` computes it (q·K, softmax, ·V over the
  keys and values before the voxel, every attention layer), on random caches of the
  evaluation's shape; and ``read K, V``: summing the same key and value slices, i.e. only
  reading the bytes. When the two are close, the attention runs at the speed of reading its
  cache, which the order of the other operations does not change;
* ``attention, blocks of N``: the same with the batch cut into blocks of N sequences, each
  running all voxels before the next (what a kernel that keeps a block's cache in L2/L3 would
  do); this saves memory traffic but multiplies the per-voxel calls by the number of blocks;
* ``sampler at batch 1`` and ``at batch N``: the sampler's own seconds for 1 and ``--block``
  sequences; when the two are close, a block's time is per-call cost (Python and operator
  dispatch), not arithmetic, and N blocks cost N times it;
* ``encode``, ``context pass``, ``decode``: the stages around the loop, timed on the model (and
  encode and decode with all frames in one call, as before ``FRAME_CHUNK``);
* ``plain read``: one core's rate of reading a large contiguous tensor.

Then it prints the sum of the floors against the target time (the reference sampler's time
divided by 3, measured here too, and PredRNN's time for the same clips).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/shrvq_sampler_floor.py          # about 2 minutes
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/shrvq_sampler_floor.py --bf16   # + bf16 caches

Measured on the idle 2-core machine (2026-12-03, load average below 1), default arguments:

    attention 8.65 s (9.1 GB/s), read K, V 6.59 s (11.9 GB/s), plain read 23.7 GB/s;
    blocks of 16: 4.01 s, of 32: 6.93 s; encode 0.87 s (all frames at once 1.50 s), context
    pass 1.90 s, decode 0.87 s (all at once 1.10 s); the sampler at batch 1: 0.67 s, at
    batch 16: 1.40 s (x15.6 = 21.93 s)
    whole prediction: reference 31.94 s (target 3x: 10.65 s), PredRNN 9.85 s, current 13.40 s
    floor at batch 250: 12.28 s = 2.60x the reference at most; blocks of 16 without per-call
    cost: 7.65 s = 4.17x, but the sampler run in blocks of 16 takes about 21.9 s
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shrvq_sampler_speed import CONTEXT, HORIZON, config, test_clips, timed  # noqa: E402

import vpbench  # noqa: E402
from vpbench_rnn.predrnn import PredRNN  # noqa: E402
import vpbench_shrvq.model as model_mod  # noqa: E402
from vpbench_shrvq.model import SHRVQVAE  # noqa: E402
from vpbench_shrvq.prior import IncrementalSampler, fast_elu  # noqa: E402


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def attention_loop(
    batch: int, block: int, heads: int, dh: int, layers: int, ctx_len: int, total: int, read_only: bool,
    dtype: torch.dtype = torch.float32,
) -> float:
    """Seconds of the future voxels' attention (or of reading its caches) for ``batch`` sequences."""
    spent = 0.0
    for b0 in range(0, batch, block):
        bh = min(block, batch - b0) * heads
        caches = [(torch.randn(bh, dh, total, dtype=dtype), torch.randn(bh, total, dh, dtype=dtype)) for _ in range(layers)]
        q = torch.randn(bh, 1, dh, dtype=dtype)
        start = time.perf_counter()
        for idx in range(ctx_len, total):
            for kt, vc in caches:
                if read_only:
                    kt[..., : idx + 1].sum(), vc[:, : idx + 1].sum()
                else:
                    torch.bmm(torch.bmm(q, kt[..., : idx + 1]).softmax(-1), vc[:, : idx + 1])
        spent += time.perf_counter() - start
    return spent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cfg_file = config("shrvq-glyphs.yaml")
    ap.add_argument("--batch", type=int, default=cfg_file["eval"]["batch_size"], help="sequences (default: the glyphs eval batch)")
    ap.add_argument("--block", type=int, default=16, help="block size for the blocked rows (default 16)")
    ap.add_argument("--bf16", action="store_true", help="also time the attention with bf16 caches (about a minute more)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = SHRVQVAE.Config(**cfg_file["model"])
    shape = vpbench.FrameShape(1, 64, 64)
    torch.manual_seed(0)
    model = SHRVQVAE(cfg, shape, CONTEXT, HORIZON).eval()
    gh, gw = model.grid
    heads, dh = cfg.attn_heads, cfg.attn_dim // cfg.attn_heads
    ctx_len, total = CONTEXT * gh * gw, (CONTEXT + HORIZON) * gh * gw
    kv_bytes = 2 * cfg.prior_blocks * args.batch * heads * dh * 4 * sum(range(ctx_len + 1, total + 1))
    print(f"configs/shrvq-glyphs.yaml at batch {args.batch}, 1 thread: {HORIZON * gh * gw} future voxels, "
          f"{cfg.prior_blocks} attention layers of {heads} heads x {dh}; the future voxels' attention reads "
          f"{kv_bytes / 1e9:.1f} GB of keys and values")
    big = torch.randn(64_000_000 // 4)
    big.sum()
    read = min(seconds(big.sum) for _ in range(20))
    rows = [["plain read of 64 MB", f"{read * 1e3:.1f} ms", f"{0.064 / read:.1f} GB/s"]]
    loop = {}
    for name, block, read_only in [
        ("attention", args.batch, False), ("read K, V", args.batch, True),
        (f"attention, blocks of {args.block}", args.block, False), (f"attention, blocks of {2 * args.block}", 2 * args.block, False),
    ]:  # fmt: skip
        loop[name] = attention_loop(args.batch, block, heads, dh, cfg.prior_blocks, ctx_len, total, read_only)
        rate = f"{kv_bytes / loop[name] / 1e9:.1f} GB/s" if "blocks" not in name else ""
        rows.append([name, f"{loop[name]:.2f} s", rate])
        print(f"  {name}: {loop[name]:.2f} s", flush=True)
    if args.bf16:
        bf16 = attention_loop(args.batch, args.batch, heads, dh, cfg.prior_blocks, ctx_len, total, False, torch.bfloat16)
        rows.append(["attention, bf16 caches", f"{bf16:.2f} s", f"{bf16 / loop['attention']:.1f}x the fp32 time"])
    clips = test_clips(args.batch)[:, :CONTEXT]
    small = clips[: args.block]
    with torch.no_grad():
        model.encode_indices(small)  # first calls
        enc = seconds(lambda: model.encode_indices(clips))
        paths = model.quantizer.paths_of(model.encode_indices(clips), dim=1)
        trunk = seconds(lambda: model.prior.trunk(paths, {}, fast_elu))
        local = IncrementalSampler(model.prior).sample(paths[: args.block], HORIZON, model.picker(fast=True))
        per_block = seconds(lambda: IncrementalSampler(model.prior).sample(paths[: args.block], HORIZON, model.picker(fast=True)))
        per_one = seconds(lambda: IncrementalSampler(model.prior).sample(paths[:1], HORIZON, model.picker(fast=True)))
        future = torch.cat([local] * (args.batch // args.block + 1))[: args.batch]
        dec = seconds(lambda: model.decode_indices(future))
        chunk = model_mod.FRAME_CHUNK
        model_mod.FRAME_CHUNK = 1 << 30  # all frames in one call, as before the chunking
        try:
            enc_whole = seconds(lambda: model.encode_indices(clips))
            dec_whole = seconds(lambda: model.decode_indices(future))
        finally:
            model_mod.FRAME_CHUNK = chunk
    rows += [
        ["encode", f"{enc:.2f} s", f"all frames at once: {enc_whole:.2f} s"], ["context pass", f"{trunk:.2f} s", ""],
        ["decode", f"{dec:.2f} s", f"all frames at once: {dec_whole:.2f} s"],
        ["sampler at batch 1", f"{per_one:.2f} s", ""],
        [f"sampler at batch {args.block} (x{args.batch / args.block:.1f} = the batch)", f"{per_block:.2f} s",
         f"{per_block * args.batch / args.block:.2f} s"],
    ]  # fmt: skip
    print(tabulate(rows, headers=["stage", "time", "rate / scaled / before"]))
    def predict(reference: bool) -> Callable[[torch.Tensor], torch.Tensor]:
        def run(c: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return model.decode_indices(model.predict_indices(c, HORIZON, reference=reference))

        return run

    ref_s, _ = timed(predict(True), clips, args.batch)
    fast_s, _ = timed(predict(False), clips, args.batch)
    predrnn_cfg = config("predrnn-glyphs.yaml")
    torch.manual_seed(0)
    predrnn = PredRNN(PredRNN.Config(**predrnn_cfg["model"]), shape, CONTEXT, HORIZON).eval()
    with torch.no_grad():
        pr_s, _ = timed(lambda c: predrnn.predict(c, HORIZON), clips, predrnn_cfg.get("eval", {}).get("batch_size", 32))
    floor = loop["attention"] + enc + trunk + dec
    blocked = loop[f"attention, blocks of {args.block}"] + enc + trunk + dec
    print(f"\nwhole prediction (encode, sample, decode): reference sampler {ref_s:.2f} s, target 3x: {ref_s / 3:.2f} s; "
          f"PredRNN {pr_s:.2f} s; the current sampler {fast_s:.2f} s")
    print(f"floor at batch {args.batch} (attention + encode + context pass + decode, no other per-voxel work): {floor:.2f} s "
          f"= {ref_s / floor:.2f}x the reference at most")
    print(f"floor with blocks of {args.block} (blocked attention, no per-call cost at all): {blocked:.2f} s "
          f"= {ref_s / blocked:.2f}x; but the sampler itself run in blocks of {args.block} takes about "
          f"{per_block * args.batch / args.block:.1f} s for the {args.batch} (at batch 1 it already takes {per_one:.2f} s, "
          f"{per_one / per_block:.0%} of batch {args.block}'s time: that part is per-voxel calls, not arithmetic)")


if __name__ == "__main__":
    main()
