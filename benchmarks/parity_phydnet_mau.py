"""Output parity of vpbench's PhyDNet and MAU with OpenSTL's implementations; writes the fixtures
that ``tests/test_zoo_phydnet_mau.py`` checks without the reference code.

For each case the script builds our model from a seed, copies its weights into OpenSTL's model
(a name map, no reshaping), feeds both the same clip and compares:

* ``predict``: OpenSTL's ``inference`` (PhyDNet) or its rollout with an all-zero sampling mask (MAU);
* the training loss with a fixed sampling decision: PhyDNet's teacher forcing on and off
  (``teacher_forcing_ratio`` 1.0 / 0.0: the coin is then certain), its loss including the
  moment loss; MAU's loss with a fixed scheduled-sampling mask;
* the gradient of that loss with respect to every weight (max over all weights; the fixtures
  keep 8 seeded entries of each weight's gradient).

PhyDNet's sizes are hard-coded in OpenSTL (nf 32, ConvLSTM 128-128-64, PhyCell 49 7x7), so its
case is the published model on 16x16 frames (a 4x4 latent). MAU runs a tiny config, once in the
published 'normal' modes and once with ``cell_mode=residual``, ``model_mode=recall``.

Usage (the reference source from a checkout or a bare git mirror of chengtan9907/OpenSTL; it
needs numpy and scipy)::

    .venv/bin/python benchmarks/parity_phydnet_mau.py /work/.mirror/chengtan9907+OpenSTL/repo
    .venv/bin/python benchmarks/parity_phydnet_mau.py MIRROR --rev OpenSTLv0.3.0 --dry-run   # the v0.3.0 code
    .venv/bin/python benchmarks/parity_phydnet_mau.py --check      # recompute from the fixtures only

Writes ``tests/fixtures/zoo/{phydnet,mau,mau-recall}.pt`` (tensors only; loaded with
``weights_only=True``) and prints the max abs difference per model.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import torch

import vpbench
from vpbench_mau.model import MAU
from vpbench_phydnet.model import PhyDNet
from vpbench_rnn.patch import to_patches

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "zoo"

#: name -> (model, config overrides, frame shape, context, horizon, batch)
CASES: dict[str, tuple[str, dict[str, Any], tuple[int, int, int], int, int, int]] = {
    "phydnet": ("phydnet", {}, (1, 16, 16), 3, 2, 2),
    "mau": ("mau", {"num_layers": 2, "hidden": 8, "filter_size": 3, "tau": 3, "sr_size": 4}, (1, 8, 8), 3, 3, 2),
    "mau-recall": (
        "mau",
        {"num_layers": 2, "hidden": 8, "filter_size": 3, "tau": 2, "sr_size": 2, "cell_mode": "residual",
         "model_mode": "recall"},
        (1, 8, 8), 3, 3, 2,
    ),
}


# ----------------------------------------------------------------------------- ours (no reference needed)


def build_ours(case: str) -> torch.nn.Module:
    """Our model of ``case`` with seeded weights; every parameter (norms included) perturbed."""
    kind, over, shape, t, s, _ = CASES[case]
    cls = PhyDNet if kind == "phydnet" else MAU
    torch.manual_seed(0)
    model = cls(cls.Config(**over), vpbench.FrameShape(*shape), t, s)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return model


def inputs(case: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The clip ``[B, T+S, C, H, W]`` and, for MAU, the fixed sampling mask of the future inputs ``[B, S-1]``."""
    _, _, shape, t, s, b = CASES[case]
    gen = torch.Generator().manual_seed(2)
    clip = torch.rand(b, t + s, *shape, generator=gen)
    future_mask = (torch.rand(b, s - 1, generator=gen) < 0.5).float()
    return clip, future_mask


def weight_sum(model: torch.nn.Module) -> torch.Tensor:
    """A float64 fingerprint of the seeded weights (fails loudly if initialisation ever changes)."""
    return torch.stack([p.detach().double().abs().sum() for p in model.parameters()]).sum()


def _grads(model: torch.nn.Module, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    loss.backward()  # type: ignore[no-untyped-call]
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def grad_samples(grads: dict[str, torch.Tensor], k: int = 8) -> torch.Tensor:
    """``[P, k]``: ``k`` fixed entries of each of the ``P`` weights' gradients (seeded positions, our
    parameter order): what a few-KB fixture can hold."""
    rows = []
    for i, g in enumerate(grads.values()):
        idx = torch.randint(g.numel(), (k,), generator=torch.Generator().manual_seed(3 + i))
        rows.append(g.flatten()[idx])
    return torch.stack(rows)


def ours_outputs(case: str) -> dict[str, Any]:
    """Everything compared for ``case``, computed by our code."""
    kind, _, _, t, s, b = CASES[case]
    model = build_ours(case)
    clip, future_mask = inputs(case)
    out: dict[str, Any] = {"weight_sum": weight_sum(model)}
    with torch.no_grad():
        out["predict"] = model.predict(clip[:, :t], s)
    if isinstance(model, PhyDNet):
        with torch.no_grad():
            out["loss_free"] = model.loss_with(clip, teacher=False)[0]
        loss = model.loss_with(clip, teacher=True)[0]
        out["loss_teacher"] = loss.detach()
        out["grads_teacher"] = _grads(model, loss)
    else:
        assert isinstance(model, MAU)
        with torch.no_grad():
            free = torch.cat([torch.ones(b, t - 1), torch.zeros(b, s - 1)], dim=1)
            out["rollout"] = model.rollout(to_patches(clip, 1), free, t + s - 1)
        mask = torch.cat([torch.ones(b, t - 1), future_mask], dim=1)
        loss = model.loss_with(clip, mask)
        out["loss_sampled"] = loss.detach()
        out["grads_sampled"] = _grads(model, loss)
    return out


# ----------------------------------------------------------------------------- the reference


def _source(openstl: Path, rel: str, rev: str | None) -> str:
    if rev is None and (openstl / rel).is_file():
        return (openstl / rel).read_text()
    return subprocess.run(
        ["git", "-C", str(openstl), "show", f"{rev or 'HEAD'}:{rel}"], check=True, capture_output=True, text=True
    ).stdout


def _commit(openstl: Path, rev: str | None) -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(openstl), "rev-parse", rev or "HEAD"], check=True, capture_output=True, text=True
        ).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"


def load_reference(openstl: Path, rev: str | None = None) -> types.SimpleNamespace:
    """Exec OpenSTL's four model files in a stand-in ``openstl`` package (no install, no timm)."""
    pkg = types.ModuleType("openstl")
    mods = types.ModuleType("openstl.modules")
    pkg.modules = mods  # type: ignore[attr-defined]
    sys.modules.update({"openstl": pkg, "openstl.modules": mods})
    ns: dict[str, types.ModuleType] = {}
    for name, rel in [
        ("phydnet_modules", "openstl/modules/phydnet_modules.py"),
        ("mau_modules", "openstl/modules/mau_modules.py"),
        ("phydnet_model", "openstl/models/phydnet_model.py"),
        ("mau_model", "openstl/models/mau_model.py"),
    ]:
        mod = types.ModuleType(f"openstl_ref.{name}")
        exec(compile(_source(openstl, rel, rev), rel, "exec"), mod.__dict__)  # noqa: S102 - the reference code, read-only
        ns[name] = mod
        if name.endswith("modules"):
            for attr, value in vars(mod).items():
                if isinstance(value, type):
                    setattr(mods, attr, value)
    return types.SimpleNamespace(**ns)


# ours -> reference parameter names
_PHYDNET_MAP = [
    ("encoder.net.0.", "encoder.encoder_E.c1.main."),
    ("encoder.net.1.", "encoder.encoder_E.c2.main."),
    ("encoder.net.2.", "encoder.encoder_E.c3.main."),
    ("enc_phys.0.", "encoder.encoder_Ep.c1.main."),
    ("enc_phys.1.", "encoder.encoder_Ep.c2.main."),
    ("enc_res.0.", "encoder.encoder_Er.c1.main."),
    ("enc_res.1.", "encoder.encoder_Er.c2.main."),
    ("dec_phys.0.", "encoder.decoder_Dp.upc1.main."),
    ("dec_phys.1.", "encoder.decoder_Dp.upc2.main."),
    ("dec_res.0.", "encoder.decoder_Dr.upc1.main."),
    ("dec_res.1.", "encoder.decoder_Dr.upc2.main."),
    ("decoder.net.0.", "encoder.decoder_D.upc1.main."),
    ("decoder.net.1.", "encoder.decoder_D.upc2.main."),
    ("decoder.net.2.", "encoder.decoder_D.upc3."),
    ("phycell.conv_phi.", "phycell.cell_list.0.F.conv1."),
    ("phycell.norm_phi.", "phycell.cell_list.0.F.bn1."),
    ("phycell.out_phi.", "phycell.cell_list.0.F.conv2."),
    ("phycell.gate.", "phycell.cell_list.0.convgate."),
    ("convlstm.", "convcell.cell_list."),
]
_MAU_MAP = (
    [("readout.", "srcnn.0."), ("cells.", "cell_list."), ("encoders.0.0.", "encoders.0.encoder_t_conv-1.")]
    + [(f"encoders.{i}.0.", f"encoders.{i}.encoder_t{i - 1}.") for i in range(1, 8)]
    + [(f"decoders.{i}.0.", f"decoders.{i}.c_decoder{i}.") for i in range(8)]
)


def _ref_name(ours: str, table: list[tuple[str, str]]) -> str:
    for a, b in table:
        if ours.startswith(a):
            return b + ours[len(a):]
    return ours  # encoders.*, decoders.*, cells' inner names are the same


def copy_weights(ours: torch.nn.Module, ref: torch.nn.Module, table: list[tuple[str, str]]) -> None:
    """Copy every parameter of ``ours`` into ``ref``; each must land on a tensor of the same shape."""
    ref_params = dict(ref.named_parameters())
    used = set()
    with torch.no_grad():
        for name, p in ours.named_parameters():
            target = ref_params[_ref_name(name, table)]
            assert target.shape == p.shape, (name, target.shape, p.shape)
            target.copy_(p)
            used.add(_ref_name(name, table))
    unused = sorted(set(ref_params) - used)
    print(f"  reference parameters with no counterpart (never used in its forward): {unused or 'none'}")


def reference_outputs(case: str, ref: types.SimpleNamespace) -> dict[str, Any]:
    kind, over, shape, t, s, b = CASES[case]
    ours = build_ours(case)
    clip, future_mask = inputs(case)
    c, h, w = shape
    out: dict[str, Any] = {}
    if kind == "phydnet":
        cfg = types.SimpleNamespace(pre_seq_length=t, aft_seq_length=s, in_shape=(t, c, h, w), patch_size=4, device="cpu")
        with contextlib.redirect_stdout(io.StringIO()):
            model = ref.phydnet_model.PhyDNet_Model(cfg)
        copy_weights(ours, model, _PHYDNET_MAP)
        constraints = torch.zeros(49, 7, 7)
        for i in range(49):
            constraints[i, i // 7, i % 7] = 1  # OpenSTL's _get_constraints
        x, y = clip[:, :t], clip[:, t:]
        preds, loss_free = model.inference(x, y, constraints, return_loss=True)
        out["predict"], out["loss_free"] = preds, loss_free
        loss = model(x, y, constraints, teacher_forcing_ratio=1.0)  # random.random() < 1.0: teacher forcing
        out["loss_teacher"] = loss.detach()
        ref_grads = _grads(model, loss)
        out["grads_teacher"] = {n: ref_grads[_ref_name(n, _PHYDNET_MAP)] for n, _ in ours.named_parameters()}
    else:
        cfg = types.SimpleNamespace(
            in_shape=(t, c, h, w), patch_size=1, tau=over["tau"], cell_mode=over.get("cell_mode", "normal"),
            model_mode=over.get("model_mode", "normal"), sr_size=over["sr_size"], filter_size=over["filter_size"],
            stride=1, total_length=t + s, pre_seq_length=t, device="cpu",
        )
        model = ref.mau_model.MAU_Model(over["num_layers"], [over["hidden"]] * over["num_layers"], cfg)
        copy_weights(ours, model, _MAU_MAP)
        ims = clip.permute(0, 1, 3, 4, 2).contiguous()  # [B, T+S, H, W, C], as OpenSTL's method feeds it
        zeros = torch.zeros(b, s - 1, h, w, c)
        with torch.no_grad():
            frames, _ = model(ims, zeros, return_loss=False)
        out["rollout"] = frames
        out["predict"] = frames[:, -s:].clamp(0, 1)  # our predict clamps to the VideoModel range
        flags = future_mask[:, :, None, None, None].expand(b, s - 1, h, w, c).contiguous()
        _, loss = model(ims, flags)
        out["loss_sampled"] = loss.detach()
        ref_grads = _grads(model, loss)
        out["grads_sampled"] = {n: ref_grads[_ref_name(n, _MAU_MAP)] for n, _ in ours.named_parameters()}
    return out


# ----------------------------------------------------------------------------- comparison


def max_abs_diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    """Per compared quantity: the max abs difference (gradients: over all weights)."""
    out = {}
    for key in b:
        if key == "weight_sum":
            continue
        if isinstance(b[key], dict):
            out[key] = max(float((a[key][n] - b[key][n]).abs().max()) for n in b[key])
        else:
            out[key] = float((a[key] - b[key]).abs().max())
    return out


def compact(outputs: dict[str, Any]) -> dict[str, Any]:
    """The outputs as stored in a fixture: gradients reduced to :func:`grad_samples`."""
    return {k: grad_samples(v) if isinstance(v, dict) else v for k, v in outputs.items()}


def _fixture_path(case: str) -> Path:
    return FIXTURES / f"{case}.pt"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("openstl", nargs="?", type=Path, help="OpenSTL checkout or bare git mirror")
    parser.add_argument("--rev", help="git revision of the reference (default: the checkout's files, else HEAD)")
    parser.add_argument("--dry-run", action="store_true", help="compare with the reference, write no fixtures")
    parser.add_argument("--check", action="store_true", help="compare our outputs with the committed fixtures only")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.check:
        for case in CASES:
            fixture = torch.load(_fixture_path(case), weights_only=True)
            diffs = max_abs_diff(compact(ours_outputs(case)), fixture["reference"])
            print(f"{case:<11} max abs diff vs fixture: " + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
        return 0
    if args.openstl is None:
        parser.error("give the OpenSTL source (checkout or git mirror), or --check")
    ref = load_reference(args.openstl, args.rev)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    commit = _commit(args.openstl, args.rev)
    worst = 0.0
    for case in CASES:
        print(f"{case}:")
        reference = reference_outputs(case, ref)
        ours = ours_outputs(case)
        diffs = max_abs_diff(ours, reference)
        worst = max(worst, *diffs.values())
        print("  losses (ours / OpenSTL): " + ", ".join(
            f"{k} {float(ours[k]):.6f} / {float(reference[k]):.6f}" for k in reference if k.startswith("loss")))
        print(f"  max abs diff ours vs OpenSTL {commit[:12]}: " + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
        if args.dry_run:
            continue
        fixture = {"reference": compact(reference), "weight_sum": ours["weight_sum"]}
        path = _fixture_path(case)
        tmp = path.with_suffix(".tmp")
        torch.save(fixture, tmp)
        tmp.replace(path)
        print(f"  wrote {path.relative_to(ROOT)} ({path.stat().st_size:,} bytes)")
    print(f"worst max abs difference: {worst:.2e} ({'PASS' if worst <= 1e-5 else 'FAIL'} at 1e-5); reference commit {commit}")
    return 0 if worst <= 1e-5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
