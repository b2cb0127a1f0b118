"""PredRNN-V2 (plugins/vpbench_rnn/predrnn_v2.py): parity with the reference code through committed
fixtures, the published size, its configs, a short glyphs run, and OpenSTL's reported rows.

The fixtures ``tests/fixtures/zoo/predrnn_v2_*.npz`` hold OpenSTL's ``PredRNNv2_Model`` outputs for a
tiny configuration with generator-free weights; ``benchmarks/parity_predrnn_v2.py`` wrote them
from the reference source and recomputes the comparison (``--from-fixtures`` without it).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
import yaml

import vpbench
import vpbench_rnn
from vpbench.config import TrainConfig
from vpbench.engine.run import RunRequest, execute_run
from vpbench.leaderboard import load_reported
from vpbench.plugins import get_registry
from vpbench.records import read_record
from vpbench_rnn.patch import from_patches
from vpbench_rnn.predrnn import PredRNN
from vpbench_rnn.predrnn_v2 import PredRNNv2

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "zoo"
SMALL = vpbench.FrameShape(1, 16, 16)


def _parity() -> ModuleType:
    """benchmarks/parity_predrnn_v2.py (its reference code is only read when its main() runs)."""
    name = "parity_predrnn_v2"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "parity_predrnn_v2.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def tiny(**over: object) -> PredRNNv2:
    return PredRNNv2(PredRNNv2.Config(**{**vpbench_rnn._TINY, **over}), SMALL, 4, 3)


def clip(b: int = 2, t: int = 7, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, t, *SMALL.as_tuple(), generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- reference parity


@pytest.mark.parametrize("case", ["reverse", "scheduled_layernorm"])
def test_outputs_and_train_loss_equal_the_reference_fixtures(case: str) -> None:
    parity = _parity()
    with np.load(FIXTURES / f"predrnn_v2_{case}.npz", allow_pickle=False) as f:
        fixture = {k: f[k] for k in f.files}
    clip_, mask = parity.inputs()
    assert np.array_equal(clip_.numpy(), fixture["clip"]) and np.array_equal(mask.numpy(), fixture["mask"])
    model = parity.ours(case)
    mine = parity.run_ours(model, clip_, mask)
    for key in ("train_frames", "test_frames", "train_loss", "train_mse"):
        assert mine[key].shape == fixture[key].shape, key
        np.testing.assert_allclose(mine[key], fixture[key], rtol=0, atol=1e-5, err_msg=key)
    # the fixture can tell: the decoupling term is in its loss, well above the tolerance
    assert float(fixture["train_loss"] - fixture["train_mse"]) > 1e-3
    # and the test-mode rollout is predict() before the [0, 1] clamp
    test = torch.from_numpy(fixture["test_frames"])[:, parity.CONTEXT - 1 :]
    with torch.no_grad():
        pred = model.predict(clip_[:, : parity.CONTEXT], parity.HORIZON)
    torch.testing.assert_close(pred, from_patches(test, 2).clamp(0, 1), rtol=0, atol=1e-5)


def test_a_wrong_decoupling_weight_or_gate_order_would_fail_the_fixture() -> None:
    parity = _parity()
    with np.load(FIXTURES / "predrnn_v2_reverse.npz", allow_pickle=False) as f:
        loss, frames = float(f["train_loss"]), f["train_frames"]
    clip_, mask = parity.inputs()
    model = PredRNNv2(
        PredRNNv2.Config(**{**parity.BASE, **parity.CASES["reverse"], "decouple_beta": 0.01}),
        parity.SHAPE, parity.CONTEXT, parity.HORIZON,
    )  # fmt: skip
    parity.formula_weights(model)
    assert abs(float(parity.run_ours(model, clip_, mask)["train_loss"]) - loss) > 1e-4
    model = parity.ours("reverse")
    with torch.no_grad():  # swap two gate blocks (g <-> i) of layer 0's input convolution
        w = model.cells[0].conv_x.weight
        h = model.config.hidden
        w[: 2 * h] = torch.cat([w[h : 2 * h], w[:h]]).clone()
    assert np.abs(parity.run_ours(model, clip_, mask)["train_frames"] - frames).max() > 1e-3


# ----------------------------------------------------------------------------- the model itself


def test_registered_beside_predrnn_with_a_lazy_target_and_tiny_variant() -> None:
    spec = get_registry([vpbench_rnn], load_entry_points=False).models.get("predrnn-v2")
    assert spec.load() is PredRNNv2 and spec.trainable and "TPAMI" in spec.paper
    PredRNNv2.Config(**spec.tiny)
    assert issubclass(PredRNNv2, PredRNN)
    assert PredRNNv2.Config().sampling == "reverse" and PredRNNv2.Config().decouple_beta == 0.1


def test_decoupling_uses_the_adapter_in_training_only() -> None:
    torch.manual_seed(0)
    model = tiny()
    calls: list[int] = []
    model.adapter.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        model.predict(clip()[:, :4], 3)
    assert calls == []  # the test-time rollout never computes ΔC/ΔM projections
    out = model.stages()[0].step(clip(), 0)
    assert len(calls) == 2 * 2 * 6  # ΔC and ΔM, 2 layers, T+S-1 = 6 steps
    assert out.logs["eta"] == 0.5 and out.logs["eta_context"] == 0.5  # reverse sampling's first phase
    assert out.loss.item() == pytest.approx(out.logs["mse"] + 0.1 * out.logs["decouple"], rel=1e-6)
    assert 0 < out.logs["decouple"] <= 1
    out.loss.backward()
    assert model.adapter.weight.grad is not None and model.adapter.weight.grad.abs().sum() > 0


def test_without_the_decoupling_weight_the_loss_is_predrnns() -> None:
    torch.manual_seed(0)
    v2 = tiny(decouple_beta=0.0, sampling="scheduled")
    v1 = PredRNN(PredRNN.Config(**vpbench_rnn._TINY), SMALL, 4, 3)
    v1.load_state_dict({k: v for k, v in v2.state_dict().items() if not k.startswith("adapter")})
    torch.manual_seed(1)
    a = v1.stages()[0].step(clip(), 3).loss
    torch.manual_seed(1)
    b = v2.stages()[0].step(clip(), 3).loss
    assert torch.equal(a, b)
    with torch.no_grad():
        assert torch.equal(v1.predict(clip()[:, :4], 3), v2.predict(clip()[:, :4], 3))


def test_seeded_training_step_is_deterministic() -> None:
    def run() -> tuple[float, torch.Tensor]:
        torch.manual_seed(3)
        model = tiny()  # step 0: a random 0.5 mask on context and future inputs
        out = model.stages()[0].step(clip(), 0)
        out.loss.backward()
        return out.loss.item(), model.adapter.weight.grad.clone()

    (l1, g1), (l2, g2) = run(), run()
    assert l1 == l2 and torch.equal(g1, g2)


# --------------------------------------------------------------------------------- configs


def _config(stem: str) -> dict:
    data = yaml.safe_load((ROOT / "configs" / f"{stem}.yaml").read_text())
    assert set(data) <= {"model", "train"}
    TrainConfig.model_validate(data.get("train", {}))
    return data["model"]


@pytest.mark.parametrize(
    ("stem", "shape", "params", "beta", "lr"),
    [
        ("predrnn-v2-mmnist", (1, 64, 64), 23_855_104, 0.1, 5e-4),  # PredRNN's 23,838,720 + the 128x128 adapter
        ("predrnn-v2-kth", (1, 128, 128), 23_584_768, 0.01, 1e-3),
    ],
)
def test_published_configs(stem: str, shape: tuple[int, int, int], params: int, beta: float, lr: float) -> None:
    cfg = PredRNNv2.Config(**_config(stem))
    assert (cfg.num_layers, cfg.hidden, cfg.filter_size, cfg.layer_norm) == (4, 128, 5, False)
    assert (cfg.sampling, cfg.reverse_step1, cfg.reverse_step2, cfg.reverse_alpha) == ("reverse", 25_000, 50_000, 5_000)
    assert cfg.decouple_beta == beta
    train = yaml.safe_load((ROOT / "configs" / f"{stem}.yaml").read_text())["train"]
    assert train["lr"] == lr and train["batch_size"] == 16
    model = PredRNNv2(cfg, vpbench.FrameShape(*shape), 10, 10)
    assert sum(p.numel() for p in model.parameters()) == params


def test_glyphs_run_trains_a_few_steps_and_writes_a_record(tmp_path: Path) -> None:
    sets = [f"model.{k}={v}" for k, v in vpbench_rnn._TINY.items()] + [
        "dataset.train_length=16", "dataset.val_length=4", "dataset.test_length=4",
        "train.max_steps=3", "train.batch_size=2", "train.eval_every=3", "train.val_sequences=4",
        "eval.profile=false",
    ]  # fmt: skip
    req = RunRequest(
        model="predrnn-v2",
        dataset="glyphs",
        config_file=ROOT / "configs" / "predrnn-v2-glyphs.yaml",
        sets=sets,
        out=tmp_path / "r",
        device="cpu",
        progress=False,
    )
    record, run_dir = execute_run(req, get_registry(), echo=lambda s: None)
    parsed = read_record(run_dir / "record.json")
    assert parsed.model.name == "predrnn-v2" and parsed.train.steps_done == 3
    assert parsed.model.config["sampling"] == "reverse" and parsed.model.config["decouple_beta"] == 0.1
    assert np.isfinite(parsed.metrics["openstl"]["mse"].mean)
    assert (run_dir / "checkpoints" / "best.pt").is_file()


# ------------------------------------------------------------------------------ reported rows


def test_openstl_reported_rows_name_the_zoo_models_vpbench_registers() -> None:
    table = {t.id: t for t in load_reported()}["openstl-mmnist"]
    keys = ["method"] + [c.key for c in table.columns]
    rows = [dict(zip(keys, r)) for r in table.rows if r[keys.index("budget")] == "200 epochs"]
    by_model = {r["vpbench"]: r for r in rows if r["vpbench"]}
    published = {  # model -> (MSE, SSIM, params, MACs) at 200 epochs, OpenSTL's video_benchmarks.md
        "simvp (translator: incepu)": ("32.15", "0.9268", "58.0M", "19.4G"),
        "simvp (translator: gsta)": ("26.69", "0.9402", "46.8M", "16.5G"),
        "tau": ("24.60", "0.9454", "44.7M", "16.0G"),
        "phydnet": ("28.19", "0.9374", "3.1M", "15.3G"),
        "mau": ("26.86", "0.9398", "4.5M", "17.8G"),
        "predrnn-v2": ("24.13", "0.9453", "23.9M", "116.6G"),
    }
    for model, values in published.items():
        row = by_model[model]
        assert (row["mse"], row["ssim"], row["params"], row["flops"]) == values, model
    assert "predrnn-v2" in get_registry().models.names()
    assert "multiply-add as one FLOP" in table.protocol and "OpenSTL" in table.citation
