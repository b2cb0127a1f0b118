"""Score predictions made by any framework on a dataset's test split and write a normal record.

The predictions file is ``.npy`` (one array) or ``.npz`` (key ``predictions``, and optionally
``ids``: the test-clip index of each row), shaped ``[N, S, C, H, W]`` in the dataset's test
order, float in [0, 1] (unclipped model outputs, within [-1, 2], are scored as they are) or
uint8 in 0-255. ``N`` must be the number of test clips scored
(``eval.max_sequences`` when set). The record's model name is the user's, its package
:data:`vpbench.records.EXTERNAL`, and the leaderboard shows it like any other run.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import time
import warnings
import zipfile
import zlib
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..components import build_dataset
from ..config import apply_overrides, build_run_config, load_yaml
from ..data.root import resolve_data_root
from ..errors import ConfigError, DataError
from ..names import check_slug, shorten
from ..hardware import resolve_device
from ..interfaces import VideoDataset
from ..npyformat import NpyHeader, read_npy_header
from ..plugins import Registry
from ..records import EXTERNAL, ComponentInfo, RunRecord, TrainSummary
from .guards import check_run_id, check_test_split
from .pipeline import Subject, check_samples, choose_metrics, preflight_scoring, score_and_record
from .rng import seed_everything
from .rundir import run_lock

__all__ = ["ScoreRequest", "load_predictions", "score_predictions"]

Echo = Callable[[str], None]
#: Predictions made elsewhere may be unclipped model outputs (OpenSTL scores MSE and MAE on
#: them); values beyond this range mean another scale (0-255) and are refused.
UNCLIPPED_BOUNDS = (-1.0, 2.0)


@dataclass
class ScoreRequest:
    """What ``vpbench score`` was asked."""

    dataset: str
    predictions: Path
    name: str
    config_file: Path | None = None
    sets: Sequence[str] = ()
    out: Path | None = None
    data_root: Path | None = None
    device: str = "auto"
    compare: Sequence[str] = ("copy-last",)
    progress: bool = True
    argv: Sequence[str] = ()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


#: what reading a damaged or hostile .npy/.npz can raise (a 0-byte file: EOFError; an object array: ValueError)
_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError, UnicodeDecodeError)


def _unreadable(path: Path, exc: BaseException) -> DataError:
    why = shorten(" ".join(str(exc).split()), 160) or "no data"
    return DataError(
        f"predictions file {path} is not a readable .npy/.npz of numbers ({type(exc).__name__}: {why}); "
        f"save a float or uint8 array with numpy.save or numpy.savez"
    )


Header = NpyHeader


def _member(keys: Sequence[str], path: Path) -> str:
    if "predictions" in keys:
        return "predictions"
    others = [k for k in keys if k != "ids"]
    if len(others) != 1:
        raise DataError(f"{path} holds arrays {shorten(str(keys), 120)}; name the predictions 'predictions' (and optionally 'ids')")
    return others[0]


def load_predictions(
    path: Path, check: Callable[[str, Header], None] | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """The predictions array and the ``ids`` array when the file has one.

    Each array's header is read first and passed to ``check`` (``"predictions"`` or
    ``"ids"``, its shape and dtype), so that an array of the wrong shape or kind is refused
    before its data are read (a 150-byte file can declare 150 GiB). Nothing in the file can
    run code (no pickles); any damage is a one-line :class:`DataError` naming the file.
    """
    if not path.is_file():
        raise ConfigError(f"predictions file {path} does not exist; pass --predictions FILE.npy|FILE.npz")
    peek = check or (lambda what, header: None)
    if path.stat().st_size == 0:
        raise DataError(f"predictions file {path} is empty (0 bytes); save the array with numpy.save or numpy.savez")
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                keys = [n[: -len(".npy")] for n in zf.namelist() if n.endswith(".npy")]
                key = _member(keys, path)
                for what, name in (("predictions", key), ("ids", "ids")):
                    if name in keys:
                        with zf.open(f"{name}.npy") as fh:
                            peek(what, read_npy_header(fh))
            with np.load(path, allow_pickle=False) as npz:  # members read by name, one at a time
                preds = npz[key]
                ids = npz["ids"] if "ids" in keys else None
            return preds, ids
        with path.open("rb") as fh:
            shape, dtype = read_npy_header(fh)
            peek("predictions", (shape, dtype))
            need = fh.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if path.stat().st_size < need:
            raise EOFError(f"the file holds {path.stat().st_size} bytes, its header declares {need}")
        return np.load(path, allow_pickle=False), None
    except _READ_ERRORS as exc:
        raise _unreadable(path, exc) from None


def check_values(preds: np.ndarray, path: Path) -> int:
    """Range and finiteness over the whole array (it is in memory); the number of frames holding NaN.

    Infinite values and values beyond :data:`UNCLIPPED_BOUNDS` (another scale, e.g. 0-255 saved
    as float) are errors naming the first clip that holds them; NaN frames are counted, and
    warned about by the caller, as ``vpbench run`` does.
    """
    lo, hi = UNCLIPPED_BOUNDS
    nan_frames = 0
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN clip
        for i, clip in enumerate(preds):
            frames = clip.reshape(clip.shape[0], -1)
            nan = np.isnan(frames).any(axis=1)
            nan_frames += int(nan.sum())
            if nan.all():
                continue
            cmin, cmax = float(np.nanmin(frames)), float(np.nanmax(frames))
            if not (np.isfinite(cmin) and np.isfinite(cmax)):
                raise DataError(f"predictions in {path}: clip {i} holds infinite values; save finite values in [0, 1]")
            if cmin < lo or cmax > hi:
                raise DataError(
                    f"predictions in {path}: clip {i} has values in [{cmin:.4g}, {cmax:.4g}], outside [0, 1] (unclipped "
                    f"outputs within [{lo:g}, {hi:g}] are accepted); save every clip on the same [0, 1] scale "
                    f"(or all as uint8 0-255)"
                )
    return nan_frames


def _check_shape(shape: tuple[int, ...], dataset: VideoDataset, n: int, path: Path, name: str) -> None:
    S, (C, H, W) = dataset.horizon, dataset.frame_shape.as_tuple()
    want = f"[N, S, C, H, W] = [{n}, {S}, {C}, {H}, {W}] in {name}'s test order"
    if len(shape) != 5 or tuple(shape[1:]) != (S, C, H, W):
        raise DataError(f"predictions in {path} have shape {shorten(str(list(shape)), 120)}; expected {want}")
    if shape[0] != n:
        raise DataError(
            f"{path} holds {shape[0]} predicted clips; the test split of {name} has {n} to score "
            f"(expected {want}; eval.max_sequences scores only the first N)"
        )


def _check_dtype(dtype: np.dtype[Any], path: Path) -> None:
    if dtype != np.uint8 and not np.issubdtype(dtype, np.floating):
        raise DataError(f"predictions in {path} have dtype {dtype}; save float in [0, 1] or uint8 in 0-255")


def _check_ids(count: int, dtype: np.dtype[Any], n: int, path: Path) -> None:
    if dtype.kind not in "iuf":
        raise DataError(f"{path}: 'ids' have dtype {dtype}; save the test index of each row as integers")
    if count != n:
        raise DataError(f"{path}: 'ids' has {count} entries for {n} predicted clips; give one test index per clip")


def check_header(what: str, header: Header, dataset: VideoDataset, n: int, path: Path, name: str) -> None:
    """An array's declared shape and dtype, before its data are read (see :func:`check_predictions`)."""
    shape, dtype = header
    if what == "predictions":
        _check_shape(shape, dataset, n, path, name)
        _check_dtype(dtype, path)
    else:
        _check_ids(int(np.prod(shape, dtype=np.int64)), dtype, n, path)


def check_predictions(preds: np.ndarray, ids: np.ndarray | None, dataset: VideoDataset, n: int, path: Path, name: str) -> Tensor:
    """Count, order, shape and dtype against the test split; uint8 is scaled to [0, 1]."""
    _check_shape(tuple(preds.shape), dataset, n, path, name)
    if ids is not None:
        ids = np.asarray(ids).reshape(-1)
        _check_ids(ids.shape[0], ids.dtype, n, path)
        wrong = np.flatnonzero(ids != np.arange(n))
        if wrong.size:
            i = int(wrong[0])
            raise DataError(
                f"{path} is not in {name}'s test order: row {i} has id {ids[i]}, expected {i}; "
                f"sort the rows by id (row i must predict test clip i)"
            )
    _check_dtype(preds.dtype, path)
    if preds.dtype == np.uint8:
        return torch.from_numpy(preds.astype(np.float32) / 255.0)
    return torch.from_numpy(np.ascontiguousarray(preds, dtype=np.float32))


class _Served:
    """A predictor that returns the file's rows in test order, batch after batch."""

    def __init__(self, preds: Tensor) -> None:
        self.preds = preds
        self.offset = 0

    def __call__(self, context: Tensor, horizon: int) -> Tensor:
        b = context.shape[0]
        out = self.preds[self.offset : self.offset + b].to(context.device)
        self.offset += b
        return out


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder; choose another --out")
    if (out / "record.json").exists():
        raise ConfigError(f"{out} already holds a record; choose another --out")


def score_predictions(req: ScoreRequest, registry: Registry, echo: Echo = print) -> tuple[RunRecord, Path]:
    """Score ``req.predictions`` on ``req.dataset``'s test split; write ``<out>/record.json``.

    ``--out`` is locked against a second writer from before its first file until the record is written.
    """
    with ExitStack() as stack:
        return _score_predictions(req, registry, echo, stack)


def _score_predictions(req: ScoreRequest, registry: Registry, echo: Echo, stack: ExitStack) -> tuple[RunRecord, Path]:
    t0 = time.monotonic()
    registry.datasets.get(req.dataset)
    check_slug("--name", req.name, "give the model a plain name, e.g. --name simvp-openstl")
    data: dict[str, Any] = load_yaml(req.config_file) if req.config_file is not None else {}
    data = apply_overrides(data, req.sets)
    for section in ("model", "train"):
        if data.get(section):
            raise ConfigError(f"vpbench score trains nothing: drop the {section}.* keys (only dataset.*, eval.*, seed)")
    cfg = build_run_config(data)
    device = resolve_device(req.device)
    out = req.out or Path("runs") / f"{req.name}-{req.dataset}-scored-{_dt.datetime.now(_dt.timezone.utc):%Y%m%d-%H%M%S}"
    check_run_id(out)
    _check_out(out)

    seed_everything(cfg.seed)
    dataset = build_dataset(registry, req.dataset, cfg.dataset, resolve_data_root(req.data_root), cfg.seed)
    dataset.check()
    check_test_split(dataset)
    test = dataset.split("test")
    n_all = len(test)  # type: ignore[arg-type]
    n = min(n_all, cfg.eval.max_sequences) if cfg.eval.max_sequences is not None else n_all
    preds, ids = load_predictions(
        req.predictions, lambda what, header: check_header(what, header, dataset, n, req.predictions, req.dataset)
    )
    served = check_predictions(preds, ids, dataset, n, req.predictions, req.dataset)

    metrics = choose_metrics(registry, cfg.eval, echo)
    check_samples(cfg.eval, req.name, None)
    metrics = preflight_scoring(
        registry, dataset, req.dataset, f"predictions {req.predictions.name} ({EXTERNAL})", _Served(served), metrics,
        cfg.eval, device, echo, prediction_bounds=UNCLIPPED_BOUNDS,
    )
    if preds.dtype != np.uint8:
        check_values(preds, req.predictions)  # every clip (the pre-flight saw the first ones)
    stack.enter_context(run_lock(out))  # nothing was written before this line
    _check_out(out)  # again, now that no other process can write it

    record = score_and_record(
        registry=registry,
        dataset=dataset,
        dataset_name=req.dataset,
        subject=Subject(
            name=req.name,
            predict=_Served(served),
            info=ComponentInfo(
                name=req.name,
                package=EXTERNAL,
                config={"predictions": req.predictions.name, "predictions_sha256": _sha256(req.predictions)},
            ),
            served=served,
        ),
        metrics=metrics,
        cfg=cfg.eval,
        seed=cfg.seed,
        device=device,
        compare=req.compare,
        out=out,
        argv=req.argv,
        train=TrainSummary(config={}, steps_done=0),
        started=t0,
        progress=req.progress,
        limit=n,
    ).record
    if record.nan_frames:
        echo(f"warning: {record.nan_frames} predicted frames contain NaN; their metrics are NaN in the record")
    return record, out
