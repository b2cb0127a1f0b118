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
    """Prepare and inspect datasets."""


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
