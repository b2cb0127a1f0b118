"""``vpbench predict``: predict the future of your own video with a trained run."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["command"]

EPILOG = """\b
Examples:
  vpbench predict --run runs/convlstm-kth-20260101 --video my_walk.mp4
  vpbench predict --run runs/try --video clip.avi --start 40 --stride 2 --out preds/clip

\b
The aspect ratio of the video is kept: with --fit crop (the default) the centre of each frame
is cut to the model's aspect ratio, with --fit pad the whole frame is kept and black bars fill
the rest; then both axes are scaled alike to the model's frame size. The output says which.

\b
Writes prediction.npz (context, prediction and, if the video goes on, truth),
strip.png and prediction.gif (the input frames, then the predicted ones).
"""


@click.command("predict", epilog=EPILOG)
@click.option("--run", "run_dir", type=click.Path(path_type=Path), required=True, help="Trained run directory.")
@click.option("--video", type=click.Path(path_type=Path), required=True, help="Any video FFmpeg (PyAV) decodes.")
@click.option("--out", type=click.Path(path_type=Path), help="Output directory (default runs/<run>-predict-<video>).")
@click.option("--checkpoint", default="best", show_default=True, help="best, last, or a checkpoint FILE.")
@click.option("--start", type=int, default=0, show_default=True, help="First frame of the context.")
@click.option("--stride", type=int, default=1, show_default=True, help="Keep every n-th frame (match the dataset's frame rate).")
@click.option("--fit", type=click.Choice(["crop", "pad"]), default="crop", show_default=True,
              help="Fit a video of another aspect ratio to the model's frames: crop its centre, or pad it with "
              "black bars. Never stretched.")
@click.option("--data-root", type=click.Path(path_type=Path), envvar="VPBENCH_DATA", help="Where datasets live.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.pass_obj
def command(
    app: object, run_dir: Path, video: Path, out: Path | None, checkpoint: str, start: int, stride: int,
    data_root: Path | None, device: str, fit: str,
) -> None:
    """Decode VIDEO, fit it to the run's frame shape keeping its aspect ratio (crop or pad),
    and predict what comes after its first context frames."""
    from ..engine.forecast import PredictRequest, predict_video

    req = PredictRequest(run=run_dir, video=video, out=out, checkpoint=checkpoint, start=start, stride=stride,
                         device=device, data_root=data_root, fit=fit)
    out_dir = predict_video(req, app.registry, echo=click.echo)  # type: ignore[attr-defined]
    click.echo(f"wrote {out_dir / 'prediction.gif'}, {out_dir / 'strip.png'}, {out_dir / 'prediction.npz'}")
