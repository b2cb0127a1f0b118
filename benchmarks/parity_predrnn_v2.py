"""Parity of vpbench's ``predrnn-v2`` with the reference PredRNN-V2 code, and the fixtures that keep it checked.

Builds the reference model from a fetched copy of OpenSTL (``openstl/models/predrnnv2_model.py``
and ``openstl/modules/predrnnv2_modules.py``) and, when given, of the authors' repository
(thuml/predrnn-pytorch, ``core/models/predrnn_v2.py``), both read from their git mirrors
(``git show``) and executed in a private namespace; nothing is installed. Both are built with
the same tiny configuration as ours; vpbench's weights are set by a closed formula
(:func:`formula_weights`, no random generator), mapped onto the reference's parameter names and
gate order, and both models run the same clip with the same fixed sampling mask, in training
mode (outputs of all ``T+S-1`` steps and the loss ``MSE + β·L_dec``) and in test mode (ground
truth for the context, own predictions afterwards).

Two cases: reverse scheduled sampling without layer norm (the PredRNN-V2 set-up), and the
ordinary scheduled-sampling path with layer norm. The reference outputs are written to
``tests/fixtures/zoo/predrnn_v2_<case>.npz`` (a few KB each), which
``tests/test_zoo_predrnn_v2.py`` compares vpbench's model against without the reference code.

    git -C /work/.mirror/... (from the `fetch` tool: github:chengtan9907/OpenSTL, github:thuml/predrnn-pytorch)
    .venv/bin/python benchmarks/parity_predrnn_v2.py /work/.mirror/chengtan9907+OpenSTL/repo \\
        --authors /work/.mirror/thuml+predrnn-pytorch/repo            # prints max |ours - reference|
    .venv/bin/python benchmarks/parity_predrnn_v2.py MIRROR --write   # also (re)writes the fixtures
    .venv/bin/python benchmarks/parity_predrnn_v2.py --from-fixtures  # ours vs the committed fixtures only
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import types
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import numpy as np
import torch
from torch import Tensor, nn

import vpbench
from vpbench_rnn import rollout as rollout_module
from vpbench_rnn.patch import to_patches
from vpbench_rnn.predrnn_v2 import PredRNNv2

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "zoo"

#: the tiny set-up: 8×8 grey frames, patch 2 (4×4×4 patched), 2 layers of 8 channels, 3×3 filters, 3 -> 3
SHAPE = vpbench.FrameShape(1, 8, 8)
CONTEXT, HORIZON, BATCH = 3, 3, 2
BASE = {"num_layers": 2, "hidden": 8, "filter_size": 3, "patch_size": 2, "decouple_beta": 0.1}
CASES: dict[str, dict[str, Any]] = {
    "reverse": {"layer_norm": False, "sampling": "reverse"},
    "scheduled_layernorm": {"layer_norm": True, "sampling": "scheduled"},
}

# gate order: ours (g, i, f | g', i', f' | o) per conv_x, (g, i, f, o) conv_h, (g', i', f') conv_m;
# the reference's (i, f, g | i', f', g' | o), (i, f, g, o), (i', f', g'). OURS_FROM_REF[k] = reference block of our block k.
OURS_FROM_REF = {"conv_x": [2, 0, 1, 5, 3, 4, 6], "conv_h": [2, 0, 1, 3], "conv_m": [2, 0, 1]}


def formula_weights(model: nn.Module) -> None:
    """Deterministic, generator-free weights: parameter ``k`` (in ``named_parameters`` order) is
    ``s·sin(0.37·i + 1.3·k)`` over its flat index ``i`` (``s = 1.5/√fan_in`` for convolutions;
    layer-norm gains ``1 + 0.2·sin``, biases ``0.1·sin``)."""
    with torch.no_grad():
        for k, (name, p) in enumerate(model.named_parameters()):
            wave = torch.sin(0.37 * torch.arange(p.numel(), dtype=torch.float64) + 1.3 * k).view(p.shape)
            if p.ndim == 4:  # convolution [out, in, k, k]
                value = 1.5 / math.sqrt(p.shape[1] * p.shape[2] * p.shape[3]) * wave
            elif name.endswith("bias"):
                value = 0.1 * wave
            else:  # layer-norm gain [C, h, w]
                value = 1.0 + 0.2 * wave
            p.copy_(value.to(p.dtype))


def inputs() -> tuple[Tensor, Tensor]:
    """A clip ``[B, T+S, 1, 8, 8]`` of moving bright squares and the fixed mask ``[B, T+S-2]`` (1 = ground truth)."""
    total = CONTEXT + HORIZON
    clip = torch.zeros(BATCH, total, *SHAPE.as_tuple())
    for b in range(BATCH):
        for t in range(total):
            y, x = (1 + t + 2 * b) % 6, (2 + 2 * t - b) % 6
            clip[b, t, 0, y : y + 3, x : x + 2] = 0.9 - 0.1 * b
            clip[b, t, 0] += 0.05 * torch.cos(torch.arange(8.0) * (t + 1)).view(1, 8)  # a faint background
    mask = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0]])  # context positions 1..T-1, future T..T+S-2
    return clip.clamp(0, 1), mask


def ours(case: str) -> PredRNNv2:
    cfg = PredRNNv2.Config(**BASE, **CASES[case])
    model = PredRNNv2(cfg, SHAPE, CONTEXT, HORIZON)
    formula_weights(model)
    return model


def run_ours(model: PredRNNv2, clip: Tensor, mask: Tensor) -> dict[str, np.ndarray]:
    """Training mode with ``mask`` (through ``training_loss`` itself) and test mode (``rollout``)."""
    b, total = clip.shape[:2]
    if model.config.sampling == "scheduled":  # context inputs are always ground truth on this path
        mask = torch.cat([torch.ones(b, CONTEXT - 1), mask[:, CONTEXT - 1 :]], dim=1)
    with mock.patch.object(rollout_module, "sampling_mask", lambda *a: mask.clone()):
        out = model.training_loss(clip, 0)
        preds, _, _, _ = model.training_unroll(clip, 0)
    frames = to_patches(clip, model.config.patch_size)
    test_mask = torch.cat([torch.ones(b, CONTEXT - 1), torch.zeros(b, total - CONTEXT - 1)], dim=1)
    test = model.rollout(frames, test_mask, total - 1)
    return {
        "train_frames": preds.detach().numpy(),
        "train_loss": np.array(float(out.loss.detach()), dtype=np.float64),
        "train_mse": np.array(out.logs["mse"], dtype=np.float64),
        "test_frames": test.detach().numpy(),
    }


# ----------------------------------------------------------------------------- reference


def _git_show(mirror: Path, path: str) -> str:
    return subprocess.run(
        ["git", "-C", str(mirror), "show", f"HEAD:{path}"], check=True, capture_output=True, text=True
    ).stdout


def _exec(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(name)
    sys.modules[name] = module
    exec(compile(source, name, "exec"), module.__dict__)  # noqa: S102 - the reference's own source, read-only mirror
    return module


def openstl_model(mirror: Path, cfg: SimpleNamespace, layers: int, hidden: int) -> nn.Module:
    """``PredRNNv2_Model`` from OpenSTL; its only project import (``openstl.modules``) is served from the mirror."""
    for pkg in ("openstl", "openstl.modules"):
        sys.modules.setdefault(pkg, types.ModuleType(pkg))
    cells = _exec("openstl.modules.predrnnv2_modules", _git_show(mirror, "openstl/modules/predrnnv2_modules.py"))
    sys.modules["openstl.modules"].SpatioTemporalLSTMCellv2 = cells.SpatioTemporalLSTMCellv2  # type: ignore[attr-defined]
    models = _exec("openstl.models.predrnnv2_model", _git_show(mirror, "openstl/models/predrnnv2_model.py"))
    return models.PredRNNv2_Model(layers, [hidden] * layers, cfg)  # type: ignore[no-any-return]


def authors_model(mirror: Path, cfg: SimpleNamespace, layers: int, hidden: int) -> nn.Module:
    """``RNN`` of thuml/predrnn-pytorch's ``core/models/predrnn_v2.py``. Its t-SNE helper
    (matplotlib, scikit-learn) is only called with ``visual=1``; it is replaced by a function
    that raises, so it cannot be used silently."""
    for pkg in ("core", "core.layers", "core.utils"):
        sys.modules.setdefault(pkg, types.ModuleType(pkg))
    tsne = types.ModuleType("core.utils.tsne")

    def visualization(*_: object) -> None:
        raise RuntimeError("t-SNE visualisation is not available in the parity check (visual=0)")

    tsne.visualization = visualization  # type: ignore[attr-defined]
    sys.modules["core.utils.tsne"] = tsne
    _exec("core.layers.SpatioTemporalLSTMCell_v2", _git_show(mirror, "core/layers/SpatioTemporalLSTMCell_v2.py"))
    models = _exec("core.models.predrnn_v2", _git_show(mirror, "core/models/predrnn_v2.py"))
    return models.RNN(layers, [hidden] * layers, cfg)  # type: ignore[no-any-return]


def reference_config(model: PredRNNv2) -> SimpleNamespace:
    c = model.config
    total = CONTEXT + HORIZON
    return SimpleNamespace(
        in_shape=(total, *SHAPE.as_tuple()),  # OpenSTL
        img_channel=SHAPE.channels,  # authors
        img_width=SHAPE.width,
        patch_size=c.patch_size,
        filter_size=c.filter_size,
        stride=1,
        layer_norm=int(c.layer_norm),
        total_length=total,
        pre_seq_length=CONTEXT,  # OpenSTL
        input_length=CONTEXT,  # authors
        reverse_scheduled_sampling=int(c.sampling == "reverse"),
        decouple_beta=c.decouple_beta,
        device="cpu",
        visual=0,
        visual_path="",
    )


def map_weights(model: PredRNNv2, ref: nn.Module) -> None:
    """Copy vpbench's weights into the reference (gate blocks reordered, names translated)."""
    h = model.config.hidden
    target = dict(ref.named_parameters())
    done = set()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("cells."):
                _, layer, rest = name.split(".", 2)
                module, kind = rest.split(".")  # e.g. conv_x.weight, norm_x.weight
                if module == "conv_cm":
                    ref_name, value = f"cell_list.{layer}.conv_last.weight", p
                else:
                    which = module.split("_")[1]  # x, h, m, o
                    index = 0 if module.startswith("conv") else 1  # Sequential(conv, LayerNorm)
                    ref_name = f"cell_list.{layer}.conv_{which}.{index}.{kind}"
                    order = OURS_FROM_REF.get(f"conv_{which}")
                    value = p
                    if order is not None:  # ours block k = reference block order[k]; invert
                        blocks = p.split(h, dim=0)
                        ref_blocks = [blocks[order.index(j)] for j in range(len(order))]
                        value = torch.cat(ref_blocks, dim=0)
            elif name == "readout.weight":
                ref_name, value = "conv_last.weight", p
            elif name == "adapter.weight":
                ref_name, value = "adapter.weight", p
            else:
                raise KeyError(f"no reference parameter for {name}")
            target[ref_name].copy_(value)
            done.add(ref_name)
    missing = set(target) - done
    if missing:
        raise KeyError(f"reference parameters left unset: {sorted(missing)}")


def run_reference(ref: nn.Module, model: PredRNNv2, clip: Tensor, mask: Tensor, openstl: bool) -> dict[str, np.ndarray]:
    """The reference's forward on channel-last patched frames ``[B, L, h, w, Cp]`` (C = 1, so
    vpbench's (c p1 p2) and the reference's (p1 p2 c) patch layouts coincide)."""
    p = model.config.patch_size
    frames = to_patches(clip, p).permute(0, 1, 3, 4, 2).contiguous()  # [B, L, h, w, Cp]
    b, total, hh, ww, cp = frames.shape
    reverse = model.config.sampling == "reverse"
    flags = mask if reverse else mask[:, CONTEXT - 1 :]  # the non-reverse path reads future positions only
    flag = flags.view(b, -1, 1, 1, 1).expand(b, flags.shape[1], hh, ww, cp).contiguous()
    with torch.no_grad():
        train_frames, loss = ref(frames, flag)
        mse = torch.mean((train_frames - frames[:, 1:]) ** 2)
        test_flag = torch.zeros(b, total - 2 if reverse else total - CONTEXT - 1, hh, ww, cp)
        if reverse:
            test_flag[:, : CONTEXT - 1] = 1.0
        test_frames, _ = ref(frames, test_flag, **({"return_loss": False} if openstl else {}))
    back = lambda x: x.permute(0, 1, 4, 2, 3).numpy()  # noqa: E731 - [B, L, Cp, h, w]
    return {
        "train_frames": back(train_frames),
        "train_loss": np.array(float(loss), dtype=np.float64),
        "train_mse": np.array(float(mse), dtype=np.float64),
        "test_frames": back(test_frames),
    }


def max_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, float]:
    return {k: float(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)).max()) for k in a}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("openstl", nargs="?", type=Path, help="git mirror of chengtan9907/OpenSTL")
    parser.add_argument("--authors", type=Path, help="git mirror of thuml/predrnn-pytorch (second reference)")
    parser.add_argument("--write", action="store_true", help="(re)write the fixtures from OpenSTL's outputs")
    parser.add_argument("--from-fixtures", action="store_true", help="compare ours with the committed fixtures only")
    args = parser.parse_args()
    if args.openstl is None and not args.from_fixtures:
        parser.error("give the OpenSTL mirror path, or --from-fixtures")
    torch.set_grad_enabled(True)
    clip, mask = inputs()
    worst = 0.0
    for case in CASES:
        model = ours(case)
        mine = run_ours(model, clip, mask)
        if args.from_fixtures:
            with np.load(FIXTURES / f"predrnn_v2_{case}.npz", allow_pickle=False) as f:
                fixture = {k: f[k] for k in mine}
            diff = max_diff(mine, fixture)
            worst = max(worst, *diff.values())
            print(f"{case:>20} vs fixture: " + ", ".join(f"{k} {v:.2e}" for k, v in diff.items()))
            continue
        refs = {"OpenSTL": (args.openstl, openstl_model, True)}
        if args.authors:
            refs["authors"] = (args.authors, authors_model, False)
        for label, (mirror, build, is_openstl) in refs.items():
            torch.manual_seed(0)
            ref = build(mirror, reference_config(model), model.config.num_layers, model.config.hidden)
            map_weights(model, ref)
            ref.train()
            theirs = run_reference(ref, model, clip, mask, is_openstl)
            diff = max_diff(mine, theirs)
            worst = max(worst, *diff.values())
            print(f"{case:>20} vs {label:>7}: " + ", ".join(f"{k} {v:.2e}" for k, v in diff.items()))
            if args.write and is_openstl:
                FIXTURES.mkdir(parents=True, exist_ok=True)
                out = FIXTURES / f"predrnn_v2_{case}.npz"
                tmp = out.with_suffix(".tmp.npz")
                np.savez_compressed(
                    tmp,
                    clip=clip.numpy(),
                    mask=mask.numpy(),
                    **{k: v.astype(np.float32) if v.ndim else v for k, v in theirs.items()},
                )
                tmp.replace(out)
                print(f"{'':>20} wrote {out.relative_to(FIXTURES.parent.parent.parent)} ({out.stat().st_size} B)")
    print(f"max abs difference: {worst:.2e}")
    if worst > 1e-5:
        sys.exit(f"parity FAILED: {worst:.2e} > 1e-5")


if __name__ == "__main__":
    main()
