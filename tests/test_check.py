"""`vpbench check` (the conformance kit in the wheel) run against an external plugin package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from throwaway import install, write_package
from vpbench.cli import main


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    site = tmp_path / "site"
    write_package(site, extra_metrics=True)
    yield from install(monkeypatch, site, {"vpbench-toy": "[vpbench]\ntoy = vpbench_toy\n"})


def test_check_passes_a_conforming_external_package(toy, capsys):
    main(["check", "--model", "toy-model", "--dataset", "toy", "--metric", "toy-l1", "-v"])  # no SystemExit: all pass
    out = capsys.readouterr().out
    assert "ok   model:toy-model:predict-64px-10to10" in out
    assert "ok   dataset:toy:val-test-deterministic" in out
    assert "ok   metric:toy-l1:openstl-perfect-is-best" in out
    assert out.strip().splitlines()[-1].startswith("18 passed, 0 failed, 0 skipped")


def test_check_names_each_broken_component_in_one_line(toy, capsys):
    with pytest.raises(SystemExit) as info:
        main(["check", "--dataset", "toy-liar", "--metric", "toy-per-clip"])
    assert info.value.code == 1
    lines = capsys.readouterr().out.strip().splitlines()
    fails = [line for line in lines if line.startswith("FAIL")]
    assert (
        "FAIL dataset:toy-liar:spec-agrees: dataset 'toy-liar': the spec states frame_shape, context, horizon = "
        "((1, 32, 32), 2, 3); the dataset has ((1, 16, 16), 2, 3)" in fails
    )
    assert any(
        f.startswith("FAIL metric:toy-per-clip:openstl-shape: metric 'toy-per-clip' (openstl): per_frame must "
                     "return [B, S] = [4, 3]; got [4]") for f in fails
    )
    assert lines[-1].endswith("(13 checks)") and " failed" in lines[-1]


def test_check_of_an_unknown_name_lists_the_valid_ones(toy, capsys):
    with pytest.raises(SystemExit) as info:
        main(["check", "--model", "toy-modle"])
    assert info.value.code == 2
    assert "unknown model 'toy-modle'; valid models: " in capsys.readouterr().err
