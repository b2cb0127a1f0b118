"""Parity of the batched metrics with the per-frame reference loop of the published tables.

Reference: numpy per frame (MSE, MAE, PSNR), ``skimage.metrics.structural_similarity`` per
frame (SSIM) and the ``lpips`` package one frame at a time (LPIPS, same AlexNet weights).
Frames: random, structured (gradients, bars, constant and out-of-range predictions), real
MNIST digits and real KTH frames from ``$VPBENCH_TEST_DATA``.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from vpbench_metrics.lpips_metric import LPIPS, WEIGHTS_ENV
from vpbench_metrics.pixel import MAE, MSE, PSNR
from vpbench_metrics.reference import reference_lpips_model, reference_per_frame
from vpbench_metrics.ssim import SSIM

PROTOCOLS = ("openstl", "standard")
PIXEL = {"mse": MSE, "mae": MAE, "psnr": PSNR, "ssim": SSIM}


def _data_root() -> Path | None:
    root = os.environ.get("VPBENCH_TEST_DATA")
    return Path(root) if root and Path(root).is_dir() else None


def _weights() -> str | None:
    if os.environ.get(WEIGHTS_ENV):
        return os.environ[WEIGHTS_ENV]
    root = _data_root()
    path = root / "weights" / "alexnet_features-7be5be79.pth" if root else None
    return str(path) if path is not None and path.is_file() else None


# ----------------------------------------------------------------------------- frames


def random_frames(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    true = rng.random((2, 3, 3, 32, 36))  # 3 channels, non-square
    pred = true + 0.15 * rng.standard_normal(true.shape)  # leaves [0, 1]: clipping matters
    return pred, true


def structured_frames(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    h = w = 32
    yy, xx = np.mgrid[0:h, 0:w] / 31.0
    true = np.stack(
        [
            xx,  # horizontal ramp
            (np.sin(6 * yy) > 0).astype(float),  # bars
            np.full((h, w), 0.7),  # constant: zero variance
            ((xx - 0.5) ** 2 + (yy - 0.5) ** 2 < 0.1).astype(float),  # disc
        ]
    )[None, :, None]  # [1, 4, 1, H, W]
    pred = np.stack(
        [
            np.roll(true[0, 0, 0], 2, axis=1),
            true[0, 1, 0] * 0.8 + 0.1,
            np.full((h, w), 0.69),
            1.3 * true[0, 3, 0] - 0.2,  # overshoots both ends
        ]
    )[None, :, None]
    return pred, true


def mnist_frames(root: Path) -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(root / "mnist" / "t10k-images-idx3-ubyte.gz") as f:
        digits = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:4] / 255.0
    seq = np.zeros((2, 4, 1, 64, 64))  # Moving-MNIST-like: two digits sliding
    for b in range(2):
        for t in range(4):
            seq[b, t, 0, 5 + 3 * t : 33 + 3 * t, 4 + 5 * t : 32 + 5 * t] += digits[2 * b]
            seq[b, t, 0, 30 - 2 * t : 58 - 2 * t, 30 : 58] += digits[2 * b + 1]
    true = np.clip(seq, 0, 1)
    pred = np.roll(true, 2, axis=-1) * 0.9 + 0.05  # a blurry, shifted guess
    return pred, true


def kth_frames(root: Path) -> tuple[np.ndarray, np.ndarray]:
    av = pytest.importorskip("av")
    path = sorted((root / "kth" / "avi").glob("*.avi"))[0]
    frames = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i >= 40 and i % 4 == 0:
                frames.append(frame.to_ndarray(format="gray") / 255.0)
            if len(frames) == 5:
                break
    clip = np.stack(frames)[:, None]  # [5, 1, 120, 160]
    return clip[None, :-1], clip[None, 1:]  # predict each frame by the previous one


def frames(kind: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    if kind == "random":
        return random_frames(rng)
    if kind == "structured":
        return structured_frames(rng)
    root = _data_root()
    if root is None:
        pytest.skip("real frames need VPBENCH_TEST_DATA (../shared/data); the test command sets it")
    return mnist_frames(root) if kind == "mnist" else kth_frames(root)


KINDS = ("random", "structured", "mnist", "kth")

# ------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("kind", KINDS)
def test_pixel_and_ssim_metrics_equal_the_per_frame_reference(kind: str, protocol: str) -> None:
    pred, true = frames(kind)
    ref = reference_per_frame(pred, true, protocol, metrics=tuple(PIXEL))
    for name, cls in PIXEL.items():
        got = cls(protocol=protocol).per_frame(torch.from_numpy(pred), torch.from_numpy(true))
        assert got.dtype == torch.float64 and got.shape == pred.shape[:2]
        np.testing.assert_allclose(got.numpy(), ref[name], rtol=0, atol=1e-5, err_msg=f"{name} {protocol} {kind}")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_float32_inputs_match_the_float32_published_loop(protocol: str) -> None:
    pred, true = frames("random")
    pred, true = pred.astype(np.float32), true.astype(np.float32)
    ref = reference_per_frame(pred, true, protocol, metrics=tuple(PIXEL))
    for name, cls in PIXEL.items():
        got = cls(protocol=protocol).per_frame(torch.from_numpy(pred), torch.from_numpy(true))
        atol = 1e-5 * max(1.0, float(np.abs(ref[name]).max()) / 10)  # float32 sums over pixels
        np.testing.assert_allclose(got.numpy(), ref[name], rtol=0, atol=atol, err_msg=name)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_ssim_numpy_and_torch_routes_agree(protocol: str) -> None:
    pred, true = (torch.from_numpy(a) for a in frames("random"))
    a = SSIM(protocol, route="numpy").per_frame(pred, true)
    b = SSIM(protocol, route="torch").per_frame(pred, true)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_protocols_differ_where_the_literature_says() -> None:
    pred, true = (torch.from_numpy(a) for a in frames("random"))
    c, h, w = pred.shape[2:]
    torch.testing.assert_close(MSE("openstl").per_frame(pred, true), MSE("standard").per_frame(pred, true) * (c * h * w))
    # data_range 2 inflates SSIM relative to data_range 1
    assert bool((SSIM("openstl").per_frame(pred, true) > SSIM("standard").per_frame(pred, true)).all())


@pytest.fixture(scope="module")
def lpips_pair() -> tuple[Any, str]:
    weights = _weights()
    if weights is None:
        pytest.skip(f"LPIPS parity needs AlexNet weights: set VPBENCH_TEST_DATA or {WEIGHTS_ENV}")
    return reference_lpips_model(weights), weights


@pytest.mark.parametrize("kind", KINDS)
def test_lpips_equals_the_lpips_package_frame_by_frame(kind: str, lpips_pair: tuple[Any, str]) -> None:
    model, weights = lpips_pair
    pred, true = frames(kind)
    ref = reference_per_frame(pred, true, metrics=("lpips",), lpips_model=model)["lpips"]
    for protocol in PROTOCOLS:  # LPIPS is the same under both protocols
        got = LPIPS(protocol=protocol, weights=weights).per_frame(torch.from_numpy(pred), torch.from_numpy(true))
        assert got.dtype == torch.float64
        np.testing.assert_allclose(got.numpy(), ref, rtol=0, atol=1e-4)
    assert float(np.abs(ref).max()) > 1e-3  # the frames differ: a non-trivial comparison


def test_lpips_weights_are_the_pretrained_ones(lpips_pair: tuple[Any, str]) -> None:
    # richzhang/PerceptualSimilarity's test images give (0.722, 0.138) only with ImageNet
    # weights; without them, check the trunk holds the file's tensors, not a random init.
    model, weights = lpips_pair
    state = torch.load(weights, map_location="cpu", weights_only=True)
    torch.testing.assert_close(getattr(model.net.slice1, "0").weight, state["features.0.weight"])
    torch.testing.assert_close(getattr(model.net.slice5, "10").bias, state["features.10.bias"])
