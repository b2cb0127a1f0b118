"""Scheduled sampling (Bengio et al. 2015, as used by ConvLSTM/PredRNN) and PredRNN-V2's reverse
scheduled sampling.

During training the recurrent rollout takes, at every input position ``t = 1 .. T+S-2``, either
the ground-truth frame ``x_t`` or the model's own previous prediction ``x̂_t``. A mask
``[B, T+S-2]`` in {0, 1} holds that choice per clip and position (1 = ground truth); position 0
always takes ``x_0``.

* Scheduled sampling (PredRNN, OpenSTL): context positions always take ground truth; each
  future position takes ground truth with probability ``η``, which starts at ``η_0`` (1.0),
  falls by ``δ`` (2e-5) per iteration and is 0 from iteration ``stop`` (50k) on.
* Reverse scheduled sampling (PredRNN-V2, Wang et al. 2022): context positions take ground
  truth with probability ``η_r`` rising from 0.5 to 1 (exponentially between ``step1`` and
  ``step2``), future positions with ``η`` falling linearly from 0.5 to 0 — the encoder is first
  trained to cope with its own predictions, the decoder to stop relying on ground truth.
* ``off``: context positions ground truth, future positions always the model's own output
  (exactly the test-time rollout).

The schedules count iterations (the published form). With ``sampling_span`` (a fraction of the
run's planned steps) a schedule keeps its shape but is rescaled in time to end at that fraction
of the run (:func:`run_relative_step`): a budgeted run of any length reaches the end state.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor
from vpbench.errors import ConfigError

__all__ = ["SamplingMode", "run_relative_step", "scheduled_eta", "reverse_etas", "sampling_probs", "sampling_mask", "step_input"]

SamplingMode = Literal["scheduled", "reverse", "off"]


def run_relative_step(step: int, span: float | None, schedule_end: int, total_steps: int | None) -> float:
    """The step of the configured (absolute) schedule that training step ``step`` stands for.

    ``span`` None: ``step`` itself (the published, absolute schedule). Otherwise the schedule,
    configured to end at step ``schedule_end`` (``sampling_stop``, or ``reverse_step2``), is
    stretched or shrunk in time, its shape kept, to end at ``span · total_steps``, the given
    fraction of the run's planned steps: ``step · schedule_end / (span · total_steps)``.
    """
    if span is None or step == 0:
        return float(step)
    if total_steps is None:
        raise ConfigError(
            "model.sampling_span needs the run's planned steps, which the harness gives before training "
            "(VideoModel.on_training_plan); train through vpbench, or set model.sampling_span=null"
        )
    end = span * total_steps
    if end <= 0:
        return float(max(schedule_end, step))  # no run to stretch over: the end state
    return step * schedule_end / end


def scheduled_eta(step: float, start: float = 1.0, decrement: float = 2e-5, stop: int = 50_000) -> float:
    """η(step) = max(0, η_0 − δ·step) before ``stop``, 0 from ``stop`` on."""
    if step >= stop:
        return 0.0
    return max(0.0, start - decrement * step)


def reverse_etas(step: float, step1: int = 25_000, step2: int = 50_000, alpha: float = 5_000.0) -> tuple[float, float]:
    """PredRNN-V2's ``(η_r, η)``: ground-truth probabilities for context and future positions.

    η_r = 0.5 before ``step1``, 1 − 0.5·exp(−(step − step1)/α) until ``step2``, then 1;
    η   = 0.5 before ``step1``, falling linearly to 0 at ``step2``, then 0.
    """
    if step < step1:
        return 0.5, 0.5
    if step < step2:
        r_eta = 1.0 - 0.5 * math.exp(-float(step - step1) / alpha)
        eta = 0.5 - 0.5 * (step - step1) / (step2 - step1)
        return r_eta, eta
    return 1.0, 0.0


def sampling_probs(
    mode: SamplingMode,
    step: float,
    *,
    start: float,
    decrement: float,
    stop: int,
    step1: int,
    step2: int,
    alpha: float,
) -> tuple[float, float]:
    """``(p_context, p_future)``: probability of ground truth at context / future positions."""
    if mode == "scheduled":
        return 1.0, scheduled_eta(step, start, decrement, stop)
    if mode == "reverse":
        return reverse_etas(step, step1, step2, alpha)
    return 1.0, 0.0


def sampling_mask(batch: int, context: int, horizon: int, p_context: float, p_future: float) -> Tensor:
    """Bernoulli mask ``[B, T+S-2]`` (float, on CPU) for input positions ``1 .. T+S-2``.

    Positions ``1 .. T-1`` are context frames, ``T .. T+S-2`` future frames. Drawn from torch's
    global CPU generator, which the harness seeds and restores on resume.
    """
    probs = torch.cat([torch.full((context - 1,), p_context), torch.full((horizon - 1,), p_future)])
    u = torch.rand(batch, probs.numel())
    return (u < probs).float()


def step_input(frames: Tensor, mask: Tensor, t: int, x_hat: Tensor) -> Tensor:
    """The input of step ``t`` of a rollout over ``frames [B, n, ...]``: the true frame 0 at
    ``t = 0``; for ``0 < t < n`` the true frame where ``mask[:, t - 1]`` is 1 and the previous
    prediction ``x_hat`` where it is 0 (scheduled sampling); past the given frames ``x_hat``."""
    b, n = frames.shape[:2]
    if t == 0:
        return frames[:, 0]
    if t < n:
        m = mask[:, t - 1].view(b, *[1] * (frames.dim() - 2)).to(frames.dtype)
        return m * frames[:, t] + (1 - m) * x_hat
    return x_hat
