"""Hostile records against every leaderboard format, through the real CLI (issue 24's
leaderboard cases and issue 22's HTML escaping): text that cannot be encoded, a small npz with a
huge member, a 20,000-character flag, local paths; and the markdown tests' hostile cells in HTML."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from test_hostile_input import EVIL_CPU, EVIL_RUN_ID, _evil_cells
from test_leaderboard import make_record, put
from vpbench.cli import main
from vpbench.records import write_record

SITE_FORMATS = (("md", True), ("html", True))  # (format, --out DIR)
FLAT_FORMATS = ("md", "csv", "latex")


def run_all_formats(recs: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """Every format through the CLI: the md site (with figures), the html site and the flat
    formats on stdout. Returns name -> all text written (pages joined)."""
    texts: dict[str, str] = {}
    for fmt in FLAT_FORMATS:
        main(["leaderboard", "--records", str(recs), "--format", fmt, "-d", "toy"])
        texts[f"stdout-{fmt}"] = capsys.readouterr().out
    for fmt, _ in SITE_FORMATS:
        site = out / f"site-{fmt}"
        main(["leaderboard", "--records", str(recs), "--format", fmt, "--out", str(site)])
        capsys.readouterr()
        pages = sorted(p for p in site.rglob("*") if p.suffix in (".md", ".html"))
        texts[f"site-{fmt}"] = "\n".join(p.read_text(encoding="utf-8") for p in pages)
    return texts


# ----------------------------------------------------------------------------- a. unencodable text


def test_an_unpaired_surrogate_in_a_run_id_or_text_is_escaped_never_fatal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recs = tmp_path / "recs"
    put(recs, make_record("good", "alpha"))
    rec = make_record("nu3_\udcff", "beta")  # what `vpbench run --out $'nu3_\xff'` records
    rec.hardware["cpu"] = "CPU \udcfe"
    rec.flags = ["odd-\udcff-flag"]
    rec.data_info["test_set"] = "generated \udcff"
    put(recs, rec)
    assert (recs / "nu3_\udcff" / "record.json").is_file()  # a folder named with the byte 0xff
    texts = run_all_formats(recs, tmp_path, capsys)
    for name, text in texts.items():
        assert "good" in text, name  # the other record is there
        if name != "stdout-csv":  # csv has no flags column: the run id is enough
            assert "nu3_\\udcff" in text.replace("\\\\", "\\") or "nu3\\_\\textbackslash{}udcff" in text, name
    html = texts["site-html"]
    assert "odd-\\udcff-flag" in html and "CPU \\udcfe" in html
    links = re.findall(r'href="(runs/nu3_-[^"]+)"', html)
    assert links and all((tmp_path / "site-html" / link).is_file() for link in links)
    md_links = re.findall(r"\]\(([^)]*nu3_[^)]*)\)", texts["site-md"])
    assert md_links and all("%FF" in link for link in md_links)  # the folder's real byte, percent-encoded


# ----------------------------------------------------------------------------- b. bounded npz reading


def _add_zero_member(npz: Path, name: str, gib: float) -> None:
    """Append a ``gib`` GiB member of zeros, streamed (never in memory): ~1 MB per GiB on disk."""
    nbytes = int(gib * 2**30)
    header = {"descr": "|u1", "fortran_order": False, "shape": (nbytes,)}
    with zipfile.ZipFile(npz, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open(f"{name}.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, header)
            chunk = bytes(16 * 2**20)
            for _ in range(nbytes // len(chunk)):
                f.write(chunk)


PEAK = textwrap.dedent(
    """
    import resource, subprocess, sys
    done = subprocess.run([sys.executable, "-m", "vpbench", *sys.argv[1:]], capture_output=True, text=True)
    sys.stderr.write(done.stderr)
    print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
    """
)


def _peak_mb(args: list[str], cwd: Path) -> tuple[int, int, str]:
    """Exit code and peak resident memory (MB) of ``vpbench ARGS`` in a fresh process."""
    done = subprocess.run([sys.executable, "-c", PEAK, *args], capture_output=True, text=True, cwd=cwd, check=True)
    code, peak = (int(v) for v in done.stdout.split())
    return code, peak, done.stderr


def test_a_huge_extra_member_of_fixed_sequences_is_never_read(tmp_path: Path) -> None:
    recs = tmp_path / "recs"
    put(recs, make_record("good", "alpha"))
    evil = put(recs, make_record("evil", "beta"))
    npz = evil / "fixed_sequences.npz"
    _add_zero_member(npz, "junk", 1.5)
    assert npz.stat().st_size < 10 * 2**20  # a small file that holds 1.5 GiB
    for fmt in ("md", "html"):
        code, peak, err = _peak_mb(["leaderboard", "--records", "recs", "--format", fmt, "--out", f"site-{fmt}"], tmp_path)
        assert code == 0, err
        assert peak < 600, f"{fmt}: peak RSS {peak} MB reading a record with a 1.5 GiB member"
    page = (tmp_path / "site-html" / "toy-A.html").read_text(encoding="utf-8")
    assert page.count('<span style="width') >= 3 * 2  # ground truth and both rows, for each of the 2 clips


def test_a_member_whose_header_promises_too_much_is_refused_before_reading(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recs = tmp_path / "recs"
    run = put(recs, make_record("good", "alpha"))
    with zipfile.ZipFile(run / "fixed_sequences.npz", "w") as z:
        with z.open("ids.npy", "w") as f:
            np.lib.format.write_array(f, np.array([0, 3]))
        with z.open("clips.npy", "w") as f:  # a header promising 40 GB, and no data
            np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (20_000, 5, 1, 1000, 400)})
    main(["leaderboard", "--records", str(recs), "--format", "html", "--out", str(tmp_path / "site")])
    page = (tmp_path / "site" / "toy-A.html").read_text(encoding="utf-8")
    assert "has a fixed_sequences.npz whose &#x27;clips&#x27; is over 64 MiB; left out" in page


# ----------------------------------------------------------------------------- c. capped text


def test_a_20000_character_flag_is_capped_with_an_ellipsis_everywhere(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recs = tmp_path / "recs"
    put(recs, make_record("good", "alpha"))
    rec = make_record("long", "beta")
    rec.flags = ["x" * 20_000]
    rec.hardware["cpu"] = "y" * 20_000
    rec.data_info["test_set"] = "generated " + "z" * 20_000
    rec.argv = ["run", "--set", "w" * 20_000]
    put(recs, rec)
    texts = run_all_formats(recs, tmp_path, capsys)
    for name, text in texts.items():
        assert "x" * 1000 not in text and "y" * 1000 not in text and "z" * 1000 not in text, name
        assert "w" * 1000 not in text, name
    assert "x" * 59 + "…" in texts["site-md"] and "x" * 59 + "…" in texts["site-html"]
    assert "y" * 100 in texts["site-md"] and "…" in texts["stdout-md"]
    picture = Image.open(tmp_path / "site-md" / "toy" / "fixed_sequences.png")
    assert picture.width < 1200  # the label column no longer grows with the flag


# ----------------------------------------------------------------------------- d. no local paths


def test_no_page_prints_a_local_absolute_path(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Paths the records carry (the pages state the leaderboard command itself as typed: here relative)."""
    monkeypatch.chdir(tmp_path)
    recs = Path("recs")
    here = str(tmp_path)
    rec = make_record("local", "alpha")
    rec.data_info = {"test": {"source": f"GENERATED from MNIST test digits ({here}/data/mnist/t10k.gz) with fixed seed 2"},
                     "test_set": "generated"}
    rec.argv = ["run", "--config", f"{here}/configs/a.yaml", "--data-root", f"{here}/data", "--out", f"{here}/runs/local"]
    run_dir = put(recs, rec)
    # write_record stores portable paths (vpbench/portable.py); a record from an older vpbench or
    # another tool may still hold local ones, and the pages must not print them either
    stored = json.loads((run_dir / "record.json").read_text())
    stored["data_info"], stored["argv"] = rec.data_info, rec.argv
    (run_dir / "record.json").write_text(json.dumps(stored))
    texts = run_all_formats(recs, Path("."), capsys)
    for name, text in texts.items():
        assert here not in text and "/tmp/" not in text, name
    assert "GENERATED from MNIST test digits (t10k.gz)" in texts["site-md"]
    assert "vpbench run --config a.yaml --data-root data --out local" in texts["site-html"]


# ----------------------------------------------------------------------------- HTML escapes what markdown escapes


def test_html_escapes_what_the_markdown_tests_escape(tmp_path: Path) -> None:
    _evil_cells(tmp_path / "recs")
    main(["leaderboard", "--records", str(tmp_path / "recs"), "--format", "html", "--out", str(tmp_path / "site")])
    pages = {p.name: p.read_text(encoding="utf-8") for p in (tmp_path / "site").rglob("*.html")}
    for name, page in pages.items():
        assert "<script>" not in page and "<img src=x" not in page and "</script> " not in page, name
        assert 'href="javascript' not in page and "\\input{" not in page or "&lt;" in page, name
        assert page.count("<script") == 1, name  # only the site's own script
    board = pages["toy-A.html"] + pages["toy-B.html"]  # the injected checksum is a test set of its own
    assert "a|b &lt;script&gt;alert(1) [x](javascript:alert(1)) =1+1" in board  # shown as text, not markup
    assert "Evil CPU | &lt;img src=x onerror=alert(1)&gt;&lt;/script&gt;" in board  # one line, inert
    rows = re.findall(r'<tr class="run" data-family="(\w+)">', board)
    assert sorted(rows) == ["alpha", "beta"]  # the pipe and the newline did not break the table
    assert "# injected heading" in board and "\n# injected heading" not in board
    run_page = next(p for n, p in pages.items() if n.startswith("a-b--script"))
    assert EVIL_RUN_ID not in run_page and json.dumps(EVIL_CPU)[1:20] not in run_page


@pytest.mark.parametrize(
    "evil",
    [{"dataset": "../../x"}, {"dataset": "/abs/x"}, {"protocol": "../../../pwned"}, {"model": "<b>m</b>"}],
)
def test_html_skips_records_with_unsafe_names_and_writes_nothing_outside(tmp_path: Path, evil: dict[str, str]) -> None:
    work = tmp_path / "w"
    put(work / "recs", make_record("good", "alpha"))
    rec = make_record("evil", "beta")
    if "dataset" in evil:
        rec.dataset.name = evil["dataset"]
    if "model" in evil:
        rec.model.name = evil["model"]
    if "protocol" in evil:
        rec.metrics = {evil["protocol"]: rec.metrics["openstl"]}
    write_record(rec, work / "recs" / "evil" / "record.json")
    main(["leaderboard", "--records", str(work / "recs"), "--format", "html", "--out", str(work / "site")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"] and sorted(p.name for p in work.iterdir()) == ["recs", "site"]
    index = (work / "site" / "index.html").read_text(encoding="utf-8")
    assert "Skipped records" in index and "is not a plain name" in index
    assert "pwned" not in " ".join(p.name for p in (work / "site").rglob("*"))


def test_html_needs_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    put(tmp_path / "recs", make_record("good", "alpha"))
    with pytest.raises(SystemExit) as exit_:
        main(["leaderboard", "--records", str(tmp_path / "recs"), "--format", "html"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "error: --format html writes a website into a folder; give --out DIR (e.g. --out site)"
    )
