"""Hostile input, second battery (issue 24): the command line, scores and configs.

Every case runs the real command line in-process (``vpbench.cli.main``) and asserts its exit
status, exactly one ``error:`` line (last, naming the problem and the fix), no traceback,
and that nothing under the test's folder changed outside the case's intended folder (no
half-made run folder, nothing written above the working directory). The helpers and the
trained run are those of tests/test_hostile_input.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import click
import numpy as np
import pytest
import torch
from torch import nn

import vpbench
from conftest import TestPlugin
from test_hostile_input import TINY, Case, Ctx, _snapshot, trained  # noqa: F401  (trained: a fixture)
from vpbench.cli import main

GLYPHS8 = ["dataset.test_length=8"]


def _sets(items: list[str]) -> list[str]:
    return [a for s in items for a in ("--set", s)]


# ------------------------------------------------------------------------------ helpers


def _hold_lock(ctx: Ctx, folder: Path) -> None:
    """Another process holds ``folder``'s run lock, as a running vpbench command does."""
    folder.mkdir(parents=True, exist_ok=True)
    code = (
        "import os, sys, time; from filelock import FileLock; "
        "lock = FileLock(sys.argv[1] + '/.run.lock'); lock.acquire(); "
        "open(sys.argv[1] + '/.run.pid', 'w').write(str(os.getpid())); print('held', flush=True); time.sleep(120)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
    ctx.stack.callback(holder.wait)
    ctx.stack.callback(holder.kill)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"


def _test_clips(n: int = 8) -> np.ndarray:
    """The first ``n`` glyphs test clips, [N, 20, 1, 64, 64] float32 (the dataset's own order)."""
    from vpbench_glyphs.dataset import GlyphsDataset

    ds = GlyphsDataset(GlyphsDataset.Config(test_length=n), Path("unused"), seed=0)
    return np.stack([ds.split("test")[i].numpy() for i in range(n)])


def _copy_last(clips: np.ndarray, context: int = 10, horizon: int = 10) -> np.ndarray:
    """Copy-last predictions: the last context frame, repeated ``horizon`` times."""
    return np.repeat(clips[:, context - 1 : context], horizon, axis=1)


def _copy_last_preds(ctx: Ctx, name: str = "preds.npy", *, tweak: Callable[[np.ndarray], None] | None = None) -> str:
    preds = _copy_last(_test_clips()).astype(np.float32)
    if tweak is not None:
        tweak(preds)
    np.save(ctx.work / name, preds)
    return name


def _inst_pickle_checkpoint(path: Path) -> None:
    """A torch zip checkpoint whose pickle calls ``open`` through the INST opcode: torch refuses it
    with a message that does not say "Unsupported global"."""
    torch.save({"format": "x"}, path)
    with zipfile.ZipFile(path) as zin:
        members = {n: zin.read(n) for n in zin.namelist()}
    with zipfile.ZipFile(path, "w") as zout:
        for n, data in members.items():
            if n.endswith("data.pkl"):
                data = f"(S'{path.parent / 'MARKER'}'\nS'w'\nibuiltins\nopen\n.".encode()
            zout.writestr(n, data)


def _alias_bomb(levels: int = 9) -> str:
    """A ~400-byte YAML "billion laughs" as one flow list: 9 levels of 9 aliases (9**8 leaves expanded)."""
    items = ["&a0 [lol]"] + [f"&a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "[" + ", ".join(items) + "]"


# -------------------------------------------------------------------------------- setups
# 1. every name that becomes a path is a checked slug


def suite_name_escapes(ctx: Ctx) -> list[str]:
    (ctx.work / "s.yaml").write_text("name: ../../../../x\ndatasets: [glyphs]\nentries:\n  - model: copy-last\n")
    return ["bench", "s.yaml", "--set", "dataset.test_length=4", "--quiet"]


def run_out_name_300(ctx: Ctx) -> list[str]:
    return ["run", "-m", "copy-last", "-d", "glyphs", "--out", "x" * 300, *_sets(GLYPHS8), "--no-progress"]


def run_out_name_undecodable(ctx: Ctx) -> list[str]:
    return ["run", "-m", "copy-last", "-d", "glyphs", "--out", "nu3_\udcff", *_sets(GLYPHS8), "--no-progress"]


def score_name_dotdot(ctx: Ctx) -> list[str]:
    return ["score", "-d", "glyphs", "--predictions", _copy_last_preds(ctx), "--name", "..", *_sets(GLYPHS8),
            "--no-progress", "--compare", "none"]


# 2. eval and score lock --out


def eval_out_locked(ctx: Ctx) -> list[str]:
    ctx.copy_trained("r")
    _hold_lock(ctx, ctx.work / "e")
    return ["eval", "--run", "r", "--out", "e", "--device", "cpu", "--no-progress", "--compare", "none"]


def score_out_locked(ctx: Ctx) -> list[str]:
    preds = _copy_last_preds(ctx)
    _hold_lock(ctx, ctx.work / "s")
    return ["score", "-d", "glyphs", "--predictions", preds, "--name", "m", "--out", "s", *_sets(GLYPHS8),
            "--no-progress", "--compare", "none"]


# 3. bounded errors, config numbers the code can run


def config_alias_bomb(ctx: Ctx) -> list[str]:
    (ctx.work / "bomb.yaml").write_text(f"train:\n  max_steps: [{_alias_bomb()}]\n")
    return ["run", "-m", "copy-last", "-d", "glyphs", "--config", "bomb.yaml", "--out", "r"]


def config_deep_nesting(ctx: Ctx) -> list[str]:
    """20,000 nested flow lists: PyYAML recurses once per level (a RecursionError on main)."""
    (ctx.work / "deep.yaml").write_text("train:\n  max_steps: " + "[" * 20000 + "]" * 20000 + "\n")
    return ["run", "-m", "copy-last", "-d", "glyphs", "--config", "deep.yaml", "--out", "r"]


def suite_alias_bomb(ctx: Ctx) -> list[str]:
    (ctx.work / "s.yaml").write_text(f"datasets: [{_alias_bomb()}]\nentries:\n  - model: copy-last\n")
    return ["bench", "s.yaml", "--out", "b", "--dry-run"]


def lr_1e300(ctx: Ctx) -> list[str]:
    return ["run", "-m", "tinyconv", "-d", "glyphs", *_sets([*TINY, "train.max_steps=2", "train.lr=1e300"]),
            "--out", "r", "--no-progress"]


def model_lr_1e300(ctx: Ctx) -> list[str]:
    """A model's own learning rate (ConvLSTM's ``model.lr``, which overrides train.lr) has train.lr's bounds."""
    return ["run", "-m", "convlstm", "-d", "glyphs", *_sets([*GLYPHS8, "model.lr=1e300"]), "--out", "r", "--no-progress"]


def length_1e11(ctx: Ctx) -> list[str]:
    return ["run", "-m", "copy-last", "-d", "glyphs", "--set", "dataset.test_length=100000000000", "--out", "r",
            "--no-progress", "--compare", "none"]


def speed_inf(ctx: Ctx) -> list[str]:
    return ["run", "-m", "copy-last", "-d", "glyphs", "--set", "dataset.speed=.inf", *_sets(GLYPHS8), "--out", "r",
            "--no-progress"]


def resume_optimiser_wrong_shape(ctx: Ctx) -> list[str]:
    """A stopped run whose last.pt holds an Adam state of another shape than the parameters."""
    r = ctx.copy_trained()
    last = r / "checkpoints" / "last.pt"
    payload = torch.load(last, weights_only=True)
    params = [nn.Parameter(t.clone().float()) for t in payload["state_dict"].values()]
    opt = torch.optim.Adam(params, lr=3e-3)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    state = opt.state_dict()
    state["state"][0]["exp_avg"] = torch.zeros(5)  # parameter 0 is a conv weight [8, 2, 3, 3]
    payload["optimizer"] = state
    payload["train_state"].update(global_step=1, stage_index=0, stage_step=1, last_validated=1, best_step=1)
    payload["train_state"]["stage_log"] = payload["train_state"]["stage_log"][:1]
    torch.save(payload, last)
    return ["run", "--resume", "--out", "r", "--no-progress"]


# 4. score checks every clip, and nothing measured is an error


def score_last_clip_0_255(ctx: Ctx) -> list[str]:
    def scale_last(p: np.ndarray) -> None:
        p[-1] *= 255.0

    preds = _copy_last_preds(ctx, tweak=scale_last)
    return ["score", "-d", "glyphs", "--predictions", preds, "--name", "m", "--out", "s", *_sets(GLYPHS8),
            "--no-progress", "--compare", "none"]


def score_inf_in_last_clip(ctx: Ctx) -> list[str]:
    def inf_last(p: np.ndarray) -> None:
        p[-1, -1, 0, 5, 5] = np.inf

    preds = _copy_last_preds(ctx, tweak=inf_last)
    return ["score", "-d", "glyphs", "--predictions", preds, "--name", "m", "--out", "s", *_sets(GLYPHS8),
            "--no-progress", "--compare", "none"]


def score_nan_in_last_clip(ctx: Ctx) -> list[str]:
    def nan_last(p: np.ndarray) -> None:
        p[-1, 3, 0, 5, 5] = np.nan

    preds = _copy_last_preds(ctx, tweak=nan_last)
    return ["score", "-d", "glyphs", "--predictions", preds, "--name", "m", "--out", "s", *_sets(GLYPHS8),
            "--no-progress", "--compare", "none", "--set", "eval.metrics=[mse]"]


def score_no_metrics(ctx: Ctx) -> list[str]:
    return ["score", "-d", "glyphs", "--predictions", _copy_last_preds(ctx), "--name", "m", "--out", "s",
            *_sets([*GLYPHS8, "eval.metrics=[]"]), "--no-progress", "--compare", "none"]


def run_no_protocols(ctx: Ctx) -> list[str]:
    return ["run", "-m", "copy-last", "-d", "glyphs", *_sets([*GLYPHS8, "eval.protocols=[]"]), "--out", "r", "--no-progress"]


def run_unknown_protocol(ctx: Ctx) -> list[str]:
    return ["run", "-m", "copy-last", "-d", "glyphs", *_sets([*GLYPHS8, "eval.protocols=[nope]"]), "--out", "r",
            "--no-progress"]


def eval_unknown_protocol(ctx: Ctx) -> list[str]:
    ctx.copy_trained("r")
    return ["eval", "--run", "r", "--out", "e", "--set", "eval.protocols=[nope]", "--device", "cpu", "--no-progress"]


# 6. a user's bad file is one line naming it; Ctrl-C only for a real SIGINT


def score_empty_npy(ctx: Ctx) -> list[str]:
    (ctx.work / "preds.npy").write_bytes(b"")
    return ["score", "-d", "glyphs", "--predictions", "preds.npy", "--name", "m", "--out", "s", *_sets(GLYPHS8)]


def score_object_npz(ctx: Ctx) -> list[str]:
    preds = np.empty((8, 10, 1, 64, 64), dtype=object)  # the right shape; loading it would unpickle
    preds[0, 0, 0, 0, 0] = {"a": 1}
    np.savez(ctx.work / "preds.npz", predictions=preds)
    return ["score", "-d", "glyphs", "--predictions", "preds.npz", "--name", "m", "--out", "s", *_sets(GLYPHS8)]


def score_truncated_npz(ctx: Ctx) -> list[str]:
    np.savez(ctx.work / "full.npz", predictions=_copy_last(_test_clips()))
    data = (ctx.work / "full.npz").read_bytes()
    (ctx.work / "preds.npz").write_bytes(data[: len(data) // 2])
    (ctx.work / "full.npz").unlink()
    return ["score", "-d", "glyphs", "--predictions", "preds.npz", "--name", "m", "--out", "s", *_sets(GLYPHS8)]


def score_corrupt_npz_member(ctx: Ctx) -> list[str]:
    """A compressed .npz whose zip directory is intact but whose member's deflate stream is damaged."""
    np.savez_compressed(ctx.work / "preds.npz", predictions=_copy_last(_test_clips()))
    data = bytearray((ctx.work / "preds.npz").read_bytes())
    mid = len(data) // 3
    data[mid : mid + 64] = bytes(64)
    (ctx.work / "preds.npz").write_bytes(bytes(data))
    return ["score", "-d", "glyphs", "--predictions", "preds.npz", "--name", "m", "--out", "s", *_sets(GLYPHS8)]


def _npy_header(fh: object, shape: tuple[int, ...], descr: str = "<f4") -> None:
    np.lib.format.write_array_header_1_0(fh, {"descr": descr, "fortran_order": False, "shape": shape})


def score_npy_declares_153_gib(ctx: Ctx) -> list[str]:
    """A 144-byte .npy whose header declares 1e6 clips (153 GiB): refused from its header, nothing allocated."""
    with (ctx.work / "preds.npy").open("wb") as fh:
        _npy_header(fh, (1_000_000, 10, 1, 64, 64))
        fh.write(bytes(16))
    return ["score", "-d", "glyphs", "--predictions", "preds.npy", "--name", "m", "--out", "s", *_sets(GLYPHS8)]


def score_npy_truncated(ctx: Ctx) -> list[str]:
    """The right header, a quarter of the data."""
    with (ctx.work / "preds.npy").open("wb") as fh:
        _npy_header(fh, (8, 10, 1, 64, 64))
        fh.write(bytes(8 * 10 * 64 * 64))
    return ["score", "-d", "glyphs", "--predictions", "preds.npy", "--name", "m", "--out", "s", *_sets(GLYPHS8)]


def score_npz_ids_declare_a_billion(ctx: Ctx) -> list[str]:
    """A compressed npz whose 'ids' member is 8 GB of zeros (8 MB on disk): refused from its header."""
    with zipfile.ZipFile(ctx.work / "preds.npz", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("predictions.npy", "w") as fh:
            np.lib.format.write_array(fh, _copy_last(_test_clips()), allow_pickle=False)
        with zf.open("ids.npy", "w", force_zip64=True) as fh:
            _npy_header(fh, (1_000_000_000,), "<i8")
            zeros = bytes(1 << 20)
            for _ in range(8):  # 8 MiB written; the header declares 8 GB (never read)
                fh.write(zeros)
    return ["score", "-d", "glyphs", "--predictions", "preds.npz", "--name", "m", "--out", "s", *_sets(GLYPHS8)]


def eval_crafted_checkpoint(ctx: Ctx) -> list[str]:
    ctx.copy_trained("r")
    _inst_pickle_checkpoint(ctx.work / "crafted.pt")
    return ["eval", "--run", "r", "--checkpoint", "crafted.pt", "--out", "e", "--device", "cpu", "--no-progress"]


def eval_garbage_checkpoint(ctx: Ctx) -> list[str]:
    ctx.copy_trained("r")
    (ctx.work / "garbage.pt").write_bytes(b"garbage" * 100)
    return ["eval", "--run", "r", "--checkpoint", "garbage.pt", "--out", "e", "--device", "cpu", "--no-progress"]


def _no_delete_advice(ctx: Ctx, message: str) -> None:
    assert "delete it" not in message and "restart the run" not in message, message


def _nothing_outside(ctx: Ctx, message: str) -> None:
    """Nothing was created above the work folder, nor under runs/."""
    assert not (ctx.work.parent / "x").exists() and not (ctx.work / "runs").exists()


def _short(ctx: Ctx, message: str) -> None:
    assert len(message) < 600, f"{len(message)} characters"


def _nan_warned(ctx: Ctx, message: str) -> None:
    rec = json.loads((ctx.work / "s" / "record.json").read_text())
    assert rec["nan_frames"] == 1


CASES = [
    # 1. names that become paths
    Case("suite-name-escapes", suite_name_escapes, r"^error: suite s\.yaml: name '\.\./\.\./\.\./\.\./x' must be a plain name.*runs/bench-<name>"),
    Case("run-out-name-300", run_out_name_300, r"^error: run id \(the last part of --out\) 'x+\.\.\.x+' is 300 characters long .*choose --out"),
    Case("run-out-name-undecodable", run_out_name_undecodable, r"^error: run id .*'nu3_\\udcff' must be a plain name.*choose --out"),
    Case("score-name-dotdot", score_name_dotdot, r"^error: --name '\.\.' must be a plain name.*--name simvp-openstl"),
    # 2. one writer per --out
    Case("eval-out-locked", eval_out_locked, r"^error: run directory e is in use by another vpbench process \(PID \d+\); wait"),
    Case("score-out-locked", score_out_locked, r"^error: run directory s is in use by another vpbench process \(PID \d+\); wait"),
    # 3. bounded errors; config numbers the code can run
    Case("config-alias-bomb", config_alias_bomb, r"^error: bad value for config key 'train\.max_steps': .*\(got \[\[.*\.\.\."),
    Case("config-deep-nesting", config_deep_nesting, r"^error: invalid YAML in deep\.yaml: nested too deeply for a config; fix the file"),
    Case("suite-alias-bomb", suite_alias_bomb, r"^error: suite s\.yaml: bad value for key 'datasets\.0'.*\(got \[\[.*\.\.\."),
    Case("lr-1e300", lr_1e300, r"^error: bad value for config key 'train\.lr': Input should be less than or equal to 10"),
    Case("model-lr-1e300", model_lr_1e300, r"^error: stage 'rollout' of the model has learning rate 1e\+300, outside \(0, 10\]; lower"),
    Case("test-length-1e11", length_1e11, r"^error: the test split of glyphs has 100,000,000,000 clips, more than .*lower it"),
    Case("speed-inf", speed_inf, r"^error: bad value for config key 'dataset\.speed': Input should be a finite number"),
    Case("resume-optimiser-wrong-shape", resume_optimiser_wrong_shape,
         r"^error: checkpoint \S*last\.pt has an optimiser state that does not fit this model \(its 'exp_avg' of parameter 0 "
         r"has shape \[5\], the parameter \[8, 2, 3, 3\]\); delete it", "r"),
    # 4. every clip is checked; measuring nothing is an error
    Case("score-last-clip-0-255", score_last_clip_0_255, r"^error: predictions in preds\.npy: clip 7 has values in \[0, 255\], outside \[0, 1\]"),
    Case("score-inf-in-last-clip", score_inf_in_last_clip, r"^error: predictions in preds\.npy: clip 7 holds infinite values"),
    Case("score-nan-in-last-clip", score_nan_in_last_clip, r"^warning: 1 predicted frames contain NaN", "s", code=0),
    Case("score-no-metrics", score_no_metrics, r"^error: bad value for config key 'eval\.metrics': List should have at least 1 item"),
    Case("run-no-protocols", run_no_protocols, r"^error: bad value for config key 'eval\.protocols': List should have at least 1 item"),
    Case("run-unknown-protocol", run_unknown_protocol, r"^error: unknown metric protocol 'nope' in eval\.protocols; the installed metrics offer: openstl, standard"),
    Case("eval-unknown-protocol", eval_unknown_protocol, r"^error: unknown metric protocol 'nope' in eval\.protocols"),
    # 6. the user's file named, one line; never "interrupted"
    Case("score-empty-npy", score_empty_npy, r"^error: predictions file preds\.npy is empty \(0 bytes\); save the array with numpy\.save"),
    Case("score-object-npz", score_object_npz, r"^error: predictions in preds\.npz have dtype object; save float in \[0, 1\] or uint8"),
    Case("score-truncated-npz", score_truncated_npz, r"^error: predictions file preds\.npz is not a readable \.npy/\.npz of numbers"),
    Case("score-npy-declares-153-gib", score_npy_declares_153_gib,
         r"^error: preds\.npy holds 1000000 predicted clips; the test split of glyphs has 8 to score"),
    Case("score-npy-truncated", score_npy_truncated,
         r"^error: predictions file preds\.npy is not a readable \.npy/\.npz of numbers \(EOFError: the file holds \d+ bytes, its header declares \d+"),
    Case("score-npz-ids-declare-a-billion", score_npz_ids_declare_a_billion,
         r"^error: preds\.npz: 'ids' has 1000000000 entries for 8 predicted clips; give one test index per clip"),
    Case("score-corrupt-npz-member", score_corrupt_npz_member,
         r"^error: predictions file preds\.npz is not a readable \.npy/\.npz of numbers \((error|BadZipFile|EOFError|ValueError)"),
    Case("eval-crafted-checkpoint", eval_crafted_checkpoint,
         r"^error: checkpoint crafted\.pt holds objects other than tensors and plain data .*give --checkpoint a file written by `vpbench run`"),
    Case("eval-garbage-checkpoint", eval_garbage_checkpoint, r"^error: checkpoint garbage\.pt is unreadable .*give --checkpoint a file written by"),
]

#: extra checks on the message (the Case's check gets only the context)
MESSAGE_CHECKS: dict[str, Callable[[Ctx, str], None]] = {
    "suite-name-escapes": _nothing_outside,
    "config-alias-bomb": _short,
    "suite-alias-bomb": _short,
    "eval-crafted-checkpoint": _no_delete_advice,
    "eval-garbage-checkpoint": _no_delete_advice,
    "score-nan-in-last-clip": _nan_warned,
}


def _run(argv: list[str], capsys: pytest.CaptureFixture[str], plugins: list[object] | None = None) -> tuple[int, list[str], str]:
    """Exit code, the non-empty stderr lines (progress bars split off), stdout."""
    capsys.readouterr()
    code = 0
    try:
        main(argv, plugins=plugins if plugins is not None else [TestPlugin()])  # a bug would raise here, traceback and all
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    lines = [seg.strip() for seg in re.split(r"[\r\n]+", captured.err) if seg.strip()]
    return code, lines, captured.out


def _one_error(code: int, lines: list[str]) -> str:
    assert code == 2, lines
    assert not any("Traceback" in line for line in lines)
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], lines  # one line, and nothing after it
    return errors[0]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input2(case: Case, trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
                        capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "w"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("VPBENCH_DATA", str(work / "data"))
    with ExitStack() as stack:
        ctx = Ctx(work, trained, monkeypatch, stack, ("", work), None)
        argv = case.setup(ctx)
        intended = work / case.intended if case.intended else None
        before = _snapshot(tmp_path.parent, intended)  # the folders beside and above the case's too
        code, lines, out = _run(argv, capsys)
        after = _snapshot(tmp_path.parent, intended)
    assert not (work / "MARKER").exists(), "unpickling a checkpoint ran code"
    if case.code:
        message = _one_error(code, lines)
    else:
        assert code == case.code, lines
        assert not any("Traceback" in line for line in lines)
        warnings = [line for line in [*lines, *out.splitlines()] if line.startswith(("warning:", "error:"))]
        assert len(warnings) == 1, lines
        message = warnings[0]
    assert re.search(case.message, message), message
    assert after == before, f"files outside {case.intended or 'nothing'} changed: {set(after) ^ set(before) or 'contents'}"
    if case.id in MESSAGE_CHECKS:
        MESSAGE_CHECKS[case.id](ctx, message)


# ------------------------------------------------------- every entry point of a name


#: names that must never become a path: traversal, absolute, hidden, empty-ish, too long, undecodable
HOSTILE_NAMES = ["../../../../x", "/tmp/abs", "..", ".hidden", "a b", "x" * 300, "nu3_\udcff"]


def _suite(name: str | None = None, entry: str | None = None) -> str:
    head = f"name: {json.dumps(name)}\n" if name is not None else ""
    label = f"    name: {json.dumps(entry)}\n" if entry is not None else ""
    return head + "datasets: [glyphs]\nentries:\n  - model: copy-last\n" + label


class _NamedPlugin:
    """Registers a model, a dataset and a metric under a given (hostile) name."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind, self.name = kind, name

    @vpbench.hookimpl
    def register_models(self, register: Callable[[vpbench.ModelSpec], None]) -> None:
        if self.kind == "model":
            register(vpbench.ModelSpec(name=self.name, target="conftest:TinyConv", description="hostile"))

    @vpbench.hookimpl
    def register_datasets(self, register: Callable[[vpbench.DatasetSpec], None]) -> None:
        if self.kind == "dataset":
            register(vpbench.DatasetSpec(name=self.name, target="vpbench_glyphs.dataset:GlyphsDataset",
                                         description="hostile", frame_shape=(1, 64, 64), context=10, horizon=10))

    @vpbench.hookimpl
    def register_metrics(self, register: Callable[[vpbench.MetricSpec], None]) -> None:
        if self.kind == "metric":
            register(vpbench.MetricSpec(name=self.name, target="vpbench_metrics.pixel:MSE", description="hostile",
                                        higher_is_better=False))


def _entry_points(work: Path, trained_run: Path, name: str) -> dict[str, tuple[list[str], list[object] | None, str]]:
    """Every place a name becomes a path: argv, extra plugins, the regex of the one error line."""
    preds = work / "preds.npy"
    if not preds.exists():
        np.save(preds, _copy_last(_test_clips()).astype(np.float32))
    (work / "suite-name.yaml").write_text(_suite(name=name))
    (work / "suite-entry.yaml").write_text(_suite(entry=name))
    score = ["score", "-d", "glyphs", "--predictions", str(preds), "--set", "dataset.test_length=8", "--compare", "none"]
    return {
        "suite name": (["bench", "suite-name.yaml", "--dry-run"], None, r"suite suite-name\.yaml: name .* (must be a plain name|characters long)"),
        "suite entry name": (["bench", "suite-entry.yaml", "--dry-run"], None, r"suite suite-entry\.yaml: entry name .* (must be a plain name|characters long)"),
        "run id (run --out)": (["run", "-m", "copy-last", "-d", "glyphs", "--out", name], None, r"run id .* (must be a plain name|characters long)"),
        "run id (eval --out)": (["eval", "--run", str(trained_run), "--out", name, "--device", "cpu"], None, r"run id .* (must be a plain name|characters long)"),
        "run id (score --out)": ([*score, "--name", "m", "--out", name], None, r"run id .* (must be a plain name|characters long)"),
        "run id (tune --out)": (["tune", "-m", "copy-last", "-d", "glyphs", "--out", name], None, r"run id .* (must be a plain name|characters long)"),
        "model name (score --name)": ([*score, "--name", name, "--out", "s"], None, r"--name .* (must be a plain name|characters long)"),
        "output stem (data export --out)": (["data", "export", "glyphs", "--out", f"{name}.npz", "--limit", "2"], None,
                                            r"(--out file name .* (must be a plain name|characters long)|--out .* must name a \.npz file)"),
        "dataset name (plugin)": (["run", "-m", "copy-last", "-d", "glyphs", "--out", "r"], [TestPlugin(), _NamedPlugin("dataset", name)],
                                  r"registers the dataset name .* not a plain name"),
        "model name (plugin)": (["run", "-m", "copy-last", "-d", "glyphs", "--out", "r"], [TestPlugin(), _NamedPlugin("model", name)],
                                r"registers the model name .* not a plain name"),
        "metric name (plugin)": (["run", "-m", "copy-last", "-d", "glyphs", "--out", "r"], [TestPlugin(), _NamedPlugin("metric", name)],
                                 r"registers the metric name .* not a plain name"),
    }


ENTRY_POINTS = [
    "suite name", "suite entry name", "run id (run --out)", "run id (eval --out)", "run id (score --out)", "run id (tune --out)",
    "model name (score --name)", "output stem (data export --out)", "dataset name (plugin)", "model name (plugin)",
    "metric name (plugin)",
]


@pytest.mark.parametrize("where", ENTRY_POINTS)
def test_every_name_that_becomes_a_path_is_a_checked_slug(where: str, trained: Path, tmp_path: Path,  # noqa: F811
                                                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Each hostile name at each entry point: one error line, nothing written anywhere."""
    work = tmp_path / "w"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("VPBENCH_DATA", str(work / "data"))
    for name in HOSTILE_NAMES:
        if "/" in name and ("--out" in where):
            continue  # --out is a path the user chooses; its last part is the name checked
        argv, plugins, pattern = _entry_points(work, trained, name)[where]
        before = _snapshot(tmp_path.parent, None)
        code, lines, _ = _run(argv, capsys, plugins)
        message = _one_error(code, lines)
        assert re.search(pattern, message), (name, message)
        assert message.isascii() or "\udcff" not in message
        assert len(message) < 600, message
        assert _snapshot(tmp_path.parent, None) == before, f"{where} with {name!r} wrote files"
        assert not Path("/tmp/abs").exists() and not (tmp_path / "x").exists()


# ------------------------------------------------------- data export, then score


def test_data_export_writes_the_clips_score_expects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Export glyphs' test clips, predict copy-last from them outside vpbench, score: the record
    equals the copy-last baseline scored inside the same command."""
    monkeypatch.chdir(tmp_path)
    code, lines, out = _run(["data", "export", "glyphs", "--split", "test", "--out", "test.npz", "--set", "test_length=8",
                             "--no-progress"], capsys)
    assert code == 0, lines
    assert "wrote 8 test clips of glyphs (uint8) to test.npz" in out
    with np.load(tmp_path / "test.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == ["clips", "context", "horizon", "ids"]
        clips, ids, context, horizon = npz["clips"], npz["ids"], int(npz["context"]), int(npz["horizon"])
    assert clips.shape == (8, 20, 1, 64, 64) and clips.dtype == np.uint8 and (context, horizon) == (10, 10)
    assert ids.tolist() == list(range(8))
    np.testing.assert_array_equal(clips.astype(np.float32) / 255.0, _test_clips())  # the clips score scores against
    np.savez(tmp_path / "preds.npz", predictions=_copy_last(clips, context, horizon), ids=ids)
    code, lines, out = _run(["score", "-d", "glyphs", "--predictions", "preds.npz", "--name", "mine", "--out", "s",
                             "--set", "dataset.test_length=8", "--set", "eval.metrics=[mse,psnr]", "--compare", "copy-last",
                             "--device", "cpu", "--no-progress"], capsys)
    assert code == 0, lines
    rec = json.loads((tmp_path / "s" / "record.json").read_text())
    ours, baseline = rec["metrics"]["openstl"], rec["baselines"]["copy-last"]["openstl"]
    for metric in ("mse", "psnr"):
        assert ours[metric]["mean"] == pytest.approx(baseline[metric]["mean"], rel=1e-6), metric


def test_data_export_help_and_a_bad_out_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, out = _run(["data", "export", "--help"], capsys)
    assert code == 0 and "vpbench score" in out and "ids" in out
    message = _one_error(*_run(["data", "export", "glyphs", "--out", "clips.npy"], capsys)[:2])
    assert "must name a .npz file" in message
    assert list(tmp_path.iterdir()) == []
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "`vpbench data export D --split test --out F.npz`" in readme


# ------------------------------------------------------- Ctrl-C only for a real SIGINT


class _EofCommand:
    @vpbench.hookimpl
    def register_commands(self, cli: click.Group) -> None:
        @cli.command("eof")
        def eof() -> None:
            raise EOFError("a bug that reads past the end of something")


def test_an_eoferror_is_not_reported_as_ctrl_c(capsys: pytest.CaptureFixture[str]) -> None:
    """click turns EOFError into Abort; only a KeyboardInterrupt may print `interrupted` (exit 130)."""
    with pytest.raises(EOFError):
        main(["eof"], plugins=[_EofCommand()])
    assert "interrupted" not in capsys.readouterr().err
