"""Benchmark suites: models x datasets x seeds, each run a Ray task, the output a records tree.

``load_suite``/``expand_suite`` read and expand a suite file (:mod:`vpbench.bench.suite`);
``run_bench`` schedules the runs on Ray, skips finished ones, retries failed ones from their
last checkpoint and reports every failure (:mod:`vpbench.bench.runner`).
"""

from __future__ import annotations

from .runner import BenchRequest, BenchResult, RunOutcome, outcome_rows, plan_bench, run_bench, run_state
from .suite import EntrySpec, PlannedRun, SuiteSpec, expand_suite, load_suite, parse_suite, resolved_config

__all__ = [
    "BenchRequest",
    "BenchResult",
    "EntrySpec",
    "PlannedRun",
    "RunOutcome",
    "SuiteSpec",
    "expand_suite",
    "load_suite",
    "outcome_rows",
    "parse_suite",
    "plan_bench",
    "resolved_config",
    "run_bench",
    "run_state",
]
