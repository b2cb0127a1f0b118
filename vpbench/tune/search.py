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
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..config import apply_overrides, build_run_config, default_config_file, load_yaml, validate_section
from ..engine.selection import resolve_select_metric
from ..errors import ConfigError
from ..fsutil import atomic_write_text
from ..plugins import Registry
from ..cluster.connect import forwarded_plugins, ray_session, require_ray
from ..cluster.data import prepare_data, prepare_on_nodes
from ..cluster.pack import pack_dir, unpack_dir
from .settings import SCHEDULERS, SEARCHERS, require_searcher, resolve_settings
from .space import SearchSpace, load_search_space, plain, set_dotted
from .trainable import RUN_TAR, TrialSetup, score_stopped, train_trial

__all__ = ["TuneRequest", "TrialOutcome", "SearchResult", "SearchInterrupted", "plan_search", "run_search", "SCHEDULERS", "SEARCHERS"]

Echo = Callable[[str], None]


class SearchInterrupted(Exception):
    """Ctrl-C stopped the search; Ray saved its state and ``--resume --out`` continues it."""

    def __init__(self, out: Path, unfinished: int) -> None:
        super().__init__(f"search {out} interrupted with {unfinished} unfinished trial(s)")
        self.out = out
        self.unfinished = unfinished


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
    #: None: the search file's ``tune:`` value, else the default (see :class:`TuneSettings`)
    scheduler: str | None = None
    searcher: str | None = None
    grace_period: int | None = None
    reduction_factor: float | None = None
    max_concurrent: int | None = None
    time_budget_s: float | None = None
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
    searcher: str = "random"
    #: ASHA's grace period in training steps
    grace_period: int = 1
    reduction_factor: float = 2.0
    max_concurrent: int = 0
    time_budget_s: float | None = None
    seed: int | None = None


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
        plan = Plan(**load_yaml(req.out / "tune.yaml"))
        require_searcher(plan.searcher)  # Ray unpickles the searcher on restore
        return plan, None, req.out
    if req.model is None or req.dataset is None or req.search is None:
        raise ConfigError("vpbench tune needs --model, --dataset and --search FILE (see configs/tune/)")
    if req.num_samples < 1 or req.max_failures < 0 or req.cpus_per_trial <= 0 or req.gpus_per_trial < 0:
        raise ConfigError("--num-samples and --cpus-per-trial must be positive, --max-failures and --gpus-per-trial >= 0")
    registry.models.get(req.model)
    registry.datasets.get(req.dataset)
    space = load_search_space(req.search)
    flags = {
        "scheduler": req.scheduler, "searcher": req.searcher, "grace_period": req.grace_period,
        "reduction_factor": req.reduction_factor, "max_concurrent": req.max_concurrent, "time_budget_s": req.time_budget_s,
    }
    settings = resolve_settings(space.settings, flags, str(req.search))
    space.check_searcher(settings.searcher)
    require_searcher(settings.searcher)
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
    budgeted = cfg.train.budget is not None or any(d.key.startswith("train.budget") for d in space.domains)
    if budgeted and settings.scheduler != "fifo":
        raise ConfigError(
            f"search {req.search}: train.budget with the {settings.scheduler} scheduler, which compares and stops trials "
            "at equal steps while a budget gives each trial its own steps; set train.max_steps instead, or tune.scheduler: fifo"
        )
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
        scheduler=settings.scheduler,
        num_samples=req.num_samples,
        # the schedulers' time is the training step: trials are compared at the same step
        max_t=_max_steps(cfg.train.max_steps, space),
        gpus_per_trial=req.gpus_per_trial,
        cpus_per_trial=req.cpus_per_trial,
        max_failures=req.max_failures,
        data_root=str(Path(data_root).resolve()) if data_root else None,
        argv=list(req.argv),
        searcher=settings.searcher,
        grace_period=settings.grace_period or _first_validation(cfg.train.max_steps, cfg.train.eval_every, cfg.train.validations),
        reduction_factor=settings.reduction_factor,
        max_concurrent=settings.max_concurrent,
        time_budget_s=settings.time_budget_s,
        seed=settings.seed,
    )
    return plan, space, out


def _first_validation(max_steps: int, eval_every: int, validations: int | None) -> int:
    """ASHA's default grace period: the step of a trial's first validation pass (with
    ``train.validations``, the first of that many evenly spaced over the steps)."""
    if validations is None:
        return eval_every
    return max(1, round(max_steps / validations))


def _max_steps(base_steps: int, space: SearchSpace) -> int:
    """The longest trial's steps (``train.max_steps`` may itself be searched)."""
    for d in space.domains:
        if d.key == "train.max_steps":
            return max([base_steps, *(int(v) for v in d.values)])
    return base_steps


def _setup(plan: Plan, plugins: list[object]) -> TrialSetup:
    return TrialSetup(
        model=plan.model,
        dataset=plan.dataset,
        base=plan.base,
        metric=plan.metric,
        device="cuda" if plan.gpus_per_trial > 0 else "cpu",
        data_root=plan.data_root,
        plugins=tuple(plugins),
        argv=plan.argv,
    )


def _trainable(plan: Plan, plugins: list[object]) -> Any:
    from ray import tune

    resources = {"cpu": plan.cpus_per_trial, "gpu": plan.gpus_per_trial}
    return tune.with_resources(tune.with_parameters(train_trial, setup=_setup(plan, plugins)), resources)


def _scheduler(plan: Plan) -> Any:
    """The trial scheduler; its time is the training step each report carries."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, HyperBandScheduler

    if plan.scheduler == "asha":
        return ASHAScheduler(
            time_attr="step", max_t=plan.max_t, grace_period=plan.grace_period, reduction_factor=plan.reduction_factor
        )
    if plan.scheduler == "hyperband":
        return HyperBandScheduler(time_attr="step", max_t=plan.max_t, reduction_factor=plan.reduction_factor)
    return FIFOScheduler()  # type: ignore[no-untyped-call]


def _searcher(plan: Plan) -> Any:
    if plan.searcher == "optuna":
        require_searcher("optuna")
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch(seed=plan.seed)  # Ray maps the space's domains onto Optuna's
    return None


def _tuner(plan: Plan, space: SearchSpace | None, storage: Path, plugins: list[object], quiet: bool) -> Any:
    from ray import tune

    trainable = _trainable(plan, plugins)
    storage = storage.absolute()  # pyarrow reads a relative path as a URI without a scheme
    experiment = storage / "search"
    if space is None:  # --resume
        if not tune.Tuner.can_restore(str(experiment)):
            raise ConfigError(f"no Ray Tune experiment to resume in {experiment}; start the search again without --resume")
        return tune.Tuner.restore(str(experiment), trainable=trainable, resume_errored=True)
    # metric and mode are set once, here; the scheduler and the searcher inherit them
    return tune.Tuner(
        trainable,
        param_space=space.to_ray(),
        tune_config=tune.TuneConfig(
            metric=f"val_{plan.metric}",
            mode=plan.mode,
            scheduler=_scheduler(plan),
            search_alg=_searcher(plan),
            num_samples=plan.num_samples,
            max_concurrent_trials=plan.max_concurrent or None,
            time_budget_s=plan.time_budget_s,
        ),
        run_config=tune.RunConfig(
            name="search",
            storage_path=str(storage.resolve()),
            failure_config=tune.FailureConfig(max_failures=plan.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            verbose=0 if quiet else 1,
        ),
    )


def _stale(dest: Path) -> bool:
    """``dest`` holds a record scored at a scheduler stop (``--stopped-at``), or none at all."""
    from ..records import read_record

    if not (dest / "record.json").exists():
        return True
    return "--stopped-at" in read_record(dest / "record.json").argv


def _status(result: Any) -> tuple[str, str | None]:
    metrics: dict[str, Any] = dict(result.metrics or {})
    error = str(result.error).strip().splitlines()[-1] if result.error is not None else None
    return ("error" if error else ("finished" if metrics.get("finished") else "stopped")), error


def _score_all(stopped: list[tuple[Path, Any, int]], plan: Plan, plugins: list[object], echo: Echo) -> None:
    """Test every trial the scheduler stopped, at its last checkpoint, each as a Ray task with
    the trial's own resources (its GPU when it has one), as many at once as the cluster runs.

    A checkpoint is read (from Ray's storage) only when its task is submitted, and each tested
    run directory is written to disk as it comes back: the driver holds a bounded number."""
    import ray

    from ..cluster.connect import user_errors, window
    from ..cluster.interrupt import POLL_S, cancel_all, sigint_flag

    if not stopped:
        return
    task = ray.remote(num_cpus=plan.cpus_per_trial, num_gpus=plan.gpus_per_trial, max_retries=plan.max_failures)(
        score_stopped
    )
    setup = _setup(plan, plugins)
    echo(f"testing {len(stopped)} stopped trial(s) at their last checkpoint, with each trial's resources")
    queued = list(stopped)
    pending: dict[Any, Path] = {}
    with user_errors(), sigint_flag() as stop:
        while (queued or pending) and not stop.is_set():
            if queued and len(pending) < window(ray, plan.cpus_per_trial, plan.gpus_per_trial):
                dest, checkpoint, step = queued.pop(0)
                with checkpoint.as_directory() as d:
                    pending[task.remote(pack_dir(Path(d)), dest.name, step, setup)] = dest
                continue
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
            for ref in ready:
                unpack_dir(ray.get(ref), pending.pop(ref), replace=True)
        if stop.is_set():
            cancel_all(ray, list(pending))
            raise KeyboardInterrupt


def _collect(results: list[Any], plan: Plan, trials_dir: Path, plugins: list[object], echo: Echo, *, score: bool) -> list[TrialOutcome]:
    """One outcome per trial; finished trials' run directories land in ``trials/<id>/``.

    With ``score``, trials the scheduler stopped are tested at their last checkpoint.
    A record scored at a stop is replaced when the trial has since finished (``--resume``).
    """
    from ..records import read_record

    stopped: list[tuple[Path, Any, int]] = []
    rows: list[tuple[Any, str, Path, str, str | None]] = []
    for result in results:
        metrics: dict[str, Any] = dict(result.metrics or {})
        trial_id = str(metrics.get("trial_id") or Path(result.path).name)
        dest = trials_dir / trial_id
        status, error = _status(result)
        rows.append((result, trial_id, dest, status, error))
        ckpt = result.checkpoint
        if ckpt is None or error is not None:
            continue
        if status == "finished" and _stale(dest):
            with ckpt.as_directory() as d:
                if (Path(d) / RUN_TAR).exists():
                    unpack_dir((Path(d) / RUN_TAR).read_bytes(), dest, replace=True)
        elif status == "stopped" and score and not (dest / "record.json").exists():
            with ckpt.as_directory() as d:
                if (Path(d) / "run.yaml").exists():
                    stopped.append((dest, ckpt, int(metrics.get("step", 0))))  # read when its test is submitted
    _score_all(stopped, plan, plugins, echo)
    outcomes = []
    for result, trial_id, dest, status, error in rows:
        metrics = dict(result.metrics or {})
        values = {k: plain(v) for k, v in (result.config or {}).items()}
        test: dict[str, float] = {}
        run_dir: Path | None = None
        if (dest / "record.json").exists():
            record = read_record(dest / "record.json")
            test = {name: res.mean for name, res in record.metrics.get("openstl", {}).items()}
            run_dir = dest
        val = metrics.get(f"val_{plan.metric}")
        step = metrics.get("step")
        outcomes.append(TrialOutcome(trial_id, status, values, int(step) if step is not None else None, val, test, run_dir, error))
    return outcomes


@contextmanager
def _sigint_watch() -> Iterator[list[bool]]:
    """Tell whether Ray Tune's Ctrl-C handler fired during the block: on its first SIGINT it
    ends the search gracefully and puts the previous handler back (which it otherwise never
    does). Either way the previous handler is in place afterwards."""
    hit = [False]
    if threading.current_thread() is not threading.main_thread() or os.environ.get("TUNE_DISABLE_SIGINT_HANDLER", "0") != "0":
        yield hit
        return
    before = signal.getsignal(signal.SIGINT)
    try:
        yield hit
    finally:
        hit[0] = signal.getsignal(signal.SIGINT) is before
        signal.signal(signal.SIGINT, before)


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
            f"{plan.searcher} search, {plan.scheduler} scheduler, optimising val_{plan.metric} ({plan.mode})"
        )
        tuner = _tuner(plan, space, out / "ray", plugins, req.quiet)
        with _sigint_watch() as interrupted:
            grid = tuner.fit()
        results = list(grid)
        trials_dir = out / "trials"
        if interrupted[0]:  # Ray saved the search: keep what finished, score nothing, no best.yaml
            outcomes = _collect(results, plan, trials_dir, plugins, echo, score=False)
            raise SearchInterrupted(out, sum(1 for o in outcomes if o.status != "finished"))
        outcomes = _collect(results, plan, trials_dir, plugins, echo, score=True)
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
