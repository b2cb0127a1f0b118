"""Cost of a model: parameters, FLOPs, inference throughput and peak memory.

:func:`profile_model` returns plain numbers for the run record and ``vpbench profile``.
Conventions (stated because published tables differ):

* ``flops_per_sequence`` counts one multiply-add as **2** FLOPs (the convention of
  ``torch.utils.flop_counter``); ``macs_per_sequence`` = flops / 2 counts it as **1**,
  which is what fvcore, and so OpenSTL's "FLOPs" column, reports. Both are for one
  sequence (batch 1: ``context`` frames in, ``horizon`` frames out, the whole rollout)
  and count only the matrix products, convolutions and attention torch has formulas for
  (with the CPU attention kernel, :mod:`vpbench.flopcount`: the training count's); elementwise
  operations (activations, gates, normalisation) are not counted, as in fvcore.
* ``throughput_seq_per_s`` is inference sequences per second (not frames), measured on
  one small fixed batch of ``batch_size`` random sequences after one warm-up call, as
  OpenSTL's FPS column (never on the test set).
* With ``macs_cache`` (a data root), the FLOP count is computed once per (model class,
  model config, frame shape, context, horizon, device type, vpbench and torch versions)
  and reused from a checked file in ``<root>/.vpbench-cache/macs/``: counting runs the
  whole rollout under the counter, which costs S-HR-VQVAE's sampler seconds.
* ``peak_memory_mb``: on CUDA, ``torch.cuda.max_memory_allocated`` during the timed
  calls (tensors only, the caching allocator's slack excluded). On CPU, the process's
  resident-set high-water mark (``VmHWM``) during the timed calls; Linux lets it be reset
  first, elsewhere it is the process's lifetime peak. Either way it includes the
  process's baseline (torch alone is several hundred MB), so compare CPU numbers between
  models, not with CUDA ones. 1 MB = 2**20 bytes.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import ConfigError
from .flopcount import flop_counter
from .interfaces import VideoModel

__all__ = ["MACS_STORE", "profile_model", "count_parameters", "count_flops", "flops_key"]


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """``(total, trainable)`` parameter counts; a shared tensor counts once, dead weights count."""
    params = list(model.parameters())  # de-duplicated by nn.Module
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def _context(model: VideoModel, batch: int, context: int, device: torch.device) -> torch.Tensor:
    c, h, w = model.frame_shape.as_tuple()
    gen = torch.Generator().manual_seed(0)
    return torch.rand(batch, context, c, h, w, generator=gen).to(device)


#: the kind of checked store (``<root>/.vpbench-cache/macs/``) that keeps FLOP counts
MACS_STORE = "macs"


def flops_key(model: VideoModel, *, context: int, horizon: int, device: torch.device) -> dict[str, Any]:
    """What a FLOP count depends on: model class and config, frame shape, lengths, device type, versions."""
    from . import __version__

    return {
        "kind": "flops/2",  # 2: CPU attention counted (vpbench.flopcount)
        "model": f"{type(model).__module__}.{type(model).__qualname__}",
        "config": model.config.model_dump(mode="json"),
        "frame_shape": list(model.frame_shape.as_tuple()),
        "context": context,
        "horizon": horizon,
        "device": device.type,
        "vpbench": __version__,
        "torch": torch.__version__,
    }


def count_flops(
    model: VideoModel, *, context: int, horizon: int, device: torch.device, macs_cache: Path | None = None
) -> int:
    """FLOPs (multiply-add = 2) of ``model.predict`` on one sequence; reused from ``macs_cache`` when given."""
    if macs_cache is not None:
        from .engine.cache import CheckedStore

        store = CheckedStore(macs_cache, MACS_STORE)
        key = flops_key(model, context=context, horizon=horizon, device=device)
        got = store.load(key)
        if got is not None and got.get("flops", np.empty(0)).shape == (1,):
            return int(got["flops"][0])
        flops = count_flops(model, context=context, horizon=horizon, device=device)
        store.save(key, {"flops": np.array([flops], dtype=np.int64)})
        return flops
    x = _context(model, 1, context, device)
    counter = flop_counter()
    with torch.no_grad(), counter:
        model.predict(x, horizon)
    return int(counter.get_total_flops())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_cpu_peak() -> bool:
    """Reset the kernel's resident-set high-water mark (Linux >= 4.0); False elsewhere."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _cpu_peak_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024.0


def profile_model(
    model: VideoModel,
    *,
    context: int,
    horizon: int,
    device: torch.device,
    batch_size: int = 8,
    repeats: int = 5,
    macs_cache: Path | None = None,
) -> dict[str, float | int]:
    """Measure a model's cost; the model is moved to ``device`` and left there in its mode.

    Returns ``params_total``, ``params_trainable``, ``flops_per_sequence`` (multiply-add =
    2 FLOPs), ``macs_per_sequence`` (multiply-add = 1, fvcore / OpenSTL),
    ``throughput_seq_per_s``, ``peak_memory_mb``, ``batch_size`` and ``repeats``; see the
    module docstring for the exact conventions (and ``macs_cache``).

    Raises:
        ConfigError: a non-positive context, horizon, batch size or repeat count.
    """
    for name, value in (("context", context), ("horizon", horizon), ("batch_size", batch_size), ("repeats", repeats)):
        if value < 1:
            raise ConfigError(f"profile: {name} must be at least 1, got {value}")
    was_training = model.training
    model.to(device).eval()
    try:
        total, trainable = count_parameters(model)
        flops = count_flops(model, context=context, horizon=horizon, device=device, macs_cache=macs_cache)

        x = _context(model, batch_size, context, device)
        with torch.no_grad():
            model.predict(x, horizon)  # warm-up: lazy init, cuDNN autotuning, allocator
            _sync(device)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            else:
                _reset_cpu_peak()
            start = time.perf_counter()
            for _ in range(repeats):
                model.predict(x, horizon)
            _sync(device)
            elapsed = time.perf_counter() - start
        if device.type == "cuda":
            peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
        else:
            peak_mb = _cpu_peak_mb()
    finally:
        model.train(was_training)
    return {
        "params_total": total,
        "params_trainable": trainable,
        "flops_per_sequence": flops,
        "macs_per_sequence": flops // 2,
        "throughput_seq_per_s": repeats * batch_size / max(elapsed, 1e-9),
        "peak_memory_mb": peak_mb,
        "batch_size": batch_size,
        "repeats": repeats,
    }
