"""Run configuration: one typed config per component, YAML files hold overrides only.

Precedence, lowest first: each component's defaults, the YAML file (``--config`` or the
model's file for the dataset under ``configs/``), then ``--set key=value`` overrides.
Unknown keys are errors that list the valid keys.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from .errors import ConfigError
from .configbase import ComponentConfig
from .names import quote, shorten

__all__ = [
    "MAX_LR",
    "BudgetConfig",
    "TrainConfig",
    "EvalConfig",
    "RunConfig",
    "configs_dir",
    "default_config_file",
    "load_yaml",
    "apply_overrides",
    "set_dotted",
    "validate_section",
    "build_run_config",
]


#: the largest learning rate accepted (train.lr, and a model stage's own lr): far above any useful
#: Adam rate; a value like 1e300 is inf in float32 and the run would only record NaN
MAX_LR = 10


class BudgetConfig(ComponentConfig):
    """Training compute a run may spend (``train.budget``); it sets the steps before training.

    ``sequences``: training clips seen (steps x ``train.batch_size``, summed over stages).
    ``macs``: training multiply-accumulates (forward + backward of each step, counted once per
    stage with torch's FLOP counter, MACs = FLOPs / 2). The run takes the most steps that fit:
    with both, the steps of whichever runs out first. A multi-stage model splits the steps
    between its stages by their fractions (as it splits ``train.max_steps``), so its stages
    together spend the budget.
    """

    sequences: int | None = Field(None, ge=1, description="training sequences (clips) seen, over all stages")
    macs: float | None = Field(None, gt=0, description="training multiply-accumulates (forward + backward), e.g. 2.5e13")

    @model_validator(mode="after")
    def _one_at_least(self) -> BudgetConfig:
        if self.sequences is None and self.macs is None:
            raise ValueError("set train.budget.sequences and/or train.budget.macs, or train.budget=null")
        return self


class TrainConfig(ComponentConfig):
    """How the harness trains a model (the budget and the loop, not the model)."""

    max_steps: int = Field(
        2000, ge=0, description="optimiser steps over all stages; with train.budget, derived from the budget instead"
    )
    budget: BudgetConfig | None = Field(
        None,
        description="compute to spend (sequences and/or macs); sets max_steps before training, the schedule ends with it",
    )
    batch_size: int = Field(16, ge=1, description="training clips per step")
    lr: float = Field(3e-4, gt=0, le=MAX_LR, description="peak learning rate unless a stage sets its own")
    lr_schedule: Literal["constant", "cosine", "linear", "onecycle"] = Field(
        "constant",
        description="per stage, over the stage's steps: constant; cosine or linear decay to 0; "
        "onecycle (torch's OneCycleLR defaults, as OpenSTL: warm-up from lr/25 over 30%, cosine to lr/25e4)",
    )
    optimizer: Literal["adam", "adamw"] = Field("adam", description="adam, or adamw (decoupled weight decay)")
    weight_decay: float = Field(0.0, ge=0, le=1, description="weight decay (adam: L2 in the gradient; adamw: decoupled)")
    eval_every: int = Field(500, ge=1, description="steps between validation passes (unless train.validations is set)")
    validations: int | None = Field(
        None,
        ge=1,
        description="validation passes evenly spaced over the run's planned steps (those of the stages that select); "
        "replaces eval_every when set, so a budgeted run of any length gets this many; the end of a selecting stage "
        "always validates",
    )
    val_sequences: int = Field(256, ge=1, description="validation clips per validation pass")
    select_metric: str = Field(
        "auto",
        description="validation metric that selects the best checkpoint; auto: lpips when its weights are there, else ssim",
    )
    amp: Literal["off", "bf16", "fp16"] = Field("off", description="mixed precision on CUDA")
    grad_clip: float | None = Field(None, gt=0, description="gradient-norm clip, none if unset")
    num_workers: int = Field(0, ge=0, description="data-loader worker processes")
    checkpoint_every: int = Field(250, ge=1, description="steps between resumable checkpoints")

    @field_validator("amp", mode="before")
    @classmethod
    def _amp_off(cls, value: object) -> object:
        # YAML 1.1 reads a bare `off` (`amp: off`, `--set train.amp=off`) as the boolean false
        return "off" if value is False else value


class EvalConfig(ComponentConfig):
    """How the harness evaluates on the test split."""

    batch_size: int = Field(32, ge=1, description="test clips per forward pass")
    metrics: list[str] | None = Field(
        None, min_length=1, description="metric names (at least one); none means every registered metric"
    )
    protocols: list[str] = Field(["openstl"], min_length=1, description="metric protocols reported side by side (at least one)")
    max_sequences: int | None = Field(None, ge=1, description="evaluate only the first N test clips")
    profile: bool = Field(True, description="store parameters, FLOPs, throughput and peak memory in the record")
    samples: int = Field(
        1, ge=1, le=1000,
        description="futures drawn per test clip for a stochastic model: records mean and best-of-N beside the first draw",
    )
    metric_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="options passed to a metric when it is built, by metric name, "
        "e.g. {fvd: {weights: /path/i3d_torchscript.pt}} or {lpips: {weights: /path/alexnet.pth}}",
    )


class RunConfig(ComponentConfig):
    """A whole run. ``model`` and ``dataset`` are validated by their components' configs."""

    model: dict[str, Any] = Field(default_factory=dict, description="overrides of the model's config")
    dataset: dict[str, Any] = Field(default_factory=dict, description="overrides of the dataset's config")
    train: TrainConfig = Field(default_factory=TrainConfig)  # type: ignore[arg-type]
    eval: EvalConfig = Field(default_factory=EvalConfig)  # type: ignore[arg-type]
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seed for weights, data order and sampling (0 to 2**32-1)")
    threads: int | None = Field(
        None, ge=1, le=4096, description="PyTorch CPU threads; null: OMP_NUM_THREADS, else 1 up to 4 cores, else half of them"
    )


def configs_dir() -> Path:
    """Folder of the YAML configs: ``$VPBENCH_CONFIGS`` or the source tree's ``configs/``."""
    env = os.environ.get("VPBENCH_CONFIGS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "configs"


def default_config_file(model: str, dataset: str) -> Path | None:
    """``configs/<model>-<dataset>.yaml`` when it exists."""
    path = configs_dir() / f"{model}-{dataset}.yaml"
    return path if path.is_file() else None


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; errors name the file and the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8 YAML"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = shorten(str(getattr(exc, "problem", None) or str(exc).splitlines()[0]))
        raise ConfigError(f"invalid YAML in {path}{where}: {problem}; fix the file") from exc
    except RecursionError:
        raise ConfigError(f"invalid YAML in {path}: nested too deeply for a config; fix the file") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections, got {type(data).__name__}")
    return data


def apply_overrides(base: Mapping[str, Any], sets: Sequence[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides; values are parsed as YAML scalars/lists."""
    values: dict[str, Any] = {}
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"bad --set {quote(item)}: expected KEY=VALUE, e.g. --set train.max_steps=200")
        try:
            values[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            values[key.strip()] = raw
        except RecursionError:
            raise ConfigError(f"bad --set {quote(item)}: the value is nested too deeply for a config") from None
    return set_dotted(base, values)


def set_dotted(data: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the nested config ``data`` with each dotted key of ``values`` set."""
    out: dict[str, Any] = _deep_copy(data)
    for key, value in values.items():
        parts = key.split(".")
        node = out
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"config key {quote(key)}: {quote(part)} is not a section")
            node = child
        node[parts[-1]] = value
    return out


def _deep_copy(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in d.items()}


C = TypeVar("C", bound=ComponentConfig)


def validate_section(cls: type[C], data: Mapping[str, Any], section: str) -> C:
    """Validate ``data`` against ``cls``; the error names the key and the valid keys."""
    try:
        return cls.model_validate(dict(data))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        key = f"{section}.{loc}" if section else loc
        if err["type"] == "extra_forbidden":
            sub: type[ComponentConfig] = cls
            for part in err["loc"][:-1]:
                ann = sub.model_fields[str(part)].annotation
                if isinstance(ann, type) and issubclass(ann, ComponentConfig):
                    sub = ann
            valid = ", ".join(sub.model_fields) or "(none)"
            raise ConfigError(f"unknown config key {quote(key)}; valid keys here: {valid}") from None
        raise ConfigError(f"bad value for config key {quote(key)}: {err['msg']} (got {quote(err.get('input'))})") from None


def build_run_config(data: Mapping[str, Any]) -> RunConfig:
    return validate_section(RunConfig, data, "")
