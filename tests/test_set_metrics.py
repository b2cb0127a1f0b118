"""Set-level metrics (``vpbench.SetMetric``, ``MetricSpec.level="set"``) from an outside package:
the conformance kit, `vpbench run` / `eval` / `score`, the record and the leaderboard."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from throwaway import install
from vpbench.cli import main
from vpbench.components import build_dataset
from vpbench.engine.cache import CACHE_DIR
from vpbench.engine.run import RunRequest, execute_run
from vpbench.engine.selection import auto_candidates
from vpbench.errors import ContractError
from vpbench.plugins import get_registry
from vpbench.records import read_record

INIT = '''
import vpbench

@vpbench.hookimpl
def register_metrics(register):
    register(vpbench.MetricSpec(name="meanframe", target="vpbench_setmetric.metric:MeanFrame",
                                description="distance between the mean predicted and the mean true frame",
                                higher_is_better=False, level="set", auto_select_rank=-1))
    register(vpbench.MetricSpec(name="setbroken", target="vpbench_setmetric.metric:Broken",
                                description="compute returns a tensor", higher_is_better=False, level="set"))
'''

METRIC = '''
import torch
import vpbench

class MeanFrame(vpbench.SetMetric):
    """Root-mean-square difference between the mean predicted frame and the mean true frame."""
    name = "meanframe"
    higher_is_better = False
    version = "1"

    def new_state(self):
        return {"pred": 0.0, "true": 0.0, "frames": 0, "clips": 0}

    def update(self, state, pred, true, context):
        state["pred"] = state["pred"] + pred.double().sum(dim=(0, 1)).cpu()
        state["true"] = state["true"] + true.double().sum(dim=(0, 1)).cpu()
        state["frames"] += pred.shape[0] * pred.shape[1]
        state["clips"] += pred.shape[0]

    def compute(self, state):
        diff = (state["pred"] - state["true"]) / max(state["frames"], 1)
        return vpbench.SetValue(float(diff.pow(2).mean().sqrt()), n=state["clips"], info={"frames": "prediction only"})

class Broken(MeanFrame):
    name = "setbroken"

    def compute(self, state):
        return torch.tensor(1.0)
'''

EPS = {"vpbench-setmetric": "[vpbench]\nsetmetric = vpbench_setmetric\n"}
GLYPHS = ["dataset.train_length=32", "dataset.val_length=4", "dataset.test_length=8", "eval.profile=false"]


@pytest.fixture
def outside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An installed third-party package (``vpbench-setmetric``) registering a set-level metric."""
    pkg = tmp_path / "site" / "vpbench_setmetric"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(INIT))
    (pkg / "metric.py").write_text(textwrap.dedent(METRIC))
    yield from install(monkeypatch, tmp_path / "site", EPS)


def _meanframe_of_copy_last(data_root: Path, n: int = 8) -> float:
    """The metric computed here with numpy on copy-last predictions of the first ``n`` test clips."""
    ds = build_dataset(get_registry(), "glyphs", {"train_length": 32, "val_length": 4, "test_length": 8}, data_root, 0)
    test = ds.split("test")
    clips = np.stack([test[i].numpy() for i in range(n)]).astype(np.float64)  # type: ignore[arg-type]
    T, S = ds.context, ds.horizon
    pred = np.repeat(clips[:, T - 1 : T], S, axis=1)
    diff = pred.mean(axis=(0, 1)) - clips[:, T : T + S].mean(axis=(0, 1))
    return float(np.sqrt((diff**2).mean()))


def test_check_passes_the_outside_set_metric_and_fails_a_broken_one(outside, capsys):
    main(["check", "--metric", "meanframe", "-v"])  # no SystemExit: every check passes
    out = capsys.readouterr().out
    for check in ("direction", "set-value", "perfect-is-best", "batch-independent"):
        assert f"ok   metric:meanframe:openstl-{check}" in out
    assert out.strip().splitlines()[-1].startswith("8 passed, 0 failed")
    with pytest.raises(SystemExit):
        main(["check", "--metric", "setbroken"])
    assert "compute must return a vpbench.SetValue; got Tensor" in capsys.readouterr().out


def test_a_run_records_the_set_level_value_for_the_model_and_each_baseline(outside, tmp_path, capsys):
    sets = GLYPHS + ["eval.metrics=[mse,meanframe]", "eval.batch_size=3"]
    record, run_dir = execute_run(
        RunRequest(model="copy-last", dataset="glyphs", sets=sets, out=tmp_path / "r", device="cpu", progress=False,
                   compare=("blank", "copy-last")),
        get_registry(), echo=lambda s: None,
    )
    got = read_record(run_dir / "record.json").metrics["openstl"]["meanframe"]
    assert got.level == "set" and got.per_frame == [] and got.n == 8 and got.info == {"frames": "prediction only"}
    assert got.mean == pytest.approx(_meanframe_of_copy_last(tmp_path / "data"), rel=1e-9)
    assert record.metrics["openstl"]["mse"].level == "frame" and len(record.metrics["openstl"]["mse"].per_frame) == 10
    blank = record.baselines["blank"]["openstl"]["meanframe"]
    assert blank.level == "set" and blank.n == 8 and blank.mean > got.mean  # all-background is further off on average

    # the leaderboard: a column like any metric, its value, no per-frame curve
    main(["leaderboard", "--records", str(tmp_path), "--out", str(tmp_path / "board")])
    page = next((tmp_path / "board").glob("glyphs*.md")).read_text()
    assert "MEANFRAME↓" in page and f"{got.mean:.4g}" in page
    assert "Set-level metrics (meanframe): one value over the whole test set" in page
    main(["leaderboard", "--records", str(tmp_path), "--format", "csv", "--out", str(tmp_path / "t.csv")])
    assert "meanframe" in (tmp_path / "t.csv").read_text().splitlines()[0]

    # `vpbench eval` of the run gives the same value; so does `vpbench score` of the same predictions
    main(["eval", "--run", str(run_dir), "--out", str(tmp_path / "e"), "--no-progress", "--compare", "none"])
    assert read_record(tmp_path / "e" / "record.json").metrics["openstl"]["meanframe"].mean == got.mean
    capsys.readouterr()


def test_score_uses_set_metrics_and_the_baselines_score_cache(outside, tmp_path):
    ds = build_dataset(get_registry(), "glyphs", {"train_length": 32, "val_length": 4, "test_length": 8}, tmp_path / "data", 0)
    test = ds.split("test")
    clips = np.stack([test[i].numpy() for i in range(len(test))])  # type: ignore[arg-type]
    np.save(tmp_path / "p.npy", np.repeat(clips[:, ds.context - 1 : ds.context], ds.horizon, axis=1))
    args = ["score", "--dataset", "glyphs", "--predictions", str(tmp_path / "p.npy"), "--name", "mine", "--no-progress",
            "--compare", "blank", *[a for s in GLYPHS + ["eval.metrics=[mse,meanframe]"] for a in ("--set", s)]]
    cache = tmp_path / "data" / CACHE_DIR / "predictor-scores"
    assert not cache.exists()
    main([*args, "--out", str(tmp_path / "s1")])
    stored = sorted(cache.glob("*.npz"))
    assert len(stored) == 1  # the blank baseline's per-clip scores
    main([*args, "--out", str(tmp_path / "s2")])
    assert sorted(cache.glob("*.npz")) == stored
    one, two = (read_record(tmp_path / s / "record.json") for s in ("s1", "s2"))
    assert one.metrics == two.metrics and one.baselines == two.baselines
    assert one.metrics["openstl"]["meanframe"].mean == pytest.approx(_meanframe_of_copy_last(tmp_path / "data"), rel=1e-9)
    assert two.baselines["blank"]["openstl"]["meanframe"].level == "set"


def test_preflight_names_a_broken_set_metric_before_training(outside, tmp_path):
    with pytest.raises(ContractError, match=r"metric 'setbroken' \(package vpbench-setmetric 0\.1\.0\) under protocol "
                                            r"'openstl': compute must return a vpbench\.SetValue"):
        execute_run(
            RunRequest(model="copy-last", dataset="glyphs", sets=GLYPHS + ["eval.metrics=[mse,setbroken]"],
                       out=tmp_path / "r", device="cpu", progress=False, compare=()),
            get_registry(), echo=lambda s: None,
        )
    assert not (tmp_path / "r").exists()


def test_checkpoints_are_never_selected_on_a_set_metric_unless_asked(outside, tmp_path):
    registry = get_registry()
    assert registry.metrics.get("meanframe").auto_select_rank == -1  # the lowest rank, yet never auto
    assert "meanframe" not in auto_candidates(registry)
    sets = GLYPHS + ["eval.metrics=[mse,meanframe]", "train.max_steps=2", "train.batch_size=4", "train.eval_every=2",
                     "train.val_sequences=4", "train.select_metric=meanframe"]
    from conftest import TestPlugin

    record, _ = execute_run(
        RunRequest(model="tinyconv", dataset="glyphs", sets=sets, out=tmp_path / "r", device="cpu", progress=False,
                   compare=()),
        get_registry([TestPlugin()]), echo=lambda s: None,
    )
    assert record.train.select_metric == "meanframe" and record.train.select_value is not None
    assert json.loads((tmp_path / "r" / "record.json").read_text())["metrics"]["openstl"]["meanframe"]["level"] == "set"
