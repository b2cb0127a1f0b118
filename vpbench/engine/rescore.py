"""Re-score a finished or stopped run without training: ``vpbench eval --run DIR``.

The run's saved config rebuilds its dataset and model, a checkpoint (best by default) is
loaded, the test split is scored with the run's metrics (``eval.*`` may be overridden), and
a new record is written to its own directory; the original run is left untouched.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from ..components import build_metrics
from ..config import apply_overrides, build_run_config
from ..data.root import resolve_data_root
from ..errors import ConfigError
from ..hardware import resolve_device
from ..plugins import Registry
from ..records import ComponentInfo, RunRecord, TrainSummary, write_record
from .evaluate import Predictor, evaluate
from .guards import check_measured, check_run_id, check_test_split
from .preflight import preflight_run
from .rng import seed_everything
from .recording import baseline_predictors, build_record, count_params, profile_if, score_cache, write_pictures
from .rundir import run_lock
from .run import DEFAULT_COMPARE, RunDir
from .saved import build_saved, read_run

__all__ = ["EvalRequest", "rescore_run"]

Echo = Callable[[str], None]


@dataclass
class EvalRequest:
    run: Path
    checkpoint: str = "best"
    sets: Sequence[str] = ()
    out: Path | None = None
    data_root: Path | None = None
    device: str = "auto"
    compare: Sequence[str] = DEFAULT_COMPARE
    progress: bool = True
    argv: Sequence[str] = ()


def _check_out(out: RunDir, run: Path) -> None:
    if out.root.exists() and not out.root.is_dir():
        raise ConfigError(f"--out {out.root} is a file, not a folder; choose another --out")
    if out.record.exists():
        raise ConfigError(f"{out.root} already holds a record; choose another --out")
    if out.root.resolve() == run.resolve():
        raise ConfigError("--out must not be the run directory itself; the original run stays as it is")


def rescore_run(req: EvalRequest, registry: Registry, echo: Echo = print) -> tuple[RunRecord, Path]:
    """Score the run's checkpoint; ``--out`` is locked against a second writer while it is written."""
    with ExitStack() as stack:
        return _rescore_run(req, registry, echo, stack)


def _rescore_run(req: EvalRequest, registry: Registry, echo: Echo, stack: ExitStack) -> tuple[RunRecord, Path]:
    t0 = time.monotonic()
    saved = read_run(req.run, registry)
    bad = [s.partition("=")[0] for s in req.sets if not s.partition("=")[0].strip().startswith("eval.")]
    if bad:
        raise ConfigError(f"vpbench eval only changes eval.* keys (got {', '.join(bad)}); the rest is the run's own")
    cfg = build_run_config(apply_overrides(saved.raw, req.sets))
    saved = dataclasses.replace(saved, config=cfg)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = RunDir(req.out or Path("runs") / f"{req.run.name}-eval-{stamp}")
    check_run_id(out.root)
    _check_out(out, req.run)
    device = resolve_device(req.device)
    seed_everything(cfg.seed)
    dataset, model, ckpt = build_saved(saved, registry, resolve_data_root(req.data_root), device, req.checkpoint)
    dataset.check()
    echo(
        f"eval {req.run}: model {saved.model}, dataset {saved.dataset}, "
        + (f"checkpoint {ckpt.path} (step {ckpt.step})" if ckpt.path else "no checkpoint (untrained model)")
    )
    metrics, unavailable = build_metrics(registry, cfg.eval.metrics, cfg.eval.protocols, warn=lambda m: echo(f"warning: {m}"))
    for name, why in unavailable.items():
        echo(f"warning: metric {name} unavailable: {why}")
    check_measured(metrics, unavailable, cfg.eval.protocols, registry)
    check_test_split(dataset)
    metrics = preflight_run(registry, saved.model, saved.dataset, dataset, model, metrics, device,
                            cfg.eval.metrics, warn=lambda m: echo(f"warning: {m}"))
    stack.enter_context(run_lock(out.root))  # nothing was written before this line
    _check_out(out, req.run)  # again, now that no other process can write it

    predictors: dict[str, Predictor] = {saved.model: model.predict}
    predictors.update(baseline_predictors(registry, req.compare, saved.model, dataset, device))
    data_checksum = dataset.checksum()  # once: the baselines' score cache and the record
    cache = score_cache(predictors, saved.model, dataset, data_checksum, device, cfg.eval.batch_size, cfg.eval.max_sequences)
    results = evaluate(
        predictors, dataset.split("test"), metrics, context=dataset.context, horizon=dataset.horizon, device=device,
        batch_size=cfg.eval.batch_size, limit=cfg.eval.max_sequences, progress=req.progress, cache=cache,
    )
    artifacts = write_pictures(out.root, dataset, predictors, results, saved.model, model=model)
    artifacts["rescored_from"] = {
        "run": str(req.run),
        "checkpoint": str(ckpt.path) if ckpt.path else None,
        "checkpoint_kind": ckpt.kind,
        "step": ckpt.step,
    }
    state = ckpt.train_state or {}
    model_cfg = model.config.model_dump(mode="json")
    chose_best = ckpt.kind == "best"
    record = build_record(
        run_id=out.root.name,
        argv=req.argv,
        seed=cfg.seed,
        model=ComponentInfo(name=saved.model, package=registry.models.entry(saved.model).package, config=model_cfg),
        dataset_name=saved.dataset,
        dataset=dataset,
        registry=registry,
        params=count_params(model),
        train=TrainSummary(
            config=cfg.train.model_dump(mode="json"),
            steps_done=int(state.get("global_step", 0)),
            stages=list(state.get("stage_log", [])),
            selected_step=ckpt.step,
            select_metric=cfg.train.select_metric if chose_best else None,
            select_value=state.get("best_value") if chose_best else None,
            wall_time_s=float(state.get("wall_time_s", 0.0)),
        ),
        results=results,
        main=saved.model,
        unavailable=unavailable,
        artifacts=artifacts,
        device=device,
        started=t0,
        profile=profile_if(cfg.eval.profile, model, dataset, device, cfg.eval.batch_size),
        data_checksum=data_checksum,
    )
    write_record(record, out.record)
    return record, out.root
