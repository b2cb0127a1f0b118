"""Leaderboard rows that say what they are (issue 19): re-scores, early stops, joint rows whose
checkpoint predates the joint stage, training time and CPU-seconds of seeds, per-pixel values
with enough digits, empty rows dropped, the budget stated first; and the pictures: quality
against training compute with the seeds shaded, SSIM and LPIPS per frame, strips of one seed.
Also the track suites (configs/suites/track-*.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from test_leaderboard import board_md, make_record, measured_part, put, table_row
from vpbench.bench import expand_suite, load_suite
from vpbench.config import TrainConfig
from vpbench.leaderboard import build_board, load_records, write_html_site, write_site
from vpbench.leaderboard.figures import compute_curves
from vpbench.plugins import get_registry
from vpbench.records import MetricResult, RunRecord

REPO = Path(__file__).resolve().parent.parent
SUITES = REPO / "configs" / "suites"


def _train(rec: RunRecord, **update: Any) -> RunRecord:
    return rec.model_copy(update={"train": rec.train.model_copy(update=update)})


def _seeded(run_id: str, model: str, seed: int, **kw: Any) -> RunRecord:
    return make_record(run_id, model, **kw).model_copy(update={"seed": seed})


def _board(root: Path) -> Any:
    return build_board(load_records(root), [], link_base=root, styles={})


# ----------------------------------------------------------------------------- what a row is


def test_a_rescore_is_labelled_never_joins_the_training_seeds_and_shows_training_time_not_its_own(tmp_path: Path) -> None:
    put(tmp_path, _train(make_record("alpha-seed-0", "alpha", psnr=20.0), wall_time_s=600.0))
    put(tmp_path, _train(_seeded("alpha-seed-1", "alpha", 1, psnr=22.0), wall_time_s=600.0), seed=1)
    rescore = make_record("alpha-seed-0-eval", "alpha", psnr=21.0).model_copy(
        update={"wall_time_s": 30.0, "artifacts": {"rescored_from": {"run": "/somewhere/runs/alpha-seed-0", "checkpoint": "x.pt",
                                                                     "checkpoint_kind": "best", "step": 80}}}
    )
    put(tmp_path, _train(rescore, wall_time_s=600.0))
    md = measured_part(board_md(tmp_path))
    seeds = table_row(md, "alpha [alpha]")
    assert seeds[2] == "2"  # the two training seeds, without the re-score
    row = table_row(md, "alpha (re-score of alpha-seed-0 at step 80)")
    assert row[2] == "1" and "re-score, no training of its own" in row[-3]
    assert row[-1] == "10.0 min" and "30.0 s" not in row  # the checkpoint's training, never the 30 s of testing


def test_an_early_stop_and_a_joint_checkpoint_before_its_joint_stage_say_so_in_the_row(tmp_path: Path) -> None:
    stages = [{"name": "autoencoder", "steps": 40, "selects": False}, {"name": "prior", "steps": 40, "selects": True},
              {"name": "joint", "steps": 20, "selects": True}]
    put(tmp_path, _train(make_record("stopper", "alpha"), steps_done=60, stopped_early="early-stopped"))
    put(tmp_path, _train(make_record("early-joint", "beta"), stages=stages, selected_step=70))
    put(tmp_path, _train(make_record("late-joint", "gamma"), stages=stages, selected_step=90))
    md = measured_part(board_md(tmp_path))
    stopper = table_row(md, "alpha (stopped early: early-stopped)")
    assert "60 steps × batch 4, stopped early at step 60 (early-stopped)" in stopper
    early = table_row(md, "beta (checkpoint predates its joint stage)")
    assert "100 steps × batch 4, best on validation at step 70, before its joint stage (from step 80)" in early
    late = table_row(md, "gamma")
    assert late[-3] == "100 steps × batch 4, best on validation at step 90"


def test_a_row_of_seeds_names_each_seeds_selected_step_not_only_its_first_seeds(tmp_path: Path) -> None:
    """The CPU-track smoke: seed 1 of shrvq-joint selected a step before its joint stage, seed 0 its
    last step, and the budget cell showed seed 0's alone (no early selection at all)."""
    stages = [{"name": "autoencoder", "steps": 15, "selects": False}, {"name": "prior", "steps": 10, "selects": True},
              {"name": "joint", "steps": 11, "selects": True}]
    put(tmp_path, _train(_seeded("joint-seed-0", "shrvq", 0), stages=stages, steps_done=36, selected_step=36), seed=0)
    put(tmp_path, _train(_seeded("joint-seed-1", "shrvq", 1), stages=stages, steps_done=36, selected_step=19), seed=1)
    md = measured_part(board_md(tmp_path))
    row = table_row(md, "shrvq (1 of 2 runs: checkpoint predates its joint stage)")
    assert "36 steps × batch 4, best on validation at step 19 (seed 1, before its joint stage from step 25), seed 0 at the last step" in row


def test_a_flag_on_some_seeds_of_a_row_says_on_how_many(tmp_path: Path) -> None:
    """The CPU track: one of PredRNN's three seeds did not beat blank on LPIPS, and the row read
    "predrnn (not-better-than-blank)" although its mean did."""
    flagged = ["not-better-than-blank"]
    put(tmp_path, _seeded("p-seed-0", "predrnn", 0).model_copy(update={"flags": flagged}), seed=0)
    put(tmp_path, _seeded("p-seed-1", "predrnn", 1), seed=1)
    put(tmp_path, _seeded("p-seed-2", "predrnn", 2), seed=2)
    put(tmp_path, _seeded("q-seed-0", "mau", 0).model_copy(update={"flags": flagged}), seed=0)
    put(tmp_path, _seeded("q-seed-1", "mau", 1).model_copy(update={"flags": flagged}), seed=1)
    md = measured_part(board_md(tmp_path))
    assert table_row(md, "predrnn (1 of 3 runs: not-better-than-blank)")[2] == "3"
    assert table_row(md, "mau (not-better-than-blank)")[2] == "2"


def test_per_pixel_values_keep_enough_digits_to_differ_and_the_best_follows_them(tmp_path: Path) -> None:
    def standard(run_id: str, model: str, mse: float) -> RunRecord:
        res = MetricResult(mean=mse, per_frame=[mse] * 3, higher_is_better=False)
        rec = make_record(run_id, model)
        return rec.model_copy(update={"metrics": {**rec.metrics, "standard": {"mse": res}}})

    put(tmp_path, standard("a", "alpha", 0.0268))
    put(tmp_path, standard("b", "beta", 0.0271))
    put(tmp_path, standard("c", "gamma", 0.1354))
    md = board_md(tmp_path)
    part = md[md.index("Protocol `standard`"):]
    assert table_row(part, "alpha")[2] == "**0.0268**"
    assert table_row(part, "beta")[2] == "0.0271" and table_row(part, "gamma")[2] == "0.1354"
    openstl = md[md.index("Protocol `openstl`"):md.index("Protocol `standard`")]
    assert table_row(openstl, "alpha")[3] == "**50.00**"  # a column of large values keeps its declared format (all tie)


def test_rows_without_a_value_under_a_protocol_are_dropped_from_its_table(tmp_path: Path) -> None:
    rec = make_record("r1", "alpha", baselines={"blank": (10.0, 90.0)})
    res = MetricResult(mean=0.03, per_frame=[0.03] * 3, higher_is_better=False)
    put(tmp_path, rec.model_copy(update={"metrics": {**rec.metrics, "standard": {"mse": res}}}))
    md = board_md(tmp_path)
    openstl, standard = md[md.index("Protocol `openstl`"):md.index("Protocol `standard`")], md[md.index("Protocol `standard`"):]
    assert "| blank (baseline)" in openstl
    assert "| blank (baseline)" not in standard and "| alpha" in standard  # scored only under openstl: no row of "—"


def test_a_track_page_states_its_one_budget_before_the_table_and_a_mixed_page_says_it_has_none(tmp_path: Path) -> None:
    track, mixed = tmp_path / "track", tmp_path / "mixed"
    for seed in range(3):
        for model in ("alpha", "beta"):
            rec = _train(_seeded(f"{model}-seed-{seed}", model, seed), budget={"macs": 2.0e12}, cpu_time_s=100.0 + seed)
            put(track, rec, seed=seed)
    put(mixed, make_record("r1", "alpha", steps=100))
    put(mixed, make_record("r2", "beta", steps=300))
    md = board_md(track)
    statement = "**Training budget: 2.00T training MACs for every trained model (n = 3 seeds per row);"
    assert -1 < md.index(statement) < md.index("Protocol `openstl`") < md.index("| alpha")
    assert table_row(md, "alpha")[-1] == "101 s ± 1 s"  # CPU-seconds, mean ± std over the seeds
    other = board_md(mixed)
    assert -1 < other.index("**Training budget: not one budget") < other.index("| alpha")


def test_the_html_page_of_a_track_does_not_warn_that_its_budgets_differ_but_a_mixed_page_does(tmp_path: Path) -> None:
    track, mixed = tmp_path / "track", tmp_path / "mixed"
    for seed in range(2):  # one MAC budget, different steps per model (what a track is)
        put(track, _train(_seeded(f"alpha-seed-{seed}", "alpha", seed), budget={"macs": 3e11}, steps_done=9), seed=seed)
        put(track, _train(_seeded(f"beta-seed-{seed}", "beta", seed), budget={"macs": 3e11}, steps_done=43), seed=seed)
    put(mixed, make_record("r1", "alpha", steps=100))
    put(mixed, make_record("r2", "beta", steps=300))
    warning = "The trained rows differ in training budget"
    pages = {}
    for name, root in (("track", track), ("mixed", mixed)):
        write_html_site(_board(root), tmp_path / f"html-{name}", root, {}, command="test")
        pages[name] = (tmp_path / f"html-{name}" / "toy-A.html").read_text(encoding="utf-8")
    assert "300.00G training MACs for every trained model" in pages["track"] and warning not in pages["track"]
    assert warning in pages["mixed"]


def test_a_track_page_names_the_bench_command_its_runs_came_from_and_a_mixed_page_names_none(tmp_path: Path) -> None:
    track, mixed = tmp_path / "track", tmp_path / "mixed"
    argv = ["bench", "configs/suites/track-glyphs-cpu.yaml"]
    for seed in range(2):
        for model in ("alpha", "beta"):
            rec = _train(_seeded(f"{model}-seed-{seed}", model, seed), budget={"macs": 2.5e12})
            put(track, rec.model_copy(update={"argv": argv}), seed=seed)
    put(mixed, _train(make_record("r1", "alpha"), budget={"macs": 2.5e12}).model_copy(update={"argv": argv}))
    put(mixed, _train(make_record("r2", "beta"), budget={"macs": 2.5e12}).model_copy(update={"argv": ["run", "--model", "beta"]}))
    md = board_md(track)
    line = "Every trained run of this page came from `vpbench bench configs/suites/track-glyphs-cpu.yaml`"
    assert md.index("**Training budget: 2.50T") < md.index(line) < md.index("| alpha")
    assert "Every trained run" not in board_md(mixed)


# ----------------------------------------------------------------------------- pictures


def _history(seed: int, scale: float) -> list[dict[str, Any]]:
    return [{"step": s, "sequences": 4 * s, "macs": int(1e9 * s), "stage": "train", "lpips": scale / s + 0.01 * seed,
             "mse": 100 * scale / s + seed} for s in (10, 20, 40)]


def test_quality_against_training_compute_draws_a_line_per_row_and_shades_its_seeds(tmp_path: Path) -> None:
    for seed in range(3):
        put(tmp_path, _train(_seeded(f"alpha-seed-{seed}", "alpha", seed), history=_history(seed, 1.0)), seed=seed)
    put(tmp_path, _train(make_record("beta-run", "beta"), history=_history(0, 2.0)))
    board = _board(tmp_path)
    group = board.datasets[0].groups[0]
    curves = compute_curves(group.entries, {})
    assert curves is not None and curves.axis == "macs"
    assert [name for name, _, _ in curves.panels] == ["lpips", "mse"]
    alpha = next(s for s in curves.panels[0][2] if s.label == "alpha")
    assert alpha.seeds == 3 and alpha.x == [1e10, 2e10, 4e10]
    assert alpha.low[0] == pytest.approx(0.1) and alpha.high[0] == pytest.approx(0.12) and alpha.mean[0] == pytest.approx(0.11)
    beta = next(s for s in curves.panels[0][2] if s.label == "beta")
    assert beta.low == beta.high == beta.mean  # one seed: no band

    out = tmp_path / "site"
    written = write_site(board, out, figures=True, command="test")
    png = out / "toy" / "train_compute.png"
    assert png in written and Image.open(png).size[0] > 300
    assert "![toy validation quality against training compute](toy/train_compute.png)" in (out / "toy.md").read_text(encoding="utf-8")
    html = tmp_path / "html"
    write_html_site(board, html, tmp_path, {}, command="test")
    page = (html / "toy-A.html").read_text(encoding="utf-8")
    assert "Quality against training compute" in page and page.count('fill-opacity="0.18"') == 2  # alpha's band, in 2 panels


def test_no_history_means_no_compute_picture(tmp_path: Path) -> None:
    put(tmp_path, make_record("r1", "alpha"))
    board = _board(tmp_path)
    assert board.datasets[0].groups[0].compute is None
    assert "train_compute" not in board_md(tmp_path)


def test_per_frame_picture_shows_ssim_and_lpips_and_strips_name_their_seed(tmp_path: Path) -> None:
    def metrics(v: float) -> dict[str, dict[str, MetricResult]]:
        return {"openstl": {n: MetricResult(mean=v, per_frame=[v] * 3, higher_is_better=n in ("psnr", "ssim"))
                            for n in ("psnr", "ssim", "lpips", "mse")}}

    for seed in range(2):
        put(tmp_path, _seeded(f"alpha-seed-{seed}", "alpha", seed).model_copy(update={"metrics": metrics(0.5)}),
            models=("alpha",), seed=seed)
    board = build_board(load_records(tmp_path), [], link_base=tmp_path)  # first-party styles: SSIM before LPIPS
    group = board.datasets[0].groups[0]
    assert [p.split("↑")[0].split("↓")[0] for p in group.curves] == ["SSIM", "LPIPS"]
    assert "![toy SSIM and LPIPS per predicted frame]" in board_md(tmp_path)
    html = tmp_path / "html"
    write_html_site(board, html, tmp_path, {}, command="test")
    assert 'title="alpha (seed 0)"' in (html / "toy-A.html").read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- track suites


TRACKS = ("track-glyphs-cpu", "track-mmnist-gpu", "track-kth-gpu")


@pytest.mark.parametrize("name", TRACKS)
def test_a_track_runs_every_trained_model_with_three_seeds_at_one_budget_beside_the_baselines(name: str) -> None:
    suite = load_suite(SUITES / f"{name}.yaml")
    registry = get_registry()
    trained = {r.spec.name for r in registry.models if r.spec.trainable}
    assert {e.model for e in suite.entries} == trained
    assert {e.set.get("model.training") for e in suite.entries if e.model == "shrvq"} == {"disjoint", "joint"}
    assert suite.seeds == [0, 1, 2] and all(e.seeds is None and "train.budget" not in e.set for e in suite.entries)
    assert set(suite.compare or []) == {"blank", "copy-last", "mean-context"}
    assert set(suite.set["train.budget"]) <= {"macs", "sequences"}  # one budget, in the suite's shared overrides


@pytest.mark.skipif("budget" not in TrainConfig.model_fields, reason="train.budget is not a training setting in this checkout")
@pytest.mark.parametrize("name", TRACKS)
def test_a_track_expands_to_valid_runs_as_its_dry_run_does(name: str) -> None:
    suite = load_suite(SUITES / f"{name}.yaml")
    runs = expand_suite(suite, get_registry(), name, suite_dir=SUITES)
    assert len(runs) == 3 * len(suite.entries)


@pytest.mark.parametrize("name", TRACKS)
def test_a_track_validates_over_each_budget_and_ends_scheduled_sampling_where_the_configs_do(name: str) -> None:
    """A budget of any length gets a quality-vs-compute history, and the recurrent models'
    scheduled sampling ends at the fraction of the run their configs end it at."""
    import yaml

    suite = load_suite(SUITES / f"{name}.yaml")
    assert suite.set["train.validations"] >= 5 and "train.eval_every" not in suite.set
    registry = get_registry()
    (dataset,) = suite.datasets
    relative = {e.model for e in suite.entries if "sampling_span" in registry.models.get(e.model).load().Config.model_fields}
    assert relative == {"convlstm", "predrnn", "predrnn-v2", "mau"}
    for e in suite.entries:
        if e.model in relative:
            cfg = yaml.safe_load((REPO / "configs" / f"{e.model}-{dataset}.yaml").read_text(encoding="utf-8"))
            end = cfg["model"]["reverse_step2"] if cfg["model"]["sampling"] == "reverse" else cfg["model"]["sampling_stop"]
            assert e.set["model.sampling_span"] == pytest.approx(end / cfg["train"]["max_steps"])


def test_what_a_record_says_about_itself_is_escaped_like_any_other_text(tmp_path: Path) -> None:
    evil = "x|y\n<script>alert(1)</script>"
    rec = _train(make_record("evil", "alpha"), stopped_early=evil, budget={evil: 3, "macs": "lots"},
                 history=[{"step": 1, "macs": float("nan"), "lpips": "bad"}, {"step": 2, "macs": -5, "lpips": 0.5}])
    rec = rec.model_copy(update={"artifacts": {"rescored_from": {"run": f"/a/{evil}", "step": "soon"}}})
    put(tmp_path, rec)
    put(tmp_path, make_record("good", "beta"))
    md = board_md(tmp_path)
    rows = [line for line in md.splitlines() if line.startswith(("| alpha", "| beta"))]
    header = next(line for line in md.splitlines() if line.startswith("| Model"))
    assert len(rows) == 2 and all(r.count(" | ") == header.count(" | ") for r in rows)
    assert "<script>" not in md and "re-score of" in md and "stopped early" in md
    board = _board(tmp_path)
    assert board.datasets[0].groups[0].compute is None  # no usable point in the history
    write_html_site(board, tmp_path / "html", tmp_path, {}, command="test")
    for page in (tmp_path / "html").rglob("*.html"):
        assert "<script>alert" not in page.read_text(encoding="utf-8")


def test_a_budget_in_sequences_only_and_a_history_without_macs_use_sequences(tmp_path: Path) -> None:
    history = [{"step": s, "sequences": 8 * s, "macs": 0, "stage": "train", "mse": 100.0 / s} for s in (5, 10)]
    put(tmp_path, _train(make_record("r1", "alpha"), budget={"sequences": 800, "macs": None}, history=history))
    md = board_md(tmp_path)
    assert "**Training budget: 800 training sequences for every trained model" in md
    assert "800 training sequences: 100 steps × batch 4" in table_row(md, "alpha")
    curves = compute_curves(_board(tmp_path).datasets[0].groups[0].entries, {})
    assert curves is not None and curves.axis == "sequences" and curves.panels[0][2][0].x == [40.0, 80.0]


def test_figure_legends_sit_below_the_panels_and_log_axis_labels_do_not_collide() -> None:
    """The smoke of the CPU track: a joint row's long label put the legend over the curves and off
    the figure's left edge, and a compute axis under one decade labelled every minor tick."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vpbench.visualize import _log_axis, layout_figure

    long = "shrvq (1 of 2 runs: checkpoint predates its joint stage) (not-better-than-blank) [shrvq-joint]"
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.4), squeeze=False)
    for ax in axes[0]:
        for label in ("predrnn", long, "simvp"):
            ax.plot([3e10 * i for i in range(1, 11)], [0.5 + 0.01 * i for i in range(10)], label=label)
        _log_axis(ax)
    legend = layout_figure(fig, axes, "title")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = legend.get_window_extent(renderer)
    assert all(not box.overlaps(ax.get_window_extent(renderer)) for ax in axes[0])
    assert fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans).contains(box.x0 + 1, box.y0 + 1)
    lo, hi = axes[0][0].get_xlim()
    labels = [t for t in axes[0][0].get_xticklabels(which="both") if t.get_text() and lo <= t.get_position()[0] <= hi]
    assert len(labels) >= 2
    extents = sorted((t.get_window_extent(renderer) for t in labels), key=lambda b: b.x0)
    assert all(a.x1 <= b.x0 for a, b in zip(extents, extents[1:]))  # no two labels overlap
    assert [t.get_text() for t in sorted(labels, key=lambda t: t.get_window_extent(renderer).x0)] == ["50G", "100G", "200G"]
    plt.close(fig)
