"""The plugin surface: hooks, entry points, allow-list, lazy specs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

import vpbench
from vpbench import hookspecs
from vpbench.errors import PluginError
from vpbench.plugins import get_plugin_manager, get_registry


def test_first_party_plugins_register_through_the_entry_point_group():
    reg = get_registry()
    assert {"copy-last", "mean-context"} <= set(reg.models.names())
    assert "glyphs" in reg.datasets
    entry = reg.models.entry("copy-last")
    assert entry.plugin == "baselines" and entry.package.startswith("vpbench ")
    eps = {ep.name for ep in metadata.entry_points(group="vpbench")}
    assert {"baselines", "glyphs", "metrics"} <= eps


def test_allow_list_isolates_plugins(monkeypatch):
    monkeypatch.setenv("VPBENCH_PLUGINS", "baselines")
    reg = get_registry()
    assert reg.models.names() == ["blank", "copy-last", "mean-context"]
    assert reg.datasets.names() == []


def test_misspelt_hook_fails_loudly():
    class Bad:
        @vpbench.hookimpl
        def register_model(self, register):  # type: ignore[no-untyped-def]
            pass

    with pytest.raises(PluginError, match=r"register_model.*known hooks: register_commands, register_datasets"):
        get_plugin_manager([Bad()], load_entry_points=False)


def test_duplicate_names_are_an_error():
    class Dup:
        @vpbench.hookimpl
        def register_models(self, register):  # type: ignore[no-untyped-def]
            register(vpbench.ModelSpec(name="copy-last", target="x:y", description="again"))

    with pytest.raises(PluginError, match=r"model 'copy-last' is registered twice"):
        get_registry([Dup()])


def test_register_rejects_a_wrong_spec_type():
    class Wrong:
        @vpbench.hookimpl
        def register_datasets(self, register):  # type: ignore[no-untyped-def]
            register(vpbench.ModelSpec(name="m", target="x:y", description="d"))

    with pytest.raises(PluginError, match="expected vpbench.DatasetSpec"):
        get_registry([Wrong()], load_entry_points=False)


def test_every_hook_is_documented_with_its_signature():
    doc = (Path(__file__).parent.parent / "docs" / "plugins.md").read_text()
    hooks = [n for n in dir(hookspecs) if n.startswith("register_")]
    assert hooks
    for name in hooks:
        assert f"{name}(" in doc, f"hook {name} is not documented in docs/plugins.md"


def test_listing_plugins_imports_no_torch():
    code = "import sys; from vpbench.cli import main\ntry:\n    main(['plugins'])\nexcept SystemExit: pass\nprint('TORCH' if 'torch' in sys.modules else 'NO-TORCH')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "copy-last" in out.stdout
    assert out.stdout.strip().endswith("NO-TORCH")


class _FakeDist(metadata.Distribution):
    """A distribution that exists only in memory, with one entry point (pluggy's own test trick)."""

    def __init__(self, entry_points: str) -> None:
        self._eps = entry_points

    def read_text(self, filename: str) -> str | None:
        if filename == "entry_points.txt":
            return self._eps
        if filename == "METADATA":
            return "Metadata-Version: 2.1\nName: vpbench-flip\nVersion: 1.2.3\n"
        return None

    def locate_file(self, path: Any) -> Path:
        return Path(path)


def test_external_package_registers_a_model_that_vpbench_run_uses(monkeypatch, tmp_path, capsys):
    """A third-party package with one entry point adds a model; `vpbench run` trains nothing and uses it."""
    pkg = tmp_path / "site" / "vpbench_flip"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent('''
        import vpbench

        @vpbench.hookimpl
        def register_models(register):
            register(vpbench.ModelSpec(name="flip", target="vpbench_flip.model:Flip",
                                       description="last frame, mirrored", trainable=False))
    '''))
    (pkg / "model.py").write_text(textwrap.dedent('''
        from vpbench import VideoModel

        class Flip(VideoModel):
            def predict(self, context, horizon):
                return context[:, -1:].flip(-1).expand(-1, horizon, -1, -1, -1).clone()
    '''))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    real = metadata.distributions

    def distributions(**kw: Any) -> Any:
        yield from real(**kw)
        yield _FakeDist("[vpbench]\nflip = vpbench_flip\n")

    monkeypatch.setattr(metadata, "distributions", distributions)
    reg = get_registry()
    assert reg.models.entry("flip").package == "vpbench-flip 1.2.3"

    from vpbench.cli import main

    main(["run", "--model", "flip", "--dataset", "glyphs", "--out", str(tmp_path / "run"), "--no-progress",
          "--set", "dataset.test_length=4", "--set", "dataset.val_length=4", "--set", "dataset.train_length=8"])
    out = capsys.readouterr().out
    assert "flip" in out and "copy-last" in out
    assert (tmp_path / "run" / "record.json").is_file()
