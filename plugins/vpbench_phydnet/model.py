"""PhyDNet (Le Guen & Thome, CVPR 2020): a physical branch (PhyCell) and a residual branch
(ConvLSTM) in a shared latent space, decoded together.

One step maps frame ``x_t [B, C, H, W]`` to the prediction of ``x_{t+1}``::

    e_t = E(x_t)                                   [B, 2nf, H/p, W/p]
    h^p_t = PhyCell(E_p(e_t), h^p_{t-1})           physical state   [B, 2nf, h, w]
    h^r_t = ConvLSTM(E_r(e_t), h^r_{t-1})          residual state   (top layer: [B, 2nf, h, w])
    x̂_{t+1} = σ(D(D_p(h^p_t) + D_r(h^r_t)))         [B, C, H, W]

Training (as published): the context is encoded from ground truth (``T−1`` reconstructions of
frames 2..T); from ``x_T`` on, the ``S`` future inputs are all ground truth (teacher forcing)
or all the model's own predictions, one coin per batch with ``P(teacher) = max(0, 1 − 0.003·epoch)``.
The loss is ``Σ_t MSE(x̂_{t+1}, x_{t+1})`` over the ``T+S−1`` steps (a sum of per-frame means) plus
the moment loss of PhyCell's filters (:mod:`.moments`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

import vpbench
from vpbench.errors import ConfigError

from .cells import ConvLSTMCell, FrameDecoder, FrameEncoder, PhyCell, down_block, up_block
from .moments import moment_loss, moment_matrix, moment_targets

__all__ = ["PhyDNet"]

State = tuple[Tensor, list[tuple[Tensor, Tensor]]]

_K = 7  # PhyCell's filter size: 49 moment filters, GroupNorm(7) as published


class PhyDNet(vpbench.VideoModel):
    class Config(vpbench.ComponentConfig):
        """PhyDNet; defaults: the published Moving-MNIST model (3.09M parameters)."""

        patch_size: int = Field(4, description="spatial downsampling of the frame encoder: 4 (MMNIST, KTH) or 2")
        nf: int = Field(32, ge=16, description="frame encoder width; the latent has 2*nf channels (multiple of 16)")
        convlstm_hidden: list[int] = Field(
            [128, 128, 64], min_length=1, description="ConvLSTM layer widths; the last must equal 2*nf"
        )
        convlstm_kernel: int = Field(3, ge=1, description="odd ConvLSTM filter size")
        moment_weight: float = Field(1.0, ge=0, description="weight of the moment loss on PhyCell's filters")
        teacher_forcing_start: float = Field(1.0, ge=0, le=1, description="P(teacher forcing) at epoch 0")
        teacher_forcing_decay: float = Field(0.003, ge=0, description="decrease of P(teacher forcing) per epoch")
        steps_per_epoch: int = Field(
            625, ge=1, description="optimiser steps per epoch for that schedule (MMNIST: 10,000 clips / batch 16)"
        )
        lr: float | None = Field(None, gt=0, description="Adam learning rate of the stage; none uses train.lr")

    config: Config
    moment_m: Tensor  # M [7, 7] (float64), a buffer
    moment_target: Tensor  # Δ [49, 7, 7], a buffer

    def __init__(self, config: Config, frame_shape: vpbench.FrameShape, context: int, horizon: int) -> None:
        super().__init__(config, frame_shape, context, horizon)
        c = config
        if c.patch_size not in (2, 4):
            raise ConfigError(f"model.patch_size={c.patch_size} is not supported; use 4 (as published) or 2")
        if frame_shape.height % c.patch_size or frame_shape.width % c.patch_size:
            raise ConfigError(
                f"model.patch_size={c.patch_size} does not divide the frame size {frame_shape.height}x{frame_shape.width}; "
                "use a patch size that divides both"
            )
        if c.nf % 16:
            raise ConfigError(f"model.nf={c.nf} must be a multiple of 16 (GroupNorm with 16 groups); use e.g. 16 or 32")
        latent = 2 * c.nf
        if c.convlstm_hidden[-1] != latent:
            raise ConfigError(
                f"model.convlstm_hidden ends with {c.convlstm_hidden[-1]} but must end with 2*nf = {latent} "
                "(the residual branch is decoded like the physical one)"
            )
        if c.convlstm_kernel % 2 == 0:
            raise ConfigError(f"model.convlstm_kernel={c.convlstm_kernel} must be odd; use e.g. 3")
        if context < 1 or horizon < 1:
            raise ConfigError(f"PhyDNet needs context >= 1 and horizon >= 1 (got {context} -> {horizon})")
        ch = frame_shape.channels
        self.size = (frame_shape.height // c.patch_size, frame_shape.width // c.patch_size)
        self.encoder = FrameEncoder(ch, c.nf, c.patch_size)  # E, shared
        self.enc_phys = nn.Sequential(down_block(latent, latent, 1), down_block(latent, latent, 1))  # E_p
        self.enc_res = nn.Sequential(down_block(latent, latent, 1), down_block(latent, latent, 1))  # E_r
        self.phycell = PhyCell(latent, _K)
        widths = [latent, *c.convlstm_hidden]
        self.convlstm = nn.ModuleList(
            ConvLSTMCell(widths[i], widths[i + 1], c.convlstm_kernel) for i in range(len(c.convlstm_hidden))
        )
        self.dec_phys = nn.Sequential(up_block(latent, latent, 1), up_block(latent, latent, 1))  # D_p
        self.dec_res = nn.Sequential(up_block(latent, latent, 1), up_block(latent, latent, 1))  # D_r
        self.decoder = FrameDecoder(ch, c.nf, c.patch_size)  # D, shared
        # constants of the moment loss; not in the state dict
        self.register_buffer("moment_m", moment_matrix(_K), persistent=False)
        self.register_buffer("moment_target", moment_targets(_K), persistent=False)

    # ------------------------------------------------------------------ one step

    def init_state(self, like: Tensor) -> State:
        b = like.shape[0]
        phys = like.new_zeros(b, 2 * self.config.nf, *self.size)
        res = [(like.new_zeros(b, w, *self.size), like.new_zeros(b, w, *self.size)) for w in self.config.convlstm_hidden]
        return phys, res

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """``x_t [B, C, H, W] -> x̂_{t+1} [B, C, H, W]`` in (0, 1)."""
        phys, res = state
        e = self.encoder(x)
        phys = self.phycell(self.enc_phys(e), phys)
        inp, new = self.enc_res(e), []
        for cell, hc in zip(self.convlstm, res):
            inp, c_ = cell(inp, hc)
            new.append((inp, c_))
        out = torch.sigmoid(self.decoder(self.dec_phys(phys) + self.dec_res(inp)))
        return out, (phys, new)

    def rollout(self, frames: Tensor, steps: int, teacher: bool, context: int) -> Tensor:
        """Predictions ``[B, steps, C, H, W]`` of frames ``1 .. steps``.

        Input ``t`` is ground truth ``frames[:, t]`` for ``t < context`` and, after it, the ground
        truth when ``teacher`` (it must then be in ``frames``), else the previous prediction.
        """
        state = self.init_state(frames)
        x, preds = frames[:, 0], []
        for t in range(steps):
            out, state = self.step(x, state)
            preds.append(out)
            if t + 1 < steps:
                x = frames[:, t + 1] if (t + 1 < context or teacher) else out
        return torch.stack(preds, dim=1)

    # ------------------------------------------------------------------ training

    def teacher_forcing_ratio(self, global_step: int) -> float:
        c = self.config
        epoch = global_step // c.steps_per_epoch
        return max(0.0, c.teacher_forcing_start - c.teacher_forcing_decay * epoch)

    def moment_loss(self) -> Tensor:
        """``[C]``: the moment loss of each of PhyCell's input channels."""
        return moment_loss(self.phycell.conv_phi.weight, self.moment_m, self.moment_target)

    def loss_with(self, batch: Tensor, teacher: bool) -> tuple[Tensor, Tensor, Tensor]:
        """``(loss, Σ_t MSE, moment loss)`` of a clip ``[B, T+S, C, H, W]`` with the teacher-forcing coin given."""
        steps = batch.shape[1] - 1
        preds = self.rollout(batch, steps, teacher, self.context)
        target = batch[:, 1:]
        frame_mse = torch.zeros((), device=batch.device)
        for t in range(steps):  # a sum of per-frame means, as published
            frame_mse = frame_mse + F.mse_loss(preds[:, t].float(), target[:, t].float())
        per_channel = self.moment_loss()
        loss = frame_mse
        for term in per_channel:  # added one channel at a time, in the reference's order
            loss = loss + self.config.moment_weight * term
        return loss, frame_mse, per_channel.sum()

    def training_loss(self, batch: Tensor, global_step: int) -> vpbench.StepOutput:
        ratio = self.teacher_forcing_ratio(global_step)
        teacher = bool(torch.rand(()) < ratio)  # torch's CPU generator: seeded and restored by the harness
        loss, frame_mse, moments = self.loss_with(batch, teacher)
        steps = batch.shape[1] - 1
        return vpbench.StepOutput(
            loss=loss,
            logs={
                "mse": float(frame_mse.detach()) / steps,
                "moment": float(moments.detach()),
                "teacher_forcing": ratio,
            },
        )

    def stages(self) -> list[vpbench.Stage]:
        return [vpbench.Stage(name="phydnet", step=self.training_loss, parameters=self.parameters, lr=self.config.lr)]

    def predict(self, context: Tensor, horizon: int) -> Tensor:
        """``[B, T, C, H, W] -> [B, S, C, H, W]``: ``T−1`` encoding steps, then ``S`` free-running ones."""
        t = context.shape[1]
        return self.rollout(context, t - 1 + horizon, False, t)[:, t - 1 :]
