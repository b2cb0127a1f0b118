"""Suite files: models x datasets x seeds with common and per-entry overrides, expanded to runs.

A suite is YAML (see ``configs/suites/``)::

    name: glyphs-tiny                 # optional; default: the file's stem
    datasets: [glyphs]
    seeds: [0, 1]
    set: {train.max_steps: 60}        # overrides every run shares (dotted keys, as --set)
    entries:
      - model: copy-last
      - name: convlstm-tiny           # the run folders' name; default: the model
        model: convlstm
        config: convlstm-glyphs.yaml  # a file under configs/ (or beside the suite); default: configs/<model>-<dataset>.yaml
        set: {model.hidden: 8}        # this entry's overrides
        seeds: [0, 1, 2]              # optional: replaces the suite's seeds (datasets likewise)

Precedence, lowest first: the config file, the suite's ``set``, the entry's ``set``, the
command line's ``--set``, then the seed. Every run's config is validated against the model's
and dataset's typed configs before anything runs. Unknown keys are errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config import apply_overrides, build_run_config, configs_dir, default_config_file, load_yaml, set_dotted, validate_section
from ..errors import ConfigError
from ..names import MAX_LEN, check_slug, quote

#: entry names become folder names and run ids (``<entry>-seed-<n>``, at most MAX_LEN characters)
ENTRY_MAX_LEN = MAX_LEN - 20

__all__ = ["EntrySpec", "SuiteSpec", "PlannedRun", "load_suite", "parse_suite", "expand_suite", "resolved_config"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EntrySpec(_Strict):
    """One row of the benchmark: a model with its config, run on each dataset and seed."""

    model: str = Field(description="model name (see `vpbench plugins`)")
    name: str | None = Field(None, description="name of this entry's run folders; default: the model")
    config: str | None = Field(None, description="YAML overrides file (under configs/ or beside the suite); default configs/<model>-<dataset>.yaml")
    set: dict[str, Any] = Field(default_factory=dict, description="this entry's overrides, dotted keys as in --set")
    datasets: list[str] | None = Field(None, description="replaces the suite's datasets for this entry")
    seeds: list[int] | None = Field(None, description="replaces the suite's seeds for this entry")

    @property
    def label(self) -> str:
        return self.name or self.model


class SuiteSpec(_Strict):
    """A benchmark suite: entries x datasets x seeds."""

    name: str | None = Field(None, description="the suite's name; default: the file's stem")
    description: str = Field("", description="free text shown when the suite starts")
    datasets: list[str] = Field(default_factory=list, description="datasets every entry runs on")
    seeds: list[int] = Field(default_factory=lambda: [0], description="seeds every entry runs with")
    set: dict[str, Any] = Field(default_factory=dict, description="overrides every run shares, dotted keys as in --set")
    compare: list[str] | None = Field(None, description="baselines scored inside each run (default: blank, copy-last, mean-context)")
    entries: list[EntrySpec] = Field(min_length=1, description="the models to run")


@dataclass(frozen=True)
class PlannedRun:
    """One run of a suite: where it goes and the nested overrides it runs with."""

    entry: str
    model: str
    dataset: str
    seed: int
    #: nested run-config overrides (config file, suite, entry, --set, seed), as a config file holds them
    overrides: dict[str, Any]
    config_source: str | None

    @property
    def name(self) -> str:
        """The run folder's name, which is also the record's run id."""
        return f"{self.entry}-seed-{self.seed}"

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.name}"

    def run_dir(self, out: Path) -> Path:
        return out / self.dataset / self.name


def _key_error(source: str, exc: ValidationError) -> ConfigError:
    """The first problem of a suite file, on one line, naming the key and the fix."""
    errors = exc.errors()
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])  # a misspelt key explains a missing one
    loc = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        model: type[BaseModel] = EntrySpec if "entries" in [str(p) for p in err["loc"][:1]] else SuiteSpec
        valid = ", ".join(model.model_fields)
        return ConfigError(f"suite {source}: unknown key {quote(loc)}; valid keys here: {valid}")
    if err["type"] == "missing":
        return ConfigError(f"suite {source}: key {quote(loc)} is required; add it (see configs/suites/ for examples)")
    return ConfigError(f"suite {source}: bad value for key {quote(loc)}: {err['msg']} (got {quote(err.get('input'))})")


def parse_suite(data: Mapping[str, Any], source: str) -> SuiteSpec:
    """Validate the structure of a suite (names of plugins are checked by :func:`expand_suite`)."""
    try:
        suite = SuiteSpec.model_validate(dict(data))
    except ValidationError as exc:
        raise _key_error(source, exc) from None
    if suite.name is not None:
        check_slug(f"suite {source}: name", suite.name, "it names the output folder runs/bench-<name>; give a plain name")
    labels = [e.label for e in suite.entries]
    for label in labels:
        check_slug(f"suite {source}: entry name", label, "it names the run folders; set a plain `name:`", ENTRY_MAX_LEN)
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise ConfigError(f"suite {source}: entries share the name {dupes[0]!r}; give each a distinct `name:`")
    for e in suite.entries:
        if not (e.datasets if e.datasets is not None else suite.datasets):
            raise ConfigError(f"suite {source}: entry {e.label!r} has no datasets; list them under `datasets:`")
        seeds = e.seeds if e.seeds is not None else suite.seeds
        if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
            raise ConfigError(f"suite {source}: entry {e.label!r} needs distinct seeds >= 0, got {quote(seeds)}")
    return suite


def load_suite(path: Path) -> SuiteSpec:
    if not path.is_file():
        raise ConfigError(f"suite file {path} does not exist; see configs/suites/ for examples")
    return parse_suite(load_yaml(path), str(path))


def _config_file(entry: EntrySpec, model: str, dataset: str, suite_dir: Path | None) -> Path | None:
    if entry.config is None:
        return default_config_file(model, dataset)
    given = Path(entry.config)
    candidates = [given] if given.is_absolute() else [*([suite_dir / given] if suite_dir else []), configs_dir() / given, given]
    for c in candidates:
        if c.is_file():
            return c
    raise ConfigError(
        f"entry {entry.label!r}: config file {quote(entry.config)} not found (looked in: {', '.join(str(c) for c in candidates)})"
    )


def resolved_config(registry: Any, model: str, dataset: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The fully resolved config a run writes to ``run.yaml`` (component defaults included)."""
    cfg = build_run_config(overrides)
    model_cfg = validate_section(registry.models.get(model).load().Config, cfg.model, "model")
    dataset_cfg = validate_section(registry.datasets.get(dataset).load().Config, cfg.dataset, "dataset")
    return {**cfg.model_dump(mode="json"), "model": model_cfg.model_dump(mode="json"), "dataset": dataset_cfg.model_dump(mode="json")}


def expand_suite(
    suite: SuiteSpec, registry: Any, source: str, sets: Sequence[str] = (), suite_dir: Path | None = None
) -> list[PlannedRun]:
    """Every run of the suite (entries x datasets x seeds, in that order), each config validated."""
    runs: list[PlannedRun] = []
    for name in suite.compare or []:
        if name not in registry.models:
            valid = ", ".join(sorted(registry.models.names()))
            raise ConfigError(f"suite {source}: unknown baseline {quote(name)} under compare:; valid models: {valid} (or compare: [])")
    for entry in suite.entries:
        registry.models.get(entry.model)  # an unknown name lists the valid ones
        datasets = entry.datasets if entry.datasets is not None else suite.datasets
        seeds = entry.seeds if entry.seeds is not None else suite.seeds
        for dataset in datasets:
            registry.datasets.get(dataset)
            try:
                file = _config_file(entry, entry.model, dataset, suite_dir)
                base = load_yaml(file) if file is not None else {}
                base = set_dotted(set_dotted(base, suite.set), entry.set)
                base = apply_overrides(base, sets)
                for seed in seeds:
                    overrides = set_dotted(base, {"seed": seed})
                    resolved_config(registry, entry.model, dataset, overrides)  # fails here, before anything runs
                    runs.append(PlannedRun(entry.label, entry.model, dataset, seed, overrides, str(file) if file else None))
            except ConfigError as exc:
                msg = str(exc).removeprefix(f"entry {entry.label!r}: ")
                raise ConfigError(f"suite {source}: entry {entry.label!r} on {dataset}: {msg}") from None
    return runs
