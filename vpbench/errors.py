"""User-facing errors.

Every error a user can cause (a misspelt plugin name, a bad config key, missing data, a
checkpoint from another model) is raised as a :class:`VpbenchError`. The CLI prints its
message on one line and exits with status 2, without a traceback. Messages name the
problem *and* the fix.
"""

from __future__ import annotations

__all__ = [
    "VpbenchError",
    "UnknownPluginError",
    "ConfigError",
    "DataError",
    "FramesTooSmallError",
    "CheckpointError",
    "PluginError",
    "TrainingError",
    "StorageError",
    "RunLockedError",
    "ContractError",
]


class VpbenchError(Exception):
    """Base class of every error caused by user input."""

    exit_code: int = 2


class UnknownPluginError(VpbenchError, KeyError):
    """A model, dataset or metric name that no installed plugin registers."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(VpbenchError):
    """A configuration key, value or file that is not valid."""


class DataError(VpbenchError):
    """Data that is missing, corrupt or does not match its checksum."""


class FramesTooSmallError(DataError):
    """Frames smaller than a metric's window: the metric does not apply to this dataset.
    Raised by the metric's own input check, so a third-party metric can raise it too; the
    pre-flight leaves such a metric out when nobody asked for it by name."""


class CheckpointError(VpbenchError):
    """A checkpoint that is unreadable or belongs to another model or config."""


class PluginError(VpbenchError):
    """A plugin that is broken: misspelt hook, duplicate name, failing import."""


class TrainingError(VpbenchError):
    """Training diverged (a non-finite loss); the message says which knob to turn."""


class StorageError(VpbenchError):
    """A file or folder that cannot be written: read-only, full, or not a folder."""


class RunLockedError(VpbenchError):
    """A run directory that another vpbench process is writing."""
class ContractError(PluginError):
    """A plugin's component breaks the contract (shape, dtype, range): found by the pre-flight."""
