"""A user's own video in and out: decode with PyAV, resize to a model's frames, write a GIF."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from .errors import DataError
from .fsutil import atomic_path
from .interfaces import FrameShape
from .visualize import to_uint8

__all__ = ["read_video", "to_frames", "save_gif"]


def read_video(path: Path, channels: int) -> tuple[np.ndarray, float]:
    """Every frame of ``path`` as uint8 ``[N, H, W, C]`` (grey for ``channels == 1``) and its rate."""
    import av

    if not path.is_file():
        raise DataError(f"video {path} does not exist; pass --video FILE (any format FFmpeg reads)")
    fmt = "gray" if channels == 1 else "rgb24"
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(f"{path} has no video stream; pass a video file")
            stream = container.streams.video[0]
            rate = float(stream.average_rate) if stream.average_rate else 25.0
            frames = [f.to_ndarray(format=fmt) for f in container.decode(stream)]
    except av.error.FFmpegError as exc:
        raise DataError(f"cannot decode {path}: {' '.join(str(exc).split())}; pass a video FFmpeg can read") from exc
    if not frames:
        raise DataError(f"{path} holds no decodable frames")
    arr = np.stack(frames)
    if arr.ndim == 3:
        arr = arr[..., None]
    return arr, rate


def to_frames(video: np.ndarray, shape: FrameShape) -> torch.Tensor:
    """uint8 ``[N, H', W', C]`` -> float ``[N, C, H, W]`` in [0, 1], resized with antialiasing."""
    x = torch.from_numpy(video).permute(0, 3, 1, 2).float() / 255.0
    if x.shape[-2:] != (shape.height, shape.width):
        x = torch.nn.functional.interpolate(
            x, size=(shape.height, shape.width), mode="bilinear", antialias=True, align_corners=False
        )
    return x.clamp(0, 1)


def _frame_image(frame: np.ndarray, scale: int, label: str, colour: tuple[int, int, int]) -> Image.Image:
    img = Image.fromarray(to_uint8(frame[None])[0])
    img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    border, band = 3, 14
    canvas = Image.new("RGB", (img.width + 2 * border, img.height + 2 * border + band), colour)
    canvas.paste(img, (border, border + band))
    ImageDraw.Draw(canvas).text((border + 2, 1), label, fill=(255, 255, 255))
    return canvas


def save_gif(path: Path, context: np.ndarray, prediction: np.ndarray, fps: float, labels: Sequence[str] = ("input", "predicted")) -> None:
    """An animated GIF: the context frames (grey border), then the predicted ones (red border)."""
    h = context.shape[-2]
    scale = max(1, 256 // max(h, 1))
    frames = [_frame_image(f, scale, f"{labels[0]} {i + 1}/{len(context)}", (90, 90, 90)) for i, f in enumerate(context)]
    frames += [_frame_image(f, scale, f"{labels[1]} +{s + 1}", (190, 30, 30)) for s, f in enumerate(prediction)]
    duration = max(20, int(round(1000 / max(fps, 1e-3))))
    with atomic_path(path) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=duration, loop=0)
