"""``vpbench bench``: a benchmark suite (models x datasets x seeds) as Ray tasks, locally or on a cluster."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ..bench import BenchRequest
    from ..plugins import Registry

__all__ = ["command"]

EPILOG = """\b
Examples:
  vpbench bench configs/suites/glyphs-tiny.yaml                       # Ray on this machine
  vpbench bench configs/suites/table2-mmnist.yaml --address HEAD:6379 --gpus-per-run 1
  vpbench bench configs/suites/glyphs-tiny.yaml --dry-run             # list the runs and their state
  vpbench bench configs/suites/track-mmnist-gpu.yaml --dry-run --plan # and what the budget buys each entry
  vpbench leaderboard --records runs/bench-glyphs-tiny --out runs/bench-glyphs-tiny/leaderboard

\b
A suite file lists datasets, seeds, common overrides (set:) and entries (model, optional
name, config file, set:, datasets, seeds); see docs/bench.md and configs/suites/.
Each run goes to OUT/<dataset>/<entry>-seed-<seed>/ (a normal run directory with
record.json), so OUT is a records tree for `vpbench leaderboard`. Running the same command
again skips finished runs and resumes unfinished ones. A run that fails is retried from its
last checkpoint (--retries); one that still fails is listed at the end and the command
exits with status 1. Each run's checkpoints come back to the driver, which writes them to
OUT; with --shared-out (OUT on a file system every node mounts at the same path) the nodes
write them there themselves.
"""


@click.command("bench", epilog=EPILOG)
@click.argument("suite", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="Output folder, a records tree (default runs/bench-<suite name>).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override one config key of every run (after the suite's own). Repeatable.")
@click.option("--address", help="Ray cluster: auto or HOST:PORT, run on a cluster node (default: start Ray on this machine).")
@click.option("--gpus-per-run", type=float, default=0.0, show_default=True, help="GPUs per run; > 0 trains on CUDA.")
@click.option("--cpus-per-run", type=float, default=1.0, show_default=True, help="CPUs per run.")
@click.option("--retries", type=int, default=2, show_default=True, help="Retries of a failed run (worker or node lost), each from its last checkpoint.")
@click.option("--data-root", type=click.Path(path_type=Path), envvar="VPBENCH_DATA", help="Where datasets live on every node (default $VPBENCH_DATA or ~/.cache/vpbench).")
@click.option("--shared-out", is_flag=True, help="OUT is on a file system every node mounts at the same path: each run's node writes its checkpoints and result there itself (atomic replace), and no checkpoint passes through the driver. Default: states are sent to the driver, which writes them to OUT.")
@click.option("--dry-run", is_flag=True, help="List the runs and whether each is finished, resumable or new; run nothing.")
@click.option("--plan", is_flag=True, help="With --dry-run: each entry's training plan (steps per stage, sequences, MACs per step) as its runs will compute it from train.budget or max_steps; counted on the CPU on zero clips, no data needed.")
@click.option("--quiet", is_flag=True, help="Hide the runs' own output (Ray's worker logs).")
@click.pass_context
def command(
    ctx: click.Context,
    suite: Path,
    out: Path | None,
    sets: tuple[str, ...],
    address: str | None,
    gpus_per_run: float,
    cpus_per_run: float,
    retries: int,
    data_root: Path | None,
    shared_out: bool,
    dry_run: bool,
    plan: bool,
    quiet: bool,
) -> None:
    """Run the benchmark SUITE (a YAML file): every model x dataset x seed it lists is one
    `vpbench run`, scheduled as a Ray task with its own resources.

    Progress is one line per event (runs done / running / failed / skipped). The output
    folder holds one run directory per run; `vpbench leaderboard --records OUT` turns it
    into tables where the seeds of one model and config become one row, mean ± std (n).
    """
    from tabulate import tabulate

    from ..bench import BenchRequest, outcome_rows, run_bench
    from ..errors import ConfigError

    if plan and not dry_run:
        raise ConfigError("--plan lists what each run would train and needs --dry-run; add --dry-run")

    req = BenchRequest(
        suite=suite,
        out=out,
        sets=sets,
        address=address,
        gpus_per_run=gpus_per_run,
        cpus_per_run=cpus_per_run,
        retries=retries,
        data_root=data_root,
        argv=["bench", *sys.argv[2:]] if sys.argv[1:2] == ["bench"] else ["bench", str(suite)],
        quiet=quiet,
        dry_run=dry_run,
        shared_out=shared_out,
    )
    result = run_bench(req, ctx.obj.registry, echo=click.echo)
    if dry_run:
        if plan:
            _print_plans(req, ctx.obj.registry)
        return
    click.echo("")
    click.echo(tabulate(outcome_rows(result), headers="keys", disable_numparse=True))
    click.echo(
        f"\n{result.count('finished')} finished, {result.count('skipped')} skipped (finished before), "
        f"{len(result.failed)} failed; records in {result.out}"
    )
    click.echo(f"leaderboard: vpbench leaderboard --records {result.out} --out {result.out / 'leaderboard'}")
    if result.failed:
        for o in result.failed:
            click.echo(f"failed: {o.run.key}: {o.reason}", err=True)
        sys.exit(1)  # runs failed: not a user error (2), and click.Context.exit would be swallowed by vpbench.cli.main


def _print_plans(req: BenchRequest, registry: Registry) -> None:
    from tabulate import tabulate

    from ..bench import plan_bench
    from ..bench.plan import plan_entries, plan_rows
    from ..data.root import resolve_data_root

    _, _, runs, _ = plan_bench(req, registry)
    click.echo("\ntraining plans (each entry's seeds share one; MACs counted on zero clips on the CPU):")
    plans = plan_entries(runs, registry, resolve_data_root(req.data_root), echo=click.echo)
    click.echo("")
    click.echo(tabulate(plan_rows(plans), headers="keys", disable_numparse=True))
