"""A short Moving-MNIST run of every trained model, each with a time limit, whose records come back.

Part of ``benchmarks/device_check.sh`` (docs/device.md). For each registered trainable model
(so a model added later gets a run too) it runs the real command line,

    python -m vpbench run --model M --dataset mmnist --device D --seed 0 --out OUT/M-mmnist-TAG-smoke \\
        --set dataset.test_set=generated --set train.max_steps=STEPS ...

with the model's OpenSTL-sized config (``configs/M-mmnist.yaml``), a fixed small budget
(``--steps`` optimiser steps at the config's batch size, one validation at the end,
``--test-clips`` clips of the *generated* test set: the standard ``mnist_test_seq.npy`` is not
available to this project), and writes ``runs.md``: steps done, training time and the test
metrics beside the ``blank`` and ``copy-last`` baselines scored on the same clips.

TAG names the hardware (``h200`` on an NVIDIA H200), so a folder can go to
``leaderboards/records/mmnist/`` as it is (a record's run id is its folder's name).

Each run has a deadline: its share of ``--budget`` (what is left, at most ``--cap``, keeping
30 s for each model still to come), of which 70% for ``vpbench run``. At the deadline it gets
Ctrl-C (SIGINT), which makes
vpbench write a resumable checkpoint; the script then scores that checkpoint with
``vpbench eval --checkpoint last`` (the record says how many steps were done), so a run that
is slower than planned still leaves a record instead of nothing.

These are smoke records, not results: a few hundred steps, 64 generated test clips. They show
that the CUDA path trains and scores, on which hardware (the record's ``hardware``), and at
what speed. ``--tiny``: the tiny variants with a few steps, a rehearsal on a CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def trainable_models(only: list[str] | None) -> list[tuple[str, dict[str, object]]]:
    from vpbench.plugins import get_registry

    reg = get_registry()
    names = [e.spec.name for e in reg.models if e.spec.trainable]
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise SystemExit(f"device_runs.py: not a trainable model: {', '.join(unknown)}; trainable: {', '.join(names)}")
        names = [n for n in names if n in only]
    return [(n, dict(reg.models.get(n).tiny)) for n in names]


def run_command(model: str, tiny: dict[str, object] | None, args: argparse.Namespace, out: Path) -> list[str]:
    vp = [sys.executable, "-m", "vpbench"]
    cmd = vp + ["run", "--model", model, "--dataset", "mmnist", "--device", args.device, "--seed", "0", "--out", str(out),
                "--no-progress", "--data-root", str(args.data_root)]  # fmt: skip
    steps = args.steps or (4 if tiny is not None else 150)
    clips = args.test_clips or (4 if tiny is not None else 64)
    sets = [
        "dataset.test_set=generated", f"dataset.generated_test_length={clips}", f"dataset.val_length={clips}",
        f"train.max_steps={steps}", f"train.eval_every={steps}", f"train.val_sequences={clips}",
        f"train.checkpoint_every={max(1, steps // 4)}", "eval.profile=false",
    ]  # fmt: skip
    if tiny is not None:
        cmd += ["--config", str(args.empty)]
        sets += ["train.batch_size=2", "dataset.train_length=64"] + [f"model.{k}={v}" for k, v in tiny.items()]
    return cmd + [x for s in sets for x in ("--set", s)]


def run_with_deadline(cmd: list[str], log: Path, timeout: float, grace: float = 60.0) -> tuple[str, float]:
    """Run ``cmd`` (output to ``log``); at ``timeout`` send SIGINT, after ``grace`` more SIGKILL."""
    start = time.monotonic()
    with log.open("a") as fh:
        fh.write(" ".join(cmd) + "\n\n")
        fh.flush()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
        try:
            rc = proc.wait(timeout=timeout)
            status = "finished" if rc == 0 else f"exit {rc}"
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            try:
                rc = proc.wait(timeout=grace)
                status = f"stopped at the {timeout:.0f} s deadline (exit {rc})"
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                status = f"killed: no exit {grace:.0f} s after Ctrl-C at the {timeout:.0f} s deadline"
        fh.write(f"\n[{status}, {time.monotonic() - start:.1f} s]\n\n")
    return status, time.monotonic() - start


def device_tag(device: str) -> str:
    """``h200`` for an "NVIDIA H200", ``cpu`` on the CPU: the hardware in the run folders' names."""
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            words = torch.cuda.get_device_name(0).lower().replace("nvidia", "").split()
            return "-".join(w for w in words if w.isalnum()) or "gpu"
        return "gpu"
    return device


def _mean(metrics: dict[str, Any], name: str) -> float | None:
    res = metrics.get("openstl", {}).get(name)
    return None if res is None else float(res["mean"])


def summarise(model: str, status: str, seconds: float, record_path: Path | None) -> dict[str, Any]:
    row: dict[str, Any] = {"model": model, "status": status, "seconds": round(seconds, 1)}
    if record_path is None or not record_path.is_file():
        return row
    rec = json.loads(record_path.read_text())
    row.update(
        record=str(record_path.parent.name),
        steps=rec["train"]["steps_done"],
        train_s=round(rec["train"]["wall_time_s"], 1),
        batch=rec["train"]["config"]["batch_size"],
        test_clips=rec["test_sequences"],
        hardware=rec["hardware"].get("gpu") or rec["hardware"].get("cpu"),
        flags=",".join(rec.get("flags", [])),
    )
    for name in ("mse", "ssim", "lpips"):
        row[name] = _mean(rec["metrics"], name)
        for base in ("blank", "copy-last"):
            row[f"{base}_{name}"] = _mean(rec.get("baselines", {}).get(base, {}), name)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="See docs/device.md.")
    ap.add_argument("--device", default="cuda", help="cuda or cpu (default cuda)")
    ap.add_argument("--out", type=Path, required=True, help="folder for the run directories, runs.md and one <model>.log each")
    ap.add_argument("--data-root", type=Path, default=Path(os.environ.get("VPBENCH_DATA", ".whl/data")),
                    help="data root holding mnist/*.gz (default $VPBENCH_DATA, else .whl/data)")  # fmt: skip
    ap.add_argument("--tiny", action="store_true", help="tiny variants, 4 steps of 2 clips, 4 test clips (a CPU rehearsal)")
    ap.add_argument("--steps", type=int, help="optimiser steps per model (default 150; --tiny: 4)")
    ap.add_argument("--test-clips", type=int, help="generated test (and validation) clips (default 64; --tiny: 4)")
    ap.add_argument("--budget", type=float, default=140.0,
                    help="seconds for all runs together, evaluation included (default 140); each model may take what "
                    "is left, at most --cap, less 30 s for each model still to come")  # fmt: skip
    ap.add_argument("--cap", type=float, default=90.0, help="seconds one model may take at most (default 90)")
    ap.add_argument("--tag", help="names the run folders <model>-mmnist-<tag>-smoke (default: the GPU, e.g. h200, or cpu)")
    ap.add_argument("--models", help="comma-separated subset of the trainable models (default: all)")
    args = ap.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    args.empty = args.out / "empty.yaml"
    args.empty.write_text("# no overrides: the tiny variant's --set values only\n")
    tag = args.tag or device_tag(args.device)
    rows = []
    todo = trainable_models(args.models.split(",") if args.models else None)
    deadline = time.monotonic() + args.budget
    for i, (name, tiny) in enumerate(todo):
        share = min(args.cap, deadline - time.monotonic() - 30.0 * (len(todo) - i - 1))
        if share < 15:
            rows.append({"model": name, "status": "not run: the budget is spent", "seconds": 0.0})
            print(f"run {name}: not run, the {args.budget:.0f} s budget is spent", flush=True)
            continue
        out = args.out / f"{name}-mmnist-{tag}-smoke"
        log = args.out / f"{name}.log"
        # 70% of the share to train and test; the rest to score last.pt if the run had to be stopped
        status, seconds = run_with_deadline(run_command(name, tiny if args.tiny else None, args, out), log, 0.7 * share,
                                            grace=0.15 * share)  # fmt: skip
        record = out / "record.json"
        if not record.is_file() and (out / "checkpoints" / "last.pt").is_file():
            # stopped (or failed) after a checkpoint: score what was trained
            scored = args.out / f"{out.name}-eval"
            cmd = [sys.executable, "-m", "vpbench", "eval", "--run", str(out), "--checkpoint", "last", "--out", str(scored),
                   "--device", args.device, "--data-root", str(args.data_root), "--no-progress"]  # fmt: skip
            eval_status, eval_seconds = run_with_deadline(cmd, log, max(10.0, share - seconds), grace=5.0)
            status += f"; eval of last.pt: {eval_status}"
            seconds += eval_seconds
            record = scored / "record.json"
        if not record.is_file():  # the reason, in the device check's log
            print("\n".join(f"  | {line}" for line in log.read_text().strip().splitlines()[-15:]), flush=True)
        row = summarise(name, status, seconds, record)
        rows.append(row)
        print(f"run {name}: {status} in {seconds:.1f} s" + (
            f", {row['steps']} steps, test mse {row['mse']:.1f} ssim {row['ssim']:.4f}" if "steps" in row else ""
        ), flush=True)  # fmt: skip
    (args.out / "runs.md").write_text(markdown(rows, args))
    return 0 if all("steps" in r and r["status"] == "finished" for r in rows) else 1


def _f(v: Any, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def markdown(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    kind = "tiny variants (a rehearsal)" if args.tiny else "OpenSTL-sized configs (configs/<model>-mmnist.yaml)"
    head = (
        f"### Short Moving-MNIST runs on {args.device}: {kind}, generated test set, seed 0\n\n"
        "Smoke records, not results: trained for a few steps and scored on a few generated test clips "
        "(the standard mnist_test_seq.npy is not available); the baselines are scored on the same clips.\n\n"
    )
    lines = ["| model | status | steps x batch | train s | test clips | MSE | SSIM | LPIPS | blank MSE / SSIM / LPIPS | copy-last LPIPS | hardware | flags |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---|---|"]  # fmt: skip
    for r in rows:
        steps = f"{r['steps']} x {r['batch']}" if "steps" in r else "-"
        blank = " / ".join(_f(r.get(f"blank_{m}"), f) for m, f in (("mse", ".1f"), ("ssim", ".4f"), ("lpips", ".4f")))
        lines.append(
            f"| {r['model']} | {r['status']} | {steps} | {_f(r.get('train_s'), '.1f')} | {_f(r.get('test_clips'), 'd')} | "
            f"{_f(r.get('mse'), '.1f')} | {_f(r.get('ssim'), '.4f')} | {_f(r.get('lpips'), '.4f')} | {blank} | "
            f"{_f(r.get('copy-last_lpips'), '.4f')} | {r.get('hardware', '-')} | {r.get('flags') or '-'} |"
        )
    return head + "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
