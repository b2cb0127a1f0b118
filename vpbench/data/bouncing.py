"""The standard Moving-MNIST generator (Srivastava et al. 2015), for any digit images.

Each object starts at a uniform position in the free area, moves with a uniform random
direction at a constant speed (``step_length`` in normalised units per frame; 0.1 is
3.6 px/frame for 28 px digits on a 64 px canvas), bounces off the borders by clamping and
flipping that velocity component, and objects are composed by pixel-wise maximum.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["trajectories", "compose"]


def trajectories(
    rng: np.random.Generator, num_frames: int, num_objects: int, free: int, step_length: float = 0.1
) -> np.ndarray:
    """Integer top-left positions ``[num_objects, num_frames, 2]`` (row, col) in ``[0, free]``."""
    out = np.zeros((num_objects, num_frames, 2), dtype=np.int64)
    for k in range(num_objects):
        y, x = rng.random(2)
        theta = rng.random() * 2.0 * math.pi
        vy, vx = math.sin(theta), math.cos(theta)
        for t in range(num_frames):
            out[k, t] = (int(y * free), int(x * free))
            y += vy * step_length
            x += vx * step_length
            if x <= 0.0:
                x, vx = 0.0, -vx
            if x >= 1.0:
                x, vx = 1.0, -vx
            if y <= 0.0:
                y, vy = 0.0, -vy
            if y >= 1.0:
                y, vy = 1.0, -vy
    return out


def compose(digits: list[np.ndarray], positions: np.ndarray, canvas: int) -> np.ndarray:
    """Paste ``digits`` (uint8 ``[h, w]``) along ``positions`` -> uint8 ``[T, canvas, canvas]``."""
    num_frames = positions.shape[1]
    video = np.zeros((num_frames, canvas, canvas), dtype=np.uint8)
    for digit, path in zip(digits, positions):
        h, w = digit.shape
        for t in range(num_frames):
            r, c = int(path[t, 0]), int(path[t, 1])
            window = video[t, r : r + h, c : c + w]
            np.maximum(window, digit[: window.shape[0], : window.shape[1]], out=window)
    return video
