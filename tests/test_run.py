"""End-to-end runs through the harness on the embedded dataset."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from conftest import interrupt_at
from vpbench.engine.run import RunRequest, execute_run
from vpbench.engine.train import RunInterrupted
from vpbench.errors import CheckpointError, ConfigError, UnknownPluginError
from vpbench.records import read_record


def _req(model: str, out: Path, sets: list[str], **kw: object) -> RunRequest:
    return RunRequest(model=model, dataset="glyphs", sets=sets, out=out, device="cpu", progress=False, **kw)  # type: ignore[arg-type]


def test_copy_last_run_writes_record_strips_and_plot(registry, small_glyphs, tmp_path):
    record, run_dir = execute_run(_req("copy-last", tmp_path / "r", small_glyphs), registry, echo=lambda s: None)
    assert run_dir == tmp_path / "r"
    parsed = read_record(run_dir / "record.json")
    assert parsed.model.name == "copy-last" and parsed.test_sequences == 8
    assert parsed.train.steps_done == 0 and parsed.params_total == 0
    mse = parsed.metrics["openstl"]["mse"]
    assert len(mse.per_frame) == 10 and mse.mean > 0
    # the error grows with the horizon for a copy of the last frame
    assert mse.per_frame[-1] > mse.per_frame[0]
    assert parsed.data_checksum.startswith("sha256:")
    assert (run_dir / "per_frame.png").stat().st_size > 0
    assert sorted(p.name for p in (run_dir / "strips").iterdir()) == [f"test_{i:05d}.png" for i in range(4)]
    assert (run_dir / "run.yaml").is_file()


def test_trained_model_is_selected_on_validation_and_compared(registry, small_glyphs, tmp_path):
    sets = small_glyphs + ["train.max_steps=6", "train.batch_size=4", "train.eval_every=3", "train.val_sequences=4"]
    record, run_dir = execute_run(_req("tinyconv", tmp_path / "r", sets), registry, echo=lambda s: None)
    assert record.train.steps_done == 6
    assert record.train.selected_step in (3, 6)
    assert record.train.select_metric in ("lpips", "ssim")  # auto: lpips when its weights are there
    assert "copy-last" in record.baselines
    assert (run_dir / "checkpoints" / "best.pt").is_file()
    assert record.params_total == record.params_trainable > 0


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_resume_after_interrupt_reproduces_the_uninterrupted_run(registry, small_glyphs, tmp_path, monkeypatch, schedule):
    sets = small_glyphs + [
        "train.max_steps=10", "train.batch_size=4", "train.eval_every=5",
        "train.val_sequences=4", "train.checkpoint_every=3", "model.noise=0.05", f"train.lr_schedule={schedule}",
    ]
    straight, _ = execute_run(_req("tinyconv", tmp_path / "a", sets), registry, echo=lambda s: None)

    with monkeypatch.context() as m:
        interrupt_at(m, 7)
        with pytest.raises(RunInterrupted) as info:
            execute_run(_req("tinyconv", tmp_path / "b", sets), registry, echo=lambda s: None)
    assert info.value.step == 7 and info.value.run_dir == tmp_path / "b"
    assert not (tmp_path / "b" / "record.json").exists()
    resumed, _ = execute_run(
        RunRequest(model=None, dataset=None, out=tmp_path / "b", resume=True, device="cpu", progress=False),
        registry,
        echo=lambda s: None,
    )
    a = torch.load(tmp_path / "a" / "checkpoints" / "last.pt", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.metrics == straight.metrics
    assert resumed.train.selected_step == straight.train.selected_step
    # the record counts both attempts; its wall time is the sum of theirs (not the last one's)
    assert (straight.train.attempts, resumed.train.attempts) == (1, 2)
    before = torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=False)["train_state"]
    assert before["attempts"] == 2 and resumed.train.wall_time_s >= before["wall_time_s"] > 0


def test_cosine_schedule_decays_each_stage_lr_to_zero(registry, small_glyphs, tmp_path, monkeypatch):
    sets = small_glyphs + ["train.max_steps=10", "train.batch_size=4", "train.eval_every=10", "train.val_sequences=4",
                           "train.lr_schedule=cosine"]  # fmt: skip
    interrupt_at(monkeypatch, 9)
    with pytest.raises(RunInterrupted):
        execute_run(_req("tinyconv", tmp_path / "r", sets), registry, echo=lambda s: None)
    last = torch.load(tmp_path / "r" / "checkpoints" / "last.pt", weights_only=False)
    # the last update (stage step 8 of 10) ran at the stage's lr (3e-3) · (1 + cos(8π/10)) / 2
    assert last["optimizer"]["param_groups"][0]["lr"] == pytest.approx(3e-3 * 0.5 * (1 + math.cos(math.pi * 0.8)))


def test_unknown_names_list_the_valid_ones(registry, tmp_path):
    with pytest.raises(UnknownPluginError, match=r"unknown model 'nope'; valid models: .*copy-last"):
        execute_run(_req("nope", tmp_path / "r", []), registry)
    with pytest.raises(UnknownPluginError, match=r"unknown dataset 'kthx'; valid datasets: .*glyphs"):
        execute_run(RunRequest(model="copy-last", dataset="kthx", out=tmp_path / "r"), registry)


def test_unknown_config_key_names_key_and_valid_keys(registry, tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key 'train.max_stepz'; valid keys here: max_steps"):
        execute_run(_req("copy-last", tmp_path / "r", ["train.max_stepz=3"]), registry)
    with pytest.raises(ConfigError, match=r"unknown config key 'model.hiden'; valid keys here: hidden, noise"):
        execute_run(_req("tinyconv", tmp_path / "r", ["model.hiden=3"]), registry)
    with pytest.raises(ConfigError, match=r"unknown config key 'dataset.frames'"):
        execute_run(_req("tinyconv", tmp_path / "r", ["dataset.frames=3"]), registry)


def test_bad_value_and_bad_yaml_are_named(registry, tmp_path):
    with pytest.raises(ConfigError, match=r"bad value for config key 'train.batch_size'"):
        execute_run(_req("copy-last", tmp_path / "r", ["train.batch_size=zero"]), registry)
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  max_steps: 3\n   lr: [\n")
    with pytest.raises(ConfigError, match=r"invalid YAML in .*bad.yaml line 3"):
        execute_run(RunRequest(model="copy-last", dataset="glyphs", config_file=bad, out=tmp_path / "r"), registry)


def test_finished_and_unfinished_run_directories_are_protected(registry, small_glyphs, tmp_path):
    execute_run(_req("copy-last", tmp_path / "r", small_glyphs), registry, echo=lambda s: None)
    with pytest.raises(ConfigError, match="already holds a finished run"):
        execute_run(_req("copy-last", tmp_path / "r", small_glyphs), registry)
    with pytest.raises(ConfigError, match="already finished"):
        execute_run(RunRequest(model=None, dataset=None, out=tmp_path / "r", resume=True), registry)
    with pytest.raises(ConfigError, match="needs --out"):
        execute_run(RunRequest(model=None, dataset=None, resume=True), registry)


def test_checkpoint_of_another_config_is_refused(registry, small_glyphs, tmp_path, monkeypatch):
    sets = small_glyphs + ["train.max_steps=4", "train.batch_size=4", "train.checkpoint_every=2", "train.val_sequences=4"]
    with monkeypatch.context() as m:
        interrupt_at(m, 3)
        with pytest.raises(RunInterrupted):
            execute_run(_req("tinyconv", tmp_path / "r", sets), registry, echo=lambda s: None)
    spec = tmp_path / "r" / "run.yaml"
    spec.write_text(spec.read_text().replace("hidden: 8", "hidden: 4"))
    with pytest.raises(CheckpointError, match=r"another config of 'tinyconv' \(differs in: hidden\)"):
        execute_run(RunRequest(model=None, dataset=None, out=tmp_path / "r", resume=True, progress=False), registry)
    (tmp_path / "r" / "checkpoints" / "last.pt").write_bytes(b"garbage")
    spec.write_text(spec.read_text().replace("hidden: 4", "hidden: 8"))
    with pytest.raises(CheckpointError, match=r"last.pt is unreadable"):
        execute_run(RunRequest(model=None, dataset=None, out=tmp_path / "r", resume=True, progress=False), registry)


def test_record_json_is_versioned(registry, small_glyphs, tmp_path):
    _, run_dir = execute_run(_req("copy-last", tmp_path / "r", small_glyphs), registry, echo=lambda s: None)
    data = json.loads((run_dir / "record.json").read_text())
    assert data["schema"] == "vpbench.run/1"
    assert data["vpbench_version"]
    assert data["hardware"]["device"] == "cpu"
    assert data["dataset"]["config"]["test_length"] == 8


def test_evaluate_only_tests_a_stopped_run_as_it_stands(registry, small_glyphs, tmp_path, monkeypatch):
    sets = small_glyphs + ["train.max_steps=10", "train.batch_size=4", "train.eval_every=2",
                           "train.val_sequences=4", "train.checkpoint_every=2", "train.select_metric=mse"]
    with monkeypatch.context() as m:
        interrupt_at(m, 5)
        with pytest.raises(RunInterrupted):
            execute_run(_req("tinyconv", tmp_path / "r", sets), registry, echo=lambda s: None)
    last = (tmp_path / "r" / "checkpoints" / "last.pt").read_bytes()
    record, _ = execute_run(
        RunRequest(model=None, dataset=None, out=tmp_path / "r", resume=True, evaluate_only=True, progress=False),
        registry, echo=lambda s: None,
    )
    assert record.train.steps_done == 5 and record.train.selected_step == 4
    assert (tmp_path / "r" / "checkpoints" / "last.pt").read_bytes() == last
