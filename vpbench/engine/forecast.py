"""Predict the future of a user's own video with a trained run: ``vpbench predict``.

The video is decoded with PyAV (grey or RGB to match the model), every ``stride``-th frame
from ``start`` is kept, frames are fitted to the model's frame shape without distorting them
(``fit="crop"``: the centre of the frame at the model's aspect ratio; ``fit="pad"``: the whole
frame, with black bars), resized, and the first ``context`` of them are the input. Written: ``prediction.npz`` (uint8 ``context``,
``prediction`` and, when the video goes on, ``truth``, each ``[T or S, C, H, W]``),
``strip.png`` and ``prediction.gif`` (the input, then the predicted frames).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.root import resolve_data_root
from ..errors import ConfigError, DataError
from ..fsutil import atomic_path
from ..hardware import resolve_device
from ..plugins import Registry
from ..video import read_video, save_gif, to_frames
from ..visualize import save_strip
from .evaluate import check_prediction
from .saved import build_saved, read_run

__all__ = ["FITS", "PredictRequest", "fit_aspect", "predict_video"]

#: How a video whose aspect ratio is not the model's is fitted to it (never squashed).
FITS = ("crop", "pad")

Echo = Callable[[str], None]


@dataclass
class PredictRequest:
    run: Path
    video: Path
    out: Path | None = None
    checkpoint: str = "best"
    start: int = 0
    stride: int = 1
    device: str = "auto"
    data_root: Path | None = None
    fit: str = "crop"


def fit_aspect(video: np.ndarray, height: int, width: int, fit: str) -> tuple[np.ndarray, str]:
    """uint8 ``[N, H', W', C]`` at the aspect ratio ``width / height``, and what was done.

    ``crop`` keeps the centre of the frame; ``pad`` keeps the whole frame and adds black
    bars on both sides. Either way nothing is stretched: the resize that follows scales both
    axes alike.
    """
    if fit not in FITS:
        raise ConfigError(f"--fit must be one of {', '.join(FITS)}; got {fit!r}")
    n, h, w, c = video.shape
    # the size at the model's aspect ratio that holds (pad) or fits in (crop) the frame
    wide = w * height > h * width  # the video is wider than the model's frames
    if (wide and fit == "crop") or (not wide and fit == "pad"):
        th, tw = h, max(1, round(h * width / height))
    else:
        th, tw = max(1, round(w * height / width)), w
    if (th, tw) == (h, w):
        return video, f"{w}x{h}, the model's aspect ratio"
    if fit == "crop":
        top, left = (h - th) // 2, (w - tw) // 2
        return video[:, top : top + th, left : left + tw], f"{w}x{h} centre-cropped to {tw}x{th} (--fit pad keeps the whole frame)"
    out = np.zeros((n, th, tw, c), dtype=video.dtype)
    top, left = (th - h) // 2, (tw - w) // 2
    out[:, top : top + h, left : left + w] = video
    return out, f"{w}x{h} padded with black to {tw}x{th} (--fit crop fills the frame)"


def predict_video(req: PredictRequest, registry: Registry, echo: Echo = print) -> Path:
    if req.start < 0 or req.stride < 1:
        raise ConfigError("--start must be >= 0 and --stride >= 1")
    if req.fit not in FITS:
        raise ConfigError(f"--fit must be one of {', '.join(FITS)}; got {req.fit!r}")
    saved = read_run(req.run, registry)
    device = resolve_device(req.device)
    dataset, model, ckpt = build_saved(saved, registry, resolve_data_root(req.data_root), device, req.checkpoint)
    shape, T, S = dataset.frame_shape, dataset.context, dataset.horizon
    raw, rate = read_video(req.video, shape.channels)
    picked = raw[req.start :: req.stride]
    if len(picked) < T:
        raise DataError(
            f"{req.video} gives {len(picked)} frames from frame {req.start} with stride {req.stride}; "
            f"the model needs {T} context frames (lower --start or --stride)"
        )
    fitted, how = fit_aspect(picked[: T + S], shape.height, shape.width, req.fit)
    frames = to_frames(fitted, shape)  # [<=T+S, C, H, W], both axes scaled alike
    context = frames[:T]
    with torch.no_grad():
        pred = model.predict(context[None].to(device), S)
    check_prediction(pred, context[None], S, f"model {saved.model!r}")
    prediction = pred[0].float().cpu().nan_to_num().clamp(0, 1)
    truth = frames[T:]

    out = req.out or Path("runs") / f"{req.run.name}-predict-{req.video.stem}"
    out.mkdir(parents=True, exist_ok=True)

    def u8(x: torch.Tensor) -> np.ndarray:
        return (x.numpy() * 255 + 0.5).astype(np.uint8)

    arrays = {"context": u8(context), "prediction": u8(prediction)}
    if len(truth):
        arrays["truth"] = u8(truth)
    with atomic_path(out / "prediction.npz") as tmp, tmp.open("wb") as fh:
        np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]
    rows = [("input", context.numpy()), ("predicted", prediction.numpy())]
    if len(truth):
        rows.insert(1, ("video", truth.numpy()))
    save_strip(out / "strip.png", rows)
    save_gif(out / "prediction.gif", context.numpy(), prediction.numpy(), fps=rate / req.stride)
    echo(
        f"{saved.model} ({'checkpoint ' + str(ckpt.path) if ckpt.path else 'untrained'}): {T} frames of "
        f"{req.video.name} from frame {req.start}, stride {req.stride}, {how}, resized to {shape.width}x{shape.height} "
        f"-> {S} predicted frames"
    )
    return out
