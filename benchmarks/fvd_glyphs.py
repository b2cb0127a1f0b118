"""FVD of the baselines and an S-HR-VQVAE run on the glyphs test clips, driving the metric directly.

    # the real network (what a user with StyleGAN-V's i3d_torchscript.pt runs):
    VPBENCH_FVD_WEIGHTS=/path/to/i3d_torchscript.pt .venv/bin/python benchmarks/fvd_glyphs.py --run RUN_DIR
    # no real file: a TorchScript stand-in with the same call contract (tests/fvd_standin.py),
    # its hash accepted for this process only; its numbers show the pipeline, not FVD values
    .venv/bin/python benchmarks/fvd_glyphs.py --standin --run RUN_DIR [--clips 256]

Predictors: blank, copy-last, mean-context (the harness's baselines) and, with ``--run``, the
checkpoint of a `vpbench run` of any model on glyphs (best.pt). The truth features are
computed once per batch for all of them (``update_many``). Prints one line per predictor:
FVD, bootstrap spread, clips, and the protocol once.

Measured with ``--standin --clips 256`` on the shared 2-core machine (1 thread, under load;
7.8 min, 5.9 of them in the stand-in's features), RUN_DIR a tiny S-HR-VQVAE
(configs/shrvq-glyphs.yaml with train.max_steps=600, best at step 300: MSE 198.9, SSIM 0.759
on 64 test clips). Stand-in numbers, not FVDs: they show the pipeline and the ranking only.

    blank          45.22 ± 2.62    copy-last      26.36 ± 1.88
    mean-context   40.00 ± 2.27    shrvq (300)    26.91 ± 1.59     (n 256, 20 bootstrap draws)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import torch

from vpbench.components import build_dataset, build_model
from vpbench.engine.saved import build_saved, read_run
from vpbench.plugins import get_registry
from vpbench_fvd.metric import FVD
from vpbench_fvd.weights import accepting

BASELINES = ("blank", "copy-last", "mean-context")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, help="a `vpbench run` directory on glyphs (its best checkpoint is scored)")
    parser.add_argument("--clips", type=int, default=256, help="glyphs test clips (the first N)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--standin", action="store_true", help="use the stand-in network of tests/fvd_standin.py")
    parser.add_argument("--bootstrap", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    registry = get_registry()
    data_root = Path(tempfile.mkdtemp(prefix="fvd-glyphs-"))

    with ExitStack() as stack:
        options: dict[str, object] = {"bootstrap": args.bootstrap}
        if args.standin:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
            from fvd_standin import save_standin

            path = data_root / "standin_i3d.pt"
            stack.enter_context(accepting(save_standin(path, seed=0)))
            options["weights"] = str(path)
        metric = FVD(**options)  # type: ignore[arg-type]
        reason = metric.available()
        if reason is not None:
            raise SystemExit(f"error: {reason}")

        dataset = build_dataset(registry, "glyphs", {"test_length": args.clips}, data_root, seed=0)
        shape, ctx, hor = dataset.frame_shape, dataset.context, dataset.horizon
        models = {name: build_model(registry, name, {}, shape, ctx, hor).eval() for name in BASELINES}
        if args.run is not None:
            saved = read_run(args.run, registry)
            _, model, ckpt = build_saved(saved, registry, data_root, torch.device("cpu"))
            models[f"{saved.model} ({ckpt.kind} step {ckpt.step})"] = model
        test = dataset.split("test")
        states = {name: metric.new_state() for name in models}
        seconds = dict.fromkeys(models, 0.0)
        t0 = time.perf_counter()
        for lo in range(0, args.clips, args.batch):
            clips = torch.stack([test[i] for i in range(lo, min(lo + args.batch, args.clips))])
            context, future = clips[:, :ctx], clips[:, ctx:]
            preds = []
            for name, model in models.items():
                t = time.perf_counter()
                torch.manual_seed(lo)  # a sampling model draws the same futures on every call
                with torch.no_grad():
                    preds.append(model.predict(context, hor).float())
                seconds[name] += time.perf_counter() - t
            metric.update_many([states[n] for n in models], preds, future, context)
        features_s = time.perf_counter() - t0 - sum(seconds.values())
        info = None
        for name, state in states.items():
            t = time.perf_counter()
            value = metric.compute(state)
            spread = f"{value.spread:.2f}" if value.spread is not None else "-"
            print(f"{name:32s} FVD {value.value:10.2f}  ± {spread:>8s}  n {value.n}  "
                  f"(predict {seconds[name]:.1f} s, compute {time.perf_counter() - t:.1f} s)")
            info = value.info
        print(f"features: {features_s:.1f} s for {args.clips} clips x {len(models) + 1} sets")
        print("protocol:", json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
