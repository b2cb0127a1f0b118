"""Where datasets live: ``--data-root``, else ``$VPBENCH_DATA``, else ``~/.cache/vpbench``."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError

__all__ = ["DATA_ENV", "resolve_data_root"]

DATA_ENV = "VPBENCH_DATA"


def resolve_data_root(cli_value: Path | str | None = None) -> Path:
    """The data root; one that exists as a file is a :class:`ConfigError`."""
    if cli_value:
        root = Path(cli_value).expanduser()
    elif env := os.environ.get(DATA_ENV):
        root = Path(env).expanduser()
    else:
        root = Path.home() / ".cache" / "vpbench"
    if root.exists() and not root.is_dir():
        raise ConfigError(f"data root {root} is a file, not a folder; give a folder with --data-root or ${DATA_ENV}")
    return root
