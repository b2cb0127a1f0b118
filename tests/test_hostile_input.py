"""Hostile and careless input, one table: every case runs the real command line in-process
and asserts its exit status, a one-line message that names the problem and the fix, no
traceback, and that no file outside the case's intended folder changed.

Add a case to ``CASES`` when a new way to hurt vpbench is found. Behaviours that are not a
single command (escaping in every output format, exact resume, stale temp files) follow
the table as their own tests.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import signal
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import TestPlugin
from test_leaderboard import make_record, put
from vpbench.cli import main
from vpbench.engine.checkpoint import FORMAT
from vpbench.engine.run import RunRequest, execute_run
from vpbench.engine.train import RunInterrupted
from vpbench.errors import CheckpointError, StorageError
from vpbench.fsutil import atomic_path, atomic_write_text
from vpbench.plugins import get_registry
from vpbench.records import write_record

TINY = [
    "dataset.train_length=64", "dataset.val_length=8", "dataset.test_length=8",
    "train.batch_size=4", "train.val_sequences=4", "eval.profile=false",
]


# ------------------------------------------------------------------------------ helpers


@dataclass
class Ctx:
    """What a case's setup gets: its work folder (the cwd), a trained run to copy, fixtures."""

    work: Path
    trained: Path
    monkeypatch: pytest.MonkeyPatch
    stack: ExitStack
    mirror: tuple[str, Path]
    shared: Path | None

    def copy_trained(self, name: str = "r") -> Path:
        import shutil

        dest = self.work / name
        shutil.copytree(self.trained, dest)
        (dest / "record.json").unlink()  # an unfinished run: --resume continues it
        return dest


class _Evil:
    """Unpickling it would create ``marker``: what a crafted checkpoint could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.marker, "w"))


def _evil_checkpoint(path: Path, marker: Path) -> None:
    torch.save({"format": FORMAT, "model": "tinyconv", "state_dict": {"w": _Evil(marker)}}, path)


def _snapshot(root: Path, skip: Path | None) -> dict[str, tuple[int, str]]:
    """Size and hash of every file under ``root`` except under ``skip``."""
    out: dict[str, tuple[int, str]] = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            if skip is not None and (p == skip or skip in p.parents):
                continue
            try:
                data = p.read_bytes()
            except OSError:
                continue
            out[str(p.relative_to(root))] = (len(data), hashlib.sha256(data).hexdigest())
    return out


def _idx_gz(images: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, images.ndim) + struct.pack(f">{images.ndim}I", *images.shape)
    return gzip.compress(header + images.tobytes())


def _kth_videos(root: Path, frames: int = 30) -> None:
    """One synthetic KTH-sized video per action (person 02, train), so prepare downloads nothing."""
    from test_data_kth import write_avi

    for action in ("boxing", "handclapping", "handwaving", "jogging", "running", "walking"):
        write_avi(root / "kth" / "avi" / f"person02_{action}_d1_uncomp.avi", frames)


def _serve_zips(ctx: Ctx, members: dict[str, dict[str, bytes]]) -> None:
    """Serve ``<action>.zip`` files from the local mirror and point KTH's download URL at it."""
    import vpbench_kth.dataset as kd

    url, folder = ctx.mirror
    for action in ("boxing", "handclapping", "handwaving", "jogging", "running", "walking"):
        with zipfile.ZipFile(folder / f"{action}.zip", "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in members.get(action, {f"person03_{action}_d1_uncomp.avi": b"x"}).items():
                zf.writestr(name, data)
    ctx.monkeypatch.setattr(kd, "ACTION_URL", url + "/{action}.zip")


# -------------------------------------------------------------------------------- setups


def resume_evil_last(ctx: Ctx) -> list[str]:
    r = ctx.copy_trained()
    _evil_checkpoint(r / "checkpoints" / "last.pt", ctx.work / "MARKER")
    return ["run", "--resume", "--out", "r", "--no-progress"]


def resume_evil_best(ctx: Ctx) -> list[str]:
    r = ctx.copy_trained()  # last.pt holds the finished training: the run goes on to load best.pt
    _evil_checkpoint(r / "checkpoints" / "best.pt", ctx.work / "MARKER")
    return ["run", "--resume", "--out", "r", "--no-progress"]


def resume_malformed_train_state(ctx: Ctx) -> list[str]:
    r = ctx.copy_trained()
    last = r / "checkpoints" / "last.pt"
    payload = torch.load(last, weights_only=True)
    payload["train_state"] = {"global_step": "many"}
    torch.save(payload, last)
    return ["run", "--resume", "--out", "r", "--no-progress"]


def config_not_utf8(ctx: Ctx) -> list[str]:
    (ctx.work / "bad.yaml").write_bytes(b"train:\n  max_steps: 3  # \xff\xfe latin-1 comment\n")
    return ["run", "-m", "copy-last", "-d", "glyphs", "--config", "bad.yaml", "--out", "r"]


def out_is_a_file(ctx: Ctx) -> list[str]:
    (ctx.work / "r").write_text("not a folder")
    return ["run", "-m", "copy-last", "-d", "glyphs", "--out", "r"]


def data_root_is_a_file(ctx: Ctx) -> list[str]:
    (ctx.work / "d").write_text("not a folder")
    return ["run", "-m", "copy-last", "-d", "glyphs", "--data-root", "d", "--out", "r"]


def seed_negative(ctx: Ctx) -> list[str]:
    return ["run", "-m", "copy-last", "-d", "glyphs", "--seed", "-1", "--out", "r"]


def seed_too_big_in_config(ctx: Ctx) -> list[str]:
    return ["run", "-m", "copy-last", "-d", "glyphs", "--set", f"seed={2**32}", "--out", "r"]


def device_meta(ctx: Ctx) -> list[str]:
    return ["run", "-m", "copy-last", "-d", "glyphs", "--device", "meta", "--out", "r"]


def compare_unknown(ctx: Ctx) -> list[str]:
    return ["run", "-m", "copy-last", "-d", "glyphs", "--compare", "nope", "--out", "r"]


def select_metric_unknown(ctx: Ctx) -> list[str]:
    sets = [a for s in [*TINY, "train.max_steps=2", "train.select_metric=nope"] for a in ("--set", s)]
    return ["run", "-m", "tinyconv", "-d", "glyphs", *sets, "--out", "r", "--no-progress"]


def second_writer(ctx: Ctx) -> list[str]:
    """Another process holds the run directory's lock (as a running `vpbench run` does)."""
    (ctx.work / "r").mkdir()
    code = (
        "import os, signal, sys; from filelock import FileLock; "
        "lock = FileLock(sys.argv[1] + '/.run.lock'); lock.acquire(); "
        "open(sys.argv[1] + '/.run.pid', 'w').write(str(os.getpid())); print('held', flush=True); signal.pause()"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(ctx.work / "r")], stdout=subprocess.PIPE, text=True)
    ctx.stack.callback(holder.wait)
    ctx.stack.callback(holder.kill)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    sets = [a for s in [*TINY, "train.max_steps=2"] for a in ("--set", s)]
    return ["run", "-m", "tinyconv", "-d", "glyphs", *sets, "--out", "r", "--no-progress"]


def unwritable_out(ctx: Ctx) -> list[str]:
    """A folder nobody may create (root included): /sys refuses new entries."""
    try:
        os.mkdir("/sys/vpbench-run")
    except OSError:
        pass
    else:
        os.rmdir("/sys/vpbench-run")
        pytest.skip("/sys accepts new folders here")
    return ["run", "-m", "copy-last", "-d", "glyphs", "--set", "dataset.test_length=8", "--out", "/sys/vpbench-run"]


def idx_zero_images(ctx: Ctx) -> list[str]:
    folder = ctx.work / "d" / "moving_mnist"
    folder.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        (folder / name).write_bytes(_idx_gz(np.zeros((0, 28, 28), np.uint8)))
    return ["run", "-m", "copy-last", "-d", "mmnist", "--set", "dataset.test_set=generated",
            "--data-root", "d", "--out", "r", "--no-progress"]


def mmnist_swapped_digits(ctx: Ctx) -> list[str]:
    if ctx.shared is None:
        pytest.skip("real MNIST not available: set VPBENCH_TEST_DATA")
    folder = ctx.work / "d" / "mnist"
    folder.mkdir(parents=True)
    (folder / "train-images-idx3-ubyte.gz").symlink_to(ctx.shared / "mnist" / "t10k-images-idx3-ubyte.gz")
    (folder / "t10k-images-idx3-ubyte.gz").symlink_to(ctx.shared / "mnist" / "train-images-idx3-ubyte.gz")
    return ["data", "prepare", "mmnist", "--data-root", "d", "--set", "test_set=generated"]


def mmnist_garbage_digits(ctx: Ctx) -> list[str]:
    folder = ctx.work / "d" / "mnist"
    folder.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        (folder / name).write_bytes(_idx_gz(np.full((3, 28, 28), 7, np.uint8)))
    return ["data", "prepare", "mmnist", "--data-root", "d", "--set", "test_set=generated"]


def kth_zip_bomb(ctx: Ctx) -> list[str]:
    import vpbench_kth.dataset as kd

    ctx.monkeypatch.setattr(kd, "MAX_ZIP_BYTES", 1 << 20, raising=False)
    _serve_zips(ctx, {"boxing": {"person03_boxing_d1_uncomp.avi": bytes(4 << 20)}})  # 4 MiB of zeros, 4 KiB zipped
    return ["data", "prepare", "kth", "--data-root", "d"]


def kth_zip_file_and_folder(ctx: Ctx) -> list[str]:
    _serve_zips(ctx, {"boxing": {"person03_boxing_d1_uncomp.avi": b"a", "person03_boxing_d1_uncomp.avi/x.avi": b"b"}})
    return ["data", "prepare", "kth", "--data-root", "d"]


def kth_download_pinned_mismatch(ctx: Ctx) -> list[str]:
    _serve_zips(ctx, {"boxing": {"person01_jogging_d1_uncomp.avi": b"not the original video"}})
    return ["data", "prepare", "kth", "--data-root", "d"]


def kth_video_changed_after_prepare(ctx: Ctx) -> list[str]:
    from test_data_kth import write_avi
    from vpbench_kth.dataset import KTH

    _kth_videos(ctx.work / "d")
    KTH(KTH.Config(), ctx.work / "d").build_cache()  # first preparation records the hashes
    write_avi(ctx.work / "d" / "kth" / "avi" / "person02_boxing_d1_uncomp.avi", 31)  # swapped behind our back
    return ["data", "prepare", "kth", "--data-root", "d"]


def kth_corrupt_cache(ctx: Ctx) -> list[str]:
    from vpbench_kth.dataset import KTH

    _kth_videos(ctx.work / "d")
    KTH(KTH.Config(), ctx.work / "d").build_cache()
    array = ctx.work / "d" / "kth" / "cache" / "person02_boxing_d1-avi.npy"
    array.write_bytes(array.read_bytes()[:1000])  # a truncated cache entry (a full disk, a crash)
    return ["data", "prepare", "kth", "--data-root", "d"]


def _no_videos(ctx: Ctx) -> None:
    """Nothing of a refused archive is left in the data root: no partial tree."""
    avi = ctx.work / "d" / "kth" / "avi"
    assert not avi.exists() or not [p for p in avi.rglob("*") if p.is_file()]


def _cache_loads(ctx: Ctx) -> None:
    array = np.load(ctx.work / "d" / "kth" / "cache" / "person02_boxing_d1-avi.npy", allow_pickle=False)
    assert array.shape == (30, 120, 160)


def _records(ctx: Ctx, **evil: Any) -> None:
    put(ctx.work / "recs", make_record("good", "alpha"))
    rec = make_record("evil", "beta")
    if "dataset" in evil:
        rec.dataset.name = evil["dataset"]
    if "protocol" in evil:
        rec.metrics = {evil["protocol"]: rec.metrics["openstl"]}
    write_record(rec, ctx.work / "recs" / "evil" / "record.json")


def record_dataset_traversal(ctx: Ctx) -> list[str]:
    _records(ctx, dataset="../../x")
    return ["leaderboard", "--records", "recs", "--out", "site", "--no-figures"]


def record_dataset_absolute(ctx: Ctx) -> list[str]:
    _records(ctx, dataset=str(ctx.work.parent / "abs"))
    return ["leaderboard", "--records", "recs", "--out", "site", "--no-figures"]


def record_protocol_traversal(ctx: Ctx) -> list[str]:
    _records(ctx, protocol="../../../pwned")
    return ["leaderboard", "--records", "recs", "--format", "csv", "--out", "site"]


def record_not_utf8(ctx: Ctx) -> list[str]:
    put(ctx.work / "recs", make_record("good", "alpha"))
    (ctx.work / "recs" / "bad").mkdir()
    (ctx.work / "recs" / "bad" / "record.json").write_bytes(b'{"schema": "vpbench.run/1", "run_id": "\xff\xfe"}')
    return ["leaderboard", "--records", "recs", "--out", "site", "--no-figures"]


def leaderboard_out_is_a_file(ctx: Ctx) -> list[str]:
    put(ctx.work / "recs", make_record("good", "alpha"))
    (ctx.work / "board").write_text("my notes")
    return ["leaderboard", "--records", "recs", "--out", "board"]


@dataclass
class Case:
    id: str
    setup: Callable[[Ctx], list[str]]
    #: regex the one stderr line must match: it names the problem and the fix
    message: str
    #: folder (relative to the work folder) the command may change; None: nothing may change
    intended: str | None = None
    code: int = 2
    check: Callable[[Ctx], None] | None = None
    needs: list[str] = field(default_factory=list)


CASES = [
    # 1. checkpoints never execute code (the marker file would be a change outside r/)
    Case("resume-evil-last.pt", resume_evil_last, r"^error: checkpoint \S*last\.pt holds objects other than tensors.*delete it", "r"),
    Case("resume-evil-best.pt", resume_evil_best, r"^error: checkpoint \S*best\.pt holds objects other than tensors.*delete it", "r"),
    Case("resume-malformed-train_state", resume_malformed_train_state,
         r"^error: checkpoint \S*last\.pt has a malformed train_state .*delete it to restart the run", "r"),
    # 4. config errors before anything is written; one writer per run directory
    Case("select-metric-unknown", select_metric_unknown, r"^error: unknown metric 'nope'; valid metrics: .*see `vpbench plugins`"),
    Case("second-writer", second_writer, r"^error: run directory \S+ is in use by another vpbench process \(PID \d+\); wait"),
    # 5. every user error is one line
    Case("config-not-utf8", config_not_utf8, r"^error: config file bad\.yaml is not UTF-8 text .*save it as UTF-8"),
    Case("out-is-a-file", out_is_a_file, r"^error: --out r is a file, not a run directory; choose another --out"),
    Case("data-root-is-a-file", data_root_is_a_file, r"^error: data root d is a file, not a folder; give a folder"),
    Case("seed-negative", seed_negative, r"^error: Invalid value for '--seed': -1 is not in the range .*; see `vpbench run --help`"),
    Case("seed-too-big-in-config", seed_too_big_in_config, r"^error: bad value for config key 'seed': .*less than or equal to 4294967295"),
    Case("device-meta", device_meta, r"^error: --device meta cannot train or evaluate a model here; use auto, cpu or cuda"),
    Case("compare-unknown", compare_unknown, r"^error: unknown --compare baseline 'nope'; valid models: .*copy-last.*--compare none"),
    Case("unwritable-out", unwritable_out, r"^error: cannot write /sys/vpbench-run: (permission denied|the file system is read-only) \(.* free\); choose a writable folder"),
    Case("idx-zero-images", idx_zero_images, r"^error: \S*train-images-idx3-ubyte\.gz holds 0 images; delete it and run `vpbench data prepare mmnist`"),
    Case("kth-corrupt-cache-rebuilt", kth_corrupt_cache, r"^kth is ready in d$", "d", code=0, check=_cache_loads),
    # 6. downloads and prepared data are verified
    Case("mmnist-swapped-digits", mmnist_swapped_digits,
         r"^error: md5 mismatch for \S*train-images-idx3-ubyte\.gz: expected f68b3c2dcbeaaa9fbdd348bbdeb94873 .*move it away"),
    Case("mmnist-garbage-digits", mmnist_garbage_digits, r"^error: md5 mismatch for \S*train-images-idx3-ubyte\.gz: .*move it away"),
    Case("kth-zip-bomb", kth_zip_bomb, r"^error: \S*boxing\.zip would extract to 4,194,304 bytes, more than the limit .*delete it", "d", check=_no_videos),
    Case("kth-zip-file-and-folder", kth_zip_file_and_folder,
         r"^error: \S*boxing\.zip: member 'person03_boxing_d1_uncomp\.avi' is both a file and a folder; .*nothing was written", "d", check=_no_videos),
    Case("kth-download-pinned-mismatch", kth_download_pinned_mismatch,
         r"^error: sha256 mismatch for \S*person01_jogging_d1_uncomp\.avi: expected 99b17e98.*discarded", "d", check=_no_videos),
    Case("kth-video-changed-after-prepare", kth_video_changed_after_prepare,
         r"^error: \S*person02_boxing_d1_uncomp\.avi changed since it was first prepared: .*restore the original file", "d"),
    # 2. the leaderboard writes only inside --out; one bad record never aborts it
    Case("record-dataset-traversal", record_dataset_traversal,
         r"^warning: skipped record \S*evil/record\.json: .*dataset name '\.\./\.\./x' is not a plain name.*fix the record", "site", code=0),
    Case("record-dataset-absolute", record_dataset_absolute, r"^warning: skipped record \S*evil/record\.json: .*dataset name '/.*is not a plain name", "site", code=0),
    Case("record-protocol-traversal", record_protocol_traversal,
         r"^warning: skipped record \S*evil/record\.json: .*protocol '\.\./\.\./\.\./pwned' is not a plain name", "site", code=0),
    Case("record-not-utf8", record_not_utf8, r"^warning: skipped record \S*bad/record\.json: .*is not readable JSON", "site", code=0),
    Case("leaderboard-out-is-a-file", leaderboard_out_is_a_file, r"^error: --out board is an existing file, not a folder; give a folder"),
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-step tinyconv run (last.pt, best.pt) that cases copy and damage."""
    base = tmp_path_factory.mktemp("trained")
    sets = [*TINY, "train.max_steps=2", "train.eval_every=1", "train.checkpoint_every=1"]
    req = RunRequest(model="tinyconv", dataset="glyphs", sets=sets, out=base / "r", device="cpu", progress=False,
                     data_root=base / "data")
    execute_run(req, get_registry([TestPlugin()]), echo=lambda s: None)
    return base / "r"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case: Case, trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       mirror: tuple[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "w"
    work.mkdir()
    monkeypatch.chdir(work)
    shared = os.environ.get("VPBENCH_TEST_DATA")
    with ExitStack() as stack:
        ctx = Ctx(work, trained, monkeypatch, stack, mirror, Path(shared) if shared and Path(shared).is_dir() else None)
        argv = case.setup(ctx)
        intended = work / case.intended if case.intended else None
        before = _snapshot(tmp_path, intended)
        capsys.readouterr()
        code = 0
        try:
            main(argv, plugins=[TestPlugin()])  # a bug (not a user error) would raise here, traceback and all
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        err = captured.err
        after = _snapshot(tmp_path, intended)
    assert not (work / "MARKER").exists(), "unpickling a checkpoint ran code"
    # progress bars (\r-separated) and the test mirror's log may precede the message
    lines = [seg.strip() for seg in re.split(r"[\r\n]+", err) if seg.strip() and "GET /" not in seg]
    assert code == case.code, err
    assert "Traceback" not in err
    if case.code:
        errors = [line for line in lines if line.startswith("error:")]
        assert len(errors) == 1 and lines[-1] == errors[0], err  # one line, and nothing after it
        message = errors[0]
    else:
        message_lines = [line for line in lines if line.startswith(("warning:", "error:"))]
        message_lines = message_lines or captured.out.splitlines()[-1:]
        assert len(message_lines) == 1, err
        message = message_lines[0]
    assert re.search(case.message, message), message
    assert after == before, f"files outside {case.intended or 'nothing'} changed: {set(after) ^ set(before) or 'contents'}"
    assert not (work / "MARKER").exists()
    if case.check is not None:
        case.check(ctx)


# -------------------------------------------------------------- not single commands


def test_evaluate_only_refuses_a_crafted_checkpoint(trained: Path, tmp_path: Path) -> None:
    """``evaluate_only`` (Ray Tune's test of a stopped trial) reads last.pt: no code runs."""
    import shutil

    run = tmp_path / "r"
    shutil.copytree(trained, run)
    (run / "record.json").unlink()
    _evil_checkpoint(run / "checkpoints" / "last.pt", tmp_path / "MARKER")
    req = RunRequest(model=None, dataset=None, out=run, resume=True, evaluate_only=True, progress=False, device="cpu")
    with pytest.raises(CheckpointError, match=r"last\.pt holds objects other than tensors") as err:
        execute_run(req, get_registry([TestPlugin()]), echo=lambda s: None)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "MARKER").exists()


EVIL_RUN_ID = "a|b <script>alert(1) [x](javascript:alert(1)) =1+1"  # a run id holds no '/'
EVIL_CPU = "Evil\nCPU | <img src=x onerror=alert(1)></script> \\input{/etc/passwd}"


def _evil_cells(root: Path) -> None:
    put(root, make_record("good", "alpha"))
    rec = make_record(EVIL_RUN_ID, "beta")
    rec.hardware["cpu"] = EVIL_CPU
    rec.data_checksum = "sha256:x`\n# injected heading"
    write_record(rec, root / "evil" / "record.json")


def test_markdown_csv_and_latex_escape_what_records_hold(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _evil_cells(tmp_path / "recs")
    main(["leaderboard", "--records", str(tmp_path / "recs"), "--out", str(tmp_path / "site"), "--no-figures"])
    md = (tmp_path / "site" / "toy.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| beta") or line.startswith("| alpha")]
    assert len(rows) == 2, md  # the newline and the pipe did not break the table
    header = next(line for line in md.splitlines() if line.startswith("| Model"))
    assert all(r.count(" | ") == header.count(" | ") for r in rows)  # no extra cells (pipes are escaped)
    assert "<script>" not in md and "<img" not in md and "](javascript:" not in md
    assert "&lt;script&gt;" in md and "\n# injected heading" not in md

    capsys.readouterr()
    main(["leaderboard", "--records", str(tmp_path / "recs"), "--format", "csv", "-d", "toy"])
    frame = pd.read_csv(StringIO(capsys.readouterr().out))
    assert len(frame) == 2 and not frame.astype(str).apply(lambda c: c.str.contains("\n")).any().any()
    assert not frame.astype(str).apply(lambda c: c.str.startswith(("=", "+", "@"))).any().any()

    main(["leaderboard", "--records", str(tmp_path / "recs"), "--format", "latex", "-d", "toy"])
    tex = capsys.readouterr().out
    body = [line for line in tex.splitlines() if "beta" in line or "alpha" in line]
    assert len(body) == 2 and all(line.rstrip().endswith("\\\\") for line in body), tex
    assert "\\input{" not in tex and "<script>" not in tex and "\\textless{}script\\textgreater{}" in tex


def test_links_to_records_in_folders_with_spaces_resolve(tmp_path: Path) -> None:
    put(tmp_path / "my records" / "run 1", make_record("r 1", "alpha"))
    main(["leaderboard", "--records", str(tmp_path / "my records"), "--out", str(tmp_path / "site"), "--no-figures"])
    md = (tmp_path / "site" / "toy.md").read_text()
    import re

    targets = re.findall(r"\]\(([^)]*record\.json)\)", md)
    assert targets and all(" " not in t for t in targets), targets
    assert all((tmp_path / "site" / unquote(t)).resolve().is_file() for t in targets)


def test_stale_temp_file_of_a_killed_writer_is_removed_by_the_next_write(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    code = (
        "import signal, sys; from pathlib import Path; from vpbench.fsutil import atomic_path\n"
        "with atomic_path(Path(sys.argv[1])) as tmp:\n"
        "    tmp.write_text('half'); print('writing', flush=True); signal.pause()\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
    stale = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(stale) == 1
    os.kill(writer.pid, signal.SIGKILL)  # no finally block runs: the temp file stays behind
    writer.wait()
    assert stale[0].exists()
    atomic_write_text(target, "whole\n")
    assert target.read_text() == "whole\n"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_a_full_disk_is_one_line_naming_the_path_and_the_free_space(tmp_path: Path) -> None:
    """The write itself fails with the real ENOSPC of /dev/full."""
    if not Path("/dev/full").exists():
        pytest.skip("/dev/full (a device that is always full) exists on Linux only")
    target = tmp_path / "checkpoints" / "last.pt"
    with pytest.raises(StorageError) as err:
        with atomic_path(target) as tmp, open("/dev/full", "w") as full:
            tmp.write_text("x")
            full.write("x" * 100_000)
            full.flush()
    msg = str(err.value)
    assert msg.startswith(f"cannot write {target}: the disk is full (") and "MiB free" in msg and "\n" not in msg
    assert not target.exists() and [p.name for p in target.parent.iterdir()] == []


# ---------------------------------------------------------------------- exact resume


def _interrupt_after_step(monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    """A real SIGINT during step ``step``'s update (from its ``after_step`` hook): it lands once
    the step has finished."""
    import dataclasses

    from conftest import TinyConv

    original = TinyConv.stages

    def stages(self):  # type: ignore[no-untyped-def]
        def after(batch, global_step):  # type: ignore[no-untyped-def]
            if global_step + 1 == step:
                signal.raise_signal(signal.SIGINT)  # delivered and handled before this returns

        return [dataclasses.replace(s, after_step=after) for s in original(self)]

    monkeypatch.setattr(TinyConv, "stages", stages)
    _python_sigint()


def _interrupt_in_validation(monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    """A real SIGINT while the validation at ``step`` runs."""
    import vpbench.engine.train as tr

    original = tr.evaluate
    calls = {"n": 0}

    def evaluate(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == step:  # validations run at steps 1, 2, ... here (eval_every=1)
            # raise(3) in this thread; Python runs the handler (KeyboardInterrupt) before
            # raise_signal returns, so no timing is involved
            signal.raise_signal(signal.SIGINT)
            raise AssertionError("the SIGINT did not interrupt the validation")
        return original(*args, **kwargs)

    monkeypatch.setattr(tr, "evaluate", evaluate)
    _python_sigint()


def _python_sigint() -> None:
    """Ctrl-C as a user's process meets it: Python's own handler, the signal not blocked.

    In a long pytest session a library used by an earlier test (Ray's in-process driver) can
    leave another handler or mask behind; seen once with two busy loops beside `make test`,
    where the SIGINT never reached Python. The module's autouse fixture gives back the
    handler that was there before the test."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@pytest.fixture(autouse=True)
def _restore_sigint() -> Iterator[None]:
    before = signal.getsignal(signal.SIGINT)
    yield
    if before is not None and signal.getsignal(signal.SIGINT) is not before:
        signal.signal(signal.SIGINT, before)


RESUME = [*TINY, "train.max_steps=7", "model.noise=0.05", "train.checkpoint_every=4"]


@pytest.mark.parametrize(
    "where, sets, step",
    [
        ("after a step, before the next", ["train.eval_every=3"], 5),
        ("during a validation at a non-checkpoint step", ["train.eval_every=1"], 3),
        ("during the final validation", ["train.eval_every=3"], 7),
    ],
)
def test_ctrl_c_anywhere_then_resume_gives_the_uninterrupted_result(
    where: str, sets: list[str], step: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = get_registry([TestPlugin()])

    def req(out: str, **kw: Any) -> RunRequest:
        return RunRequest(model="tinyconv", dataset="glyphs", sets=[*RESUME, *sets], out=tmp_path / out,
                          device="cpu", progress=False, **kw)

    straight, _ = execute_run(req("a"), registry, echo=lambda s: None)
    with monkeypatch.context() as m:
        if where == "during the final validation":
            _interrupt_in_validation(m, 3)  # validations at 3, 6 and 7 (the last step)
        elif where.startswith("during"):
            _interrupt_in_validation(m, step)
        else:
            _interrupt_after_step(m, step)
        with pytest.raises(RunInterrupted):
            execute_run(req("b"), registry, echo=lambda s: None)
    resume = RunRequest(model=None, dataset=None, out=tmp_path / "b", resume=True, device="cpu", progress=False)
    resumed, _ = execute_run(resume, registry, echo=lambda s: None)
    assert resumed.metrics == straight.metrics
    assert resumed.train.selected_step == straight.train.selected_step
    assert resumed.train.select_value == straight.train.select_value
    for name in ("last.pt", "best.pt"):
        a = torch.load(tmp_path / "a" / "checkpoints" / name, weights_only=True)["state_dict"]
        b = torch.load(tmp_path / "b" / "checkpoints" / name, weights_only=True)["state_dict"]
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_staging_folder_of_a_killed_extraction_is_removed_by_the_next_one(tmp_path: Path) -> None:
    from vpbench.data.download import safe_extract_zip

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a finished process: its pid names nobody now
    stale = tmp_path / f".boxing.extract-{gone.pid}-x1y2"
    (stale / "half").mkdir(parents=True)
    (stale / "half" / "video.avi").write_bytes(b"partial")
    archive = tmp_path / "boxing.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("person03_boxing_d1_uncomp.avi", b"video")
    assert [p.name for p in safe_extract_zip(archive, tmp_path / "boxing")] == ["person03_boxing_d1_uncomp.avi"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["boxing", "boxing.zip"]


def test_a_bug_is_not_dressed_up_as_a_user_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only user errors become one line: a bug in vpbench itself reaches the user with its traceback.

    (A plugin that crashes before training is reported by the pre-flight as a contract
    violation naming the plugin; see tests/test_preflight.py.)
    """
    import vpbench.engine.pipeline as run_module  # every scoring command writes its record there

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        return 1 / 0

    monkeypatch.setattr(run_module, "write_record", broken)
    sets = [a for s in [*TINY, "train.max_steps=0"] for a in ("--set", s)]
    with pytest.raises(ZeroDivisionError):
        main(["run", "-m", "tinyconv", "-d", "glyphs", *sets, "--out", str(tmp_path / "r"), "--no-progress"],
             plugins=[TestPlugin()])
