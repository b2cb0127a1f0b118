"""Issue 23: S-HR-VQVAE's incremental sampler against the one it replaced, and against PredRNN.

In one process, with one thread, on the same glyph test clips (the embedded dataset, 10 -> 10):

* ``reference``: S-HR-VQVAE prediction with :class:`ReferenceIncrementalSampler` (the cached
  sampler before issue 23, kept callable for this comparison);
* ``fast``: the same weights with :class:`IncrementalSampler` (what ``vpbench eval`` runs);
* ``predrnn``: PredRNN at ``configs/predrnn-glyphs.yaml`` predicting the same clips at its
  evaluation batch (that config's ``eval.batch_size``, else the harness default).

Each S-HR-VQVAE row times the whole prediction (encode the context, sample the future codes,
decode frames) at ``configs/shrvq-glyphs.yaml``'s evaluation batch (250). The weights are a
seeded initialisation: the sampler's work per voxel does not depend on training (the
tokens-identical check on a *trained* model is tests/test_shrvq_sampler.py). Prints
sequences/s, the ratios, and whether the two samplers produced identical tokens. Targets
(issue 23): fast >= 3x reference, fast >= PredRNN.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/shrvq_sampler_speed.py                  # 250 clips, ~1-2 min on an idle core
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/shrvq_sampler_speed.py --sequences 16 --batch 8
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml
from tabulate import tabulate

import vpbench
from vpbench.config import EvalConfig
from vpbench_glyphs.dataset import GlyphsDataset
from vpbench_rnn.predrnn import PredRNN
from vpbench_shrvq.model import SHRVQVAE

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
CONTEXT, HORIZON = 10, 10


def config(name: str) -> dict[str, Any]:
    return yaml.safe_load((CONFIGS / name).read_text())  # type: ignore[no-any-return]


def test_clips(n: int) -> torch.Tensor:
    ds = GlyphsDataset(GlyphsDataset.Config(), data_root=None, seed=0)  # type: ignore[arg-type]
    split = ds.split("test")
    return torch.stack([split[i] for i in range(n)])  # [N, 20, 1, 64, 64]


def timed(fn: Callable[[torch.Tensor], torch.Tensor], ctx: torch.Tensor, batch: int) -> tuple[float, torch.Tensor]:
    """Seconds to run ``fn`` over ``ctx`` in batches, and the concatenated outputs."""
    outs = []
    start = time.perf_counter()
    for chunk in ctx.split(batch):
        outs.append(fn(chunk))
    return time.perf_counter() - start, torch.cat(outs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    shrvq_cfg, predrnn_cfg = config("shrvq-glyphs.yaml"), config("predrnn-glyphs.yaml")
    ap.add_argument("--sequences", type=int, default=250, help="test clips predicted by every model (default 250)")
    ap.add_argument("--batch", type=int, default=shrvq_cfg["eval"]["batch_size"], help="S-HR-VQVAE batch (default: its glyphs eval batch)")
    predrnn_batch = predrnn_cfg.get("eval", {}).get("batch_size", EvalConfig().batch_size)
    ap.add_argument("--predrnn-batch", type=int, default=predrnn_batch, help="PredRNN batch (default: its glyphs eval batch)")
    ap.add_argument("--skip-reference", action="store_true", help="time only the fast sampler and PredRNN")
    args = ap.parse_args()
    torch.set_num_threads(1)
    shape = vpbench.FrameShape(1, 64, 64)
    torch.manual_seed(0)
    shrvq = SHRVQVAE(SHRVQVAE.Config(**shrvq_cfg["model"]), shape, CONTEXT, HORIZON).eval()
    torch.manual_seed(0)
    predrnn = PredRNN(PredRNN.Config(**predrnn_cfg["model"]), shape, CONTEXT, HORIZON).eval()
    ctx = test_clips(args.sequences)[:, :CONTEXT]
    print(
        f"{args.sequences} glyph test clips, {CONTEXT} -> {HORIZON} frames, 1 thread; S-HR-VQVAE "
        f"(configs/shrvq-glyphs.yaml, decoding {shrvq.decoding()}) at batch {args.batch}, PredRNN "
        f"(configs/predrnn-glyphs.yaml) at batch {args.predrnn_batch}"
    )

    def shrvq_predict(reference: bool) -> Callable[[torch.Tensor], torch.Tensor]:
        def run(c: torch.Tensor) -> torch.Tensor:
            torch.manual_seed(1)  # the same stream for both samplers (matters for sampling=sample)
            local = shrvq.predict_indices(c, HORIZON, reference=reference)
            with torch.no_grad():
                shrvq.decode_indices(local).clamp(0, 1)
            return local

        return run

    def predrnn_predict(c: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return predrnn.predict(c, HORIZON)

    rows, secs, tokens = [], {}, {}
    runs: list[tuple[str, Callable[[torch.Tensor], torch.Tensor], int]] = [("fast", shrvq_predict(False), args.batch)]
    if not args.skip_reference:
        runs.append(("reference", shrvq_predict(True), args.batch))
    runs.append(("predrnn", predrnn_predict, args.predrnn_batch))
    for name, fn, batch in runs:
        secs[name], tokens[name] = timed(fn, ctx, batch)
        rows.append([name, batch, f"{secs[name]:.2f}", f"{args.sequences / secs[name]:.2f}"])
        print(f"  {name}: {secs[name]:.2f} s", flush=True)
    print(tabulate(rows, headers=["run", "batch", "seconds", "sequences/s"]))
    if "reference" in secs:
        same = torch.equal(tokens["fast"], tokens["reference"])
        print(f"tokens identical (fast vs reference sampler): {same}")
        print(f"fast / reference sequences/s: {secs['reference'] / secs['fast']:.2f}x (target >= 3x)")
    print(f"fast / PredRNN sequences/s:    {secs['predrnn'] / secs['fast']:.2f}x (target >= 1x)")


if __name__ == "__main__":
    main()
