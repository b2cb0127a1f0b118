"""How the prior's distribution at one voxel becomes codes: per-layer greedy, exact best leaf,
or a draw over leaves with temperature, top-k and nucleus (top-p) truncation.

At a voxel the prior defines p(leaf) = p(k1) p(k2 | k1) ... p(kn | k1..kn-1) over the M^n
leaves of the codebook tree. Greedy per layer (argmax k1, then argmax k2 given it, ...) can
miss the most probable leaf: when a digit's mass is split over several k1 the background
code wins layer 1 although every digit leaf beats every background leaf. :func:`leaf_log_probs`
evaluates every head for every parent (the heads are tiny next to the trunk) and returns the
exact log p(leaf); :func:`best_leaf` takes its argmax (MAP over the path).

A picker maps trunk features ``o [B, Cp]`` to (local indices, global paths), each ``[B, n]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

if TYPE_CHECKING:
    from .prior import STPixelCNN

__all__ = ["Chooser", "Picker", "leaf_log_probs", "leaf_codes", "per_layer", "best_leaf", "leaf_sampler"]

#: maps logits ``[B, M]`` to chosen local indices ``[B]`` (one layer at a time)
Chooser = Callable[[Tensor], Tensor]
#: maps trunk features ``o [B, Cp]`` to (local ``[B, n]``, paths ``[B, n]``)
Picker = Callable[[Tensor], tuple[Tensor, Tensor]]
#: the heads' ELU (``F.elu``, or the sampler's faster equivalent)
Activation = Callable[[Tensor], Tensor]


def per_layer(prior: STPixelCNN, choose: Chooser, elu: Activation = F.elu) -> Picker:
    """k_1..k_n coarse to fine, each chosen by ``choose`` given the parent already chosen.
    ``elu``: the heads' activation (the sampler passes :func:`~vpbench_shrvq.prior.fast_elu`)."""

    def pick(o: Tensor) -> tuple[Tensor, Tensor]:
        g: Tensor | None = None
        ks, gs = [], []
        for i in range(prior.n):
            k = choose(prior.head(i, o, g, elu))
            g = k if g is None else g * prior.m + k
            ks.append(k)
            gs.append(g)
        return torch.stack(ks, 1), torch.stack(gs, 1)

    return pick


def leaf_log_probs(prior: STPixelCNN, o: Tensor, elu: Activation = F.elu) -> Tensor:
    """Exact log p(leaf) ``[B, M^n]`` for features ``o [B, Cp]``; leaf index = global path g_n."""
    b, m = o.shape[0], prior.m
    logp = prior.head(0, o, None).log_softmax(-1)  # [B, M]
    for i in range(1, prior.n):
        parents = torch.arange(m**i, device=o.device).expand(b, -1)  # every path g_{i-1}
        lg = prior.head(i, o[:, None, :].expand(-1, m**i, -1), parents, elu)  # [B, M^i, M]
        logp = (logp[:, :, None] + lg.log_softmax(-1)).reshape(b, -1)  # child path g·M + k
    return logp


def leaf_codes(leaf: Tensor, n: int, m: int) -> tuple[Tensor, Tensor]:
    """Global leaf paths ``[B]`` -> (local ``[B, n]``, paths ``[B, n]``)."""
    gs = torch.stack([leaf // m ** (n - 1 - i) for i in range(n)], 1)
    return gs % m, gs


def best_leaf(prior: STPixelCNN, elu: Activation = F.elu) -> Picker:
    """The MAP leaf argmax p(k1) p(k2|k1) ... at each voxel (exact over the M^n leaves)."""
    return lambda o: leaf_codes(leaf_log_probs(prior, o, elu).argmax(-1), prior.n, prior.m)


def leaf_sampler(
    prior: STPixelCNN, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, elu: Activation = F.elu
) -> Picker:
    """A draw from p(leaf)^(1/τ), truncated to the ``top_k`` most probable leaves (0: all) and
    to the smallest set whose mass reaches ``top_p`` (nucleus; 1: all); uses torch's RNG."""

    def pick(o: Tensor) -> tuple[Tensor, Tensor]:
        logits = leaf_log_probs(prior, o, elu) / temperature
        if 0 < top_k < logits.shape[-1]:
            kth = logits.topk(top_k, -1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if top_p < 1.0:
            sorted_lg, order = logits.sort(-1, descending=True)
            cum = sorted_lg.softmax(-1).cumsum(-1)
            drop = cum - sorted_lg.softmax(-1) >= top_p  # keep a leaf while the mass before it is < p
            logits = logits.scatter(-1, order, sorted_lg.masked_fill(drop, float("-inf")))
        leaf = torch.multinomial(logits.softmax(-1), 1)[:, 0]
        return leaf_codes(leaf, prior.n, prior.m)

    return pick
