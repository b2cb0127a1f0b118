"""KTH as the OpenSTL / PredRNN tables use it.

* Frames: channel 0 of each decoded frame, resized bilinearly (half-pixel centres, no
  antialiasing, as ``cv2.resize`` does) from 160x120 to 128x128 without keeping the aspect
  ratio, divided by 255. ``channels: 3`` replicates the grey channel (S-HR-VQVAE's Table 1).
* Splits by person: 1-16 train, 17-25 test. ``val_persons`` (default [15, 16], as PredBench)
  are taken out of train and used for validation, so model selection never sees a test
  person; set ``val_persons: []`` to validate on the test persons as OpenSTL does (then
  :meth:`KTH.describe` says so).
* Clips: the backward scan of :mod:`vpbench_kth.clips` (non-overlapping windows anchored at
  the video end; stride 3 for jogging and running), or the same scan inside the
  ``00sequences.txt`` sub-sequences with ``windows: sequences`` (a video the file does not
  list, such as person13_handclapping_d3, is scanned whole and named in ``describe()``).
* Decoded once into a memory-mapped uint8 cache (:mod:`vpbench_kth.videos`).
* Clips are ordered by (action, person, scenario, start frame); the fixed qualitative test
  sequences are the first four test clips (person 17, boxing, scenario 1, in time order).
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from filelock import FileLock
from pydantic import Field, model_validator
from torch import Tensor
from torch.utils.data import Dataset

import vpbench
from vpbench.data.download import Remote, fetch, file_digest, missing_message, safe_extract_zip
from vpbench.data.manifest import Manifest
from vpbench.errors import DataError
from vpbench.fsutil import atomic_write_text
from vpbench.interfaces import FrameShape, Split

from . import clips as cl
from .videos import ACTIONS, Cache, Video, choose, discover, frame_numbers

SUBDIR = "kth"
ACTION_URL = "http://www.csc.kth.se/cvap/actions/{action}.zip"
SEQUENCES_URL = "http://www.nada.kth.se/cvap/actions/00sequences.txt"
SEQUENCES_FILE = "00sequences.txt"
#: SHA-256 of the KTH files whose bytes are established (the official 00sequences.txt and
#: original AVIs, see shared/data/SOURCES.md); a download of one of them must match, and so
#: must a copy placed by hand, each time it is read (decoded, or parsed for its boundaries).
#: The action zips have no published checksum: their SHA-256 and that of every other AVI
#: are recorded in the data root's manifest on first preparation and verified afterwards.
KNOWN_SHA256 = {
    SEQUENCES_FILE: "6331f4e4d0d820f306a46c40f82afc39f2486cc8723fe15f4742c14c261ccba7",
    "person01_handclapping_d1_uncomp.avi": "16fdebdce7888030dbbd04b0500b5b5e127b7787c6020ad006bea7cbb63a4eb3",
    "person01_handclapping_d2_uncomp.avi": "fa16a2058b08b5de918e135fc1bed6ed487015dd6afe20b0e2e4d2ba1ad94095",
    "person01_jogging_d1_uncomp.avi": "99b17e98640c631115657778b76c96194aed0d6ed665dfc90c003ab9531f0e23",
}
#: the most bytes one action zip may extract to (the largest official one holds about 0.3 GB)
MAX_ZIP_BYTES = 2 << 30


# ------------------------------------------------------------------------------ resize


@functools.lru_cache(maxsize=16)
def _axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of a linear resize with half-pixel centres (cv2 INTER_LINEAR)."""
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0.0, n_in - 1)
    i0 = np.floor(src).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (src - i0).astype(np.float32)


def resize_bilinear(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """``[T, H, W]`` (uint8 or float) -> float32 ``[T, height, width]``, separable bilinear.

    Each output pixel is a + (b - a) * w along rows, then along columns; the gathers run
    on the uint8 frames, so a 30-frame clip costs a few milliseconds on one core.
    """
    _, h, w = frames.shape
    y0, y1, wy = _axis(h, height)
    x0, x1, wx = _axis(w, width)
    top = frames[:, y0].astype(np.float32)  # [T, height, W]
    bottom = frames[:, y1].astype(np.float32)
    bottom -= top
    bottom *= wy[:, None]
    top += bottom  # rows interpolated: [T, height, W]
    left = top[:, :, x0]  # [T, height, width]
    right = top[:, :, x1]
    right -= left
    right *= wx
    left += right
    return left


# ------------------------------------------------------------------------------- clips


@dataclass(frozen=True)
class ClipRef:
    video: str  # cache array path
    start: int  # offset into the cached frames


class KTHClips(Dataset[Tensor]):
    """Clips ``[L, C, size, size]`` float in [0, 1] read from the memory-mapped cache."""

    def __init__(self, refs: list[ClipRef], length: int, size: int, channels: int) -> None:
        self.refs = refs
        self.length = length
        self.size = size
        self.channels = channels
        self._maps: dict[str, np.ndarray] = {}

    def __getstate__(self) -> dict[str, Any]:  # data-loader workers open their own maps
        return {**self.__dict__, "_maps": {}}

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, index: int) -> Tensor:
        ref = self.refs[index]
        array = self._maps.get(ref.video)
        if array is None:
            try:
                array = self._maps[ref.video] = np.load(ref.video, mmap_mode="r", allow_pickle=False)
            except (ValueError, OSError, EOFError) as exc:
                raise DataError(
                    f"KTH cache file {ref.video} is unreadable ({type(exc).__name__}); delete it and run "
                    f"`vpbench data prepare kth` to decode it again"
                ) from None
        raw = array[ref.start : ref.start + self.length]  # uint8 [L, 120, 160]
        frames = resize_bilinear(raw, self.size, self.size)  # float32 [L, size, size] in 0..255
        frames = np.ascontiguousarray(frames) / np.float32(255.0)
        clip = frames[:, None] if self.channels == 1 else np.repeat(frames[:, None], self.channels, axis=1)
        return torch.from_numpy(clip)  # [L, C, size, size]


# ----------------------------------------------------------------------------- dataset


class KTH(vpbench.VideoDataset):
    """KTH human actions, 10 -> 20 at 128x128 (see the module docstring)."""

    name = "kth"
    #: the first four test clips: person 17, boxing, scenario 1, in time order
    fixed_test_sequences = (0, 1, 2, 3)

    class Config(vpbench.ComponentConfig):
        context: int = Field(10, ge=1, description="input frames")
        horizon: int = Field(20, ge=1, description="predicted frames (OpenSTL kth: 20, kth40: 40)")
        image_size: int = Field(128, ge=8, description="frames are resized to image_size x image_size")
        channels: Literal[1, 3] = Field(1, description="1: grey (channel 0); 3: grey replicated")
        train_persons: list[int] = Field(list(range(1, 17)), description="persons of the training split")
        val_persons: list[int] = Field(
            [15, 16],
            description="persons taken out of train for validation; []: validate on test persons (OpenSTL)",
        )
        test_persons: list[int] = Field(list(range(17, 26)), description="persons of the test split")
        windows: Literal["openstl", "sequences"] = Field(
            "openstl", description="'openstl': backward scan over whole videos; 'sequences': within 00sequences.txt"
        )
        source: Literal["auto", "avi", "frames"] = Field(
            "auto", description="read raw AVIs, frame folders, or frame folders where present (auto)"
        )

        @model_validator(mode="after")
        def _persons_disjoint(self) -> KTH.Config:
            overlap = (set(self.train_persons) - set(self.val_persons)) & set(self.test_persons)
            if overlap or set(self.val_persons) & set(self.test_persons):
                raise ValueError(f"persons {sorted(overlap | (set(self.val_persons) & set(self.test_persons)))} "
                                 "are in the test split and in train or val")
            return self

    config: Config

    def __init__(self, config: vpbench.ComponentConfig, data_root: Path, seed: int = 0) -> None:
        if not isinstance(config, self.Config):
            config = self.Config.model_validate(config.model_dump())
        super().__init__(config, data_root, seed)
        self._videos: list[Video] | None = None
        self._segment_table: dict[str, list[tuple[int, int]]] | None = None

    @property
    def frame_shape(self) -> FrameShape:
        return FrameShape(self.config.channels, self.config.image_size, self.config.image_size)

    @property
    def context(self) -> int:
        return self.config.context

    @property
    def horizon(self) -> int:
        return self.config.horizon

    # -------------------------------------------------------------- files
    @property
    def folder(self) -> Path:
        return self.data_root / SUBDIR

    @property
    def cache(self) -> Cache:
        return Cache(self.folder / "cache", Manifest(self.data_root), KNOWN_SHA256)

    @property
    def prepare_command(self) -> str:
        return f"vpbench data prepare kth --data-root {self.data_root}"

    def _lock(self) -> FileLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.folder / ".prepare.lock"))

    def videos(self) -> list[Video]:
        if self._videos is None:
            self._videos = choose(discover(self.folder), self.config.source)
        return self._videos

    def persons(self, name: Split) -> tuple[set[int], str]:
        """Persons of a split and a note on where they come from."""
        c = self.config
        if name == "train":
            return set(c.train_persons) - set(c.val_persons), "train persons minus val persons"
        if name == "val":
            if c.val_persons:
                return set(c.val_persons), "val persons"
            return set(c.test_persons), "test persons (OpenSTL convention: validation = test)"
        if name == "test":
            return set(c.test_persons), "test persons"
        raise DataError(f"unknown split {name!r}; valid splits: train, val, test")

    def _segments(self) -> dict[str, list[tuple[int, int]]] | None:
        if self.config.windows == "openstl":
            return None
        if self._segment_table is None:
            path = self.folder / SEQUENCES_FILE
            if not path.is_file():
                raise DataError(
                    missing_message(path, self.prepare_command, SEQUENCES_URL, "or set dataset.windows=openstl")
                )
            Manifest(self.data_root).check(path, pinned=KNOWN_SHA256[SEQUENCES_FILE], fix="or set dataset.windows=openstl")
            self._segment_table = cl.read_sequences(path)
        return self._segment_table

    def _no_data(self) -> DataError:
        example = self.folder / "avi" / "person01_boxing_d1_uncomp.avi"
        return DataError(
            missing_message(
                example,
                self.prepare_command,
                ACTION_URL.format(action="boxing"),
                f"KTH AVIs or frame folders (<action>/personNN_action_dK_uncomp/image_0001.jpg) go under {self.folder}",
            )
        )

    # -------------------------------------------------------------- preparation
    def _changed(self, cache: Cache, videos: list[Video]) -> list[tuple[Video, str, str]]:
        """Cached videos whose array no longer holds the recorded frames: (video, sha256 held, recorded)."""
        out = []
        for v in videos:
            meta = cache.meta(v)
            if meta is not None and (held := cache.verify(v, meta)) is not None:
                out.append((v, held, str(meta["sha256"])))
        return out

    def build_cache(self, *, progress: bool = False, repair: bool = False) -> int:
        """Decode every video not yet cached (under the prepare lock); return how many were decoded.

        Every cached array is verified against the sha256 recorded when it was decoded (see
        :mod:`vpbench_kth.videos` for what makes that cheap). A changed one is a
        :class:`DataError` naming it, unless ``repair`` (``data prepare``) decodes it again.
        """
        cache = self.cache
        changed = self._changed(cache, self.videos())
        if changed and not repair:
            v, held, recorded = changed[0]
            raise DataError(
                f"KTH cache file {cache.paths(v)[0]} was changed after it was decoded from {v.path}: its frames "
                f"hash to sha256 {held}, recorded {recorded}; run `{self.prepare_command}` to decode it again"
            )
        todo = [*cache.missing(self.videos()), *(v for v, _, _ in changed)]
        if not todo:
            return 0
        with self._lock():
            # another process may have done them
            redo = {v.key for v, _, _ in self._changed(cache, [v for v, _, _ in changed])}
            for v, held, recorded in changed:
                if v.key in redo:
                    print(
                        f"warning: KTH cache file {cache.paths(v)[0]} was changed after it was decoded "
                        f"(sha256 {held}, recorded {recorded}); decoding {v.path} again",
                        file=sys.stderr,
                    )
            todo = [*cache.missing(self.videos()), *(v for v, _, _ in changed if v.key in redo)]
            bar: Any = todo
            if progress:
                from tqdm import tqdm

                bar = tqdm(todo, desc="decoding KTH", unit="video")
            for video in bar:
                cache.build(video)
        return len(todo)

    def download(self, *, progress: bool = True) -> None:
        """Fetch and extract the official action zips that are not present yet."""
        present = {v.action for v in discover(self.folder)}
        downloads = self.folder / "downloads"
        for action in ACTIONS:
            stamp = self.folder / "avi" / f".{action}.extracted"
            archive = downloads / f"{action}.zip"
            started = archive.exists() or archive.with_name(archive.name + ".part").exists()
            if stamp.exists() or (action in present and not started):
                continue  # done, or placed by the user
            remote = Remote(f"{action}.zip", (ACTION_URL.format(action=action),))
            try:
                path = fetch(remote, downloads, prepare_command=self.prepare_command, progress=progress)
            except DataError as exc:
                raise DataError(
                    f"{exc}; or put the KTH AVIs (personNN_{action}_dK_uncomp.avi) or frame folders under {self.folder}"
                ) from exc
            Manifest(self.data_root).check(path, fix="the server sent other bytes than at the first download")
            extracted = safe_extract_zip(path, self.folder / "avi" / action, root=self.data_root, max_bytes=MAX_ZIP_BYTES)
            for member in extracted:  # the videos whose bytes are established must match
                expected = KNOWN_SHA256.get(member.name)
                if expected is not None and file_digest(member, "sha256") != expected:
                    got = file_digest(member, "sha256")
                    for other in extracted:
                        other.unlink(missing_ok=True)
                    path.unlink()
                    raise DataError(
                        f"sha256 mismatch for {member}: expected {expected}, got {got} (from {remote.source}); "
                        f"the download was discarded: run `{self.prepare_command}` again, or place the original "
                        f"KTH videos under {self.folder} by hand"
                    )
            atomic_write_text(stamp, "extracted\n")
            path.unlink()
        seq = self.folder / SEQUENCES_FILE
        if self.config.windows == "sequences" and not seq.exists():
            fetch(
                Remote(SEQUENCES_FILE, (SEQUENCES_URL,), sha256=KNOWN_SHA256[SEQUENCES_FILE]),
                self.folder,
                prepare_command=self.prepare_command,
            )
        self._videos = None

    def prepare(self, *, progress: bool = True) -> None:
        """Download what is missing, extract it safely, decode every video once."""
        with self._lock():
            self.download(progress=progress)
        self.build_cache(progress=progress, repair=True)
        self.check()

    def check(self) -> None:
        if not self.videos():
            raise self._no_data()
        self._segments()

    # -------------------------------------------------------------- clips
    def _numbers(self, video: Video) -> list[int]:
        meta = self.cache.meta(video)
        return list(meta["numbers"]) if meta is not None else frame_numbers(video)

    def clip_starts(self, video: Video) -> list[int]:
        segments = self._segments()
        seg = None if segments is None else segments.get(video.key)
        length = self.context + self.horizon
        return cl.windows(self._numbers(video), length, video.action, seg)

    def split(self, name: Split) -> Dataset[Tensor]:
        persons, note = self.persons(name)
        if not self.videos():
            raise self._no_data()
        chosen = [v for v in self.videos() if v.person in persons]
        self.build_cache()
        refs = [
            ClipRef(str(self.cache.paths(v)[0]), s) for v in chosen for s in self.clip_starts(v)
        ]
        if not refs:
            raise DataError(
                f"KTH {name} split is empty: no clips of {self.context + self.horizon} frames from {note} "
                f"{sorted(persons)} under {self.folder}; run `{self.prepare_command}`"
            )
        return KTHClips(refs, self.context + self.horizon, self.config.image_size, self.config.channels)

    def checksum(self) -> str:
        """sha256 over the config and each cached video's frame digest (verified against the bytes on disk)."""
        self.build_cache()
        facts: dict[str, Any] = {"config": self.config.model_dump(), "clips": "openstl-backward-scan/v1"}
        facts["videos"] = []
        for v in self.videos():
            meta = self.cache.meta(v)
            facts["videos"].append([v.key, v.kind, None if meta is None else meta["sha256"]])
        return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        """Clip counts per split (and per action), videos found, the conventions used."""
        c = self.config
        videos = self.videos()
        info: dict[str, Any] = {
            "dataset": "kth",
            "folder": str(self.folder),
            "frame_shape": list(self.frame_shape.as_tuple()),
            "context": self.context,
            "horizon": self.horizon,
            "videos": len(videos),
            "sources": dict(Counter(v.kind for v in videos)),
            "cached": sum(self.cache.meta(v) is not None for v in videos),
            "windows": c.windows,
            "clip_rule": "backward scan from each video's end; jump L after a clip (boxing, handclapping, "
            "handwaving, walking), 3 (jogging, running)",
        }
        splits: tuple[Split, ...] = ("train", "val", "test")
        for name in splits:
            persons, note = self.persons(name)
            per_action: Counter[str] = Counter()
            for v in videos:
                if v.person in persons:
                    per_action[v.action] += len(self.clip_starts(v))
            info[name] = {
                "clips": sum(per_action.values()),
                "persons": sorted(persons),
                "persons_from": note,
                "videos": sum(v.person in persons for v in videos),
                "clips_per_action": dict(sorted(per_action.items())),
            }
        info["val_is_test"] = not c.val_persons
        segments = self._segments()
        if segments is not None:  # e.g. person13_handclapping_d3 is not listed: scanned whole
            info["videos_without_boundaries"] = [v.key for v in videos if v.key not in segments]
        return info
