"""Contract mistakes in a throwaway plugin package fail before any training step, one line each,
and a broken or partial plugin does not take the others down."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from throwaway import install, write_package
from vpbench.cli import main
from vpbench.engine.run import RunRequest, execute_run
from vpbench.errors import ContractError
from vpbench.plugins import get_registry

TOY_EPS = "[vpbench]\ntoy = vpbench_toy\n"


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    site = tmp_path / "site"
    write_package(site, extra_metrics=True)
    yield from install(monkeypatch, site, {"vpbench-toy": TOY_EPS})


@pytest.fixture
def toy_ok(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    site = tmp_path / "site"
    write_package(site)
    yield from install(monkeypatch, site, {"vpbench-toy": TOY_EPS})


def _run(tmp_path: Path, sets: list[str], model: str = "toy-model", dataset: str = "toy") -> tuple[object, list[str]]:
    said: list[str] = []
    base = ["train.max_steps=4", "train.batch_size=2", "train.eval_every=2", "train.val_sequences=2",
            "train.checkpoint_every=1", "eval.profile=false", "train.select_metric=toy-l1"]
    record, _ = execute_run(
        RunRequest(model=model, dataset=dataset, sets=base + sets, out=tmp_path / "run", device="cpu",
                   progress=False, compare=()),
        get_registry(), echo=said.append,
    )
    return record, said


MISTAKES = [
    # (what the plugin author got wrong, --set overrides, the one line expected)
    ("prediction of the wrong shape", ["model.mistake=shape", "eval.metrics=[toy-l1]"],
     r"model 'toy-model' \(package vpbench-toy 0\.1\.0\): predict must return shape \[2, 3, 1, 16, 16\] "
     r"\[B, S, C, H, W\]; got \[2, 3, 1, 15, 16\]"),
    ("0-255 predictions", ["model.mistake=scale", "eval.metrics=[toy-l1]"],
     r"model 'toy-model' \(package vpbench-toy 0\.1\.0\): the prediction must lie in \[0, 1\]; "
     r"got values in \[0, 255\] \(0-255 frames\? divide by 255\)"),
    ("0-255 clips", ["dataset.mistake=scale", "eval.metrics=[toy-l1]"],
     r"dataset 'toy' \(package vpbench-toy 0\.1\.0\): train clip 0 must lie in \[0, 1\]; got values in \[0, 255\]"),
    ("uint8 clips", ["dataset.mistake=uint8", "eval.metrics=[toy-l1]"],
     r"dataset 'toy' \(package vpbench-toy 0\.1\.0\): train clip 0 must be a float tensor in \[0, 1\]; "
     r"got dtype torch\.uint8"),
    ("clips without a channel axis", ["dataset.mistake=no-channel", "eval.metrics=[toy-l1]"],
     r"dataset 'toy' \(package vpbench-toy 0\.1\.0\): train clip 0 must have shape \[5, 1, 16, 16\] "
     r"\[T\+S, C, H, W\] \(from frame_shape, context and horizon\); got \[5, 16, 16\]"),
    ("clips disagreeing with frame_shape", ["dataset.mistake=frame-shape", "eval.metrics=[toy-l1]"],
     r"dataset 'toy' \(package vpbench-toy 0\.1\.0\): train clip 0 must have shape \[5, 1, 16, 16\] .*got \[5, 1, 8, 8\]"),
    ("a metric returning [B] instead of [B, S]", ["eval.metrics=[toy-l1,toy-per-clip]"],
     r"metric 'toy-per-clip' \(package vpbench-toy 0\.1\.0\) under protocol 'openstl': per_frame must return "
     r"\[B, S\] = \[2, 3\] \(one value per predicted frame\); got \[2\]"),
]


@pytest.mark.parametrize("mistake,sets,line", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_each_contract_mistake_fails_before_training_with_one_line(toy, tmp_path, mistake, sets, line):
    with pytest.raises(ContractError) as info:
        _run(tmp_path, sets)
    head, *lines = str(info.value).splitlines()
    assert head.startswith("pre-flight found 1 contract violation before training")
    assert len(lines) == 1, lines
    assert re.search(line, lines[0]), lines[0]
    assert not (tmp_path / "run" / "checkpoints").exists(), "training ran before the pre-flight"
    assert not (tmp_path / "run" / "run.yaml").exists()


def test_missing_data_keeps_its_own_message_not_a_contract_violation(toy, tmp_path):
    from vpbench.errors import DataError

    with pytest.raises(DataError, match=r"^toy data is missing; run `vpbench data prepare toy`$"):
        _run(tmp_path, ["dataset.mistake=missing", "eval.metrics=[toy-l1]"])


def test_the_cli_prints_the_violation_without_traceback_and_exits_2(toy, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "--model", "toy-model", "--dataset", "toy", "--out", str(tmp_path / "run"), "--no-progress",
              "--set", "model.mistake=shape", "--set", "eval.metrics=[toy-l1]", "--set", "train.select_metric=toy-l1"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: pre-flight found 1 contract violation") and "Traceback" not in err
    assert "predict must return shape" in err


def test_a_crashing_plugin_is_located_and_its_traceback_is_one_variable_away(toy, tmp_path, monkeypatch):
    with pytest.raises(ContractError) as info:
        _run(tmp_path, ["model.mistake=crash", "eval.metrics=[toy-l1]"])
    text = str(info.value)
    assert "VPBENCH_TRACEBACK=1" in text.splitlines()[0]
    assert re.search(r"model 'toy-model' .*raised RuntimeError: .* \(at model\.py:\d+\)$", text.splitlines()[1])
    monkeypatch.setenv("VPBENCH_TRACEBACK", "1")
    with pytest.raises(RuntimeError) as crash:  # the plugin's own exception, with its frames
        _run(tmp_path, ["model.mistake=crash", "eval.metrics=[toy-l1]"])
    assert any("vpbench_toy" in str(entry.path) for entry in crash.traceback)


def test_a_correct_plugin_passes_the_preflight_and_trains(toy_ok, tmp_path):
    record, said = _run(tmp_path, [])
    assert record.train.steps_done == 4  # type: ignore[attr-defined]
    assert (tmp_path / "run" / "checkpoints").is_dir()
    # the metric without the openstl protocol is skipped with a warning, not fatal to the run
    assert any("metric 'toy-standard-only'" in s and "no protocol 'openstl'" in s and "skipped" in s for s in said)
    assert "toy-standard-only" not in record.metrics["openstl"]  # type: ignore[attr-defined]
    assert {"toy-l1", "mse", "psnr"} <= set(record.metrics["openstl"])  # type: ignore[attr-defined]


def _alexnet() -> Path:
    import os

    root = os.environ.get("VPBENCH_TEST_DATA")
    weights = Path(root) / "weights" / "alexnet_features-7be5be79.pth" if root else None
    if weights is None or not weights.is_file():
        pytest.skip("needs the AlexNet weights of VPBENCH_TEST_DATA (../shared/data); the test command sets it")
    return weights


def test_a_default_metric_whose_window_exceeds_the_frames_is_left_out_and_recorded_as_unavailable(
    toy_ok: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With LPIPS weights configured (as CI and the README set them), the default metrics include
    LPIPS, whose AlexNet needs 31x31 frames: a 16x16 dataset stopped the run before training
    with a line that named neither the metric nor the fix."""
    monkeypatch.setenv("VPBENCH_LPIPS_WEIGHTS", str(_alexnet()))
    record, said = _run(tmp_path, [])
    assert record.train.steps_done == 4  # type: ignore[attr-defined]
    assert any("metric 'lpips'" in s and "left out" in s and "16x16" in s for s in said)
    assert "lpips" not in record.metrics["openstl"]  # type: ignore[attr-defined]
    assert "16x16" in record.unavailable_metrics["lpips"]  # type: ignore[attr-defined]


def test_a_metric_asked_for_by_name_whose_window_exceeds_the_frames_is_one_line_naming_it_and_the_fix(
    toy_ok: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VPBENCH_LPIPS_WEIGHTS", str(_alexnet()))
    with pytest.raises(SystemExit) as info:
        main(["run", "--model", "toy-model", "--dataset", "toy", "--out", str(tmp_path / "run"), "--device", "cpu",
              "--set", "train.max_steps=2", "--set", "eval.metrics=[lpips,toy-l1]", "--set", "train.select_metric=toy-l1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1 and "Traceback" not in err[0]
    assert "metric 'lpips' does not apply to dataset 'toy'" in err[0] and "16x16" in err[0]
    assert "--set eval.metrics=[toy-l1]" in err[0]
    assert not (tmp_path / "run" / "checkpoints").exists()  # before any training


def test_preflight_does_not_change_what_training_does(tmp_path, registry, small_glyphs, monkeypatch):
    """The pre-flight restores the random state and the train mode: a run with it trains as one without it."""
    import vpbench.engine.pipeline as mod  # where every scoring command calls the pre-flight

    sets = [*small_glyphs, "train.max_steps=3", "train.batch_size=4", "train.eval_every=3",
            "eval.profile=false", "model.noise=0.1", "eval.metrics=[mse]"]

    def run(out: str):  # type: ignore[no-untyped-def]
        record, _ = execute_run(RunRequest(model="tinyconv", dataset="glyphs", sets=sets, out=tmp_path / out,
                                           device="cpu", progress=False, compare=()), registry, echo=lambda s: None)
        return record

    calls: list[int] = []
    real = mod.preflight
    monkeypatch.setattr(mod, "preflight", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    with_check = run("a")
    monkeypatch.setattr(mod, "preflight", lambda *a, **k: [m for _, m in a[3]])  # no check; every metric kept
    without = run("b")
    assert calls == [1]
    assert with_check.metrics == without.metrics and with_check.train.stages == without.train.stages


# --------------------------------------------------------------------------- broken plugins


BROKEN_INIT = '''
import vpbench
import a_module_that_does_not_exist
'''

UNMARKED_INIT = '''
import vpbench

def register_models(register):      # the @vpbench.hookimpl marker is missing
    register(vpbench.ModelSpec(name="never-seen", target="x:y", description="d"))
'''


@pytest.fixture
def broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    site = tmp_path / "site"
    write_package(site)
    for name, code in (("vpbench_broken", BROKEN_INIT), ("vpbench_broken_unmarked", UNMARKED_INIT)):
        (site / name).mkdir(parents=True)
        (site / name / "__init__.py").write_text(textwrap.dedent(code))
    yield from install(monkeypatch, site, {
        "vpbench-toy": TOY_EPS,
        "vpbench-broken": "[vpbench]\nbroken = vpbench_broken\nunmarked = vpbench_broken_unmarked\n",
    })


def test_plugins_lists_a_broken_plugin_with_its_error_and_the_others(broken, capsys):
    main(["plugins"])
    out, err = capsys.readouterr()
    assert "toy-model" in out and "copy-last" in out  # the others still load
    assert "Broken plugins" in out
    assert "broken" in out and "ModuleNotFoundError: No module named 'a_module_that_does_not_exist'" in out
    assert "plugin 'unmarked' defines register_models() without @vpbench.hookimpl" in out
    assert err == ""  # listed, not warned


def test_other_commands_warn_once_and_go_on(broken, tmp_path, capsys):
    main(["run", "--model", "copy-last", "--dataset", "toy", "--out", str(tmp_path / "run"), "--no-progress",
          "--set", "eval.profile=false"])
    out, err = capsys.readouterr()
    warnings = [line for line in err.splitlines() if line.startswith("warning: plugin")]
    assert len(warnings) == 2, err
    assert "plugin 'broken' is broken and was left out: failed to import: ModuleNotFoundError" in warnings[0]
    assert "plugin 'unmarked' defines register_models() without @vpbench.hookimpl" in warnings[1]
    assert (tmp_path / "run" / "record.json").is_file()
