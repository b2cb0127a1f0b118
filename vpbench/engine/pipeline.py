"""The scoring pipeline that ``vpbench run``, ``vpbench eval`` and ``vpbench score`` share.

Each command differs only in where the predictions come from (a model it trains, a saved
checkpoint, a file) and in what it writes around them; the sequence is one:

1. :func:`choose_metrics`: build the metrics of ``eval.*``, say which are unavailable, and
   refuse a record that would measure nothing; :func:`check_samples`: ``eval.samples``;
2. :func:`preflight_scoring`: the contract of the dataset, the predictor and every metric on
   one batch, before anything is written (``run`` then trains);
3. :func:`score_and_record`: the baselines, their checked score cache, evaluation (per-frame
   and set-level metrics, several draws of a stochastic model), the pictures, the record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..components import BoundMetric, build_metrics
from ..config import EvalConfig
from ..errors import ConfigError
from ..interfaces import VideoDataset, VideoModel
from ..plugins import Registry
from ..records import ComponentInfo, RunRecord, TrainSummary, write_record
from .evaluate import EvalResult, Predictor, evaluate
from .guards import check_measured
from .preflight import component, metric_policy, preflight
from .recording import baseline_predictors, build_record, count_params, profile_if, score_cache, write_pictures

__all__ = ["Metrics", "Subject", "choose_metrics", "check_samples", "preflight_scoring", "score_and_record"]

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Metrics:
    """The metrics a command scores with, and those unavailable here (name -> why)."""

    bound: list[BoundMetric]
    unavailable: dict[str, str]


@dataclass
class Subject:
    """What is scored and how the record names it.

    ``predict`` makes its predictions; ``model`` is the model behind them when there is one
    (its figures, profile and parameter count enter the record); ``served`` holds predictions
    made elsewhere (``vpbench score``), drawn for the pictures; ``draws``: futures per clip.
    """

    name: str
    predict: Predictor
    info: ComponentInfo
    model: VideoModel | None = None
    served: Tensor | None = None
    params: tuple[int, int] = (0, 0)
    draws: int = 1

    @classmethod
    def of_model(cls, registry: Registry, name: str, model: VideoModel, draws: int = 1) -> Subject:
        """A registered model's subject: its predictions, package, resolved config and size."""
        config = model.config.model_dump(mode="json")
        info = ComponentInfo(name=name, package=registry.models.entry(name).package, config=config)
        return cls(name=name, predict=model.predict, info=info, model=model, params=count_params(model), draws=draws)


def choose_metrics(registry: Registry, cfg: EvalConfig, echo: Echo) -> Metrics:
    """The metrics of ``eval.metrics`` under ``eval.protocols``; at least one per protocol."""
    bound, unavailable = build_metrics(
        registry, cfg.metrics, cfg.protocols, warn=lambda m: echo(f"warning: {m}"), options=cfg.metric_options
    )
    for name, why in unavailable.items():
        echo(f"warning: metric {name} unavailable: {why}")
    check_measured(bound, unavailable, cfg.protocols, registry)
    return Metrics(bound, unavailable)


def check_samples(cfg: EvalConfig, name: str, model: VideoModel | None) -> int:
    """The draws per clip of ``eval.samples``: more than one only for a stochastic model."""
    if cfg.samples > 1 and (model is None or not model.stochastic):
        what = f"model {name!r} is deterministic as configured" if model is not None else f"predictions {name!r} are one file"
        raise ConfigError(
            f"eval.samples={cfg.samples} draws several futures per clip, but {what} (every draw would be the same); "
            f"set eval.samples=1"
        )
    return cfg.samples


def preflight_scoring(
    registry: Registry,
    dataset: VideoDataset,
    dataset_name: str,
    who: str,
    predict: Predictor,
    metrics: Metrics,
    cfg: EvalConfig,
    device: torch.device,
    echo: Echo,
    *,
    models: Sequence[torch.nn.Module] = (),
    prediction_bounds: tuple[float, float] = (0.0, 1.0),
) -> Metrics:
    """The pre-flight of every scoring command; the metrics left after it (a broken one that
    nobody asked for by name is left out with a warning, and so is one that refuses these
    frames: the record lists it as unavailable, with why)."""
    left_out: dict[str, str] = {}
    kept = preflight(
        dataset,
        component(registry, "dataset", dataset_name),
        [(who, predict)],
        [(component(registry, "metric", m.name), m) for m in metrics.bound],
        device,
        models=models,
        prediction_bounds=prediction_bounds,
        **metric_policy(registry, metrics.bound, cfg.metrics, lambda m: echo(f"warning: {m}")),
        left_out=left_out,
    )
    return Metrics(kept, {**metrics.unavailable, **left_out})


@dataclass
class Scored:
    """What :func:`score_and_record` made: the record (written) and every predictor's results."""

    record: RunRecord
    results: dict[str, EvalResult]


def score_and_record(
    *,
    registry: Registry,
    dataset: VideoDataset,
    dataset_name: str,
    subject: Subject,
    metrics: Metrics,
    cfg: EvalConfig,
    seed: int,
    device: torch.device,
    compare: Sequence[str],
    out: Path,
    argv: Sequence[str],
    train: TrainSummary,
    started: float,
    progress: bool = True,
    flags: Callable[[Mapping[str, EvalResult]], list[str]] | None = None,
    artifacts: Mapping[str, Any] | None = None,
    limit: int | None = None,
) -> Scored:
    """Score ``subject`` beside the ``compare`` baselines on the test split; write ``out/record.json``.

    The baselines' per-clip scores come from the data root's checked cache when it holds them
    (:func:`~vpbench.engine.recording.score_cache`). ``flags`` sees the results before the
    record is built; ``artifacts`` are added to the record's; ``limit``: clips scored
    (default ``eval.max_sequences``).
    """
    main = subject.name
    predictors: dict[str, Predictor] = {main: subject.predict}
    predictors.update(baseline_predictors(registry, compare, main, dataset, device))
    limit = cfg.max_sequences if limit is None else limit
    data_checksum = dataset.checksum()  # once: the baselines' score cache and the record
    cache = score_cache(predictors, main, dataset, data_checksum, device, cfg.batch_size, limit)
    results = evaluate(
        predictors,
        dataset.split("test"),
        metrics.bound,
        context=dataset.context,
        horizon=dataset.horizon,
        device=device,
        batch_size=cfg.batch_size,
        limit=limit,
        progress=progress,
        cache=cache,
        draws={main: subject.draws},
        seed=seed,
    )
    written = write_pictures(out, dataset, predictors, results, main, model=subject.model, served=subject.served)
    written.update(artifacts or {})
    if subject.draws > 1:
        written["samples"] = {"draws": subject.draws, "first_draw_as": "the plain protocol keys"}
    profile = (
        profile_if(cfg.profile, subject.model, dataset, device, cfg.batch_size) if subject.model is not None else None
    )
    record = build_record(
        run_id=out.name,
        argv=argv,
        seed=seed,
        model=subject.info,
        dataset_name=dataset_name,
        dataset=dataset,
        registry=registry,
        params=subject.params,
        train=train,
        results=results,
        main=main,
        unavailable=metrics.unavailable,
        artifacts=written,
        device=device,
        started=started,
        profile=profile,
        flags=flags(results) if flags is not None else (),
        data_checksum=data_checksum,
    )
    write_record(record, out / "record.json")
    return Scored(record, results)
