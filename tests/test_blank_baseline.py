"""The all-background baseline: scored in every run by default, and a trained model that does
not beat it on the selection metric is warned about and flagged in its record."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from vpbench import FrameShape
from vpbench.engine.blankcheck import FLAG_BELOW_BLANK, below_blank
from vpbench.engine.run import RunRequest, execute_run
from vpbench.engine.selection import resolve_select_metric
from vpbench.records import MetricResult, read_record
from vpbench_baselines.models import Blank


def _req(model: str, out: Path, sets: list[str]) -> RunRequest:
    return RunRequest(model=model, dataset="glyphs", sets=sets, out=out, device="cpu", progress=False)


def test_blank_predicts_zeros_of_the_right_shape() -> None:
    m = Blank(Blank.Config(), FrameShape(1, 8, 8), 3, 4)
    out = m.predict(torch.rand(2, 3, 1, 8, 8), 4)
    assert out.shape == (2, 4, 1, 8, 8) and not out.any()


def test_every_run_scores_blank_copy_last_and_mean_context_by_default(registry, small_glyphs, tmp_path):
    record, _ = execute_run(_req("copy-last", tmp_path / "r", small_glyphs), registry, echo=lambda s: None)
    assert sorted(record.baselines) == ["blank", "mean-context"]  # copy-last is the model itself
    blank = record.baselines["blank"]["openstl"]
    # on zero-background digits blank's error is the energy of the truth, and it beats copy-last on MSE
    assert 0 < blank["mse"].mean < record.metrics["openstl"]["mse"].mean
    assert record.flags == []  # nothing is trained: no selection metric to judge


def test_trained_model_that_loses_to_blank_is_warned_and_flagged(registry, small_glyphs, tmp_path):
    # two steps of tinyconv are about copy-last, which loses to blank on MSE on glyphs
    sets = small_glyphs + ["train.max_steps=2", "train.batch_size=2", "train.eval_every=2", "train.val_sequences=2",
                           "train.select_metric=mse"]  # fmt: skip
    lines: list[str] = []
    record, run_dir = execute_run(_req("tinyconv", tmp_path / "r", sets), registry, echo=lines.append)
    assert record.flags == [FLAG_BELOW_BLANK]
    assert read_record(run_dir / "record.json").flags == [FLAG_BELOW_BLANK]
    assert any(line.startswith("warning: the model does not beat the all-background 'blank'") for line in lines)


def _m(value: float, higher: bool) -> dict[str, dict[str, MetricResult]]:
    return {"openstl": {"x": MetricResult(mean=value, per_frame=[value], higher_is_better=higher)}}


def test_below_blank_follows_the_metric_direction_and_counts_ties_as_losing() -> None:
    assert below_blank(_m(1.0, False), {"blank": _m(2.0, False)}, "x") is None
    assert below_blank(_m(2.0, False), {"blank": _m(2.0, False)}, "x") is not None
    assert below_blank(_m(0.9, True), {"blank": _m(0.8, True)}, "x") is None
    assert below_blank(_m(0.7, True), {"blank": _m(0.8, True)}, "x") is not None
    assert below_blank(_m(9.0, False), {}, "x") is None  # blank not scored: nothing to say


def test_auto_selection_prefers_lpips_and_falls_back_to_ssim(registry, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("VPBENCH_LPIPS_WEIGHTS", str(tmp_path / "missing.pth"))
    notes: list[str] = []
    assert resolve_select_metric(registry, "auto", notes.append) == "ssim"
    assert notes and "lpips" in notes[0]
    assert resolve_select_metric(registry, "mse") == "mse"  # an explicit choice is kept
    root = os.environ.get("VPBENCH_TEST_DATA")
    weights = Path(root) / "weights" / "alexnet_features-7be5be79.pth" if root else None
    if weights is None or not weights.is_file():
        pytest.skip("the LPIPS half needs the AlexNet weights in VPBENCH_TEST_DATA (../shared/data)")
    monkeypatch.setenv("VPBENCH_LPIPS_WEIGHTS", str(weights))
    assert resolve_select_metric(registry, "auto") == "lpips"


def test_leaderboard_rows_show_the_record_flag(tmp_path) -> None:
    from test_leaderboard import make_record

    from vpbench.leaderboard.entries import entries_for
    from vpbench.leaderboard.load import LoadedRecord

    flagged = make_record("r1", "alpha", baselines={"blank": (13.0, 200.0)}).model_copy(update={"flags": [FLAG_BELOW_BLANK]})
    plain = make_record("r2", "beta")
    rows = {e.label for e in entries_for([LoadedRecord(tmp_path / "a", flagged), LoadedRecord(tmp_path / "b", plain)])}
    assert rows == {f"alpha ({FLAG_BELOW_BLANK})", "beta", "blank (baseline)"}
