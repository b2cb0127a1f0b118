"""vpbench.data.download against a local HTTP server: mirrors, resume, checksums, locks, zips."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from vpbench.data.download import Remote, fetch, safe_extract_zip
from vpbench.errors import DataError

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes
MD5 = hashlib.md5(PAYLOAD).hexdigest()
SHA = hashlib.sha256(PAYLOAD).hexdigest()
CMD = "vpbench data prepare demo --data-root X"


class _Handler(BaseHTTPRequestHandler):
    """/good: the payload, honouring Range; /broken: HTTP 500; /cut: half the bytes then hang up;
    /slow: the payload in small delayed chunks."""

    log: list[tuple[str, str | None]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        rng = self.headers.get("Range")
        type(self).log.append((self.path, rng))
        if self.path == "/broken":
            self.send_error(500)
            return
        start = int(rng.split("=")[1].split("-")[0]) if rng and self.path != "/norange" else 0
        body = PAYLOAD[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        self.end_headers()
        if self.path == "/cut":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if self.path == "/slow":
            for k in range(0, len(body), 8192):
                self.wfile.write(body[k : k + 8192])
                time.sleep(0.01)
            return
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.log = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_fetch_downloads_verifies_both_checksums_and_leaves_no_part(server: str, tmp_path: Path) -> None:
    path = fetch(Remote("f.bin", (f"{server}/good",), md5=MD5, sha256=SHA), tmp_path, prepare_command=CMD)
    assert path == tmp_path / "f.bin" and path.read_bytes() == PAYLOAD
    assert not (tmp_path / "f.bin.part").exists()


def test_failing_mirror_falls_through_to_the_next(server: str, tmp_path: Path) -> None:
    remote = Remote("f.bin", (f"{server}/broken", f"{server}/good"), md5=MD5)
    assert fetch(remote, tmp_path, prepare_command=CMD).read_bytes() == PAYLOAD
    assert [p for p, _ in _Handler.log] == ["/broken", "/good"]


def test_partial_download_resumes_with_a_range_request(server: str, tmp_path: Path) -> None:
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD[:1000])
    fetch(Remote("f.bin", (f"{server}/good",), md5=MD5), tmp_path, prepare_command=CMD)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD
    assert _Handler.log == [("/good", "bytes=1000-")]


def test_server_ignoring_range_restarts_the_file(server: str, tmp_path: Path) -> None:
    (tmp_path / "f.bin.part").write_bytes(b"x" * 1000)
    fetch(Remote("f.bin", (f"{server}/norange",), md5=MD5), tmp_path, prepare_command=CMD)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


def test_cut_connection_keeps_the_part_and_the_next_mirror_resumes_it(server: str, tmp_path: Path) -> None:
    fetch(Remote("f.bin", (f"{server}/cut", f"{server}/good"), md5=MD5), tmp_path, prepare_command=CMD)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD
    assert _Handler.log[1] == ("/good", f"bytes={len(PAYLOAD) // 2}-")


def test_bad_checksum_from_the_server_names_expected_and_actual_and_writes_nothing(server: str, tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        fetch(Remote("f.bin", (f"{server}/good",), md5="0" * 32), tmp_path, prepare_command=CMD)
    msg = str(err.value)
    assert "0" * 32 in msg and MD5 in msg and str(tmp_path / "f.bin") in msg
    assert not (tmp_path / "f.bin").exists() and not (tmp_path / "f.bin.part").exists()


def test_user_file_with_bad_checksum_is_named_and_never_deleted(server: str, tmp_path: Path) -> None:
    mine = tmp_path / "f.bin"
    mine.write_bytes(b"my own file")
    with pytest.raises(DataError) as err:
        fetch(Remote("f.bin", (f"{server}/good",), md5=MD5), tmp_path, prepare_command=CMD)
    msg = str(err.value)
    assert str(mine) in msg and MD5 in msg and hashlib.md5(b"my own file").hexdigest() in msg
    assert mine.read_bytes() == b"my own file" and _Handler.log == []


def test_offline_error_names_the_path_the_prepare_command_and_the_source(tmp_path: Path) -> None:
    url = "http://127.0.0.1:9/nothing-listens-here/f.bin"
    with pytest.raises(DataError) as err:
        fetch(Remote("f.bin", (url,), md5=MD5), tmp_path, prepare_command=CMD, timeout=2)
    msg = str(err.value)
    assert str(tmp_path / "f.bin") in msg and CMD in msg and url in msg


def _prepare(url: str, dest: str, out: mp.Queue) -> None:  # type: ignore[type-arg]
    path = fetch(Remote("f.bin", (url,), md5=MD5), Path(dest), prepare_command=CMD)
    out.put(hashlib.md5(path.read_bytes()).hexdigest())


def test_concurrent_preparers_download_once_and_all_see_the_verified_file(server: str, tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    procs = [ctx.Process(target=_prepare, args=(f"{server}/slow", str(tmp_path), out)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert sorted(out.get(timeout=5) for _ in procs) == [MD5] * 3
    assert [path for path, _ in _Handler.log] == ["/slow"]  # one download; the others waited on the lock


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_safe_extract_writes_members_inside_the_destination(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "ok.zip", {"a/person01_boxing_d1_uncomp.avi": b"avi", "b.txt": b"b"})
    out = safe_extract_zip(archive, tmp_path / "root" / "x", root=tmp_path / "root")
    assert sorted(p.name for p in out) == ["b.txt", "person01_boxing_d1_uncomp.avi"]
    assert (tmp_path / "root" / "x" / "a" / "person01_boxing_d1_uncomp.avi").read_bytes() == b"avi"


@pytest.mark.parametrize("evil", ["../escape.txt", "/abs/escape.txt", "x/../../escape.txt"])
def test_safe_extract_refuses_members_that_escape_the_data_root(tmp_path: Path, evil: str) -> None:
    archive = _zip(tmp_path / "evil.zip", {"fine.txt": b"ok", evil: b"pwned"})
    with pytest.raises(DataError, match="escape"):
        safe_extract_zip(archive, tmp_path / "root" / "x", root=tmp_path / "root")
    assert not (tmp_path / "root" / "escape.txt").exists() and not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "root" / "x" / "fine.txt").exists()  # refused before writing anything


def test_safe_extract_refuses_symlink_members(tmp_path: Path) -> None:
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(DataError, match="symbolic link"):
        safe_extract_zip(archive, tmp_path / "x")


def test_corrupt_zip_names_the_archive(tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="bad.zip"):
        safe_extract_zip(bad, tmp_path / "x")
