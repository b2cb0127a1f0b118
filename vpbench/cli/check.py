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
Metrics, per protocol: direction, [B, S] output, perfect prediction scores best, batching;
set-level metrics: direction, one finite SetValue, perfect scores best, batching, update_many.
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
    check fails. Each fault is one line, as in `vpbench run`'s pre-flight: the component and its
    package, what was expected and what came back, or the exception and the file:line of the
    plugin code that raised it (VPBENCH_TRACEBACK=1 lets it through with its traceback); a
    fault that fails several checks is said once, naming the others."""
    from ..engine.preflight import TRACEBACK_ENV
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
    # one line per fault: a fault that fails several checks of a component (a metric's crash
    # fails its shape, perfect-is-best and batching checks under every protocol) is said once
    said: dict[tuple[str, str, str, str], list[str]] = {}
    order: list[tuple[tuple[str, str, str, str], str]] = []
    current: tuple[str, str] | None = None

    def flush() -> None:
        for key, line in order:
            more = said[key][1:]
            click.echo(line + (f" [the same in {len(more)} more check{'s' if len(more) > 1 else ''}: {', '.join(more)}]" if more else ""))
        said.clear()
        order.clear()

    for case in cases:
        if current != (case.kind, case.name):
            flush()
            current = (case.kind, case.name)
        try:
            case.run()
        except (ConformanceFailure, NotApplicable) as exc:
            word = "FAIL" if isinstance(exc, ConformanceFailure) else "SKIP"
            counts["failed" if word == "FAIL" else "skipped"] += 1
            message = " ".join(str(exc).split())
            key = (word, case.kind, case.name, case.fault(message))
            if key not in said:
                said[key] = []
                order.append((key, f"{word} {case}: {message}"))
            said[key].append(case.check)
        else:
            counts["passed"] += 1
            if verbose:
                click.echo(f"ok   {case}")
    flush()
    if counts["failed"]:
        click.echo(f"fix each FAIL in the plugin's code (see docs/plugins.md); {TRACEBACK_ENV}=1 shows a crash's traceback")
    click.echo(f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped ({len(cases)} checks)")
    if counts["failed"]:
        raise SystemExit(1)
