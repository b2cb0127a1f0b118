"""``vpbench plugins``: every model, dataset and metric, and the package providing it."""

from __future__ import annotations

import click
from tabulate import tabulate

__all__ = ["command"]


@click.command("plugins")
@click.option("--kind", type=click.Choice(["models", "datasets", "metrics"]), help="Show only one kind.")
@click.pass_obj
def command(app: object, kind: str | None) -> None:
    """List installed models, datasets and metrics (imports no model code).

    Set VPBENCH_PLUGINS=name,name to load only those entry points. Plugins that failed
    to import are listed as broken, with their error.
    """
    app.warned = True  # type: ignore[attr-defined]  # listed below instead
    reg = app.registry  # type: ignore[attr-defined]
    if kind in (None, "models"):
        rows = [[e.spec.name, e.package, e.plugin, e.spec.description] for e in reg.models]
        click.echo("Models\n" + tabulate(rows, ["name", "package", "plugin", "description"]) + "\n")
    if kind in (None, "datasets"):
        rows = [
            [e.spec.name, "x".join(map(str, e.spec.frame_shape)), f"{e.spec.context}->{e.spec.horizon}", e.package, e.spec.description]
            for e in reg.datasets
        ]
        click.echo("Datasets\n" + tabulate(rows, ["name", "C x H x W", "T->S", "package", "description"]) + "\n")
    if kind in (None, "metrics"):
        rows = [
            [e.spec.name, "higher" if e.spec.higher_is_better else "lower", ",".join(e.spec.protocols), e.package, e.spec.description]
            for e in reg.metrics
        ]
        click.echo("Metrics\n" + tabulate(rows, ["name", "better", "protocols", "package", "description"]))
    pm = app.pm  # type: ignore[attr-defined]
    broken = getattr(pm, "broken", {})
    problems = getattr(pm, "problems", [])
    if broken:
        rows = [[name, why] for name, why in sorted(broken.items())]
        click.echo("\nBroken plugins (left out; the others work)\n" + tabulate(rows, ["plugin", "error"]))
    if problems:
        click.echo("\nPlugin problems\n" + "\n".join(f"- {p}" for p in problems))
