"""SimVP (v1: IncepU translator, v2: gSTA translator) and TAU as vpbench models.

SimVP maps the ``T`` context frames to the next ``T`` frames in one pass::

    z_t = Enc(x_t)                          x [B, T, C, H, W] -> z [B, T, C_S, H', W'], H' = H / 2^(N_S/2)
    ẑ = Translator(stack_t z_t)             [B, T·C_S, H', W'] -> [B, T·C_S, H', W']
    x̂_{T+t} = Dec(ẑ_t, Enc_1(x_t))          -> [B, T, C, H, W]

A horizon ``S ≠ T`` is predicted as in OpenSTL: the output is fed back as the next input until
``S`` frames exist, and the surplus is dropped. Training minimises the MSE of those ``S``
frames; TAU adds its differential divergence regulariser (:func:`differential_divergence`)::

    L = MSE(x̂, x) + α · DDR(x̂, x),   α = 0.1
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from pydantic import Field
from torch import Tensor, nn

import vpbench
from vpbench.errors import ConfigError

from .incepu import IncepU, inception_groups
from .metablocks import Gate, MetaNet
from .spatial import Decoder, Encoder

__all__ = ["SimVPConfig", "SimVP", "TAU", "differential_divergence"]


class SimVPConfig(vpbench.ComponentConfig):
    """Shared by SimVP and TAU. Defaults: OpenSTL's Moving-MNIST size (``hid_S 64, hid_T 512, N_S 4, N_T 8``)."""

    hid_s: int = Field(64, ge=2, description="C_S: channels of the spatial encoder/decoder (OpenSTL hid_S); even")
    hid_t: int = Field(512, ge=2, description="C_T: channels of the translator (OpenSTL hid_T)")
    n_s: int = Field(4, ge=2, description="N_S: encoder and decoder layers; even, resolution / 2^(N_S/2)")
    n_t: int = Field(8, ge=2, description="N_T: translator blocks (IncepU: per U-Net half)")
    kernel_enc: int = Field(3, ge=1, description="kernel of the encoder convolutions (spatio_kernel_enc); odd")
    kernel_dec: int = Field(3, ge=1, description="kernel of the decoder convolutions (spatio_kernel_dec); odd")
    mlp_ratio: float = Field(8.0, gt=1, description="gSTA/TAU: MLP width over block width")
    drop: float = Field(0.0, ge=0, lt=1, description="gSTA/TAU: dropout in the MLP")
    drop_path: float = Field(0.0, ge=0, lt=1, description="gSTA/TAU: stochastic depth of the last block (see README)")
    incep_kernels: list[int] = Field([3, 5, 7, 11], min_length=1, description="IncepU: odd branch kernels")
    groups: int = Field(8, ge=1, description="IncepU: groups of the branch convolutions and their GroupNorm")
    lr: float | None = Field(None, gt=0, description="Adam learning rate of the stage; none uses train.lr")


class _Predictor(vpbench.VideoModel):
    """Encoder, translator, decoder; ``gate`` picks the translator."""

    config: SimVPConfig

    def __init__(
        self, config: SimVPConfig, frame_shape: vpbench.FrameShape, context: int, horizon: int, gate: str
    ) -> None:
        super().__init__(config, frame_shape, context, horizon)
        c = config
        if c.n_s % 2:
            raise ConfigError(f"model.n_s={c.n_s} must be even (every second layer halves the resolution); use 2 or 4")
        if c.hid_s % 2:
            raise ConfigError(f"model.hid_s={c.hid_s} must be even (GroupNorm with 2 groups); use e.g. 16 or 64")
        if c.kernel_enc % 2 == 0 or c.kernel_dec % 2 == 0 or any(k % 2 == 0 for k in c.incep_kernels):
            raise ConfigError("model.kernel_enc, model.kernel_dec and model.incep_kernels must be odd; use e.g. 3")
        scale = 2 ** (c.n_s // 2)
        if frame_shape.height % scale or frame_shape.width % scale:
            raise ConfigError(
                f"model.n_s={c.n_s} down-samples by {scale}, which must divide the frame size "
                f"{frame_shape.height}x{frame_shape.width}; use a smaller n_s"
            )
        channels = context * c.hid_s  # frames stacked as channels
        self.enc = Encoder(frame_shape.channels, c.hid_s, c.n_s, c.kernel_enc)
        self.translator: nn.Module
        if gate == "incepu":
            g = inception_groups(c.hid_t // 2, c.groups)
            if c.hid_t % g or channels % g:
                raise ConfigError(
                    f"model.groups={c.groups} must divide model.hid_t={c.hid_t} and context x hid_s={channels} "
                    "(GroupNorm); use hid_t and hid_s multiples of groups"
                )
            self.translator = IncepU(channels, c.hid_t, c.n_t, c.incep_kernels, c.groups)
        else:
            self.translator = MetaNet(
                channels, c.hid_t, c.n_t, "tau" if gate == "tau" else "gsta",
                mlp_ratio=c.mlp_ratio, drop=c.drop, drop_path=c.drop_path,
            )
        self.dec = Decoder(c.hid_s, frame_shape.channels, c.n_s, c.kernel_dec)

    def step(self, x: Tensor) -> Tensor:
        """One pass: ``T`` frames ``[B, T, C, H, W]`` to the next ``T`` (unclamped)."""
        b, t = x.shape[:2]
        z, skip = self.enc(rearrange(x, "b t c h w -> (b t) c h w"))  # [BT, C_S, H', W'], [BT, C_S, H, W]
        z = self.translator(rearrange(z, "(b t) c h w -> b (t c) h w", b=b))  # [B, T·C_S, H', W']
        y = self.dec(rearrange(z, "b (t c) h w -> (b t) c h w", t=t), skip)  # [BT, C, H, W]
        return rearrange(y, "(b t) c h w -> b t c h w", b=b)

    def forecast(self, context: Tensor, horizon: int) -> Tensor:
        """``[B, T, C, H, W] -> [B, S, C, H, W]`` unclamped, feeding outputs back when ``S > T``."""
        outs: list[Tensor] = []
        x, made = context, 0
        while made < horizon:
            x = self.step(x)
            outs.append(x)
            made += x.shape[1]
        return torch.cat(outs, dim=1)[:, :horizon]

    def predict(self, context: Tensor, horizon: int) -> Tensor:
        if context.shape[1] != self.context:
            raise ConfigError(f"this model was built for {self.context} context frames, got {context.shape[1]}")
        return self.forecast(context, horizon).clamp(0, 1)

    def losses(self, pred: Tensor, target: Tensor) -> dict[str, Tensor]:
        """Loss terms of a prediction and its target ``[B, S, C, H, W]``; ``loss`` is their sum."""
        mse = F.mse_loss(pred, target)
        return {"loss": mse, "mse": mse}

    def training_loss(self, batch: Tensor, global_step: int) -> vpbench.StepOutput:
        context, target = batch[:, : self.context], batch[:, self.context :]
        terms = self.losses(self.forecast(context, target.shape[1]), target)
        return vpbench.StepOutput(loss=terms["loss"], logs={k: float(v.detach()) for k, v in terms.items() if k != "loss"})

    def stages(self) -> list[vpbench.Stage]:
        return [
            vpbench.Stage(name="predict", step=self.training_loss, parameters=self.parameters, lr=self.config.lr)
        ]


class SimVP(_Predictor):
    """SimVP; ``model.translator`` picks v1 (``incepu``) or v2 (``gsta``)."""

    class Config(SimVPConfig):
        translator: Literal["incepu", "gsta"] = Field(
            "incepu", description="incepu: SimVP v1 (Inception U-Net); gsta: SimVP v2 (gated spatiotemporal attention)"
        )

    config: Config

    def __init__(self, config: Config, frame_shape: vpbench.FrameShape, context: int, horizon: int) -> None:
        super().__init__(config, frame_shape, context, horizon, config.translator)


def differential_divergence(pred: Tensor, target: Tensor, tau: float = 0.1, eps: float = 1e-12) -> Tensor:
    """TAU's differential divergence regulariser (Tan et al., CVPR 2023, Eq. 6).

    With the frame differences ``Δx̂_i = x̂_{i+1} − x̂_i`` and ``Δx_i`` flattened over pixels,
    ``p_i = softmax(Δx̂_i / τ)``, ``q_i = softmax(Δx_i / τ)``, the loss is the mean of
    ``p log(p / (q + ε) + ε)`` over clips, differences and pixels (a KL divergence up to the
    mean). Zero when there are fewer than three frames.
    """
    b, s = pred.shape[:2]
    if s <= 2:
        return pred.new_zeros(())
    dp = rearrange(pred[:, 1:] - pred[:, :-1], "b s c h w -> b s (c h w)")
    dt = rearrange(target[:, 1:] - target[:, :-1], "b s c h w -> b s (c h w)")
    p, q = F.softmax(dp / tau, dim=-1), F.softmax(dt / tau, dim=-1)
    return (p * torch.log(p / (q + eps) + eps)).mean()


class TAU(_Predictor):
    """TAU: the SimVP frame with temporal attention units, trained with ``MSE + α·DDR``."""

    class Config(SimVPConfig):
        alpha: float = Field(0.1, ge=0, description="weight α of the differential divergence loss (published: 0.1)")
        ddr_tau: float = Field(0.1, gt=0, description="softmax temperature τ of the differential divergence loss")

    config: Config

    def __init__(self, config: Config, frame_shape: vpbench.FrameShape, context: int, horizon: int) -> None:
        super().__init__(config, frame_shape, context, horizon, "tau")

    def losses(self, pred: Tensor, target: Tensor) -> dict[str, Tensor]:
        mse = F.mse_loss(pred, target)
        ddr = differential_divergence(pred, target, self.config.ddr_tau)
        return {"loss": mse + self.config.alpha * ddr, "mse": mse, "ddr": ddr}
