"""A small TorchScript stand-in for StyleGAN-V's I3D, with the same call contract.

``net(x, rescale=False, resize=False, return_features=True)``: ``x`` is ``[B, 3, T, H, W]``
(in [-1, 1], or in [0, 255] with ``rescale``; any size, or resized to 224x224 with
``resize``); the result is ``[B, 400]`` features. Two strided 3D convolutions with fixed
seeded weights, global pooling and a linear map: a real (if untrained) video feature map,
sensitive to appearance and motion, cheap on a CPU.

``save_standin(path, marker=...)`` with a marker also gives the module a ``__setstate__``
that prints the marker: TorchScript runs it while ``torch.jit.load`` reads the file, so a
test can see whether any code of a file ran.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

FEATURES = 400
#: untrained features vary little from clip to clip; scaled so distances are not all near 0
SCALE = 30.0


class _Standin(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(3, 8, kernel_size=(3, 7, 7), stride=(1, 4, 4), padding=(1, 3, 3))
        self.conv2 = nn.Conv3d(8, 16, kernel_size=3, stride=2, padding=1)
        self.head = nn.Linear(32, FEATURES)
        self.scale = SCALE

    def forward(self, x: Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False) -> Tensor:
        if rescale:
            x = x.float() / 127.5 - 1.0
        if resize:
            x = F.interpolate(x, size=(x.shape[2], 224, 224), mode="trilinear", align_corners=False)
        h = torch.relu(self.conv1(x))
        h = torch.relu(self.conv2(h))
        pooled = torch.cat([h.mean(dim=(2, 3, 4)), h.amax(dim=(2, 3, 4))], dim=1)  # [B, 32]
        feats: Tensor = self.head(pooled) * self.scale
        if return_features:
            return feats
        return torch.softmax(feats, dim=1)


class _Marker(nn.Module):
    """Holds a marker string; its ``__setstate__`` (run by ``torch.jit.load``) prints it."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def forward(self, x: Tensor) -> Tensor:
        return x

    @torch.jit.export
    def __getstate__(self) -> Tuple[str, bool]:
        return (self.marker, self.training)

    @torch.jit.export
    def __setstate__(self, state: Tuple[str, bool]) -> None:
        self.marker = state[0]
        self.training = state[1]
        print(self.marker)


class _MarkedStandin(_Standin):
    """The stand-in, plus a submodule whose loading runs code that prints ``marker``."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.tag = _Marker(marker)


def build_standin(seed: int = 0, marker: str | None = None) -> torch.jit.ScriptModule:
    torch.manual_seed(seed)
    module: nn.Module = _Standin() if marker is None else _MarkedStandin(marker)
    return torch.jit.script(module.eval())


def save_standin(path: Path, seed: int = 0, marker: str | None = None) -> str:
    """Write the stand-in to ``path``; return its SHA-256."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.script/save are deprecated
        torch.jit.save(build_standin(seed, marker), str(path))
    return hashlib.sha256(path.read_bytes()).hexdigest()
