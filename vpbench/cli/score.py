"""``vpbench score``: score predictions made by any framework and write a normal record."""

from __future__ import annotations

import sys
from pathlib import Path

import click

__all__ = ["command"]

EPILOG = """\b
Examples:
  vpbench data export mmnist --split test --out mmnist-test.npz   # the clips to predict
  vpbench score --dataset mmnist --predictions preds.npy --name my-model
  vpbench score --dataset kth --predictions preds.npz --name simvp-openstl --set eval.protocols=[openstl,standard]

\b
The file is .npy, or .npz with the array under 'predictions' (and optionally 'ids', the
test-clip index of each row, which makes vpbench check the order). Shape [N, S, C, H, W]
in the dataset's test order, float in [0, 1] or uint8 0-255: every clip is checked
(range, dtype, no inf; frames holding NaN are warned about). `vpbench data export
DATASET --split test --out clips.npz` writes the test clips and ids to predict from.
--name and the last part of --out are plain names (letters, digits, . _ + -); --out is
locked while it is written. The record lands in --out/record.json; `vpbench leaderboard`
reads it like any run's.
"""


@click.command("score", epilog=EPILOG)
@click.option("--dataset", "-d", required=True, help="Dataset whose test split was predicted (see `vpbench plugins`).")
@click.option("--predictions", type=click.Path(path_type=Path), required=True, help="FILE.npy or FILE.npz, [N, S, C, H, W].")
@click.option("--name", required=True, help="Model name the record and leaderboard show.")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="YAML with dataset.* and eval.* keys.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a dataset.* or eval.* key. Repeatable.")
@click.option("--out", type=click.Path(path_type=Path), help="Record directory (default runs/<name>-<dataset>-scored-<time>).")
@click.option("--data-root", type=click.Path(path_type=Path), envvar="VPBENCH_DATA", help="Where datasets live.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda (for the metrics).")
@click.option("--compare", multiple=True, default=("copy-last",), show_default=True, help="Baselines scored on the same clips; 'none' for none.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@click.pass_obj
def command(
    app: object, dataset: str, predictions: Path, name: str, config_file: Path | None, sets: tuple[str, ...],
    out: Path | None, data_root: Path | None, device: str, compare: tuple[str, ...], no_progress: bool,
) -> None:
    """Score predictions made elsewhere on DATASET's test split under the configured metric
    protocols, and write a run record (provenance "external predictions")."""
    from ..engine.score import ScoreRequest, score_predictions
    from .run import metrics_table

    req = ScoreRequest(
        dataset=dataset, predictions=predictions, name=name, config_file=config_file, sets=sets, out=out,
        data_root=data_root, device=device, compare=() if "none" in compare else compare,
        progress=not no_progress, argv=sys.argv[1:],
    )
    record, run_dir = score_predictions(req, app.registry, echo=click.echo)  # type: ignore[attr-defined]
    click.echo(metrics_table(record))
    click.echo(f"\nrecord: {run_dir / 'record.json'}")
