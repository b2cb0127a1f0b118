"""One benchmark run: resolve config, train, select on validation, test, write the record."""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable, Sequence
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
from ..records import ComponentInfo, RunRecord, TrainSummary, write_record
from .blankcheck import DEFAULT_COMPARE, FLAG_BELOW_BLANK, below_blank
from .checkpoint import load_checkpoint, load_model_state
from .evaluate import Predictor, evaluate
from .guards import check_compare, check_measured, check_run_dir, check_run_id, check_test_split, check_trainable
from .preflight import preflight_run
from .recording import baseline_predictors, build_record, count_params, profile_if, score_cache, write_pictures
from .rng import deterministic_kernels, seed_everything
from .rundir import run_lock
from .selection import resolve_select_metric
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
    metrics, unavailable = build_metrics(registry, cfg.eval.metrics, cfg.eval.protocols, warn=lambda m: echo(f"warning: {m}"))
    for name, why in unavailable.items():
        echo(f"warning: metric {name} unavailable: {why}")
    check_measured(metrics, unavailable, cfg.eval.protocols, registry)
    metrics = preflight_run(registry, res.model, res.dataset, dataset, model, metrics, device,  # before any training
                            cfg.eval.metrics, warn=lambda m: echo(f"warning: {m}"))

    stages = model.stages()
    select = None
    if stages and cfg.train.max_steps > 0:
        select = _select_metric(metrics, registry, cfg.train.select_metric, echo)
        check_trainable(stages, cfg.train, dataset, needs_val=any(s.selects for s in stages))
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
                ).run(res.resumed)
            except RunInterrupted as exc:
                exc.run_dir = rd.root
                raise
        best = rd.checkpoints / "best.pt"
        if best.exists():
            payload = load_checkpoint(best, model=res.model, model_config=model_cfg)
            load_model_state(model, payload["state_dict"], best)
    model.eval()

    predictors: dict[str, Predictor] = {res.model: model.predict}
    predictors.update(baseline_predictors(registry, req.compare, res.model, dataset, device))
    data_checksum = dataset.checksum()  # once: the baselines' score cache and the record
    cache = score_cache(predictors, res.model, dataset, data_checksum, device, cfg.eval.batch_size, cfg.eval.max_sequences)
    results = evaluate(
        predictors,
        dataset.split("test"),
        metrics,
        context=dataset.context,
        horizon=dataset.horizon,
        device=device,
        batch_size=cfg.eval.batch_size,
        limit=cfg.eval.max_sequences,
        progress=req.progress,
        cache=cache,
    )
    baselines = {k: v.metrics for k, v in results.items() if k != res.model}
    flags: list[str] = []
    below = None
    if state is not None and select is not None:
        below = below_blank(results[res.model].metrics, baselines, select.name, select.protocol)
    if below is not None:
        flags.append(FLAG_BELOW_BLANK)

    artifacts = write_pictures(rd.root, dataset, predictors, results, res.model, model=model)
    record = build_record(
        run_id=rd.root.name,
        argv=req.argv,
        seed=cfg.seed,
        model=ComponentInfo(name=res.model, package=registry.models.entry(res.model).package, config=model_cfg),
        dataset_name=res.dataset,
        dataset=dataset,
        registry=registry,
        params=count_params(model),
        train=TrainSummary(
            config=cfg.train.model_dump(mode="json"),
            steps_done=state.global_step if state else 0,
            stages=state.stage_log if state else [],
            selected_step=state.best_step if state else None,
            select_metric=select.name if (select and state and state.best_step is not None) else None,
            select_value=state.best_value if state else None,
            wall_time_s=state.wall_time_s if state else 0.0,
            attempts=state.attempts if state else 1,
        ),
        results=results,
        main=res.model,
        unavailable=unavailable,
        artifacts=artifacts,
        device=device,
        started=t0,
        profile=profile_if(cfg.eval.profile, model, dataset, device, cfg.eval.batch_size),
        flags=flags,
        data_checksum=data_checksum,
    )
    write_record(record, rd.record)
    if below is not None:
        echo(f"warning: {below}")
    if record.nan_frames:
        echo(f"warning: {record.nan_frames} predicted frames contain NaN; their metrics are NaN in the record")
    return record, rd.root
