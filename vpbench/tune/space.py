"""Search spaces in YAML: parse, validate against the run config, turn into Ray's domains.

A search file has two sections, both keyed like ``vpbench run --set``::

    fixed:                      # overrides every trial shares
      train.max_steps: 300
    space:                      # one distribution per searched key
      train.lr: {loguniform: [1.0e-4, 1.0e-2]}
      model.hidden: {choice: [16, 32]}
      train.batch_size: {uniform: [8, 16]}   # floats; use choice for integers
      seed: {grid: [0, 1]}                   # every value, crossed with num_samples
    tune:                       # optional: scheduler, searcher and their knobs
      scheduler: asha           # (vpbench.tune.settings.TuneSettings; flags win)

Ray is imported only by :meth:`SearchSpace.to_ray`, so parsing and validation work (and
fail early) without it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import load_yaml
from ..config import set_dotted as _set_dotted
from ..errors import ConfigError

__all__ = ["KINDS", "Domain", "SearchSpace", "load_search_space", "parse_search_space", "set_dotted", "plain"]

#: distribution name -> what its value must be (quoted in error messages)
KINDS: dict[str, str] = {
    "choice": "a non-empty list of values",
    "grid": "a non-empty list of values",
    "uniform": "[low, high] with low < high",
    "loguniform": "[low, high] with 0 < low < high",
}
_SECTIONS = ("model", "dataset", "train", "eval", "seed")


@dataclass(frozen=True)
class Domain:
    """One searched key: ``kind`` is a key of :data:`KINDS`, ``values`` its list or bounds."""

    key: str
    kind: str
    values: tuple[Any, ...]

    def corners(self) -> tuple[Any, ...]:
        """Values that validation tries: every listed value, or both bounds."""
        return self.values

    def to_ray(self) -> Any:
        from ray import tune

        if self.kind == "choice":
            return tune.choice(list(self.values))
        if self.kind == "grid":
            return tune.grid_search(list(self.values))
        low, high = self.values
        return tune.uniform(low, high) if self.kind == "uniform" else tune.loguniform(low, high)


@dataclass(frozen=True)
class SearchSpace:
    """The parsed file: fixed overrides and the searched domains, in file order."""

    fixed: dict[str, Any] = field(default_factory=dict)
    domains: tuple[Domain, ...] = ()
    source: str = "<search space>"
    #: the raw ``tune:`` section (checked by :func:`vpbench.tune.settings.resolve_settings`)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        return [d.key for d in self.domains]

    def to_ray(self) -> dict[str, Any]:
        """Ray Tune's ``param_space``: dotted key -> domain."""
        return {d.key: d.to_ray() for d in self.domains}

    def check_searcher(self, searcher: str) -> None:
        """A model-based searcher samples every key: a grid dimension is an error, in one line."""
        grids = [d.key for d in self.domains if d.kind == "grid"]
        if searcher != "random" and grids:
            raise ConfigError(
                f"{_where(self.source, grids[0])}: grid is not supported by the {searcher} searcher (it samples "
                f"every key); write {{choice: [...]}} instead, or use --searcher random"
            )

    def grid_size(self) -> int:
        """Trials per sample: the product of the grid lengths."""
        return math.prod(len(d.values) for d in self.domains if d.kind == "grid")


def _where(source: str, key: str) -> str:
    return f"search space {source}: key {key!r}"


def _check_key(source: str, key: object) -> str:
    if not isinstance(key, str) or key.split(".")[0] not in _SECTIONS or (key != "seed" and "." not in key):
        raise ConfigError(
            f"{_where(source, str(key))}: expected a dotted config key starting with one of "
            f"{', '.join(_SECTIONS)} (like train.lr or model.hidden)"
        )
    return key


def _number(source: str, key: str, kind: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{_where(source, key)}: {kind} expects {KINDS[kind]}, got {value!r} (not a number)")
    return float(value)


def _domain(source: str, key: str, spec: object) -> Domain:
    expected = "one of " + ", ".join(f"{{{k}: {v}}}" for k, v in KINDS.items())
    if not isinstance(spec, Mapping) or len(spec) != 1:
        raise ConfigError(f"{_where(source, key)}: expected a mapping with exactly one distribution, {expected}; got {spec!r}")
    kind, raw = next(iter(spec.items()))
    if kind not in KINDS:
        raise ConfigError(f"{_where(source, key)}: unknown distribution {kind!r}; expected {expected}")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{_where(source, key)}: {kind} expects {KINDS[kind]}, got {raw!r}")
    if kind in ("choice", "grid"):
        return Domain(key, kind, tuple(raw))
    if len(raw) != 2:
        raise ConfigError(f"{_where(source, key)}: {kind} expects {KINDS[kind]}, got {len(raw)} values")
    low, high = (_number(source, key, kind, v) for v in raw)
    if not low < high or (kind == "loguniform" and low <= 0):
        raise ConfigError(f"{_where(source, key)}: {kind} expects {KINDS[kind]}, got [{low:g}, {high:g}]")
    return Domain(key, kind, (low, high))


def parse_search_space(data: Mapping[str, Any], source: str = "<search space>") -> SearchSpace:
    """Validate the shape of a search file's content (keys and distributions, not values)."""
    unknown = sorted(set(data) - {"fixed", "space", "tune"})
    if unknown:
        raise ConfigError(f"search space {source}: unknown section {unknown[0]!r}; expected 'fixed', 'space' and 'tune'")
    settings = data.get("tune") or {}
    if not isinstance(settings, Mapping):
        raise ConfigError(f"search space {source}: 'tune' must map settings (scheduler, searcher, ...) to values, got {settings!r}")
    fixed = data.get("fixed") or {}
    space = data.get("space")
    if not isinstance(fixed, Mapping):
        raise ConfigError(f"search space {source}: 'fixed' must map config keys to values, got {fixed!r}")
    if not isinstance(space, Mapping) or not space:
        raise ConfigError(
            f"search space {source}: 'space' must map at least one config key to a distribution, "
            f"e.g. space: {{train.lr: {{loguniform: [1.0e-4, 1.0e-2]}}}}"
        )
    fixed_out = {_check_key(source, k): v for k, v in fixed.items()}
    domains = tuple(_domain(source, _check_key(source, k), v) for k, v in space.items())
    both = sorted(set(fixed_out) & {d.key for d in domains})
    if both:
        raise ConfigError(f"{_where(source, both[0])}: appears in both 'fixed' and 'space'; keep it in one")
    return SearchSpace(fixed_out, domains, source, dict(settings))


def load_search_space(path: Path) -> SearchSpace:
    """Read and parse a search file (see the module docstring for its format)."""
    return parse_search_space(load_yaml(path), str(path))


def plain(value: Any) -> Any:
    """A YAML-safe Python value (Ray may sample numpy scalars)."""
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, (list, dict, str)):
        return item()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def set_dotted(data: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`vpbench.config.set_dotted` with Ray's numpy scalars turned into plain values."""
    return _set_dotted(data, {k: plain(v) for k, v in values.items()})
