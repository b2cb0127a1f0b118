"""What an outside plugin author meets, written from docs/plugins.md alone (issue 24):
``FrameShape`` unpacks as ``(c, h, w)``; one broken metric from an installed package does not
block every run; ``vpbench check`` reports as the pre-flight does (location, fix, one line per
fault); ``vpbench predict`` keeps the aspect ratio of the user's video."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

import vpbench
from throwaway import install
from vpbench.cli import main
from vpbench.engine.run import RunRequest, execute_run
from vpbench.plugins import get_registry

# ------------------------------------------------------------------------------ FrameShape


def test_frame_shape_unpacks_as_c_h_w_and_builds_tensors() -> None:
    shape = vpbench.FrameShape(3, 48, 64)
    c, h, w = shape
    assert (c, h, w) == (3, 48, 64) == (shape.channels, shape.height, shape.width)
    assert shape == (3, 48, 64) and shape.as_tuple() == (3, 48, 64) and tuple(shape) == (3, 48, 64)
    assert torch.zeros(2, 5, *shape).shape == (2, 5, 3, 48, 64)
    assert vpbench.FrameShape(*[1, 16, 16]) == vpbench.FrameShape(1, 16, 16)
    assert hash(shape) == hash(vpbench.FrameShape(3, 48, 64))  # usable as a key, as before
    with pytest.raises(AttributeError):
        shape.channels = 1  # type: ignore[misc]  # immutable


def test_the_docs_say_what_frame_shape_is() -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    assert "c, h, w = frame_shape" in docs and "`vpbench.FrameShape`" in docs


# ---------------------------------------------------------------- a package with broken metrics

INIT = '''
import vpbench

@vpbench.hookimpl
def register_metrics(register):
    register(vpbench.MetricSpec(name="bad-crash", target="vpbench_broken_metric.metric:Crash",
                                description="crashes on grey frames", higher_is_better=False,
                                protocols=("openstl", "standard")))
    register(vpbench.MetricSpec(name="bad-import", target="vpbench_broken_metric.missing:Nothing",
                                description="its module does not import", higher_is_better=False))
'''

METRIC = '''
import vpbench

class Crash(vpbench.Metric):
    name = "bad-crash"
    higher_is_better = False

    def per_frame(self, pred, true):
        weight = 1.0 / (true.shape[2] - 1)  # a bug: grey frames have one channel
        return weight * (pred - true).abs().flatten(2).mean(2).double()
'''

MISSING = '''
import vpbench
import a_module_that_does_not_exist  # noqa: F401
'''

EPS = {"vpbench-broken-metric": "[vpbench]\nbroken_metric = vpbench_broken_metric\n"}
TINY = ["dataset.train_length=8", "dataset.val_length=4", "dataset.test_length=4", "eval.profile=false"]


@pytest.fixture
def broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An installed third-party package (``vpbench-broken-metric``) registering two broken metrics."""
    pkg = tmp_path / "site" / "vpbench_broken_metric"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(INIT))
    (pkg / "metric.py").write_text(textwrap.dedent(METRIC))
    (pkg / "missing.py").write_text(textwrap.dedent(MISSING))
    yield from install(monkeypatch, tmp_path / "site", EPS)


def _line(text: str, pattern: str) -> int:
    """Line number (1-based) of the first line of ``text`` matching ``pattern``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if re.search(pattern, line))


def test_broken_metrics_nobody_asked_for_are_skipped_with_one_warning_each(broken: None, tmp_path: Path) -> None:
    registry = get_registry()
    assert {"bad-crash", "bad-import"} <= set(registry.metrics.names())  # registered through the hooks
    said: list[str] = []
    record, run_dir = execute_run(
        RunRequest(model="copy-last", dataset="glyphs", sets=[*TINY, "eval.protocols=[openstl,standard]"],
                   out=tmp_path / "r", device="cpu", progress=False, compare=()),
        registry, echo=said.append,
    )
    assert (run_dir / "record.json").is_file()
    crash = [s for s in said if "'bad-crash'" in s]
    missing = [s for s in said if "'bad-import'" in s]
    assert len(crash) == 1 and len(missing) == 1, said  # once, not once per protocol
    line = _line(textwrap.dedent(METRIC), r"weight = 1\.0")
    assert re.fullmatch(
        r"warning: metric 'bad-crash' \(package vpbench-broken-metric 0\.1\.0\) under protocols 'openstl', 'standard' "
        rf"is broken and was left out: per_frame raised ZeroDivisionError: float division by zero \(at metric\.py:{line}\) "
        r"\(fix or uninstall it; `vpbench check --metric bad-crash` shows every fault\)", crash[0]), crash[0]
    assert re.fullmatch(
        r"warning: metric 'bad-import' \(package vpbench-broken-metric 0\.1\.0\) is broken and was left out: "
        r"ModuleNotFoundError: No module named 'a_module_that_does_not_exist' \(at missing\.py:3\) .*", missing[0]), missing[0]
    for protocol in ("openstl", "standard"):
        scored = set(record.metrics[protocol])  # type: ignore[attr-defined]
        assert {"mse", "psnr", "ssim"} <= scored and not scored & {"bad-crash", "bad-import"}


def test_eval_of_a_finished_run_also_leaves_a_broken_metric_out(
    broken: None, copy_last_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    main(["eval", "--run", str(copy_last_run), "--out", str(tmp_path / "re"), "--device", "cpu", "--no-progress",
          "--compare", "none"])
    out = capsys.readouterr().out
    assert sum("warning: metric 'bad-crash'" in line and "left out" in line for line in out.splitlines()) == 1, out
    assert (tmp_path / "re" / "record.json").is_file()


@pytest.mark.parametrize("metric, fault", [
    ("bad-crash", r"per_frame raised ZeroDivisionError: float division by zero \(at metric\.py:\d+\)"),
    ("bad-import", r"ModuleNotFoundError: No module named 'a_module_that_does_not_exist' \(at missing\.py:3\)"),
])
def test_a_broken_metric_asked_for_by_name_is_one_error_line_that_says_how_to_run_without_it(
    broken: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], metric: str, fault: str
) -> None:
    sets = [a for s in [*TINY, f"eval.metrics=[mse,{metric},psnr]"] for a in ("--set", s)]
    with pytest.raises(SystemExit) as info:
        main(["run", "--model", "copy-last", "--dataset", "glyphs", "--out", str(tmp_path / "r"), "--no-progress",
              "--compare", "none", *sets])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err, err
    assert re.search(fault, err), err
    assert "run without it: --set eval.metrics=[mse,psnr]" in err, err
    assert not (tmp_path / "r" / "record.json").exists()


def test_check_reports_one_line_per_fault_with_location_and_fix(broken: None, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["check", "--metric", "bad-crash", "--metric", "bad-import"])
    assert info.value.code == 1
    out = capsys.readouterr().out
    fails = [line for line in out.splitlines() if line.startswith("FAIL")]
    line = _line(textwrap.dedent(METRIC), r"weight = 1\.0")
    # the crash fails 3 checks under each of 2 protocols: one line, which names the other 5
    crash = [f for f in fails if f.startswith("FAIL metric:bad-crash:")]
    assert len(crash) == 1, fails
    assert crash[0].startswith(
        "FAIL metric:bad-crash:openstl-shape: metric 'bad-crash' (package vpbench-broken-metric 0.1.0) raised "
        f"ZeroDivisionError: float division by zero (at metric.py:{line}) [the same in 5 more checks: "
    ), crash[0]
    assert "standard-batch-independent" in crash[0]
    imports = [f for f in fails if f.startswith("FAIL metric:bad-import:")]
    assert len(imports) == 1 and "No module named 'a_module_that_does_not_exist'" in imports[0], fails
    assert imports[0].split(" [the same")[0].endswith("(at missing.py:3)") and "in 7 more checks" in imports[0], imports[0]
    assert "fix each FAIL in the plugin's code (see docs/plugins.md); VPBENCH_TRACEBACK=1 shows a crash's traceback" in out
    # bad-crash's direction checks pass (they call no metric code)
    assert out.strip().splitlines()[-1] == "2 passed, 14 failed, 0 skipped (16 checks)"


def test_check_lets_a_crash_through_with_its_traceback_when_asked(
    broken: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vpbench.testing import all_cases

    monkeypatch.setenv("VPBENCH_TRACEBACK", "1")
    case = next(c for c in all_cases(get_registry(), metrics=["bad-crash"]) if c.check == "openstl-shape")
    with pytest.raises(ZeroDivisionError) as crash:
        case.run()
    assert any("vpbench_broken_metric" in str(entry.path) for entry in crash.traceback)


HOOK_INIT = '''
import vpbench

@vpbench.hookimpl
def register_metrics(register):
    register(vpbench.MetricSpec(name="half-spec", target="vpbench_broken_hook:X",
                                description="higher_is_better forgotten"))
'''


@pytest.fixture
def broken_hook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An installed package whose register_metrics hook raises (a spec built without a required field)."""
    pkg = tmp_path / "site" / "vpbench_broken_hook"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(HOOK_INIT))
    yield from install(monkeypatch, tmp_path / "site", {"vpbench-broken-hook": "[vpbench]\nbroken_hook = vpbench_broken_hook\n"})


def test_a_registration_hook_that_crashes_leaves_only_that_plugin_out(
    broken_hook: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["run", "--model", "copy-last", "--dataset", "glyphs", "--out", str(tmp_path / "r"), "--no-progress",
          "--compare", "none", *[a for s in TINY for a in ("--set", s)]])
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "broken_hook" in line]
    line = _line(textwrap.dedent(HOOK_INIT), r"register\(vpbench\.MetricSpec")
    assert len(warnings) == 1 and re.search(
        r"^warning: plugin 'broken_hook' is broken and was left out: register_metrics raised TypeError: .*"
        rf"higher_is_better.* \(at __init__\.py:{line}\)", warnings[0]), err
    assert (tmp_path / "r" / "record.json").is_file()
    main(["plugins"])
    assert "register_metrics raised TypeError" in capsys.readouterr().out


# ----------------------------------------------------------------- predict keeps the aspect ratio


def _write_wide_video(path: Path, frames: int = 24) -> None:
    """128x64 (W x H) frames: a white 16x16 square in the middle, moving one pixel per frame."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)  # lossless: the square's edges stay sharp
        stream.width, stream.height, stream.pix_fmt = 128, 64, "yuv420p"
        for t in range(frames):
            img = np.zeros((64, 128, 3), np.uint8)
            img[24:40, 56 + t // 4 : 72 + t // 4] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _extent(frame: np.ndarray) -> tuple[int, int]:
    """Height and width of the bright region of one ``[1, H, W]`` uint8 frame."""
    rows, cols = np.nonzero(frame[0] > 127)
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


@pytest.fixture
def copy_last_run(tmp_path: Path) -> Path:
    execute_run(RunRequest(model="copy-last", dataset="glyphs", sets=TINY, out=tmp_path / "run", device="cpu",
                           progress=False, compare=()), get_registry(), echo=lambda s: None)
    return tmp_path / "run"


@pytest.mark.parametrize("fit, square, said", [
    ("crop", 16, "128x64 centre-cropped to 64x64 (--fit pad keeps the whole frame), resized to 64x64"),
    ("pad", 8, "128x64 padded with black to 128x128 (--fit crop fills the frame), resized to 64x64"),
])
def test_predict_keeps_the_aspect_ratio_of_a_non_square_video(
    tmp_path: Path, copy_last_run: Path, capsys: pytest.CaptureFixture[str], fit: str, square: int, said: str
) -> None:
    video = tmp_path / "wide.mkv"
    _write_wide_video(video)
    out = tmp_path / f"pred-{fit}"
    main(["predict", "--run", str(copy_last_run), "--video", str(video), "--out", str(out), "--device", "cpu",
          *(["--fit", fit] if fit != "crop" else [])])
    assert said in capsys.readouterr().out
    with np.load(out / "prediction.npz") as npz:
        context = npz["context"]
    assert context.shape == (10, 1, 64, 64)
    h, w = _extent(context[0])
    assert abs(h - square) <= 1 and abs(w - square) <= 1, (h, w)  # a square stays a square (squashed: 16 x 8)
    if fit == "pad":  # black bars above and below, the whole width kept
        assert context[0, 0, :15].max() < 20 and context[0, 0, -15:].max() < 20


def test_predict_help_states_how_the_aspect_ratio_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    main(["predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "The aspect ratio of the video is kept" in text and "--fit [crop|pad]" in text and "Never stretched" in text
