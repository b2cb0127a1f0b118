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
import json
import os
import re
import shutil
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
