"""The mmnist dataset plugin: idx parsing, generated splits, the standard test file, errors."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import vpbench_mmnist.dataset as mm
from vpbench.data.download import Remote
from vpbench.data.idx import read_idx
from vpbench.errors import DataError
from vpbench.plugins import Registry
from vpbench_mmnist.dataset import MovingMNIST


def _idx_bytes(images: np.ndarray) -> bytes:
    return struct.pack(">BBBB", 0, 0, 0x08, images.ndim) + struct.pack(f">{images.ndim}I", *images.shape) + images.tobytes()


def _write_mnist(folder: Path, n_train: int = 40, n_test: int = 20) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("train-images-idx3-ubyte.gz", n_train), ("t10k-images-idx3-ubyte.gz", n_test)):
        images = np.zeros((n, 28, 28), np.uint8)
        images[:, 6:22, 10:18] = rng.integers(100, 256, size=(n, 16, 8), dtype=np.uint8)  # a bar-shaped "digit"
        (folder / name).write_bytes(gzip.compress(_idx_bytes(images), mtime=0))


@pytest.fixture(autouse=True)
def _fake_digits_pinned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """The fake digits' md5 stand in for the published ones (the digits are checked wherever used)."""
    if "shared_data" in request.fixturenames:
        return  # the real digits keep the real pins
    _write_mnist(tmp_path / "pins")
    for attr in ("TRAIN_DIGITS", "TEST_DIGITS"):
        remote = getattr(mm, attr)
        md5 = hashlib.md5((tmp_path / "pins" / remote.filename).read_bytes()).hexdigest()
        monkeypatch.setattr(mm, attr, Remote(remote.filename, remote.urls, md5=md5))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A data root with fake MNIST digits (no test file)."""
    _write_mnist(tmp_path / "data" / "moving_mnist")
    return tmp_path / "data"


@pytest.fixture
def test_file(root: Path, monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    """A small fake mnist_test_seq.npy [20, 6, 64, 64], accepted as standard by patching the md5."""
    arr = np.random.default_rng(1).integers(0, 256, size=(20, 6, 64, 64), dtype=np.uint8)
    path = root / "moving_mnist" / "mnist_test_seq.npy"
    np.save(path, arr)
    monkeypatch.setattr(mm, "STANDARD_TEST_MD5", hashlib.md5(path.read_bytes()).hexdigest())
    return arr


def _ds(root: Path, seed: int = 0, **cfg: object) -> MovingMNIST:
    return MovingMNIST(MovingMNIST.Config(**cfg), root, seed)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- idx files


def test_read_idx_parses_gzip_and_raw_files(tmp_path: Path) -> None:
    images = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    (tmp_path / "a.gz").write_bytes(gzip.compress(_idx_bytes(images)))
    (tmp_path / "a").write_bytes(_idx_bytes(images))
    assert np.array_equal(read_idx(tmp_path / "a.gz"), images)
    assert np.array_equal(read_idx(tmp_path / "a"), images)


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: gzip.compress(b)[:-30],  # truncated gzip stream
        lambda b: b[:-7],  # truncated raw data
        lambda b: b"\x01\x02" + b[2:],  # wrong magic
        lambda b: b[:6],  # truncated header
    ],
)
def test_corrupt_or_truncated_idx_names_the_file(tmp_path: Path, damage: object) -> None:
    raw = _idx_bytes(np.ones((3, 28, 28), np.uint8))
    bad = tmp_path / "train-images-idx3-ubyte.gz"
    bad.write_bytes(damage(raw))  # type: ignore[operator]
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        read_idx(bad)


def test_real_mnist_parses_to_60000_and_10000_images(shared_data: Path) -> None:
    train = read_idx(shared_data / "mnist" / "train-images-idx3-ubyte.gz")
    test = read_idx(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(shared_data / "mnist" / "train-labels-idx1-ubyte.gz")
    assert train.shape == (60_000, 28, 28) and test.shape == (10_000, 28, 28) and labels.shape == (60_000,)
    assert train.dtype == np.uint8 and labels.max() == 9
    assert hashlib.md5(train.tobytes()).hexdigest() != hashlib.md5(test.tobytes()).hexdigest()


# ------------------------------------------------------------------------ generated splits


def test_train_clip_is_20_frames_64x64_in_unit_range(root: Path) -> None:
    clip = _ds(root, test_set="generated").split("train")[0]
    assert clip.shape == (20, 1, 64, 64) and clip.dtype == torch.float32
    assert 0.0 <= float(clip.min()) and float(clip.max()) <= 1.0 and float(clip.max()) > 0.3


def test_train_item_is_a_pure_function_of_seed_epoch_and_index(root: Path) -> None:
    a, b = _ds(root, seed=3).split("train"), _ds(root, seed=3).split("train")
    assert torch.equal(a[5], b[5])
    a.set_epoch(1)  # type: ignore[attr-defined]
    assert not torch.equal(a[5], b[5])
    b.set_epoch(1)  # type: ignore[attr-defined]
    assert torch.equal(a[5], b[5])
    assert not torch.equal(a[5], _ds(root, seed=4).split("train")[5])


def test_worker_processes_see_the_same_clips_as_the_main_process(root: Path) -> None:
    split = _ds(root, seed=1, train_length=8).split("train")
    split.set_epoch(2)  # type: ignore[attr-defined]
    direct = torch.stack([split[i] for i in range(8)])
    loaded = torch.cat(list(DataLoader(split, batch_size=4, num_workers=2, multiprocessing_context="fork")))
    assert torch.equal(direct, loaded)


def test_digits_move_at_3_6_pixels_per_frame(root: Path) -> None:
    """One digit: the top-left corner of its bounding box steps by about 0.1 * 36 px per frame."""
    clip = _ds(root, digits=1).split("train")[0][:, 0].numpy()
    corners = []
    for frame in clip:
        rows, cols = np.nonzero(frame)
        corners.append((rows.min() - 6, cols.min() - 10))  # the bar starts at (6, 10) in the digit
    steps = np.abs(np.diff(np.array(corners, dtype=float), axis=0))
    speed = np.hypot(steps[:, 0], steps[:, 1])
    assert np.median(speed) == pytest.approx(3.6, abs=0.8)
    assert speed.max() <= 3.6 + 2 * np.sqrt(2)


def test_validation_is_fixed_by_its_own_seed_not_the_run_seed(root: Path) -> None:
    val_a, val_b = _ds(root, seed=0).split("val"), _ds(root, seed=9).split("val")
    assert torch.equal(val_a[0], val_b[0])
    assert not torch.equal(val_a[0], _ds(root, seed=0).split("train")[0])
    assert not torch.equal(val_a[0], _ds(root, val_seed=7).split("val")[0])
    assert len(val_a) == 1000


# --------------------------------------------------------------------------- the test set


def test_standard_test_file_gives_frames_0_to_19_of_each_sequence(root: Path, test_file: np.ndarray) -> None:
    ds = _ds(root)
    ds.check()
    test = ds.split("test")
    assert len(test) == 6
    assert torch.equal(test[4], torch.from_numpy(test_file[:, 4]).float().div(255).unsqueeze(1))
    info = ds.describe()
    assert info["standard_test_set"] is True and info["test"]["clips"] == 6


def test_test_split_survives_pickling_for_worker_processes(root: Path, test_file: np.ndarray) -> None:
    import pickle

    test = _ds(root).split("test")
    test[0]
    clone = pickle.loads(pickle.dumps(test))
    assert torch.equal(clone[2], test[2])


def test_md5_mismatch_names_file_expected_and_actual_and_keeps_the_file(root: Path) -> None:
    path = root / "moving_mnist" / "mnist_test_seq.npy"
    np.save(path, np.zeros((20, 2, 64, 64), np.uint8))
    with pytest.raises(DataError) as err:
        _ds(root).check()
    msg = str(err.value)
    assert str(path) in msg and "be083ec986bfe91a449d63653c411eb2" in msg
    assert hashlib.md5(path.read_bytes()).hexdigest() in msg and path.exists()


def test_missing_test_file_names_path_prepare_command_url_and_the_opt_in(root: Path) -> None:
    with pytest.raises(DataError) as err:
        _ds(root).check()
    msg = str(err.value)
    assert str(root / "moving_mnist" / "mnist_test_seq.npy") in msg
    assert f"vpbench data prepare mmnist --data-root {root}" in msg
    assert "http://www.cs.toronto.edu/~nitish/unsupervised_video/mnist_test_seq.npy" in msg
    assert "test_set=generated" in msg


def test_missing_digits_name_path_and_mirror(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz.*yann.lecun.com"):
        _ds(tmp_path, test_set="generated").check()


def test_corrupt_test_file_names_the_file(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = root / "moving_mnist" / "mnist_test_seq.npy"
    path.write_bytes(b"\x93NUMPY garbage")
    monkeypatch.setattr(mm, "STANDARD_TEST_MD5", hashlib.md5(path.read_bytes()).hexdigest())
    with pytest.raises(DataError, match="mnist_test_seq.npy"):
        _ds(root).check()


def test_generated_test_set_is_opt_in_uses_test_digits_and_says_so(root: Path, test_file: np.ndarray) -> None:
    standard, generated = _ds(root), _ds(root, test_set="generated", generated_test_length=12)
    info = generated.describe()
    assert info["standard_test_set"] is False and "NOT the standard" in info["test"]["source"]
    assert "t10k-images" in info["test"]["source"]
    test = generated.split("test")
    assert len(test) == 12 and torch.equal(test[3], _ds(root, seed=5, test_set="generated").split("test")[3])
    assert standard.checksum() != generated.checksum()


def test_mnist_digits_are_found_in_a_plain_mnist_folder(tmp_path: Path) -> None:
    _write_mnist(tmp_path / "mnist")
    _ds(tmp_path, test_set="generated").check()


def test_real_digits_make_a_generated_run_ready(shared_data: Path, tmp_path: Path) -> None:
    (tmp_path / "mnist").mkdir()
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        (tmp_path / "mnist" / name).symlink_to(shared_data / "mnist" / name)
    ds = _ds(tmp_path, test_set="generated")
    ds.check()
    clip = ds.split("test")[0]
    assert clip.shape == (20, 1, 64, 64) and float(clip.max()) == 1.0


# ------------------------------------------------------------------------------- prepare


def test_prepare_downloads_from_the_first_working_mirror_and_verifies(
    mirror: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, folder = mirror
    _write_mnist(folder)
    np.save(folder / "mnist_test_seq.npy", np.zeros((20, 3, 64, 64), np.uint8))
    md5 = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    dead = "http://127.0.0.1:9/"
    for attr, name in (("TRAIN_DIGITS", "train-images-idx3-ubyte.gz"), ("TEST_DIGITS", "t10k-images-idx3-ubyte.gz")):
        monkeypatch.setattr(mm, attr, Remote(name, (dead + name, f"{url}/{name}"), md5=md5[name]))
    monkeypatch.setattr(mm, "TEST_SEQ_URL", f"{url}/mnist_test_seq.npy")
    monkeypatch.setattr(mm, "STANDARD_TEST_MD5", md5["mnist_test_seq.npy"])
    ds = _ds(tmp_path / "root")
    ds.prepare(progress=False)
    fetched = [p.name for p in (tmp_path / "root" / "moving_mnist").iterdir() if not p.name.startswith(".")]
    assert sorted(fetched) == sorted(md5)
    assert len(ds.split("test")) == 3
    ds.prepare(progress=False)  # idempotent: nothing to fetch


def test_registered_spec_matches_the_dataset(registry: Registry, root: Path) -> None:
    spec = registry.datasets.get("mmnist")
    assert (spec.frame_shape, spec.context, spec.horizon) == ((1, 64, 64), 10, 10)
    ds = spec.load()(MovingMNIST.Config(), root)
    assert ds.frame_shape.as_tuple() == spec.frame_shape and (ds.context, ds.horizon) == (10, 10)
