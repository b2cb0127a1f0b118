"""``vpbench tune``: a Ray Tune hyperparameter search, locally or on a Ray cluster."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

__all__ = ["command"]

EPILOG = """\b
Examples:
  vpbench tune --model convlstm --dataset glyphs --search configs/tune/convlstm-glyphs.yaml --num-samples 4
  vpbench tune --model shrvq --dataset kth --search configs/tune/shrvq-kth.yaml --num-samples 16 \\
      --gpus-per-trial 1 --address auto
  vpbench tune --model convlstm --dataset glyphs --search configs/tune/convlstm-glyphs.yaml --num-samples 8 \\
      --searcher optuna --scheduler asha --grace-period 100 --reduction-factor 3 --max-concurrent 2 --time-budget 3600
  vpbench tune --resume --out runs/tune-convlstm-glyphs-20250101-120000

\b
The output folder holds trials/<id>/record.json (one run record per trial), best.yaml
(accepted by `vpbench run --config`), summary.csv, and Ray's experiment under ray/.
A search file maps config keys to {choice|grid: [...]} or {uniform|loguniform: [low, high]};
An optional `tune:` section of the search file sets scheduler, searcher, grace_period,
reduction_factor, max_concurrent, time_budget_s and seed; flags given here win.
Ctrl-C stops the search (exit 130) without best.yaml; --resume --out DIR finishes it.
"""


@click.command("tune", epilog=EPILOG)
@click.option("--model", "-m", help="Model name (see `vpbench plugins`).")
@click.option("--dataset", "-d", help="Dataset name (see `vpbench plugins`).")
@click.option("--search", type=click.Path(path_type=Path), help="YAML search space (configs/tune/*.yaml).")
@click.option("--num-samples", type=int, default=1, show_default=True, help="Samples of the space (each grid point is crossed with every sample).")
@click.option("--scheduler", type=click.Choice(["asha", "hyperband", "fifo"]), help="asha (default) stops poor trials at rungs; hyperband pauses and resumes them; fifo runs every trial to the end.")
@click.option("--searcher", type=click.Choice(["random", "optuna"]), help="random (default: random and grid sampling) or optuna (TPE, model-based; no grid keys).")
@click.option("--grace-period", type=int, help="asha: training steps before a trial can be stopped (default train.eval_every).")
@click.option("--reduction-factor", type=float, help="asha/hyperband: keep 1/F of the trials at each rung (default 2).")
@click.option("--max-concurrent", type=int, help="Trials running at once (default 0: as many as the cluster fits).")
@click.option("--time-budget", "time_budget_s", type=float, help="Seconds after which running trials are stopped (and tested) and the search ends.")
@click.option("--metric", help="Validation metric to optimise (default: the config's train.select_metric); its direction sets the mode.")
@click.option("--gpus-per-trial", type=float, default=0.0, show_default=True, help="GPUs per trial; 0 runs trials on CPU.")
@click.option("--cpus-per-trial", type=float, default=1.0, show_default=True, help="CPUs per trial.")
@click.option("--address", help="Ray cluster: auto, HOST:PORT or ray://HOST:PORT (default: start Ray on this machine).")
@click.option("--resume", is_flag=True, help="Continue the interrupted search in --out (Tuner.restore). ASHA/HyperBand rung decisions restart: the scheduler's state is not saved.")
@click.option("--max-failures", type=int, default=2, show_default=True, help="Retries of a trial whose worker dies, from its last checkpoint.")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="Base YAML overrides (default configs/<model>-<dataset>.yaml).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override one config key for every trial. Repeatable.")
@click.option("--out", type=click.Path(path_type=Path), help="Output folder (default runs/tune-<model>-<dataset>-<time>).")
@click.option("--data-root", type=click.Path(path_type=Path), envvar="VPBENCH_DATA", help="Where datasets live (default $VPBENCH_DATA or ~/.cache/vpbench).")
@click.option("--quiet", is_flag=True, help="Hide Ray's progress output.")
@click.pass_obj
def command(
    app: object,
    model: str | None,
    dataset: str | None,
    search: Path | None,
    num_samples: int,
    scheduler: str | None,
    searcher: str | None,
    grace_period: int | None,
    reduction_factor: float | None,
    max_concurrent: int | None,
    time_budget_s: float | None,
    metric: str | None,
    gpus_per_trial: float,
    cpus_per_trial: float,
    address: str | None,
    resume: bool,
    max_failures: int,
    config_file: Path | None,
    sets: tuple[str, ...],
    out: Path | None,
    data_root: Path | None,
    quiet: bool,
) -> None:
    """Search hyperparameters of MODEL on DATASET with Ray Tune: each trial is a
    `vpbench run` that reports its validation metric at every validation pass.

    Data are prepared once before the trials start. A trial whose worker dies restarts
    from its last checkpoint; an interrupted search continues with --resume --out DIR.
    """
    if out is not None:  # the folder's name is the search's name (Ray's experiment folder): a plain name
        from ..engine.guards import check_run_id

        check_run_id(out)
    from ..tune import SearchInterrupted, TuneRequest, run_search, summary_frame, summary_table

    req = TuneRequest(
        model=model,
        dataset=dataset,
        search=search,
        num_samples=num_samples,
        config_file=config_file,
        sets=sets,
        metric=metric,
        scheduler=scheduler,
        searcher=searcher,
        grace_period=grace_period,
        reduction_factor=reduction_factor,
        max_concurrent=max_concurrent,
        time_budget_s=time_budget_s,
        gpus_per_trial=gpus_per_trial,
        cpus_per_trial=cpus_per_trial,
        address=address,
        resume=resume,
        max_failures=max_failures,
        out=out,
        data_root=data_root,
        argv=["tune", *sys.argv[2:]] if sys.argv[1:2] == ["tune"] else ["tune"],
        quiet=quiet,
    )
    try:
        result = run_search(req, app.registry, echo=click.echo)  # type: ignore[attr-defined]
    except SearchInterrupted as exc:
        click.echo(
            f"interrupted: {exc.unfinished} trial(s) unfinished, no best.yaml written; continue with: "
            f"vpbench tune --resume --out {shlex.quote(str(exc.out))}" + (f" --address {shlex.quote(address)}" if address else ""),
            err=True,
        )
        sys.exit(130)
    frame = summary_frame(result.trials, result.keys, result.metric, result.mode)
    click.echo("")
    click.echo(summary_table(frame, result.metric, result.mode))
    if result.best is not None and result.best_config is not None:
        click.echo(f"\nbest: trial {result.best.trial_id}, val_{result.metric} = {result.best.val:.4g} ({result.mode})")
        click.echo(f"best config: {result.best_config}  (vpbench run --model {result.model} --dataset {result.dataset} --config {result.best_config})")
    click.echo(f"search folder: {result.out}  (trials/*/record.json, summary.csv)")
    failed = [t for t in result.trials if t.status == "error"]
    if failed:
        click.echo(f"{len(failed)} trial(s) failed: " + "; ".join(f"{t.trial_id}: {t.error}" for t in failed), err=True)
