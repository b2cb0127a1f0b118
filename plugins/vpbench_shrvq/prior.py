"""ST-PixelCNN (paper Section 4.2): an autoregressive prior over the HR-VQVAE index tensors.

Tokens: at every latent voxel (f, h, w) the n local indices k_1..k_n, with global paths
g_i = g_{i-1}·M + k_i. Order: frame, then raster order within the frame, then layer
1 -> n at each voxel (coarse to fine; a child codebook depends on its parent).

* Input: x0 = Σ_i Emb_i[g_i]                              [B, Cp, F, H, W]
* Type-A masked Conv3d (kernel (2,3,3)): previous frame fully visible; in the current frame
  the row above and the left neighbour. No residual around it.  h0 = convA(x0) + P_t + P_h + P_w
* N PixelBlocks: Rp gated residual blocks (type-B masked Conv3d, which also sees the centre)
  then causal multi-head attention over the flattened (f, h, w) voxels (diagonal included,
  legal after the type-A shift), q from h, k/v from [h, h0].
* Heads: o = ELU(W ELU(h)); logits_1 = Lin_1(o); logits_i = Lin_i(ELU(o + E_i[g_{i-1}])),
  i.e. p(k_1) p(k_2 | k_1) ... at each voxel (a hierarchical softmax over the leaf).

:class:`IncrementalSampler` produces future tokens one voxel at a time with per-layer
activation buffers and attention K/V caches: the work per voxel is one voxel through the
network, and the result equals recomputing the whole network for every voxel.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .decoding import Chooser, Picker

__all__ = ["STPixelCNN", "IncrementalSampler", "fast_elu", "ReferenceIncrementalSampler", "Chooser", "Picker"]


def fast_elu(x: Tensor) -> Tensor:
    """ELU(x) = max(x, exp(min(x, 0)) − 1), for the sampler's per-voxel calls. torch's CPU
    ``expm1`` (hence ``F.elu``) is not vectorised in the builds measured here: 15x slower than
    ``exp`` on a ``[250, 48]`` tensor with one thread. Differs from ``F.elu`` by about 1e-7
    (absolute, fp32 rounding of exp(x) − 1); training and the full pass keep ``F.elu``."""
    return torch.maximum(x, x.clamp(max=0).exp_().sub_(1))


class MaskedConv3d(nn.Module):
    """Causal Conv3d with kernel (2, 3, 3): taps (t-1, ·, ·) all on; at t the row above and the
    left tap (type A), plus the centre (type B). Input is zero-padded 1 frame in front and 1
    pixel on each side, so the output has the input's size."""

    def __init__(self, cin: int, cout: int, mask_type: str) -> None:
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, (2, 3, 3))
        mask = torch.ones(2, 3, 3)
        mask[1, 1, 1 if mask_type == "A" else 2 :] = 0  # current row: nothing right of (A: at) the centre
        mask[1, 2, :] = 0  # current frame: no row below
        self.register_buffer("mask", mask, persistent=False)

    def masked_weight(self) -> Tensor:
        return self.conv.weight * self.mask

    def forward(self, x: Tensor) -> Tensor:
        return F.conv3d(F.pad(x, (1, 1, 1, 1, 1, 0)), self.masked_weight(), self.conv.bias)


class GatedBlock(nn.Module):
    """h <- h + GLU(Conv1x1x1_{Cp->2Cp}(Dropout(ELU(MaskB(ELU(h))))))."""

    def __init__(self, ch: int, dropout: float) -> None:
        super().__init__()
        self.conv = MaskedConv3d(ch, ch, "B")
        self.proj = nn.Conv3d(ch, 2 * ch, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: Tensor, elu: Callable[[Tensor], Tensor] = F.elu) -> Tensor:
        return h + F.glu(self.proj(self.drop(elu(self.conv(elu(h))))), dim=1)


class CausalAttention(nn.Module):
    """Causal multi-head attention over flattened voxels; q = Lin(LN(h)), k,v = Lin(LN([h, h0]))."""

    def __init__(self, ch: int, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.ln_q, self.ln_kv = nn.LayerNorm(ch), nn.LayerNorm(2 * ch)
        self.q, self.kv, self.out = nn.Linear(ch, dim), nn.Linear(2 * ch, 2 * dim), nn.Linear(dim, ch)
        self.drop = nn.Dropout(dropout)

    def qkv(self, h: Tensor, h0: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Tokens ``[B, L, Cp]`` -> q, k, v ``[B, heads, L, A/heads]``."""
        b, n, _ = h.shape
        q = self.q(self.ln_q(h))
        k, v = self.kv(self.ln_kv(torch.cat([h, h0], -1))).chunk(2, -1)
        return tuple(t.view(b, n, self.heads, -1).transpose(1, 2) for t in (q, k, v))  # type: ignore[return-value]

    def merge(self, h: Tensor, a: Tensor) -> Tensor:
        """h + Dropout(Lin(heads merged)); ``a [B, heads, L, dh]``."""
        b, _, n, _ = a.shape
        return h + self.drop(self.out(a.transpose(1, 2).reshape(b, n, -1)))


class STPixelCNN(nn.Module):
    """The prior. Shapes: paths ``[B, n, F, H, W]`` -> trunk features ``[B, F, H, W, Cp]``."""

    def __init__(
        self,
        layers: int,
        branching: int,
        grid: tuple[int, int],
        max_frames: int,
        channels: int,
        blocks: int,
        res_blocks: int,
        attn_dim: int,
        attn_heads: int,
        attention: str,
        window: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.n, self.m, self.grid, self.max_frames = layers, branching, grid, max_frames
        self.attention, self.window = attention, window
        cp = channels
        self.path_emb = nn.ModuleList([nn.Embedding(branching ** (i + 1), cp) for i in range(layers)])
        self.pos_t = nn.Parameter(torch.randn(max_frames, cp) * 0.02)
        self.pos_h = nn.Parameter(torch.randn(grid[0], cp) * 0.02)
        self.pos_w = nn.Parameter(torch.randn(grid[1], cp) * 0.02)
        self.conv_a = MaskedConv3d(cp, cp, "A")
        self.gated = nn.ModuleList(
            [nn.ModuleList([GatedBlock(cp, dropout) for _ in range(res_blocks)]) for _ in range(blocks)]
        )
        self.attn = nn.ModuleList([CausalAttention(cp, attn_dim, attn_heads, dropout) for _ in range(blocks)])
        self.out = nn.Linear(cp, cp)  # the 1x1x1 conv of the head
        self.heads = nn.ModuleList([nn.Linear(cp, branching) for _ in range(layers)])
        self.parent_emb = nn.ModuleList([nn.Embedding(branching ** (i + 1), cp) for i in range(layers - 1)])
        for emb in [*self.path_emb, *self.parent_emb]:
            nn.init.normal_(emb.weight, std=0.1)

    # ------------------------------------------------------------------ full (parallel) pass

    def embed(self, paths: Tensor) -> Tensor:
        """x0 = Σ_i Emb_i[g_i]: ``[B, n, F, H, W] -> [B, Cp, F, H, W]``."""
        x0 = sum(emb(paths[:, i]) for i, emb in enumerate(self.path_emb))
        return x0.permute(0, 4, 1, 2, 3)  # type: ignore[union-attr]

    def pos(self, f0: int, f1: int) -> Tensor:
        """Axial position embedding for frames f0..f1-1: ``[Cp, F, H, W]``."""
        p = self.pos_t[f0:f1, None, None] + self.pos_h[None, :, None] + self.pos_w[None, None, :]
        return p.permute(3, 0, 1, 2)

    def attend(self, attn: CausalAttention, h: Tensor, h0: Tensor, hw: int, record: list | None) -> Tensor:
        """Attention sublayer over tokens ``[B, L, Cp]`` in raster (f, h, w) order."""
        q, k, v = attn.qkv(h, h0)
        if record is not None:
            record.append((k, v))
        if self.attention == "full":
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # window: frames f-window..f-1 fully, frame f causally
            outs = []
            tri = torch.ones(hw, hw, dtype=torch.bool, device=h.device).tril()
            for f in range(q.shape[2] // hw):
                lo = max(0, f - self.window) * hw
                mask = torch.cat([tri.new_ones(hw, f * hw - lo), tri], 1)
                outs.append(
                    F.scaled_dot_product_attention(
                        q[:, :, f * hw : (f + 1) * hw], k[:, :, lo : (f + 1) * hw], v[:, :, lo : (f + 1) * hw], mask
                    )
                )
            a = torch.cat(outs, 2)
        return attn.merge(h, a)

    def trunk(self, paths: Tensor, record: dict | None = None, elu: Callable[[Tensor], Tensor] = F.elu) -> Tensor:
        """Teacher-forced features ``o [B, F, H, W, Cp]`` for paths ``[B, n, F, H, W]``.

        With ``record`` (a dict), stores what :class:`IncrementalSampler` caches: the inputs
        of every masked conv and the attention keys/values. ``elu``: the activation
        (:class:`IncrementalSampler` passes :func:`fast_elu` for its context pass).
        """
        b, _, f, hh, ww = paths.shape
        if f > self.max_frames:
            raise ValueError(f"{f} frames exceed the prior's max_frames={self.max_frames}")
        x0 = self.embed(paths)
        h0 = self.conv_a(x0) + self.pos(0, f)
        conv_inputs: list[Tensor] = [x0]
        kv: list = [] if record is not None else None  # type: ignore[assignment]
        h = h0
        tok0 = h0.flatten(2).transpose(1, 2)  # [B, L, Cp]
        for gated, attn in zip(self.gated, self.attn):
            for block in gated:
                conv_inputs.append(h)
                h = block(h, elu)
            tok = self.attend(attn, h.flatten(2).transpose(1, 2), tok0, hh * ww, kv)
            h = tok.transpose(1, 2).reshape(b, -1, f, hh, ww)
        if record is not None:
            record["conv_inputs"], record["kv"] = conv_inputs, kv
        return elu(self.out(elu(h.permute(0, 2, 3, 4, 1))))  # o = ELU(W ELU(h))

    def head(self, i: int, o: Tensor, parent: Tensor | None, elu: Callable[[Tensor], Tensor] = F.elu) -> Tensor:
        """Logits of layer i (0-based) ``[..., M]`` from features ``o [..., Cp]`` and the parent path."""
        if i == 0:
            return self.heads[0](o)
        return self.heads[i](elu(o + self.parent_emb[i - 1](parent)))

    def logits(self, paths: Tensor) -> list[Tensor]:
        """Teacher-forced logits per layer, each ``[B, F, H, W, M]`` (ground-truth parents)."""
        o = self.trunk(paths)
        return [self.head(i, o, paths[:, i - 1] if i else None) for i in range(self.n)]

    # ------------------------------------------------------------------------- sampling

    def sample_uncached(self, paths_ctx: Tensor, horizon: int, pick: Picker) -> Tensor:
        """Reference sampler: recompute the trunk over frames <= f for every voxel.

        ``paths_ctx [B, n, T, H, W]`` -> local indices of the future ``[B, n, S, H, W]``.
        """
        b, n, t, hh, ww = paths_ctx.shape
        paths = torch.cat([paths_ctx, paths_ctx.new_zeros(b, n, horizon, hh, ww)], 2)
        local = paths_ctx.new_zeros(b, n, horizon, hh, ww)
        for f in range(t, t + horizon):
            for y in range(hh):
                for x in range(ww):
                    o = self.trunk(paths[:, :, : f + 1])[:, f, y, x]
                    ks, gs = pick(o)
                    local[:, :, f - t, y, x] = ks
                    paths[:, :, f, y, x] = gs
        return local


class ReferenceIncrementalSampler:
    """The cached sampler as it was before issue 23, kept callable as the reference that
    tests/test_shrvq_sampler.py and benchmarks/shrvq_sampler_speed.py compare
    :class:`IncrementalSampler` against (same tokens, speed ratio). Do not optimise it.

    Exact cached sampling: per-layer activation buffers and K/V caches, one voxel per step.
    Each masked conv keeps its (zero-padded) input for all frames; the activation of every
    layer at voxel v depends only on voxels before v, so once the token at v-1 is set, one
    pass of voxel v through the network (a 2x3x3 patch per conv, one query per attention)
    gives exactly the teacher-forced features at v.
    """

    def __init__(self, prior: STPixelCNN) -> None:
        self.p = prior

    @torch.no_grad()
    def sample(self, paths_ctx: Tensor, horizon: int, pick: Picker) -> Tensor:
        """``paths_ctx [B, n, T, H, W]`` -> future local indices ``[B, n, S, H, W]``."""
        p = self.p
        b, n, t, hh, ww = paths_ctx.shape
        total, hw = t + horizon, hh * ww
        rec: dict = {}
        p.trunk(paths_ctx, rec)  # context frames in one parallel pass
        # padded conv-input buffers [B, C, 1 + F, H + 2, W + 2]; frame f sits at index f + 1
        bufs = []
        for x in rec["conv_inputs"]:
            buf = x.new_zeros(b, x.shape[1], total + 1, hh + 2, ww + 2)
            buf[:, :, 1 : t + 1, 1:-1, 1:-1] = x
            bufs.append(buf)
        kvs = []
        for k, v in rec["kv"]:
            kc = k.new_zeros(b, k.shape[1], total * hw, k.shape[3])
            vc = v.new_zeros(b, v.shape[1], total * hw, v.shape[3])
            kc[:, :, : t * hw], vc[:, :, : t * hw] = k, v
            kvs.append((kc, vc))
        convs = [p.conv_a.masked_weight().flatten(1)]
        convs += [blk.conv.masked_weight().flatten(1) for g in p.gated for blk in g]
        biases = [p.conv_a.conv.bias] + [blk.conv.conv.bias for g in p.gated for blk in g]
        projs = [(blk.proj.weight.flatten(1), blk.proj.bias) for g in p.gated for blk in g]
        local = paths_ctx.new_zeros(b, n, horizon, hh, ww)
        # per-voxel ops are tiny: on CPU, extra intra-op threads only add synchronisation cost
        threads = torch.get_num_threads()
        if paths_ctx.device.type == "cpu":
            torch.set_num_threads(1)
        try:
            self._loop(bufs, kvs, convs, biases, projs, local, t, total, pick)
        finally:
            torch.set_num_threads(threads)
        return local

    def _loop(self, bufs, kvs, convs, biases, projs, local: Tensor, t: int, total: int, pick: Picker) -> None:  # type: ignore[no-untyped-def]
        p = self.p
        hh, ww = p.grid
        for f in range(t, total):
            pos_f = p.pos_t[f]
            for y in range(hh):
                pos_fy = pos_f + p.pos_h[y]
                for x in range(ww):
                    o = self._voxel(bufs, kvs, convs, biases, projs, f, y, x, pos_fy + p.pos_w[x])
                    ks, gs = pick(o)
                    local[:, :, f - t, y, x] = ks
                    # x0 at this voxel, for the type-A conv of later voxels
                    bufs[0][:, :, f + 1, y + 1, x + 1] = sum(e(gs[:, i]) for i, e in enumerate(p.path_emb))

    def _voxel(self, bufs, kvs, convs, biases, projs, f: int, y: int, x: int, pos: Tensor) -> Tensor:  # type: ignore[no-untyped-def]
        p = self.p
        b = bufs[0].shape[0]
        hw = p.grid[0] * p.grid[1]
        idx = f * hw + y * p.grid[1] + x

        def patch(buf: Tensor) -> Tensor:  # [B, C*2*3*3], the receptive field of voxel (f, y, x)
            return buf[:, :, f : f + 2, y : y + 3, x : x + 3].reshape(b, -1)

        h0 = F.linear(patch(bufs[0]), convs[0], biases[0]) + pos  # [B, Cp]
        h = h0
        j = 0
        for a_i, (gated, attn) in enumerate(zip(p.gated, p.attn)):
            for _ in gated:
                j += 1
                bufs[j][:, :, f + 1, y + 1, x + 1] = h
                c = F.elu(F.linear(F.elu(patch(bufs[j])), convs[j], biases[j]))
                h = h + F.glu(F.linear(c, *projs[j - 1]), dim=-1)
            kc, vc = kvs[a_i]
            q, k, v = attn.qkv(h[:, None], h0[:, None])  # [B, heads, 1, dh]
            kc[:, :, idx : idx + 1], vc[:, :, idx : idx + 1] = k, v
            lo = max(0, f - p.window) * hw if p.attention == "window" else 0
            a = F.scaled_dot_product_attention(q, kc[:, :, lo : idx + 1], vc[:, :, lo : idx + 1])
            h = attn.merge(h[:, None], a)[:, 0]
        return F.elu(p.out(F.elu(h)))


class IncrementalSampler:
    """Exact cached sampling, one voxel per step, laid out so that a step does little work.

    The result equals recomputing the whole network for every voxel (tests/test_shrvq.py) and
    gives the tokens of :class:`ReferenceIncrementalSampler` (tests/test_shrvq_sampler.py).

    * Layout: every masked conv keeps its input channels-last, ``[B, 1 + F, H + 2, W + 2, C]``
      (zero padding: one frame in front, one voxel around), and the gated convs keep ELU(h)
      rather than h, so the ELU runs once per voxel instead of once per tap that reads it.
    * The masked 2x3x3 conv of voxel (f, y, x) is split by taps:
          conv(f, y, x) = b + Σ_{3x3} W_prev·a[f-1] + Σ_{3} W_up·a[f, y-1] + W_left·a[f, y, x-1] (+ W_c·a[f, y, x])
      The first term is final once frame f-1 is: one conv2d per frame for all H·W voxels
      (with the bias and the position embedding P_t + P_h + P_w of conv A folded in). The
      second is final once row y-1 is: one matmul per row over contiguous windows of 3·C.
      Only the left tap (type A) or left + centre taps (type B), 2·C contiguous values, are
      per voxel.
    * Attention over the cache, in fp32: keys cached transposed, ``[B·heads, dh, L]``, so that
      q·K reads each head's keys as dh contiguous rows; values ``[B·heads, L, dh]``, so that
      softmax·V reads them as one contiguous block and a new value is one contiguous write.
      Both preallocated for all frames. The 1/√dh scale is folded into W_q once.
    * Per voxel, functional calls on weights fetched once (no module dispatch), and views of
      the current row of every buffer made once per row.
    """

    def __init__(self, prior: STPixelCNN) -> None:
        self.p = prior

    @torch.no_grad()
    def sample(self, paths_ctx: Tensor, horizon: int, pick: Picker) -> Tensor:
        """``paths_ctx [B, n, T, H, W]`` -> future local indices ``[B, n, S, H, W]``."""
        # per-voxel ops are small: on CPU, extra intra-op threads only add synchronisation cost
        threads = torch.get_num_threads()
        if paths_ctx.device.type == "cpu":
            torch.set_num_threads(1)
        try:
            return self._sample(paths_ctx, horizon, pick)
        finally:
            torch.set_num_threads(threads)

    def _sample(self, paths_ctx: Tensor, horizon: int, pick: Picker) -> Tensor:
        p = self.p
        b, n, t, hh, ww = paths_ctx.shape
        total, hw = t + horizon, hh * ww
        rec: dict = {}
        p.trunk(paths_ctx, rec, fast_elu)  # context frames in one parallel pass
        convs = [p.conv_a] + [blk.conv for g in p.gated for blk in g]
        acts: list[Tensor] = []  # conv inputs, channels-last and padded; frame f at index f + 1
        w_prev, w_up, w_lc = [], [], []
        for j, (x, conv) in enumerate(zip(rec["conv_inputs"], convs)):
            c = x.shape[1]
            a = x.new_zeros(b, total + 1, hh + 2, ww + 2, c)
            a[:, 1 : t + 1, 1:-1, 1:-1] = (x if j == 0 else fast_elu(x)).permute(0, 2, 3, 4, 1)
            acts.append(a)
            w = conv.masked_weight()  # [Co, Ci, 2, 3, 3]
            w_prev.append(w[:, :, 0].contiguous())  # [Co, Ci, 3, 3]: frame f-1
            w_up.append(w[:, :, 1, 0].transpose(1, 2).reshape(w.shape[0], 3 * c))  # row y-1, (tap, channel)
            taps = 1 if j == 0 else 2  # left (A) or left + centre (B)
            w_lc.append(w[:, :, 1, 1, :taps].transpose(1, 2).reshape(w.shape[0], taps * c))
        caches = []
        for (k, v), attn in zip(rec["kv"], p.attn):  # [B, heads, t·hw, dh]
            heads, dh = k.shape[1], k.shape[3]
            kt = k.new_zeros(b * heads, dh, total * hw)  # keys, transposed
            vc = v.new_zeros(b * heads, total * hw, dh)
            kt[..., : t * hw] = k.transpose(2, 3).flatten(0, 1)
            vc[:, : t * hw] = v.flatten(0, 1)
            scale = dh**-0.5
            w = (
                attn.ln_q.weight, attn.ln_q.bias, attn.ln_q.eps, attn.q.weight * scale, attn.q.bias * scale,
                attn.ln_kv.weight, attn.ln_kv.bias, attn.ln_kv.eps, attn.kv.weight, attn.kv.bias,
                attn.out.weight, attn.out.bias,
            )  # fmt: skip
            caches.append((kt, vc, heads, w))
        self._w_lc, self._caches = w_lc, caches  # read by _voxel
        self._projs = [(blk.proj.weight.flatten(1), blk.proj.bias) for g in p.gated for blk in g]
        self._blocks = [len(g) for g in p.gated]
        local = paths_ctx.new_zeros(b, n, horizon, hh, ww)
        for f in range(t, total):
            # prev-frame taps (+ bias; + position embedding for conv A) for all voxels: [B, H, W, Co]
            base = [
                F.conv2d(a[:, f].permute(0, 3, 1, 2), wp, conv.conv.bias).permute(0, 2, 3, 1)
                for a, wp, conv in zip(acts, w_prev, convs)
            ]
            base[0] = base[0] + p.pos(f, f + 1)[:, 0].permute(1, 2, 0)
            lo = max(0, f - p.window) * hw if p.attention == "window" else 0
            for y in range(hh):
                rows = [bs[:, y] for bs in base]  # [B, W, Co]
                if y:  # + row-above taps (padded row index y is row y-1), windows of 3·C contiguous values
                    rows = [
                        r + F.linear(a[:, f + 1, y].flatten(1).unfold(1, 3 * a.shape[-1], a.shape[-1]), wu)
                        for r, a, wu in zip(rows, acts, w_up)
                    ]
                cur = [a[:, f + 1, y + 1] for a in acts]  # this row of every buffer, [B, W + 2, C]
                for x in range(ww):
                    o = self._voxel(cur, rows, x, lo, f * hw + y * ww + x)
                    ks, gs = pick(o)
                    local[:, :, f - t, y, x] = ks
                    # x0 at this voxel, for the type-A conv of later voxels
                    cur[0][:, x + 1] = sum(e(gs[:, i]) for i, e in enumerate(p.path_emb))
        return local

    def _voxel(self, cur: list[Tensor], rows: list[Tensor], x: int, lo: int, idx: int) -> Tensor:
        """Features ``o [B, Cp]`` of the voxel at column ``x`` of the current row, flat index ``idx``."""
        p, w_lc = self.p, self._w_lc
        h0 = torch.addmm(rows[0][:, x], cur[0][:, x], w_lc[0].t())  # [B, Cp]
        h = h0
        j = 0
        for nb, (kt, vc, heads, w) in zip(self._blocks, self._caches):
            for _ in range(nb):
                j += 1
                cur[j][:, x + 1] = fast_elu(h)
                lc = cur[j][:, x : x + 2].flatten(1)  # left, centre: [B, 2·Cp]
                c = fast_elu(torch.addmm(rows[j][:, x], lc, w_lc[j].t()))
                h = h + F.glu(F.linear(c, *self._projs[j - 1]), dim=-1)
            bsz = h.shape[0]
            q = F.linear(F.layer_norm(h, h.shape[-1:], w[0], w[1], w[2]), w[3], w[4]).view(bsz * heads, 1, -1)
            hx = torch.cat([h, h0], -1)
            k, v = F.linear(F.layer_norm(hx, hx.shape[-1:], w[5], w[6], w[7]), w[8], w[9]).view(bsz, 2, heads, -1).unbind(1)
            kt[..., idx].view(bsz, heads, -1).copy_(k)  # straight from the strided k, no temporary
            vc[:, idx].view(bsz, heads, -1).copy_(v)
            s = torch.bmm(q, kt[..., lo : idx + 1]).softmax(-1)  # [B·heads, 1, L]
            a = torch.bmm(s, vc[:, lo : idx + 1])  # [B·heads, 1, dh]
            h = h + F.linear(a.view(bsz, -1), w[10], w[11])
        return fast_elu(F.linear(fast_elu(h), p.out.weight, p.out.bias))
