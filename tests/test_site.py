"""The leaderboard as a static website (`vpbench leaderboard --format html`): generated from the
committed records, byte-stable, relative links only, no network, rows linking their records and
commands; and metric columns presented as the metric's own registration says (an outside metric
included) in markdown, CSV, LaTeX and HTML alike."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from html.parser import HTMLParser
from io import StringIO
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pandas as pd
import pytest

import vpbench
from test_leaderboard import make_record, put
from vpbench.cli import main
from vpbench.errors import PluginError
from vpbench.leaderboard.html import reproduce_command
from vpbench.records import MetricResult, read_record

REPO = Path(__file__).resolve().parent.parent
#: the ad-hoc glyphs runs of several budgets (moved out of the track's page, issue 19): the records these tests know
RECORDS = REPO / "leaderboards" / "longer-runs" / "records"


def known_records(dest: Path) -> Path:
    """A records tree of fixed content: the longer glyphs runs and the committed Moving-MNIST records."""
    shutil.copytree(RECORDS / "glyphs", dest / "glyphs")
    shutil.copytree(REPO / "leaderboards" / "records" / "mmnist", dest / "mmnist")
    return dest


def html_site(records: Path, out: Path, plugins: tuple[object, ...] = ()) -> Path:
    main(["leaderboard", "--format", "html", "--records", str(records), "--out", str(out)], plugins=plugins)
    return out


class _Refs(HTMLParser):
    """Every href/src of a page (the SVG namespace is not a reference)."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key in ("href", "src") and value is not None:
                self.refs.append(value)


def refs_of(page: Path) -> list[str]:
    parser = _Refs()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.refs


def broken_links(site: Path) -> list[str]:
    """Links of every page that are absolute, reach the network, or point at nothing."""
    bad = []
    for page in sorted(site.rglob("*.html")):
        for ref in refs_of(page):
            if ref.startswith("data:"):
                continue  # the empty favicon: no request at all
            parts = urlsplit(ref)
            if parts.scheme or parts.netloc or ref.startswith("/"):
                bad.append(f"{page.name}: {ref} is not relative")
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            if site.resolve() not in target.parents or not target.is_file():
                bad.append(f"{page.name}: {ref} points at nothing inside the site")
    return bad


@pytest.fixture(scope="module")
def records_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return known_records(tmp_path_factory.mktemp("records") / "records")


@pytest.fixture(scope="module")
def committed_site(records_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return html_site(records_tree, tmp_path_factory.mktemp("site") / "site")


def test_site_from_the_committed_records_is_byte_identical_when_regenerated(
    committed_site: Path, records_tree: Path, tmp_path: Path
) -> None:
    again = html_site(records_tree, tmp_path / "site")  # the same --out name: the index states the command
    files = sorted(p.relative_to(committed_site) for p in committed_site.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert all((committed_site / f).read_bytes() == (again / f).read_bytes() for f in files)
    assert {"index.html", "glyphs-A.html", "mmnist-A.html", "kth-reported.html", "assets/site.js"} <= {f.as_posix() for f in files}
    size = sum((committed_site / f).stat().st_size for f in files)
    assert size < 3_000_000, f"the site is {size:,} bytes"


def test_links_are_relative_and_resolve_and_nothing_reaches_the_network(committed_site: Path) -> None:
    assert broken_links(committed_site) == []
    for path in committed_site.rglob("*"):
        if path.suffix in (".html", ".css", ".js"):
            text = path.read_text(encoding="utf-8")
            # the only URL is the SVG namespace (an identifier, never fetched)
            assert re.findall(r"https?://[^\"' ]+", text.replace('xmlns="http://www.w3.org/2000/svg"', "")) == [], path


def test_test_set_pages_state_protocol_identity_and_budget_above_the_table(committed_site: Path) -> None:
    page = (committed_site / "glyphs-A.html").read_text(encoding="utf-8")
    table = page.index('<table class="board">')
    checksum = read_record(RECORDS / "glyphs" / "demo" / "record.json").data_checksum
    for fact in ("Data checksum", checksum, "1,000 test clips", "Generated test set", "Training budgets",
                 "2,440 steps × batch 8", "Protocol <code>openstl</code>"):
        assert -1 < page.index(fact) < table, fact
    index = (committed_site / "index.html").read_text(encoding="utf-8")
    assert 'href="glyphs-A.html"' in index and 'href="mmnist-A.html"' in index and 'href="kth-reported.html"' in index
    mmnist = (committed_site / "mmnist-A.html").read_text(encoding="utf-8")
    reported = mmnist.index('<section class="reported">')
    assert mmnist.index("<section class=\"track\"") < reported and "not measured here" in mmnist[reported:]
    assert "OpenSTL" in mmnist[reported:]  # the published tables sit in their own, marked section


def test_every_row_links_its_record_page_with_the_command_stored_in_the_record(committed_site: Path) -> None:
    page = (committed_site / "glyphs-A.html").read_text(encoding="utf-8")
    runs = sorted(set(re.findall(r'href="(runs/[^"]+\.html)"', page)))
    assert len(runs) == 7  # one page per glyphs record
    demo = read_record(RECORDS / "glyphs" / "demo" / "record.json")
    command = reproduce_command(demo.argv)
    assert command.startswith("vpbench run --model shrvq --dataset glyphs") and " /" not in command  # local paths cut
    assert command in page  # in the row's Reproduce cell
    run_page = next((committed_site / r).read_text(encoding="utf-8") for r in runs if "/demo-" in r)
    assert "<h1>Run <code>demo</code></h1>" in run_page and command in run_page
    assert '"select_value": 0.2103947979863733' in run_page  # the record itself, as stored


def test_no_page_names_a_local_path(committed_site: Path) -> None:
    for path in committed_site.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        assert "/work/" not in text and "/tmp/" not in text, path  # the records hold such paths today


def test_seeds_show_mean_std_and_n_and_tables_are_plain_html(tmp_path: Path) -> None:
    for seed, psnr in ((0, 20.0), (1, 22.0), (2, 24.0)):
        put(tmp_path / "recs", make_record(f"alpha-seed-{seed}", "alpha", psnr=psnr).model_copy(update={"seed": seed}), seed=seed)
    put(tmp_path / "recs", make_record("beta-run", "beta", psnr=23.0))
    page = (html_site(tmp_path / "recs", tmp_path / "site") / "toy-A.html").read_text(encoding="utf-8")
    row = re.search(r'<tr class="run" data-family="alpha">(.*?)</tr>', page)
    assert row is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))
    assert cells[2] == "3" and cells[3] == "22.00 ± 2.00"  # n, then PSNR mean ± sample std
    assert re.search(r'data-sort="22\.0"', row.group(1))  # the script sorts on the mean
    assert "mean over the n runs ± their sample standard deviation" in page
    assert broken_links(tmp_path / "site") == []


# ----------------------------------------------------------------------------- metric presentation


class OutsideMetrics:
    """A metric plugin from another package, declaring how its column should look."""

    @vpbench.hookimpl
    def register_metrics(self, register: Callable[[vpbench.MetricSpec], None]) -> None:
        register(vpbench.MetricSpec(name="fvd-lite", target="nowhere:FVD", description="an outside metric",
                                    higher_is_better=False, display_name="FVD-lite", unit="×10³",
                                    number_format=".1f", column_order=5))
        register(vpbench.MetricSpec(name="plain", target="nowhere:Plain", description="declares nothing",
                                    higher_is_better=True))


def _outside_records(root: Path) -> None:
    for run_id, fvd, plain in (("a", 123.456, 0.123456), ("b", 98.7654, 0.5)):
        rec = make_record(run_id, f"model-{run_id}")
        rec.metrics["openstl"]["fvd-lite"] = MetricResult(mean=fvd, per_frame=[fvd] * 3, higher_is_better=False)
        rec.metrics["openstl"]["plain"] = MetricResult(mean=plain, per_frame=[plain] * 3, higher_is_better=True)
        put(root, rec)


def test_an_outside_metric_shows_with_its_declared_name_unit_format_and_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _outside_records(tmp_path / "recs")
    plugins = (OutsideMetrics(),)
    base = ["leaderboard", "--records", str(tmp_path / "recs")]
    main([*base, "--format", "md"], plugins=plugins)
    md = capsys.readouterr().out
    header = next(line for line in md.splitlines() if line.startswith("| Model"))
    names = [c.strip() for c in header.strip("|").split("|")]
    # declared order 5 puts it before PSNR (10); the undeclared one follows the first-party metrics
    assert names[2:6] == ["FVD-lite (×10³)↓", "PSNR↑", "MSE↓", "PLAIN↑"]
    row_b = next(line for line in md.splitlines() if line.startswith("| model-b"))
    assert [c.strip() for c in row_b.strip("|").split("|")][2] == "**98.8**"  # .1f as declared, best (lower)
    assert "123.5" in md and "0.1235" in md  # .1f declared; .4g by default

    main([*base, "--format", "latex"], plugins=plugins)
    tex = capsys.readouterr().out
    assert "FVD-lite ($\\times$10³)$\\downarrow$" in tex and "\\textbf{98.8}" in tex

    main([*base, "--format", "csv", "-d", "toy"], plugins=plugins)
    frame = pd.read_csv(StringIO(capsys.readouterr().out))
    metric_columns = [c for c in frame.columns if c in ("fvd-lite", "psnr", "mse", "plain")]
    assert metric_columns == ["fvd-lite", "psnr", "mse", "plain"]  # the declared order; values at full precision
    assert sorted(frame["fvd-lite"]) == [98.7654, 123.456]

    page = (html_site(tmp_path / "recs", tmp_path / "site", plugins) / "toy-A.html").read_text(encoding="utf-8")
    heads = re.findall(r'<th scope="col" class="num">([^<]*)</th>', page)
    assert heads[:4] == ["FVD-lite (×10³)↓", "PSNR↑", "MSE↓", "PLAIN↑"]
    assert '<td class="num best" data-sort="98.7654">98.8</td>' in page

    main([*base, "--format", "md"])  # without the plugin: the defaults, nothing breaks
    assert "FVD-LITE↓" in capsys.readouterr().out


def test_a_metric_spec_with_a_bad_number_format_is_refused_in_one_line() -> None:
    with pytest.raises(PluginError, match=r"number_format '%d' is not a format spec for a float.*use e\.g\. '\.4f'") as err:
        vpbench.MetricSpec(name="x", target="m:X", description="", higher_is_better=True, number_format="%d")
    assert "\n" not in str(err.value)


def test_first_party_metrics_declare_todays_presentation() -> None:
    from vpbench.plugins import get_registry

    specs = {r.spec.name: r.spec for r in get_registry().metrics}
    shown = {n: (specs[n].heading, specs[n].number_format, specs[n].column_order) for n in ("psnr", "ssim", "lpips", "mse", "mae")}
    assert shown == {"psnr": ("PSNR", ".2f", 10), "ssim": ("SSIM", ".4f", 20), "lpips": ("LPIPS", ".4f", 30),
                     "mse": ("MSE", ".2f", 40), "mae": ("MAE", ".2f", 50)}
    assert [n for n in ("lpips", "ssim") if specs[n].auto_select_rank is not None] == ["lpips", "ssim"]
    assert json.dumps(sorted(specs))  # listing specs imports nothing heavy


class NeedsWeights(vpbench.Metric):
    name = "needs-weights"
    higher_is_better = True

    def per_frame(self, pred, true):  # type: ignore[no-untyped-def]
        raise AssertionError("never scored: unavailable")

    def available(self) -> str | None:
        return "its weights are not installed"


class RankedOutside:
    @vpbench.hookimpl
    def register_metrics(self, register: Callable[[vpbench.MetricSpec], None]) -> None:
        register(vpbench.MetricSpec(name="needs-weights", target="test_site:NeedsWeights", description="unavailable here",
                                    higher_is_better=True, auto_select_rank=-1))


def test_auto_selection_follows_the_declared_ranks_and_skips_an_unusable_metric_with_a_note() -> None:
    from vpbench.engine.selection import auto_candidates, resolve_select_metric
    from vpbench.plugins import get_registry

    registry = get_registry([RankedOutside()])
    assert auto_candidates(registry) == ["needs-weights", "lpips", "ssim"]
    notes: list[str] = []
    assert resolve_select_metric(registry, "auto", notes.append) in ("lpips", "ssim")
    assert notes[0] == "note: train.select_metric=auto skips needs-weights: its weights are not installed"
