"""MAU (Chang et al., NeurIPS 2021): a stack of motion-aware units between a strided encoder and
a transposed-convolution decoder, trained with PredRNN's scheduled sampling.

One step maps the (patched) input frame ``x_t [B, Cp, H', W']`` to the prediction of ``x_{t+1}``::

    S^0_t = enc(x_t)                       1×1 conv + log2(r) stride-2 3×3 convs, LeakyReLU(0.2): [B, hid, H'/r, W'/r]
    (T^l_t, S^l_t) = MAU_l(T^l_{t-1}, S^{l-1}_t, T^l_{t-τ..t-1}, S^{l-1}_{t-τ..t-1})
    x̂_{t+1} = W_out * dec(S^L_t)           log2(r) ×2 transposed convs ('recall': + encoder skips), 1×1 readout

with ``r`` = ``sr_size``. The history stacks start as ``τ`` zero tensors. Training runs the
``T+S−1`` steps with PredRNN's scheduled sampling on the future inputs and minimises the MSE over
all ``T+S−1`` predicted frames (context reconstructions included), as in MAU and OpenSTL.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

import vpbench
from vpbench.errors import ConfigError
from vpbench_rnn.patch import check_patch, from_patches, to_patches
from vpbench_rnn.sampling import run_relative_step, sampling_mask, scheduled_eta, step_input

from .cell import MAUCell

__all__ = ["MAU"]


class MAU(vpbench.VideoModel):
    class Config(vpbench.ComponentConfig):
        """MAU; defaults: the published Moving-MNIST model (4.48M parameters)."""

        num_layers: int = Field(4, ge=1, description="stacked motion-aware units")
        hidden: int = Field(64, ge=1, description="channels of every unit and of the encoder/decoder")
        filter_size: int = Field(5, ge=1, description="odd filter size of the units' convolutions")
        patch_size: int = Field(1, ge=1, description="patch reshaping factor (1 as published)")
        sr_size: int = Field(4, ge=1, description="encoder downsampling, a power of 2 (4 MMNIST, 2 KTH)")
        tau: int = Field(5, ge=1, description="τ: past states the attention module looks at")
        cell_mode: Literal["normal", "residual"] = Field("normal", description="'residual' adds S^{l-1}_t to S^l_t")
        model_mode: Literal["normal", "recall"] = Field("normal", description="'recall' adds encoder features to the decoder")
        sampling: Literal["scheduled", "off"] = Field("scheduled", description="scheduled sampling of future inputs, or off")
        sampling_start: float = Field(1.0, ge=0, le=1, description="scheduled sampling: initial probability of ground truth")
        sampling_decrement: float = Field(2e-5, ge=0, description="scheduled sampling: decrease per step")
        sampling_stop: int = Field(50_000, ge=0, description="scheduled sampling: step from which the probability is 0")
        sampling_span: float | None = Field(
            None,
            gt=0,
            le=1,
            description="schedule length relative to the run: the schedule, as configured (ending at sampling_stop"
            "), is rescaled in time to end at this fraction of the run's planned steps (max_steps or the budget's); "
            "none: the absolute steps, as published",
        )
        lr: float | None = Field(None, gt=0, description="Adam learning rate of the stage; none uses train.lr")

    config: Config
    #: the run's planned steps, told by the harness (:meth:`on_training_plan`); for ``sampling_span``
    run_steps: int | None = None

    def __init__(self, config: Config, frame_shape: vpbench.FrameShape, context: int, horizon: int) -> None:
        super().__init__(config, frame_shape, context, horizon)
        c = config
        if c.filter_size % 2 == 0:
            raise ConfigError(f"model.filter_size={c.filter_size} must be odd for 'same' padding; use e.g. 3 or 5")
        if c.sr_size & (c.sr_size - 1):
            raise ConfigError(f"model.sr_size={c.sr_size} must be a power of 2 (1, 2, 4, ...)")
        if context < 1 or horizon < 1:
            raise ConfigError(f"MAU needs context >= 1 and horizon >= 1 (got {context} -> {horizon})")
        h, w = check_patch(frame_shape.height, frame_shape.width, c.patch_size)
        if h % c.sr_size or w % c.sr_size:
            raise ConfigError(
                f"model.sr_size={c.sr_size} does not divide the patched frame size {h}x{w}; use a smaller sr_size"
            )
        self.size = (h // c.sr_size, w // c.sr_size)
        cp = frame_shape.channels * c.patch_size**2
        n = int(math.log2(c.sr_size))
        act = nn.LeakyReLU(0.2)
        self.encoders = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(cp, c.hidden, 1), act)]
            + [nn.Sequential(nn.Conv2d(c.hidden, c.hidden, 3, 2, 1), act) for _ in range(n)]
        )
        self.decoders = nn.ModuleList(
            nn.Sequential(nn.ConvTranspose2d(c.hidden, c.hidden, 3, 2, 1, output_padding=1), *([act] if i < n - 1 else []))
            for i in range(n)
        )
        self.cells = nn.ModuleList(
            MAUCell(c.hidden, c.hidden, c.filter_size, self.size, residual=c.cell_mode == "residual")
            for _ in range(c.num_layers)
        )
        self.readout = nn.Conv2d(c.hidden, cp, 1)  # W_out (OpenSTL's srcnn)

    def rollout(self, frames: Tensor, mask: Tensor, steps: int) -> Tensor:
        """``steps`` predictions ``[B, steps, Cp, h, w]`` of patched frames ``1 .. steps``.

        ``frames [B, N, Cp, h, w]``; input ``t ≥ 1`` is ``m·x_t + (1 − m)·x̂_t`` with ``m = mask[:, t−1]``
        (``[B, steps−1]``); inputs at ``t ≥ N`` must have weight 0.
        """
        c = self.config
        b = frames.shape[0]
        zeros = frames.new_zeros(b, c.hidden, *self.size)
        t_state = [zeros] * c.num_layers
        t_hist = [[zeros] * c.tau for _ in range(c.num_layers)]  # T^l_{t-τ..t-1}
        s_hist = [[zeros] * c.tau for _ in range(c.num_layers)]  # S^{l-1}_{t-τ..t-1}
        preds: list[Tensor] = []
        x_hat = frames[:, 0]
        for t in range(steps):
            x = step_input(frames, mask, t, x_hat)
            feats = []
            for enc in self.encoders:
                x = enc(x)
                feats.append(x)
            s = x  # S^0_t [B, hid, h, w]
            for i, cell in enumerate(self.cells):
                th, sh = torch.stack(t_hist[i][-c.tau :]), torch.stack(s_hist[i][-c.tau :])
                s_hist[i] = [*s_hist[i][-c.tau + 1 :], s] if c.tau > 1 else [s]
                t_state[i], s = cell(t_state[i], s, th, sh)
                t_hist[i] = [*t_hist[i][-c.tau + 1 :], t_state[i]] if c.tau > 1 else [t_state[i]]
            out = s
            for i, dec in enumerate(self.decoders):
                out = dec(out)
                if c.model_mode == "recall":
                    out = out + feats[-2 - i]
            x_hat = self.readout(out)
            preds.append(x_hat)
        return torch.stack(preds, dim=1)

    def sampling_eta(self, global_step: int) -> float:
        c = self.config
        if c.sampling == "off":
            return 0.0
        step = run_relative_step(global_step, c.sampling_span, c.sampling_stop, self.run_steps)
        return scheduled_eta(step, c.sampling_start, c.sampling_decrement, c.sampling_stop)

    def on_training_plan(self, total_steps: int) -> None:
        self.run_steps = total_steps

    def loss_with(self, batch: Tensor, mask: Tensor) -> Tensor:
        """MSE over the ``T+S−1`` predicted frames of a clip ``[B, T+S, C, H, W]`` with the mask given."""
        frames = to_patches(batch, self.config.patch_size)
        preds = self.rollout(frames, mask, batch.shape[1] - 1)
        return F.mse_loss(preds.float(), frames[:, 1:].float())

    def training_loss(self, batch: Tensor, global_step: int) -> vpbench.StepOutput:
        eta = self.sampling_eta(global_step)
        b, total = batch.shape[:2]
        mask = sampling_mask(b, self.context, total - self.context, 1.0, eta).to(batch.device)
        return vpbench.StepOutput(loss=self.loss_with(batch, mask), logs={"eta": eta})

    def stages(self) -> list[vpbench.Stage]:
        return [vpbench.Stage(name="mau", step=self.training_loss, parameters=self.parameters, lr=self.config.lr)]

    def predict(self, context: Tensor, horizon: int) -> Tensor:
        """``[B, T, C, H, W] -> [B, S, C, H, W]``: context fed as ground truth, then free-running."""
        b, t = context.shape[:2]
        frames = to_patches(context, self.config.patch_size)
        mask = torch.ones(b, t + horizon - 2, device=context.device)
        mask[:, max(t - 1, 0) :] = 0
        preds = self.rollout(frames, mask, t + horizon - 1)[:, t - 1 :]
        return from_patches(preds, self.config.patch_size).clamp(0, 1)
