"""Where datasets live: ``--data-root``, else ``$VPBENCH_DATA``, else ``~/.cache/vpbench``."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_ENV", "resolve_data_root"]

DATA_ENV = "VPBENCH_DATA"


def resolve_data_root(cli_value: Path | str | None = None) -> Path:
    if cli_value:
        return Path(cli_value).expanduser()
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "vpbench"
