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
from typing import Any
from pathlib import Path

from ..config import TrainConfig, apply_overrides, build_run_config
from ..data.root import resolve_data_root
from ..errors import ConfigError
from ..hardware import resolve_device
from ..plugins import Registry
from ..records import RunRecord, TrainSummary
from .costs import train_summary
from .guards import check_run_id, check_test_split
from .pipeline import Subject, check_samples, choose_metrics, preflight_scoring, score_and_record
from .preflight import component
from .rng import seed_everything
from .rundir import run_lock
from .train import TrainState
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
    metrics = choose_metrics(registry, cfg.eval, echo)
    draws = check_samples(cfg.eval, saved.model, model)
    check_test_split(dataset)
    metrics = preflight_scoring(
        registry, dataset, saved.dataset, component(registry, "model", saved.model), model.predict, metrics, cfg.eval, device,
        echo, models=[model],
    )
    stack.enter_context(run_lock(out.root))  # nothing was written before this line
    _check_out(out, req.run)  # again, now that no other process can write it

    state = ckpt.train_state or {}
    chose_best = ckpt.kind == "best"
    record = score_and_record(
        registry=registry,
        dataset=dataset,
        dataset_name=saved.dataset,
        subject=Subject.of_model(registry, saved.model, model, draws),
        metrics=metrics,
        cfg=cfg.eval,
        seed=cfg.seed,
        device=device,
        compare=req.compare,
        out=out.root,
        argv=req.argv,
        train=_train_summary(cfg.train, state, ckpt.path, ckpt.step, cfg.train.select_metric if chose_best else None),
        started=t0,
        progress=req.progress,
        artifacts={
            "rescored_from": {
                "run": str(req.run),
                "checkpoint": str(ckpt.path) if ckpt.path else None,
                "checkpoint_kind": ckpt.kind,
                "step": ckpt.step,
            }
        },
    ).record
    return record, out.root


def _train_summary(cfg: TrainConfig, state: dict[str, Any], path: Path | None, step: int | None, select_metric: str | None) -> TrainSummary:
    """The training the scored checkpoint came from, with its cost (wall and CPU seconds,
    attempts, clips, MACs, history) as the checkpoint saved it; the selected step is the
    checkpoint's own. This evaluation's time is never counted as training time."""
    chosen: dict[str, Any] = {
        "selected_step": step,
        "select_metric": select_metric,
        "select_value": state.get("best_value") if select_metric else None,
    }
    if state and path is not None:
        return train_summary(cfg, TrainState.from_checkpoint(state, path), select_metric).model_copy(update=chosen)
    return TrainSummary(config=cfg.model_dump(mode="json"), steps_done=0).model_copy(update=chosen)
