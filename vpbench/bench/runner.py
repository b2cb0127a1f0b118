"""Run a suite on Ray: one task per run, finished runs skipped, failed ones retried from their
last checkpoint, every failure reported.

Output folder (``--out``, default ``runs/bench-<suite>``)::

    suite.yaml                      the suite file as it was run
    <dataset>/<entry>-seed-<seed>/  each run's directory: record.json, run.yaml, checkpoints/, strips/

It is a records tree: ``vpbench leaderboard --records OUT`` reads it as it is.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import load_yaml
from ..errors import ConfigError, VpbenchError
from ..fsutil import atomic_write_text
from ..names import check_slug
from .store import STATE_FILE
from .suite import PlannedRun, SuiteSpec, expand_suite, load_suite, resolved_config

__all__ = ["BenchRequest", "RunOutcome", "BenchResult", "plan_bench", "run_bench", "run_state", "outcome_rows"]

Echo = Callable[[str], None]


@dataclass
class BenchRequest:
    """What the user asked for (``vpbench bench`` flags or a Python call)."""

    suite: Path
    out: Path | None = None
    sets: Sequence[str] = ()
    address: str | None = None
    gpus_per_run: float = 0.0
    cpus_per_run: float = 1.0
    retries: int = 2
    data_root: Path | None = None
    argv: Sequence[str] = ()
    quiet: bool = False
    dry_run: bool = False
    #: ``--shared-out``: ``out`` is on a file system every node mounts at the same path; each
    #: run's node writes its states and result there, the driver receives no state bytes
    shared_out: bool = False


@dataclass
class RunOutcome:
    run: PlannedRun
    #: pending | finished (this time) | skipped (finished before) | failed
    status: str
    #: the state found before this invocation: new | partial (resumable) | finished
    found: str = "new"
    attempts: int = 0
    host: str | None = None
    reason: str | None = None
    #: the step each retry resumed from
    resumed_from: list[int] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class BenchResult:
    out: Path
    suite: str
    outcomes: list[RunOutcome]

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failed(self) -> list[RunOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


def plan_bench(req: BenchRequest, registry: Any) -> tuple[SuiteSpec, str, list[PlannedRun], Path]:
    """Validate the request and expand the suite (no Ray needed)."""
    if req.retries < 0 or req.cpus_per_run <= 0 or req.gpus_per_run < 0:
        raise ConfigError("--cpus-per-run must be positive, --retries and --gpus-per-run >= 0")
    if req.address is not None and req.address.startswith("ray://"):
        # a Ray Client's tasks and actors run on the cluster, so run states would be kept on the head node
        raise ConfigError("vpbench bench drives the suite from a cluster node: use --address HOST:PORT or auto there, not ray://")
    suite = load_suite(req.suite)
    name = suite.name or req.suite.stem
    runs = expand_suite(suite, registry, str(req.suite), req.sets, suite_dir=req.suite.parent)
    if req.out is None:  # the name becomes a folder under runs/: it must stay there
        check_slug(f"suite {req.suite}: name", name, "it names the output folder runs/bench-<name>; set a plain `name:` or give --out")
    out = req.out or Path("runs") / f"bench-{name}"
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder for the suite's runs")
    return suite, name, runs, out


def _first_difference(saved: Any, expected: Any, prefix: str = "") -> str | None:
    if isinstance(saved, dict) and isinstance(expected, dict):
        for k in sorted(set(saved) | set(expected), key=str):
            diff = _first_difference(saved.get(k), expected.get(k), f"{prefix}{k}.")
            if diff is not None:
                return diff
        return None
    if saved != expected:
        return f"{prefix.rstrip('.')} is {saved!r} there, {expected!r} in the suite"
    return None


def _planned(config: dict[str, Any]) -> dict[str, Any]:
    """A resolved run config as comparable with a run's: under ``train.budget`` the run writes
    the steps its plan bought as ``train.max_steps``, so that key is not the suite's to match."""
    train = config.get("train")
    if isinstance(train, dict) and train.get("budget") is not None:
        return {**config, "train": {k: v for k, v in train.items() if k != "max_steps"}}
    return config


def _record_difference(path: Path, run: PlannedRun, registry: Any) -> str | None:
    """How the finished run recorded at ``path`` differs from ``run`` (model, dataset, their
    configs, the training config and the seed), or None: a committed records tree keeps only
    ``record.json`` of each run, not its ``run.yaml``."""
    from ..records import read_record

    record = read_record(path)
    config = _planned(resolved_config(registry, run.model, run.dataset, run.overrides))
    found = {"model": record.model.name, "dataset": record.dataset.name, "seed": record.seed,
             "model config": record.model.config, "dataset config": record.dataset.config,
             "train": _planned({"train": record.train.config})["train"]}
    expected = {"model": run.model, "dataset": run.dataset, "seed": config["seed"], "model config": config["model"],
                "dataset config": config["dataset"], "train": config["train"]}
    return _first_difference(json.loads(json.dumps(found)), expected)


def run_state(run: PlannedRun, out: Path, registry: Any) -> str:
    """``finished``, ``partial`` (resumable) or ``new``; a folder holding another run is an error.

    A folder with a ``record.json`` and no ``run.yaml`` (a committed records tree) is finished
    when its record's model, dataset, configs and seed are the run's."""
    root = run.run_dir(out)
    spec = root / "run.yaml"
    if not spec.is_file():
        if (root / "record.json").exists():
            diff = _record_difference(root / "record.json", run, registry)
            if diff is None:
                return "finished"
            raise ConfigError(f"{root} holds the record of another run ({diff}); remove that folder or choose another --out")
        return "new"  # nothing, or a start that failed before its first checkpoint
    saved = load_yaml(spec)
    expected = {"model": run.model, "dataset": run.dataset, "config": _planned(resolved_config(registry, run.model, run.dataset, run.overrides))}
    if isinstance(saved.get("config"), dict):
        saved = {**saved, "config": _planned(saved["config"])}
    diff = _first_difference({k: saved.get(k) for k in expected}, expected)
    if diff is not None:
        raise ConfigError(f"{root} holds a run with another config ({diff}); remove that folder or choose another --out")
    return "finished" if (root / "record.json").is_file() else "partial"


def _one_line(text: str) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error"


def _metrics_text(summary: dict[str, Any]) -> str:
    metrics = summary.get("metrics") or {}
    return ", ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items()))


class _Progress:
    def __init__(self, outcomes: list[RunOutcome], echo: Echo) -> None:
        self.outcomes, self.echo = outcomes, echo

    def line(self, event: str) -> None:
        c = {s: sum(1 for o in self.outcomes if o.status == s) for s in ("finished", "skipped", "failed", "running")}
        total = len(self.outcomes)
        self.echo(
            f"[{c['finished'] + c['skipped']}/{total} done, {c['running']} running or queued, {c['failed']} failed, "
            f"{c['skipped']} skipped] {event}"
        )


def run_bench(req: BenchRequest, registry: Any, echo: Echo = print) -> BenchResult:
    """Run every unfinished run of the suite on Ray and return what happened to each.

    The output folder is locked for the command's life: a second ``vpbench bench`` on it stops
    with the first one's PID instead of running the same runs twice.
    """
    from ..engine.rundir import run_lock

    suite, name, runs, out = plan_bench(req, registry)
    if req.dry_run:
        result = _inspect(suite, name, runs, out, registry, echo)
        for o in result.outcomes:
            echo(f"  {o.run.key}: {o.found} (model {o.run.model}, seed {o.run.seed}, config {o.run.config_source or 'defaults'})")
        return result
    with run_lock(out):
        result = _inspect(suite, name, runs, out, registry, echo)
        atomic_write_text(out / "suite.yaml", req.suite.read_text(encoding="utf-8"))
        todo = [o for o in result.outcomes if o.status == "pending"]
        if todo:
            _run_on_ray(req, registry, out, todo, suite.compare, _Progress(result.outcomes, echo))
    return result


def _inspect(suite: SuiteSpec, name: str, runs: list[PlannedRun], out: Path, registry: Any, echo: Echo) -> BenchResult:
    """Each run's state in ``out``: finished runs are skipped, the others pending."""
    outcomes = []
    for run in runs:
        found = run_state(run, out, registry)
        outcomes.append(RunOutcome(run, "skipped" if found == "finished" else "pending", found=found))
    n = {s: sum(1 for o in outcomes if o.found == s) for s in ("finished", "partial", "new")}
    echo(
        f"suite {name}: {len(runs)} runs ({len(suite.entries)} entries x datasets x seeds) in {out}; "
        f"{n['finished']} finished before (skipped), {n['partial']} to resume, {n['new']} to start"
    )
    return BenchResult(out, name, outcomes)


def _run_on_ray(
    req: BenchRequest, registry: Any, out: Path, todo: list[RunOutcome], compare: list[str] | None, progress: _Progress
) -> None:
    """Submit the runs (no more at once than the cluster can start), take their messages one at
    a time and write each to its run's folder as it arrives (:mod:`vpbench.bench.store`)."""
    from ..cluster.connect import forwarded_plugins, ray_session, require_ray, window
    from ..cluster.interrupt import POLL_S, cancel_all, sigint_flag
    from ..cluster.pack import recover_dir
    from ..cluster.transport import next_message, remote_task
    from .store import store_message, stored_state
    from .task import run_job

    require_ray()
    plugins = tuple(forwarded_plugins(registry))
    data_root = req.data_root or os.environ.get("VPBENCH_DATA")
    data_root = str(Path(data_root).resolve()) if data_root else None
    device = "cuda" if req.gpus_per_run > 0 else "cpu"
    with ray_session(req.address, quiet=req.quiet):
        import ray
        from ray.exceptions import RayError, RayTaskError

        resources = ray.cluster_resources()  # type: ignore[no-untyped-call]
        if req.gpus_per_run > resources.get("GPU", 0):
            raise ConfigError(
                f"--gpus-per-run {req.gpus_per_run:g} but the Ray cluster has {resources.get('GPU', 0):g} GPU(s); "
                "use --gpus-per-run 0 or a cluster with GPUs"
            )
        task = remote_task(ray, req.cpus_per_run, req.gpus_per_run)
        pending: dict[Any, RunOutcome] = {}
        queued = list(todo)

        def submit(o: RunOutcome) -> None:
            run = o.run
            root = run.run_dir(out)
            if req.shared_out:  # the node reads the state from the shared folder itself
                recover_dir(root)
                root.parent.mkdir(parents=True, exist_ok=True)
                state, resuming = None, (root / "run.yaml").is_file()
            else:
                state = stored_state(root)  # read from disk now, one run at a time
                resuming = state is not None
            step = _stored_step(root) if resuming else None
            job = run_job(run, resume=resuming, device=device, data_root=data_root, compare=compare,
                          argv=req.argv, plugins=plugins, shared=str(root.resolve()) if req.shared_out else None)
            pending[task.remote(job, state)] = o
            del state  # the object store holds it until the task starts; the driver does not
            o.attempts += 1
            o.status = "running"
            if o.attempts > 1:
                o.resumed_from.append(step or 0)
            how = f"resuming from step {step}" if resuming else "from the start"
            progress.line(f"start {run.key} (attempt {o.attempts}, {how})")

        def failed(o: RunOutcome, reason: str, retry: bool) -> None:
            o.reason = reason
            if retry and o.attempts <= req.retries:
                progress.line(f"attempt {o.attempts} of {o.run.key} failed ({reason}); retrying from its last checkpoint")
                queued.insert(0, o)
            else:
                o.status = "failed"
                progress.line(f"FAILED {o.run.key} after {o.attempts} attempt(s): {reason}")

        def take(gen: Any) -> None:
            """Handle the next message of a ready run."""
            o = pending[gen]
            try:
                message = next_message(ray, gen)
            except RayTaskError as exc:
                del pending[gen]
                cause = getattr(exc, "cause", None)
                if isinstance(cause, VpbenchError):  # the run's own error (diverged, bad data): retrying repeats it
                    failed(o, " ".join(str(cause).split()), retry=False)
                else:
                    failed(o, f"{type(cause).__name__ if cause else 'error'}: {_one_line(str(cause or exc))}", retry=True)
                return
            except RayError as exc:  # the worker or its node died, an object was lost
                del pending[gen]
                failed(o, f"{type(exc).__name__}: {_first_sentence(str(exc))}", retry=True)
                return
            if message is None:  # ended without its "done" message (cannot happen unless the task is broken)
                del pending[gen]
                failed(o, "the run ended without sending its result", retry=True)
                return
            store_message(message, o.run.run_dir(out))
            if message[0] != "done":
                return
            del pending[gen]
            summary = _summary(o.run.run_dir(out), message[3])
            o.status, o.summary, o.host, o.reason = "finished", summary, summary.get("host"), None
            progress.line(f"finished {o.run.key} on {o.host} in {summary.get('wall_time_s', 0):.1f} s: {_metrics_text(summary)}")

        # Ctrl-C only sets ``stop``: the loop sees it between bounded waits, cancels the running
        # runs (the states they sent are on disk, resumable) and raises KeyboardInterrupt outside Ray
        with sigint_flag() as stop:
            while (pending or queued) and not stop.is_set():
                if queued and len(pending) < window(ray, req.cpus_per_run, req.gpus_per_run):
                    submit(queued.pop(0))
                    continue
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
                if ready:
                    take(ready[0])
            if stop.is_set():
                cancel_all(ray, list(pending))
                raise KeyboardInterrupt


def _summary(root: Path, where: str) -> dict[str, Any]:
    """Host, steps, wall time and test means of a finished run, from its record."""
    from ..records import read_record

    record = read_record(root / "record.json")
    means = {name: res.mean for name, res in record.metrics.get("openstl", {}).items()}
    return {"host": where, "steps": record.train.steps_done, "wall_time_s": record.wall_time_s, "metrics": means}


def _first_sentence(text: str) -> str:
    line = _one_line(text.strip().splitlines()[0] if text.strip() else text)
    return line.split(". ")[0].rstrip(".")


def _stored_step(root: Path) -> int | None:
    try:
        return int(json.loads((root / STATE_FILE).read_text(encoding="utf-8"))["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def outcome_rows(result: BenchResult) -> list[dict[str, Any]]:
    """One row per run for the end-of-suite table."""
    rows = []
    for o in result.outcomes:
        rows.append(
            {
                "run": o.run.key,
                "status": o.status,
                "attempts": o.attempts,
                "resumed from": ",".join(str(s) for s in o.resumed_from) or "-",
                "host": o.host or "-",
                "metrics": _metrics_text(o.summary) or ("-" if o.status != "failed" else (o.reason or "")),
            }
        )
    return rows

