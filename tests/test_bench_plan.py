"""`vpbench bench SUITE --dry-run --plan`: what a suite's budget buys each entry, before anything
runs, equal to what its runs then counted and trained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vpbench.bench import expand_suite, load_suite
from vpbench.bench.plan import count_for_batch, plan_entries
from vpbench.cli import main
from vpbench.plugins import get_registry

REPO = Path(__file__).resolve().parent.parent
TRACK = REPO / "configs" / "suites" / "track-glyphs-cpu.yaml"
RECORDS = REPO / "leaderboards" / "records" / "track-glyphs-cpu" / "glyphs"


def test_the_batch_count_is_extrapolated_from_one_and_two_clips() -> None:
    asked: list[int] = []

    def count(clips: int) -> int:
        asked.append(clips)
        return 7 + 5 * clips  # work on the weights alone + per clip

    assert count_for_batch(count, 16) == 7 + 5 * 16 and asked == [1, 2]
    asked.clear()
    assert count_for_batch(count, 1) == 12 and asked == [1]


def test_the_plan_of_the_cpu_track_is_what_its_committed_runs_trained(tmp_path: Path) -> None:
    """Counted on zero clips (one and two, extrapolated to the batch), every entry's steps per
    stage and MACs per step equal those its runs counted on real clips at their batch size and
    stored in their records, the two-stage and three-stage S-HR-VQVAE included."""
    registry = get_registry()
    runs = expand_suite(load_suite(TRACK), registry, str(TRACK), suite_dir=TRACK.parent)
    plans = {p.entry: p.plan for p in plan_entries(runs, registry, tmp_path)}
    assert len(plans) == 9
    for entry, plan in plans.items():
        record = json.loads((RECORDS / f"{entry}-seed-0" / "record.json").read_text(encoding="utf-8"))
        stages = [(s["name"], s["steps"], s["macs_per_step"]) for s in record["train"]["stages"]]
        assert [(s.name, s.steps, s.macs_per_step) for s in plan.stages] == stages, entry
        assert plan.macs == record["train"]["train_macs"] <= 2.5e12


def test_plan_without_dry_run_is_one_line_naming_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["bench", str(TRACK), "--plan"])
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1
    assert "--plan" in err[0] and "add --dry-run" in err[0]


def test_a_gpu_track_plans_without_its_data(tmp_path: Path) -> None:
    """Only the shapes matter: the plan of a GPU track needs no Moving-MNIST files (one entry
    counted here; a whole GPU track takes minutes on this CPU)."""
    registry = get_registry()
    path = REPO / "configs" / "suites" / "track-mmnist-gpu.yaml"
    runs = [r for r in expand_suite(load_suite(path), registry, str(path), suite_dir=path.parent) if r.entry == "phydnet"]
    (plan,) = plan_entries(runs[:1], registry, tmp_path / "no-data-here")
    assert plan.plan.bound == "macs" and plan.plan.total_steps > 1000
    assert not (tmp_path / "no-data-here").exists()
