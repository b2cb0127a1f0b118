"""The function trainable: one Ray Tune trial is one ``vpbench run``.

Before its first step a trial prepares its dataset on its own node, under the data root's
lock (a node that joined the cluster after the search started has no data yet). Each
validation pass reports ``{"val_<metric>": value, "step": step}`` with a Ray checkpoint
holding the run's resumable state (``run.yaml`` and ``checkpoints/``); ``step`` is the
schedulers' time. A trial that Ray restarts (its worker died, or HyperBand paused it)
continues from ``tune.get_checkpoint()`` and never reports the checkpoint's step again. The
last report carries the finished run directory packed as ``run.tar`` (never a bare
``record.json``, so the leaderboard never reads Ray's storage), and the test metrics.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..fsutil import atomic_write_text
from ..cluster.pack import copy_state, pack_dir, unpack_dir
from .space import set_dotted

__all__ = ["TrialSetup", "RUN_TAR", "STEP_FILE", "train_trial", "final_metrics", "score_stopped"]

#: name of the packed finished run directory inside a trial's final checkpoint
RUN_TAR = "run.tar"
#: the training step a validation checkpoint was reported at (inside the Ray checkpoint)
STEP_FILE = "reported_step.txt"


@dataclass(frozen=True)
class TrialSetup:
    """Everything a trial needs besides its sampled values (pickled to the workers)."""

    model: str
    dataset: str
    #: nested run-config overrides shared by every trial (config file, fixed, --set)
    base: dict[str, Any]
    metric: str
    device: str = "cpu"
    data_root: str | None = None
    #: plugin objects registered besides the installed entry points (tests' plugins)
    plugins: Sequence[object] = ()
    argv: Sequence[str] = ()


def final_metrics(record: Any, metric: str) -> dict[str, Any]:
    """The last report of a finished trial: the selected validation value and test means."""
    tests = {f"test_{name}": res.mean for name, res in record.metrics.get("openstl", {}).items()}
    selected = record.train.select_value
    if selected is None:  # nothing validated (an untrained model): rank it by its test value
        selected = tests.get(f"test_{metric}", float("nan"))
    return {f"val_{metric}": selected, "step": record.train.steps_done, "finished": True, **tests}


def _prepare(setup: TrialSetup, overrides: dict[str, Any], registry: Any) -> int:
    """Prepare (or wait for) the trial's dataset on this node, under the data root's lock.

    Returns the trial's total training steps.
    """
    from ..config import build_run_config
    from ..data.root import resolve_data_root
    from ..cluster.data import prepare_data

    cfg = build_run_config(overrides)
    prepare_data(registry, setup.dataset, cfg.dataset, resolve_data_root(setup.data_root), progress=False)
    return cfg.train.max_steps


def _pack_state(run_dir: Path, dest: Path, step: int) -> None:
    """Copy the resumable part of a run directory (config and checkpoints) into ``dest``."""
    (dest / STEP_FILE).write_text(str(step), encoding="utf-8")
    copy_state(run_dir, dest)


def train_trial(config: dict[str, Any], setup: TrialSetup) -> None:
    """Ray Tune function trainable; ``config`` maps dotted keys to sampled values."""
    from ray import tune

    from ..engine.run import RunRequest, execute_run
    from ..plugins import get_registry
    from ..records import read_record

    registry = get_registry(setup.plugins)
    trial_id = tune.get_context().get_trial_id()
    work = Path(tempfile.mkdtemp(prefix=f"vpbench-trial-{trial_id}-"))
    run_dir = work / str(trial_id)
    try:
        overrides = set_dotted(setup.base, config)
        max_steps = _prepare(setup, overrides, registry)
        resume = False
        restored_step = -1
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as ckpt:
                if (Path(ckpt) / RUN_TAR).exists():  # finished before the restart: report it again
                    unpack_dir((Path(ckpt) / RUN_TAR).read_bytes(), run_dir)
                    record = read_record(run_dir / "record.json")
                    tune.report(final_metrics(record, setup.metric), checkpoint=checkpoint)
                    return
                shutil.copytree(ckpt, run_dir)
                resume = (run_dir / "run.yaml").exists()
                if (run_dir / STEP_FILE).exists():
                    restored_step = int((run_dir / STEP_FILE).read_text(encoding="utf-8"))
                    (run_dir / STEP_FILE).unlink()

        def on_validation(step: int, values: dict[str, float], ckpt_dir: Path) -> None:
            # a restored trial validates its checkpoint's step again (for best.pt): reporting it
            # twice would shift it against the other trials; the last step is the final report
            if step <= restored_step or step >= max_steps:
                return
            with tempfile.TemporaryDirectory(dir=work) as tmp:
                _pack_state(run_dir, Path(tmp), step)
                tune.report({**values, "step": step}, checkpoint=tune.Checkpoint.from_directory(tmp))

        config_file: Path | None = None
        if not resume:
            config_file = work / "trial.yaml"
            atomic_write_text(config_file, yaml.safe_dump(overrides, sort_keys=False))
        req = RunRequest(
            model=setup.model,
            dataset=setup.dataset,
            config_file=config_file,
            device=setup.device,
            out=run_dir,
            resume=resume,
            data_root=Path(setup.data_root) if setup.data_root else None,
            progress=False,
            argv=[*setup.argv, "--trial", str(trial_id)],
            on_validation=on_validation,
        )
        record, _ = execute_run(req, registry, echo=print)
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            (run_dir / "checkpoints" / "last.pt").unlink(missing_ok=True)
            (Path(tmp) / RUN_TAR).write_bytes(pack_dir(run_dir))
            tune.report(final_metrics(record, setup.metric), checkpoint=tune.Checkpoint.from_directory(tmp))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def score_stopped(state: bytes, name: str, step: int, setup: TrialSetup) -> bytes:
    """Test a trial the scheduler stopped, at its last checkpoint; returns the packed run directory.

    Runs as a Ray task with the trial's own resources (its GPU when it has one), on any node.
    """
    from ..engine.run import RunRequest, execute_run
    from ..plugins import get_registry

    registry = get_registry(setup.plugins)
    work = Path(tempfile.mkdtemp(prefix=f"vpbench-score-{name}-"))
    try:
        run_dir = work / name
        unpack_dir(state, run_dir)
        (run_dir / STEP_FILE).unlink(missing_ok=True)
        from ..config import load_yaml

        _prepare(setup, load_yaml(run_dir / "run.yaml")["config"], registry)
        req = RunRequest(
            evaluate_only=True,
            model=None,
            dataset=None,
            out=run_dir,
            resume=True,
            device=setup.device,
            data_root=Path(setup.data_root) if setup.data_root else None,
            progress=False,
            argv=[*setup.argv, "--trial", name, "--stopped-at", str(step)],
        )
        execute_run(req, registry, echo=print)
        (run_dir / "checkpoints" / "last.pt").unlink(missing_ok=True)
        return pack_dir(run_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
