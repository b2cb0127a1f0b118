"""profile_model: parameter counts, FLOPs convention, throughput and peak memory."""

from __future__ import annotations

import torch
from torch import Tensor, nn

import pytest
import vpbench
from vpbench.errors import ConfigError
from vpbench.profiling import profile_model
from vpbench_baselines.models import CopyLast

SHAPE = vpbench.FrameShape(1, 4, 4)
CPU = torch.device("cpu")


class LinearRollout(vpbench.VideoModel):
    """x̂_{t+1} = A vec(x̂_t) + b, rolled out; plus a frozen parameter that never computes."""

    def __init__(self) -> None:
        super().__init__(vpbench.ComponentConfig(), SHAPE, context=2, horizon=3)
        d = SHAPE.channels * SHAPE.height * SHAPE.width
        self.step = nn.Linear(d, d)  # d*d + d parameters
        self.frozen = nn.Parameter(torch.ones(5), requires_grad=False)

    def predict(self, context: Tensor, horizon: int) -> Tensor:
        b = context.shape[0]
        x = context[:, -1].reshape(b, -1)  # [B, C*H*W]
        out = []
        for _ in range(horizon):
            x = self.step(x)
            out.append(x.reshape(b, *SHAPE.as_tuple()))
        return torch.stack(out, dim=1)  # [B, S, C, H, W]


def test_linear_model_counts_parameters_and_two_flops_per_multiply_add() -> None:
    model = LinearRollout().train()
    prof = profile_model(model, context=2, horizon=3, device=CPU, batch_size=2, repeats=2)
    d = 16
    assert prof["params_total"] == d * d + d + 5
    assert prof["params_trainable"] == d * d + d
    assert prof["flops_per_sequence"] == 3 * 2 * d * d  # 3 steps, one [1, d] x [d, d] product each
    assert prof["macs_per_sequence"] == 3 * d * d
    assert prof["throughput_seq_per_s"] > 0 and prof["peak_memory_mb"] > 1
    assert model.training  # mode restored


def test_copy_last_has_no_parameters_and_no_flops() -> None:
    model = CopyLast(vpbench.ComponentConfig(), vpbench.FrameShape(1, 16, 16), context=4, horizon=3)
    prof = profile_model(model, context=4, horizon=3, device=CPU, batch_size=4, repeats=3)
    assert (prof["params_total"], prof["params_trainable"], prof["flops_per_sequence"]) == (0, 0, 0)
    assert prof["throughput_seq_per_s"] > 0
    assert set(prof) >= {"params_total", "params_trainable", "flops_per_sequence", "throughput_seq_per_s", "peak_memory_mb"}


def test_flops_scale_with_the_horizon() -> None:
    model = LinearRollout()
    short = profile_model(model, context=2, horizon=1, device=CPU, batch_size=1, repeats=1)
    long = profile_model(model, context=2, horizon=4, device=CPU, batch_size=1, repeats=1)
    assert long["flops_per_sequence"] == 4 * short["flops_per_sequence"] > 0


@pytest.mark.parametrize("bad", [{"repeats": 0}, {"batch_size": 0}, {"horizon": 0}])
def test_non_positive_settings_are_config_errors(bad: dict[str, int]) -> None:
    kwargs = {"context": 2, "horizon": 3, "device": CPU, "batch_size": 1, "repeats": 1} | bad
    with pytest.raises(ConfigError, match=next(iter(bad))):
        profile_model(LinearRollout(), **kwargs)  # type: ignore[arg-type]


class AttentionRollout(vpbench.VideoModel):
    """Each predicted frame: self-attention over the last frame's 16 pixels (d = 8 features), read out."""

    def __init__(self) -> None:
        super().__init__(vpbench.ComponentConfig(), SHAPE, context=2, horizon=2)
        self.embed = nn.Linear(1, 8)
        self.out = nn.Linear(8, 1)

    def predict(self, context: Tensor, horizon: int) -> Tensor:
        b = context.shape[0]
        x = context[:, -1].reshape(b, 16, 1)
        frames = []
        for _ in range(horizon):
            q = self.embed(x)
            x = self.out(torch.nn.functional.scaled_dot_product_attention(q, q, q))
            frames.append(x.reshape(b, *SHAPE.as_tuple()))
        return torch.stack(frames, dim=1)

    def stages(self) -> list[vpbench.Stage]:
        def step(batch: Tensor, global_step: int) -> vpbench.StepOutput:
            pred = self.predict(batch[:, :2], 2)
            return vpbench.StepOutput(loss=((pred - batch[:, 2:]) ** 2).mean())

        return [vpbench.Stage("main", step, self.parameters)]


def test_cpu_attention_counts_in_inference_flops_as_in_the_training_count() -> None:
    from vpbench.engine.budget import count_step_macs

    model = AttentionRollout()
    prof = profile_model(model, context=2, horizon=2, device=CPU, batch_size=1, repeats=1)
    linear = 16 * 1 * 8 + 16 * 8 * 1  # MACs of embed and out for one frame of 16 pixels
    attention = 2 * 16 * 16 * 8  # Q K^T and A V: 16 x 16 scores of 8 features each
    assert prof["macs_per_sequence"] == 2 * (linear + attention)  # 2 predicted frames, attention included
    # the training count uses the same counter: forward + backward of the same attention is counted
    batch = torch.rand(1, 4, *SHAPE.as_tuple())
    train = count_step_macs(model, 0, batch)
    assert train > 2 * prof["macs_per_sequence"]  # the backward pass costs more than the forward


def test_profile_command_counts_flops_once_and_reuses_the_checked_count(tmp_path) -> None:
    """`vpbench profile` keeps the FLOP count in the data root's checked cache (shared with eval);
    a corrupted file or --recount counts again; throughput needs no test set."""
    from click.testing import CliRunner

    from vpbench.cli import build_cli
    from vpbench.plugins import get_plugin_manager

    cli = build_cli(get_plugin_manager())
    root = tmp_path / "root"
    args = ["profile", "-m", "convlstm", "-d", "glyphs", "--set", "model.hidden=4", "--set", "model.num_layers=1",
            "--batch-size", "1", "--repeats", "1", "--data-root", str(root)]

    def run(*extra: str) -> tuple[str, str]:
        out = CliRunner().invoke(cli, [*args, *extra])
        assert out.exit_code == 0, out.output
        flops = next(line.split()[-1] for line in out.output.splitlines() if line.startswith("flops_per_sequence"))
        return out.output, flops

    first, flops = run()
    assert "FLOPs counted and cached in" in first and int(flops.replace(",", "")) > 0
    cached = list((root / ".vpbench-cache" / "macs").glob("*.npz"))
    assert len(cached) == 1
    second, again = run()
    assert f"FLOPs reused from {cached[0]}" in second and again == flops
    assert not (root / "glyphs").exists()  # no dataset was made or read
    cached[0].write_bytes(b"garbage")
    third, recounted = run()
    assert "FLOPs counted and cached in" in third and recounted == flops
    fourth, _ = run("--recount")
    assert "FLOPs counted and cached in" in fourth
    other, _ = run("--set", "model.filter_size=5")
    assert "FLOPs counted" in other and len(list((root / ".vpbench-cache" / "macs").glob("*.npz"))) == 2
