"""Weight-mapped parity of vpbench's SimVP (incepu, gsta) and TAU with OpenSTL's implementation.

For each model: build ours (tiny config) and give it seeded random weights, build OpenSTL's
``SimVP_Model`` from the reference source with the same sizes, copy the weights over (module by
module, in order, shapes checked), run the same clip through both, and compare

* the eval-mode prediction of ``S = 6`` frames from ``T = 4`` (two passes, fed back as in
  OpenSTL's ``SimVP.forward``), batch norm on random running statistics;
* the train-mode loss under one seed (batch-norm batch statistics, dropout and stochastic depth
  drawing the same random numbers): MSE, plus for TAU ``alpha * diff_div_reg`` with the
  reference's own ``diff_div_reg`` (read from ``openstl/methods/tau.py``).

It writes ``tests/fixtures/zoo/<name>.pt`` (config, weight seed, input, expected outputs and
losses), which ``tests/test_zoo_simvp.py`` checks without the reference code.

The reference imports timm; install it into a scratch or worktree venv only for this script::

    .venv/bin/python -m pip install timm
    .venv/bin/python benchmarks/parity_simvp.py /path/to/OpenSTL           # a checkout, or
    .venv/bin/python benchmarks/parity_simvp.py /work/.mirror/chengtan9907+OpenSTL/repo   # a git dir

Add ``--check`` to compare against the committed fixtures instead of rewriting them. Without the
reference path it recomputes our side only and prints the max abs difference from the fixtures
(no OpenSTL, no timm needed)::

    .venv/bin/python benchmarks/parity_simvp.py
"""

from __future__ import annotations

import argparse
import ast
import importlib
import io
import subprocess
import sys
import tarfile
import tempfile
import types
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import vpbench
from vpbench_simvp.model import SimVP, TAU

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "zoo"

# tiny sizes; drop and drop_path are high so that dropout and stochastic depth are exercised
CASES: dict[str, dict[str, Any]] = {
    "simvp_incepu": {"model": "simvp", "config": {"translator": "incepu", "hid_s": 4, "hid_t": 16, "n_s": 2, "n_t": 3}},
    "simvp_gsta": {
        "model": "simvp",
        "config": {"translator": "gsta", "hid_s": 4, "hid_t": 16, "n_s": 2, "n_t": 3, "mlp_ratio": 2.0,
                   "drop": 0.1, "drop_path": 0.3},
    },
    "tau": {
        "model": "tau",
        "config": {"hid_s": 4, "hid_t": 16, "n_s": 2, "n_t": 3, "mlp_ratio": 2.0, "drop": 0.1, "drop_path": 0.3,
                   "alpha": 0.1},
    },
}
SHAPE = vpbench.FrameShape(1, 8, 8)
CONTEXT, HORIZON, BATCH = 4, 6, 2
WEIGHT_SEED, INPUT_SEED, TRAIN_SEED = 2025, 7, 11


def build_ours(model: str, config: dict[str, Any]) -> SimVP | TAU:
    cls = SimVP if model == "simvp" else TAU
    return cls(cls.Config(**config), SHAPE, CONTEXT, HORIZON)


def seeded_weights(net: torch.nn.Module, seed: int) -> None:
    """Fill every parameter and batch-norm statistic from ``seed``, in ``state_dict`` order.

    Matrices and kernels ~ N(0, 1/fan_in), vectors (biases, norm affines, layer scales, running
    means) ~ N(0, 0.5²), running variances ~ U(0.5, 1.5).
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif t.ndim >= 2:
                t.copy_(torch.randn(t.shape, generator=g) / (t[0].numel() ** 0.5))
            else:
                t.copy_(torch.randn(t.shape, generator=g) * 0.5)


def clip() -> torch.Tensor:
    g = torch.Generator().manual_seed(INPUT_SEED)
    return torch.rand(BATCH, CONTEXT + HORIZON, *SHAPE.as_tuple(), generator=g)


# ----------------------------------------------------------------------------- reference


def reference_tree(path: Path) -> Path:
    """A folder holding ``openstl/``: ``path`` itself, or ``openstl/`` exported from the git dir ``path``."""
    if (path / "openstl").is_dir():
        return path
    out = Path(tempfile.mkdtemp(prefix="openstl-"))
    tar = subprocess.run(["git", f"--git-dir={path}", "archive", "HEAD", "openstl"], check=True, capture_output=True)
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as archive:
        archive.extractall(out, filter="data")
    return out


def load_reference(tree: Path) -> tuple[Any, Any]:
    """``(SimVP_Model, diff_div_reg)`` from the reference source, importing only what they need."""
    root = tree / "openstl"
    for name, sub in (("openstl", root), ("openstl.modules", root / "modules"), ("openstl.models", root / "models")):
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(sub)]
        sys.modules[name] = pkg
    simvp_modules = importlib.import_module("openstl.modules.simvp_modules")
    vars(sys.modules["openstl.modules"]).update(
        {k: v for k, v in vars(simvp_modules).items() if not k.startswith("_")}
    )
    simvp_model = importlib.import_module("openstl.models.simvp_model")
    # TAU.diff_div_reg, compiled alone (the method class needs Lightning)
    tree_ast = ast.parse((root / "methods" / "tau.py").read_text())
    fn = next(
        f for c in tree_ast.body if isinstance(c, ast.ClassDef) and c.name == "TAU"
        for f in c.body if isinstance(f, ast.FunctionDef) and f.name == "diff_div_reg"
    )
    namespace: dict[str, Any] = {"torch": torch, "F": F}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), str(root / "methods" / "tau.py"), "exec"), namespace)
    return simvp_model.SimVP_Model, namespace["diff_div_reg"]


def build_reference(SimVP_Model: Any, model: str, config: dict[str, Any]) -> torch.nn.Module:
    ours = (SimVP if model == "simvp" else TAU).Config(**config)
    model_type = "tau" if model == "tau" else ours.translator  # type: ignore[union-attr]
    return SimVP_Model(
        in_shape=(CONTEXT, *SHAPE.as_tuple()), hid_S=ours.hid_s, hid_T=ours.hid_t, N_S=ours.n_s, N_T=ours.n_t,
        model_type=model_type, mlp_ratio=ours.mlp_ratio, drop=ours.drop, drop_path=ours.drop_path,
        spatio_kernel_enc=ours.kernel_enc, spatio_kernel_dec=ours.kernel_dec,
    )


def map_weights(ours: torch.nn.Module, ref: torch.nn.Module) -> int:
    """Copy our weights into the reference: enc->enc, translator->hid, dec->dec, each in order."""
    copied = 0
    for mine, theirs in (("enc", "enc"), ("translator", "hid"), ("dec", "dec")):
        src = getattr(ours, mine).state_dict()
        dst = getattr(ref, theirs).state_dict()
        if len(src) != len(dst):
            raise SystemExit(f"{mine}: {len(src)} tensors here, {len(dst)} in the reference")
        for (ks, vs), (kd, vd) in zip(src.items(), dst.items()):
            if vs.shape != vd.shape:
                raise SystemExit(f"{mine}.{ks} {tuple(vs.shape)} vs reference {theirs}.{kd} {tuple(vd.shape)}")
            vd.copy_(vs)
            copied += vs.numel()
        getattr(ref, theirs).load_state_dict(dst)
    return copied


def reference_forward(ref: torch.nn.Module, x: torch.Tensor, horizon: int) -> torch.Tensor:
    """OpenSTL's ``SimVP.forward``: ``horizon // T`` passes fed back, then one pass cut to the rest."""
    t = x.shape[1]
    d, m = divmod(horizon, t)
    outs, cur = [], x.clone()
    for _ in range(d):
        cur = ref(cur)
        outs.append(cur)
    if m:
        cur = ref(cur)
        outs.append(cur[:, :m])
    return torch.cat(outs, dim=1)


def from_fixtures() -> None:
    """Our outputs against the committed fixtures (what tests/test_zoo_simvp.py asserts)."""
    print(f"{'fixture':14s} {'max|Δ| eval output':>19s} {'|Δ| train loss':>15s} {'|Δ| ddr':>9s}")
    for name in CASES:
        fx = torch.load(FIXTURES / f"{name}.pt", weights_only=True)
        torch.manual_seed(0)
        ours = build_ours(fx["model"], fx["config"])
        seeded_weights(ours, fx["weight_seed"])
        clip_, ctx = fx["clip"], fx["context"]
        with torch.no_grad():
            d_out = float((ours.eval().forecast(clip_[:, :ctx], fx["horizon"]) - fx["eval_output"]).abs().max())
        torch.manual_seed(fx["train_seed"])
        step = ours.train().training_loss(clip_, 0)
        d_loss = abs(step.loss.item() - fx["train_loss"])
        d_ddr = abs(step.logs.get("ddr", 0.0) - fx["train_ddr"])
        print(f"{name:14s} {d_out:19.3e} {d_loss:15.3e} {d_ddr:9.3e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("openstl", type=Path, nargs="?", help="OpenSTL checkout or git directory; none: fixtures only")
    ap.add_argument("--check", action="store_true", help="compare with the committed fixtures, write nothing")
    args = ap.parse_args()
    if args.openstl is None:
        from_fixtures()
        return
    SimVP_Model, diff_div_reg = load_reference(reference_tree(args.openstl))
    x = clip()
    context, target = x[:, :CONTEXT], x[:, CONTEXT:]
    print(f"{'model':14s} {'weights':>8s} {'max|Δ| eval output':>19s} {'|Δ| train loss':>15s} {'|Δ| ddr':>9s}")
    for name, case in CASES.items():
        torch.manual_seed(0)
        ours = build_ours(case["model"], case["config"])
        seeded_weights(ours, WEIGHT_SEED)
        ref = build_reference(SimVP_Model, case["model"], case["config"])
        n = map_weights(ours, ref)
        # eval mode
        ours.eval(), ref.eval()
        with torch.no_grad():
            mine, theirs = ours.forecast(context, HORIZON), reference_forward(ref, context, HORIZON)
        d_out = float((mine - theirs).abs().max())
        # train mode, one seed for both
        ours.train(), ref.train()
        torch.manual_seed(TRAIN_SEED)
        step = ours.training_loss(x, 0)
        torch.manual_seed(TRAIN_SEED)
        pred = reference_forward(ref, context, HORIZON)
        ref_mse = F.mse_loss(pred, target)
        ref_ddr = diff_div_reg(None, pred, target) if case["model"] == "tau" else torch.zeros(())
        alpha = case["config"].get("alpha", 0.0)
        ref_loss = ref_mse + alpha * ref_ddr
        d_loss = abs(step.loss.item() - ref_loss.item())
        d_ddr = abs(step.logs.get("ddr", 0.0) - float(ref_ddr))
        print(f"{name:14s} {n:8d} {d_out:19.3e} {d_loss:15.3e} {d_ddr:9.3e}")
        fixture = {
            "model": case["model"], "config": case["config"], "frame_shape": SHAPE.as_tuple(),
            "context": CONTEXT, "horizon": HORIZON, "weight_seed": WEIGHT_SEED, "train_seed": TRAIN_SEED,
            "clip": x, "eval_output": theirs.detach(), "train_loss": float(ref_loss), "train_ddr": float(ref_ddr),
            "reference": "OpenSTL openstl/models/simvp_model.py SimVP_Model, openstl/methods/tau.py diff_div_reg",
        }
        path = FIXTURES / f"{name}.pt"
        if args.check:
            old = torch.load(path, weights_only=True)
            same = torch.allclose(old["eval_output"], fixture["eval_output"], atol=1e-6, rtol=0)
            print(f"  fixture {path.name}: {'matches' if same else 'DIFFERS'}")
        else:
            FIXTURES.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            torch.save(fixture, tmp)
            tmp.replace(path)
    if not args.check:
        print(f"fixtures written to {FIXTURES.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
