"""vpbench.cluster without a cluster: Ctrl-C handling of a waiting driver, bounded calls."""

from __future__ import annotations

import ast
import os
import re
import signal
import threading
from pathlib import Path

import pytest

from vpbench.cluster.env import FORWARDED_ENV, runtime_env
from vpbench.cluster.interrupt import bounded, sigint_flag
from vpbench.cluster.pack import pack_dir, recover_dir, unpack_dir

ROOT = Path(__file__).resolve().parent.parent


def test_sigint_while_waiting_sets_the_flag_and_the_previous_handler_comes_back() -> None:
    before = signal.getsignal(signal.SIGINT)
    with sigint_flag() as stop:
        assert not stop.is_set()
        os.kill(os.getpid(), signal.SIGINT)  # a real SIGINT: it must not raise KeyboardInterrupt here
        assert stop.wait(60)  # the handler runs in this (main) thread at the next bytecode
    assert signal.getsignal(signal.SIGINT) is before


def test_a_call_that_hangs_is_left_behind_and_one_that_returns_is_waited_for() -> None:
    release = threading.Event()
    try:
        assert bounded(lambda: release.wait(600), 0.05) is False
    finally:
        release.set()
    assert bounded(lambda: None, 600) is True
    assert bounded(lambda: 1 / 0, 600) is True  # an error on the way out is dropped, not raised


def _imports(path: Path) -> set[str]:
    """The modules a source file imports, relative imports made absolute."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            mod = node.module or ""
            name = f"{base}.{mod}".rstrip(".") if node.level else mod
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return found


def test_no_bench_module_imports_tune_and_the_cluster_package_imports_neither() -> None:
    for package, banned in (("bench", ("vpbench.tune",)), ("cluster", ("vpbench.tune", "vpbench.bench"))):
        for path in sorted((ROOT / "vpbench" / package).glob("*.py")):
            bad = sorted(m for m in _imports(path) if m.startswith(banned))
            assert not bad, f"{path.relative_to(ROOT)} imports {bad}"
    # the checker sees relative imports: tune's own modules do import the cluster package
    assert "vpbench.cluster.connect" in _imports(ROOT / "vpbench" / "tune" / "search.py")


def test_every_vpbench_setting_the_code_reads_is_forwarded_to_the_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    read = set()
    for path in [*(ROOT / "vpbench").rglob("*.py"), *(ROOT / "plugins").rglob("*.py")]:
        read.update(re.findall(r"[\"'](VPBENCH_[A-Z0-9_]+)[\"']", path.read_text(encoding="utf-8")))
    assert {"VPBENCH_LPIPS_WEIGHTS", "VPBENCH_DATA", "VPBENCH_PLUGINS"} <= read
    assert read <= set(FORWARDED_ENV), f"not forwarded to the nodes: {sorted(read - set(FORWARDED_ENV))}"
    monkeypatch.setenv("VPBENCH_LPIPS_WEIGHTS", "/weights/alexnet.pth")
    monkeypatch.delenv("VPBENCH_TRACEBACK", raising=False)
    env = runtime_env()["env_vars"]
    assert env["VPBENCH_LPIPS_WEIGHTS"] == "/weights/alexnet.pth" and "VPBENCH_TRACEBACK" not in env


def test_a_replaced_directory_is_whole_after_a_kill_between_the_renames(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "checkpoints").mkdir(parents=True)
    (src / "run.yaml").write_text("old\n")
    dest = tmp_path / "out" / "run"
    unpack_dir(pack_dir(src), dest)
    (src / "run.yaml").write_text("new\n")
    unpack_dir(pack_dir(src), dest, replace=True)
    assert (dest / "run.yaml").read_text() == "new\n" and [p.name for p in dest.parent.iterdir()] == ["run"]
    dest.rename(dest.with_name(".run.old-x"))  # what a kill after the first rename leaves
    recover_dir(dest)
    assert (dest / "run.yaml").read_text() == "new\n" and [p.name for p in dest.parent.iterdir()] == ["run"]
