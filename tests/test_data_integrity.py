"""The test set a record names is the test set that was read, and records leak no machine.

Issue 24, "data that is not what the record says" and "records leak the machine they were
made on". Each case runs the real command line in-process and asserts the exit status, one
``error:`` line naming the file and the fix, and that nothing outside the case's own folder
was written. Real data (``VPBENCH_TEST_DATA``) where the case is about published bytes (a
pinned KTH video, the MNIST digits), small generated videos otherwise.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import os
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from conftest import TestPlugin
from test_data_kth import write_avi
from vpbench.cli import main

KTH_SETS = ["--set", "dataset.image_size=16", "--set", "eval.profile=false", "--set", "eval.metrics=[mse]"]


# ------------------------------------------------------------------------------ helpers


def _snapshot(root: Path, skip: Sequence[Path]) -> dict[str, tuple[int, str]]:
    """Size and hash of every file under ``root`` except under the folders in ``skip``."""
    out: dict[str, tuple[int, str]] = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            if any(p == s or s in p.parents for s in skip):
                continue
            data = p.read_bytes()
            out[str(p.relative_to(root))] = (len(data), hashlib.sha256(data).hexdigest())
    return out


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``vpbench ARGV`` in-process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    code = 0
    try:
        main(argv, plugins=[TestPlugin()])
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_error(code: int, err: str) -> str:
    """The single ``error:`` line of a refused command (nothing after it, no traceback)."""
    assert code == 2, err
    assert "Traceback" not in err
    lines = [seg.strip() for seg in re.split(r"[\r\n]+", err) if seg.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    return errors[0]


def _kth_videos(root: Path) -> None:
    """Train videos of every action (person 02: prepare downloads nothing) and a test video (person 17)."""
    for action in ("boxing", "handclapping", "handwaving", "jogging", "running", "walking"):
        write_avi(root / "kth" / "avi" / f"person02_{action}_d1_uncomp.avi", 30)
    write_avi(root / "kth" / "avi" / "person17_boxing_d1_uncomp.avi", 30)


def _edit_in_place_keeping_mtime(path: Path, offset: int) -> None:
    """Change one byte of ``path`` without changing its size, then set its times back."""
    st = path.stat()
    with path.open("r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


# ---------------------------------------------------------------- KTH cache edited in place


def test_a_kth_cache_edited_in_place_is_refused_by_a_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Same shape, same size, mtime set back: the run names the cache file and the fix."""
    work = tmp_path / "w"
    _kth_videos(work / "d")
    monkeypatch.chdir(work)
    code, _, err = _cli(["run", "-m", "copy-last", "-d", "kth", "--data-root", "d", *KTH_SETS, "--out", "r1", "--no-progress"], capsys)
    assert code == 0, err
    first = json.loads((work / "r1" / "record.json").read_text())["data_checksum"]
    array = work / "d" / "kth" / "cache" / "person17_boxing_d1-avi.npy"
    _edit_in_place_keeping_mtime(array, array.stat().st_size - 5000)  # a test frame's pixel
    before = _snapshot(tmp_path, [work / "r2"])
    code, _, err = _cli(["run", "-m", "copy-last", "-d", "kth", "--data-root", "d", *KTH_SETS, "--out", "r2", "--no-progress"], capsys)
    message = _one_error(code, err)
    assert re.search(
        r"^error: KTH cache file \S*person17_boxing_d1-avi\.npy was changed after it was decoded from \S*person17_boxing_d1"
        r"_uncomp\.avi: its frames hash to sha256 [0-9a-f]{64}, recorded [0-9a-f]{64}; run `vpbench data prepare kth",
        message,
    ), message
    assert _snapshot(tmp_path, [work / "r2"]) == before
    assert not (work / "r2" / "record.json").exists()
    # `data prepare` is the fix: it says what it found, decodes the video again, and the checksum is the first one
    code, out, err = _cli(["data", "prepare", "kth", "--data-root", "d"], capsys)
    assert code == 0 and "Traceback" not in err, err
    assert re.search(r"warning: KTH cache file \S*person17_boxing_d1-avi\.npy was changed after it was decoded", err), err
    assert out.strip().endswith("kth is ready in d")
    code, _, err = _cli(["run", "-m", "copy-last", "-d", "kth", "--data-root", "d", *KTH_SETS, "--out", "r3", "--no-progress"], capsys)
    assert code == 0, err
    assert json.loads((work / "r3" / "record.json").read_text())["data_checksum"] == first


def test_a_verified_kth_cache_is_not_hashed_again_until_it_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cost side: a later process only stats each array; a write (even with mtime reset) re-hashes."""
    import vpbench_kth.videos as kv
    from vpbench_kth.dataset import KTH

    _kth_videos(tmp_path / "d")
    KTH(KTH.Config(), tmp_path / "d").build_cache()  # type: ignore[call-arg]
    hashed: list[Path] = []
    real = kv.array_digest

    def counting(path: Path) -> str:
        hashed.append(path)
        return real(path)

    monkeypatch.setattr(kv, "array_digest", counting)
    monkeypatch.setattr(kv, "_hashed", {})  # a fresh process
    checksum = KTH(KTH.Config(), tmp_path / "d").checksum()  # type: ignore[call-arg]
    assert hashed == []  # decoded and hashed from memory by build_cache: stamped, not read back
    array = tmp_path / "d" / "kth" / "cache" / "person02_boxing_d1-avi.npy"
    stamped = array.stat().st_ctime_ns
    while array.stat().st_ctime_ns == stamped:  # until the (coarse) file clock has ticked
        os.utime(array, ns=(array.stat().st_atime_ns, array.stat().st_mtime_ns))  # only the ctime moves
    assert KTH(KTH.Config(), tmp_path / "d").checksum() == checksum  # type: ignore[call-arg]
    assert hashed == [array]  # hashed once, found unchanged, stamped again
    monkeypatch.setattr(kv, "_hashed", {})
    assert KTH(KTH.Config(), tmp_path / "d").checksum() == checksum  # type: ignore[call-arg]
    assert hashed == [array]


# ------------------------------------------------------------------ a pinned KTH video by hand


def test_a_pinned_kth_video_placed_by_hand_is_checked_against_its_pin(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """person01_jogging_d1 has a published sha256: a copy with one byte changed is refused when used."""
    work = tmp_path / "w"
    avi = work / "d" / "kth" / "avi"
    for action in ("boxing", "handclapping", "handwaving", "running", "walking"):  # nothing to download
        write_avi(avi / f"person02_{action}_d1_uncomp.avi", 30)
    placed = avi / "person01_jogging_d1_uncomp.avi"
    shutil.copyfile(shared_data / "kth" / "avi" / placed.name, placed)
    _edit_in_place_keeping_mtime(placed, placed.stat().st_size - 100)  # the AVI index: it still decodes
    monkeypatch.chdir(work)
    before = _snapshot(tmp_path, [work / "d"])  # prepare writes in the data root only
    code, _, err = _cli(["data", "prepare", "kth", "--data-root", "d"], capsys)
    message = _one_error(code, err)
    assert re.search(
        r"^error: sha256 mismatch for \S*person01_jogging_d1_uncomp\.avi: expected "
        r"99b17e98640c631115657778b76c96194aed0d6ed665dfc90c003ab9531f0e23, got [0-9a-f]{64}; delete it and prepare "
        r"again; or put the original KTH video there",
        message,
    ), message
    assert _snapshot(tmp_path, [work / "d"]) == before
    assert placed.is_file()  # the user's file is left in place
    assert not (work / "d" / "kth" / "cache" / "person01_jogging_d1-avi.json").exists()
    assert "person01_jogging_d1" not in (work / "d" / "manifest.json").read_text()  # a pin is never recorded over
    # the original bytes pass their pin
    shutil.copyfile(shared_data / "kth" / "avi" / placed.name, placed)
    code, out, err = _cli(["data", "prepare", "kth", "--data-root", "d"], capsys)
    assert code == 0 and out.strip().endswith("kth is ready in d"), err


# ------------------------------------------------------------------------ MNIST digits edited


def _edited_digits(source: Path, dest: Path) -> None:
    """``source`` with one pixel of the first digit changed: a valid IDX file, another md5."""
    raw = bytearray(gzip.decompress(source.read_bytes()))
    raw[16 + 14 * 28 + 14] ^= 0xFF
    dest.write_bytes(gzip.compress(bytes(raw), mtime=0))


def test_edited_mnist_digits_are_refused_at_run_time(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "w"
    mnist = work / "d" / "mnist"
    mnist.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        shutil.copyfile(shared_data / "mnist" / name, mnist / name)
    monkeypatch.chdir(work)
    sets = ["--set", "test_set=generated"]
    code, out, err = _cli(["data", "prepare", "mmnist", "--data-root", "d", *sets], capsys)
    assert code == 0 and out.strip().endswith("mmnist is ready in d"), err
    test_digits = mnist / "t10k-images-idx3-ubyte.gz"
    _edited_digits(shared_data / "mnist" / test_digits.name, test_digits)  # after prepare, behind its back
    before = _snapshot(tmp_path, [work / "r"])
    run = ["run", "-m", "copy-last", "-d", "mmnist", "--data-root", "d", "--set", "dataset.test_set=generated",
           "--set", "dataset.generated_test_length=8", "--set", "eval.profile=false", "--set", "eval.metrics=[mse]",
           "--out", "r", "--no-progress"]  # fmt: skip
    code, _, err = _cli(run, capsys)
    message = _one_error(code, err)
    assert re.search(
        r"^error: md5 mismatch for \S*t10k-images-idx3-ubyte\.gz: expected 9fb629c4189551a2d022fa330f9573f3 "
        r"\(t10k-images-idx3-ubyte\.gz\), got [0-9a-f]{32}; .*move it away and run `vpbench data prepare mmnist",
        message,
    ), message
    assert _snapshot(tmp_path, [work / "r"]) == before
    assert not (work / "r" / "record.json").exists()


# --------------------------------------------------------------------- records are portable

REPO = Path(__file__).resolve().parent.parent
COMMITTED = REPO / "leaderboards"
#: the folders a local path starts with on the machines these records come from, and Windows'
LOCAL_PREFIX = re.compile(r"(?<![\w.])(?:/work/|/home/|/tmp/|/root/|/Users/|/private/|/var/folders/|/mnt/|[A-Za-z]:\\)")
#: "--out", "--config" and the like: what follows them in an argv must not be a local path
PATH_OPTIONS = ("--out", "--config", "--data-root", "--predictions", "--checkpoint", "--run", "--records")


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [str(k), *_strings(v)]]
    return []


def _local_paths(text: str) -> list[str]:
    from vpbench.portable import ABSOLUTE_PATH

    return [m.group(0) for m in ABSOLUTE_PATH.finditer(text)] + [m.group(0) for m in LOCAL_PREFIX.finditer(text)]


def _record_leaks(path: Path) -> list[str]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return [f"{path}: {hit!r} in {s!r}" for s in _strings(data) for hit in _local_paths(s)]


def test_a_run_record_holds_no_local_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Absolute --out, --config and --data-root: the record names the run folder as '.', the rest by role."""
    work = tmp_path / "w"
    work.mkdir()
    monkeypatch.chdir(work)
    config = tmp_path / "elsewhere" / "mine.yaml"
    config.parent.mkdir()
    config.write_text("train:\n  batch_size: 4\n")
    out = work / "runs" / "x"
    argv = ["run", "-m", "copy-last", "-d", "glyphs", "--config", str(config), "--data-root", str(tmp_path / "data"),
            "--set", "dataset.test_length=8", "--set", "eval.profile=false", "--out", str(out), "--no-progress"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["vpbench", *argv])  # what the record stores as its argv
    code, _, err = _cli(argv, capsys)
    assert code == 0, err
    record = out / "record.json"
    assert _record_leaks(record) == []
    stored = json.loads(record.read_text())["argv"]
    assert stored[stored.index("--out") + 1] == "."
    assert stored[stored.index("--config") + 1] == "<local>/mine.yaml"
    assert stored[stored.index("--data-root") + 1] == "<data-root>"
    # moved to another machine (here: another folder), it is still a record the leaderboard reads
    moved = tmp_path / "other" / "glyphs" / "x"
    shutil.copytree(out, moved)
    shutil.rmtree(work / "runs")
    code, _, err = _cli(["leaderboard", "--records", str(tmp_path / "other"), "--out", str(tmp_path / "site"), "--no-figures"], capsys)
    assert code == 0 and "warning" not in err, err
    assert "copy-last" in (tmp_path / "site" / "glyphs.md").read_text()


def test_the_data_root_is_named_by_role_in_what_a_dataset_describes(tmp_path: Path) -> None:
    """data_info (the plugin's describe()) holds the data root's paths: the record names them <data-root>/..."""
    from vpbench.portable import portable_record

    data = {"argv": ["run", "--data-root", str(tmp_path / "d")], "data_info": {"folder": str(tmp_path / "d" / "kth"),
            "test": {"source": f"GENERATED from MNIST test digits ({tmp_path}/d/mnist/t10k.gz, md5 9fb6) seed 2"}}}  # fmt: skip
    out = portable_record(data, run_dir=tmp_path / "runs" / "x", data_root=tmp_path / "d")
    assert out == {"argv": ["run", "--data-root", "<data-root>"], "data_info": {"folder": "<data-root>/kth",
                   "test": {"source": "GENERATED from MNIST test digits (<data-root>/mnist/t10k.gz, md5 9fb6) seed 2"}}}  # fmt: skip
    # URLs, ratios and what is already portable are left alone
    text = "see http://www.cs.toronto.edu/~nitish/x.npy; MSE/px 1/2; <local>/a.yaml; checkpoints/best.pt"
    assert portable_record({"t": text}, run_dir=None) == {"t": text}


def test_committed_records_hold_no_local_path() -> None:
    """Every committed record (and every other file in its folder) names no local path."""
    root = COMMITTED / "records"
    records = sorted(root.rglob("record.json"))
    assert records, "leaderboards/records holds no record.json"
    leaks = [leak for path in records for leak in _record_leaks(path)]
    for path in sorted(root.rglob("*.npz")):  # arrays only: a string member could hold a path
        with np.load(path, allow_pickle=False) as npz:
            for name in npz.files:
                member = npz[name]
                if member.dtype.kind in "SU":
                    leaks += [f"{path}:{name}: {hit!r}" for s in member.ravel().tolist() for hit in _local_paths(str(s))]
    assert leaks == [], "run `python -m vpbench.portable leaderboards/records`:\n" + "\n".join(leaks)
    for path in records:  # the argv's path options hold '.', a relative path or a role, never a local path
        argv = json.loads(path.read_text())["argv"]
        for i, a in enumerate(argv[:-1]):
            if a in PATH_OPTIONS:
                assert not LOCAL_PREFIX.match(argv[i + 1]) and not argv[i + 1].startswith("/"), (path, a, argv[i + 1])


def test_pages_generated_from_the_committed_records_hold_no_local_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The pages as the lead regenerates them (the committed layout: records/ beside the pages)."""
    site = tmp_path / "site"
    shutil.copytree(COMMITTED / "records", site / "records")
    monkeypatch.chdir(site)
    code, _, err = _cli(["leaderboard", "--records", "records", "--out", ".", "--no-figures"], capsys)
    assert code == 0, err
    pages = sorted(site.glob("*.md"))
    assert pages
    leaks = [f"{p.name}: {hit!r}" for p in pages for line in p.read_text().splitlines() for hit in _local_paths(html.unescape(line))]
    assert leaks == []


def test_committed_pages_hold_no_local_path() -> None:
    """The committed pages under leaderboards/ (regenerated from the portable records at merge:
    `vpbench leaderboard --records leaderboards/records --out leaderboards`)."""
    pages = sorted(COMMITTED.glob("*.md"))
    assert pages
    leaks = [f"{p.name}: {hit!r}" for p in pages for line in p.read_text().splitlines() for hit in _local_paths(html.unescape(line))]
    assert leaks == [], "regenerate: vpbench leaderboard --records leaderboards/records --out leaderboards\n" + "\n".join(leaks)


# ------------------------------------------------- other pinned files: boundaries, test sequences


def test_an_edited_kth_sequences_file_is_checked_against_its_pin(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "w"
    _kth_videos(work / "d")
    seq = work / "d" / "kth" / "00sequences.txt"
    original = (shared_data / "kth" / "00sequences.txt").read_bytes()
    seq.write_bytes(original.replace(b"frames\t1-95", b"frames\t1-96", 1))
    assert seq.read_bytes() != original
    monkeypatch.chdir(work)
    before = _snapshot(tmp_path, [work / "d"])
    code, _, err = _cli(["data", "info", "kth", "--data-root", "d", "--set", "windows=sequences"], capsys)
    message = _one_error(code, err)
    assert re.search(
        r"^error: sha256 mismatch for \S*00sequences\.txt: expected 6331f4e4d0d820f306a46c40f82afc39f2486cc8723fe15f4742c14c"
        r"261ccba7, got [0-9a-f]{64}; delete it and prepare again; or set dataset\.windows=openstl",
        message,
    ), message
    assert _snapshot(tmp_path, [work / "d"]) == before


def test_the_standard_mnist_test_file_edited_with_its_mtime_set_back_is_refused(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its verified md5 is remembered by a stamp; resetting the mtime after an edit moves the ctime."""
    import vpbench_mmnist.dataset as mm

    work = tmp_path / "w"
    folder = work / "d" / "moving_mnist"
    folder.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        (folder / name).symlink_to(shared_data / "mnist" / name)
    test = folder / "mnist_test_seq.npy"  # a small stand-in for the 800 MB file, accepted by its md5
    np.save(test, np.random.default_rng(0).integers(0, 256, size=(20, 4, 64, 64), dtype=np.uint8))
    monkeypatch.setattr(mm, "STANDARD_TEST_MD5", hashlib.md5(test.read_bytes()).hexdigest())
    monkeypatch.chdir(work)
    code, out, err = _cli(["data", "prepare", "mmnist", "--data-root", "d"], capsys)
    assert code == 0 and out.strip().endswith("mmnist is ready in d"), err
    assert (folder / ".mnist_test_seq.npy.verified.json").is_file()  # verified once, remembered
    _edit_in_place_keeping_mtime(test, test.stat().st_size - 10)
    code, _, err = _cli(["data", "prepare", "mmnist", "--data-root", "d"], capsys)
    message = _one_error(code, err)
    assert re.search(r"^error: md5 mismatch for \S*mnist_test_seq\.npy: expected [0-9a-f]{32}, got [0-9a-f]{32}; .*move it away", message), message
