"""The run's PyTorch thread count: measured default for small shared CPUs, or the config's."""

from __future__ import annotations

import torch

from vpbench.engine.run import RunRequest, execute_run
from vpbench.engine.threads import default_threads


def test_default_is_one_thread_on_small_machines_and_half_the_cores_on_large_ones() -> None:
    assert default_threads(cores=1, env="") == 1
    assert default_threads(cores=2, env="") == 1
    assert default_threads(cores=4, env="") == 1
    assert default_threads(cores=16, env="") == 8
    assert default_threads(cores=2, env="3") == 3  # OMP_NUM_THREADS wins over the rule
    assert default_threads(cores=16, env="zero") == 8  # a bad value is ignored


def test_config_threads_is_applied_and_recorded(registry, small_glyphs, tmp_path) -> None:
    before = torch.get_num_threads()
    try:
        req = RunRequest(model="copy-last", dataset="glyphs", sets=[*small_glyphs, "threads=2"], out=tmp_path / "r",
                         device="cpu", progress=False, compare=())  # fmt: skip
        lines: list[str] = []
        record, _ = execute_run(req, registry, echo=lines.append)
        assert record.hardware["torch_threads"] == 2
        assert "2 CPU threads" in lines[0]
    finally:
        torch.set_num_threads(before)


def test_two_runs_with_the_same_seed_are_bitwise_identical(registry, small_glyphs, tmp_path) -> None:
    from vpbench_shrvq import TINY

    sets = [*small_glyphs, "train.max_steps=6", "train.batch_size=2", "train.eval_every=3", "train.val_sequences=2",
            "model.restart_every=2", "model.init_after=2", "eval.profile=false"]  # fmt: skip
    sets += [f"model.{k}={v}" for k, v in TINY.items()]
    records = []
    for name in ("a", "b"):
        req = RunRequest(model="shrvq", dataset="glyphs", sets=sets, out=tmp_path / name, device="cpu", progress=False,
                         compare=())  # fmt: skip
        records.append(execute_run(req, registry, echo=lambda s: None)[0])
    a, b = (r.metrics["openstl"] for r in records)
    assert {k: v.per_frame for k, v in a.items()} == {k: v.per_frame for k, v in b.items()}
    assert (tmp_path / "a" / "fixed_sequences.npz").read_bytes() == (tmp_path / "b" / "fixed_sequences.npz").read_bytes()
