"""The environment a run needs on another node, by an explicit list.

A worker is a separate process, perhaps on another machine, started by Ray with the node's
own environment. The settings below change what a run does (its plugins, configs, data,
metric weights, error output), so the driver's values travel with the job. A new
``VPBENCH_*`` setting must be added here (a test checks that every one the code reads is).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

__all__ = ["FORWARDED_ENV", "forwarded_env", "runtime_env"]

#: every environment variable a run reads, with what it decides
FORWARDED_ENV: dict[str, str] = {
    "VPBENCH_PLUGINS": "which plugin packages the registry loads",
    "VPBENCH_CONFIGS": "where named configs are looked up",
    "VPBENCH_DATA": "the data root",
    "VPBENCH_LPIPS_WEIGHTS": "the LPIPS backbone's weights file (without it LPIPS cannot be measured)",
    "VPBENCH_FVD_WEIGHTS": "the I3D TorchScript file of FVD (hash-checked on the node before loading)",
    "VPBENCH_TRACEBACK": "whether user errors keep their traceback",
    "PYTHONPATH": "where plugin modules that are not installed are imported from",
}


def forwarded_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The forwarded variables that are set (non-empty) in ``environ`` (default: this process)."""
    env = os.environ if environ is None else environ
    return {k: env[k] for k in FORWARDED_ENV if env.get(k)}


def runtime_env(extra: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A Ray job's runtime environment carrying :func:`forwarded_env` (and ``extra``)."""
    env = forwarded_env()
    env.update(extra or {})
    return {"env_vars": env} if env else {}
