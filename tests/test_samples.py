"""`eval.samples: N` for stochastic models: mean and best-of-N beside the first draw, under keys of
their own; seeded draws; an error for a deterministic model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from pydantic import Field
from torch import Tensor

import vpbench
from test_set_metrics import outside  # noqa: F401  (the outside package with a set-level metric)
from vpbench.cli import main
from vpbench.engine.evaluate import best_of
from vpbench.engine.rescore import EvalRequest, rescore_run
from vpbench.engine.run import RunRequest, execute_run
from vpbench.errors import ConfigError
from vpbench.interfaces import VideoModel
from vpbench.plugins import Registry, get_registry
from vpbench.records import RunRecord
from vpbench.sampled import parse_sampled, sampled_key


class Noisy(VideoModel):
    """A test-only sampler: the last context frame plus fresh noise, a different future per call."""

    stochastic = True

    class Config(vpbench.ComponentConfig):
        noise: float = Field(0.2, description="noise amplitude")

    def predict(self, context: Tensor, horizon: int) -> Tensor:
        last = context[:, -1:].expand(-1, horizon, -1, -1, -1)
        return (last + self.config.noise * torch.randn_like(last)).clamp(0, 1)  # type: ignore[attr-defined]


class NoisyPlugin:
    @vpbench.hookimpl
    def register_models(self, register: Callable[[vpbench.ModelSpec], None]) -> None:
        register(vpbench.ModelSpec(name="noisy", target="test_samples:Noisy", description="test-only sampler", trainable=False))


BASE = ["dataset.train_length=8", "dataset.val_length=4", "dataset.test_length=6", "eval.profile=false",
        "eval.batch_size=4", "eval.metrics=[mse,ssim]"]


@pytest.fixture
def reg() -> Registry:
    return get_registry([NoisyPlugin()])


def _run(reg: Registry, out: Path, sets: list[str], model: str = "noisy") -> RunRecord:
    record, _ = execute_run(
        RunRequest(model=model, dataset="glyphs", sets=BASE + sets, out=out, device="cpu", progress=False,
                   compare=("copy-last",)),
        reg, echo=lambda s: None,
    )
    return record


def test_best_of_picks_per_clip_the_draw_best_over_the_horizon() -> None:
    values = torch.tensor([[[1.0, 5.0], [2.0, 2.0]], [[2.0, 2.0], [3.0, 0.0]]], dtype=torch.float64)  # [n=2, N=2, S=2]
    assert best_of(values, higher_is_better=False).tolist() == [[2.0, 2.0], [3.0, 0.0]]
    assert best_of(values, higher_is_better=True).tolist() == [[1.0, 5.0], [2.0, 2.0]]
    values[1, 0, 1] = float("nan")
    assert torch.isnan(best_of(values, higher_is_better=False)[0]).any()  # a NaN draw is never averaged away


def test_samples_record_mean_and_best_of_n_beside_the_first_draw(reg, tmp_path):
    one = _run(reg, tmp_path / "one", [])
    four = _run(reg, tmp_path / "four", ["eval.samples=4"])
    assert set(one.metrics) == {"openstl"}
    assert set(four.metrics) == {"openstl", "openstl-mean-of-4", "openstl-best-of-4"}
    assert four.metrics["openstl"] == one.metrics["openstl"]  # the first draw is the single-draw run, exactly
    mean, best = four.metrics["openstl-mean-of-4"], four.metrics["openstl-best-of-4"]
    assert best["mse"].mean < mean["mse"].mean and best["ssim"].mean > mean["ssim"].mean
    assert len(best["mse"].per_frame) == len(mean["ssim"].per_frame) == 10
    assert set(four.baselines["copy-last"]) == {"openstl"}  # a deterministic baseline has one draw
    assert four.artifacts["samples"]["draws"] == 4
    assert parse_sampled(sampled_key("openstl", "best", 4)) == ("openstl", "best", 4)

    # what `vpbench run` prints: the baseline's cells under their own columns, none under the draws'
    from vpbench.cli.run import metrics_table

    lines = metrics_table(four).splitlines()
    head = lines[0].split()
    assert head[:3] == ["model", "mse↓", "ssim↑"] and "[openstl-best-of-4]" in lines[0]
    baseline = next(line.split() for line in lines if line.startswith("copy-last"))
    assert len(baseline) == 3 and float(baseline[1]) == pytest.approx(four.baselines["copy-last"]["openstl"]["mse"].mean, rel=1e-3)

    again = _run(reg, tmp_path / "again", ["eval.samples=4"])
    assert again.metrics == four.metrics  # same seed, same draws
    other = _run(reg, tmp_path / "other", ["eval.samples=4", "seed=1"])
    assert other.metrics["openstl-mean-of-4"]["mse"].mean != mean["mse"].mean

    # `vpbench eval` with more draws: its first draw again equals the run's
    rescored, _ = rescore_run(
        EvalRequest(run=tmp_path / "one", sets=["eval.samples=3"], out=tmp_path / "e", device="cpu", progress=False,
                    compare=()),
        reg, echo=lambda s: None,
    )
    assert rescored.metrics["openstl"] == one.metrics["openstl"]
    assert set(rescored.metrics) == {"openstl", "openstl-mean-of-3", "openstl-best-of-3"}

    # the leaderboard keeps them in their own tables, said to be not comparable with single draws
    main(["leaderboard", "--records", str(tmp_path / "four"), "--out", str(tmp_path / "board")])
    page = next((tmp_path / "board").glob("glyphs*.md")).read_text()
    assert "Protocol `openstl-best-of-4`: protocol openstl with each clip scored on 4 futures" in page
    assert "Protocol `openstl-mean-of-4`" in page and "Not comparable with single-draw numbers." in page
    best_table = page.split("Protocol `openstl-best-of-4`")[1].split("Protocol `")[0]
    assert f"{best['mse'].mean:.2f}" in best_table
    assert "| noisy" in best_table and "copy-last" not in best_table  # a deterministic baseline has no draws


def test_set_level_metrics_use_every_draw(reg, outside, tmp_path):  # noqa: F811
    record = _run(get_registry([NoisyPlugin()]), tmp_path / "r", ["eval.samples=3", "eval.metrics=[mse,meanframe]"])
    assert record.metrics["openstl"]["meanframe"].n == 6
    assert record.metrics["openstl-mean-of-3"]["meanframe"].n == 18 and record.metrics["openstl-mean-of-3"]["meanframe"].level == "set"
    assert "meanframe" not in record.metrics["openstl-best-of-3"]


def test_samples_of_a_deterministic_model_are_a_one_line_error(reg, tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"^eval\.samples=2 draws several futures per clip, but model 'copy-last' is "
                                          r"deterministic as configured .*; set eval\.samples=1$"):
        _run(reg, tmp_path / "r", ["eval.samples=2"], model="copy-last")
    assert not (tmp_path / "r").exists()
    with pytest.raises(SystemExit) as info:
        main(["run", "--model", "copy-last", "--dataset", "glyphs", "--out", str(tmp_path / "c"), "--set", "eval.samples=3"])
    assert info.value.code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: eval.samples=3 draws several futures")


def test_s_hr_vqvae_is_stochastic_when_it_samples_and_deterministic_when_greedy() -> None:
    from vpbench.components import build_model
    from vpbench.interfaces import FrameShape

    reg = get_registry()
    tiny = dict(reg.models.get("shrvq").tiny)
    shape = FrameShape(1, 64, 64)
    assert build_model(reg, "shrvq", {**tiny, "sampling": "sample"}, shape, 10, 10).stochastic is True
    assert build_model(reg, "shrvq", {**tiny, "sampling": "greedy"}, shape, 10, 10).stochastic is False
    assert build_model(reg, "copy-last", {}, shape, 10, 10).stochastic is False
