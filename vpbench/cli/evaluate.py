"""``vpbench eval``: re-score a finished or stopped run without training."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..engine.blankcheck import DEFAULT_COMPARE

__all__ = ["command"]

EPILOG = """\b
Examples:
  vpbench eval --run runs/convlstm-mmnist-20260101-120000
  vpbench eval --run runs/try --checkpoint last --set eval.protocols=[openstl,standard]
  vpbench eval --run runs/try --checkpoint other/best.pt --out runs/try-other

\b
The new record goes to --out (default runs/<run>-eval-<time>); the run itself is untouched.
"""


@click.command("eval", epilog=EPILOG)
@click.option("--run", "run_dir", type=click.Path(path_type=Path), required=True, help="Run directory (holds run.yaml).")
@click.option("--checkpoint", default="best", show_default=True, help="best, last, or a checkpoint FILE of the same model and config.")
@click.option("--set", "sets", multiple=True, metavar="eval.KEY=VALUE", help="Override an eval.* key. Repeatable.")
@click.option("--out", type=click.Path(path_type=Path), help="Directory of the new record.")
@click.option("--data-root", type=click.Path(path_type=Path), envvar="VPBENCH_DATA", help="Where datasets live.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--compare", multiple=True, default=DEFAULT_COMPARE, show_default=True, help="Baselines scored on the same clips; 'none' for none.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@click.pass_obj
def command(
    app: object, run_dir: Path, checkpoint: str, sets: tuple[str, ...], out: Path | None, data_root: Path | None,
    device: str, compare: tuple[str, ...], no_progress: bool,
) -> None:
    """Score a finished or stopped run's checkpoint on the test split and write a new record."""
    from ..engine.rescore import EvalRequest, rescore_run
    from .run import metrics_table

    req = EvalRequest(
        run=run_dir, checkpoint=checkpoint, sets=sets, out=out, data_root=data_root, device=device,
        compare=() if "none" in compare else compare, progress=not no_progress, argv=sys.argv[1:],
    )
    record, out_dir = rescore_run(req, app.registry, echo=click.echo)  # type: ignore[attr-defined]
    click.echo(metrics_table(record))
    click.echo(f"\nrecord: {out_dir / 'record.json'}")
