"""``vpbench check``: the conformance kit on the installed models, datasets and metrics."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["command"]

EPILOG = """\b
Examples:
  vpbench check                          # every registered model, dataset and metric
  vpbench check --model my-model         # one model (its tiny variant)
  vpbench check --dataset my-data --metric my-metric --data-root ~/data

\b
Models: prediction shape/range at two geometries, backward through every stage, state_dict
round trip, seeded construction. Datasets: spec agrees, split lengths, clip shape/range,
deterministic val/test and checksum, valid fixed clips (skipped when data is not prepared).
Metrics, per protocol: direction, [B, S] output, perfect prediction scores best, batching.
The same checks run in pytest through vpbench.testing (see docs/plugins.md).
"""


@click.command("check", epilog=EPILOG)
@click.option("--model", "models", multiple=True, help="Check this model. Repeatable.")
@click.option("--dataset", "datasets", multiple=True, help="Check this dataset. Repeatable.")
@click.option("--metric", "metrics", multiple=True, help="Check this metric. Repeatable.")
@click.option("--data-root", type=click.Path(path_type=Path), envvar="VPBENCH_DATA", help="Where datasets live.")
@click.option("--verbose", "-v", is_flag=True, help="Also list the checks that passed.")
@click.pass_obj
def command(app: object, models: tuple[str, ...], datasets: tuple[str, ...], metrics: tuple[str, ...],
            data_root: Path | None, verbose: bool) -> None:
    """Run the conformance checks vpbench runs on its own plugins. Exit status 1 when a
    check fails; each failure is one line naming the component and what went wrong."""
    from ..testing import ConformanceFailure, NotApplicable, all_cases

    anything = bool(models or datasets or metrics)
    cases = all_cases(
        app.registry,  # type: ignore[attr-defined]
        models=list(models) if models else (None if not anything else []),
        datasets=list(datasets) if datasets else (None if not anything else []),
        metrics=list(metrics) if metrics else (None if not anything else []),
        data_root=data_root,
    )
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for case in cases:
        try:
            case.run()
        except ConformanceFailure as exc:
            counts["failed"] += 1
            click.echo(f"FAIL {case}: {' '.join(str(exc).split())}")
        except NotApplicable as exc:
            counts["skipped"] += 1
            click.echo(f"SKIP {case}: {' '.join(str(exc).split())}")
        else:
            counts["passed"] += 1
            if verbose:
                click.echo(f"ok   {case}")
    click.echo(f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped ({len(cases)} checks)")
    if counts["failed"]:
        raise SystemExit(1)
