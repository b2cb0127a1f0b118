"""LPIPS (Zhang et al. 2018), AlexNet trunk, linear heads v0.1, batched.

d(x, y) = Σ_l mean_{h,w} w_l · (φ̂_l(x) - φ̂_l(y))², with φ̂_l the channel-normalised
AlexNet relu_l features of the ScalingLayer-standardised input 2x - 1 and w_l the learnt
1x1 heads. Grey frames are replicated to three channels, as lpips broadcasts them.

Weights, never downloaded and never random: the linear heads ship inside the ``lpips``
package; the AlexNet trunk comes from (1) the features-only state dict named by
``$VPBENCH_LPIPS_WEIGHTS`` (or the ``weights`` argument), else (2) torchvision's
``alexnet-owt-7be5be79.pth`` in the torch hub cache. Without either, :meth:`LPIPS.available`
gives the reason and the harness reports LPIPS as unavailable.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vpbench import Metric
from vpbench.errors import CheckpointError, DataError

from .common import check_pair, check_protocol

__all__ = ["LPIPS", "WEIGHTS_ENV", "HUB_FILE", "find_weights", "build_lpips"]

WEIGHTS_ENV = "VPBENCH_LPIPS_WEIGHTS"
HUB_FILE = "alexnet-owt-7be5be79.pth"
#: torchvision ``alexnet().features`` index -> the lpips trunk slice that holds it
_SLICE_OF = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}
#: AlexNet's smallest input: conv1 (11, stride 4) and two 3/2 max-pools leave one pixel
MIN_SIDE = 31
#: frames per forward pass: bounds memory (AlexNet relu1 of 128x128 is 64x31x31)
_CHUNK = 128


def find_weights(weights: str | os.PathLike[str] | None = None) -> tuple[Path | None, str]:
    """Return ``(path, "")`` of the AlexNet weights to use, or ``(None, reason)``."""
    explicit = weights if weights is not None else os.environ.get(WEIGHTS_ENV) or None
    if explicit is not None:
        path = Path(explicit).expanduser()
        if path.is_file():
            return path, ""
        return None, f"LPIPS AlexNet weights {str(path)!r} (from {WEIGHTS_ENV} or config) do not exist"
    hub = Path(torch.hub.get_dir()) / "checkpoints" / HUB_FILE
    if hub.is_file():
        return hub, ""
    return None, (
        f"no AlexNet weights for LPIPS: set {WEIGHTS_ENV} to a features state dict "
        f"or place torchvision's {HUB_FILE} in {hub.parent}"
    )


def _trunk_state(path: Path) -> dict[str, Tensor]:
    """Map ``features.{i}.{weight,bias}`` (full AlexNet or features-only) to lpips trunk keys."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise CheckpointError(f"cannot read LPIPS AlexNet weights {str(path)!r}: {exc}") from exc
    state: dict[str, Tensor] = {}
    for idx, sl in _SLICE_OF.items():
        for kind in ("weight", "bias"):
            for key in (f"features.{idx}.{kind}", f"{idx}.{kind}"):
                if key in raw:
                    state[f"net.slice{sl}.{idx}.{kind}"] = raw[key]
                    break
            else:
                raise CheckpointError(
                    f"{str(path)!r} lacks features.{idx}.{kind}: not an AlexNet (features) state dict"
                )
    return state


def build_lpips(weights: str | os.PathLike[str] | None = None) -> Any:
    """``lpips.LPIPS(net='alex', version='0.1')`` with the trunk loaded from local weights.

    ``pnet_rand=True`` stops lpips from asking torchvision for (downloaded) weights; the
    trunk is then overwritten with :func:`find_weights`' file, checked shape by shape.
    """
    import lpips

    path, reason = find_weights(weights)
    if path is None:
        raise CheckpointError(reason)
    with warnings.catch_warnings():  # torchvision's 'pretrained is deprecated' notice
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    state = _trunk_state(path)
    own = model.state_dict()
    for key, value in state.items():
        if own[key].shape != value.shape:
            raise CheckpointError(
                f"{str(path)!r}: {key} has shape {tuple(value.shape)}, AlexNet needs {tuple(own[key].shape)}"
            )
    missing = model.load_state_dict(state, strict=False)
    assert not missing.unexpected_keys, missing.unexpected_keys
    return model.eval().requires_grad_(False)


class _BatchedLPIPS(nn.Module):
    """Pred and target through one AlexNet pass; per-pair distances ``[N]``.

    Grey frames skip the replication: with z_c = (u - shift_c) / scale_c for u = 2x - 1,
    conv1(z) = (Σ_c W_c / scale_c) * u  -  (Σ_c W_c shift_c / scale_c) * 1_inside  + b,
    where 1_inside is 1 on the frame and 0 on conv1's zero padding. The first term is a
    one-channel convolution (a third of the work), the second a fixed map per frame size.
    """

    w_grey: Tensor  # [64, 1, 11, 11]
    w_pad: Tensor  # [64, 1, 11, 11]

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model
        self.slices = nn.ModuleList([getattr(model.net, f"slice{i}") for i in range(1, 6)])
        conv1 = getattr(self.slices[0], "0")
        shift = model.scaling_layer.shift.view(1, 3, 1, 1)
        scale = model.scaling_layer.scale.view(1, 3, 1, 1)
        self.register_buffer("w_grey", (conv1.weight / scale).sum(1, keepdim=True), persistent=False)
        self.register_buffer("w_pad", -(conv1.weight * shift / scale).sum(1, keepdim=True), persistent=False)
        self._maps: dict[tuple[int, int], Tensor] = {}

    def _conv1_grey(self, u: Tensor) -> Tensor:
        conv1 = getattr(self.slices[0], "0")
        key = (u.shape[-2], u.shape[-1])
        if key not in self._maps or self._maps[key].device != u.device:
            ones = u.new_ones(1, 1, *key)
            self._maps[key] = F.conv2d(ones, self.w_pad, conv1.bias, stride=conv1.stride, padding=conv1.padding)
        return F.conv2d(u, self.w_grey, None, stride=conv1.stride, padding=conv1.padding) + self._maps[key]

    def features(self, x: Tensor) -> list[Tensor]:
        """Channel-normalised relu_1..relu_5 features φ̂_l of frames ``x`` [N, C, H, W] in [0, 1]."""
        u = (x * 2 - 1).contiguous(memory_format=torch.channels_last)  # [-1, 1]; oneDNN / cuDNN's fast layout
        if u.shape[1] == 1:
            h = getattr(self.slices[0], "1")(self._conv1_grey(u))  # relu1 [N, 64, H1, W1]
        else:
            h = self.slices[0](self.model.scaling_layer(u))  # (u - shift) / scale, conv1, relu
        feats = []
        for i in range(len(self.model.lins)):
            if i:
                h = self.slices[i](h)  # relu_{i+1} features [N, C_l, H_l, W_l]
            feats.append(h * (h * h).sum(dim=1, keepdim=True).sqrt_().add_(1e-10).reciprocal_())  # unit norm
        return feats

    def distance(self, fp: Sequence[Tensor], ft: Sequence[Tensor]) -> Tensor:
        """d = Σ_l mean_{h,w} w_l · (φ̂_l(x̂) - φ̂_l(x))², per pair: [N]."""
        total: Tensor = fp[0].new_zeros(fp[0].shape[0])
        for lin, a, b in zip(self.model.lins, fp, ft):
            d = a - b
            total = total + lin(d * d).mean(dim=(1, 2, 3))
        return total

    def forward(self, pred: Tensor, true: Tensor) -> Tensor:
        # pred, true: [N, C, H, W] in [0, 1]; C in {1, 3}
        return self.distance(self.features(pred), self.features(true))


class LPIPS(Metric):
    """LPIPS AlexNet v0.1 on clip(x̂, 0, 1) and x mapped to [-1, 1] (both protocols)."""

    name: ClassVar[str] = "lpips"
    version: ClassVar[str] = "1"
    higher_is_better: ClassVar[bool] = False
    _lock = threading.Lock()

    def __init__(self, protocol: str = "openstl", weights: str | os.PathLike[str] | None = None) -> None:
        super().__init__(check_protocol(protocol))
        self.weights = weights
        self._net: _BatchedLPIPS | None = None

    def available(self) -> str | None:
        return find_weights(self.weights)[1] or None

    def _network(self, device: torch.device) -> _BatchedLPIPS:
        with self._lock:
            if self._net is None:
                net = _BatchedLPIPS(build_lpips(self.weights))
                self._net = net.to(memory_format=torch.channels_last)
            if next(self._net.parameters()).device != device:
                self._net = self._net.to(device)
        return self._net

    @torch.no_grad()
    def per_frame(self, pred: Tensor, true: Tensor) -> Tensor:
        return self.per_frame_many([pred], true)[0]

    @torch.no_grad()
    def per_frame_many(self, preds: Sequence[Tensor], true: Tensor) -> list[Tensor]:
        """Each prediction's LPIPS; the target's features are computed once for all of them.

        Every frame set goes through AlexNet on its own, so a prediction's values do not
        depend on which other predictions are scored beside it.
        """
        for pred in preds:
            check_pair(pred, true, min_side=MIN_SIDE)
        b, s, c, h, w = true.shape
        if c not in (1, 3):
            raise DataError(f"LPIPS needs 1 or 3 channels, got {c} in frames {tuple(true.shape)}")
        if b * s == 0:
            return [true.new_zeros(b, s, dtype=torch.float64) for _ in preds]
        net = self._network(true.device)
        t = true.float().reshape(b * s, c, h, w)
        ps = [pred.float().clamp(0.0, 1.0).reshape(b * s, c, h, w) for pred in preds]
        # TF32 convolutions (cuDNN's default on Ampere+) would cost LPIPS its 1e-4 parity
        tf32 = torch.backends.cudnn.allow_tf32
        torch.backends.cudnn.allow_tf32 = False
        outs: list[list[Tensor]] = [[] for _ in preds]
        try:
            for i in range(0, b * s, _CHUNK):
                ft = net.features(t[i : i + _CHUNK])  # once per chunk, for every prediction
                for out, p in zip(outs, ps):
                    out.append(net.distance(net.features(p[i : i + _CHUNK]), ft))
        finally:
            torch.backends.cudnn.allow_tf32 = tf32
        return [torch.cat(out).double().reshape(b, s) for out in outs]
