"""Every registered model, in its tiny variant, honours the VideoModel contract (timm-style).

Driven by the registry: a new model plugin is tested here without writing a line.
"""

from __future__ import annotations

import io

import pytest
import torch

from vpbench.components import build_model
from vpbench.interfaces import FrameShape
from vpbench.plugins import get_registry

REGISTRY = get_registry()
MODELS = REGISTRY.models.names()
GEOMETRIES = [(FrameShape(1, 32, 32), 4, 3), (FrameShape(1, 64, 64), 10, 10)]


def _build(name: str, shape: FrameShape, context: int, horizon: int, seed: int = 0):  # type: ignore[no-untyped-def]
    torch.manual_seed(seed)
    spec = REGISTRY.models.get(name)
    return build_model(REGISTRY, name, dict(spec.tiny), shape, context, horizon)


def _clip(shape: FrameShape, frames: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, frames, *shape.as_tuple(), generator=g)


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=["32px-4to3", "64px-10to10"])
@pytest.mark.parametrize("name", MODELS)
def test_prediction_shape_and_finiteness(name, geometry):
    shape, context, horizon = geometry
    model = _build(name, shape, context, horizon).eval()
    with torch.no_grad():
        pred = model.predict(_clip(shape, context), horizon)
    assert pred.shape == (2, horizon, *shape.as_tuple())
    assert torch.isfinite(pred).all()


@pytest.mark.parametrize("name", MODELS)
def test_every_stage_backpropagates_into_its_parameters(name):
    shape, context, horizon = GEOMETRIES[0]
    model = _build(name, shape, context, horizon).train()
    stages = model.stages()
    if not REGISTRY.models.get(name).trainable:
        assert stages == []
        return
    assert stages, f"{name} is registered as trainable but has no stages"
    batch = _clip(shape, context + horizon)
    for stage in stages:
        params = list(stage.parameters())
        assert params, f"stage {stage.name} trains nothing"
        if stage.on_start is not None:
            with torch.no_grad():
                stage.on_start(batch)
        model.zero_grad(set_to_none=True)
        out = stage.step(batch, 0)
        assert out.loss.ndim == 0 and torch.isfinite(out.loss)
        out.loss.backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params), f"no gradient in stage {stage.name}"


@pytest.mark.parametrize("name", MODELS)
def test_state_dict_round_trip_reproduces_predictions(name):
    shape, context, horizon = GEOMETRIES[0]
    a = _build(name, shape, context, horizon, seed=0).eval()
    b = _build(name, shape, context, horizon, seed=123).eval()
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
    assert torch.equal(pa, pb)


@pytest.mark.parametrize("name", MODELS)
def test_seeded_construction_is_deterministic(name):
    shape, context, horizon = GEOMETRIES[0]
    a = _build(name, shape, context, horizon, seed=7).state_dict()
    b = _build(name, shape, context, horizon, seed=7).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
