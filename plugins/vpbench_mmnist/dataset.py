"""Moving MNIST: the splits, the files and their provenance.

Files live in ``<data root>/moving_mnist/`` (OpenSTL's ``data/moving_mnist/``); MNIST digits
are also found in ``<data root>/mnist/``.

* train: ``train_length`` clips per epoch generated from the 60,000 MNIST training digits
  with the standard generator (:mod:`vpbench.data.bouncing`): two digits, 28 px on a 64 px
  canvas, uniform start and direction, speed 0.1 (3.6 px/frame), bouncing, pixel-wise max.
  Item ``i`` of epoch ``e`` is a pure function of ``(seed, e, i)``, so data-loader workers
  and resumed runs see the same clips.
* val: ``val_length`` clips from the training digits with the fixed ``val_seed``
  (independent of the run seed), so model selection never touches test data.
* test: the standard ``mnist_test_seq.npy`` (20 x 10000 x 64 x 64 uint8, md5-checked,
  memory-mapped; frames 0-9 in, 10-19 out). Only when the user opts in with
  ``test_set: generated`` is a test set generated from the MNIST *test* digits with a
  fixed seed instead; :meth:`MovingMNIST.describe` and :meth:`MovingMNIST.checksum` say so.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor
from torch.utils.data import Dataset

import vpbench
from vpbench.data import bouncing
from vpbench.data.download import Remote, fetch, file_digest, missing_message
from vpbench.data.idx import read_idx
from vpbench.errors import DataError
from vpbench.fsutil import atomic_write_json
from vpbench.interfaces import FrameShape, Split

CANVAS = 64
DIGIT = 28
FRAMES = 20
CONTEXT = 10
SUBDIR = "moving_mnist"

MNIST_MIRRORS = (
    "http://yann.lecun.com/exdb/mnist/",  # the official host (HTTP 403 since 2024)
    "https://ossci-datasets.s3.amazonaws.com/mnist/",  # torchvision's mirror
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
TEST_SEQ_URL = "http://www.cs.toronto.edu/~nitish/unsupervised_video/mnist_test_seq.npy"
#: md5 of the standard test file, as torchvision's MovingMNIST lists it
STANDARD_TEST_MD5 = "be083ec986bfe91a449d63653c411eb2"

TRAIN_DIGITS = Remote(
    "train-images-idx3-ubyte.gz",
    tuple(m + "train-images-idx3-ubyte.gz" for m in MNIST_MIRRORS),
    md5="f68b3c2dcbeaaa9fbdd348bbdeb94873",
)
TEST_DIGITS = Remote(
    "t10k-images-idx3-ubyte.gz",
    tuple(m + "t10k-images-idx3-ubyte.gz" for m in MNIST_MIRRORS),
    md5="9fb629c4189551a2d022fa330f9573f3",
)


def test_seq_remote() -> Remote:
    """The standard test file (a function so tests can patch :data:`STANDARD_TEST_MD5`)."""
    return Remote("mnist_test_seq.npy", (TEST_SEQ_URL,), md5=STANDARD_TEST_MD5)


# ------------------------------------------------------------------------ digit images

_digit_cache: dict[tuple[str, int], np.ndarray] = {}
_digit_lock = threading.Lock()


def load_digits(path: Path) -> np.ndarray:
    """MNIST images ``[N, 28, 28]`` uint8, parsed once per process."""
    key = (str(path), path.stat().st_mtime_ns)
    with _digit_lock:
        if key not in _digit_cache:
            images = read_idx(path)
            if images.ndim != 3 or images.shape[1:] != (DIGIT, DIGIT) or images.dtype != np.uint8:
                raise DataError(f"{path} holds {images.dtype} {images.shape}, not 28x28 uint8 MNIST images")
            if images.shape[0] == 0:
                raise DataError(f"{path} holds 0 images; delete it and run `vpbench data prepare mmnist` to fetch MNIST")
            _digit_cache[key] = images
        return _digit_cache[key]


#: md5 of digit files already compared with their pin in this process, by path and stamp
_md5_seen: dict[tuple[str, int, int, int, int], str] = {}


def _stamp(path: Path) -> tuple[str, int, int, int, int]:
    """Path, size, mtime, ctime and inode: any write to the file (or a reset mtime) changes it."""
    st = path.stat()
    return (str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def generate(rng: np.random.Generator, digits: np.ndarray, num_objects: int, step_length: float) -> np.ndarray:
    """One clip ``[20, 64, 64]`` uint8 from ``digits`` with the standard generator."""
    picks = rng.integers(0, len(digits), size=num_objects)
    paths = bouncing.trajectories(rng, FRAMES, num_objects, CANVAS - DIGIT, step_length)
    return bouncing.compose([digits[k] for k in picks], paths, CANVAS)


def to_clip(frames: np.ndarray) -> Tensor:
    """uint8 ``[T, H, W]`` -> float ``[T, 1, H, W]`` in [0, 1] (x / 255, as OpenSTL).

    Converted in numpy: a tiny torch op per item would contend for torch's thread pool.
    """
    return torch.from_numpy(frames.astype(np.float32) / np.float32(255.0)).unsqueeze(1)


class GeneratedClips(Dataset[Tensor]):
    """Clips generated from MNIST digits; item ``i`` is a pure function of ``(key, epoch, i)``.

    ``key`` is the list of integers seeding the stream (e.g. ``[run seed, 0]`` for train);
    ``set_epoch`` changes the clips of a training stream, fixed streams ignore it.
    """

    def __init__(
        self, digits_path: Path, length: int, key: list[int], *, num_objects: int, step_length: float, epochs: bool
    ) -> None:
        self.digits_path = digits_path
        self.length = length
        self.key = key
        self.num_objects = num_objects
        self.step_length = step_length
        self.epochs = epochs
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        if self.epochs:
            self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Tensor:
        if not 0 <= index < self.length:
            raise IndexError(index)
        rng = np.random.default_rng([*self.key, self.epoch, index])
        digits = load_digits(self.digits_path)
        return to_clip(generate(rng, digits, self.num_objects, self.step_length))


class StandardTestClips(Dataset[Tensor]):
    """``mnist_test_seq.npy`` ``[20, N, 64, 64]`` uint8, memory-mapped once per process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.length = int(open_test_file(path).shape[1])
        self._array: np.ndarray | None = None

    def __getstate__(self) -> dict[str, Any]:  # data-loader workers re-open the map
        return {**self.__dict__, "_array": None}

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Tensor:
        if not 0 <= index < self.length:
            raise IndexError(index)
        if self._array is None:
            self._array = open_test_file(self.path)
        return to_clip(self._array[:, index])


def open_test_file(path: Path) -> np.ndarray:
    """Memory-map ``mnist_test_seq.npy``; a corrupt, truncated or misshapen file names itself."""
    try:
        array: np.ndarray = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path} is not a readable .npy file ({exc}); delete it and prepare again") from exc
    if array.ndim != 4 or array.shape[0] != FRAMES or array.shape[2:] != (CANVAS, CANVAS) or array.dtype != np.uint8:
        raise DataError(f"{path} holds {array.dtype} {array.shape}, expected uint8 (20, N, 64, 64)")
    return array


# ------------------------------------------------------------------------------ dataset


class MovingMNIST(vpbench.VideoDataset):
    """Moving MNIST, 10 -> 10 at 64x64x1 (see the module docstring for the splits)."""

    name = "mmnist"
    #: qualitative strips use the first four test sequences of ``mnist_test_seq.npy``
    fixed_test_sequences = (0, 1, 2, 3)

    class Config(vpbench.ComponentConfig):
        test_set: Literal["standard", "generated"] = Field(
            "standard",
            description="'standard': mnist_test_seq.npy; 'generated': opt-in, from MNIST test digits "
            "with a fixed seed, reported as non-standard",
        )
        train_length: int = Field(10_000, ge=1, description="training clips per epoch (OpenSTL: 10,000)")
        val_length: int = Field(1_000, ge=1, description="generated validation clips")
        val_seed: int = Field(1, description="fixed seed of the validation clips (independent of the run seed)")
        generated_test_length: int = Field(10_000, ge=1, description="clips of the opt-in generated test set")
        generated_test_seed: int = Field(2, description="fixed seed of the opt-in generated test set")
        digits: int = Field(2, ge=1, description="digits per clip")
        speed: float = Field(0.1, gt=0, description="speed in normalised units per frame (0.1 = 3.6 px)")

    config: Config

    def __init__(self, config: vpbench.ComponentConfig, data_root: Path, seed: int = 0) -> None:
        if not isinstance(config, self.Config):
            config = self.Config.model_validate(config.model_dump())
        super().__init__(config, data_root, seed)

    # -------------------------------------------------------------- shape
    @property
    def frame_shape(self) -> FrameShape:
        return FrameShape(1, CANVAS, CANVAS)

    @property
    def context(self) -> int:
        return CONTEXT

    @property
    def horizon(self) -> int:
        return FRAMES - CONTEXT

    # -------------------------------------------------------------- files
    @property
    def folder(self) -> Path:
        return self.data_root / SUBDIR

    @property
    def prepare_command(self) -> str:
        return f"vpbench data prepare mmnist --data-root {self.data_root}"

    def _locate(self, remote: Remote) -> Path:
        """The file where it is, else where :meth:`prepare` puts it."""
        for folder in (self.folder, self.data_root / "mnist"):
            if (folder / remote.filename).is_file():
                return folder / remote.filename
        return self.folder / remote.filename

    def _require(self, remote: Remote, extra: str = "") -> Path:
        path = self._locate(remote)
        if not path.is_file():
            raise DataError(missing_message(path, self.prepare_command, remote.source, extra))
        return path

    def _verified_test_md5(self, path: Path) -> str:
        """md5 of the test file, remembered in a stamp beside it while its size, mtime, ctime and
        inode hold: an in-place edit changes mtime and ctime, and resetting the mtime
        (``touch -d``, ``os.utime``) changes the ctime, which no user call can set back."""
        st = path.stat()
        stamp = path.with_name(f".{path.name}.verified.json")
        now = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "ino": st.st_ino}
        try:
            seen = json.loads(stamp.read_text())
            if all(seen.get(k) == v for k, v in now.items()):
                return str(seen["md5"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        md5 = file_digest(path, "md5")
        if md5 == STANDARD_TEST_MD5:
            try:
                atomic_write_json(stamp, {**now, "md5": md5})
            except OSError:
                pass  # a read-only data root: verify again next time
        return md5

    def _standard_test_path(self) -> Path:
        remote = test_seq_remote()
        path = self._require(
            remote,
            extra="or opt in to a test set generated from MNIST test digits with "
            "`--set dataset.test_set=generated` (reported as non-standard)",
        )
        md5 = self._verified_test_md5(path)
        if md5 != STANDARD_TEST_MD5:
            raise DataError(
                f"md5 mismatch for {path}: expected {STANDARD_TEST_MD5}, got {md5}; the file was left in place: "
                f"move it away and run `{self.prepare_command}`, or download it from {remote.source}"
            )
        open_test_file(path)
        return path

    # -------------------------------------------------------------- contract
    def prepare(self, *, progress: bool = True) -> None:
        """Download the MNIST digits and (for the standard test set) ``mnist_test_seq.npy``."""
        needed = [TRAIN_DIGITS, TEST_DIGITS]
        if self.config.test_set == "standard":
            needed.append(test_seq_remote())
        for remote in needed:
            if not self._locate(remote).is_file():
                fetch(remote, self.folder, prepare_command=self.prepare_command, progress=progress)
        for remote in (TRAIN_DIGITS, TEST_DIGITS):  # files already present are verified too
            self._verified(remote)
        self.check()

    def _verified(self, remote: Remote) -> Path:
        """The digit file, parsed, then checked against its published md5 (a swapped, edited or
        garbage file is refused). Called wherever the digits are used (check, split, checksum):
        the md5 (about 30 ms for the train digits) is computed once per process and file state.
        """
        path = self._require(remote)
        load_digits(path)  # a malformed file names what is wrong with it before the md5 does
        key = _stamp(path)
        md5 = _md5_seen.get(key)
        if md5 is None:
            md5 = _md5_seen[key] = file_digest(path, "md5")
        if remote.md5 is not None and md5 != remote.md5:
            raise DataError(
                f"md5 mismatch for {path}: expected {remote.md5} ({remote.filename}), got {md5}; the file was left "
                f"in place: move it away and run `{self.prepare_command}`, or download it from {remote.source}"
            )
        return path

    def _digits_md5(self, remote: Remote) -> str:
        path = self._verified(remote)
        return _md5_seen.get(_stamp(path)) or file_digest(path, "md5")

    def check(self) -> None:
        self._verified(TRAIN_DIGITS)  # parsed once per process; an empty or edited file fails here
        if self.config.test_set == "standard":
            self._standard_test_path()
        else:
            self._verified(TEST_DIGITS)

    def split(self, name: Split) -> Dataset[Tensor]:
        c = self.config
        if name == "train":
            return GeneratedClips(
                self._verified(TRAIN_DIGITS), c.train_length, [self.seed, 0],
                num_objects=c.digits, step_length=c.speed, epochs=True,
            )  # fmt: skip
        if name == "val":
            return GeneratedClips(
                self._verified(TRAIN_DIGITS), c.val_length, [c.val_seed, 1],
                num_objects=c.digits, step_length=c.speed, epochs=False,
            )  # fmt: skip
        if name == "test":
            if c.test_set == "standard":
                return StandardTestClips(self._standard_test_path())
            return GeneratedClips(
                self._verified(TEST_DIGITS), c.generated_test_length, [c.generated_test_seed, 2],
                num_objects=c.digits, step_length=c.speed, epochs=False,
            )  # fmt: skip
        raise DataError(f"unknown split {name!r}; valid splits: train, val, test")

    def checksum(self) -> str:
        """sha256 over the md5s of the files used, the config and the generator's identity."""
        facts: dict[str, Any] = {"config": self.config.model_dump(), "generator": "vpbench.data.bouncing/v1"}
        facts["train_digits"] = self._digits_md5(TRAIN_DIGITS)
        if self.config.test_set == "standard":
            facts["test"] = self._verified_test_md5(self._standard_test_path())
        else:
            facts["test_digits"] = self._digits_md5(TEST_DIGITS)
        return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        """Counts and provenance; works with data missing (then says what is missing)."""
        c = self.config
        train_path = self._locate(TRAIN_DIGITS)
        info: dict[str, Any] = {
            "dataset": "mmnist",
            "frame_shape": list(self.frame_shape.as_tuple()),
            "context": self.context,
            "horizon": self.horizon,
            "train": {
                "clips_per_epoch": c.train_length,
                "source": f"generated on the fly from MNIST train digits ({train_path}, md5 {TRAIN_DIGITS.md5}), "
                f"{c.digits} digits, speed {c.speed}; item i of epoch e seeded by (run seed, e, i)",
                "present": train_path.is_file(),
            },
            "val": {
                "clips": c.val_length,
                "source": f"generated from MNIST train digits with fixed seed {c.val_seed} (not the test set)",
            },
            "test_set": c.test_set,
            "standard_test_set": c.test_set == "standard",
        }
        if c.test_set == "standard":
            path = self._locate(test_seq_remote())
            test: dict[str, Any] = {"source": f"standard mnist_test_seq.npy ({path}), md5 {STANDARD_TEST_MD5}"}
            test["present"] = path.is_file()
            if path.is_file():
                try:
                    test["clips"] = int(open_test_file(path).shape[1])
                except DataError as exc:
                    test["error"] = str(exc)
            info["test"] = test
        else:
            path = self._locate(TEST_DIGITS)
            info["test"] = {
                "clips": c.generated_test_length,
                "source": f"GENERATED from MNIST test digits ({path}, md5 {TEST_DIGITS.md5}) with fixed seed {c.generated_test_seed}; "
                "NOT the standard mnist_test_seq.npy, not comparable with published tables",
                "present": path.is_file(),
            }
        return info
