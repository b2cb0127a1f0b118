"""``vpbench run``: train, select on validation, test, and write a run directory."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from ..engine.blankcheck import DEFAULT_COMPARE

__all__ = ["command", "metrics_table"]

EPILOG = """\b
Examples:
  vpbench run --model shrvq --dataset glyphs
  vpbench run --model convlstm --dataset mmnist --set train.max_steps=200 --out runs/try
  vpbench run --model shrvq --dataset kth --set model.training=joint --device cuda
  vpbench run --resume --out runs/try          # continue an interrupted run
  vpbench run --model convlstm --dataset glyphs --address 10.0.0.5:6379   # on a Ray cluster
  vpbench run --model shrvq --dataset kth --address auto --gpus 1 --cpus 4 --max-retries 3

\b
The run directory holds run.yaml (the resolved config), checkpoints/, record.json
(the versioned result), strips/*.png of the fixed test clips and per_frame.png.

\b
With --address the run is one Ray task (--cpus, --gpus; --device cuda asks for a GPU). It
sends its state back at every validation pass: a lost worker restarts from there
(--max-retries), and Ctrl-C leaves that state in --out for --resume. With --shared-out
(--out on a file system every node mounts at the same path) the node writes each state and
the finished run directory to --out itself and only the step comes back. A cluster that does
not answer within 10 s is an error; ray:// addresses need `pip install 'ray[client]'`.
"""


def metrics_table(record: object) -> str:
    """Mean metrics of the model and its baselines, one row each, per protocol; LPIPS first."""
    from tabulate import tabulate

    series = {record.model.name: record.metrics, **record.baselines}  # type: ignore[attr-defined]
    # columns: every (protocol, metric) of any row, in first-seen order (the model's mean and
    # best-of-N keys, which the baselines lack, stay in their own columns)
    columns: dict[tuple[str, str], str] = {}
    for by_protocol in series.values():
        for protocol, metrics in by_protocol.items():
            # LPIPS leads: on digits-on-black data SSIM and MSE rank an empty frame high (README)
            for metric, res in sorted(metrics.items(), key=lambda kv: kv[0] != "lpips"):
                arrow = "↑" if res.higher_is_better else "↓"
                columns.setdefault((protocol, metric), f"{metric}{arrow}" + ("" if protocol == "openstl" else f" [{protocol}]"))
    headers: list[str] = ["model", *columns.values()]
    rows = []
    for name, by_protocol in series.items():
        row: list[object] = [name]
        for protocol, metric in columns:
            res = by_protocol.get(protocol, {}).get(metric)
            row.append(res.mean if res is not None else "")
        rows.append(row)
    return tabulate(rows, headers, floatfmt=".4g")


@click.command("run", epilog=EPILOG)
@click.option("--model", "-m", help="Model name (see `vpbench plugins`).")
@click.option("--dataset", "-d", help="Dataset name (see `vpbench plugins`).")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="YAML overrides; default configs/<model>-<dataset>.yaml when present.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override one config key, e.g. train.max_steps=200 or model.training=joint. Repeatable.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), help="Seed for weights, data order and sampling (default: config's, 0).")
@click.option("--out", type=click.Path(path_type=Path), help="Run directory (default runs/<model>-<dataset>-<time>).")
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out to the same result.")
@click.option("--data-root", type=click.Path(path_type=Path), envvar="VPBENCH_DATA", help="Where datasets live (default $VPBENCH_DATA or ~/.cache/vpbench).")
@click.option("--compare", multiple=True, default=DEFAULT_COMPARE, show_default=True, help="Baselines scored on the same test clips. Repeatable; 'none' for none.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@click.option("--address", help="Run as a task on the Ray cluster at auto, HOST:PORT or ray://HOST:PORT; the run directory comes back to --out. Gives up after 10 s when no cluster answers.")
@click.option("--cpus", type=float, help="With --address: CPUs the task asks Ray for (default 1).")
@click.option("--gpus", type=float, help="With --address: GPUs the task asks Ray for (default: 1 with --device cuda, or with auto when the cluster has one).")
@click.option("--shared-out", is_flag=True, help="With --address: --out is on a file system every node mounts at the same path; the node writes the run's checkpoints and result there itself and none pass through this process.")
@click.option("--max-retries", type=int, help="With --address: restarts of a task whose worker dies, from its last validation state (default 2).")
@click.pass_obj
def command(
    app: object,
    model: str | None,
    dataset: str | None,
    config_file: Path | None,
    sets: tuple[str, ...],
    device: str,
    seed: int | None,
    out: Path | None,
    resume: bool,
    data_root: Path | None,
    compare: tuple[str, ...],
    no_progress: bool,
    address: str | None,
    cpus: float | None,
    gpus: float | None,
    max_retries: int | None,
    shared_out: bool,
) -> None:
    """Train MODEL on DATASET, pick the best checkpoint on the validation split, score
    the test split with every metric, and write a versioned run record.

    A model that needs no training (copy-last) is only evaluated. Ctrl-C leaves a
    resumable run directory; continue it with --resume --out DIR.
    """
    from ..engine.run import RunRequest, execute_run
    from ..engine.train import RunInterrupted
    from ..errors import ConfigError

    if address is None and (cpus is not None or gpus is not None or max_retries is not None):
        raise ConfigError("--cpus, --gpus and --max-retries size a task on a Ray cluster; give --address too, or drop them")
    if address is None and shared_out:
        raise ConfigError("--shared-out says where a cluster node writes the run; give --address too, or drop it")

    req = RunRequest(
        model=model,
        dataset=dataset,
        config_file=config_file,
        sets=sets,
        device=device,
        seed=seed,
        out=out,
        resume=resume,
        data_root=data_root,
        compare=() if "none" in compare else compare,
        progress=not no_progress,
        argv=sys.argv[1:],
    )
    try:
        if address is not None:
            from ..cluster.submit import submit_run

            record, run_dir = submit_run(
                req,
                app.registry,  # type: ignore[attr-defined]
                address,
                echo=click.echo,
                cpus=1.0 if cpus is None else cpus,
                gpus=gpus,
                max_retries=2 if max_retries is None else max_retries,
                shared_out=shared_out,
            )
        else:
            record, run_dir = execute_run(req, app.registry, echo=click.echo)  # type: ignore[attr-defined]
    except RunInterrupted as exc:
        where = f" --address {shlex.quote(address)}" if address is not None else ""
        where += " --shared-out" if shared_out else ""
        click.echo(f"interrupted at step {exc.step}; continue with: vpbench run --resume --out {shlex.quote(str(exc.run_dir))}{where}", err=True)
        sys.exit(130)
    click.echo("")
    click.echo(metrics_table(record))
    click.echo(f"\nrun directory: {run_dir}  (record.json, strips/, per_frame.png)")
