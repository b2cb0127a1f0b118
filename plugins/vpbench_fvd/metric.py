"""FVD: the Fréchet distance between I3D features of true and predicted test clips.

Protocol (the same under ``openstl`` and ``standard``; stated in every record's ``info``):

* **frames**: by default each clip is its context frames followed by the predicted (or true)
  future, as the video-prediction FVD of Unterthiner et al. scores it (BAIR: 2 context + 14
  predicted frames in one 16-frame video): the context is shared, so the distance measures
  the future and whether it continues the context. ``frames: prediction`` scores the future
  alone.
* **range**: the prediction is clipped to [0, 1]; both clips are quantised to 8 bits
  (``round(255 x)``), the input of the original TensorFlow FVD and of StyleGAN-V's, then
  mapped linearly to [-1, 1].
* **size**: every frame is resized to 224x224, bilinear, ``align_corners=False``, no
  antialiasing, aspect ratio not kept (the original's ``resize_bilinear`` to 224x224); the
  network is then called with ``rescale=False, resize=False, return_features=True``, so the
  preprocessing is vpbench's and stated, not the network file's.
* **channels**: grey frames are replicated to three channels (as StyleGAN-V does); RGB as is.
* **clips**: every test clip the run scores (``eval.max_sequences`` limits them), truth and
  prediction paired; a state fed several samples of a clip pairs each sample with the clip's
  truth, so ``n`` counts videos (clips x samples). The covariances are normalised by n, as
  StyleGAN-V's.
* **spread**: the standard deviation of the FVD over ``bootstrap`` paired resamplings of the
  clips (seeded, so repeatable); ``bootstrap: 0`` reports none.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from vpbench.config import validate_section
from vpbench.configbase import ComponentConfig
from vpbench.errors import CheckpointError, DataError
from vpbench.interfaces import SetMetric, SetValue
from vpbench_metrics.common import check_pair, check_protocol

from .frechet import frechet_distance, gaussian_stats
from .weights import I3D_SHA256, accepted_hashes, find_weights, load_verified, read_verified

__all__ = ["FVD", "FVDConfig", "clips_for_i3d", "SIDE"]

#: the I3D input side
SIDE = 224
_BOOTSTRAP_SEED = 0


class FVDConfig(ComponentConfig):
    """Options of the ``fvd`` metric."""

    weights: str | None = Field(
        None, description="path of StyleGAN-V's i3d_torchscript.pt; null: $VPBENCH_FVD_WEIGHTS"
    )
    frames: Literal["context+prediction", "prediction"] = Field(
        "context+prediction", description="frames of each clip the network sees"
    )
    bootstrap: int = Field(20, ge=0, le=10_000, description="paired bootstrap resamplings for the spread; 0: none")
    clips_per_pass: int = Field(4, ge=1, le=1024, description="clips per network forward pass (bounds memory)")


def clips_for_i3d(frames: Tensor) -> Tensor:
    """``[B, T, C, H, W]`` frames in [0, 1] (C 1 or 3) -> the I3D input ``[B, 3, T, 224, 224]`` in [-1, 1].

    Clip to [0, 1], quantise to 8 bits, replicate grey, resize bilinearly, map to [-1, 1].
    A NaN stays NaN (the clip's features, then the FVD, become NaN).
    """
    b, t, c, h, w = frames.shape
    if c not in (1, 3):
        raise DataError(f"FVD needs 1 or 3 channels, got {c} in frames {tuple(frames.shape)}")
    x = torch.round(frames.float().clamp(0.0, 1.0) * 255.0).reshape(b * t, c, h, w)
    if c == 1:
        x = x.expand(b * t, 3, h, w)
    if (h, w) != (SIDE, SIDE):
        x = F.interpolate(x, size=(SIDE, SIDE), mode="bilinear", align_corners=False, antialias=False)
    x = x / 127.5 - 1.0
    return x.reshape(b, t, 3, SIDE, SIDE).permute(0, 2, 1, 3, 4).contiguous()


@dataclass
class _State:
    """Features of one predictor's clips and of their truths, ``[b, d]`` float64 arrays per batch."""

    pred: list[np.ndarray] = field(default_factory=list)
    true: list[np.ndarray] = field(default_factory=list)
    frames_per_clip: int | None = None
    channels: int | None = None
    size: tuple[int, int] | None = None


class FVD(SetMetric):
    """Fréchet Video Distance with StyleGAN-V's I3D (Kinetics-400 features before the softmax)."""

    name: ClassVar[str] = "fvd"
    version: ClassVar[str] = "1"
    higher_is_better: ClassVar[bool] = False
    Config: ClassVar[type[FVDConfig]] = FVDConfig
    _lock = threading.Lock()
    #: path, size, mtime -> reason ("" when the hash is accepted), so available() hashes once
    _checked: ClassVar[dict[tuple[str, int, int, frozenset[str]], str]] = {}

    def __init__(self, protocol: str = "openstl", **options: Any) -> None:
        super().__init__(check_protocol(protocol))
        self.config = validate_section(FVDConfig, options, "eval.metric_options.fvd")
        self._net: Any = None
        self._sha256 = ""

    # -- availability and the network -------------------------------------------------

    def available(self) -> str | None:
        path, reason = find_weights(self.config.weights)
        if path is None:
            return reason
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns, accepted_hashes())
        if key not in self._checked:
            try:
                read_verified(path)
                self._checked[key] = ""
            except CheckpointError as exc:
                self._checked[key] = str(exc)
        return self._checked[key] or None

    def _network(self, device: torch.device) -> Any:
        with self._lock:
            if self._net is None:
                path, reason = find_weights(self.config.weights)
                if path is None:
                    raise CheckpointError(reason)
                with warnings.catch_warnings():  # torch's "torch.jit.load is deprecated" notice
                    warnings.simplefilter("ignore", FutureWarning)
                    self._net, self._sha256 = load_verified(Path(path))
            if self._device_of(self._net) != device:
                self._net = self._net.to(device)
        return self._net

    @staticmethod
    def _device_of(net: Any) -> torch.device | None:
        for p in net.parameters():
            return p.device  # type: ignore[no-any-return]
        for b in net.buffers():
            return b.device  # type: ignore[no-any-return]
        return None

    @torch.no_grad()
    def features(self, frames: Tensor) -> np.ndarray:
        """I3D features ``[B, d]`` (float64) of clips ``[B, T, C, H, W]`` in [0, 1]."""
        net = self._network(frames.device)
        step = self.config.clips_per_pass
        out: list[np.ndarray] = []
        tf32 = torch.backends.cudnn.allow_tf32
        torch.backends.cudnn.allow_tf32 = False  # TF32 convolutions would change the features
        try:
            for i in range(0, frames.shape[0], step):
                x = clips_for_i3d(frames[i : i + step])
                try:
                    y = net(x, rescale=False, resize=False, return_features=True)
                except Exception as exc:  # noqa: BLE001 - the network's own failure, made one line
                    text = str(exc).strip().splitlines()
                    raise DataError(
                        f"the FVD network failed on clips of {x.shape[2]} frames at {SIDE}x{SIDE}: "
                        f"{text[-1] if text else type(exc).__name__}"
                    ) from None
                if not isinstance(y, Tensor) or y.ndim != 2 or y.shape[0] != x.shape[0]:
                    shape = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
                    raise CheckpointError(
                        f"the FVD network returned {shape} for {x.shape[0]} clips, not [clips, features]; "
                        f"is it StyleGAN-V's {I3D_SHA256[:12]}... i3d_torchscript.pt?"
                    )
                out.append(y.detach().double().cpu().numpy())
        finally:
            torch.backends.cudnn.allow_tf32 = tf32
        return np.concatenate(out) if out else np.zeros((0, 0))

    # -- the SetMetric contract -------------------------------------------------------

    def new_state(self) -> _State:
        return _State()

    def _clips(self, future: Tensor, context: Tensor) -> Tensor:
        if self.config.frames == "prediction":
            return future
        return torch.cat([context.to(future.dtype), future], dim=1)

    def _check(self, pred: Tensor, true: Tensor, context: Tensor) -> None:
        check_pair(pred, true)
        if context.ndim != 5 or context.shape[0] != true.shape[0] or context.shape[2:] != true.shape[2:]:
            raise DataError(
                f"context {tuple(context.shape)} does not match target {tuple(true.shape)}: "
                "both must be [B, *, C, H, W] with the same B, C, H, W"
            )

    def _note(self, state: _State, clips: Tensor) -> None:
        state.frames_per_clip = int(clips.shape[1])
        state.channels = int(clips.shape[2])
        state.size = (int(clips.shape[3]), int(clips.shape[4]))

    def update(self, state: _State, pred: Tensor, true: Tensor, context: Tensor) -> None:
        self.update_many([state], [pred], true, context)

    def update_many(self, states: Any, preds: Any, true: Tensor, context: Tensor) -> None:
        """Each predictor's features; the truth's are computed once per batch for all of them."""
        states, preds = list(states), list(preds)
        if len(states) != len(preds):
            raise ValueError(f"{len(states)} states for {len(preds)} predictions")
        for pred in preds:
            self._check(pred, true, context)
        if true.shape[0] == 0 or not states:
            return
        true_clips = self._clips(true, context)
        ft = self.features(true_clips)
        for state, pred in zip(states, preds):
            state.true.append(ft)  # shared, never written
            state.pred.append(self.features(self._clips(pred, context)))
            self._note(state, true_clips)

    def compute(self, state: _State) -> SetValue:
        if not state.pred:
            raise DataError("FVD saw no test clips; check eval.max_sequences and the test split")
        x = np.concatenate(state.pred)
        y = np.concatenate(state.true)
        n = int(x.shape[0])
        value = frechet_distance(*gaussian_stats(x), *gaussian_stats(y))
        spread = self._bootstrap(x, y) if np.isfinite(value) else None
        return SetValue(value=value, spread=spread, n=n, info=self._info(state, n, int(x.shape[1])))

    def _bootstrap(self, x: np.ndarray, y: np.ndarray) -> float | None:
        """Std of the FVD over paired resamplings of the clips (fixed seed), or None."""
        n, reps = x.shape[0], self.config.bootstrap
        if reps < 2 or n < 2:
            return None
        rng = np.random.default_rng(_BOOTSTRAP_SEED)
        values = []
        for _ in range(reps):
            idx = rng.integers(0, n, size=n)
            values.append(frechet_distance(*gaussian_stats(x[idx]), *gaussian_stats(y[idx])))
        return float(np.std(values, ddof=1))

    def _info(self, state: _State, n: int, dims: int) -> dict[str, Any]:
        grey = state.channels == 1
        h, w = state.size or (0, 0)
        reps = self.config.bootstrap
        return {
            "network": "I3D Kinetics-400 (StyleGAN-V TorchScript), features before the softmax",
            "network_sha256": self._sha256,
            "reference_sha256": I3D_SHA256,
            "features": dims,
            "frames": self.config.frames,
            "frames_per_clip": state.frames_per_clip,
            "resize": f"{h}x{w} -> {SIDE}x{SIDE} bilinear, align_corners=False, no antialias, aspect not kept",
            "range": "prediction clipped to [0, 1], both quantised to 8 bits, mapped to [-1, 1]",
            "channels": "grey replicated to RGB" if grey else "RGB",
            "videos": n,
            "covariance": "normalised by n; Frechet distance in float64 via symmetric eigendecompositions",
            "spread": f"std over {reps} paired bootstrap resamplings of the clips, seed {_BOOTSTRAP_SEED}"
            if reps >= 2 and n >= 2
            else "none",
        }
