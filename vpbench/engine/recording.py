"""What every scoring command writes: the baselines it compares, the pictures, and the record.

``vpbench run``, ``vpbench eval`` and ``vpbench score`` differ in where predictions come from
(a trained model, a checkpoint, a file); the record around the numbers is built here once, so
the three cannot drift apart in what they state.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .. import __version__
from ..components import build_model
from ..fsutil import atomic_path
from ..hardware import git_info, hardware_info
from ..interfaces import VideoDataset, VideoModel
from ..plugins import Registry
from ..portable import portable_record
from ..records import ComponentInfo, MetricResult, RunRecord, TrainSummary
from ..visualize import plot_per_frame, save_strip
from .cache import CheckedStore
from .evaluate import EvalResult, Predictor, ScoreCache

__all__ = ["baseline_predictors", "score_cache", "count_params", "fixed_clips", "write_pictures", "profile_if", "build_record"]


def baseline_predictors(
    registry: Registry, names: Sequence[str], main: str, dataset: VideoDataset, device: torch.device
) -> dict[str, Predictor]:
    """The untrained comparison models (blank, copy-last, ...) named in ``names``, ``main`` left out."""
    out: dict[str, Predictor] = {}
    for name in names:
        if name != main and name in registry.models:
            model = build_model(registry, name, {}, dataset.frame_shape, dataset.context, dataset.horizon).to(device)
            out[name] = model.predict
    return out


def score_cache(
    predictors: dict[str, Predictor],
    main: str,
    dataset: VideoDataset,
    data_checksum: str,
    device: torch.device,
    batch_size: int,
    limit: int | None,
) -> ScoreCache:
    """The checked cache of the baselines' per-clip scores, in the data root.

    Only predictors without parameters other than ``main`` are cached (blank, copy-last,
    mean-context: pure functions of the context); the key names the test set (data
    checksum, dataset config, clips scored), the batch size, the device type and the
    vpbench and torch versions; the metric entries (protocol, name, version) are added by
    :func:`~vpbench.engine.evaluate.evaluate`.
    """
    names = set()
    for name, predict in predictors.items():
        owner = getattr(predict, "__self__", None)
        if name != main and isinstance(owner, VideoModel) and not any(True for _ in owner.parameters()):
            names.add(name)
    n_all = len(dataset.split("test"))  # type: ignore[arg-type]
    identity = {
        "dataset": dataset.name,
        "dataset_config": dataset.config.model_dump(mode="json"),
        "data_checksum": data_checksum,
        "context": dataset.context,
        "horizon": dataset.horizon,
        "clips": min(n_all, limit) if limit is not None else n_all,
        "batch_size": batch_size,
        "device": device.type,
        "vpbench": __version__,
        "torch": torch.__version__,
    }
    return ScoreCache(CheckedStore(dataset.data_root, "predictor-scores"), identity, frozenset(names))


def count_params(model: VideoModel) -> tuple[int, int]:
    """All parameters, and those some training stage optimises."""
    total = sum(p.numel() for p in model.parameters())
    trained = {id(p): p.numel() for s in model.stages() for p in s.parameters()}
    return total, sum(trained.values())


def fixed_clips(dataset: VideoDataset, available: int | None = None) -> tuple[list[int], Tensor]:
    """The dataset's fixed test clips (those below ``available`` when given), stacked."""
    test = dataset.split("test")
    n = len(test) if available is None else available  # type: ignore[arg-type]
    ids = [i for i in dataset.fixed_test_sequences if 0 <= i < n]
    return ids, torch.stack([test[i] for i in ids]).float() if ids else torch.empty(0)


def _u8(x: Tensor) -> np.ndarray:
    return (x.nan_to_num().clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)


def write_pictures(
    root: Path,
    dataset: VideoDataset,
    predictors: dict[str, Predictor],
    results: dict[str, EvalResult],
    main: str,
    *,
    model: VideoModel | None = None,
    served: Tensor | None = None,
) -> dict[str, Any]:
    """Strips and ``fixed_sequences.npz`` of the fixed test clips, the per-frame plot, the model's figures.

    ``served`` holds ``main``'s predictions made elsewhere (``vpbench score``); otherwise
    ``main`` is one of ``predictors`` and ``model`` (when given) adds its own artifacts.
    """
    ids, clips = fixed_clips(dataset, None if served is None else served.shape[0])
    out: dict[str, Any] = {"fixed_sequences": ids}
    if ids:
        T, S = dataset.context, dataset.horizon
        preds: dict[str, Tensor] = {main: served[ids].float()} if served is not None else {}
        device = model.device if model is not None else "cpu"
        with torch.no_grad():
            ctx = clips[:, :T].to(device)
            preds.update({name: p(ctx, S).float().cpu() for name, p in predictors.items() if name not in preds})
        arrays = {"ids": np.array(ids), "clips": _u8(clips), **{f"pred_{k}": _u8(v) for k, v in preds.items()}}
        root.mkdir(parents=True, exist_ok=True)
        with atomic_path(root / "fixed_sequences.npz") as tmp, tmp.open("wb") as fh:
            np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]
        for j, i in enumerate(ids):
            rows = [("context", clips[j, :T].numpy()), ("truth", clips[j, T : T + S].numpy())]
            rows += [(name, v[j].numpy()) for name, v in preds.items()]
            save_strip(root / "strips" / f"test_{i:05d}.png", rows)
        if model is not None:
            out.update(model.artifacts(root / "artifacts", clips[:, :T].flatten(0, 1).to(model.device)))
    curves: dict[str, dict[str, list[float]]] = {}
    for name, r in results.items():
        for protocol, per_metric in r.metrics.items():
            for metric, value in per_metric.items():
                assert isinstance(value, MetricResult)
                if value.level == "set" or not value.per_frame:
                    continue  # one value for the whole set: no curve
                label = metric if protocol == "openstl" else f"{metric} ({protocol})"
                curves.setdefault(label, {})[name] = value.per_frame
    if curves:
        plot_per_frame(root / "per_frame.png", curves, f"{main} on {dataset.name}: metrics per predicted frame")
    return out


def profile_if(enabled: bool, model: VideoModel, dataset: VideoDataset, device: torch.device, batch_size: int) -> dict[str, Any]:
    """Parameters, MACs and throughput of ``model`` when ``eval.profile`` asks for them.

    MACs are counted once per (model, config, frame shape) and reused from the data root's
    checked cache; throughput is timed on one fixed batch of at most 8 random sequences.
    """
    if not enabled:
        return {}
    from ..profiling import profile_model

    return profile_model(
        model, context=dataset.context, horizon=dataset.horizon, device=device,
        batch_size=min(8, batch_size), repeats=2, macs_cache=dataset.data_root,
    )


def build_record(
    *,
    run_id: str,
    argv: Sequence[str],
    seed: int,
    model: ComponentInfo,
    dataset_name: str,
    dataset: VideoDataset,
    registry: Registry,
    params: tuple[int, int],
    train: TrainSummary,
    results: dict[str, EvalResult],
    main: str,
    unavailable: dict[str, str],
    artifacts: dict[str, Any],
    device: torch.device,
    started: float,
    profile: dict[str, Any] | None = None,
    flags: Sequence[str] = (),
    data_checksum: str | None = None,
) -> RunRecord:
    """The versioned record of one scoring: code, config, data, hardware, and the numbers.

    ``started`` is the ``time.monotonic()`` reading when the command began (its wall time);
    ``data_checksum``, when the caller already has it, saves computing it again.
    """
    scored = results[main]
    record = RunRecord(
        run_id=run_id,
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        vpbench_version=__version__,
        git=git_info(),
        argv=list(argv),
        seed=seed,
        model=model,
        dataset=ComponentInfo(
            name=dataset_name,
            package=registry.datasets.entry(dataset_name).package,
            config=dataset.config.model_dump(mode="json"),
        ),
        data_checksum=data_checksum if data_checksum is not None else dataset.checksum(),
        data_info=dataset.describe(),
        frame_shape=dataset.frame_shape.as_tuple(),
        context=dataset.context,
        horizon=dataset.horizon,
        params_total=params[0],
        params_trainable=params[1],
        train=train,
        test_sequences=scored.sequences,
        metrics=scored.metrics,
        unavailable_metrics=unavailable,
        nan_frames=scored.nan_frames,
        baselines={k: v.metrics for k, v in results.items() if k != main},
        artifacts=artifacts,
        profile=profile or {},
        hardware=hardware_info(device),
        wall_time_s=round(time.monotonic() - started, 2),
        flags=list(flags),
    )
    # the data root's paths (argv, data_info) are named relative to it here, where it is known;
    # write_record makes the rest portable relative to the run folder
    known = portable_record(record.to_json(), run_dir=None, data_root=dataset.data_root, elsewhere=False)
    return RunRecord.model_validate(known)
