"""The driver of ``vpbench bench`` at scale: its peak memory at 20 and at 200 runs, and what a
run costs on the cluster beyond a plain ``vpbench run``.

A two-node Ray cluster on 127.0.0.1 (the test suite's ``tests/raycluster.py``: one CPU per
node) runs suites of N tiny ``tinyconv`` runs on the embedded glyphs dataset (4 steps, two
validation passes: every run sends two states and its finished directory through the
transport). The driver is a real ``vpbench bench`` process; its peak RSS is the kernel's
(``wait4``'s ``ru_maxrss``). The same tiny run as a plain ``vpbench run`` process on this
machine gives the reference.

* overhead per run = driver wall time x slots / N - the plain run's wall time
  (slots: the runs the cluster runs at once, 2 here; the plain run pays its own process start)

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_scale.py --runs 20 200

Measured 2026-12-02 on the shared 2-core machine (load average about 10):

    plain vpbench run (one process, same tiny run): 13.57 s wall, peak RSS 899 MB
     runs  driver wall s  driver peak RSS MB  s per run (x slots)  overhead per run s
       20           43.5                 806                 4.35               -9.21
      200          215.1                 808                 2.15              -11.42
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
sys.path.insert(0, str(TESTS))

SETTINGS = {
    "dataset.train_length": 8, "dataset.val_length": 4, "dataset.test_length": 4, "train.batch_size": 4,
    "train.max_steps": 4, "train.eval_every": 2, "train.val_sequences": 4, "eval.metrics": ["mse"],
    "eval.protocols": ["openstl"], "eval.profile": False, "train.select_metric": "mse",
}


def _driver_cmd(loopback: str) -> list[str]:
    code = f"{loopback}; import sys; from conftest import TestPlugin; from vpbench.cli import main; main(sys.argv[1:], [TestPlugin()])"
    return [sys.executable, "-c", code]


def _timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and stderr tail of one process."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[3:])} failed ({proc.returncode}):\n{err[-3000:]}")
    return wall, usage.ru_maxrss / 1024, err[-500:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, nargs="+", default=[20, 200])
    args = parser.parse_args()

    from raycluster import _LOOPBACK, Cluster

    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_DEDUP_LOGS="0", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(REPO), str(REPO / "plugins"), *filter(None, [env.get("PYTHONPATH")])])
    (work / "logs").mkdir()
    cluster = Cluster(env, work / "logs")
    cluster.start()
    try:
        import ray
        from ray._private import services

        services.resolve_ip_for_localhost = lambda host: host
        os.environ["RAY_AUTH_MODE"] = "disabled"
        ray.init(address=cluster.address, log_to_driver=False)
        deadline = time.monotonic() + 300
        while sum(1 for n in ray.nodes() if n["Alive"]) < 2:  # type: ignore[no-untyped-call]
            assert time.monotonic() < deadline, "the worker node did not join"
            time.sleep(0.5)
        slots = int(ray.cluster_resources()["CPU"])  # type: ignore[no-untyped-call]
        ray.shutdown()
        driver = _driver_cmd(_LOOPBACK)

        sets = [f"--set={k}={v if not isinstance(v, list) else '[' + ','.join(v) + ']'}" for k, v in SETTINGS.items()]
        plain_cmd = [*driver, "run", "--model", "tinyconv", "--dataset", "glyphs", "--out", "plain", "--no-progress", "--compare", "none", *sets]
        plain_wall, plain_rss, _ = _timed(plain_cmd, work, env)
        print(f"plain vpbench run (one process, same tiny run): {plain_wall:.2f} s wall, peak RSS {plain_rss:.0f} MB")
        print(f"cluster: 2 nodes on 127.0.0.1, {slots} slot(s) of 1 CPU")
        print(f"{'runs':>5} {'driver wall s':>14} {'driver peak RSS MB':>19} {'s per run (x slots)':>20} {'overhead per run s':>19}")
        for n in args.runs:
            suite = work / f"scale-{n}.yaml"
            suite.write_text(yaml.safe_dump({"name": f"scale-{n}", "datasets": ["glyphs"], "seeds": list(range(n)), "set": SETTINGS,
                                             "compare": [], "entries": [{"name": "tiny", "model": "tinyconv"}]}))
            wall, rss, _ = _timed([*driver, "bench", str(suite), "--address", cluster.address, "--out", f"out-{n}", "--quiet"], work, env)
            per_run = wall * slots / n
            print(f"{n:>5} {wall:>14.1f} {rss:>19.0f} {per_run:>20.2f} {per_run - plain_wall:>19.2f}", flush=True)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
