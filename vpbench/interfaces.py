"""The contracts between the harness and its plugins.

Shapes follow one convention everywhere: a clip is ``[T, C, H, W]``, a batch of clips is
``[B, T, C, H, W]``, intensities are float in ``[0, 1]``.

* A :class:`VideoDataset` yields clips of ``context + horizon`` frames.
* A :class:`VideoModel` maps a context ``[B, T, C, H, W]`` to a prediction
  ``[B, S, C, H, W]``; training is a list of :class:`Stage` objects the harness runs, so
  the harness owns the loop (device, mixed precision, progress, checkpoints, resume).
* A :class:`Metric` scores every predicted frame: ``[B, S, C, H, W]`` twice to ``[B, S]``.
* A :class:`SetMetric` sees every clip of the test set and returns one :class:`SetValue`
  (FVD and other distribution distances).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from .configbase import ComponentConfig

__all__ = [
    "ComponentConfig",
    "FrameShape",
    "Split",
    "VideoDataset",
    "VideoModel",
    "Stage",
    "StepOutput",
    "Metric",
    "SetMetric",
    "SetValue",
]

Split = Literal["train", "val", "test"]


class FrameShape(NamedTuple):
    """Shape of one frame, ``(C, H, W)``: a named tuple, so ``c, h, w = shape`` unpacks it,
    ``shape.channels``/``shape.height``/``shape.width`` name its fields and
    ``torch.zeros(b, t, *shape)`` builds a batch of clips."""

    channels: int
    height: int
    width: int

    def as_tuple(self) -> tuple[int, int, int]:
        """A plain ``(C, H, W)`` tuple (for messages and comparisons with specs)."""
        return (self.channels, self.height, self.width)


# --------------------------------------------------------------------------- datasets


class VideoDataset(abc.ABC):
    """A dataset of video clips split into train / val / test.

    Construction must be cheap and must not touch the network: :meth:`prepare` downloads or
    decodes, :meth:`check` verifies that prepared data is present, :meth:`split` loads.

    Subclasses set :attr:`Config` and implement the abstract methods. ``split(name)``
    returns a map-style ``torch.utils.data.Dataset`` whose items are float tensors
    ``[context + horizon, C, H, W]`` in ``[0, 1]``. A training split generated on the fly
    may implement ``set_epoch(epoch)``; the harness calls it before each epoch so that
    item ``i`` of epoch ``e`` is a pure function of ``(seed, e, i)`` and resumed runs see
    the same data.
    """

    Config: ClassVar[type[ComponentConfig]] = ComponentConfig

    def __init__(self, config: ComponentConfig, data_root: Path, seed: int = 0) -> None:
        self.config = config
        self.data_root = data_root
        self.seed = seed

    name: ClassVar[str]
    #: documented ids (indices into the test split) used for qualitative strips
    fixed_test_sequences: ClassVar[Sequence[int]] = (0, 1, 2, 3)

    @property
    @abc.abstractmethod
    def frame_shape(self) -> FrameShape: ...

    @property
    @abc.abstractmethod
    def context(self) -> int:
        """Number of input frames T."""

    @property
    @abc.abstractmethod
    def horizon(self) -> int:
        """Number of frames to predict S."""

    def prepare(self, *, progress: bool = True) -> None:
        """Download, verify and decode whatever :meth:`split` needs. Idempotent."""

    def check(self) -> None:
        """Raise :class:`vpbench.errors.DataError` naming the fix if data is missing."""

    @abc.abstractmethod
    def split(self, name: Split) -> Dataset[Tensor]: ...

    @abc.abstractmethod
    def checksum(self) -> str:
        """A digest identifying the exact data (stored in every run record)."""

    def describe(self) -> dict[str, Any]:
        """Facts for ``vpbench data info`` and the run record (clip counts, provenance)."""
        return {}


# ----------------------------------------------------------------------------- models


@dataclass
class StepOutput:
    """What a training stage's ``step`` returns: the loss to minimise and numbers to log."""

    loss: Tensor
    logs: dict[str, float] = field(default_factory=dict)


@dataclass
class Stage:
    """One phase of training, run by the harness.

    Attributes:
        name: shown in progress bars and checkpoints ("autoencoder", "prior", "joint").
        step: ``step(batch, global_step) -> StepOutput`` with ``batch`` a float tensor
            ``[B, T + S, C, H, W]`` on the model's device.
        parameters: the parameters this stage optimises; everything else is frozen.
        fraction: share of the run's steps this stage runs for (of ``train.max_steps``, or of
            the steps ``train.budget`` buys: one budget pays for every stage).
        lr: learning rate of this stage's Adam optimiser (``None``: ``train.lr``).
        selects: whether validation and best-checkpoint selection run in this stage.
            The last stage of a model is the one that predicts; earlier stages usually
            do not select.
        on_start: called once with the first batch when the stage starts (e.g. for the
            data-dependent initialisation of codebooks). Not called again on resume.
        after_step: called after each optimiser step with the batch (e.g. dead-code
            restarts).
        on_optimizer: called once with the stage's optimiser when it is built (e.g. to
            register a step hook that resets the moments of re-seeded codewords).
    """

    name: str
    step: Callable[[Tensor, int], StepOutput]
    parameters: Callable[[], Iterable[nn.Parameter]]
    fraction: float = 1.0
    lr: float | None = None
    selects: bool = True
    on_start: Callable[[Tensor], None] | None = None
    after_step: Callable[[Tensor, int], None] | None = None
    on_optimizer: Callable[[torch.optim.Optimizer], None] | None = None


class VideoModel(nn.Module, abc.ABC):
    """A video-prediction model.

    Subclasses set :attr:`Config` (a :class:`ComponentConfig`) and implement
    :meth:`predict`. A trainable model also implements :meth:`stages`. Constructors must
    raise :class:`vpbench.errors.ConfigError` when the config does not fit the frame
    shape, before any training.
    """

    Config: ClassVar[type[ComponentConfig]] = ComponentConfig
    #: whether :meth:`predict` draws a random future (a sampler): only such a model may be
    #: scored on several samples per clip (``eval.samples``). A class attribute; a model whose
    #: config decides (a sampler that can also decode greedily) sets it in ``__init__``.
    stochastic: bool = False

    def __init__(self, config: ComponentConfig, frame_shape: FrameShape, context: int, horizon: int) -> None:
        super().__init__()
        self.config = config
        self.frame_shape = frame_shape
        self.context = context
        self.horizon = horizon

    @abc.abstractmethod
    def predict(self, context: Tensor, horizon: int) -> Tensor:
        """Predict ``horizon`` frames: ``[B, T, C, H, W] -> [B, S, C, H, W]``, in [0, 1]."""

    def stages(self) -> list[Stage]:
        """Training stages in order; empty for a model that needs no training."""
        return []

    def on_training_plan(self, total_steps: int) -> None:
        """Told by the harness, before the first training step, the run's planned steps over all
        stages (``train.max_steps``, or the steps ``train.budget`` buys; a resumed run's saved
        plan). A model whose training schedule is relative to the run's length (e.g. scheduled
        sampling ending at a fraction of the run) keeps it; the default ignores it."""

    def artifacts(self, out_dir: Path, frames: Tensor) -> dict[str, Any]:
        """Write model-specific figures for ``frames`` ``[N, C, H, W]`` into ``out_dir``.

        Returns facts for the run record (e.g. S-HR-VQVAE's compression ratio).
        """
        return {}

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")


# ---------------------------------------------------------------------------- metrics


class Metric(abc.ABC):
    """A per-frame quality metric under one protocol.

    ``per_frame(pred, true)`` takes two ``[B, S, C, H, W]`` tensors (``pred`` unclipped,
    ``true`` in [0, 1]) on any device and returns ``[B, S]`` float64 values. The
    harness averages them per horizon step and overall.
    """

    name: ClassVar[str]
    higher_is_better: ClassVar[bool]
    #: bump when the values change; non-empty lets the harness cache the baselines' scores
    #: per (data checksum, protocol, version); empty (the default): never cached
    version: ClassVar[str] = ""

    def __init__(self, protocol: str = "openstl") -> None:
        self.protocol = protocol

    @abc.abstractmethod
    def per_frame(self, pred: Tensor, true: Tensor) -> Tensor: ...

    def per_frame_many(self, preds: Sequence[Tensor], true: Tensor) -> list[Tensor]:
        """``per_frame`` of several predictions of one target, in order.

        A metric overrides it to compute what depends on ``true`` alone (LPIPS: the
        target's features) once for all of them; the values must equal ``per_frame``'s.
        """
        return [self.per_frame(p, true) for p in preds]

    def available(self) -> str | None:
        """``None`` when usable, else a one-line reason (e.g. LPIPS weights missing)."""
        return None


@dataclass(frozen=True)
class SetValue:
    """One value over the whole test set.

    ``spread``: a spread of the value when the metric computes one cheaply (e.g. a bootstrap
    or per-shard standard deviation), else ``None``; ``n``: the clips (or samples) it was
    computed over; ``info``: the protocol as run, stated in the record (frames scored,
    resolution and resizing, channel handling, ...).
    """

    value: float
    spread: float | None = None
    n: int = 0
    info: dict[str, Any] = field(default_factory=dict)


class SetMetric(abc.ABC):
    """A metric of the whole test set under one protocol (FVD).

    The harness makes one state per predictor with :meth:`new_state`, feeds it every test
    batch with :meth:`update` (``pred`` ``[B, S, C, H, W]`` unclipped, ``true`` the same shape
    in [0, 1], ``context`` ``[B, T, C, H, W]`` in [0, 1]), then calls :meth:`compute` once.
    """

    name: ClassVar[str]
    higher_is_better: ClassVar[bool]
    #: bump when the values change (as :attr:`Metric.version`)
    version: ClassVar[str] = ""

    def __init__(self, protocol: str = "openstl") -> None:
        self.protocol = protocol

    @abc.abstractmethod
    def new_state(self) -> Any: ...

    @abc.abstractmethod
    def update(self, state: Any, pred: Tensor, true: Tensor, context: Tensor) -> None: ...

    def update_many(self, states: Sequence[Any], preds: Sequence[Tensor], true: Tensor, context: Tensor) -> None:
        """:meth:`update` of several predictors' states with their predictions of one target.

        A metric overrides it to compute what depends on ``true`` alone once for all of them.
        A state may appear more than once (the draws of a stochastic model, ``eval.samples``):
        it is then updated once per prediction, in order.
        """
        for state, pred in zip(states, preds, strict=True):
            self.update(state, pred, true, context)

    @abc.abstractmethod
    def compute(self, state: Any) -> SetValue: ...

    def available(self) -> str | None:
        """``None`` when usable, else a one-line reason (e.g. feature-network weights missing)."""
        return None
