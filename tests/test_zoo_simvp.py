"""SimVP (incepu, gsta) and TAU: parity with OpenSTL from committed fixtures, sizes, losses, training.

The fixtures under tests/fixtures/zoo/ were written by benchmarks/parity_simvp.py from OpenSTL's
own SimVP_Model and diff_div_reg with the same seeded weights; these tests need no reference code.
"""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import pytest
import torch
import yaml

import vpbench
from vpbench.config import TrainConfig
from vpbench.engine.run import RunRequest, execute_run
from vpbench.errors import ConfigError
from vpbench_simvp.model import SimVP, TAU, differential_divergence

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "zoo"
MODELS = {"simvp": SimVP, "tau": TAU}


def _parity_script():  # the fixture writer: its seeded weights are the ones the fixtures were made with
    spec = importlib.util.spec_from_file_location("parity_simvp", ROOT / "benchmarks" / "parity_simvp.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["simvp_incepu", "simvp_gsta", "tau"])
def test_outputs_and_train_loss_equal_openstl_from_fixture(name: str) -> None:
    fx = torch.load(FIXTURES / f"{name}.pt", weights_only=True)
    parity = _parity_script()
    cls = MODELS[fx["model"]]
    model = cls(cls.Config(**fx["config"]), vpbench.FrameShape(*fx["frame_shape"]), fx["context"], fx["horizon"])
    parity.seeded_weights(model, fx["weight_seed"])
    clip, horizon = fx["clip"], fx["horizon"]
    context = clip[:, : fx["context"]]
    model.eval()
    with torch.no_grad():
        out = model.forecast(context, horizon)
        pred = model.predict(context, horizon)
    assert out.shape == fx["eval_output"].shape
    assert float((out - fx["eval_output"]).abs().max()) <= 1e-5
    assert torch.allclose(pred, fx["eval_output"].clamp(0, 1), atol=1e-5, rtol=0)
    model.train()  # batch statistics, dropout and stochastic depth drawing from the same seed
    torch.manual_seed(fx["train_seed"])
    step = model.training_loss(clip, 0)
    assert step.loss.item() == pytest.approx(fx["train_loss"], abs=1e-5)
    if fx["model"] == "tau":
        assert fx["train_ddr"] > 0
        assert step.logs["ddr"] == pytest.approx(fx["train_ddr"], abs=1e-5)


def test_differential_divergence_is_zero_for_a_perfect_prediction_and_positive_otherwise() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 5, 1, 8, 8, generator=g)
    assert differential_divergence(x, x).abs().item() < 1e-6
    assert differential_divergence(torch.rand(2, 5, 1, 8, 8, generator=g), x).item() > 0
    assert differential_divergence(x[:, :2], x[:, :2]).item() == 0  # fewer than three frames: no term


def test_horizon_longer_than_context_feeds_the_output_back_like_openstl() -> None:
    torch.manual_seed(0)
    model = SimVP(SimVP.Config(hid_s=8, hid_t=16, n_s=2, n_t=2), vpbench.FrameShape(1, 16, 16), 3, 7).eval()
    x = torch.rand(1, 3, 1, 16, 16)
    with torch.no_grad():
        once = model.step(x)
        twice = model.step(once)
        thrice = model.step(twice)
        assert torch.equal(model.forecast(x, 7), torch.cat([once, twice, thrice[:, :1]], dim=1))
        assert torch.equal(model.forecast(x, 2), once[:, :2])


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"n_s": 3}, "n_s=3 must be even"),
        ({"hid_s": 5}, "hid_s=5 must be even"),
        ({"n_s": 6}, "down-samples by 8"),
        ({"groups": 8}, "groups=8 must divide"),  # 3 frames x 4 channels = 12
    ],
)
def test_configs_that_do_not_fit_are_one_line_errors(kw: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        SimVP(SimVP.Config(**{"hid_s": 4, "hid_t": 16, "n_s": 2, "n_t": 2, **kw}), vpbench.FrameShape(1, 36, 36), 3, 3)


def _config(stem: str) -> dict:
    data = yaml.safe_load((ROOT / "configs" / f"{stem}.yaml").read_text())
    assert set(data) <= {"model", "train"}
    TrainConfig.model_validate(data.get("train", {}))
    return data["model"]


@pytest.mark.parametrize(
    ("stem", "sets", "shape", "t", "s", "params"),
    [
        # OpenSTL's model zoo: Moving-MNIST 58.0M / 46.8M / 44.7M, KTH 12.2M / 15.6M / 15.0M
        ("simvp-mmnist", {}, (1, 64, 64), 10, 10, 57_946_113),
        ("simvp-mmnist", {"translator": "gsta"}, (1, 64, 64), 10, 10, 46_769_665),
        ("tau-mmnist", {}, (1, 64, 64), 10, 10, 44_656_001),
        ("simvp-kth", {}, (1, 128, 128), 10, 20, 12_152_385),
        ("simvp-kth", {"translator": "gsta", "drop_path": 0.2}, (1, 128, 128), 10, 20, 15_632_961),
        ("tau-kth", {}, (1, 128, 128), 10, 20, 14_955_201),
    ],
)
def test_published_configs_have_the_model_zoo_sizes(stem, sets, shape, t, s, params) -> None:
    cls = MODELS[stem.split("-")[0]]
    with torch.device("meta"):  # sizes only: no memory, no initialisation cost
        model = cls(cls.Config(**{**_config(stem), **sets}), vpbench.FrameShape(*shape), t, s)
    assert sum(p.numel() for p in model.parameters()) == params


@pytest.mark.parametrize("stem", ["simvp-glyphs", "tau-glyphs"])
def test_glyphs_configs_are_valid(stem: str) -> None:
    cls = MODELS[stem.split("-")[0]]
    with torch.device("meta"):
        cls(cls.Config(**_config(stem)), vpbench.FrameShape(1, 64, 64), 10, 10)


@pytest.mark.parametrize(("model", "sets"), [("simvp", []), ("simvp", ["model.translator=gsta"]), ("tau", [])])
def test_trains_on_glyphs_saves_and_reloads(registry, small_glyphs, tmp_path, model, sets) -> None:
    """A few harness steps on glyphs; the best checkpoint reloads to the same predictions."""
    tiny = [f"model.{k}={v}" for k, v in registry.models.get(model).tiny.items()]
    sets = small_glyphs + tiny + sets + [
        "train.max_steps=3", "train.batch_size=2", "train.eval_every=3", "train.val_sequences=2", "eval.profile=false",
    ]
    req = RunRequest(model=model, dataset="glyphs", sets=sets, out=tmp_path / "r", device="cpu", progress=False,
                     compare=[])
    record, run_dir = execute_run(req, registry, echo=lambda s: None)
    assert record.train.steps_done == 3
    assert record.metrics["openstl"]["mse"].mean > 0
    # the best checkpoint loads strictly into a fresh model, whose weights training has changed
    payload = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    cls = MODELS[model]
    torch.manual_seed(0)
    fresh = cls(cls.Config(**payload["model_config"]), vpbench.FrameShape(1, 64, 64), 10, 10)
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    fresh.load_state_dict(payload["state_dict"])
    assert any(not torch.equal(before[k], v) for k, v in fresh.state_dict().items())
    with torch.no_grad():
        pred = fresh.eval().predict(torch.rand(1, 10, 1, 64, 64), 10)
    assert pred.shape == (1, 10, 1, 64, 64) and bool(torch.isfinite(pred).all())


@pytest.mark.parametrize("model", ["simvp", "tau"])
def test_seeded_training_step_is_deterministic(model: str) -> None:
    cls = MODELS[model]
    config = cls.Config(hid_s=4, hid_t=16, n_s=2, n_t=2, drop_path=0.3, drop=0.1)

    def one_step() -> dict[str, torch.Tensor]:
        torch.manual_seed(3)
        m = cls(config, vpbench.FrameShape(1, 16, 16), 4, 4)
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        batch = torch.rand(2, 8, 1, 16, 16, generator=torch.Generator().manual_seed(1))
        m.training_loss(batch, 0).loss.backward()
        opt.step()
        buf = io.BytesIO()
        torch.save(m.state_dict(), buf)
        buf.seek(0)
        return torch.load(buf, weights_only=True)

    a, b = one_step(), one_step()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
