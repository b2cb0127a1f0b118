"""The training loop: runs a model's stages with checkpoints, validation and resume.

The harness owns the device, mixed precision, progress bars, checkpoints and resume; the
model only says, per stage, what loss to minimise over which parameters.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import torch
from tqdm import tqdm

from ..components import BoundMetric
from ..config import TrainConfig
from ..errors import CheckpointError, ConfigError, TrainingError
from ..interfaces import Stage, VideoDataset, VideoModel
from .batches import train_batches
from .checkpoint import load_checkpoint, load_model_state, load_optimizer_state, save_checkpoint
from .evaluate import evaluate
from .rng import capture_rng, restore_rng
from .schedule import apply_schedule, build_optimizer

__all__ = [
    "RunInterrupted", "Trainer", "TrainState", "ValidationCallback", "allocate_steps", "planned_steps", "validation_points",
]

#: ``callback(step, {"val_<metric>": value, ...}, checkpoint_dir)``, called after each
#: validation pass, once ``checkpoint_dir/last.pt`` holds the state at ``step``.
ValidationCallback = Callable[[int, dict[str, float], Path], None]


class RunInterrupted(Exception):
    """Ctrl-C during training; a resumable checkpoint has been written."""

    def __init__(self, step: int, run_dir: Path | None = None) -> None:
        super().__init__(step)
        self.step = step
        self.run_dir = run_dir


@dataclass
class TrainState:
    """What survives an interruption (stored in ``checkpoints/last.pt``)."""

    global_step: int = 0
    stage_index: int = 0
    stage_step: int = 0
    best_value: float | None = None
    best_step: int | None = None
    last_validated: int = -1
    history: list[dict[str, Any]] = field(default_factory=list)
    stage_log: list[dict[str, Any]] = field(default_factory=list)
    #: wall and process CPU seconds of the training loop, summed over every attempt (an attempt
    #: killed without Ctrl-C, e.g. a lost node, counts up to its last saved checkpoint)
    wall_time_s: float = 0.0
    cpu_time_s: float = 0.0
    #: how many times training started (1 + resumes)
    attempts: int = 0
    #: training clips seen and training MACs spent so far (MACs: 0 when the plan has no count)
    sequences_seen: int = 0
    macs_done: int = 0
    #: the steps and MACs per step of each stage, fixed when the run started
    plan: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_checkpoint(cls, data: object, path: Path) -> TrainState:
        """The state saved in a checkpoint; a malformed one is a :class:`CheckpointError`.

        The cost fields (``cpu_time_s`` and later) may be missing from a checkpoint written before them.
        """
        types: dict[str, tuple[type, ...]] = {
            "global_step": (int,), "stage_index": (int,), "stage_step": (int,), "best_value": (float, int, type(None)),
            "best_step": (int, type(None)), "last_validated": (int,), "history": (list,), "stage_log": (list,),
            "wall_time_s": (float, int), "cpu_time_s": (float, int), "attempts": (int,), "sequences_seen": (int,),
            "macs_done": (int,), "plan": (list,),
        }
        optional = {"cpu_time_s", "attempts", "sequences_seen", "macs_done", "plan"}
        bad = f"checkpoint {path} has a malformed train_state"
        if not isinstance(data, dict) or not set(types) - optional <= set(data) <= set(types):
            keys = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise CheckpointError(f"{bad} (keys {keys}); delete it to restart the run, or point --out at another run")
        for key, allowed in types.items():
            if key not in data:
                continue
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, allowed):
                raise CheckpointError(f"{bad} ({key}={value!r}); delete it to restart the run, or point --out at another run")
        if min(data["global_step"], data["stage_index"], data["stage_step"], data.get("attempts", 0)) < 0:
            raise CheckpointError(f"{bad} (negative step); delete it to restart the run, or point --out at another run")
        return cls(**data)


def allocate_steps(fractions: list[float], total: int) -> list[int]:
    """Split ``total`` steps over stages in proportion to ``fractions`` (sums exactly)."""
    if not fractions:
        return []
    if any(f < 0 for f in fractions) or sum(fractions) <= 0:
        raise ConfigError(f"stage fractions must be non-negative with a positive sum, got {fractions}")
    s = sum(fractions)
    bounds = [round(total * sum(fractions[: i + 1]) / s) for i in range(len(fractions))]
    return [b - a for a, b in zip([0] + bounds[:-1], bounds)]


def validation_points(steps: list[int], selects: list[bool], validations: int) -> frozenset[int]:
    """The global steps of ``validations`` passes evenly spaced over the steps of the selecting stages.

    ``steps``: each stage's planned steps, ``selects``: whether it selects. The selecting stages'
    steps are laid end to end (S in all) and pass ``k`` lands on their ``round(k·S/N)``-th step,
    k = 1..N; the last pass is the end of the last selecting stage. Fewer than N points when
    S < N (each step at most once).
    """
    spans: list[tuple[int, int]] = []  # (first global step after the span's start, steps) of each selecting stage
    start = 0
    for n, sel in zip(steps, selects):
        if sel and n > 0:
            spans.append((start, n))
        start += n
    total = sum(n for _, n in spans)
    points: set[int] = set()
    for k in range(1, validations + 1):
        position = round(k * total / validations)  # 1-based position in the selecting steps, 0 = none
        for first, n in spans:
            if position <= 0:
                break
            if position <= n:
                points.add(first + position)
                break
            position -= n
    return frozenset(points)


def planned_steps(plan: list[dict[str, Any]], stages: list[Stage], path: Path) -> list[int]:
    """Each stage's steps from a saved plan, which must name the model's stages in order."""
    names = [s.name for s in stages]
    try:
        steps = [int(entry["steps"]) for entry in plan]
        saved = [entry["name"] for entry in plan]
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(
            f"checkpoint {path} has a malformed training plan; delete it to restart the run, or point --out at another run"
        ) from None
    if saved != names or min(steps, default=0) < 0:
        raise CheckpointError(
            f"checkpoint {path} plans stages {saved}, the model has {names}; "
            f"delete it to restart the run, or point --out at another run"
        )
    return steps


@contextlib.contextmanager
def _defer_sigint() -> Iterator[None]:
    """Delay Ctrl-C until an optimiser update has finished (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    hit: list[bool] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        hit.append(True)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if hit:
            raise KeyboardInterrupt


def _autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager[Any]:
    if amp == "off" or device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


class Trainer:
    """Trains a model through its stages; ``run(resume)`` leaves ``last.pt`` and (when
    selecting) ``best.pt`` in ``ckpt_dir``."""

    def __init__(
        self,
        *,
        model: VideoModel,
        model_name: str,
        model_config: dict[str, Any],
        dataset: VideoDataset,
        cfg: TrainConfig,
        select: BoundMetric | None,
        device: torch.device,
        seed: int,
        ckpt_dir: Path,
        progress: bool = True,
        on_validation: ValidationCallback | None = None,
        plan: list[dict[str, Any]] | None = None,
        watch: Sequence[BoundMetric] = (),
    ) -> None:
        """``plan``: ``{"name", "steps", "macs_per_step"}`` per stage (see :mod:`.budget`); without
        it the stages split ``cfg.max_steps`` by their fractions and no MACs are counted. A
        resumed run keeps the plan saved in its checkpoint.

        ``watch``: further metrics every validation pass computes and records beside ``select``
        (each entry of the history holds every metric of the pass), e.g. MSE beside LPIPS for
        the quality-vs-compute figure; those under another protocol than ``select``'s, and
        ``select`` itself, are left out. They never decide the best checkpoint."""
        self.watch = [
            m for m in watch if select is not None and m.protocol == select.protocol and m.name != select.name
        ]
        self.on_validation = on_validation
        self.plan = plan
        self.model, self.model_name, self.model_config = model, model_name, model_config
        self.dataset, self.cfg, self.select, self.device = dataset, cfg, select, device
        self.seed, self.ckpt_dir, self.progress = seed, ckpt_dir, progress
        self.last = ckpt_dir / "last.pt"
        self.best = ckpt_dir / "best.pt"
        self.val_split = dataset.split("val") if select is not None else None
        #: the running stage's fp16 loss scaler: its scale is part of the state a resume restores
        self._scaler: torch.amp.GradScaler | None = None
        #: clock readings that make the state's wall and CPU seconds continue a resumed run's
        self._wall0 = self._cpu0 = 0.0
        #: with ``train.validations``: the global steps that validate (from the run's plan)
        self._points: frozenset[int] | None = None

    def _due(self, global_step: int) -> bool:
        """Whether a validation pass falls on ``global_step`` (besides a selecting stage's end)."""
        if self._points is not None:
            return global_step in self._points
        return global_step % self.cfg.eval_every == 0

    def _clock(self, state: TrainState) -> None:
        state.wall_time_s = time.monotonic() - self._wall0
        state.cpu_time_s = time.process_time() - self._cpu0

    # ----------------------------------------------------------------- checkpoints
    def _payload(self, state: TrainState, opt: torch.optim.Optimizer | None, rng: dict[str, Any]) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "model_config": self.model_config,
            "state_dict": self.model.state_dict(),
            "optimizer": opt.state_dict() if opt is not None else None,
            "train_state": state.__dict__,
            "rng": rng,
            "scaler": self._scaler.state_dict() if self._scaler is not None and self._scaler.is_enabled() else None,
        }

    def _save_last(self, state: TrainState, opt: torch.optim.Optimizer | None, rng: dict[str, Any]) -> None:
        save_checkpoint(self.last, self._payload(state, opt, rng))

    def _save_best(self, state: TrainState) -> None:
        save_checkpoint(
            self.best,
            {
                "model": self.model_name,
                "model_config": self.model_config,
                "state_dict": self.model.state_dict(),
                "step": state.global_step,
            },
        )

    # ------------------------------------------------------------------ validation
    def _saver(self, state: TrainState, opt: Any, rng: Any) -> Callable[[], None] | None:
        """What saves last.pt after a validation that is reported (None: nothing is reported)."""
        if self.on_validation is None:
            return None

        def save() -> None:
            self._clock(state)
            self._save_last(state, opt, rng)

        return save

    def _validate(self, state: TrainState, bar: Any, save: Callable[[], None] | None = None) -> None:
        assert self.select is not None and self.val_split is not None
        sel = self.select
        self.model.eval()
        # validation must not disturb the training random stream
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(self.seed + 17)
            res = evaluate(
                {"model": self.model.predict},
                self.val_split,
                [sel, *self.watch],
                context=self.dataset.context,
                horizon=self.dataset.horizon,
                device=self.device,
                batch_size=self.cfg.batch_size,
                limit=self.cfg.val_sequences,
                progress=False,
            )["model"]
        self.model.train()
        values = {m.name: res.metrics[m.protocol][m.name].mean for m in [sel, *self.watch]}
        value = values[sel.name]
        better = state.best_value is None or (
            value > state.best_value if sel.higher_is_better else value < state.best_value
        )
        with _defer_sigint():  # best.pt, the best fields and the history change together
            if better and value == value:  # NaN never wins
                self._save_best(state)
                state.best_value, state.best_step = value, state.global_step
            state.history.append({
                "step": state.global_step,
                "sequences": state.sequences_seen,
                "macs": state.macs_done,
                "stage": state.plan[state.stage_index]["name"] if state.stage_index < len(state.plan) else None,
                **values,
            })
            state.last_validated = state.global_step
        bar.set_postfix({f"val_{sel.name}": f"{value:.4g}", "best@": state.best_step})
        if save is not None:
            with _defer_sigint():
                save()
        if self.on_validation is not None:
            self.on_validation(state.global_step, {f"val_{k}": v for k, v in values.items()}, self.ckpt_dir)

    # ----------------------------------------------------------------------- train
    def run(self, resume: bool) -> TrainState:
        stages = self.model.stages()
        state = TrainState()
        payload: dict[str, Any] | None = None
        if resume and self.last.exists():
            payload = load_checkpoint(self.last, model=self.model_name, model_config=self.model_config)
            load_model_state(self.model, payload["state_dict"], self.last)
            state = TrainState.from_checkpoint(payload.get("train_state"), self.last)
        if not state.plan:
            state.plan = self.plan or [
                {"name": s.name, "steps": n, "macs_per_step": None}
                for s, n in zip(stages, allocate_steps([s.fraction for s in stages], self.cfg.max_steps))
            ]
        budgets = planned_steps(state.plan, stages, self.last)
        self.model.on_training_plan(sum(budgets))
        if self.cfg.validations is not None:  # from the saved plan: a resumed run validates where it would have
            self._points = validation_points(budgets, [s.selects for s in stages], self.cfg.validations)
        state.attempts += 1
        self.model.to(self.device).train()
        self._wall0 = time.monotonic() - state.wall_time_s
        self._cpu0 = time.process_time() - state.cpu_time_s
        total = sum(budgets)
        bar = tqdm(total=total, initial=state.global_step, desc="train", unit="step", disable=not self.progress)
        try:
            for index, (stage, budget) in enumerate(zip(stages, budgets)):
                if index < state.stage_index:
                    continue
                self._run_stage(index, stage, budget, state, payload if index == state.stage_index else None, bar)
                payload = None
                try:
                    with _defer_sigint():
                        state.stage_index, state.stage_step = index + 1, 0
                        self._clock(state)
                        self._save_last(state, None, capture_rng())
                except KeyboardInterrupt:
                    raise RunInterrupted(state.global_step) from None
        finally:
            bar.close()
        self._clock(state)
        return state

    def _run_stage(
        self,
        index: int,
        stage: Stage,
        budget: int,
        state: TrainState,
        payload: dict[str, Any] | None,
        bar: Any,
    ) -> None:
        params = [p for p in stage.parameters()]
        trainable = {id(p) for p in params}
        for p in self.model.parameters():  # freeze everything this stage does not train
            p.requires_grad_(id(p) in trainable)
        lr = stage.lr if stage.lr is not None else self.cfg.lr
        opt = build_optimizer(params, lr, self.cfg) if params else None
        macs_per_step = int(state.plan[index].get("macs_per_step") or 0)
        if opt is not None and stage.on_optimizer is not None:
            stage.on_optimizer(opt)
        scaler = self._scaler = torch.amp.GradScaler("cuda", enabled=self.cfg.amp == "fp16" and self.device.type == "cuda")
        resuming = payload is not None and state.stage_step > 0
        if payload is not None:
            try:
                if resuming and opt is not None and payload.get("optimizer") is not None:
                    load_optimizer_state(opt, payload["optimizer"], self.last)
                if resuming and scaler.is_enabled() and payload.get("scaler"):
                    scaler.load_state_dict(payload["scaler"])
                restore_rng(payload["rng"])
            except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
                raise CheckpointError(
                    f"checkpoint {self.last} has a malformed optimizer or random state ({type(exc).__name__}); "
                    f"delete it to restart the run, or point --out at another run"
                ) from None
        if len(state.stage_log) <= index:
            state.stage_log.append(
                {"name": stage.name, "steps": budget, "lr": lr, "selects": stage.selects,
                 "macs_per_step": state.plan[index].get("macs_per_step")}
            )
        batches = train_batches(
            self.dataset.split("train"),
            batch_size=self.cfg.batch_size,
            seed=self.seed,
            start_step=state.global_step,
            num_workers=self.cfg.num_workers,
        )
        bar.set_description(f"train [{stage.name}]")
        # `rng` is always the random state after the last finished step (or at the stage's
        # start): whatever moment Ctrl-C lands at, the saved state continues exactly
        rng = capture_rng()
        try:
            if (
                resuming
                and stage.selects
                and self.select is not None
                and (self._due(state.global_step) or state.stage_step == budget)
                and state.last_validated < state.global_step
            ):
                self._validate(state, bar, save=self._saver(state, opt, rng))  # the interrupted run had not finished this validation
            while state.stage_step < budget:
                batch = next(batches).to(self.device, non_blocking=True)
                if state.stage_step == 0 and stage.on_start is not None:
                    with torch.no_grad():
                        stage.on_start(batch)
                with _autocast(self.device, self.cfg.amp):
                    out = stage.step(batch, state.global_step)
                loss = out.loss
                if not torch.isfinite(loss):
                    raise TrainingError(
                        f"loss became {loss.item()} at step {state.global_step} in stage {stage.name!r}; "
                        f"lower train.lr or enable train.grad_clip"
                    )
                if opt is not None:
                    opt.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
                with _defer_sigint():
                    if opt is not None:
                        # a function of the step over the stage's planned steps: a resumed run sets the same rate
                        apply_schedule(opt, lr, self.cfg.lr_schedule, state.stage_step, budget)
                        if self.cfg.grad_clip is not None:
                            scaler.unscale_(opt)
                            torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
                        scaler.step(opt)
                        scaler.update()
                    if stage.after_step is not None:
                        with torch.no_grad():
                            stage.after_step(batch, state.global_step)
                    state.global_step += 1
                    state.stage_step += 1
                    state.sequences_seen += int(batch.shape[0])
                    state.macs_done += macs_per_step
                    rng = capture_rng()
                bar.update(1)
                if state.stage_step % 10 == 0 or state.stage_step == budget:
                    bar.set_postfix({"loss": f"{loss.item():.4g}", **{k: f"{v:.3g}" for k, v in list(out.logs.items())[:3]}})
                done = state.stage_step == budget
                validate = stage.selects and self.select is not None and (
                    self._due(state.global_step) or done
                )
                # a run that reports its validations (Tune, a cluster) saves last.pt after the
                # validation, before the report: the state it hands over names the weights of best.pt
                reports = validate and self.on_validation is not None
                if state.global_step % self.cfg.checkpoint_every == 0 and not done and not reports:
                    self._clock(state)
                    self._save_last(state, opt, rng)
                if validate:
                    self._validate(state, bar, save=self._saver(state, opt, rng))
        except KeyboardInterrupt:
            # the model and optimiser are at the end of step `global_step`; `rng` is the state
            # captured right after it, before anything later consumed random numbers
            self._clock(state)
            with _defer_sigint():
                self._save_last(state, opt, rng)
            raise RunInterrupted(state.global_step) from None
        finally:
            for p in self.model.parameters():
                p.requires_grad_(True)

