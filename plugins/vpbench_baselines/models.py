"""Blank, copy-last-frame and mean-of-context predictors."""

from __future__ import annotations

from torch import Tensor

from vpbench import VideoModel


class CopyLast(VideoModel):
    """x̂_{T+s} = x_T for s = 1..S."""

    def predict(self, context: Tensor, horizon: int) -> Tensor:
        # [B, T, C, H, W] -> [B, S, C, H, W]
        return context[:, -1:].expand(-1, horizon, -1, -1, -1).clone()


class MeanContext(VideoModel):
    """x̂_{T+s} = (1/T) Σ_t x_t for s = 1..S."""

    def predict(self, context: Tensor, horizon: int) -> Tensor:
        return context.mean(dim=1, keepdim=True).expand(-1, horizon, -1, -1, -1).clone()


class Blank(VideoModel):
    """x̂_{T+s} = 0 for s = 1..S: the background of the digit datasets, no content at all."""

    def predict(self, context: Tensor, horizon: int) -> Tensor:
        return context.new_zeros(context.shape[0], horizon, *context.shape[2:])
