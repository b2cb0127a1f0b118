"""The embedded dataset: deterministic, bouncing, fixed test set, no files."""

from __future__ import annotations

import numpy as np
import torch

from vpbench.data.bouncing import compose, trajectories
from vpbench_glyphs.dataset import GlyphsDataset


def _ds(seed: int = 0, **kw: int) -> GlyphsDataset:
    return GlyphsDataset(GlyphsDataset.Config(**kw), data_root=None, seed=seed)  # type: ignore[arg-type]


def test_clips_have_the_contract_shape_and_range():
    clip = _ds().split("train")[0]
    assert clip.shape == (20, 1, 64, 64) and clip.dtype == torch.float32
    assert 0.0 <= float(clip.min()) and float(clip.max()) <= 1.0 and float(clip.max()) > 0.5


def test_test_set_is_fixed_across_run_seeds_and_train_is_not():
    a, b = _ds(seed=0), _ds(seed=1)
    assert torch.equal(a.split("test")[3], b.split("test")[3])
    assert not torch.equal(a.split("train")[3], b.split("train")[3])
    assert a.checksum() == b.checksum()


def test_training_clips_change_with_the_epoch_and_repeat_within_it():
    train = _ds().split("train")
    first = train[5]
    assert torch.equal(first, train[5])
    train.set_epoch(1)
    assert not torch.equal(first, train[5])


def test_splits_are_disjoint_streams():
    ds = _ds()
    assert not torch.equal(ds.split("val")[0], ds.split("test")[0])


def test_standard_generator_moves_at_constant_speed_and_bounces():
    rng = np.random.default_rng(0)
    paths = trajectories(rng, 200, 2, free=36, step_length=0.1)
    assert paths.min() >= 0 and paths.max() <= 36
    steps = np.abs(np.diff(paths, axis=1)).max()
    assert steps <= 4  # 3.6 px per frame, truncated to integers
    assert (paths == 0).any() and (paths == 36).any()  # both borders are reached


def test_composition_is_a_pixelwise_max():
    a = np.full((4, 4), 100, np.uint8)
    b = np.full((4, 4), 200, np.uint8)
    pos = np.array([[[0, 0]], [[2, 2]]])
    video = compose([a, b], pos, canvas=8)
    assert video[0, 0, 0] == 100 and video[0, 3, 3] == 200 and video[0, 7, 7] == 0
