"""HR-VQVAE (paper Section 4.1): a stride-4 autoencoder and the hierarchical residual quantiser.

The quantiser is a tree of codebooks. Layer i (1-based) holds ``M^(i-1)`` codebooks of ``M``
codewords, stored as one parameter ``[M^(i-1), M, D]``. At every latent position the global
path index ``g_{i-1}`` of the codeword chosen at layer i-1 selects the codebook used at
layer i (``g_0 = 0``); layer i quantises the residual ``ξ^{i-1}`` left by the layers above
(Eq. 3), and the decoder receives the sum ``e_C = Σ_i e^i``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Encoder", "Decoder", "HRQuantizer", "Quantized", "kmeans"]


class ResBlock(nn.Module):
    """ReLU -> 3x3 conv C->Cr -> ReLU -> 1x1 conv Cr->C, plus the skip."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class Encoder(nn.Module):
    """``[N, Cin, H, W] -> [N, D, H/s, W/s]`` (VQ-VAE-2 bottom encoder; s = 4 in the paper).

    Extra stride-2 convs (C->C) are inserted for s = 8 or 16, used only by tiny smoke configs.
    """

    def __init__(self, cin: int, hidden: int, res_hidden: int, res_blocks: int, dim: int, stride: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(cin, hidden // 2, 4, 2, 1), nn.ReLU()]
        layers += [nn.Conv2d(hidden // 2, hidden, 4, 2, 1), nn.ReLU()]
        for _ in range(int(math.log2(stride)) - 2):
            layers += [nn.Conv2d(hidden, hidden, 4, 2, 1), nn.ReLU()]
        layers += [nn.Conv2d(hidden, hidden, 3, padding=1)]
        layers += [ResBlock(hidden, res_hidden) for _ in range(res_blocks)]
        layers += [nn.ReLU()]
        self.net = nn.Sequential(*layers)
        self.to_latent = nn.Conv2d(hidden, dim, 1)  # the quantiser's input ξ^0

    def forward(self, x: Tensor) -> Tensor:
        return self.to_latent(self.net(x))


class Decoder(nn.Module):
    """``[N, D, h, w] -> [N, Cout, h*s, w*s]``, linear output (no activation)."""

    def __init__(self, cout: int, hidden: int, res_hidden: int, res_blocks: int, dim: int, stride: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(dim, hidden, 3, padding=1)]
        layers += [ResBlock(hidden, res_hidden) for _ in range(res_blocks)]
        layers += [nn.ReLU()]
        for _ in range(int(math.log2(stride)) - 2):
            layers += [nn.ConvTranspose2d(hidden, hidden, 4, 2, 1), nn.ReLU()]
        layers += [nn.ConvTranspose2d(hidden, hidden // 2, 4, 2, 1), nn.ReLU()]
        layers += [nn.ConvTranspose2d(hidden // 2, cout, 4, 2, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


@dataclass
class Quantized:
    """Output of :meth:`HRQuantizer.forward` for ``N`` latent vectors.

    Attributes:
        local: ``[N, n]`` local indices k_i in ``[0, M)``.
        paths: ``[N, n]`` global path indices g_i = g_{i-1}·M + k_i in ``[0, M^i)``.
        codes: ``[n, N, D]`` chosen codewords e^i (differentiable w.r.t. the codebooks).
        residuals: ``[n, N, D]`` the residual ξ^{i-1} each layer quantised (detached).
        loss: Σ_i ‖sg[ξ^{i-1}] − e^i‖² + β‖sg[e^i] − ξ^{i-1}‖² (Eq. 5, means over elements).
    """

    local: Tensor
    paths: Tensor
    codes: Tensor
    residuals: Tensor
    loss: Tensor

    @property
    def total(self) -> Tensor:
        """e_C = Σ_i e^i, ``[N, D]``."""
        return self.codes.sum(0)


def kmeans(x: Tensor, k: int, iters: int, generator: torch.Generator | None = None) -> Tensor:
    """Plain Lloyd k-means on ``x [N, D]`` from random distinct seeds; empty clusters keep their mean."""
    n = x.shape[0]
    if n < k:  # too few vectors: repeat them with tiny noise
        reps = x[torch.randint(n, (k - n,), generator=generator)] if n else x.new_zeros(k - n, x.shape[1])
        noise = 1e-3 * torch.randn(reps.shape, generator=generator).to(x)
        return torch.cat([x, reps + noise])
    centers = x[torch.randperm(n, generator=generator)[:k]].clone()
    for _ in range(iters):
        assign = torch.cdist(x, centers).argmin(1)
        sums = torch.zeros_like(centers).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).to(x)
        filled = counts > 0
        centers[filled] = sums[filled] / counts[filled, None]
    return centers


class HRQuantizer(nn.Module):
    """The codebook tree of n layers with branching M over D-dimensional latents.

    Codes that mean something (issue 12): a parent whose routed residual is negligible (a
    static background) gets all-zero children, so its vectors keep one stable code path
    (ties go to child 0), and its children are never re-seeded from noise. "Negligible" is
    a mean squared residual below ``min_energy`` times the variance of ξ^0 in the batch.
    Usage is an EMA of each child's share of the vectors, so the init batch and the
    training batches, whatever their sizes, are on one scale.
    """

    def __init__(
        self,
        layers: int,
        branching: int,
        dim: int,
        beta: float,
        usage_decay: float = 0.99,
        min_energy: float = 0.0,
        zero_code: bool = False,
    ) -> None:
        super().__init__()
        self.n, self.m, self.dim, self.beta, self.usage_decay = layers, branching, dim, beta, usage_decay
        self.min_energy, self.zero_code = min_energy, zero_code
        # zero_code: child 0 of every codebook below layer 1 is fixed at zero ("nothing to add")
        mask = torch.ones(branching, 1)
        if zero_code:
            mask[0] = 0.0
        self.register_buffer("zero_mask", mask, persistent=False)
        # layer i: [M^(i-1) codebooks, M codewords, D]; loss-mode codebooks are parameters
        self.codebooks = nn.ParameterList(
            [nn.Parameter(torch.randn(branching**i, branching, dim) * 0.1) for i in range(layers)]
        )
        # EMA of each child's share of the vectors (flat global index of layer i)
        for i in range(layers):
            self.register_buffer(f"usage{i}", torch.full((branching ** (i + 1),), 1.0 / branching ** (i + 1)))
        #: rows ``(layer, parent, child)`` re-seeded since the optimiser last saw them
        self.reseeded: list[tuple[int, int, int]] = []
        #: parents whose children were set to zero by :meth:`restart_dead` (negligible residual)
        self.collapsed = 0

    def usage(self, i: int) -> Tensor:
        return getattr(self, f"usage{i}")

    def book(self, i: int) -> Tensor:
        """Layer i's codebooks ``[M^(i-1), M, D]`` as used (child 0 zeroed below layer 1 with ``zero_code``)."""
        cb = self.codebooks[i]
        return cb * self.zero_mask if (self.zero_code and i > 0) else cb

    def forward(self, z: Tensor) -> Quantized:
        """Quantise ``z [N, D]`` layer by layer (Eq. 3), n·M distance evaluations per vector."""
        n_vec = z.shape[0]
        g = torch.zeros(n_vec, dtype=torch.long, device=z.device)
        res = z
        local, paths, codes, residuals, losses = [], [], [], [], []
        for i in range(self.n):
            cb = self.book(i)[g]  # [N, M, D]: the child codebook selected by the parent path
            d = (res.detach().unsqueeze(1) - cb.detach()).pow(2).sum(-1)  # [N, M]
            k = d.argmin(1)
            e = cb[torch.arange(n_vec, device=z.device), k]  # [N, D]
            # Eq. 5: codebook term + β·commitment term (means over elements)
            losses.append(F.mse_loss(e, res.detach()) + self.beta * F.mse_loss(res, e.detach()))
            residuals.append(res.detach())
            res = res - e.detach()  # ξ^i = ξ^{i-1} − sg(e^i)
            g = g * self.m + k
            local.append(k)
            paths.append(g)
            codes.append(e)
        return Quantized(
            local=torch.stack(local, 1),
            paths=torch.stack(paths, 1),
            codes=torch.stack(codes, 0),
            residuals=torch.stack(residuals, 0),
            loss=torch.stack(losses).sum(),
        )

    def lookup(self, local: Tensor, upto: int | None = None) -> Tensor:
        """Codeword sum for local indices ``[..., n] -> [..., D]`` (first ``upto`` layers only)."""
        g = torch.zeros(local.shape[:-1], dtype=torch.long, device=local.device)
        out = local.new_zeros(*local.shape[:-1], self.dim, dtype=self.codebooks[0].dtype)
        for i in range(self.n if upto is None else upto):
            k = local[..., i]
            out = out + self.book(i)[g, k]
            g = g * self.m + k
        return out

    def paths_of(self, local: Tensor, dim: int = -1) -> Tensor:
        """Global paths g_i from local indices k_i along ``dim`` (same shape)."""
        local = local.movedim(dim, -1)
        g = torch.zeros_like(local[..., 0])
        out = []
        for i in range(self.n):
            g = g * self.m + local[..., i]
            out.append(g)
        return torch.stack(out, -1).movedim(-1, dim)

    def material(self, residual: Tensor, parents: Tensor, count: int, z: Tensor) -> Tensor:
        """``[count]`` bool: parents whose routed residual energy is material (see class doc).
        A parent with no vectors in the batch is not material."""
        energy = torch.zeros(count, device=z.device).index_add_(0, parents, residual.pow(2).sum(1))
        hits = torch.bincount(parents, minlength=count).to(energy)
        scale = (z - z.mean(0)).pow(2).sum(1).mean().clamp_min(1e-12)
        return (hits > 0) & (energy / hits.clamp_min(1) >= self.min_energy * scale)

    @torch.no_grad()
    def init_from_data(self, z: Tensor, iters: int, generator: torch.Generator | None = None) -> None:
        """Data-dependent init: k-means per parent on the residuals routed to that parent;
        a parent with a negligible residual gets all-zero children."""
        res = z
        g = torch.zeros(z.shape[0], dtype=torch.long, device=z.device)
        for i in range(self.n):
            cb = self.codebooks[i]
            res_std = res.std().clamp_min(1e-4)
            material = self.material(res, g, cb.shape[0], z) if i else torch.ones(1, dtype=torch.bool)
            for p in range(cb.shape[0]):
                sel = res[g == p]
                if sel.shape[0] == 0:  # unreachable parent: small codewords around zero
                    cb[p] = torch.randn(self.m, self.dim, generator=generator).to(cb) * 1e-2 * res_std
                elif not bool(material[p]):  # static content: one stable path, child 0
                    cb[p] = 0.0
                elif self.zero_code and i > 0:
                    cb[p, 0] = 0.0
                    cb[p, 1:] = kmeans(sel, self.m - 1, iters, generator)
                else:
                    cb[p] = kmeans(sel, self.m, iters, generator)
            book = self.book(i)
            k = (res.unsqueeze(1) - book[g]).pow(2).sum(-1).argmin(1)
            res = res - book[g, k]
            g = g * self.m + k
            usage = self.usage(i)
            usage.copy_(torch.bincount(g, minlength=usage.numel()).to(usage) / g.numel())

    @torch.no_grad()
    def track_usage(self, paths: Tensor) -> None:
        """EMA of each child's share of the vectors, ``paths [N, n]``."""
        for i in range(self.n):
            usage = self.usage(i)
            share = torch.bincount(paths[:, i], minlength=usage.numel()).to(usage) / paths.shape[0]
            usage.mul_(self.usage_decay).add_(share, alpha=1 - self.usage_decay)

    @torch.no_grad()
    def restart_dead(self, q: Quantized, threshold: float, generator: torch.Generator | None = None) -> int:
        """Re-seed children with fewer than ``threshold`` EMA hits per batch (of this batch's
        size) whose parent is alive and has a material residual, from this batch's residuals
        routed to the *same* parent; returns the number re-seeded (listed in ``reseeded``).
        A live parent whose residual is negligible gets all-zero children instead."""
        restarted = 0
        n_vec = q.paths.shape[0]
        z = q.residuals[0]
        for i in range(self.n):
            usage = self.usage(i)
            hits = usage * n_vec
            count = usage.numel() // self.m
            parents = q.paths[:, i - 1] if i > 0 else torch.zeros_like(q.paths[:, 0])
            if i == 0:
                eligible = torch.ones(1, dtype=torch.bool, device=usage.device)
            else:
                alive = self.usage(i - 1) * n_vec >= threshold
                material = self.material(q.residuals[i], parents, count, z)
                eligible = alive & material
                # a live parent whose residual became negligible: all its children to zero, so
                # its vectors take one stable path (child 0) instead of codes fitted to noise
                seen = torch.bincount(parents, minlength=count) > 0
                nonzero = self.codebooks[i].detach().abs().sum((1, 2)) > 0
                for p in (alive & seen & ~material & nonzero).nonzero().flatten().tolist():
                    self.codebooks[i][p] = 0.0
                    self.reseeded += [(i, p, c) for c in range(self.m)]
                    self.collapsed += 1
            dead = (hits < threshold).view(-1, self.m) & eligible.view(-1, 1)
            if self.zero_code and i > 0:
                dead[:, 0] = False  # the fixed zero child is never re-seeded
            for p in dead.any(1).nonzero().flatten().tolist():
                pool = q.residuals[i][parents == p]
                if pool.shape[0] == 0:
                    continue
                for child in dead[p].nonzero().flatten().tolist():
                    j = int(torch.randint(pool.shape[0], (1,), generator=generator))
                    self.codebooks[i][p, child] = pool[j]
                    usage[p * self.m + child] = threshold / n_vec  # reset its statistics
                    self.reseeded.append((i, p, child))
                    restarted += 1
        return restarted

    def reset_optimizer_rows(self, opt: torch.optim.Optimizer) -> None:
        """Zero Adam's moments (and step) of the re-seeded codewords, then forget them."""
        for i, p, child in self.reseeded:
            state = opt.state.get(self.codebooks[i])
            if not state:
                continue
            for key in ("exp_avg", "exp_avg_sq"):
                if key in state:
                    state[key][p, child] = 0.0
        self.reseeded.clear()
