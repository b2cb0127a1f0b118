"""ConvLSTM and PredRNN baselines (plugins/vpbench_rnn): tiny configs, CPU, a few seconds."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml

import vpbench
import vpbench_rnn
from vpbench.config import TrainConfig
from vpbench.errors import ConfigError
from vpbench.plugins import get_registry
from vpbench_rnn.convlstm import ConvLSTM
from vpbench_rnn.patch import from_patches
from vpbench_rnn.predrnn import PredRNN
from vpbench_rnn.sampling import reverse_etas, sampling_mask, scheduled_eta

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
MODELS = {"convlstm": ConvLSTM, "predrnn": PredRNN}
SMALL = vpbench.FrameShape(1, 16, 16)
TINY = dict(vpbench_rnn._TINY)


def build(name: str, shape: vpbench.FrameShape = SMALL, context: int = 4, horizon: int = 3, **over: object):
    cls = MODELS[name]
    return cls(cls.Config(**{**TINY, **over}), shape, context, horizon)


def clip(b: int = 2, t: int = 7, shape: vpbench.FrameShape = SMALL, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, t, *shape.as_tuple(), generator=g)


@pytest.fixture(params=sorted(MODELS))
def name(request: pytest.FixtureRequest) -> str:
    return request.param


def test_plugin_registers_both_models_with_lazy_targets_and_tiny_overrides() -> None:
    registry = get_registry([vpbench_rnn], load_entry_points=False)
    for model, cls in MODELS.items():
        spec = registry.models.get(model)
        assert spec.load() is cls
        assert spec.trainable and spec.paper and spec.tiny
        cls.Config(**spec.tiny)  # tiny overrides are valid keys


def test_predict_and_step_follow_the_shape_contract(name: str) -> None:
    torch.manual_seed(0)
    model = build(name, vpbench.FrameShape(2, 32, 32))
    batch = clip(3, 7, vpbench.FrameShape(2, 32, 32))
    pred = model.predict(batch[:, :4], 3)
    assert pred.shape == (3, 3, 2, 32, 32)
    assert pred.min() >= 0 and pred.max() <= 1
    assert model.predict(batch[:, :4], 6).shape == (3, 6, 2, 32, 32)  # any horizon
    (stage,) = model.stages()
    assert stage.selects
    out = stage.step(batch, 0)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    grads = [p.grad for p in stage.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_patch_size_that_does_not_divide_the_frame_is_a_config_error(name: str) -> None:
    with pytest.raises(ConfigError, match="patch_size"):
        build(name, vpbench.FrameShape(1, 30, 30), patch_size=4)
    with pytest.raises(ConfigError, match="filter_size"):
        build(name, filter_size=4)


def _perturbed_from(batch: torch.Tensor, t: int) -> torch.Tensor:
    out = batch.clone()
    out[:, t:] = torch.rand_like(out[:, t:])
    return out


def test_no_leakage_prediction_of_frame_t_ignores_frames_from_t_on(name: str) -> None:
    torch.manual_seed(0)
    model = build(name, sampling="off").eval()
    batch = clip()  # T=4, S=3: frames 0..6
    context = model.context
    with torch.no_grad():
        base, _, probs = model.training_rollout(batch, 0)  # base[:, f-1] predicts frame f
        assert probs == (1.0, 0.0)
        for t in range(1, batch.shape[1]):
            moved, _, _ = model.training_rollout(_perturbed_from(batch, t), 0)
            assert torch.equal(moved[:, :t], base[:, :t]), f"prediction of frames <= {t} saw frames >= {t}"
            if t < context:  # the check can fail: a context frame does drive later predictions
                assert not torch.allclose(moved[:, t], base[:, t])
            else:  # future ground truth never enters
                assert torch.equal(moved, base)
        # predict() is exactly the free-running half of that rollout
        pred = model.predict(batch[:, :context], 3)
        assert torch.allclose(pred, _unpatch(model, base[:, context - 1 :]))


def _unpatch(model: vpbench.VideoModel, preds: torch.Tensor) -> torch.Tensor:
    return from_patches(preds, model.config.patch_size).clamp(0, 1)


def test_teacher_forcing_at_step_zero_does_feed_future_ground_truth(name: str) -> None:
    # the counterpart of the leakage test: with η = 1 the perturbation must be visible
    torch.manual_seed(0)
    model = build(name).eval()
    batch = clip()
    with torch.no_grad():
        base, _, probs = model.training_rollout(batch, 0)
        moved, _, _ = model.training_rollout(_perturbed_from(batch, 5), 0)
    assert probs == (1.0, 1.0)
    assert torch.equal(moved[:, :5], base[:, :5]) and not torch.allclose(moved[:, 5], base[:, 5])


def test_scheduled_sampling_falls_by_2e5_per_step_and_is_zero_from_50k() -> None:
    assert scheduled_eta(0) == 1.0
    assert scheduled_eta(25_000) == pytest.approx(0.5)
    assert scheduled_eta(49_999) == pytest.approx(2e-5)
    assert scheduled_eta(50_000) == 0.0 and scheduled_eta(80_000) == 0.0
    assert scheduled_eta(300, start=1.0, decrement=1 / 600, stop=600) == pytest.approx(0.5)
    model = build("predrnn", sampling_decrement=1e-3, sampling_stop=2000)
    assert model.sampling_probs(500) == (1.0, pytest.approx(0.5))
    assert model.sampling_probs(2000) == (1.0, 0.0)


def test_reverse_scheduled_sampling_follows_predrnn_v2() -> None:
    assert reverse_etas(0) == (0.5, 0.5) and reverse_etas(24_999) == (0.5, 0.5)
    r_eta, eta = reverse_etas(37_500)
    assert r_eta == pytest.approx(1 - 0.5 * math.exp(-12_500 / 5_000))
    assert eta == pytest.approx(0.25)
    assert reverse_etas(50_000) == (1.0, 0.0)
    model = build("predrnn", sampling="reverse", reverse_step1=10, reverse_step2=20, reverse_alpha=2.0)
    assert model.sampling_probs(15)[1] == pytest.approx(0.25)


def test_sampling_mask_keeps_context_and_draws_future_with_probability_eta() -> None:
    torch.manual_seed(0)
    mask = sampling_mask(4000, 10, 10, 1.0, 0.3)
    assert mask.shape == (4000, 18)
    assert torch.all(mask[:, :9] == 1)
    assert mask[:, 9:].mean().item() == pytest.approx(0.3, abs=0.01)
    assert torch.all(sampling_mask(8, 10, 10, 1.0, 0.0)[:, 9:] == 0)


def test_save_and_load_state_dict_reproduces_predictions(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build(name)
    batch = clip()
    torch.save(model.state_dict(), tmp_path / "m.pt")
    torch.manual_seed(1)
    other = build(name)
    assert not torch.equal(other.predict(batch[:, :4], 3), model.predict(batch[:, :4], 3))
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    assert torch.equal(other.predict(batch[:, :4], 3), model.predict(batch[:, :4], 3))


def test_seeded_training_step_is_deterministic(name: str) -> None:
    def run() -> tuple[float, torch.Tensor]:
        torch.manual_seed(3)
        model = build(name, sampling_decrement=0.4)  # η = 0.6: random mask in play
        out = model.stages()[0].step(clip(), 1)
        out.loss.backward()
        return out.loss.item(), model.readout.weight.grad.clone()

    (l1, g1), (l2, g2) = run(), run()
    assert l1 == l2 and torch.equal(g1, g2)


def test_reverse_input_trains_on_both_directions(name: str) -> None:
    torch.manual_seed(0)
    model = build(name, reverse_input=True)
    batch = clip()
    both = model.stages()[0].step(batch, 0).loss
    torch.manual_seed(0)
    plain = build(name)
    fwd = plain.stages()[0].step(batch, 0).loss
    bwd = plain.stages()[0].step(batch.flip(1), 0).loss
    assert both.item() == pytest.approx((fwd.item() + bwd.item()) / 2, rel=1e-5)


def _config(stem: str) -> dict:
    data = yaml.safe_load((CONFIGS / f"{stem}.yaml").read_text())
    assert set(data) <= {"model", "train"}
    TrainConfig.model_validate(data.get("train", {}))
    return data["model"]


@pytest.mark.parametrize(
    ("stem", "shape", "params"),
    [
        ("predrnn-mmnist", (1, 64, 64), 23_838_720),  # the published PredRNN count, exactly
        ("predrnn-kth", (1, 128, 128), 23_568_384),
        ("convlstm-mmnist", (1, 64, 64), 11_675_648),  # OpenSTL's 15,083,520 minus its unused convs
        ("convlstm-kth", (1, 128, 128), 11_520_512),
    ],
)
def test_full_configs_have_the_published_parameter_counts(stem: str, shape: tuple[int, int, int], params: int) -> None:
    cls = MODELS[stem.split("-")[0]]
    model = cls(cls.Config(**_config(stem)), vpbench.FrameShape(*shape), 10, 10)
    assert sum(p.numel() for p in model.parameters()) == params


@pytest.mark.parametrize("stem", ["convlstm-glyphs", "predrnn-glyphs"])
def test_glyphs_configs_are_valid(stem: str) -> None:
    cls = MODELS[stem.split("-")[0]]
    cls(cls.Config(**_config(stem)), vpbench.FrameShape(1, 64, 64), 10, 10)


def test_convlstm_cell_outputs_o_times_tanh_c_not_o_times_g() -> None:
    from vpbench_rnn.cells import ConvLSTMCell

    cell = ConvLSTMCell(2, 3, 3, (4, 4), layer_norm=False, peephole=False, forget_bias=1.0)
    for p in cell.parameters():
        torch.nn.init.zeros_(p)  # every gate pre-activation 0: i = o = 1/2, f = σ(1), g = 0
    c_prev = torch.ones(1, 3, 4, 4)
    h, c = cell(torch.rand(1, 2, 4, 4), (torch.zeros(1, 3, 4, 4), c_prev))
    assert torch.allclose(c, torch.sigmoid(torch.tensor(1.0)).expand_as(c))
    assert torch.allclose(h, 0.5 * torch.tanh(c))  # OpenSTL v0.3.0's o ∘ g would give 0


def test_convlstm_forget_gate_has_no_constant_by_default_as_in_openstl() -> None:
    """OpenSTL's ConvLSTM cell adds nothing to the forget gate; PredRNN's ST-LSTM adds 1."""
    model = build("convlstm")
    assert model.config.forget_bias == 0.0
    assert all(cell.forget_bias == 0.0 for cell in model.cells)
    assert build("predrnn").config.forget_bias == 1.0
    cell = model.cells[0]
    for p in cell.parameters():
        torch.nn.init.zeros_(p)  # every pre-activation 0: f = σ(0) = 1/2, i = 1/2, g = 0
    x = torch.rand(1, cell.conv_x.in_channels, *model.size)
    c_prev = torch.ones(1, model.config.hidden, *model.size)
    _, c = cell(x, (torch.zeros_like(c_prev), c_prev))
    assert torch.allclose(c, torch.full_like(c, 0.5))
    for stem in ("convlstm-glyphs", "convlstm-mmnist", "convlstm-kth"):
        assert _config(stem).get("forget_bias", 0.0) == 0.0


def test_predrnn_memory_zigzags_from_top_layer_to_bottom_layer_of_next_step() -> None:
    torch.manual_seed(0)
    model = build("predrnn", num_layers=3)
    seen: dict[str, list[torch.Tensor]] = {"in0": [], "out_top": []}
    model.cells[0].register_forward_hook(lambda mod, args, out: seen["in0"].append(args[3]))
    model.cells[-1].register_forward_hook(lambda mod, args, out: seen["out_top"].append(out[2]))
    with torch.no_grad():
        model.predict(clip()[:, :4], 3)
    assert len(seen["in0"]) == 6
    assert torch.count_nonzero(seen["in0"][0]) == 0  # M starts at zero
    for t in range(1, 6):
        assert seen["in0"][t] is seen["out_top"][t - 1]


# ------------------------------------------------- scheduled sampling relative to the run


def _glyphs_model(stem: str, **over: object):  # type: ignore[no-untyped-def]
    """The model of configs/<stem>-glyphs.yaml (its schedule), small frames."""
    from vpbench_mau.model import MAU
    from vpbench_rnn.predrnn_v2 import PredRNNv2

    cls = {"convlstm": ConvLSTM, "predrnn": PredRNN, "predrnn-v2": PredRNNv2, "mau": MAU}[stem]
    model_cfg = yaml.safe_load((CONFIGS / f"{stem}-glyphs.yaml").read_text())["model"]
    return cls(cls.Config(**{**model_cfg, **over}), SMALL, 4, 3)


def _probs(model, step: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    return model.sampling_probs(step) if hasattr(model, "sampling_probs") else (1.0, model.sampling_eta(step))


@pytest.mark.parametrize("stem", ["convlstm", "predrnn", "predrnn-v2", "mau"])
def test_sampling_span_ends_the_glyphs_schedule_at_its_fraction_of_the_run(stem: str) -> None:
    absolute = _glyphs_model(stem)
    relative = _glyphs_model(stem, sampling_span=0.5)
    end = yaml.safe_load((CONFIGS / f"{stem}-glyphs.yaml").read_text())["model"]
    end = end.get("reverse_step2", end.get("sampling_stop"))
    # the run of the config itself (end = half of max_steps): the same schedule, step by step
    relative.on_training_plan(2 * end)
    steps = range(0, 2 * end + 1)
    assert [v for s in steps for v in _probs(relative, s)] == pytest.approx(
        [v for s in steps for v in _probs(absolute, s)], abs=1e-12
    )
    # a budget of 80 steps: the same shape squeezed into the first 40, the end state from step 40
    relative.on_training_plan(80)
    for step in (0, 8, 16, 24, 32):  # step * end / 40 is a whole step of the absolute schedule
        assert _probs(relative, step) == pytest.approx(_probs(absolute, step * end // 40), abs=1e-9)
    assert _probs(relative, 40) == _probs(relative, 79) == (1.0, 0.0)
    assert _probs(absolute, 79) != (1.0, 0.0)  # the absolute schedule would not have ended
    assert _probs(relative, 39)[1] > 0


def test_sampling_span_keeps_the_published_absolute_defaults() -> None:
    model = build("predrnn")
    assert model.config.sampling_span is None
    model.on_training_plan(100)  # a short run does not change the published schedule
    assert model.sampling_probs(60) == (1.0, scheduled_eta(60))


def test_sampling_span_without_the_run_s_steps_is_a_config_error() -> None:
    model = _glyphs_model("predrnn", sampling_span=0.5)
    assert model.sampling_probs(0) == (1.0, 1.0)  # step 0 is the schedule's start whatever the run
    with pytest.raises(ConfigError, match="model.sampling_span needs the run's planned steps"):
        model.sampling_probs(1)


def test_the_harness_tells_the_model_the_budget_s_steps(registry, small_glyphs, tmp_path, monkeypatch) -> None:
    from vpbench.engine.run import RunRequest, execute_run
    from vpbench_rnn.rollout import RecurrentPredictor

    seen: list[tuple[int, tuple[float, float]]] = []
    original = RecurrentPredictor.sampling_probs

    def probs(self, global_step: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
        seen.append((global_step, original(self, global_step)))
        return seen[-1][1]

    monkeypatch.setattr(RecurrentPredictor, "sampling_probs", probs)
    sets = small_glyphs + [f"model.{k}={v}" for k, v in TINY.items()] + [
        "model.sampling_decrement=1.0e-2", "model.sampling_stop=100", "model.sampling_span=0.5",
        "train.max_steps=1000", "train.budget.sequences=32", "train.batch_size=4", "train.validations=2",
        "train.val_sequences=4", "train.select_metric=mse", "eval.metrics=[mse]", "eval.profile=false",
    ]  # fmt: skip
    req = RunRequest(model="predrnn", dataset="glyphs", sets=sets, out=tmp_path / "r", device="cpu", progress=False)
    record = execute_run(req, registry, echo=lambda s: None)[0]
    assert record.train.steps_done == 8
    training = [(s, p) for s, p in seen if s < 8][-8:]  # the 8 training steps (the MAC count probes step 0 first)
    assert [s for s, _ in training] == list(range(8))
    assert [p[1] for _, p in training] == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0, 0.0, 0.0, 0.0])
