"""Do two runs of one suite give the same leaderboard? (issue 19: "a second run of the suite on
the same machine gives the same means").

Each records tree (a ``vpbench bench --out`` folder) is read the way ``vpbench leaderboard
--format csv`` reads it: one row per model and config, the mean and sample std over its seeds.
The script pairs the rows of both trees (dataset, protocol, model, row) and prints every metric's
mean in both and the largest relative difference of its means and stds; it exits 1 when a row is missing from one
tree or a metric differs by more than ``--rtol``. Time columns (training time, CPU-seconds,
throughput) are printed beside as what they are: measurements of the machine, not results.

    .venv/bin/python benchmarks/compare_tracks.py leaderboards/records/track-glyphs-cpu runs/track-glyphs-cpu-2
"""

from __future__ import annotations

import argparse
import sys
from io import StringIO
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vpbench.leaderboard import build_board, load_records, load_reported, render_flat  # noqa: E402

KEY = ["dataset", "protocol", "model", "run", "kind"]
TIMES = ["train_time_s", "cpu_time_s", "throughput"]


def table(records: Path) -> pd.DataFrame:
    """The measured rows of a records tree, as ``vpbench leaderboard --format csv`` writes them."""
    board = build_board(load_records(records), load_reported())
    frame = pd.read_csv(StringIO(render_flat(board, "csv")))
    frame = frame[frame["section"] == "measured"].copy()
    # a baseline row is named after the run it was scored in (its first seed): same in both trees
    return frame.set_index(KEY).sort_index()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first", type=Path, help="records tree of the first run of the suite")
    parser.add_argument("second", type=Path, help="records tree of the second run")
    parser.add_argument("--rtol", type=float, default=0.0, help="largest relative difference accepted (default: 0, bit-equal means)")
    args = parser.parse_args(argv)

    a, b = table(args.first), table(args.second)
    missing = sorted(set(a.index) ^ set(b.index))
    metrics = [c for c in ("psnr", "ssim", "lpips", "mse", "mae", "fvd") if c in a and a[c].notna().any()]
    rows, worst = [], 0.0
    for key in sorted(set(a.index) & set(b.index)):
        ra, rb = a.loc[key], b.loc[key]
        cells = {"row": f"{key[2]} [{key[3]}]" if key[4] == "run" else f"{key[2]} (baseline)", "n": int(ra["n"])}
        diff = 0.0
        for m in metrics:
            x, y = float(ra[m]), float(rb[m])
            cells[m] = f"{x:.6g} | {y:.6g}"
            for u, v in ((x, y), (float(ra.get(f"{m}_std", "nan")), float(rb.get(f"{m}_std", "nan")))):
                if u == u or v == v:  # not both NaN (a std of one seed is NaN)
                    diff = max(diff, abs(u - v) / max(abs(u), abs(v), 1e-300))
        for t in TIMES:
            if pd.notna(ra.get(t)):
                cells[t] = f"{float(ra[t]):.4g} | {float(rb[t]):.4g}"
        cells["max rel diff"] = f"{diff:.2e}"
        worst = max(worst, diff)
        rows.append(cells)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    print(f"first | second: {args.first} | {args.second}")
    print(pd.DataFrame(rows).to_string(index=False))
    for key in missing:
        print(f"row in one tree only: {key}")
    same = not missing and worst <= args.rtol
    print(f"largest relative difference of a metric's mean or std: {worst:.3e} (accepted: {args.rtol:g}) -> "
          + ("the same means" if same else "DIFFERENT"))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
