"""Training budgets: budget -> steps, schedules that end with the budget, resume, cost in the record."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from vpbench.config import BudgetConfig, apply_overrides, build_run_config
from vpbench.engine.budget import MacCounts, count_step_macs, plan_training, steps_for_budget
from conftest import interrupt_at
from vpbench.engine.run import RunRequest, execute_run
from vpbench.engine.schedule import lr_factor
from vpbench.engine.train import RunInterrupted, TrainState, allocate_steps
from vpbench.errors import ConfigError
from vpbench.interfaces import Stage, StepOutput

PEAK = 3e-3  # TinyConv's stage lr (conftest)


def _req(model: str, out: Path, sets: list[str], **kw: Any) -> RunRequest:
    return RunRequest(model=model, dataset="glyphs", sets=sets, out=out, device="cpu", progress=False, **kw)


def _run(registry: Any, model: str, out: Path, sets: list[str], **kw: Any) -> Any:
    return execute_run(_req(model, out, sets, **kw), registry, echo=lambda s: None)[0]


def _base(small_glyphs: list[str]) -> list[str]:
    return small_glyphs + ["train.batch_size=4", "train.eval_every=5", "train.val_sequences=4", "train.select_metric=mse",
                           "eval.metrics=[mse]", "eval.profile=false"]  # fmt: skip


# ------------------------------------------------------------------ budget -> steps


def test_sequences_budget_gives_whole_steps_never_more_clips_than_the_budget() -> None:
    assert steps_for_budget([1.0], [None], 4, BudgetConfig(sequences=42)) == (10, "sequences")
    assert steps_for_budget([1.0], [None], 4, BudgetConfig(sequences=40)) == (10, "sequences")
    assert steps_for_budget([1.0], [None], 8, BudgetConfig(sequences=7)) == (0, "sequences")


def test_macs_budget_single_stage_is_the_most_steps_that_fit() -> None:
    assert steps_for_budget([1.0], [1000], 4, BudgetConfig(macs=10_999)) == (10, "macs")
    assert steps_for_budget([1.0], [1000], 4, BudgetConfig(macs=11_000)) == (11, "macs")


def test_macs_budget_multi_stage_splits_the_steps_by_fraction_and_spends_at_most_the_budget() -> None:
    fractions, macs = [0.3, 0.5, 0.2], [100, 1_000, 2_500]  # a cheap autoencoder, a prior, a costly joint stage
    budget = 1_234_567
    n, bound = steps_for_budget(fractions, macs, 8, BudgetConfig(macs=budget))
    cost = lambda k: sum(s * m for s, m in zip(allocate_steps(fractions, k), macs))  # noqa: E731
    assert bound == "macs" and cost(n) <= budget < cost(n + 1)
    assert allocate_steps(fractions, n) == [round(0.3 * n), round(0.8 * n) - round(0.3 * n), n - round(0.8 * n)]


def test_both_budgets_take_whichever_runs_out_first() -> None:
    assert steps_for_budget([1.0], [1000], 4, BudgetConfig(sequences=400, macs=20_000)) == (20, "macs")
    assert steps_for_budget([1.0], [1000], 4, BudgetConfig(sequences=40, macs=20_000)) == (10, "sequences")


class _Linear(nn.Module):
    """A one-stage model whose training step is a single linear map: MACs known by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(12, 5, bias=False)

    def stages(self) -> list[Stage]:
        return [Stage("main", lambda b, s: StepOutput(self.fc(b.flatten(1)).pow(2).mean(), {}), self.parameters)]


def test_step_macs_count_forward_and_backward_once_and_leave_the_model_alone() -> None:
    model = _Linear()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(5)
    expected_draw = torch.rand(1)
    torch.manual_seed(5)
    batch = torch.ones(3, 2, 1, 2, 3)  # 3 clips of 12 values
    macs = count_step_macs(model, 0, batch)  # type: ignore[arg-type]
    # forward 3·12·5, weight gradient 3·12·5; the input needs no gradient
    assert macs == 2 * 3 * 12 * 5
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.fc.weight.grad is None
    assert torch.equal(torch.rand(1), expected_draw)  # the random stream is where it was


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("groups", [1, 8, 64])
def test_a_grouped_convolution_trains_at_three_times_its_forward_macs(groups: int, transposed: bool) -> None:
    """torch's counter charged a grouped convolution's weight gradient ``groups`` times: a
    depthwise layer's training step counted 66x its forward MACs, and TAU and SimVP, built on
    grouped convolutions, were given a fraction of the steps their budget pays for."""
    from vpbench.flopcount import flop_counter

    conv = (nn.ConvTranspose2d if transposed else nn.Conv2d)(64, 64, 3, padding=1, groups=groups, bias=False)
    x = torch.randn(2, 64, 8, 8, requires_grad=True)
    forward_macs = 2 * 8 * 8 * 64 * (64 // groups) * 3 * 3  # per output value: in-channels of its group x kernel
    counter = flop_counter()
    with counter:
        y = conv(x)
    assert counter.get_total_flops() // 2 == forward_macs
    counter = flop_counter()
    with counter:
        conv(x).square().sum().backward()
    assert counter.get_total_flops() // 2 == 3 * forward_macs  # forward, input gradient, weight gradient


def test_plan_for_a_multi_stage_model_counts_each_stage_and_splits_one_budget(registry, small_glyphs, tmp_path) -> None:
    from vpbench.components import build_dataset, build_model

    cfg = build_run_config(apply_overrides({}, small_glyphs + ["model.training=joint", "train.batch_size=2"]))
    dataset = build_dataset(registry, "glyphs", cfg.dataset, tmp_path / "data", 0)
    model = build_model(registry, "shrvq", {**registry.models.get("shrvq").tiny, "training": "joint"},
                        dataset.frame_shape, dataset.context, dataset.horizon)  # fmt: skip
    plain = plan_training(model, dataset, cfg.train, torch.device("cpu"))
    m = [s.macs_per_step for s in plain.stages]
    assert [s.name for s in plain.stages] == ["autoencoder", "prior", "joint"]
    assert all(isinstance(x, int) and x > 0 for x in m)
    budget = 40.5 * sum(m)
    cfg = build_run_config(apply_overrides({}, small_glyphs + ["model.training=joint", "train.batch_size=2",
                                                               f"train.budget.macs={budget}"]))  # fmt: skip
    counts = MacCounts(tmp_path / "data")
    plan = plan_training(model, dataset, cfg.train, torch.device("cpu"), cache=counts)
    fractions = [s.fraction for s in model.stages()]
    assert [s.macs_per_step for s in plan.stages] == m
    assert plan.bound == "macs"
    assert [s.steps for s in plan.stages] == allocate_steps(fractions, plan.total_steps)
    assert plan.macs is not None and plan.macs <= budget
    assert sum(n * x for n, x in zip(allocate_steps(fractions, plan.total_steps + 1), m)) > budget  # type: ignore[operator]
    # the counts are kept in the data root's checked cache once flushed; a second plan reads them
    cache = tmp_path / "data" / ".vpbench-cache" / "train-macs"
    assert len(counts.pending) == 3 and not cache.exists()
    counts.flush()
    assert len(list(cache.glob("*.npz"))) == 3
    again = MacCounts(tmp_path / "data")
    assert plan_training(model, dataset, cfg.train, torch.device("cpu"), cache=again) == plan and not again.pending


def test_budget_replaces_max_steps_and_the_record_states_the_cost(registry, small_glyphs, tmp_path) -> None:
    sets = _base(small_glyphs) + ["train.max_steps=1000", "train.budget.sequences=42"]
    record = _run(registry, "tinyconv", tmp_path / "r", sets)
    t = record.train
    assert t.steps_done == 10 and t.config["max_steps"] == 10
    assert t.budget == {"sequences": 42, "macs": None}
    assert t.sequences_seen == 40 and t.attempts == 1 and t.stopped_early is None
    assert t.stages[0]["macs_per_step"] > 0 and t.train_macs == 10 * t.stages[0]["macs_per_step"]
    assert t.cpu_time_s is not None and t.cpu_time_s > 0 and t.wall_time_s > 0
    assert [h["step"] for h in t.history] == [5, 10]
    assert t.history[-1] == {"step": 10, "sequences": 40, "macs": t.train_macs, "stage": "main", "mse": t.history[-1]["mse"]}
    assert t.history[0]["sequences"] == 20 and t.history[0]["macs"] == t.train_macs // 2


def test_a_budget_below_one_step_is_a_config_error(registry, small_glyphs, tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"train.budget \(3 sequences\) does not buy one training step of 4 clips"):
        _run(registry, "tinyconv", tmp_path / "r", _base(small_glyphs) + ["train.budget.sequences=3"])
    assert not (tmp_path / "r").exists()


def test_amp_off_from_yaml_and_set_is_the_string_off() -> None:
    assert build_run_config(apply_overrides({"train": {"amp": False}}, [])).train.amp == "off"
    assert build_run_config(apply_overrides({}, ["train.amp=off"])).train.amp == "off"
    with pytest.raises(ConfigError, match="train.amp"):
        build_run_config(apply_overrides({}, ["train.amp=on"]))


# --------------------------------------------------------------------- schedules


def _record_lrs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float]]:
    """Patch TinyConv so that every optimiser update appends its (lr, β1)."""
    from conftest import TinyConv

    seen: list[tuple[float, float]] = []

    def stages(self):  # type: ignore[no-untyped-def]
        def hook(opt: torch.optim.Optimizer) -> None:
            opt.register_step_pre_hook(lambda o, a, k: seen.append((o.param_groups[0]["lr"], o.param_groups[0]["betas"][0])))

        return [Stage("main", self._step, self.parameters, lr=PEAK, on_optimizer=hook)]

    monkeypatch.setattr(TinyConv, "stages", stages)
    return seen


def _torch_reference(schedule: str, steps: int) -> tuple[list[float], list[float]]:
    """The rates (and β1) torch's own scheduler gives the same steps, and its rate after them."""
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=PEAK)
    sched: Any = {
        "constant": lambda: torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0),
        "cosine": lambda: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps),
        "linear": lambda: torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0, end_factor=0.0, total_iters=steps),
        "onecycle": lambda: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=PEAK, total_steps=steps),
    }[schedule]()
    lrs, betas = [], []
    for k in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        betas.append(opt.param_groups[0]["betas"][0])
        opt.step()
        if k < steps - 1:
            sched.step()
    return lrs, betas


@pytest.mark.parametrize("schedule", ["constant", "cosine", "linear", "onecycle"])
def test_schedule_runs_over_the_budget_and_ends_at_its_last_step(registry, small_glyphs, tmp_path, monkeypatch, schedule) -> None:
    seen = _record_lrs(monkeypatch)
    sets = _base(small_glyphs) + ["train.max_steps=1000", "train.budget.sequences=40", f"train.lr_schedule={schedule}"]
    record = _run(registry, "tinyconv", tmp_path / "r", sets)
    assert record.train.steps_done == 10 and len(seen) == 10  # the budget's steps, not max_steps
    lrs, betas = _torch_reference(schedule, 10)
    assert [lr for lr, _ in seen] == pytest.approx(lrs, rel=1e-12, abs=1e-18)
    if schedule == "onecycle":
        assert [b for _, b in seen] == pytest.approx(betas, rel=1e-12)
    else:
        assert all(b == 0.9 for _, b in seen)  # Adam's own β1
    last = seen[-1][0]
    end = {
        # cosine and linear reach 0 right after the budget's last update (torch's step N)
        "constant": (last, PEAK),
        "cosine": (PEAK * lr_factor("cosine", 10, 10), 0.0),
        "linear": (PEAK * lr_factor("linear", 10, 10), 0.0),
        # OneCycle reaches its minimum, peak / 25 / 1e4, at the last update itself
        "onecycle": (last, PEAK / 25 / 1e4),
    }[schedule]
    assert end[0] == pytest.approx(end[1], abs=1e-18)
    if schedule in ("cosine", "linear"):
        assert 0 < last < PEAK / 10 + 1e-12  # the last update still moves the weights


def test_adamw_with_weight_decay_is_the_stage_optimiser(registry, small_glyphs, tmp_path, monkeypatch) -> None:
    from conftest import TinyConv

    built: list[torch.optim.Optimizer] = []

    def stages(self):  # type: ignore[no-untyped-def]
        return [Stage("main", self._step, self.parameters, lr=PEAK, on_optimizer=built.append)]

    monkeypatch.setattr(TinyConv, "stages", stages)
    _run(registry, "tinyconv", tmp_path / "r", _base(small_glyphs) + ["train.max_steps=2", "train.optimizer=adamw",
                                                                      "train.weight_decay=0.05"])  # fmt: skip
    assert type(built[0]) is torch.optim.AdamW and built[0].param_groups[0]["weight_decay"] == 0.05


# ------------------------------------------------------------------------ resume


def _resume(registry: Any, out: Path, **kw: Any) -> Any:
    req = RunRequest(model=None, dataset=None, out=out, resume=True, device="cpu", progress=False, **kw)
    return execute_run(req, registry, echo=lambda s: None)[0]


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_resume_in_the_middle_of_a_budgeted_schedule_is_bitwise_exact(registry, small_glyphs, tmp_path, monkeypatch, schedule) -> None:
    sets = _base(small_glyphs) + ["train.budget.sequences=40", "train.checkpoint_every=3", "model.noise=0.05",
                                  f"train.lr_schedule={schedule}"]  # fmt: skip
    straight = _run(registry, "tinyconv", tmp_path / "a", sets)
    with monkeypatch.context() as m:
        interrupt_at(m, 7)
        with pytest.raises(RunInterrupted):
            _run(registry, "tinyconv", tmp_path / "b", sets)
    resumed = _resume(registry, tmp_path / "b")
    a = torch.load(tmp_path / "a" / "checkpoints" / "last.pt", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.metrics == straight.metrics
    s, r = straight.train, resumed.train
    assert (r.steps_done, r.sequences_seen, r.train_macs, r.history) == (s.steps_done, s.sequences_seen, s.train_macs, s.history)
    assert (s.attempts, r.attempts) == (1, 2) and r.stopped_early is None
    assert r.cpu_time_s is not None and r.cpu_time_s > 0 and r.wall_time_s > 0


def test_a_resume_keeps_the_plan_it_started_with(registry, small_glyphs, tmp_path, monkeypatch) -> None:
    """Another machine may count the MACs of a step differently: a resumed run keeps the steps
    its checkpoint planned (and a remote resume, which copies the checkpoint, inherits them)."""
    import vpbench.engine.run as run_module
    from vpbench.engine.budget import StagePlan, TrainPlan

    probe = _run(registry, "tinyconv", tmp_path / "p", _base(small_glyphs) + ["train.max_steps=1"])
    per_step = probe.train.stages[0]["macs_per_step"]
    sets = _base(small_glyphs) + [f"train.budget.macs={10.5 * per_step}", "train.checkpoint_every=3",
                                  "train.lr_schedule=linear"]  # fmt: skip
    straight = _run(registry, "tinyconv", tmp_path / "a", sets)
    assert straight.train.steps_done == 10
    with monkeypatch.context() as m:
        interrupt_at(m, 4)
        with pytest.raises(RunInterrupted):
            _run(registry, "tinyconv", tmp_path / "b", sets)
    original = run_module.plan_training

    def doubled(*args: Any, **kw: Any) -> TrainPlan:  # a machine that counts twice the MACs: 5 steps
        plan = original(*args, **kw)
        stages = tuple(StagePlan(s.name, s.steps // 2, 2 * (s.macs_per_step or 0)) for s in plan.stages)
        return TrainPlan(stages, plan.batch_size, plan.bound)

    monkeypatch.setattr(run_module, "plan_training", doubled)
    resumed = _resume(registry, tmp_path / "b")
    assert resumed.train.steps_done == 10 and resumed.train.train_macs == straight.train.train_macs
    assert resumed.train.config["max_steps"] == 10 and resumed.train.stopped_early is None
    a = torch.load(tmp_path / "a" / "checkpoints" / "last.pt", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_run_tested_before_its_planned_steps_says_it_stopped_early(registry, small_glyphs, tmp_path, monkeypatch) -> None:
    sets = _base(small_glyphs) + ["train.budget.sequences=40", "train.checkpoint_every=3"]
    with monkeypatch.context() as m:
        interrupt_at(m, 7)
        with pytest.raises(RunInterrupted):
            _run(registry, "tinyconv", tmp_path / "r", sets)
    record = _resume(registry, tmp_path / "r", evaluate_only=True)
    assert record.train.steps_done == 7
    assert record.train.stopped_early == "stopped at step 7 of 10"
    assert record.train.sequences_seen == 28 and record.train.train_macs == 7 * record.train.stages[0]["macs_per_step"]


def test_a_checkpoint_from_before_the_cost_fields_still_loads() -> None:
    old = {"global_step": 3, "stage_index": 0, "stage_step": 3, "best_value": None, "best_step": None,
           "last_validated": -1, "history": [], "stage_log": [], "wall_time_s": 1.5}  # fmt: skip
    state = TrainState.from_checkpoint(old, Path("last.pt"))
    assert state.global_step == 3 and state.cpu_time_s == 0.0 and state.plan == [] and state.attempts == 0
    assert math.isclose(state.wall_time_s, 1.5)


# ------------------------------------------------------------ validation cadence


def test_validation_points_spread_evenly_over_the_selecting_stages() -> None:
    from vpbench.engine.train import validation_points

    assert validation_points([10], [True], 3) == {3, 7, 10}
    assert validation_points([10], [True], 1) == {10}
    assert validation_points([3], [True], 8) == {1, 2, 3}  # at most one pass per step
    # a first stage that does not select gets none: the passes spread over the second's 6 steps
    assert validation_points([4, 6], [False, True], 3) == {6, 8, 10}
    assert validation_points([2, 2, 4], [False, True, True], 2) == {5, 8}


def test_validations_set_the_passes_of_a_budgeted_run_and_replace_eval_every(registry, small_glyphs, tmp_path) -> None:
    sets = _base(small_glyphs) + ["train.budget.sequences=40", "train.validations=3"]  # eval_every=5 is replaced
    record = _run(registry, "tinyconv", tmp_path / "r", sets)
    assert record.train.steps_done == 10
    assert [h["step"] for h in record.train.history] == [3, 7, 10]
    assert [h["sequences"] for h in record.train.history] == [12, 28, 40]


def test_resume_between_budget_relative_validations_is_bitwise_exact(registry, small_glyphs, tmp_path, monkeypatch) -> None:
    sets = _base(small_glyphs) + ["train.budget.sequences=40", "train.validations=4", "train.checkpoint_every=3",
                                  "model.noise=0.05", "train.lr_schedule=cosine"]  # fmt: skip
    straight = _run(registry, "tinyconv", tmp_path / "a", sets)
    assert [h["step"] for h in straight.train.history] == [2, 5, 8, 10]
    with monkeypatch.context() as m:
        interrupt_at(m, 6)  # after the checkpoint of step 5's validation, before step 8's
        with pytest.raises(RunInterrupted):
            _run(registry, "tinyconv", tmp_path / "b", sets)
    resumed = _resume(registry, tmp_path / "b")
    a = torch.load(tmp_path / "a" / "checkpoints" / "last.pt", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.train.history == straight.train.history and resumed.metrics == straight.metrics


# -------------------------------------------------------- every validation metric


def _train_watching(registry: Any, small_glyphs: list[str], root: Path, watch_names: list[str]) -> Any:
    from vpbench.components import build_dataset, build_metrics, build_model
    from vpbench.engine.selection import validation_metrics
    from vpbench.engine.train import Trainer

    cfg = build_run_config(apply_overrides({}, _base(small_glyphs) + ["train.max_steps=10", "train.validations=2",
                                                                      "model.noise=0.05"]))  # fmt: skip
    torch.manual_seed(0)
    dataset = build_dataset(registry, "glyphs", cfg.dataset, root / "data", 0)
    model = build_model(registry, "tinyconv", cfg.model, dataset.frame_shape, dataset.context, dataset.horizon)
    metrics, _ = build_metrics(registry, ["mse", *watch_names], ["openstl", "standard"])
    select = next(m for m in metrics if m.name == "mse" and m.protocol == "openstl")
    seen: list[dict[str, float]] = []
    state = Trainer(
        model=model, model_name="tinyconv", model_config=model.config.model_dump(mode="json"), dataset=dataset,
        cfg=cfg.train, select=select, device=torch.device("cpu"), seed=0, ckpt_dir=root / "ckpt", progress=False,
        on_validation=lambda step, values, _: seen.append(values), watch=validation_metrics(metrics, select),
    ).run(False)  # fmt: skip
    return state, seen, model


def test_each_validation_pass_records_every_validation_metric(registry, small_glyphs, tmp_path) -> None:
    state, seen, model = _train_watching(registry, small_glyphs, tmp_path / "w", ["ssim", "psnr"])
    assert [h["step"] for h in state.history] == [5, 10]
    for h in state.history:  # the selecting metric and the others of its protocol (not the standard ones)
        assert set(h) == {"step", "sequences", "macs", "stage", "mse", "ssim", "psnr"}
        assert 0 < h["ssim"] <= 1 and h["psnr"] > 0 and h["mse"] > 0
    assert [set(v) for v in seen] == [{"val_mse", "val_ssim", "val_psnr"}] * 2
    # the other metrics change nothing else: selection, weights and the MSE values are those of MSE alone
    alone, _, model_alone = _train_watching(registry, small_glyphs, tmp_path / "a", [])
    assert [h["mse"] for h in state.history] == [h["mse"] for h in alone.history]
    assert (state.best_step, state.best_value) == (alone.best_step, alone.best_value)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), model_alone.state_dict().values()))
    assert [set(h) for h in alone.history] == [{"step", "sequences", "macs", "stage", "mse"}] * 2


def test_validation_metrics_are_the_run_s_metrics_under_the_selecting_protocol(registry) -> None:
    from vpbench.components import build_metrics
    from vpbench.engine.selection import validation_metrics

    metrics, _ = build_metrics(registry, ["mse", "ssim", "psnr"], ["openstl", "standard"])
    select = next(m for m in metrics if m.name == "ssim" and m.protocol == "openstl")
    assert [(m.name, m.protocol) for m in validation_metrics(metrics, select)] == [("mse", "openstl"), ("psnr", "openstl")]
