"""Assemble and run a Ray Tune search over ``vpbench run``; collect records and the best config.

Output folder (``--out``)::

    tune.yaml       the search plan (what --resume continues)
    ray/search/     Ray Tune's experiment: trial checkpoints and results
    trials/<id>/    each trial's run directory with its record.json (the leaderboard reads these)
    best.yaml       the best trial's overrides, accepted by ``vpbench run --config``
    summary.csv     one row per trial
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..config import apply_overrides, build_run_config, default_config_file, load_yaml, validate_section
from ..engine.selection import resolve_select_metric
from ..errors import ConfigError
from ..fsutil import atomic_write_text
from ..plugins import Registry
from .cluster import forwarded_plugins, prepare_data, prepare_on_nodes, ray_session, require_ray
from .pack import unpack_dir
from .space import SearchSpace, load_search_space, plain, set_dotted
from .trainable import RUN_TAR, TrialSetup, train_trial

__all__ = ["TuneRequest", "TrialOutcome", "SearchResult", "plan_search", "run_search"]

Echo = Callable[[str], None]
SCHEDULERS = ("asha", "fifo")


@dataclass
class TuneRequest:
    """What the user asked for (``vpbench tune`` flags or a Python call)."""

    model: str | None = None
    dataset: str | None = None
    search: Path | None = None
    num_samples: int = 1
    config_file: Path | None = None
    sets: Sequence[str] = ()
    #: validation metric to optimise; default: the config's ``train.select_metric``
    metric: str | None = None
    scheduler: str = "asha"
    gpus_per_trial: float = 0.0
    cpus_per_trial: float = 1.0
    address: str | None = None
    resume: bool = False
    max_failures: int = 2
    out: Path | None = None
    data_root: Path | None = None
    argv: Sequence[str] = ()
    quiet: bool = False


@dataclass
class Plan:
    """The resolved search, saved as ``tune.yaml`` so that ``--resume`` needs only ``--out``."""

    model: str
    dataset: str
    base: dict[str, Any]
    search: str
    keys: list[str]
    metric: str
    mode: str
    scheduler: str
    num_samples: int
    max_t: int
    gpus_per_trial: float
    cpus_per_trial: float
    max_failures: int
    data_root: str | None
    argv: list[str] = field(default_factory=list)


@dataclass
class TrialOutcome:
    trial_id: str
    status: str  # finished | stopped (by the scheduler) | error
    values: dict[str, Any]
    steps: int | None
    val: float | None
    test: dict[str, float]
    run_dir: Path | None
    error: str | None = None


@dataclass
class SearchResult:
    out: Path
    model: str
    dataset: str
    keys: list[str]
    metric: str
    mode: str
    trials: list[TrialOutcome]
    best: TrialOutcome | None
    best_config: Path | None


def _default_out(model: str, dataset: str) -> Path:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"tune-{model}-{dataset}-{stamp}"


def _check_config(data: Mapping[str, Any], registry: Registry, model: str, dataset: str) -> None:
    cfg = build_run_config(data)
    validate_section(registry.models.get(model).load().Config, cfg.model, "model")
    validate_section(registry.datasets.get(dataset).load().Config, cfg.dataset, "dataset")


def _validate_space(space: SearchSpace, base: dict[str, Any], registry: Registry, model: str, dataset: str) -> None:
    """Every listed value (and both bounds) must give a valid run config."""
    for d in space.domains:
        for value in d.values:
            try:
                _check_config(set_dotted(base, {d.key: value}), registry, model, dataset)
            except ConfigError as exc:
                raise ConfigError(f"search space {space.source}: key {d.key!r} = {value!r}: {exc}") from None


def plan_search(req: TuneRequest, registry: Registry) -> tuple[Plan, SearchSpace | None, Path]:
    """Validate the request (no Ray needed); return the plan, the space and the output folder."""
    if req.resume:
        if req.out is None or not (req.out / "tune.yaml").is_file():
            raise ConfigError("--resume needs --out DIR naming a search folder (one holding tune.yaml)")
        saved = load_yaml(req.out / "tune.yaml")
        return Plan(**saved), None, req.out
    if req.model is None or req.dataset is None or req.search is None:
        raise ConfigError("vpbench tune needs --model, --dataset and --search FILE (see configs/tune/)")
    if req.scheduler not in SCHEDULERS:
        raise ConfigError(f"unknown scheduler {req.scheduler!r}; choose one of: {', '.join(SCHEDULERS)}")
    if req.num_samples < 1 or req.max_failures < 0 or req.cpus_per_trial <= 0 or req.gpus_per_trial < 0:
        raise ConfigError("--num-samples and --cpus-per-trial must be positive, --max-failures and --gpus-per-trial >= 0")
    registry.models.get(req.model)
    registry.datasets.get(req.dataset)
    space = load_search_space(req.search)
    source = req.config_file or default_config_file(req.model, req.dataset)
    base: dict[str, Any] = load_yaml(source) if source is not None else {}
    base = apply_overrides(set_dotted(base, space.fixed), req.sets)
    if req.metric is not None:
        base = set_dotted(base, {"train.select_metric": req.metric})
    _check_config(base, registry, req.model, req.dataset)
    cfg = build_run_config(base)
    metric = resolve_select_metric(registry, cfg.train.select_metric)
    base = set_dotted(base, {"train.select_metric": metric})  # every trial selects on what Tune optimises
    mode = registry.metrics.get(metric).mode  # the metric's registered direction, nowhere else
    _validate_space(space, base, registry, req.model, req.dataset)
    out = req.out or _default_out(req.model, req.dataset)
    if (out / "tune.yaml").exists():
        raise ConfigError(f"{out} already holds a search; continue it with --resume --out {out} or choose another --out")
    data_root = req.data_root or os.environ.get("VPBENCH_DATA")
    plan = Plan(
        model=req.model,
        dataset=req.dataset,
        base=base,
        search=str(req.search),
        keys=space.keys,
        metric=metric,
        mode=mode,
        scheduler=req.scheduler,
        num_samples=req.num_samples,
        # one report per validation pass plus the final one
        max_t=math.ceil(cfg.train.max_steps / cfg.train.eval_every) + 1,
        gpus_per_trial=req.gpus_per_trial,
        cpus_per_trial=req.cpus_per_trial,
        max_failures=req.max_failures,
        data_root=str(Path(data_root).resolve()) if data_root else None,
        argv=list(req.argv),
    )
    return plan, space, out


def _trainable(plan: Plan, plugins: list[object]) -> Any:
    from ray import tune

    setup = TrialSetup(
        model=plan.model,
        dataset=plan.dataset,
        base=plan.base,
        metric=plan.metric,
        device="cuda" if plan.gpus_per_trial > 0 else "cpu",
        data_root=plan.data_root,
        plugins=tuple(plugins),
        argv=plan.argv,
    )
    resources = {"cpu": plan.cpus_per_trial, "gpu": plan.gpus_per_trial}
    return tune.with_resources(tune.with_parameters(train_trial, setup=setup), resources)


def _tuner(plan: Plan, space: SearchSpace | None, storage: Path, plugins: list[object], quiet: bool) -> Any:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    trainable = _trainable(plan, plugins)
    experiment = storage / "search"
    if space is None:  # --resume
        if not tune.Tuner.can_restore(str(experiment)):
            raise ConfigError(f"no Ray Tune experiment to resume in {experiment}; start the search again without --resume")
        return tune.Tuner.restore(str(experiment), trainable=trainable, resume_errored=True)
    # metric and mode are set once, here; the scheduler inherits them
    scheduler: Any = (
        ASHAScheduler(time_attr="training_iteration", max_t=plan.max_t, grace_period=1, reduction_factor=2)
        if plan.scheduler == "asha"
        else FIFOScheduler()  # type: ignore[no-untyped-call]
    )
    return tune.Tuner(
        trainable,
        param_space=space.to_ray(),
        tune_config=tune.TuneConfig(
            metric=f"val_{plan.metric}", mode=plan.mode, scheduler=scheduler, num_samples=plan.num_samples
        ),
        run_config=tune.RunConfig(
            name="search",
            storage_path=str(storage.resolve()),
            failure_config=tune.FailureConfig(max_failures=plan.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            verbose=0 if quiet else 1,
        ),
    )


def _finish_stopped(ckpt_dir: Path, dest: Path, step: int, plan: Plan, registry: Registry, echo: Echo) -> None:
    """Test a trial the scheduler stopped, at its last checkpoint, on the driver."""
    from ..engine.run import RunRequest, execute_run

    partial = dest.parent / ".partial"
    shutil.rmtree(partial / dest.name, ignore_errors=True)
    shutil.copytree(ckpt_dir, partial / dest.name)
    req = RunRequest(
        evaluate_only=True,
        model=None,
        dataset=None,
        out=partial / dest.name,
        resume=True,
        device="cpu",
        data_root=Path(plan.data_root) if plan.data_root else None,
        progress=False,
        argv=[*plan.argv, "--trial", dest.name, "--stopped-at", str(step)],
    )
    execute_run(req, registry, echo=echo)
    (partial / dest.name).rename(dest)
    shutil.rmtree(partial, ignore_errors=True)


def _collect(result: Any, plan: Plan, trials_dir: Path, registry: Registry, echo: Echo) -> TrialOutcome:
    from ..records import read_record

    metrics: dict[str, Any] = dict(result.metrics or {})
    trial_id = str(metrics.get("trial_id") or Path(result.path).name)
    values = {k: plain(v) for k, v in (result.config or {}).items()}
    dest = trials_dir / trial_id
    error = str(result.error).strip().splitlines()[-1] if result.error is not None else None
    status = "error" if error else ("finished" if metrics.get("finished") else "stopped")
    ckpt = result.checkpoint
    if not (dest / "record.json").exists() and ckpt is not None:
        with ckpt.as_directory() as d:
            packed = Path(d) / RUN_TAR
            if packed.exists():
                unpack_dir(packed.read_bytes(), dest, replace=True)
            elif error is None and (Path(d) / "run.yaml").exists():
                _finish_stopped(Path(d), dest, int(metrics.get("step", 0)), plan, registry, echo)
    test: dict[str, float] = {}
    run_dir: Path | None = None
    if (dest / "record.json").exists():
        record = read_record(dest / "record.json")
        test = {name: res.mean for name, res in record.metrics.get("openstl", {}).items()}
        run_dir = dest
    val = metrics.get(f"val_{plan.metric}")
    step = metrics.get("step")
    return TrialOutcome(trial_id, status, values, int(step) if step is not None else None, val, test, run_dir, error)


def _write_best(path: Path, plan: Plan, best: TrialOutcome) -> None:
    overrides = set_dotted(plan.base, best.values)
    header = (
        f"# best of a vpbench tune search over {plan.model} on {plan.dataset} ({plan.search})\n"
        f"# trial {best.trial_id}: val_{plan.metric} = {best.val} ({plan.mode})\n"
        f"# reproduce: vpbench run --model {plan.model} --dataset {plan.dataset} --config {path}\n"
    )
    atomic_write_text(path, header + yaml.safe_dump(plain(overrides), sort_keys=False))


def run_search(req: TuneRequest, registry: Registry, echo: Echo = print) -> SearchResult:
    """Plan, prepare data once, run the trials on Ray, and write records, best.yaml and summary."""
    plan, space, out = plan_search(req, registry)
    require_ray()
    out.mkdir(parents=True, exist_ok=True)
    if space is not None:
        atomic_write_text(out / "tune.yaml", yaml.safe_dump(asdict(plan), sort_keys=False))
    plugins = forwarded_plugins(registry)
    from ..data.root import resolve_data_root

    cfg = build_run_config(plan.base)
    # data are prepared here, before any trial, never inside a trial
    prepare_data(registry, plan.dataset, cfg.dataset, resolve_data_root(plan.data_root), progress=not req.quiet)
    address = req.address
    with ray_session(address, quiet=req.quiet):
        if address is not None:
            n = prepare_on_nodes(plan.dataset, cfg.dataset, plan.data_root, plugins)
            echo(f"data {plan.dataset} ready on {n} node(s)")
        echo(
            f"search {out}: {plan.model} on {plan.dataset}, {plan.num_samples} sample(s) of {', '.join(plan.keys)}, "
            f"{plan.scheduler}, optimising val_{plan.metric} ({plan.mode})"
        )
        tuner = _tuner(plan, space, out / "ray", plugins, req.quiet)
        grid = tuner.fit()
        trials_dir = out / "trials"
        outcomes = [_collect(r, plan, trials_dir, registry, echo) for r in grid]
        best: TrialOutcome | None = None
        try:
            best_result = grid.get_best_result()  # TuneConfig's metric and mode
        except RuntimeError:
            best_result = None
        if best_result is not None:
            best_id = str((best_result.metrics or {}).get("trial_id", ""))
            best = next((o for o in outcomes if o.trial_id == best_id), None)
    best_path: Path | None = None
    if best is not None:
        best_path = out / "best.yaml"
        _write_best(best_path, plan, best)
    from .summary import summary_frame

    frame = summary_frame(outcomes, plan.keys, plan.metric, plan.mode)
    with tempfile.NamedTemporaryFile("w", suffix=".csv", dir=out, delete=False) as fh:
        frame.to_csv(fh, index=False)
    os.replace(fh.name, out / "summary.csv")
    return SearchResult(out, plan.model, plan.dataset, plan.keys, plan.metric, plan.mode, outcomes, best, best_path)
