"""One benchmark run: resolve config, train, select on validation, test, write the record."""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..components import BoundMetric, build_dataset, build_metrics, build_model
from ..config import RunConfig, apply_overrides, build_run_config, default_config_file, load_yaml
from ..data.root import resolve_data_root
from ..errors import ConfigError
from ..fsutil import atomic_write_text
from ..hardware import resolve_device
from ..interfaces import VideoModel
from ..plugins import Registry
from ..records import RunRecord
from .blankcheck import DEFAULT_COMPARE, FLAG_BELOW_BLANK, below_blank
from .budget import MacCounts, TrainPlan, plan_training
from .checkpoint import load_checkpoint, load_model_state
from .costs import train_summary
from .evaluate import EvalResult
from .guards import check_compare, check_run_dir, check_run_id, check_test_split, check_trainable
from .pipeline import Subject, check_samples, choose_metrics, preflight_scoring, score_and_record
from .preflight import component
from .rng import deterministic_kernels, seed_everything
from .rundir import run_lock
from .selection import resolve_select_metric, validation_metrics
from .threads import apply_threads
from .train import RunInterrupted, Trainer, TrainState, ValidationCallback

__all__ = ["DEFAULT_COMPARE", "RunRequest", "RunDir", "resolve_request", "execute_run"]


Echo = Callable[[str], None]


@dataclass
class RunRequest:
    """What the user asked for (``vpbench run`` flags or a Python call)."""

    model: str | None
    dataset: str | None
    config_file: Path | None = None
    sets: Sequence[str] = ()
    device: str = "auto"
    seed: int | None = None
    out: Path | None = None
    resume: bool = False
    data_root: Path | None = None
    compare: Sequence[str] = DEFAULT_COMPARE
    progress: bool = True
    argv: Sequence[str] = ()
    #: called after each validation pass (Ray Tune reports through it)
    on_validation: ValidationCallback | None = None
    #: with ``resume``: test the run as its checkpoints stand, without training further
    evaluate_only: bool = False


@dataclass(frozen=True)
class RunDir:
    """Layout of a run directory."""

    root: Path

    @property
    def spec(self) -> Path:
        return self.root / "run.yaml"

    @property
    def record(self) -> Path:
        return self.root / "record.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def strips(self) -> Path:
        return self.root / "strips"


@dataclass
class Resolved:
    model: str
    dataset: str
    config: RunConfig
    config_source: str | None
    run_dir: RunDir
    resumed: bool
    notes: list[str] = field(default_factory=list)


def _timestamp() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")


def resolve_request(req: RunRequest, registry: Registry) -> Resolved:
    """Turn flags into a validated config and a run directory (no training yet)."""
    if req.resume:
        if req.out is None:
            raise ConfigError("--resume needs --out DIR naming the run directory to continue")
        rd = RunDir(req.out)
        check_run_id(rd.root)
        check_compare(registry, req.compare)
        if not rd.spec.is_file():
            raise ConfigError(f"{req.out} is not a vpbench run directory (no run.yaml); start a new run instead")
        if rd.record.exists():
            raise ConfigError(f"run {req.out} has already finished (record.json exists); nothing to resume")
        if req.config_file is not None or req.sets:
            raise ConfigError("--resume continues a run with its saved config; drop --config/--set")
        saved = load_yaml(rd.spec)
        if not isinstance(saved.get("model"), str) or not isinstance(saved.get("dataset"), str) or not isinstance(
            saved.get("config"), dict
        ):
            raise ConfigError(f"{rd.spec} is not a vpbench run spec (needs model, dataset, config); start a new run")
        for flag, value in (("model", req.model), ("dataset", req.dataset)):
            if value is not None and value != saved.get(flag):
                raise ConfigError(f"--{flag} {value} does not match the run being resumed ({saved.get(flag)})")
        registry.models.get(saved["model"])
        registry.datasets.get(saved["dataset"])
        config = build_run_config(saved["config"])
        return Resolved(saved["model"], saved["dataset"], config, saved.get("config_source"), rd, True)

    if req.model is None or req.dataset is None:
        raise ConfigError("vpbench run needs --model and --dataset (see `vpbench plugins`)")
    registry.models.get(req.model)  # unknown names fail here, listing the valid ones
    registry.datasets.get(req.dataset)
    check_compare(registry, req.compare)
    source = req.config_file or default_config_file(req.model, req.dataset)
    data: dict[str, Any] = load_yaml(source) if source is not None else {}
    data = apply_overrides(data, req.sets)
    if req.seed is not None:
        data["seed"] = req.seed
    config = build_run_config(data)
    out = req.out or Path("runs") / f"{req.model}-{req.dataset}-{_timestamp()}"
    rd = RunDir(out)
    check_run_id(rd.root)
    check_run_dir(rd.root, resume=False)
    return Resolved(req.model, req.dataset, config, str(source) if source else None, rd, False)


def _select_metric(metrics: list[BoundMetric], registry: Registry, name: str, echo: Echo) -> BoundMetric:
    name = resolve_select_metric(registry, name, echo)
    for m in metrics:
        if m.name == name and m.protocol == "openstl":
            return m
    spec = registry.metrics.get(name)
    bound, unavailable = build_metrics(registry, [spec.name], ["openstl"])
    if not bound:
        raise ConfigError(f"train.select_metric {name!r} is unavailable: {unavailable.get(name)}")
    return bound[0]


def _with_planned_steps(cfg: RunConfig, plan: TrainPlan, echo: Echo) -> RunConfig:
    """``cfg`` with ``train.max_steps`` the plan's steps; a budget too small for one step is an error."""
    budget = cfg.train.budget
    if budget is not None:
        if plan.total_steps == 0:
            per_step = ", ".join(f"{s.name} {s.macs_per_step:,}" for s in plan.stages if s.macs_per_step is not None)
            raise ConfigError(
                f"train.budget ({_budget_text(budget.sequences, budget.macs)}) does not buy one training step of "
                f"{cfg.train.batch_size} clips (MACs per step: {per_step or 'not counted'}); raise the budget or lower train.batch_size"
            )
        if "max_steps" in cfg.train.model_fields_set and cfg.train.max_steps != plan.total_steps:
            echo(f"note: train.budget sets the steps to {plan.total_steps:,}; train.max_steps={cfg.train.max_steps:,} is replaced")
    echo(plan.describe())
    return cfg.model_copy(update={"train": cfg.train.model_copy(update={"max_steps": plan.total_steps})})


def _budget_text(sequences: int | None, macs: float | None) -> str:
    parts = ([f"{sequences:,} sequences"] if sequences is not None else []) + ([f"{macs:.4g} MACs"] if macs is not None else [])
    return " and ".join(parts)


def _stopped_state(rd: RunDir, model_name: str, model_cfg: dict[str, Any], model: VideoModel) -> TrainState:
    """The training state of a run stopped early (e.g. by a Tune scheduler), weights loaded."""
    last = rd.checkpoints / "last.pt"
    if not last.exists():
        raise ConfigError(f"{rd.root} has no checkpoint to evaluate; train it with --resume instead")
    payload = load_checkpoint(last, model=model_name, model_config=model_cfg)
    load_model_state(model, payload["state_dict"], last)
    return TrainState.from_checkpoint(payload.get("train_state"), last)


def execute_run(req: RunRequest, registry: Registry, echo: Echo = print) -> tuple[RunRecord, Path]:
    """Run (or resume) a benchmark run; return its record and its directory.

    Every check of the request runs before anything is written to the run directory; the
    directory is then locked against a second writer until the run ends.
    """
    with ExitStack() as stack:
        return _execute_run(req, registry, echo, stack)


def _execute_run(req: RunRequest, registry: Registry, echo: Echo, stack: ExitStack) -> tuple[RunRecord, Path]:
    t0 = time.monotonic()
    res = resolve_request(req, registry)
    cfg = res.config
    device = resolve_device(req.device)
    threads = apply_threads(cfg.threads)
    data_root = resolve_data_root(req.data_root)
    echo(
        f"run {res.run_dir.root}: model {res.model}, dataset {res.dataset}, device {device}, seed {cfg.seed}"
        + (f", config {res.config_source}" if res.config_source else ", default config")
        + (" (resumed)" if res.resumed else "")
        + f", {threads} CPU thread{'s' if threads > 1 else ''}"
    )

    seed_everything(cfg.seed)
    deterministic_kernels(device)
    dataset = build_dataset(registry, res.dataset, cfg.dataset, data_root, cfg.seed)
    dataset.check()
    shape = dataset.frame_shape
    model = build_model(registry, res.model, cfg.model, shape, dataset.context, dataset.horizon).to(device)
    model_cfg = model.config.model_dump(mode="json")
    metrics = choose_metrics(registry, cfg.eval, echo)
    draws = check_samples(cfg.eval, res.model, model)
    metrics = preflight_scoring(  # before any training
        registry, dataset, res.dataset, component(registry, "model", res.model), model.predict, metrics, cfg.eval, device,
        echo, models=[model],
    )

    stages = model.stages()
    select = None
    plan: TrainPlan | None = None
    counts = MacCounts(dataset.data_root)  # written with the record: a refused run writes nothing
    if stages and (cfg.train.max_steps > 0 or cfg.train.budget is not None):
        select = _select_metric(metrics.bound, registry, cfg.train.select_metric, echo)
        check_trainable(stages, cfg.train, dataset, needs_val=any(s.selects for s in stages))
        plan = plan_training(model, dataset, cfg.train, device, cache=counts)
        cfg = _with_planned_steps(cfg, plan, echo)
    check_test_split(dataset)

    rd = res.run_dir
    stack.enter_context(run_lock(rd.root))  # nothing was written before this line
    check_run_dir(rd.root, resume=res.resumed)  # again, now that no other process can write it
    if not res.resumed:
        spec = {
            "model": res.model,
            "dataset": res.dataset,
            "config_source": res.config_source,
            # fully resolved: component defaults included, so the record says everything
            "config": {
                **cfg.model_dump(mode="json"),
                "model": model_cfg,
                "dataset": dataset.config.model_dump(mode="json"),
            },
        }
        atomic_write_text(rd.spec, yaml.safe_dump(spec, sort_keys=False))

    state: TrainState | None = None
    if select is not None:
        if req.evaluate_only:
            state = _stopped_state(rd, res.model, model_cfg, model)
        else:
            try:
                state = Trainer(
                    model=model,
                    model_name=res.model,
                    model_config=model_cfg,
                    dataset=dataset,
                    cfg=cfg.train,
                    select=select if any(s.selects for s in stages) else None,
                    device=device,
                    seed=cfg.seed,
                    ckpt_dir=rd.checkpoints,
                    progress=req.progress,
                    on_validation=req.on_validation,
                    watch=validation_metrics(metrics.bound, select),
                    plan=[{"name": s.name, "steps": s.steps, "macs_per_step": s.macs_per_step} for s in plan.stages]
                    if plan is not None else None,
                ).run(res.resumed)
            except RunInterrupted as exc:
                exc.run_dir = rd.root
                raise
        best = rd.checkpoints / "best.pt"
        if best.exists():
            payload = load_checkpoint(best, model=res.model, model_config=model_cfg)
            load_model_state(model, payload["state_dict"], best)
    model.eval()

    def flags(results: Mapping[str, EvalResult]) -> list[str]:
        if state is None or select is None:
            return []
        baselines = {k: v.metrics for k, v in results.items() if k != res.model}
        return [FLAG_BELOW_BLANK] if below_blank(results[res.model].metrics, baselines, select.name, select.protocol) else []

    record = score_and_record(
        registry=registry,
        dataset=dataset,
        dataset_name=res.dataset,
        subject=Subject.of_model(registry, res.model, model, draws),
        metrics=metrics,
        cfg=cfg.eval,
        seed=cfg.seed,
        device=device,
        compare=req.compare,
        out=rd.root,
        argv=req.argv,
        train=train_summary(cfg.train, state, select.name if select else None),
        started=t0,
        progress=req.progress,
        flags=flags,
    ).record
    below = (
        below_blank(record.metrics, record.baselines, select.name, select.protocol)
        if state is not None and select is not None
        else None
    )
    counts.flush()  # the MAC counts of the stages, with the record
    if below is not None:
        echo(f"warning: {below}")
    if record.nan_frames:
        echo(f"warning: {record.nan_frames} predicted frames contain NaN; their metrics are NaN in the record")
    return record, rd.root
