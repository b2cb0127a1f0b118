"""The ``glyphs`` dataset: clips are pure functions of (split, seed, index)."""

from __future__ import annotations

import hashlib
from typing import ClassVar

import numpy as np
import torch
from pydantic import Field
from torch import Tensor
from torch.utils.data import Dataset

from vpbench import ComponentConfig
from vpbench.data.bouncing import compose, trajectories
from vpbench.interfaces import FrameShape, Split, VideoDataset

from .glyphs import GLYPH, render_glyph

#: bump when the generator changes, so records from different generators never compare
GENERATOR_VERSION = "glyphs/1"
#: fixed seeds: validation and test clips are the same for every run and every seed
VAL_SEED, TEST_SEED = 1_000_001, 2_000_003


#: a fixed split keeps its generated clips in memory up to this size (1,000 test clips: 78 MiB)
MEMO_BYTES = 256 * 2**20
#: test-set checksums computed in this process, by everything the clips depend on
_CHECKSUMS: dict[tuple[object, ...], str] = {}


class Clips(Dataset[Tensor]):
    """``length`` clips; clip ``i`` is drawn from ``rng(base, epoch, i)``.

    With ``memo``, each clip is generated once and kept (uint8): the test split is read by
    the checksum, the evaluation and the pictures of one record.
    """

    def __init__(
        self, base: int, length: int, frames: int, digits: int, canvas: int, speed: float, *, memo: bool = False
    ) -> None:
        self.base, self.length, self.frames = base, length, frames
        self.digits, self.canvas, self.speed = digits, canvas, speed
        self.epoch = 0
        self._memo: dict[tuple[int, int], np.ndarray] | None = (
            {} if memo and length * frames * canvas * canvas <= MEMO_BYTES else None
        )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def clip_uint8(self, i: int) -> np.ndarray:
        if not 0 <= i < self.length:
            raise IndexError(i)
        if self._memo is None:
            return self._generate(i)
        key = (self.epoch, i)
        if key not in self._memo:
            clip = self._generate(i)
            clip.flags.writeable = False  # shared by every reader
            self._memo[key] = clip
        return self._memo[key]

    def _generate(self, i: int) -> np.ndarray:
        rng = np.random.default_rng([self.base, self.epoch, i])
        glyphs = [render_glyph(rng) for _ in range(self.digits)]
        paths = trajectories(rng, self.frames, self.digits, self.canvas - GLYPH, self.speed)
        return compose(glyphs, paths, self.canvas)  # [T, H, W]

    def __getitem__(self, i: int) -> Tensor:
        return torch.from_numpy(self.clip_uint8(i).copy()).unsqueeze(1).float().div_(255.0)  # [T, 1, H, W]


class GlyphsDataset(VideoDataset):
    """Two bouncing digit glyphs on a 64x64 canvas, 10 -> 10 frames.

    Training clips are generated on the fly (``train_length`` per epoch, different every
    epoch); validation (``val_length``) and test (``test_length``) clips come from fixed
    seeds, so every run is scored on the same test clips.
    """

    class Config(ComponentConfig):
        train_length: int = Field(10_000, ge=1, description="training clips per epoch (regenerated every epoch)")
        val_length: int = Field(256, ge=1, description="validation clips (fixed seed)")
        test_length: int = Field(1_000, ge=1, description="test clips (fixed seed)")
        digits: int = Field(2, ge=1, le=4, description="digits per clip")
        speed: float = Field(0.1, gt=0, description="normalised speed per frame (0.1 = 3.6 px)")

    name = "glyphs"
    #: test clips shown in strips and leaderboards (documented in the README)
    fixed_test_sequences: ClassVar[tuple[int, ...]] = (0, 1, 2, 3)

    @property
    def frame_shape(self) -> FrameShape:
        return FrameShape(1, 64, 64)

    @property
    def context(self) -> int:
        return 10

    @property
    def horizon(self) -> int:
        return 10

    def _clips(self, base: int, length: int, *, memo: bool = False) -> Clips:
        c = self.config
        assert isinstance(c, GlyphsDataset.Config)
        return Clips(base, length, self.context + self.horizon, c.digits, 64, c.speed, memo=memo)

    def split(self, name: Split) -> Clips:
        c = self.config
        assert isinstance(c, GlyphsDataset.Config)
        if name == "train":
            return self._clips(self.seed, c.train_length)
        fixed: dict[str, Clips] = self.__dict__.setdefault("_fixed", {})
        if name not in fixed:  # the same clips for every reader: generated once (memo)
            base, length = (VAL_SEED, c.val_length) if name == "val" else (TEST_SEED, c.test_length)
            fixed[name] = self._clips(base, length, memo=True)
        return fixed[name]

    def checksum(self) -> str:
        """sha256 over the generator version and every test clip.

        The clips are generated and hashed once per process and test-set configuration
        (the same bytes the evaluation then reads, kept by the split's memo), so a record
        certifies exactly what it did before, without generating the test set twice.
        """
        test = self.split("test")
        key = (GENERATOR_VERSION, TEST_SEED, test.length, test.frames, test.digits, test.canvas, test.speed)
        if key not in _CHECKSUMS:
            digest = hashlib.sha256(GENERATOR_VERSION.encode())
            for i in range(len(test)):
                digest.update(test.clip_uint8(i).tobytes())
            _CHECKSUMS[key] = "sha256:" + digest.hexdigest()
        return _CHECKSUMS[key]

    def regenerated_checksum(self) -> str:
        """:meth:`checksum` as it was before issue 23: every test clip generated afresh (the reference)."""
        c = self.config
        assert isinstance(c, GlyphsDataset.Config)
        test = self._clips(TEST_SEED, c.test_length)
        digest = hashlib.sha256(GENERATOR_VERSION.encode())
        for i in range(len(test)):
            digest.update(test.clip_uint8(i).tobytes())
        return "sha256:" + digest.hexdigest()

    def describe(self) -> dict[str, object]:
        c = self.config
        assert isinstance(c, GlyphsDataset.Config)
        return {
            "generator": GENERATOR_VERSION,
            "clips": {"train_per_epoch": c.train_length, "val": c.val_length, "test": c.test_length},
            "test_set": f"generated with fixed seed {TEST_SEED}",
        }
