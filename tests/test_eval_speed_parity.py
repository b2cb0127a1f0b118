"""Issue 23: the fast evaluation gives the numbers of the former one.

Metrics computed once (LPIPS target features shared, pixel metrics in float64 chunks, SSIM
in one buffer), the baselines' per-clip scores reused from a checked cache, the FLOP count
reused, the glyphs checksum computed once: each against the former path
(``vpbench_metrics.legacy``, ``GlyphsDataset.regenerated_checksum``, no cache).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from vpbench.components import BoundMetric, build_dataset, build_metrics, build_model
from vpbench import FrameShape
from vpbench.engine.cache import CheckedStore
from vpbench.engine.checkpoint import load_checkpoint, load_model_state
from vpbench.engine.evaluate import EvalResult, ScoreCache, evaluate
from vpbench.engine.recording import baseline_predictors, score_cache
from vpbench.engine.run import RunRequest, execute_run
from vpbench.profiling import count_flops
from vpbench.records import read_record
from vpbench_glyphs.dataset import GlyphsDataset
from vpbench_metrics.legacy import legacy_metric
from vpbench_metrics.lpips_metric import LPIPS
from vpbench_metrics.pixel import MAE, MSE, PSNR

BASELINES = ("blank", "copy-last", "mean-context")


def _frames(n: int = 30, s: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    true = (torch.rand(n, s, 1, 64, 64, generator=g) * 255).round() / 255
    pred = true + 0.4 * torch.randn(n, s, 1, 64, 64, generator=g)  # unclipped, beyond [0, 1]
    pred[0, 0, 0, 5, 5] = float("nan")
    pred[1, 1] = true[1, 1]  # an exact frame: PSNR's cap
    return pred, true


@pytest.mark.parametrize("protocol", ["openstl", "standard"])
def test_pixel_metrics_equal_the_whole_batch_float64_values(protocol: str) -> None:
    pred, true = _frames()  # 300 frames: more than one float64 chunk
    for metric in (MSE(protocol), MAE(protocol), PSNR(protocol)):
        new, old = metric.per_frame(pred, true), legacy_metric(metric).per_frame(pred, true)
        assert new.dtype == torch.float64 and torch.isnan(new[0, 0]) and torch.isnan(old[0, 0])
        torch.testing.assert_close(new, old, rtol=1e-7, atol=0, equal_nan=True, msg=metric.name)
        assert torch.equal(new.nan_to_num(), old.nan_to_num()), metric.name  # in fact bit for bit


def test_ssim_equals_the_former_implementation() -> None:
    from vpbench_metrics.ssim import SSIM

    pred, true = _frames(12)
    for protocol in ("openstl", "standard"):
        m = SSIM(protocol)
        np.testing.assert_allclose(m.per_frame(pred, true), legacy_metric(m).per_frame(pred, true), rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [(3, 5, 3, 40, 52), (2, 3, 1, 128, 128), (1, 2, 1, 7, 300)])
def test_ssim_flat_filters_equal_the_former_scipy_filters(shape: tuple[int, ...]) -> None:
    """Partial last chunks, several channels, one frame per chunk, the smallest side = the window."""
    from vpbench_metrics.ssim import SSIM

    g = torch.Generator().manual_seed(5)
    true = torch.rand(shape, generator=g, dtype=torch.float64)
    pred = true + 0.3 * torch.randn(shape, generator=g, dtype=torch.float64)
    pred[0, 0, 0, :3] = 0.5  # a flat patch: zero variance in both
    true[0, 0, 0, :3] = 0.5
    for protocol in ("openstl", "standard"):
        if protocol == "standard" and min(shape[-2:]) < 11:
            continue
        m = SSIM(protocol)
        new, old = m.per_frame(pred, true), legacy_metric(m).per_frame(pred, true)
        torch.testing.assert_close(new, old, rtol=0, atol=1e-12, msg=protocol)
        torch.testing.assert_close(new, SSIM(protocol, route="torch").per_frame(pred, true), rtol=0, atol=1e-12)


def test_lpips_target_features_once_equal_one_call_per_prediction() -> None:
    metric = LPIPS()
    if metric.available():
        pytest.skip(f"LPIPS unavailable: {metric.available()}")
    pred, true = _frames(3, 4)
    preds = [pred.nan_to_num(), true.flip(0), torch.zeros_like(true)]
    many = metric.per_frame_many(preds, true)
    for p, got in zip(preds, many):
        assert torch.equal(got, metric.per_frame(p, true))  # independent of what is scored beside it
        torch.testing.assert_close(got, legacy_metric(metric).per_frame(p, true), rtol=0, atol=1e-6)


class _Counted:
    def __init__(self, predict):  # type: ignore[no-untyped-def]
        self.predict, self.calls = predict, 0

    def __call__(self, ctx: torch.Tensor, horizon: int) -> torch.Tensor:
        self.calls += 1
        return self.predict(ctx, horizon)


def _setup(registry, tmp_path: Path, names=("mse", "mae", "psnr", "ssim")):  # type: ignore[no-untyped-def]
    ds = build_dataset(registry, "glyphs", {"test_length": 6}, tmp_path / "root", 0)
    metrics, _ = build_metrics(registry, list(names), ["openstl", "standard"])
    preds = baseline_predictors(registry, BASELINES, "model", ds, torch.device("cpu"))
    return ds, metrics, preds


def _run(ds, metrics, predictors, cache=None):  # type: ignore[no-untyped-def]
    return evaluate(
        predictors, ds.split("test"), metrics, context=10, horizon=10, device=torch.device("cpu"),
        batch_size=4, progress=False, cache=cache,
    )


def _numbers(res: dict[str, EvalResult]) -> dict[str, object]:
    return {k: (v.sequences, v.nan_frames, {p: {m: r.model_dump() for m, r in d.items()} for p, d in v.metrics.items()})
            for k, v in res.items()}


def test_baseline_scores_cache_gives_the_uncached_numbers_and_recomputes_when_stale(registry, tmp_path, monkeypatch):
    ds, metrics, preds = _setup(registry, tmp_path)
    model = _Counted(lambda ctx, s: ctx[:, -1:].repeat(1, s, 1, 1, 1) * 0.9)
    counted = {name: _Counted(p) for name, p in preds.items()}
    uncached = _numbers(_run(ds, metrics, {"model": model, **counted}))
    cache = score_cache({"model": model.predict, **preds}, "model", ds, ds.checksum(), torch.device("cpu"), 4, None)
    assert cache.names == frozenset(BASELINES)  # parameter-free predictors only, never the model
    cache = dataclasses.replace(cache)  # frozen: the same cache serves every call below

    def calls() -> list[int]:
        return [c.calls for c in counted.values()]

    before = calls()
    assert _numbers(_run(ds, metrics, {"model": model, **counted}, cache)) == uncached  # miss: scored, stored
    assert calls() == [b + 2 for b in before]  # 2 batches each
    files = sorted(cache.store.dir.glob("*.npz"))
    assert len(files) == 3
    assert _numbers(_run(ds, metrics, {"model": model, **counted}, cache)) == uncached  # hit
    assert calls() == [b + 2 for b in before]  # served from the cache: no baseline ran

    files[0].write_bytes(files[0].read_bytes()[:-40] + bytes(40))  # corrupted
    files[1].write_bytes(b"not an npz")
    assert _numbers(_run(ds, metrics, {"model": model, **counted}, cache)) == uncached
    assert sorted(calls()) == sorted([b + 4 for b in before[:2]] + [before[2] + 2])  # two recomputed
    assert all(cache.store.load(cache.key(n, [f"{m.protocol}/{m.name}/{m.metric.version}" for m in metrics]))
               is not None for n in BASELINES)  # rewritten valid

    monkeypatch.setattr(MSE, "version", "2")  # a new metric version: every baseline recomputed
    now = calls()
    assert _numbers(_run(ds, metrics, {"model": model, **counted}, cache)) == uncached
    assert calls() == [c + 2 for c in now]

    other = ScoreCache(cache.store, {**cache.identity, "data_checksum": "sha256:other"}, cache.names)
    now = calls()
    _run(ds, metrics, {"model": model, **counted}, other)  # another test set: recomputed
    assert calls() == [c + 2 for c in now]


def test_a_metric_without_version_is_never_cached(registry, tmp_path, monkeypatch):
    ds, metrics, preds = _setup(registry, tmp_path, names=("mse",))
    monkeypatch.setattr(MSE, "version", "")
    cache = score_cache(preds, "model", ds, ds.checksum(), torch.device("cpu"), 4, None)
    _run(ds, metrics, preds, cache)
    assert not cache.store.dir.exists()


def test_checked_store_refuses_a_file_of_another_key(tmp_path):
    store = CheckedStore(tmp_path, "x")
    assert store.save({"a": 1}, {"v": np.arange(3.0)})
    assert np.array_equal(store.load({"a": 1})["v"], np.arange(3.0))  # type: ignore[index]
    store.path({"a": 2}).write_bytes(store.path({"a": 1}).read_bytes())  # copied under another name
    assert store.load({"a": 2}) is None
    assert not list(store.dir.glob(".*tmp"))  # no temporary file left


def test_flops_are_counted_once_per_model_config_and_shape(registry, tmp_path):
    model = build_model(registry, "convlstm", {"num_layers": 1, "hidden": 8, "patch_size": 4}, FrameShape(1, 64, 64), 10, 10)
    counted = _Counted(model.predict)
    model.predict = counted  # type: ignore[method-assign]
    cpu = torch.device("cpu")
    first = count_flops(model, context=10, horizon=10, device=cpu, macs_cache=tmp_path)
    assert first == count_flops(model, context=10, horizon=10, device=cpu) and counted.calls == 2
    assert count_flops(model, context=10, horizon=10, device=cpu, macs_cache=tmp_path) == first
    assert counted.calls == 2  # reused
    assert count_flops(model, context=10, horizon=5, device=cpu, macs_cache=tmp_path) < first  # another key
    for f in (tmp_path / ".vpbench-cache" / "macs").glob("*.npz"):
        f.write_bytes(b"garbage")
    assert count_flops(model, context=10, horizon=10, device=cpu, macs_cache=tmp_path) == first
    assert counted.calls == 4  # recounted


def test_glyphs_checksum_is_the_regenerated_one_and_clips_are_unchanged(tmp_path):
    def ds(**cfg: object) -> GlyphsDataset:
        return GlyphsDataset(GlyphsDataset.Config(test_length=5, **cfg), tmp_path, 0)  # type: ignore[arg-type]

    a = ds()
    assert a.checksum() == a.regenerated_checksum() == ds().checksum()
    assert ds(speed=0.2).checksum() == ds(speed=0.2).regenerated_checksum() != a.checksum()
    fresh = a._clips(2_000_003, 5)  # no memo
    test = a.split("test")
    assert test is a.split("test")
    for i in range(5):
        assert torch.equal(test[i], fresh[i])


def test_trained_checkpoint_scores_equal_the_former_evaluation(registry, small_glyphs, tmp_path):
    """The record of a trained tiny model (new path, baselines cached on a second run)
    carries the numbers the former evaluation gives on the same checkpoint and clips."""
    sets = small_glyphs + ["train.max_steps=4", "train.batch_size=4", "train.eval_every=2", "train.val_sequences=4",
                           "eval.batch_size=4", "eval.profile=false", "eval.protocols=[openstl,standard]"]

    def run(out: str):  # type: ignore[no-untyped-def]
        req = RunRequest(model="tinyconv", dataset="glyphs", sets=sets, out=tmp_path / out, device="cpu", progress=False)
        return execute_run(req, registry, echo=lambda s: None)

    run("first")  # fills the baselines' cache
    record, run_dir = run("second")
    assert len(list((tmp_path / "data" / ".vpbench-cache" / "predictor-scores").glob("*.npz"))) == 3  # conftest's data root
    rec = read_record(run_dir / "record.json")
    ds = build_dataset(registry, "glyphs", {"train_length": 64, "val_length": 8, "test_length": 8}, Path("unused"), 0)
    model = build_model(registry, "tinyconv", rec.model.config, ds.frame_shape, 10, 10)
    best = run_dir / "checkpoints" / "best.pt"
    load_model_state(model, load_checkpoint(best, model="tinyconv", model_config=rec.model.config)["state_dict"], best)
    model.eval()
    metrics, _ = build_metrics(registry, None, ["openstl", "standard"])
    legacy = [BoundMetric(m.name, m.protocol, m.higher_is_better, legacy_metric(m.metric)) for m in metrics]
    old = _run(ds, legacy, {"tinyconv": model.predict, **baseline_predictors(registry, BASELINES, "tinyconv", ds, torch.device("cpu"))})
    assert rec.data_checksum == ds.regenerated_checksum()
    fmt = {"mse": ".2f", "mae": ".2f", "psnr": ".2f", "ssim": ".4f", "lpips": ".4f"}
    for name, got in [("tinyconv", rec.metrics), *rec.baselines.items()]:
        for protocol, per_metric in got.items():
            for metric, value in per_metric.items():
                want = old[name].metrics[protocol][metric]
                tol = 1e-6 if metric == "lpips" else 1e-9  # LPIPS: float32 AlexNet, batched differently
                np.testing.assert_allclose(value.per_frame, want.per_frame, rtol=tol, err_msg=f"{name} {protocol} {metric}")
                assert format(value.mean, fmt[metric]) == format(want.mean, fmt[metric])
