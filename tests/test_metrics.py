"""Behaviour of the metric plugins: registration, exact frames, NaN, bad input, LPIPS weights."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch

from vpbench.errors import CheckpointError, ConfigError, DataError
from vpbench.plugins import Registry
from vpbench_metrics.common import PSNR_CAP_DB
from vpbench_metrics.lpips_metric import LPIPS, WEIGHTS_ENV, build_lpips, find_weights
from vpbench_metrics.pixel import MAE, MSE, PSNR
from vpbench_metrics.ssim import SSIM

ALL = (MSE, MAE, PSNR, SSIM, LPIPS)


@pytest.fixture
def weights(monkeypatch: pytest.MonkeyPatch) -> str:
    root = os.environ.get("VPBENCH_TEST_DATA")
    path = Path(root) / "weights" / "alexnet_features-7be5be79.pth" if root else None
    if path is None or not path.is_file():
        pytest.skip("LPIPS needs the AlexNet weights in VPBENCH_TEST_DATA (../shared/data)")
    monkeypatch.setenv(WEIGHTS_ENV, str(path))
    return str(path)


def _frames(b: int = 2, s: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    true = torch.rand(b, s, 1, 32, 32, generator=g)
    pred = (true + 0.1 * torch.randn(b, s, 1, 32, 32, generator=g)).float()
    return pred, true


def test_registry_lists_the_five_metrics_with_their_direction(registry: Registry) -> None:
    directions = {e.spec.name: e.spec.higher_is_better for e in registry.metrics}
    assert {k: directions[k] for k in ("mse", "mae", "psnr", "ssim", "lpips")} == {
        "mse": False, "mae": False, "psnr": True, "ssim": True, "lpips": False,
    }
    for name in ("mse", "mae", "psnr", "ssim", "lpips"):
        spec = registry.metrics.get(name)
        assert spec.protocols == ("openstl", "standard")
        cls = spec.load()
        assert cls.name == name and cls.higher_is_better == spec.higher_is_better


@pytest.mark.parametrize("cls", ALL)
def test_unknown_protocol_is_a_config_error(cls: type) -> None:
    with pytest.raises(ConfigError, match="openstl, standard"):
        cls(protocol="opensstl")


@pytest.mark.parametrize("protocol", ["openstl", "standard"])
def test_exact_frame_is_finite_and_documented(protocol: str, weights: str) -> None:
    pred, true = _frames()
    pred[0, 1] = true[0, 1]  # one frame predicted exactly
    got = {cls.name: cls(protocol=protocol).per_frame(pred, true) for cls in ALL}
    assert got["psnr"][0, 1].item() == PSNR_CAP_DB == 100.0
    assert got["mse"][0, 1].item() == 0.0 and got["mae"][0, 1].item() == 0.0
    assert got["ssim"][0, 1].item() == pytest.approx(1.0, abs=1e-12)
    assert got["lpips"][0, 1].item() == pytest.approx(0.0, abs=1e-6)
    for values in got.values():
        assert torch.isfinite(values).all() and math.isfinite(values.mean().item())


@pytest.mark.parametrize("cls", ALL)
def test_nan_in_a_prediction_is_reported_for_that_frame_only(cls: type, weights: str) -> None:
    pred, true = _frames()
    clean = cls().per_frame(pred, true)
    pred[1, 2, 0, 5, 7] = float("nan")
    got = cls().per_frame(pred, true)
    assert torch.isnan(got[1, 2])
    mask = torch.ones_like(got, dtype=torch.bool)
    mask[1, 2] = False
    torch.testing.assert_close(got[mask], clean[mask], rtol=0, atol=1e-6)


@pytest.mark.parametrize("cls", (MSE, MAE, PSNR, SSIM))
def test_mismatched_shapes_name_both_shapes(cls: type) -> None:
    pred, true = _frames(s=3)
    with pytest.raises(DataError, match=r"\(2, 2, 1, 32, 32\).*\(2, 3, 1, 32, 32\)"):
        cls().per_frame(pred[:, :2], true)
    with pytest.raises(DataError, match=r"\[B, S, C, H, W\]"):
        cls().per_frame(pred[0], true[0])


@pytest.mark.parametrize("cls", (MSE, MAE, PSNR, SSIM))
def test_targets_in_0_255_are_refused_with_the_range_found(cls: type) -> None:
    pred, true = _frames()
    true255 = (true * 255).round()
    with pytest.raises(DataError, match=r"found range \[0, 255\].*divide by 255"):
        cls().per_frame(pred * 255, true255)
    with pytest.raises(DataError, match="float"):
        cls().per_frame(pred, true255.to(torch.uint8))
    nan_true = true.clone()
    nan_true[0, 0, 0, 0, 0] = float("nan")
    with pytest.raises(DataError, match="found range"):
        cls().per_frame(pred, nan_true)


def test_frames_smaller_than_the_window_are_refused() -> None:
    pred, true = _frames()
    with pytest.raises(DataError, match="11x11"):
        SSIM("standard").per_frame(pred[..., :10, :10], true[..., :10, :10])
    with pytest.raises(DataError, match="31x31"):
        LPIPS().per_frame(pred[..., :16, :16], true[..., :16, :16])


def test_output_is_float64_on_the_predictions_device_for_half_inputs(weights: str) -> None:
    pred, true = _frames()
    for cls in ALL:
        got = cls().per_frame(pred.bfloat16(), true.bfloat16())
        assert got.dtype == torch.float64 and got.device == pred.device and got.shape == (2, 3)


def test_lpips_without_weights_is_unavailable_and_never_random(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    reason = LPIPS().available()
    assert reason is not None and WEIGHTS_ENV in reason and "\n" not in reason
    with pytest.raises(CheckpointError):
        build_lpips()
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "missing.pth"))
    assert "missing.pth" in (LPIPS().available() or "")


def test_lpips_finds_torchvision_weights_in_the_hub_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    hub_file = tmp_path / "checkpoints" / "alexnet-owt-7be5be79.pth"
    hub_file.parent.mkdir()
    hub_file.write_bytes(b"")
    assert find_weights() == (hub_file, "") and LPIPS().available() is None


def test_lpips_refuses_a_file_that_is_not_alexnet(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(3, 3)}, bad)
    with pytest.raises(CheckpointError, match="features"):
        build_lpips(bad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_metrics_leave_the_callers_prediction_unchanged(dtype: torch.dtype, weights: str) -> None:
    pred, true = _frames()
    pred = (pred * 1.5 - 0.2).to(dtype)  # out of range: clipping must happen on a copy
    before = pred.clone()
    for cls in ALL:
        cls().per_frame(pred, true)
    assert torch.equal(pred, before)
