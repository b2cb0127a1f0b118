"""Model checks: every registered model, in its tiny variant, honours the VideoModel contract."""

from __future__ import annotations

import io
from functools import partial
from collections.abc import Sequence

import torch

from ..components import build_model
from ..engine.preflight import component
from ..interfaces import FrameShape, VideoModel
from ..plugins import Registry
from .cases import Case, fail

__all__ = ["GEOMETRIES", "model_cases"]

#: (frame shape, context, horizon) every model is built for
GEOMETRIES = [(FrameShape(1, 32, 32), 4, 3), (FrameShape(1, 64, 64), 10, 10)]


def _build(registry: Registry, name: str, shape: FrameShape, context: int, horizon: int, seed: int = 0) -> VideoModel:
    torch.manual_seed(seed)
    spec = registry.models.get(name)
    return build_model(registry, name, dict(spec.tiny), shape, context, horizon)


def _clip(shape: FrameShape, frames: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, frames, *shape.as_tuple(), generator=g)


def check_prediction(registry: Registry, name: str, geometry: tuple[FrameShape, int, int]) -> None:
    """``predict`` returns ``[B, S, C, H, W]``, finite, in [0, 1]."""
    shape, context, horizon = geometry
    model = _build(registry, name, shape, context, horizon).eval()
    with torch.no_grad():
        pred = model.predict(_clip(shape, context), horizon)
    want = (2, horizon, *shape.as_tuple())
    if not isinstance(pred, torch.Tensor) or tuple(pred.shape) != want:
        got = tuple(pred.shape) if isinstance(pred, torch.Tensor) else type(pred).__name__
        fail(f"model {name!r}: predict must return {list(want)} [B, S, C, H, W]; got {got}")
    if not bool(torch.isfinite(pred).all()):
        fail(f"model {name!r}: predict returned non-finite values")
    lo, hi = float(pred.min()), float(pred.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        fail(f"model {name!r}: predict must return frames in [0, 1]; got values in [{lo:.4g}, {hi:.4g}]")


def check_stages(registry: Registry, name: str) -> None:
    """Every training stage backpropagates into its own parameters; untrainable means no stages."""
    shape, context, horizon = GEOMETRIES[0]
    model = _build(registry, name, shape, context, horizon).train()
    stages = model.stages()
    if not registry.models.get(name).trainable:
        if stages:
            fail(f"model {name!r} is registered with trainable=False but has {len(stages)} training stages")
        return
    if not stages:
        fail(f"model {name!r} is registered as trainable but stages() is empty")
    batch = _clip(shape, context + horizon)
    for stage in stages:
        params = list(stage.parameters())
        if not params:
            fail(f"model {name!r}: stage {stage.name!r} trains no parameters")
        if stage.on_start is not None:
            with torch.no_grad():
                stage.on_start(batch)
        model.zero_grad(set_to_none=True)
        out = stage.step(batch, 0)
        if out.loss.ndim != 0 or not bool(torch.isfinite(out.loss)):
            fail(f"model {name!r}: stage {stage.name!r} must return a finite scalar loss; got shape {list(out.loss.shape)}")
        out.loss.backward()  # type: ignore[no-untyped-call]
        if not any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in params):
            fail(f"model {name!r}: stage {stage.name!r} gives no gradient to its parameters")


def check_state_dict(registry: Registry, name: str) -> None:
    """Loading another instance's ``state_dict`` reproduces its predictions exactly."""
    shape, context, horizon = GEOMETRIES[0]
    a = _build(registry, name, shape, context, horizon, seed=0).eval()
    b = _build(registry, name, shape, context, horizon, seed=123).eval()
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b.load_state_dict(torch.load(buf, weights_only=True))
    x = _clip(shape, context)
    with torch.no_grad():
        torch.manual_seed(5)
        pa = a.predict(x, horizon)
        torch.manual_seed(5)
        pb = b.predict(x, horizon)
    if not torch.equal(pa, pb):
        fail(f"model {name!r}: predictions differ after a state_dict round trip (state kept outside state_dict?)")


def check_seeded(registry: Registry, name: str) -> None:
    """The same seed builds the same weights."""
    shape, context, horizon = GEOMETRIES[0]
    a = _build(registry, name, shape, context, horizon, seed=7).state_dict()
    b = _build(registry, name, shape, context, horizon, seed=7).state_dict()
    if a.keys() != b.keys() or not all(torch.equal(a[k], b[k]) for k in a):
        fail(f"model {name!r}: two constructions under the same seed differ")


def model_cases(registry: Registry, names: Sequence[str] | None = None) -> list[Case]:
    chosen = list(names) if names is not None else registry.models.names()
    out: list[Case] = []
    for name in chosen:
        registry.models.get(name)  # an unknown name fails here, listing the valid ones
        who = component(registry, "model", name)
        for shape, t, s in GEOMETRIES:
            geometry = (shape, t, s)
            label = f"predict-{shape.height}px-{t}to{s}"
            out.append(Case("model", name, label, partial(check_prediction, registry, name, geometry), who))
        out.append(Case("model", name, "stages-backpropagate", partial(check_stages, registry, name), who))
        out.append(Case("model", name, "state-dict-round-trip", partial(check_state_dict, registry, name), who))
        out.append(Case("model", name, "seeded-construction", partial(check_seeded, registry, name), who))
    return out
