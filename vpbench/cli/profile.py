"""``vpbench profile``: parameters, FLOPs, throughput and peak memory of a model."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["command"]


@click.command("profile", epilog="\b\nExamples:\n  vpbench profile --model shrvq --dataset mmnist\n  vpbench profile --model predrnn --dataset kth --device cuda --batch-size 16")
@click.option("--model", "-m", required=True, help="Model name (see `vpbench plugins`).")
@click.option("--dataset", "-d", required=True, help="Dataset whose frame shape and lengths to use.")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="YAML overrides; default configs/<model>-<dataset>.yaml when present.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override one config key. Repeatable.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--batch-size", type=int, default=8, show_default=True, help="Sequences per forward pass when timing.")
@click.option("--repeats", type=int, default=5, show_default=True, help="Timed forward passes after one warm-up.")
@click.option("--data-root", type=click.Path(path_type=Path), envvar="VPBENCH_DATA",
              help="Data root whose checked cache keeps the FLOP count (default $VPBENCH_DATA or ~/.cache/vpbench).")
@click.option("--recount", is_flag=True, help="Count FLOPs again instead of reusing the cached count.")
@click.pass_obj
def command(
    app: object,
    model: str,
    dataset: str,
    config_file: Path | None,
    sets: tuple[str, ...],
    device: str,
    batch_size: int,
    repeats: int,
    data_root: Path | None,
    recount: bool,
) -> None:
    """Count parameters (total and trainable) and FLOPs per sequence, and time inference
    throughput (sequences/s) and peak memory of MODEL at DATASET's frame shape.

    Needs no data: the dataset only fixes the shapes. Weights are freshly initialised.
    Throughput is timed on one fixed batch of --batch-size random sequences. FLOPs are
    counted once per (model, config, frame shape, lengths, device type) and reused from
    the data root's checked cache, which `vpbench eval` shares.
    """
    import numpy as np
    from tabulate import tabulate

    from ..components import build_model
    from ..config import apply_overrides, build_run_config, default_config_file, load_yaml
    from ..data.root import resolve_data_root
    from ..engine.cache import CheckedStore
    from ..hardware import resolve_device
    from ..interfaces import FrameShape
    from ..profiling import MACS_STORE, flops_key, profile_model

    reg = app.registry  # type: ignore[attr-defined]
    reg.models.get(model)
    spec = reg.datasets.get(dataset)
    source = config_file or default_config_file(model, dataset)
    cfg = build_run_config(apply_overrides(load_yaml(source) if source else {}, sets))
    dev = resolve_device(device)
    net = build_model(reg, model, cfg.model, FrameShape(*spec.frame_shape), spec.context, spec.horizon).to(dev)
    root = resolve_data_root(data_root)
    store = CheckedStore(root, MACS_STORE)
    key = flops_key(net, context=spec.context, horizon=spec.horizon, device=dev)
    reused = not recount and store.load(key) is not None
    facts = profile_model(net, context=spec.context, horizon=spec.horizon, device=dev, batch_size=batch_size,
                          repeats=repeats, macs_cache=None if recount else root)
    if recount:
        store.save(key, {"flops": np.array([facts["flops_per_sequence"]], dtype=np.int64)})
    click.echo(f"{model} on {dataset} ({'x'.join(map(str, spec.frame_shape))}, {spec.context}->{spec.horizon}), device {dev}"
               + (f", config {source}" if source else ""))
    if reused:
        click.echo(f"FLOPs reused from {store.path(key)}")
    elif store.load(key) is not None:
        click.echo(f"FLOPs counted and cached in {store.path(key)}")
    else:
        click.echo(f"FLOPs counted; the cache {store.dir} could not be written")
    rows = [[k, f"{v:,}" if isinstance(v, int) else f"{v:,.3f}"] for k, v in facts.items()]
    click.echo(tabulate(rows, ["quantity", "value"], colalign=("left", "right"), disable_numparse=True))
