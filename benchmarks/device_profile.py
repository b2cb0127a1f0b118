"""`vpbench profile` of every registered model on Moving-MNIST, beside OpenSTL's published V100 speed.

Part of ``benchmarks/device_check.sh`` (docs/device.md). For each model in the registry (so a
model added later is profiled too) it runs the real command line,

    python -m vpbench profile --model M --dataset mmnist --device D --batch-size 16 --repeats R

in its own process with its own time limit, keeps each command's output, and writes
``profile.csv`` and ``profile.md``: parameters, MACs per sequence (multiply-add = 1, fvcore's and
so OpenSTL's "FLOPs"), inference sequences/s at OpenSTL's batch size 16, peak memory, and, for
the models in OpenSTL's Moving-MNIST table, its published parameters, MACs and V100 FPS with the
ratio of the speeds. The GPUs differ (the published figure is a V100's, with OpenSTL's own
timing), so the ratio is a sanity check of the order of magnitude, not a like-for-like speed-up.

``--tiny`` profiles each model's tiny variant (``ModelSpec.tiny``, no config file) at batch 2: a
rehearsal of this script on a CPU; it compares nothing.
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import subprocess
import sys
import time
from pathlib import Path

#: OpenSTL, docs/en/model_zoos/video_benchmarks.md (Moving-MNIST, 10->10, batch 16, V100):
#: vpbench model -> (OpenSTL row, params, GMACs per sequence at batch 1, sequences/s)
OPENSTL_V100 = {
    "convlstm": ("ConvLSTM-S", 15.0e6, 56.8, 113.0),
    "predrnn": ("PredRNN", 23.8e6, 116.0, 54.0),
}
OPENSTL_BATCH = 16
FIELDS = ["params_total", "params_trainable", "flops_per_sequence", "macs_per_sequence", "throughput_seq_per_s",
          "peak_memory_mb", "batch_size", "repeats"]  # fmt: skip


def parse_profile(text: str) -> dict[str, float | int]:
    """The quantity/value table that ``vpbench profile`` prints."""
    values: dict[str, float | int] = {}
    for line in text.splitlines():
        m = re.fullmatch(r"\s*([a-z_]+)\s+(-?[\d,]+(?:\.\d+)?)\s*", line)
        if m and m.group(1) in FIELDS:
            number = m.group(2).replace(",", "")
            values[m.group(1)] = float(number) if "." in number else int(number)
    return values


def models(only: list[str] | None) -> list[tuple[str, dict[str, object]]]:
    from vpbench.plugins import get_registry

    reg = get_registry()
    names = reg.models.names()
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise SystemExit(f"device_profile.py: unknown model(s) {', '.join(unknown)}; registered: {', '.join(names)}")
        names = [n for n in names if n in only]
    return [(n, dict(reg.models.get(n).tiny)) for n in names]


def command(model: str, tiny: dict[str, object] | None, device: str, batch: int, repeats: int, empty: Path) -> list[str]:
    cmd = [sys.executable, "-m", "vpbench", "profile", "--model", model, "--dataset", "mmnist", "--device", device,
           "--batch-size", str(batch), "--repeats", str(repeats)]  # fmt: skip
    if tiny is not None:
        cmd += ["--config", str(empty)] + [x for k, v in tiny.items() for x in ("--set", f"model.{k}={v}")]
    return cmd


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="See docs/device.md.")
    ap.add_argument("--device", default="cuda", help="cuda or cpu (default cuda)")
    ap.add_argument("--out", type=Path, required=True, help="folder for profile.csv, profile.md and raw/ outputs")
    ap.add_argument("--tiny", action="store_true", help="tiny variants at batch 2, one repeat (a CPU rehearsal)")
    ap.add_argument("--repeats", type=int, default=3, help="timed forward passes after one warm-up (default 3)")
    ap.add_argument("--batch-size", type=int, default=OPENSTL_BATCH,
                    help=f"sequences per timed call (default {OPENSTL_BATCH}, OpenSTL's; --tiny: 2)")  # fmt: skip
    ap.add_argument("--budget", type=float, default=100.0,
                    help="seconds for all models together (default 100); each model may take what is left, at most "
                    "--cap, less 8 s for each model still to come")  # fmt: skip
    ap.add_argument("--cap", type=float, default=60.0, help="seconds one model may take at most (default 60)")
    ap.add_argument("--models", help="comma-separated subset (default: every registered model)")
    args = ap.parse_args(argv)

    raw = args.out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    empty = args.out / "empty.yaml"
    empty.write_text("# no overrides: the tiny variant's --set values only\n")
    batch = 2 if args.tiny else args.batch_size
    repeats = 1 if args.tiny else args.repeats
    rows: list[dict[str, object]] = []
    todo = models(args.models.split(",") if args.models else None)
    deadline = time.monotonic() + args.budget
    for i, (name, tiny) in enumerate(todo):
        cmd = command(name, tiny if args.tiny else None, args.device, batch, repeats, empty)
        start = time.monotonic()
        limit = min(args.cap, deadline - start - 8.0 * (len(todo) - i - 1))
        if limit < 5:
            rows.append({"model": name, "status": "not run: the budget is spent", "seconds": 0.0})
            print(f"profile {name}: not run, the {args.budget:.0f} s budget is spent", flush=True)
            continue
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
            text, status = proc.stdout + proc.stderr, "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            text, status = out, f"timeout after {limit:.0f} s"
        seconds = time.monotonic() - start
        (raw / f"profile-{name}.txt").write_text(" ".join(cmd) + "\n\n" + text)
        values = parse_profile(text) if status == "ok" else {}
        if status == "ok" and not values:
            status = "unparsed output"
        if status != "ok":  # the reason, in the device check's log
            print("\n".join(f"  | {line}" for line in text.strip().splitlines()[-15:]), flush=True)
        row: dict[str, object] = {"model": name, "status": status, "seconds": round(seconds, 1), **values}
        ref = OPENSTL_V100.get(name)
        if ref and values and not args.tiny:
            row.update(openstl_row=ref[0], openstl_params=ref[1], openstl_gmacs=ref[2], openstl_v100_seq_per_s=ref[3],
                       ratio_to_v100=values["throughput_seq_per_s"] / ref[3])  # fmt: skip
        rows.append(row)
        print(f"profile {name}: {status} in {seconds:.1f} s" + (
            f", {values['throughput_seq_per_s']:,.1f} seq/s, peak {values['peak_memory_mb']:,.0f} MB" if values else ""
        ), flush=True)  # fmt: skip

    keys = ["model", "status", "seconds", *FIELDS, "openstl_row", "openstl_params", "openstl_gmacs",
            "openstl_v100_seq_per_s", "ratio_to_v100"]  # fmt: skip
    with (args.out / "profile.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, keys)
        w.writeheader()
        w.writerows(rows)
    (args.out / "profile.md").write_text(markdown(rows, args.device, batch, repeats, args.tiny))
    return 0 if all(r["status"] == "ok" for r in rows) else 1


def _num(v: object, fmt: str) -> str:
    return format(v, fmt) if isinstance(v, (int, float)) and not math.isnan(v) else "-"


def markdown(rows: list[dict[str, object]], device: str, batch: int, repeats: int, tiny: bool) -> str:
    head = (
        f"### `vpbench profile` on Moving-MNIST (64x64x1, 10->10), device {device}, batch {batch}, "
        f"{repeats} timed call(s) after a warm-up\n\n"
    )
    if tiny:
        head += "Tiny variants (a rehearsal): no comparison with published numbers.\n\n"
    else:
        head += (
            "OpenSTL's columns are its published Moving-MNIST model zoo (params, fvcore GMACs at batch 1, FPS = "
            "sequences/s on a **V100** at batch 16, its own timing). **The GPUs differ**: the ratio is this device's "
            "sequences/s over the V100 figure, a check of the order of magnitude, not a speed-up of vpbench.\n\n"
        )
    lines = ["| model | status | params | GMACs/seq | seq/s | peak MB | OpenSTL row | its params | its GMACs | V100 seq/s | ratio |",
             "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        macs = r.get("macs_per_sequence")
        lines.append(
            f"| {r['model']} | {r['status']} | {_num(r.get('params_total'), ',.0f')} | "
            f"{_num(macs / 1e9 if isinstance(macs, (int, float)) else None, '.2f')} | {_num(r.get('throughput_seq_per_s'), ',.1f')} | "
            f"{_num(r.get('peak_memory_mb'), ',.0f')} | {r.get('openstl_row', '-')} | "
            f"{_num(r.get('openstl_params'), ',.0f')} | {_num(r.get('openstl_gmacs'), '.1f')} | "
            f"{_num(r.get('openstl_v100_seq_per_s'), '.0f')} | {_num(r.get('ratio_to_v100'), '.3g')} |"
        )
    return head + "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
