"""What ConvLSTM, PredRNN and PredRNN-V2 share: the config, the patched recurrent rollout with
scheduled sampling, the training stage and the leakage-free ``predict``. A subclass may start
training rollouts from its own state (``train_state``) and add loss terms read from the final
state (``state_losses``: PredRNN-V2's decoupling loss).

One rollout step maps the input frame at time ``t`` to the prediction of frame ``t+1``::

    x̂_{t+1} = W_out * H^L_t,    H^L_t = stack(input_t, state_{t-1})

over ``t = 0 .. T+S-2``: ``T+S-1`` predicted frames, the first ``T-1`` of which reconstruct
context frames 2..T from ground truth; all of them enter the loss (as in PredRNN and
OpenSTL). Input ``t ≥ 1`` is ``m_t·x_t + (1 − m_t)·x̂_t`` with the scheduled-sampling mask
``m`` (:mod:`.sampling`); at test time ``m_t = 1`` for context and 0 afterwards.
"""

from __future__ import annotations

import abc
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

import vpbench
from vpbench.errors import ConfigError

from .patch import check_patch, from_patches, to_patches
from .sampling import SamplingMode, run_relative_step, sampling_mask, sampling_probs, step_input

__all__ = ["RecurrentConfig", "RecurrentPredictor"]


class RecurrentConfig(vpbench.ComponentConfig):
    """Hyper-parameters shared by ConvLSTM and PredRNN (defaults: the Moving-MNIST set-up)."""

    num_layers: int = Field(4, ge=1, description="stacked recurrent layers")
    hidden: int = Field(128, ge=1, description="hidden channels of every layer")
    filter_size: int = Field(5, ge=1, description="odd convolution kernel size of the cells")
    patch_size: int = Field(4, ge=1, description="patch reshaping factor; must divide H and W (4 MMNIST, 2 KTH)")
    layer_norm: bool = Field(False, description="layer norm on every gate convolution (PredRNN's --layer_norm)")
    forget_bias: float = Field(1.0, description="constant added to forget-gate pre-activations")
    sampling: SamplingMode = Field(
        "scheduled", description="'scheduled' (PredRNN/OpenSTL), 'reverse' (PredRNN-V2) or 'off' (no ground truth fed back)"
    )
    sampling_start: float = Field(1.0, ge=0, le=1, description="scheduled sampling: initial probability of ground truth")
    sampling_decrement: float = Field(2e-5, ge=0, description="scheduled sampling: decrease of that probability per step")
    sampling_stop: int = Field(50_000, ge=0, description="scheduled sampling: step from which the probability is 0")
    reverse_step1: int = Field(25_000, ge=0, description="reverse sampling: end of the constant 0.5 phase")
    reverse_step2: int = Field(50_000, ge=1, description="reverse sampling: end of the annealing phase")
    reverse_alpha: float = Field(5_000.0, gt=0, description="reverse sampling: time constant of the context schedule")
    sampling_span: float | None = Field(
        None,
        gt=0,
        le=1,
        description="schedule length relative to the run: the schedule, as configured (ending at sampling_stop"
        ", or reverse_step2 for reverse sampling), is rescaled in time to end at this fraction of the run's planned steps (max_steps or the budget's); "
        "none: the absolute steps, as published",
    )
    reverse_input: bool = Field(False, description="also train on time-reversed clips (PredRNN's --reverse_input)")
    lr: float | None = Field(None, gt=0, description="Adam learning rate of the stage; none uses train.lr")


class RecurrentPredictor(vpbench.VideoModel, abc.ABC):
    """Base of the patched recurrent predictors; subclasses build the cell stack."""

    Config = RecurrentConfig
    config: RecurrentConfig

    def __init__(self, config: RecurrentConfig, frame_shape: vpbench.FrameShape, context: int, horizon: int) -> None:
        super().__init__(config, frame_shape, context, horizon)
        if config.filter_size % 2 == 0:
            raise ConfigError(f"model.filter_size={config.filter_size} must be odd for 'same' padding; use e.g. 3 or 5")
        if context < 1 or horizon < 1:
            raise ConfigError(f"recurrent models need context >= 1 and horizon >= 1 (got {context} -> {horizon})")
        if config.sampling == "reverse" and config.reverse_step2 <= config.reverse_step1:
            raise ConfigError("model.reverse_step2 must be greater than model.reverse_step1")
        self.size = check_patch(frame_shape.height, frame_shape.width, config.patch_size)
        self.patch_channels = frame_shape.channels * config.patch_size**2
        self.build(self.patch_channels)
        # x̂ = W_out * H^L: a bias-free 1×1 convolution back to patch channels
        self.readout = nn.Conv2d(config.hidden, self.patch_channels, 1, bias=False)

    # ------------------------------------------------------------------ subclass hooks

    @abc.abstractmethod
    def build(self, cin: int) -> None:
        """Create the cell stack for ``cin`` input channels."""

    @abc.abstractmethod
    def init_state(self, batch: int, like: Tensor) -> Any:
        """Zero recurrent state for ``batch`` clips (dtype/device of ``like``)."""

    @abc.abstractmethod
    def cell_step(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        """One time step through the stack: ``x [B, Cp, h, w] -> (H^L_t [B, hid, h, w], state)``."""

    # ------------------------------------------------------------------------ rollout

    def train_state(self, batch: int, like: Tensor) -> Any:
        """Initial state of a training rollout (default: :meth:`init_state`); a subclass may
        carry extra loss terms in it, which :meth:`state_losses` reads at the end."""
        return self.init_state(batch, like)

    def state_losses(self, state: Any) -> dict[str, tuple[float, Tensor]]:
        """Extra loss terms ``{name: (weight, value)}`` from a training rollout's final state."""
        return {}

    def rollout(self, frames: Tensor, mask: Tensor, steps: int) -> Tensor:
        """Run ``steps`` recurrent steps.

        Args:
            frames: patched ground truth ``[B, N, Cp, h, w]`` the rollout may see (N ≥ 1).
            mask: ``[B, steps-1]``; weight of ground truth at inputs ``1 .. steps-1``. Inputs
                at ``t ≥ N`` must have weight 0 — they are never read.
            steps: number of predictions.

        Returns:
            ``[B, steps, Cp, h, w]``: the prediction of frames ``1 .. steps``.
        """
        return self.unroll(frames, mask, steps, self.init_state(frames.shape[0], frames))[0]

    def unroll(self, frames: Tensor, mask: Tensor, steps: int, state: Any) -> tuple[Tensor, Any]:
        """:meth:`rollout` from a given initial ``state``; also returns the final state."""
        preds: list[Tensor] = []
        x_hat = frames[:, 0]
        for t in range(steps):
            x = step_input(frames, mask, t, x_hat)
            top, state = self.cell_step(x, state)
            x_hat = self.readout(top)
            preds.append(x_hat)
        return torch.stack(preds, dim=1), state

    #: the run's planned steps, told by the harness (:meth:`on_training_plan`); for ``sampling_span``
    run_steps: int | None = None

    def on_training_plan(self, total_steps: int) -> None:
        self.run_steps = total_steps

    def sampling_probs(self, global_step: int) -> tuple[float, float]:
        c = self.config
        end = c.reverse_step2 if c.sampling == "reverse" else c.sampling_stop
        return sampling_probs(
            c.sampling,
            run_relative_step(global_step, c.sampling_span, end, self.run_steps),
            start=c.sampling_start,
            decrement=c.sampling_decrement,
            stop=c.sampling_stop,
            step1=c.reverse_step1,
            step2=c.reverse_step2,
            alpha=c.reverse_alpha,
        )

    def training_rollout(self, batch: Tensor, global_step: int) -> tuple[Tensor, Tensor, tuple[float, float]]:
        """Predictions and targets ``[B, T+S-1, Cp, h, w]`` of a training clip ``[B, T+S, C, H, W]``,
        with the ground-truth probabilities ``(p_context, p_future)`` used at ``global_step``."""
        preds, target, probs, _ = self.training_unroll(batch, global_step)
        return preds, target, probs

    def training_unroll(self, batch: Tensor, global_step: int) -> tuple[Tensor, Tensor, tuple[float, float], Any]:
        """:meth:`training_rollout` from :meth:`train_state`, with the final state."""
        b, total = batch.shape[:2]
        probs = self.sampling_probs(global_step)
        mask = sampling_mask(b, self.context, total - self.context, *probs).to(batch.device)
        frames = to_patches(batch, self.config.patch_size)  # [B, T+S, Cp, h, w]
        preds, state = self.unroll(frames, mask, total - 1, self.train_state(b, frames))
        return preds, frames[:, 1:], probs, state

    def training_loss(self, batch: Tensor, global_step: int) -> vpbench.StepOutput:
        """MSE over all ``T+S-1`` predicted frames (context reconstructions included), plus the
        weighted :meth:`state_losses` of the subclass, if any."""
        if self.config.reverse_input:
            # PredRNN also trains on the time-reversed clip; here both share one optimiser step
            batch = torch.cat([batch, batch.flip(1)], dim=0)
        preds, target, (p_ctx, p_fut), state = self.training_unroll(batch, global_step)
        loss = F.mse_loss(preds.float(), target.float())
        logs = {"eta": p_fut, "eta_context": p_ctx}
        extra = self.state_losses(state)
        if extra:
            logs["mse"] = float(loss.detach())
            for name, (weight, value) in extra.items():
                loss = loss + weight * value.float()
                logs[name] = float(value.detach())
        return vpbench.StepOutput(loss=loss, logs=logs)

    def stages(self) -> list[vpbench.Stage]:
        return [
            vpbench.Stage(
                name="rollout",
                step=self.training_loss,
                parameters=self.parameters,
                lr=self.config.lr,
                selects=True,
            )
        ]

    def predict(self, context: Tensor, horizon: int) -> Tensor:
        """``[B, T, C, H, W] -> [B, S, C, H, W]``: context fed as ground truth, then free-running."""
        b, t = context.shape[:2]
        frames = to_patches(context, self.config.patch_size)
        mask = torch.ones(b, t + horizon - 2, device=context.device)
        mask[:, max(t - 1, 0) :] = 0  # future inputs: the model's own predictions only
        preds = self.rollout(frames, mask, t + horizon - 1)[:, t - 1 :]
        return from_patches(preds, self.config.patch_size).clamp(0, 1)
