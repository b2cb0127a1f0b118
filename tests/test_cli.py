"""The command line: help that explains, one-line errors with exit code 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _vpbench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vpbench", *args],
        capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--model", "nope", "--dataset", "glyphs"], "error: unknown model 'nope'; valid models:"),
        (["run", "--model", "copy-last", "--dataset", "glyphs", "--set", "train.bogus=1"], "error: unknown config key 'train.bogus'"),
        (["run", "--model", "copy-last", "--dataset", "glyphs", "--config", "missing.yaml"], "error: cannot read config file missing.yaml"),
        (["run", "--resume"], "error: --resume needs --out DIR"),
        (["data", "info", "nope"], "error: unknown dataset 'nope'; valid datasets:"),
    ],
)
def test_user_errors_are_one_line_with_exit_code_2(args, message):
    out = _vpbench(*args)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith(message), out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_dataset_plugin_not_installed_is_named():
    out = _vpbench("run", "--model", "copy-last", "--dataset", "kth", env={"VPBENCH_PLUGINS": "baselines,glyphs,metrics"})
    assert out.returncode == 2
    assert "unknown dataset 'kth'; valid datasets: glyphs" in out.stderr


def test_help_explains_every_command():
    top = _vpbench("--help")
    assert top.returncode == 0
    for cmd in ("run", "plugins", "data", "profile", "leaderboard", "tune"):
        assert cmd in top.stdout
        sub = _vpbench(cmd, "--help")
        assert sub.returncode == 0 and len(sub.stdout.splitlines()) > 4
    run_help = _vpbench("run", "--help").stdout
    for flag in ("--model", "--dataset", "--config", "--set", "--device", "--seed", "--out", "--resume", "--data-root"):
        assert flag in run_help
