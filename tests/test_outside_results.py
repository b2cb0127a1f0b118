"""Scoring outside results: `vpbench score` on predictions made elsewhere, `vpbench eval` on a
finished run, `vpbench predict` on a user's own video."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vpbench.cli import main
from vpbench.errors import ConfigError, DataError
from vpbench.components import build_dataset
from vpbench.leaderboard import build_board, load_records
from vpbench.plugins import get_registry
from vpbench.records import EXTERNAL, read_record

GLYPHS = ["--set", "dataset.train_length=32", "--set", "dataset.val_length=4", "--set", "dataset.test_length=12"]
DATASET_CFG = {"train_length": 32, "val_length": 4, "test_length": 12}


def _copy_last_predictions(tmp_path: Path) -> np.ndarray:
    """Copy-last predictions computed outside vpbench (plain numpy) in the test order."""
    ds = build_dataset(get_registry(), "glyphs", DATASET_CFG, tmp_path / "data", seed=0)
    test = ds.split("test")
    clips = np.stack([test[i].numpy() for i in range(len(test))])  # type: ignore[arg-type]
    T, S = ds.context, ds.horizon
    return np.repeat(clips[:, T - 1 : T], S, axis=1)


@pytest.fixture
def copy_last_run(tmp_path: Path) -> Path:
    main(["run", "--model", "copy-last", "--dataset", "glyphs", "--out", str(tmp_path / "cl"), "--no-progress",
          "--set", "eval.profile=false", "--set", "eval.batch_size=5", *GLYPHS])
    return tmp_path / "cl"


def test_score_reproduces_a_copy_last_run_exactly_and_the_leaderboard_takes_it(tmp_path, copy_last_run, capsys):
    preds = _copy_last_predictions(tmp_path)
    np.save(tmp_path / "preds.npy", preds.astype(np.float32))
    main(["score", "--dataset", "glyphs", "--predictions", str(tmp_path / "preds.npy"), "--name", "my-copy",
          "--out", str(tmp_path / "records" / "scored"), "--no-progress", "--set", "eval.batch_size=5", *GLYPHS])
    run = read_record(copy_last_run / "record.json")
    scored = read_record(tmp_path / "records" / "scored" / "record.json")
    assert scored.metrics == run.metrics  # exactly: same clips, same batches, same values
    assert scored.metrics["openstl"]["mse"].per_frame == run.metrics["openstl"]["mse"].per_frame
    assert scored.model.name == "my-copy" and scored.model.package == EXTERNAL
    assert scored.model.config["predictions_sha256"].startswith("sha256:")
    assert scored.data_checksum == run.data_checksum and scored.test_sequences == 12
    # uint8 predictions in .npz with ids in order score the same up to the 8-bit rounding
    u8 = (preds * 255 + 0.5).astype(np.uint8)
    np.savez(tmp_path / "preds8.npz", predictions=u8, ids=np.arange(12))
    main(["score", "--dataset", "glyphs", "--predictions", str(tmp_path / "preds8.npz"), "--name", "my-copy-u8",
          "--out", str(tmp_path / "records" / "scored8"), "--no-progress", "--compare", "none", *GLYPHS])
    u8rec = read_record(tmp_path / "records" / "scored8" / "record.json")
    assert u8rec.metrics["openstl"]["psnr"].mean == pytest.approx(run.metrics["openstl"]["psnr"].mean, abs=0.05)

    board = build_board(load_records(tmp_path / "records"), [])
    (group,) = board.datasets[0].groups
    table = dict(group.tables)["openstl"]
    rows = {r["model"]: r for r in table.rows}
    assert {"my-copy", "my-copy-u8"} <= set(rows)
    assert rows["my-copy"]["budget"] == "unknown (external predictions, scored by `vpbench score`)"
    assert rows["my-copy"]["params"] is None
    assert rows["my-copy"]["hardware"] == "—" and rows["my-copy"]["train_time_s"] is None and rows["my-copy"]["run_wall_time_s"] is None  # not the training machine


def test_score_takes_unclipped_predictions_as_they_are(tmp_path):
    """OpenSTL scores MSE on unclipped outputs; predictions made elsewhere may leave [0, 1] a little."""
    preds = _copy_last_predictions(tmp_path)
    np.save(tmp_path / "p.npy", (preds * 1.1 - 0.05).astype(np.float32))
    main(["score", "--dataset", "glyphs", "--predictions", str(tmp_path / "p.npy"), "--name", "unclipped",
          "--out", str(tmp_path / "s"), "--no-progress", "--compare", "none", *GLYPHS])
    assert read_record(tmp_path / "s" / "record.json").metrics["openstl"]["mse"].mean > 0


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: p[:-1], r"holds 11 predicted clips; the test split of glyphs has 12 to score"),
        (lambda p: p[:, :, :, :32], r"have shape \[12, 10, 1, 32, 64\]; expected \[N, S, C, H, W\] = \[12, 10, 1, 64, 64\]"),
        (lambda p: p[:, :, 0], r"have shape \[12, 10, 64, 64\]; expected"),
        ("order", r"is not in glyphs's test order: row 0 has id 1, expected 0; sort the rows by id"),
        (lambda p: p * 255, r"predictions preds\.npz \(external predictions\): the prediction must lie in \[-1, 2\]; got values in \[0, 255\] \(0-255"),
    ],
    ids=["count", "shape", "no-channel", "order", "0-255"],
)
def test_score_mismatches_are_one_line_errors(tmp_path, make, message, capsys):
    preds = _copy_last_predictions(tmp_path)
    if make == "order":
        ids = np.arange(12)
        ids[[0, 1]] = [1, 0]
        np.savez(tmp_path / "preds.npz", predictions=preds, ids=ids)
    else:
        np.savez(tmp_path / "preds.npz", predictions=make(preds))
    with pytest.raises(SystemExit) as info:
        main(["score", "--dataset", "glyphs", "--predictions", str(tmp_path / "preds.npz"), "--name", "x",
              "--out", str(tmp_path / "s"), "--no-progress", *GLYPHS])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    import re

    assert re.search(message, err), err
    assert not (tmp_path / "s" / "record.json").exists()


@pytest.fixture
def trained(tmp_path: Path, registry) -> Path:
    from vpbench.engine.run import RunRequest, execute_run

    sets = ["dataset.train_length=32", "dataset.val_length=4", "dataset.test_length=6", "train.max_steps=4",
            "train.batch_size=4", "train.eval_every=2", "train.val_sequences=4", "eval.profile=false",
            "train.checkpoint_every=2"]
    execute_run(RunRequest(model="tinyconv", dataset="glyphs", sets=sets, out=tmp_path / "tc", device="cpu",
                           progress=False), registry, echo=lambda s: None)
    return tmp_path / "tc"


def test_eval_rescores_a_finished_run_to_the_same_numbers_without_training(tmp_path, trained, registry):
    from vpbench.engine.rescore import EvalRequest, rescore_run

    before = {p.name: p.stat().st_mtime_ns for p in (trained / "checkpoints").iterdir()}
    record, out = rescore_run(EvalRequest(run=trained, out=tmp_path / "re", device="cpu", progress=False), registry,
                              echo=lambda s: None)
    original = read_record(trained / "record.json")
    assert record.metrics == original.metrics and record.baselines == original.baselines
    assert record.train.steps_done == original.train.steps_done == 4
    assert record.train.selected_step == original.train.selected_step
    assert record.artifacts["rescored_from"]["checkpoint_kind"] == "best"
    assert {p.name: p.stat().st_mtime_ns for p in (trained / "checkpoints").iterdir()} == before
    assert not (out / "checkpoints").exists()  # nothing trained
    last, _ = rescore_run(EvalRequest(run=trained, checkpoint="last", out=tmp_path / "re-last", device="cpu",
                                      progress=False, sets=["eval.max_sequences=3"]), registry, echo=lambda s: None)
    assert last.test_sequences == 3 and last.train.selected_step == 4 and last.train.select_metric is None


def test_eval_takes_a_checkpoint_file_and_refuses_one_of_another_config(tmp_path, trained, registry):
    import shutil

    from vpbench.engine.rescore import EvalRequest, rescore_run
    from vpbench.errors import CheckpointError

    copy = tmp_path / "elsewhere.pt"
    shutil.copy(trained / "checkpoints" / "best.pt", copy)
    record, _ = rescore_run(EvalRequest(run=trained, checkpoint=str(copy), out=tmp_path / "f", device="cpu",
                                        progress=False), registry, echo=lambda s: None)
    assert record.metrics == read_record(trained / "record.json").metrics
    assert record.artifacts["rescored_from"]["checkpoint_kind"] == "file"
    with pytest.raises(ConfigError, match=r"--checkpoint 'nope\.pt' is neither best, last nor an existing file"):
        rescore_run(EvalRequest(run=trained, checkpoint="nope.pt", out=tmp_path / "h"), registry)
    spec = trained / "run.yaml"
    spec.write_text(spec.read_text().replace("hidden: 8", "hidden: 6"))
    with pytest.raises(CheckpointError, match=r"another config of 'tinyconv' \(differs in: hidden\)"):
        rescore_run(EvalRequest(run=trained, out=tmp_path / "g", device="cpu", progress=False), registry)


def test_eval_of_a_stopped_run_uses_its_last_checkpoint(tmp_path, trained, registry):
    from vpbench.engine.rescore import EvalRequest, rescore_run

    (trained / "record.json").unlink()
    (trained / "checkpoints" / "best.pt").unlink()
    record, _ = rescore_run(EvalRequest(run=trained, out=tmp_path / "re", device="cpu", progress=False), registry,
                            echo=lambda s: None)
    assert record.artifacts["rescored_from"]["checkpoint_kind"] == "last"
    assert record.train.steps_done == 4


def test_eval_refuses_non_eval_keys_and_a_foreign_directory(tmp_path, trained, registry):
    from vpbench.engine.rescore import EvalRequest, rescore_run

    with pytest.raises(ConfigError, match=r"only changes eval\.\* keys \(got model\.hidden\)"):
        rescore_run(EvalRequest(run=trained, sets=["model.hidden=3"]), registry)
    with pytest.raises(ConfigError, match=r"is not a vpbench run directory \(no run\.yaml\)"):
        rescore_run(EvalRequest(run=tmp_path), registry)


def _write_video(path: Path, frames: int = 30) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 80, "yuv420p"
        for t in range(frames):
            img = np.zeros((80, 96, 3), np.uint8)
            img[20:40, 2 * t : 2 * t + 20] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _predict(registry, **kw):  # type: ignore[no-untyped-def]
    from vpbench.engine.forecast import PredictRequest, predict_video

    return predict_video(PredictRequest(device="cpu", **kw), registry, echo=lambda s: None)


def test_predict_on_a_video_writes_context_prediction_and_gif(tmp_path, trained, registry):
    video = tmp_path / "mine.mp4"
    _write_video(video)
    out = _predict(registry, run=trained, video=video, out=tmp_path / "p")
    with np.load(out / "prediction.npz") as npz:
        assert npz["context"].shape == (10, 1, 64, 64) and npz["prediction"].shape == (10, 1, 64, 64)
        assert npz["truth"].shape == (10, 1, 64, 64)
        assert npz["context"][0].max() > 200  # the white square survived decoding and resizing
    assert Image.open(out / "prediction.gif").n_frames == 20
    assert (out / "strip.png").is_file()
    with pytest.raises(DataError, match=r"gives 5 frames from frame 25 with stride 1; the model needs 10 context"):
        _predict(registry, run=trained, video=video, start=25, out=tmp_path / "q")


def test_predict_on_a_kth_avi(tmp_path, trained, registry, shared_data):
    video = sorted((shared_data / "kth" / "avi").glob("*.avi"))[0]
    out = _predict(registry, run=trained, video=video, out=tmp_path / "k", stride=2)
    with np.load(out / "prediction.npz") as npz:
        ctx = npz["context"]
    assert ctx.shape == (10, 1, 64, 64) and 20 < ctx.mean() < 235  # a real grey scene, not a blank
    assert Image.open(out / "prediction.gif").n_frames == 20
