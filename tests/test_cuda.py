"""The CUDA paths of the harness: seeded determinism, exact resume, mixed precision, metric parity.

Each test is parametrised over devices. The ``cpu`` variants run everywhere (CI), so the test
code itself is exercised on every commit; the ``cuda`` variants carry the ``cuda`` marker and
skip, saying why, where no CUDA GPU is visible. ``benchmarks/device_check.sh`` runs
``pytest -m cuda tests/test_cuda.py`` on a GPU machine (see docs/device.md).

Models are every registered trainable model in its tiny variant (``ModelSpec.tiny``) on the
embedded ``glyphs`` dataset, so models added later are covered without editing this file.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any

# cuBLAS reads this once, before its first call in the process: set it before any test runs
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import pytest
import torch

from vpbench.components import build_dataset, build_metrics
from vpbench.engine.run import RunRequest, execute_run
from vpbench.plugins import get_registry
from vpbench.records import RunRecord

HAS_CUDA = torch.cuda.is_available()
NO_CUDA = "no CUDA GPU visible: this variant runs on a GPU machine (benchmarks/device_check.sh, docs/device.md)"
CUDA = pytest.param("cuda", id="cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(not HAS_CUDA, reason=NO_CUDA)])
DEVICES = [pytest.param("cpu", id="cpu"), CUDA]

_REGISTRY = get_registry()
TRAINABLE = [e.spec.name for e in _REGISTRY.models if e.spec.trainable]
METRICS = [(e.spec.name, p) for e in _REGISTRY.metrics for p in e.spec.protocols]
NONDETERMINISTIC = "does not have a deterministic implementation"
#: every trainable model on CUDA; on the CPU one model (CI time), which exercises the test code
#: (CPU determinism and resume of every model are covered by test_models_conformance / test_run)
RUNS = [pytest.param("cpu", TRAINABLE[0], id=f"cpu-{TRAINABLE[0]}")] + [
    pytest.param("cuda", m, id=f"cuda-{m}", marks=CUDA.marks) for m in TRAINABLE
]
#: the same, all in float32, plus one fp16 run on CUDA, whose loss scale must survive the resume
RESUMES = [pytest.param(*p.values, "off", id=p.id, marks=p.marks) for p in RUNS] + [
    pytest.param("cuda", TRAINABLE[0], "fp16", id=f"cuda-{TRAINABLE[0]}-fp16", marks=CUDA.marks)
]


def _sets(model: str, steps: int, extra: list[str] = ()) -> list[str]:  # type: ignore[assignment]
    """A tiny model on tiny glyph splits, validated and checkpointed mid-run."""
    tiny = [f"model.{k}={v}" for k, v in _REGISTRY.models.get(model).tiny.items()]
    return tiny + [
        "dataset.train_length=32", "dataset.val_length=4", "dataset.test_length=4",
        f"train.max_steps={steps}", "train.batch_size=2", "train.eval_every=3", "train.val_sequences=4",
        "train.checkpoint_every=2", "eval.profile=false", *extra,
    ]  # fmt: skip


def _run(registry: Any, model: str, out: Path, device: str, sets: list[str]) -> RunRecord:
    req = RunRequest(model=model, dataset="glyphs", sets=sets, out=out, device=device, progress=False,
                     compare=("blank",))  # fmt: skip
    record, _ = execute_run(req, registry, echo=lambda s: None)
    return record


def _weights(run: Path) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = torch.load(run / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)[
        "state_dict"
    ]
    return state


def _differences(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[str]:
    """Names (with the largest difference) of the tensors that are not bitwise equal."""
    out = []
    for k in a:
        if not torch.equal(a[k], b[k]):
            diff = (a[k].double() - b[k].double()).abs().max().item() if a[k].is_floating_point() else float("nan")
            out.append(f"{k} (max |diff| {diff:.3g})")
    return out


def _nondeterministic_ops(caught: list[warnings.WarningMessage]) -> str:
    ops = sorted({str(w.message).split(" does not")[0] for w in caught if NONDETERMINISTIC in str(w.message)})
    return f"; ops without a deterministic CUDA kernel: {', '.join(ops)}" if ops else ""


@pytest.mark.parametrize("device,model", RUNS)
def test_seeded_run_repeats_exactly(registry, tmp_path, device, model):
    sets = _sets(model, 5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = _run(registry, model, tmp_path / "a", device, sets)
        second = _run(registry, model, tmp_path / "b", device, sets)
    differ = _differences(_weights(tmp_path / "a"), _weights(tmp_path / "b"))
    assert not differ, f"{model} on {device}: two runs with seed 0 end with different weights: {differ[:5]}" + (
        _nondeterministic_ops(caught)
    )
    assert first.metrics == second.metrics
    assert first.hardware["device"].startswith(device)


def _interrupt_after(monkeypatch: pytest.MonkeyPatch, steps: int) -> None:
    """Ctrl-C while the trainer waits for the batch of step ``steps`` (counted over all stages)."""
    import vpbench.engine.train as train_module

    original = train_module.train_batches
    served = [0]

    def batches(*args: Any, **kwargs: Any) -> Any:
        for batch in original(*args, **kwargs):
            if served[0] == steps:
                raise KeyboardInterrupt
            served[0] += 1
            yield batch

    monkeypatch.setattr(train_module, "train_batches", batches)


@pytest.mark.parametrize("device,model,amp", RESUMES)
def test_resumed_run_equals_uninterrupted_run(registry, tmp_path, monkeypatch, device, model, amp):
    from vpbench.engine.train import RunInterrupted

    sets = _sets(model, 6, [f"train.amp={amp}"] if amp != "off" else [])  # (YAML reads a bare off as False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        straight = _run(registry, model, tmp_path / "a", device, sets)
        with monkeypatch.context() as m:
            _interrupt_after(m, 4)
            with pytest.raises(RunInterrupted) as info:
                _run(registry, model, tmp_path / "b", device, sets)
        assert info.value.step == 4
        saved = torch.load(tmp_path / "b" / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
        # the random state of every visible GPU travels with the checkpoint
        assert ("cuda" in saved["rng"]) == HAS_CUDA
        if HAS_CUDA:
            assert len(saved["rng"]["cuda"]) == torch.cuda.device_count()
        # so does the fp16 loss scaler's state (a float32 run has none)
        assert (saved["scaler"] is not None) == (amp == "fp16" and device == "cuda")
        req = RunRequest(model=None, dataset=None, out=tmp_path / "b", resume=True, device=device, progress=False,
                         compare=("blank",))  # fmt: skip
        resumed, _ = execute_run(req, registry, echo=lambda s: None)
    differ = _differences(_weights(tmp_path / "a"), _weights(tmp_path / "b"))
    assert not differ, f"{model} on {device}: the resumed run ends with other weights: {differ[:5]}" + (
        _nondeterministic_ops(caught)
    )
    assert resumed.metrics == straight.metrics
    assert resumed.train.selected_step == straight.train.selected_step


@pytest.mark.parametrize("model", TRAINABLE)
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
@pytest.mark.parametrize(
    "device",
    [pytest.param("cpu", id="cpu", marks=pytest.mark.skip(reason="train.amp takes effect on CUDA only; CPU runs train in float32")), CUDA],
)
def test_mixed_precision_training_stays_finite(registry, tmp_path, device, amp, model):
    low = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    seen: set[torch.dtype] = set()

    def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor) and module.training:
            seen.add(output.dtype)

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        # a non-finite loss stops the run with TrainingError: finishing is the first check
        record = _run(registry, model, tmp_path / "r", device, _sets(model, 6, [f"train.amp={amp}"]))
    finally:
        handle.remove()
    assert low in seen, f"{model}: no layer computed in {low} while training with train.amp={amp} (saw {seen})"
    weights = _weights(tmp_path / "r")
    assert all(bool(torch.isfinite(w).all()) for w in weights.values() if w.is_floating_point())
    assert record.train.steps_done == 6
    for name, result in record.metrics["openstl"].items():
        assert math.isfinite(result.mean), f"{model} with train.amp={amp}: test {name} is {result.mean}"


def _frames() -> tuple[torch.Tensor, torch.Tensor]:
    """Three glyph test clips and a prediction that is shifted, noisy and leaves [0, 1]."""
    from vpbench.data.root import resolve_data_root

    data = build_dataset(_REGISTRY, "glyphs", {"test_length": 3}, resolve_data_root(None), 0)
    test = data.split("test")
    true = torch.stack([test[i][data.context :] for i in range(3)])  # [3, 10, 1, 64, 64]
    gen = torch.Generator().manual_seed(0)
    pred = torch.roll(true, shifts=2, dims=-1) + 0.2 * torch.randn(true.shape, generator=gen)
    return pred, true


@pytest.mark.parametrize("name,protocol", METRICS)
@pytest.mark.parametrize("device", DEVICES)
def test_metric_on_device_equals_per_clip_cpu_values(device, name, protocol, monkeypatch):
    """CPU variant: batching does not change a metric; CUDA variant: neither does the GPU (1e-5)."""
    weights = Path(os.environ.get("VPBENCH_TEST_DATA", "/nonexistent")) / "weights" / "alexnet_features-7be5be79.pth"
    if not os.environ.get("VPBENCH_LPIPS_WEIGHTS") and weights.is_file():
        monkeypatch.setenv("VPBENCH_LPIPS_WEIGHTS", str(weights))  # the test data's AlexNet, as CI has it
    bound, unavailable = build_metrics(_REGISTRY, [name], [protocol])
    if not bound:
        pytest.skip(f"metric {name} unavailable here: {unavailable.get(name)}")
    metric = bound[0].metric
    pred, true = _frames()
    reference = torch.cat([metric.per_frame(pred[i : i + 1], true[i : i + 1]) for i in range(len(pred))])
    values = metric.per_frame(pred.to(device), true.to(device))
    assert values.device.type == device and values.dtype == torch.float64 and values.shape == reference.shape
    assert bool(torch.isfinite(reference).all())
    values = values.cpu()
    worst = ((values - reference).abs() / reference.abs().clamp(min=1.0)).max().item()
    assert torch.allclose(values, reference, rtol=1e-5, atol=1e-5), (
        f"{name} [{protocol}] on {device} differs from the CPU by up to {worst:.3g} (relative; limit 1e-5)"
    )
