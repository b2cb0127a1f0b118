"""Leaderboards from run records: tables, test-set separation, reported rows, figures, the
committed leaderboard, corrupt records and concurrent record writes."""

from __future__ import annotations

import multiprocessing as mp
import shutil
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from vpbench.cli import AppState
from vpbench.cli.leaderboard import command
from vpbench.errors import ConfigError
from vpbench.leaderboard import Loaded, build_board, load_records, load_reported, write_site
from vpbench.leaderboard.figures import save_image
from vpbench.leaderboard.site import page_md, readme_md
from vpbench.plugins import get_plugin_manager
from vpbench.records import ComponentInfo, MetricResult, RunRecord, TrainSummary, iter_records, read_record, write_record

REPO = Path(__file__).resolve().parent.parent
COMMITTED = REPO / "leaderboards"
RUN_BYPRODUCTS = {"checkpoints", "artifacts", "strips", "per_frame.png", "run.yaml", ".run.lock", ".run.pid", "bench-state.json"}

CHECKSUM_A = "sha256:" + "a" * 64
CHECKSUM_B = "sha256:" + "b" * 64


def _metric(mean: float, higher: bool, horizon: int = 3) -> MetricResult:
    return MetricResult(mean=mean, per_frame=[mean + 0.1 * k for k in range(horizon)], higher_is_better=higher)


def _metrics(psnr: float, mse: float) -> dict[str, dict[str, MetricResult]]:
    return {"openstl": {"psnr": _metric(psnr, True), "mse": _metric(mse, False)}}


def make_record(
    run_id: str,
    model: str,
    *,
    psnr: float = 20.0,
    mse: float = 50.0,
    checksum: str = CHECKSUM_A,
    baselines: dict[str, tuple[float, float]] | None = None,
    steps: int = 100,
) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        created="2030-01-01T00:00:00+00:00",
        vpbench_version="0.0.0",
        git={"commit": None, "dirty": None},
        argv=[],
        seed=0,
        model=ComponentInfo(name=model, package="test", config={}),
        dataset=ComponentInfo(name="toy", package="test", config={}),
        data_checksum=checksum,
        data_info={"test_set": "generated with fixed seed 7"},
        frame_shape=(1, 8, 8),
        context=2,
        horizon=3,
        params_total=1_140_000,
        params_trainable=1_140_000,
        train=TrainSummary(config={"batch_size": 4}, steps_done=steps, wall_time_s=60.0),
        test_sequences=5,
        metrics=_metrics(psnr, mse),
        baselines={k: _metrics(*v) for k, v in (baselines or {}).items()},
        profile={"flops_per_sequence": 5e9, "macs_per_sequence": 2.5e9, "throughput_seq_per_s": 12.5},
        hardware={"device": "cpu", "cpu": "TestCPU", "torch_threads": 2},
        wall_time_s=90.0,
    )


def put(root: Path, rec: RunRecord, models: tuple[str, ...] = (), seed: int = 0) -> Path:
    """Write ``rec`` as ``root/<run_id>/record.json`` with a tiny fixed_sequences.npz."""
    run_dir = root / rec.run_id
    write_record(rec, run_dir / "record.json")
    rng = np.random.default_rng(seed)
    arrays = {"ids": np.array([0, 3]), "clips": np.full((2, 5, 1, 8, 8), 100, np.uint8)}
    for m in (rec.model.name, *models):
        arrays[f"pred_{m}"] = rng.integers(0, 255, (2, 3, 1, 8, 8), dtype=np.uint8)
    np.savez_compressed(run_dir / "fixed_sequences.npz", **arrays)  # type: ignore[arg-type]
    return run_dir


def board_md(root: Path) -> str:
    """The page of the test dataset ``toy``."""
    board = build_board(load_records(root), load_reported(), link_base=root, dataset="toy")
    return page_md(board.datasets[0])


def measured_part(md: str) -> str:
    return md.split("Reported (published")[0]


def table_row(md: str, label: str) -> list[str]:
    for line in md.splitlines():
        if line.startswith(f"| {label} "):
            return [c.strip() for c in line.strip("|").split("|")]
    raise AssertionError(f"no row {label!r} in\n{md}")


def test_best_value_per_column_follows_each_metrics_direction(tmp_path: Path) -> None:
    put(tmp_path, make_record("r1", "alpha", psnr=25.0, mse=40.0))
    put(tmp_path, make_record("r2", "beta", psnr=22.0, mse=30.0))
    md = board_md(tmp_path)
    assert "PSNR↑" in md and "MSE↓" in md
    alpha, beta = table_row(md, "alpha"), table_row(md, "beta")
    # columns: model, run, PSNR, MSE, ...
    assert alpha[2] == "**25.00**" and beta[2] == "22.00"
    assert beta[3] == "**30.00**" and alpha[3] == "40.00"
    assert "1.14M" in alpha and "2.50G" in alpha and "12.5 seq/s" in alpha  # #Params, MACs, throughput
    # the training's own wall time (60 s), not the run's (90 s, training and testing)
    assert "100 steps × batch 4" in alpha and "CPU: TestCPU, 2 threads" in alpha and "1.0 min" in alpha and "1.5 min" not in alpha


def test_rows_on_different_test_sets_never_share_a_table(tmp_path: Path) -> None:
    put(tmp_path, make_record("r1", "alpha", psnr=25.0))
    put(tmp_path, make_record("r2", "beta", psnr=30.0))
    put(tmp_path, make_record("r3", "gamma", psnr=99.0, checksum=CHECKSUM_B))
    board = build_board(load_records(tmp_path), [], link_base=tmp_path)
    groups = board.datasets[0].groups
    assert [sorted(e.model for e in g.entries) for g in groups] == [["alpha", "beta"], ["gamma"]]
    md = readme_md(board)
    assert "**Warning:** runs on toy were scored on 2 different test sets" in md
    assert "Test set A: data checksum `sha256:aaaaaaaaaaaa`" in md and "Test set B: data checksum `sha256:bbbbbbbbbbbb`" in md
    # gamma's 99 dB is not the best of the A table: beta keeps its bold mark
    assert table_row(md, "beta")[2] == "**30.00**"


def test_baseline_row_appears_only_without_a_record_of_that_model(tmp_path: Path) -> None:
    put(tmp_path, make_record("r1", "alpha", baselines={"copy-last": (11.0, 300.0)}), models=("copy-last",))
    md = board_md(tmp_path)
    row = table_row(md, "copy-last (baseline)")
    assert row[1] == "[in r1](r1/record.json)" and row[2] == "11.00"
    assert "none (untrained, scored inside that run)" in row
    put(tmp_path, make_record("r0", "copy-last", psnr=11.0, mse=300.0, steps=0))
    md = board_md(tmp_path)
    assert "copy-last (baseline)" not in md and table_row(md, "copy-last")[1] == "[r0](r0/record.json)"


def test_repeated_runs_of_one_model_are_labelled_by_run_and_sorted(tmp_path: Path) -> None:
    put(tmp_path, make_record("r2", "alpha", psnr=21.0))
    put(tmp_path, make_record("r1", "alpha", psnr=20.0))
    md = measured_part(board_md(tmp_path))
    assert md.index("| alpha [r1]") < md.index("| alpha [r2]")


def test_generated_test_set_is_labelled(tmp_path: Path) -> None:
    put(tmp_path, make_record("r1", "alpha"))
    assert "**Generated test set** (not a published test set): test set: generated with fixed seed 7" in board_md(tmp_path)


def test_reported_rows_stay_in_their_own_section_with_citation() -> None:
    tables = {t.id: t for t in load_reported()}
    assert set(tables) == {"shrvq-paper-table2-kth", "shrvq-paper-table2-mmnist", "openstl-kth", "openstl-mmnist"}
    kth = tables["shrvq-paper-table2-kth"]
    assert kth.rows[-1] == ["S-HR-VQVAE-joint (paper)", "28.49", "0.897", "0.093", "1.14M"]
    assert "arXiv:2307.06701" in kth.citation
    assert tables["openstl-mmnist"].rows[0][:3] == ["ConvLSTM-S", "22.10", "0.9288"]  # verbatim text, trailing zero kept
    board = build_board(Loaded(), load_reported())
    db = {d.name: d for d in board.datasets}["kth"]
    md = page_md(db)
    measured, reported = md.split("## Reported (published numbers, not measured here)")
    assert "No measured runs on kth yet." in measured and "ConvLSTM-S" not in measured
    assert "| S-HR-VQVAE-joint (paper) " in reported and "Source: M. Adiban" in reported
    assert "**" not in reported.split("|", 1)[1]  # published values are never marked best


def test_corrupt_record_is_reported_by_name_and_skipped(tmp_path: Path) -> None:
    put(tmp_path, make_record("good", "alpha"))
    bad = tmp_path / "broken" / "record.json"
    bad.parent.mkdir()
    bad.write_text('{"schema": "vpbench.run/1", "run_id": ')
    runner = CliRunner()
    result = runner.invoke(command, ["--records", str(tmp_path), "--out", str(tmp_path / "site"), "--no-figures"],
                           obj=AppState(get_plugin_manager()))
    assert result.exit_code == 0, result.output
    assert f"skipped record {bad}" in result.stderr
    readme = (tmp_path / "site" / "README.md").read_text()
    assert "`../broken/record.json`: run record ../broken/record.json is not readable JSON" in readme
    assert "| alpha " in readme


def test_cli_writes_csv_latex_and_markdown(tmp_path: Path) -> None:
    root = tmp_path / "records"
    put(root, make_record("r1", "alpha", psnr=25.0, mse=40.0))
    put(root, make_record("r2", "beta", psnr=22.0, mse=30.0))
    runner = CliRunner()
    obj = AppState(get_plugin_manager())
    csv = runner.invoke(command, ["--records", str(root), "--format", "csv", "-d", "toy"], obj=obj)
    assert csv.exit_code == 0, csv.output
    frame = pd.read_csv(StringIO(csv.stdout))
    measured = frame[frame.section == "measured"].set_index("model")
    assert measured.loc["alpha", "psnr"] == 25.0 and measured.loc["alpha", "best"] == "psnr"
    assert measured.loc["beta", "data_checksum"] == CHECKSUM_A
    tex = runner.invoke(command, ["--records", str(root), "--format", "latex", "--out", str(tmp_path / "t.tex")], obj=obj)
    assert tex.exit_code == 0, tex.output
    text = (tmp_path / "t.tex").read_text()
    assert r"\textbf{25.00}" in text and r"PSNR$\uparrow$" in text and "S-HR-VQVAE-joint" in text
    md = runner.invoke(command, ["--records", str(root), "-d", "toy"], obj=obj)
    assert "| alpha " in md.stdout and "S-HR-VQVAE" not in md.stdout  # --dataset filters reported tables too
    missing = runner.invoke(command, ["--records", str(tmp_path / "nope")], obj=obj)
    assert isinstance(missing.exception, ConfigError) and "does not exist" in str(missing.exception)
    unknown = runner.invoke(command, ["--records", str(root), "-d", "nosuch"], obj=obj)
    assert isinstance(unknown.exception, ConfigError) and "kth, mmnist, toy" in str(unknown.exception)


def test_figures_show_fixed_clips_per_model_and_are_byte_stable(tmp_path: Path) -> None:
    root = tmp_path / "records"
    put(root, make_record("r1", "alpha", baselines={"copy-last": (11.0, 300.0)}), models=("copy-last",), seed=1)
    put(root, make_record("r2", "beta"), seed=2)
    board = build_board(load_records(root), [], link_base=tmp_path)
    group = board.datasets[0].groups[0]
    assert group.image is not None and group.image_notes == []
    # 2 clips x (input, truth, alpha, beta, copy-last) rows of 8-px frames with 2-px padding + captions
    assert group.image.height == 2 * (16 + 5 * 10 + 2) + 4
    write_site(board, tmp_path / "a")
    again = build_board(load_records(root), [], link_base=tmp_path).datasets[0].groups[0].image
    assert again is not None
    save_image(tmp_path / "b.png", again)
    assert (tmp_path / "a" / "toy/fixed_sequences.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert (tmp_path / "a" / "toy/per_horizon.png").stat().st_size > 1000
    assert "![toy fixed test clips](toy/fixed_sequences.png)" in (tmp_path / "a" / "toy.md").read_text()


def test_differing_or_damaged_fixed_clips_are_left_out_not_mixed(tmp_path: Path) -> None:
    put(tmp_path, make_record("r1", "alpha"))
    other = put(tmp_path, make_record("r2", "beta"))
    with np.load(other / "fixed_sequences.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["clips"] = arrays["clips"] + 1
    np.savez_compressed(other / "fixed_sequences.npz", **arrays)  # type: ignore[arg-type]
    damaged = put(tmp_path, make_record("r3", "gamma"))
    (damaged / "fixed_sequences.npz").write_bytes(b"PK\x03\x04 truncated")
    group = build_board(load_records(tmp_path), []).datasets[0].groups[0]
    assert group.image is not None
    assert group.image_notes == [
        "beta: run r2 saved different fixed clips; left out of the picture",
        "gamma: run r3 has an unreadable fixed_sequences.npz (BadZipFile)",
    ]


def _writer(root: str, worker: int, n: int) -> None:
    for i in range(n):
        rec = make_record(f"w{worker}-{i}", f"m{worker}", psnr=float(i))
        write_record(rec, Path(root) / rec.run_id / "record.json")
        # everyone also rewrites one shared path: last writer wins, never a mix
        write_record(rec, Path(root) / "shared" / "record.json")


def test_concurrent_writers_leave_only_complete_records(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 15)) for w in range(4)]
    for p in procs:
        p.start()
    seen_bad = []
    while any(p.is_alive() for p in procs):  # read while they write: never a half-written file
        seen_bad += [path for path, rec in iter_records(tmp_path) if not isinstance(rec, RunRecord)]
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert seen_bad == []
    paths = sorted(tmp_path.rglob("record.json"))
    assert len(paths) == 4 * 15 + 1
    assert all(read_record(p).run_id for p in paths)
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "record.json"]  # no temp files left


def test_committed_records_parse_and_hold_only_small_files() -> None:
    root = COMMITTED / "records"
    if not root.is_dir():
        pytest.skip("no committed leaderboards/records yet")
    found = list(iter_records(root))
    assert found, "leaderboards/records holds no record.json"
    for path, rec in found:
        assert isinstance(rec, RunRecord), rec
        assert path.parent.parent.name == rec.dataset.name and path.parent.name == rec.run_id
        # a track's run folders (`vpbench bench --out leaderboards/records/...`) also hold the run's checkpoints,
        # strips and lock in a working tree: .gitignore keeps those out of the repository
        kept = sorted(p.name for p in path.parent.iterdir() if p.name not in RUN_BYPRODUCTS)
        assert kept in (["record.json"], ["fixed_sequences.npz", "record.json"])


def test_run_byproducts_in_committed_records_are_git_ignored() -> None:
    """What a run writes beside its record under leaderboards/ (checkpoints, strips, ...) is never committed."""
    patterns = (REPO / ".gitignore").read_text().splitlines()
    for name in sorted(RUN_BYPRODUCTS):
        suffix = "/" if name in {"checkpoints", "artifacts", "strips"} else ""
        assert f"leaderboards/**/{name}{suffix}" in patterns, name


@pytest.mark.parametrize(
    ("site", "dataset", "command"),
    [
        ("", None, "vpbench leaderboard --records leaderboards/records --out leaderboards"),
        # the ad-hoc runs of other budgets that left the track's page (issue 19)
        ("longer-runs", "glyphs",
         "vpbench leaderboard --records leaderboards/longer-runs/records --out leaderboards/longer-runs --dataset glyphs"),
    ],
)
def test_committed_markdown_regenerates_byte_for_byte(tmp_path: Path, site: str, dataset: str | None, command: str) -> None:
    committed_site = COMMITTED / site
    if not (committed_site / "README.md").is_file():
        pytest.skip(f"no committed {committed_site.relative_to(REPO)}/README.md yet")
    out = tmp_path / "site"
    out.mkdir()
    shutil.copytree(committed_site / "records", out / "records", ignore=shutil.ignore_patterns(*RUN_BYPRODUCTS))  # same layout
    board = build_board(load_records(out / "records", dataset), load_reported(dataset=dataset), link_base=out, dataset=dataset)
    written = write_site(board, out, figures=False, command=command)
    committed = sorted(p.name for p in committed_site.glob("*.md"))
    assert sorted(p.name for p in written) == committed
    for path in written:
        assert path.read_bytes() == (committed_site / path.name).read_bytes(), f"{path.name} is stale: {command}"
    for md in committed:  # every picture the pages show is committed
        for line in (committed_site / md).read_text().splitlines():
            if line.startswith("!["):
                assert (committed_site / line.split("](")[1].rstrip(")")).is_file(), line


def test_pages_state_their_command_and_datasets_without_records_get_no_page(tmp_path: Path) -> None:
    root = tmp_path / "records"
    put(root, make_record("r1", "alpha"))
    runner = CliRunner()
    result = runner.invoke(command, ["--records", str(root), "--out", str(tmp_path / "site"), "--no-figures"],
                           obj=AppState(get_plugin_manager()))
    assert result.exit_code == 0, result.output
    site = tmp_path / "site"
    stated = f"<!-- Generated by `vpbench leaderboard --records {root.as_posix()} --out {site.as_posix()} --no-figures`"
    assert (site / "README.md").read_text().startswith(stated)
    assert (site / "toy.md").read_text().startswith(stated)
    assert not (site / "kth.md").exists() and not (site / "mmnist.md").exists()  # reported tables only: no page
    readme = (site / "README.md").read_text()
    assert "| kth | 0 | 0 | 2 | — (no records yet) |" in readme
    assert "OpenSTL video benchmarks: KTH" in readme  # the reported tables still show in the README


def _standard(rec: RunRecord, dataset: str, generated: bool) -> RunRecord:
    info = {"test_set": "generated with fixed seed 7"} if generated else {"test_set": "standard"}
    return rec.model_copy(update={"dataset": ComponentInfo(name=dataset, package="test", config={}), "data_info": info})


@pytest.mark.parametrize(
    "dataset,generated,comparable",
    [("mmnist", False, True), ("mmnist", True, False), ("toy", False, False)],
    ids=["openstl-dataset-standard-test-set", "openstl-dataset-generated-test-set", "no-openstl-tables"],
)
def test_comparable_with_openstl_only_on_openstl_datasets_and_test_sets(tmp_path, dataset, generated, comparable):
    put(tmp_path, _standard(make_record("r1", "alpha"), dataset, generated))
    board = build_board(load_records(tmp_path), load_reported(), link_base=tmp_path, dataset=dataset)
    md = page_md(board.datasets[0])
    assert ("comparable with OpenSTL's published tables" in md) == comparable
    assert ("not comparable with its published tables" in md) == (not comparable)


# ----------------------------------------------------------------------------- seeds and searches


def _seeded(run_id: str, model: str, seed: int, **kw: float) -> RunRecord:
    return make_record(run_id, model, **kw).model_copy(update={"seed": seed})


def test_seeds_of_one_model_and_config_become_one_row_with_mean_std_and_n(tmp_path: Path) -> None:
    for seed, psnr, mse in ((0, 20.0, 40.0), (1, 22.0, 44.0), (2, 24.0, 48.0)):
        rec = _seeded(f"alpha-seed-{seed}", "alpha", seed, psnr=psnr, mse=mse)
        cost = {"wall_time_s": 50.0 + 10 * seed, "cpu_time_s": 100.0 + 20 * seed, "budget": {"macs": 2.0e12}}
        put(tmp_path, rec.model_copy(update={"train": rec.train.model_copy(update=cost)}), seed=seed)
    put(tmp_path, make_record("beta-run", "beta", psnr=23.0, mse=30.0))
    md = board_md(tmp_path)
    alpha, beta = table_row(md, "alpha"), table_row(md, "beta")
    # columns: model, run, n, PSNR, MSE, ...; sample std (n - 1): std(20, 22, 24) = 2
    assert alpha[1] == ", ".join(f"[alpha-seed-{s}](alpha-seed-{s}/record.json)" for s in range(3))
    assert alpha[2:5] == ["3", "22.00 ± 2.00", "44.00 ± 4.00"]
    # training time and CPU-seconds: mean ± sample std over the seeds; the budget the steps came from
    assert alpha[-2:] == ["1.0 min ± 10.0 s", "120 s ± 20 s"]
    assert "2.00T training MACs: 100 steps × batch 4" in alpha
    assert beta[1:5] == ["[beta-run](beta-run/record.json)", "1", "**23.00**", "**30.00**"]  # single runs stay as they were
    assert "| alpha [" not in md  # one row, not one per seed
    assert "mean over the n runs ± their sample standard deviation" in md
    board = build_board(load_records(tmp_path), [], link_base=tmp_path)
    entry = next(e for e in board.datasets[0].groups[0].entries if e.model == "alpha")
    assert entry.metrics["openstl"]["psnr"].per_frame == pytest.approx([22.0, 22.1, 22.2])  # curves are means too


def test_runs_that_differ_in_more_than_the_seed_keep_their_own_rows(tmp_path: Path) -> None:
    for seed in (0, 1):
        put(tmp_path, _seeded(f"small-seed-{seed}", "alpha", seed, psnr=20.0 + seed))
        big = _seeded(f"big-seed-{seed}", "alpha", seed, psnr=30.0 + seed)
        put(tmp_path, big.model_copy(update={"model": ComponentInfo(name="alpha", package="test", config={"hidden": 64})}))
    put(tmp_path, _seeded("short", "alpha", 2, steps=10))  # another budget: its own row
    md = measured_part(board_md(tmp_path))
    assert table_row(md, "alpha [big]")[2:4] == ["2", "**30.50 ± 0.71**"]
    assert table_row(md, "alpha [small]")[2:4] == ["2", "20.50 ± 0.71"]
    assert table_row(md, "alpha [short]")[2] == "1"
    without_n = measured_part(board_md(_only(tmp_path, "short")))
    assert "| n " not in without_n  # no aggregated row: the table has no n column, as before


def _only(root: Path, run_id: str) -> Path:
    dest = root.parent / f"only-{run_id}"
    shutil.copytree(root / run_id, dest / run_id)
    return dest


def _trial(root: Path, search: str, trial: str, val: float, psnr: float) -> None:
    rec = make_record(trial, "alpha", psnr=psnr).model_copy(
        update={
            "argv": ["tune", "--model", "alpha", "--trial", trial],
            "train": TrainSummary(config={"batch_size": 4, "lr": val / 1000}, steps_done=100, select_metric="mse", select_value=val),
        }
    )
    write_record(rec, root / search / "trials" / trial / "record.json")


def test_a_search_shows_its_best_trial_by_validation_never_by_test(tmp_path: Path) -> None:
    _trial(tmp_path, "tune-a", "t1", val=30.0, psnr=19.0)  # best on validation (mse: lower is better)
    _trial(tmp_path, "tune-a", "t2", val=35.0, psnr=29.0)  # best on test, worse on validation
    _trial(tmp_path, "tune-a", "t3", val=40.0, psnr=25.0)
    md = measured_part(board_md(tmp_path))
    row = table_row(md, "alpha (best of 3 trials by val_mse)")
    assert row[1] == "[t1](tune-a/trials/t1/record.json)" and row[2] == "19.00"  # linked: the record holds the hyperparameters
    assert "| alpha " not in md.replace("| alpha (best", "")  # no row per trial
    assert "its record, linked in the Run cell, holds its hyperparameters" in md
    _trial(tmp_path, "tune-b", "u1", val=20.0, psnr=18.0)  # another search of the same model: its own row
    md = measured_part(board_md(tmp_path))
    assert table_row(md, "alpha (best of 3 trials by val_mse) [t1]")[2] == "**19.00**"
    assert table_row(md, "alpha (best of 1 trial by val_mse) [u1]")[2] == "18.00"


def test_group_names_drop_the_seed_part() -> None:
    from vpbench.leaderboard.aggregate import group_name

    assert group_name(["convlstm-tiny-seed-0", "convlstm-tiny-seed-1"]) == "convlstm-tiny"
    assert group_name(["run7", "run8"]) == "run"
    assert group_name(["a", "b"]) == "a"
