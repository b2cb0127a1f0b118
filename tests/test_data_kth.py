"""The kth dataset plugin: clip windows, AVI and frame-folder decoding, cache, splits, errors."""

from __future__ import annotations

import zipfile
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import vpbench_kth.dataset as kd
import vpbench_kth.videos as kv
from vpbench.config import validate_section
from vpbench.errors import ConfigError, DataError
from vpbench.plugins import Registry
from vpbench_kth.clips import read_sequences, scan, windows
from vpbench_kth.dataset import KTH, resize_bilinear


def write_avi(path: Path, frames: int, codec: str = "mpeg4") -> None:
    """A 160x120 AVI whose frame k is flat grey 4k (mod 256), KTH-sized."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for k in range(frames):
            img = np.full((120, 160, 3), (4 * k) % 256, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Train person 01 (boxing 70 frames, jogging 40), val-able person 15, test person 17."""
    avi = tmp_path / "data" / "kth" / "avi"
    write_avi(avi / "person01_boxing_d1_uncomp.avi", 70)
    write_avi(avi / "person01_jogging_d2_uncomp.avi", 40)
    write_avi(avi / "person15_walking_d2_uncomp.avi", 31)
    write_avi(avi / "person17_handwaving_d3_uncomp.avi", 61)
    return tmp_path / "data"


def _ds(root: Path, **cfg: object) -> KTH:
    return KTH(KTH.Config(**cfg), root)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- windows


def test_scan_is_non_overlapping_and_anchored_at_the_video_end() -> None:
    assert scan(list(range(1, 71)), 30, 30) == [10, 40]  # frames 11-40 and 41-70; 1-10 dropped


def test_scan_for_jogging_and_running_steps_back_by_3() -> None:
    assert windows(list(range(1, 41)), 30, "jogging") == [1, 4, 7, 10]
    assert windows(list(range(1, 41)), 30, "running") == [1, 4, 7, 10]
    assert windows(list(range(1, 41)), 30, "walking") == [10]


def test_scan_skips_windows_across_missing_frame_numbers() -> None:
    numbers = list(range(1, 36)) + list(range(40, 75))  # a gap after frame 35
    assert all(numbers[s + 29] - numbers[s] == 29 for s in windows(numbers, 30, "boxing"))
    assert windows(numbers, 30, "boxing") == [5, 40]  # frames 6-35 and 45-74
    assert windows(numbers, 10, "boxing") == [5, 15, 25, 40, 50, 60]


def test_sequence_boundaries_cut_windows_inside_each_segment(tmp_path: Path) -> None:
    seq = tmp_path / "00sequences.txt"
    seq.write_bytes(b"header\r\n\r\nperson01_boxing_d1\t\tframes\t1-40, 41-100\r\n")
    segments = read_sequences(seq)
    assert segments == {"person01_boxing_d1": [(1, 40), (41, 100)]}
    assert windows(list(range(1, 101)), 30, "boxing", segments["person01_boxing_d1"]) == [10, 40, 70]


def test_real_sequences_file_lists_599_videos(shared_data: Path) -> None:
    segments = read_sequences(shared_data / "kth" / "00sequences.txt")
    assert len(segments) == 599 and "person13_handclapping_d3" not in segments
    assert segments["person01_handclapping_d1"] == [(1, 102), (103, 182), (183, 260), (261, 378)]


# ----------------------------------------------------------------------- decode and cache


def test_avi_decodes_every_frame_as_channel_0(root: Path) -> None:
    frames = kv.decode_avi(root / "kth" / "avi" / "person01_boxing_d1_uncomp.avi")
    assert frames.shape == (70, 120, 160) and frames.dtype == np.uint8
    assert abs(int(frames[10].mean()) - 40) <= 3 and abs(int(frames[50].mean()) - 200) <= 3


def test_corrupt_avi_names_the_file(root: Path) -> None:
    bad = root / "kth" / "avi" / "person02_boxing_d1_uncomp.avi"
    bad.write_bytes(b"RIFF" + bytes(5000))
    with pytest.raises(DataError, match="person02_boxing_d1_uncomp.avi"):
        kv.decode_avi(bad)


def test_truncated_avi_names_the_file(root: Path, tmp_path: Path) -> None:
    whole = (root / "kth" / "avi" / "person01_boxing_d1_uncomp.avi").read_bytes()
    cut = tmp_path / "person03_boxing_d1_uncomp.avi"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="person03_boxing_d1_uncomp.avi"):
        kv.decode_avi(cut)


def test_frames_are_decoded_once_into_the_cache(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = _ds(root)
    assert ds.build_cache() == 4 and ds.describe()["cached"] == 4

    def no_decoding(path: Path) -> np.ndarray:
        raise AssertionError(f"decoded {path} again")

    monkeypatch.setattr(kv, "decode_avi", no_decoding)
    again = _ds(root)
    assert again.build_cache() == 0
    assert again.split("train")[0].shape == (30, 1, 128, 128)


def test_a_crash_while_caching_leaves_no_half_written_entry(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(kv.np, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        _ds(root).build_cache()
    assert [p.name for p in (root / "kth" / "cache").iterdir() if not p.name.startswith(".")] == []
    monkeypatch.undo()
    assert _ds(root).build_cache() == 4  # the next prepare finishes the job


def test_frame_folders_use_channel_0_and_their_frame_numbers(tmp_path: Path) -> None:
    folder = tmp_path / "kth" / "boxing" / "person02_boxing_d1_uncomp"
    folder.mkdir(parents=True)
    for n in [*range(1, 36), *range(40, 75)]:  # frames 36-39 missing
        img = np.zeros((120, 160, 3), np.uint8)
        img[..., 0], img[..., 1] = n, 255 - n
        Image.fromarray(img).save(folder / f"image_{n:04d}.png")
    ds = _ds(tmp_path, train_persons=[2], test_persons=[17])
    (video,) = ds.videos()
    assert video.kind == "frames" and ds.clip_starts(video) == [5, 40]
    clip = ds.split("train")[0]
    assert clip.shape == (30, 1, 128, 128)
    assert torch.allclose(clip[:, 0, 64, 64], torch.arange(6, 36).float() / 255, atol=1e-6)


# ------------------------------------------------------------------------ splits and clips


def test_splits_follow_persons_and_the_published_windows(root: Path) -> None:
    info = _ds(root, val_persons=[]).describe()
    # person01 boxing 70 -> 2, jogging 40 -> 4, person15 walking 31 -> 1 (train); person17 handwaving 61 -> 2
    assert info["train"]["clips"] == 7 and info["test"]["clips"] == 2
    assert info["train"]["clips_per_action"] == {"boxing": 2, "jogging": 4, "walking": 1}
    assert info["val"]["clips"] == 2 and info["val_is_test"] is True
    assert len(_ds(root, val_persons=[]).split("train")) == 7 and len(_ds(root).split("test")) == 2


def test_validation_persons_leave_train_and_test_untouched(root: Path) -> None:
    info = _ds(root, val_persons=[15]).describe()
    assert (info["train"]["clips"], info["val"]["clips"], info["test"]["clips"]) == (6, 1, 2)
    assert info["val_is_test"] is False


def test_by_default_validation_never_uses_test_persons(root: Path) -> None:
    info = _ds(root).describe()
    assert info["val_is_test"] is False
    assert (info["train"]["clips"], info["val"]["clips"], info["test"]["clips"]) == (6, 1, 2)


def test_clip_is_bilinear_resized_grey_in_unit_range(root: Path) -> None:
    ds = _ds(root)
    clip = ds.split("test")[0]  # person17 handwaving frames 2..31
    assert clip.shape == (30, 1, 128, 128) and 0 <= float(clip.min()) and float(clip.max()) <= 1
    (video,) = [v for v in ds.videos() if v.person == 17]
    raw = ds.cache.open(video)[1:31]
    expected = F.interpolate(torch.from_numpy(raw.astype(np.float32))[:, None], size=(128, 128), mode="bilinear",
                             align_corners=False) / 255
    assert torch.allclose(clip, expected, atol=1e-5)


def test_resize_matches_torch_bilinear_on_random_frames() -> None:
    frames = np.random.default_rng(0).integers(0, 256, size=(3, 120, 160), dtype=np.uint8)
    ours = resize_bilinear(frames, 128, 128)
    ref = F.interpolate(torch.from_numpy(frames.astype(np.float32))[:, None], size=(128, 128), mode="bilinear",
                        align_corners=False)[:, 0]
    assert np.abs(ours - ref.numpy()).max() < 1e-3


def test_three_channels_replicate_the_grey_channel(root: Path) -> None:
    ds = _ds(root, channels=3)
    clip = ds.split("train")[0]
    assert ds.frame_shape.as_tuple() == (3, 128, 128) and clip.shape == (30, 3, 128, 128)
    assert torch.equal(clip[:, 0], clip[:, 2]) and torch.equal(clip[:, 0], _ds(root).split("train")[0][:, 0])


def test_overlapping_train_and_test_persons_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="17"):
        validate_section(KTH.Config, {"train_persons": [1, 17]}, "dataset")


def test_missing_data_names_path_prepare_command_and_url(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        _ds(tmp_path).check()
    msg = str(err.value)
    assert "person01_boxing_d1_uncomp.avi" in msg and f"vpbench data prepare kth --data-root {tmp_path}" in msg
    assert "http://www.csc.kth.se/cvap/actions/boxing.zip" in msg


def test_empty_split_names_the_persons(root: Path) -> None:
    with pytest.raises(DataError, match="test split is empty.*18"):
        _ds(root, test_persons=[18]).split("test")


def test_checksum_changes_with_the_data_and_the_config(root: Path) -> None:
    first = _ds(root).checksum()
    assert first == _ds(root).checksum() and first != _ds(root, channels=3).checksum()
    write_avi(root / "kth" / "avi" / "person18_boxing_d1_uncomp.avi", 30)
    assert _ds(root).checksum() != first


# ------------------------------------------------------------------------------- prepare


def test_prepare_downloads_the_six_action_zips_extracts_and_decodes(
    mirror: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, folder = mirror
    write_avi(tmp_path / "one.avi", 30)
    video = (tmp_path / "one.avi").read_bytes()
    for action in kv.ACTIONS:
        with zipfile.ZipFile(folder / f"{action}.zip", "w") as zf:
            zf.writestr(f"person02_{action}_d1_uncomp.avi", video)  # person01 videos have pinned hashes
            zf.writestr(f"person20_{action}_d1_uncomp.avi", video)
    monkeypatch.setattr(kd, "ACTION_URL", url + "/{action}.zip")
    ds = _ds(tmp_path / "root")
    ds.prepare(progress=False)
    info = ds.describe()
    assert info["videos"] == 12 and info["cached"] == 12
    assert info["train"]["clips"] == 6 and info["test"]["clips"] == 6
    assert not list((tmp_path / "root" / "kth" / "downloads").glob("*.zip"))
    ds.prepare(progress=False)  # idempotent: nothing fetched again
    assert len(ds.split("train")) == 6


def test_prepare_offline_names_path_command_and_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kd, "ACTION_URL", "http://127.0.0.1:9/{action}.zip")
    with pytest.raises(DataError) as err:
        _ds(tmp_path).prepare(progress=False)
    msg = str(err.value)
    assert "boxing.zip" in msg and "vpbench data prepare kth" in msg and "http://127.0.0.1:9/boxing.zip" in msg


# ---------------------------------------------------------------------------- real clips


@pytest.fixture
def real_root(shared_data: Path, tmp_path: Path) -> Path:
    avi = tmp_path / "real" / "kth" / "avi"
    avi.mkdir(parents=True)
    for f in (shared_data / "kth" / "avi").glob("*.avi"):
        (avi / f.name).symlink_to(f)
    (tmp_path / "real" / "kth" / "00sequences.txt").symlink_to(shared_data / "kth" / "00sequences.txt")
    return tmp_path / "real"


def test_real_avis_decode_to_378_550_and_415_frames(real_root: Path) -> None:
    ds = _ds(real_root)
    ds.build_cache()
    counts = {v.key: ds.cache.open(v).shape[0] for v in ds.videos()}
    assert counts == {"person01_handclapping_d1": 378, "person01_handclapping_d2": 550, "person01_jogging_d1": 415}


def test_real_clip_counts_under_both_window_rules(real_root: Path) -> None:
    openstl = _ds(real_root).describe()["train"]
    # 378 // 30 + 550 // 30 = 12 + 18 non-overlapping; jogging ends 415, 412, ..., 31 -> 129
    assert openstl["clips_per_action"] == {"handclapping": 30, "jogging": 129} and openstl["clips"] == 159
    sequences = _ds(real_root, windows="sequences").describe()["train"]
    assert sequences["clips_per_action"] == {"handclapping": 24, "jogging": 32}


def test_registered_spec_matches_the_dataset(registry: Registry, root: Path) -> None:
    spec = registry.datasets.get("kth")
    ds = spec.load()(KTH.Config(), root)
    assert spec.frame_shape == ds.frame_shape.as_tuple() == (1, 128, 128)
    assert (spec.context, spec.horizon) == (ds.context, ds.horizon) == (10, 20)

