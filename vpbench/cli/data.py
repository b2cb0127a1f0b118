"""``vpbench data``: prepare (download, verify, decode) and describe datasets."""

from __future__ import annotations

import json
from pathlib import Path

import click

__all__ = ["command"]


def _dataset(app: object, name: str, data_root: Path | None, sets: tuple[str, ...]) -> object:
    from ..components import build_dataset
    from ..config import apply_overrides
    from ..data.root import resolve_data_root

    overrides = apply_overrides({}, [s if s.startswith("dataset.") else f"dataset.{s}" for s in sets]).get("dataset", {})
    return build_dataset(app.registry, name, overrides, resolve_data_root(data_root), seed=0)  # type: ignore[attr-defined]


_root = click.option("--data-root", type=click.Path(path_type=Path), envvar="VPBENCH_DATA", help="Where datasets live (default $VPBENCH_DATA or ~/.cache/vpbench).")
_set = click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a dataset config key, e.g. channels=3. Repeatable.")


@click.group("data")
def command() -> None:
    """Prepare, inspect and export datasets."""


@command.command("prepare")
@click.argument("name")
@_root
@_set
@click.pass_obj
def prepare(app: object, name: str, data_root: Path | None, sets: tuple[str, ...]) -> None:
    """Download (when online), verify checksums and decode dataset NAME into the data root.

    Safe to run again: finished files are kept, partial downloads resume, and
    concurrent preparers wait for each other.
    """
    ds = _dataset(app, name, data_root, sets)
    ds.prepare(progress=True)  # type: ignore[attr-defined]
    ds.check()  # type: ignore[attr-defined]
    click.echo(f"{name} is ready in {ds.data_root}")  # type: ignore[attr-defined]


@command.command("info")
@click.argument("name")
@_root
@_set
@click.pass_obj
def info(app: object, name: str, data_root: Path | None, sets: tuple[str, ...]) -> None:
    """Describe dataset NAME: shapes, splits and clip counts, provenance."""
    ds = _dataset(app, name, data_root, sets)
    facts = {
        "name": name,
        "frame_shape": list(ds.frame_shape.as_tuple()),  # type: ignore[attr-defined]
        "context": ds.context,  # type: ignore[attr-defined]
        "horizon": ds.horizon,  # type: ignore[attr-defined]
        "fixed_test_sequences": list(ds.fixed_test_sequences),  # type: ignore[attr-defined]
        **ds.describe(),  # type: ignore[attr-defined]
    }
    click.echo(json.dumps(facts, indent=2, default=str))


EXPORT_EPILOG = """\b
Examples:
  vpbench data export glyphs --split test --out glyphs-test.npz
  vpbench data export mmnist --split test --out mmnist-test.npz --limit 100

\b
The file holds clips [N, T, C, H, W] (T = context + horizon frames: the first `context`
are the model's input), ids [N] (row i is test clip i) and the scalars context and
horizon. clips is uint8 0-255 when that is lossless, else float32 in [0, 1].
Give your model clips[:, :context], save its predictions of the next `horizon`
frames as predictions [N, horizon, C, H, W] (float in [0, 1] or uint8) with the same
ids in preds.npz, then:
  vpbench score --dataset glyphs --predictions preds.npz --name my-model
(after --limit N, score with --set eval.max_sequences=N).
"""


@command.command("export", epilog=EXPORT_EPILOG)
@click.argument("name")
@click.option("--split", type=click.Choice(["test", "val"]), default="test", show_default=True, help="Which split to export.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="FILE.npz to write (written whole or not at all).")
@click.option("--limit", type=click.IntRange(1), help="Export only the first N clips (score them with --set eval.max_sequences=N).")
@click.option("--dtype", type=click.Choice(["auto", "uint8", "float32"]), default="auto", show_default=True, help="auto: uint8 when lossless, else float32.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@_root
@_set
@click.pass_obj
def export(
    app: object, name: str, split: str, out: Path, limit: int | None, dtype: str, no_progress: bool,
    data_root: Path | None, sets: tuple[str, ...],
) -> None:
    """Write dataset NAME's test (or val) clips and their ids to a .npz file: the clips
    `vpbench score` expects predictions for, in its order."""
    from ..engine.export import export_split

    ds = _dataset(app, name, data_root, sets)
    ds.check()  # type: ignore[attr-defined]
    n, kind = export_split(ds, split, out, limit=limit, dtype=dtype, progress=not no_progress)  # type: ignore[arg-type]
    click.echo(f"wrote {n} {split} clips of {name} ({kind}) to {out}")
