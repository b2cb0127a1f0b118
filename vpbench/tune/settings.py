"""How a search runs: scheduler, searcher and their knobs (typed; unknown keys are errors).

They come from the search file's ``tune:`` section and from ``vpbench tune`` flags; a flag
given on the command line wins over the file. Time is counted in training steps: the
scheduler compares trials at the same step (``grace_period`` is in steps too).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from ..config import validate_section
from ..configbase import ComponentConfig
from ..errors import ConfigError
from ..cluster.connect import INSTALL_HINT

__all__ = ["SCHEDULERS", "SEARCHERS", "TuneSettings", "resolve_settings", "require_searcher"]

SCHEDULERS = ("asha", "hyperband", "fifo")
SEARCHERS = ("random", "optuna")


class TuneSettings(ComponentConfig):
    """The ``tune:`` section of a search file (every key optional)."""

    scheduler: Literal["asha", "hyperband", "fifo"] = Field(
        "asha", description="asha stops weak trials at rungs, hyperband pauses and resumes them, fifo runs all to the end"
    )
    searcher: Literal["random", "optuna"] = Field(
        "random", description="random (and grid) sampling, or optuna: Optuna's TPE through Ray Tune's OptunaSearch"
    )
    grace_period: int | None = Field(
        None, ge=1, description="asha: steps every trial trains before it can be stopped (default: the first validation pass, train.eval_every or max_steps / train.validations)"
    )
    reduction_factor: float = Field(2.0, gt=1, description="asha/hyperband: 1/reduction_factor of the trials go on at each rung")
    max_concurrent: int = Field(0, ge=0, description="trials running at once (0: as many as the cluster fits)")
    time_budget_s: float | None = Field(None, gt=0, description="seconds after which the search stops its trials and ends")
    seed: int | None = Field(None, ge=0, description="optuna: seed of the sampler (a repeatable sequence of trials)")


def resolve_settings(from_file: Mapping[str, Any], flags: Mapping[str, Any], source: str) -> TuneSettings:
    """The file's ``tune:`` section with the flags that were given (not None) on top."""
    merged = {**from_file, **{k: v for k, v in flags.items() if v is not None}}
    try:
        settings = validate_section(TuneSettings, merged, "tune")
    except ConfigError as exc:
        raise ConfigError(f"search {source}: {exc}") from None
    if settings.grace_period is not None and settings.scheduler != "asha":
        raise ConfigError(f"search {source}: grace_period applies to the asha scheduler only, not {settings.scheduler}; drop it")
    return settings


def require_searcher(name: str) -> None:
    """A one-line error with the install command when the searcher's library is missing."""
    if name == "optuna" and importlib.util.find_spec("optuna") is None:
        raise ConfigError(f"the optuna searcher needs optuna, which is not installed; install it with: {INSTALL_HINT}")
