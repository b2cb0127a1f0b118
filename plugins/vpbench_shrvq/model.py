"""S-HR-VQVAE: HR-VQVAE frame codes + an ST-PixelCNN prior, trained disjointly or jointly.

Paper: Adiban, Stefanov, Siniscalchi, Salvi, "S-HR-VQVAE: Sequential Hierarchical Residual
Learning Vector Quantized Variational Autoencoder for Video Prediction" (arXiv 2307.06701).

Stages and the parameters each one trains:

* ``autoencoder`` (Eq. 4-5): encoder, codebook tree and decoder on single frames; codebooks
  are initialised per parent by k-means on the first batch (``on_start``) and dead children
  are re-seeded from residuals routed to the same parent (``after_step``). Does not select.
* ``prior`` (Eq. 7): the ST-PixelCNN only, teacher-forced on the frozen HR-VQVAE indices.
* ``joint`` (Eq. 9, ``training=joint`` only): ST-PixelCNN and decoder; loss
  L_p + λ·‖x_future − D(ê_C)‖²₂, L_p the CE of Eq. 7 (normalised by 1/(H×W): a mean over the
  latent positions, not a sum) and the squared norm summed over a frame's pixels; ê_C as
  ``joint_codes`` says. Encoder and codebooks stay frozen so that the CE targets are stationary.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

import vpbench
from vpbench.errors import ConfigError
from vpbench.fsutil import atomic_path

from .hrvq import Decoder, Encoder, HRQuantizer
from .decoding import Picker, best_leaf, leaf_sampler, per_layer
from .prior import IncrementalSampler, ReferenceIncrementalSampler, STPixelCNN, fast_elu
from .usage import codebook_usage

__all__ = ["SHRVQVAE"]

#: frames per call of the encoder / decoder when coding whole clips (``encode_indices``,
#: ``decode_indices``): at the evaluation batch of 250 clips the activations of 2,500 frames at
#: once (1.3 GB for the decoder's first layer at 64x64) stream from memory; 256 frames at a
#: time were 1.7x (encode) and 1.3x (decode) faster on the 2-core CPU, with identical outputs
#: (the convolutions are per frame; benchmarks/shrvq_sampler_floor.py times both ways).
FRAME_CHUNK = 256


class SHRVQVAE(vpbench.VideoModel):
    """HR-VQVAE (stride 4, codebook tree of n layers x branching M) + ST-PixelCNN prior."""

    #: with ``model.sampling=sample`` (the default) each prediction draws its future from the
    #: prior; greedy and best-leaf decoding are deterministic (set per instance in ``__init__``)
    stochastic = True

    class Config(vpbench.ComponentConfig):
        training: Literal["disjoint", "joint"] = Field("disjoint", description="disjoint (Eq. 4 then Eq. 7) or joint (adds Eq. 9)")
        # HR-VQVAE
        layers: int = Field(3, ge=1, description="hierarchy layers n of the codebook tree")
        branching: int = Field(4, ge=2, description="codewords M per codebook; layer i has M^(i-1) codebooks")
        latent_dim: int = Field(4, ge=1, description="latent channels D")
        latent_size: int | None = Field(None, ge=1, description="expected latent grid side (checked against frame/stride); null: frame/stride")
        stride: Literal[4, 8, 16] = Field(4, description="encoder downsampling; 4 as in the paper, 8/16 only for smoke tests")
        hidden: int = Field(64, ge=2, description="autoencoder width C (first conv has C/2)")
        res_hidden: int = Field(32, ge=1, description="residual-block inner width")
        res_blocks: int = Field(2, ge=0, description="residual blocks in encoder and decoder")
        beta: float = Field(0.25, ge=0, description="commitment weight β of Eq. 4-5 (all layers)")
        init_iters: int = Field(10, ge=0, description="k-means iterations of the per-parent data-dependent init")
        init_vectors: int = Field(20000, ge=1, description="latent vectors used by the data-dependent init")
        init_after: int = Field(0, ge=0, description="autoencoder steps before the k-means init (0: on the first batch)")
        restart_every: int = Field(50, ge=0, description="steps between dead-code restarts (0: never)")
        dead_threshold: float = Field(1.0, ge=0, description="EMA hits per batch below which a child is dead")
        restart_min_energy: float = Field(
            0.05, ge=0, description="a parent's mean squared residual, over Var(ξ^0), below which its children are left alone"
        )
        zero_code: bool = Field(True, description="child 0 of every codebook below layer 1 is a fixed zero codeword")
        recon_loss: Literal["mse", "range"] = Field(
            "mse",
            description="decoder loss: mse on the raw output, or range: the error left after clamping the output to "
            "the data range [0, 1], as predictions are clamped (an output below 0 on a black pixel is no error)",
        )
        ae_frames_per_clip: int = Field(0, ge=0, description="random frames per clip in the autoencoder stage (0: all)")
        # ST-PixelCNN
        prior_channels: int = Field(68, ge=1, description="trunk width Cp")
        prior_blocks: int = Field(4, ge=1, description="PixelBlocks N (each: gated blocks + attention)")
        prior_res_blocks: int = Field(2, ge=1, description="gated residual blocks Rp per PixelBlock")
        attn_dim: int = Field(64, ge=1, description="attention width A")
        attn_heads: int = Field(4, ge=1, description="attention heads (A must divide evenly)")
        attention: Literal["full", "window"] = Field("full", description="full causal 3D attention, or current + `attn_window` past frames")
        attn_window: int = Field(3, ge=0, description="past frames visible to attention in window mode")
        dropout: float = Field(0.1, ge=0, lt=1, description="dropout in the prior")
        max_frames: int = Field(20, ge=1, description="F_max of the time position table; context + horizon must fit")
        prior_loss_frames: Literal["all", "future"] = Field("future", description="CE over the future frames only (Eq. 7) or frames 1..F-1 (all)")
        # training
        lr: float = Field(3e-4, gt=0, description="Adam learning rate of every stage (paper: 3e-4)")
        ae_fraction: float = Field(0.3, gt=0, lt=1, description="share of the training steps (train.max_steps, or those train.budget buys) for the autoencoder stage")
        joint_fraction: float = Field(0.3, ge=0, lt=1, description="share for the joint stage (training=joint); the prior stage gets the rest")
        joint_lambda: float = Field(
            0.11, ge=0, description="λ of Eq. 9: weight of a frame's summed squared error against Eq. 7's CE, a mean over latent positions"
        )
        joint_codes: Literal["free", "teacher"] = Field(
            "free",
            description="joint stage decoder input: the prior's free-running predicted codes (as the paper says) "
            "or straight-through codes of the teacher-forced logits",
        )
        # prediction
        sampling: Literal["greedy", "best-leaf", "sample"] = Field(
            "sample",
            description="greedy: argmax per layer; best-leaf: exact MAP leaf argmax p(k1)p(k2|k1)...; sample: draw a leaf",
        )
        temperature: float = Field(1.0, gt=0, description="leaf temperature τ (sampling=sample): p(leaf)^(1/τ)")
        top_k: int = Field(0, ge=0, description="sampling=sample: draw among the k most probable leaves (0: all)")
        top_p: float = Field(0.8, gt=0, le=1, description="sampling=sample: nucleus mass (1: all leaves)")
        cached_sampling: bool = Field(True, description="incremental cached sampler (exact); false recomputes everything")
        best_of: int = Field(1, ge=1, description="sampling=sample: draw this many futures per clip and keep the best by `best_of_by`")
        best_of_by: Literal["likelihood", "mass"] = Field(
            "mass",
            description="best-of-N criterion, from the context only: the prior's log-likelihood of the drawn codes, "
            "or how well the predicted frames keep the last context frame's pixel mass",
        )

    config: Config

    def __init__(self, config: Config, frame_shape: vpbench.FrameShape, context: int, horizon: int) -> None:
        super().__init__(config, frame_shape, context, horizon)
        cfg = config
        self.stochastic = cfg.sampling == "sample"
        c, h, w = frame_shape.as_tuple()
        s = cfg.stride
        if h % s or w % s:
            raise ConfigError(f"frame {h}x{w} is not divisible by model.stride={s}; use frames whose sides are multiples of {s}")
        gh, gw = h // s, w // s
        if cfg.latent_size is not None and (gh, gw) != (cfg.latent_size, cfg.latent_size):
            raise ConfigError(
                f"latent grid {cfg.latent_size}x{cfg.latent_size} does not fit frame {h}x{w} with stride {s} "
                f"(it gives {gh}x{gw}); set model.latent_size={gh if gh == gw else 'null'} or use another config"
            )
        if context + horizon > cfg.max_frames:
            raise ConfigError(f"context {context} + horizon {horizon} exceeds model.max_frames={cfg.max_frames}; raise it")
        if cfg.attn_dim % cfg.attn_heads:
            raise ConfigError(f"model.attn_dim={cfg.attn_dim} is not divisible by model.attn_heads={cfg.attn_heads}")
        if cfg.best_of > 1 and cfg.sampling != "sample":
            raise ConfigError(f"model.best_of={cfg.best_of} needs model.sampling=sample ({cfg.sampling} draws one future); set model.best_of=1")
        if cfg.training == "joint" and cfg.ae_fraction + cfg.joint_fraction > 1:
            raise ConfigError("model.ae_fraction + model.joint_fraction must be at most 1")
        self.grid = (gh, gw)
        self.encoder = Encoder(c, cfg.hidden, cfg.res_hidden, cfg.res_blocks, cfg.latent_dim, s)
        self.quantizer = HRQuantizer(
            cfg.layers, cfg.branching, cfg.latent_dim, cfg.beta, min_energy=cfg.restart_min_energy, zero_code=cfg.zero_code
        )
        self.decoder = Decoder(c, cfg.hidden, cfg.res_hidden, cfg.res_blocks, cfg.latent_dim, s)
        self.prior = STPixelCNN(
            cfg.layers, cfg.branching, self.grid, cfg.max_frames, cfg.prior_channels, cfg.prior_blocks,
            cfg.prior_res_blocks, cfg.attn_dim, cfg.attn_heads, cfg.attention, cfg.attn_window, cfg.dropout,
        )  # fmt: skip

    # ------------------------------------------------------------------ codes <-> frames

    def latents(self, frames: Tensor) -> Tensor:
        """ξ^0 = E(x) as vectors: ``[N, C, H, W] -> [N*h*w, D]``."""
        return self.encoder(frames).permute(0, 2, 3, 1).reshape(-1, self.config.latent_dim)

    def encode_indices(self, clips: Tensor) -> Tensor:
        """Local indices of every frame: ``[B, F, C, H, W] -> [B, n, F, h, w]`` (int64)."""
        b, f = clips.shape[:2]
        frames = clips.flatten(0, 1)
        q = self.quantizer(torch.cat([self.latents(x) for x in frames.split(FRAME_CHUNK)]))
        return q.local.view(b, f, *self.grid, -1).permute(0, 4, 1, 2, 3)

    def decode_sum(self, e: Tensor) -> Tensor:
        """D(e): ``[N, h, w, D] -> [N, C, H, W]``."""
        return self.decoder(e.permute(0, 3, 1, 2))

    def decode_indices(self, local: Tensor, upto: int | None = None) -> Tensor:
        """Frames from local indices ``[B, n, F, h, w] -> [B, F, C, H, W]`` (Eq. 8)."""
        b, _, f = local.shape[:3]
        e = self.quantizer.lookup(local.permute(0, 2, 3, 4, 1), upto)  # [B, F, h, w, D]
        frames = torch.cat([self.decode_sum(x) for x in e.flatten(0, 1).split(FRAME_CHUNK)])
        return frames.view(b, f, *self.frame_shape.as_tuple())

    # -------------------------------------------------------------------------- losses

    def autoencoder_loss(self, batch: Tensor) -> vpbench.StepOutput:
        """Eq. 4: ‖x − D(e_C)‖² + ‖sg[ξ^0] − e_C‖² + β‖sg[e_C] − ξ^0‖² + Σ_i Eq. 5 (means)."""
        cfg = self.config
        if cfg.ae_frames_per_clip and cfg.ae_frames_per_clip < batch.shape[1]:
            pick = torch.rand(batch.shape[:2], device=batch.device).argsort(1)[:, : cfg.ae_frames_per_clip]
            batch = torch.gather(batch, 1, pick[:, :, None, None, None].expand(-1, -1, *batch.shape[2:]))
        x = batch.flatten(0, 1)
        z = self.latents(x)
        q = self.quantizer(z)
        e_c = q.total
        global_term = F.mse_loss(e_c, z.detach()) + cfg.beta * F.mse_loss(z, e_c.detach())
        z_q = z + (e_c - z).detach()  # straight-through from D's input to E's output
        recon = self.decode_sum(z_q.view(x.shape[0], *self.grid, -1))
        rec = self._recon_error(recon, x).pow(2).mean()
        self.quantizer.track_usage(q.paths.detach())
        loss = rec + global_term + q.loss
        return vpbench.StepOutput(loss, {"recon": rec.item(), "vq": (global_term + q.loss).item()})

    def _recon_error(self, recon: Tensor, x: Tensor) -> Tensor:
        """``recon − x``; with ``recon_loss=range`` the error of the output clamped to [0, 1]
        (what prediction returns), keeping the raw gradient wherever the clamp leaves an error:
        an output below 0 on a 0 pixel (or above 1 on a 1 pixel) costs nothing, so the decoder
        is free to keep black backgrounds below 0 instead of scattering them around it."""
        if self.config.recon_loss == "mse":
            return recon - x
        lo = (recon < 0) & (x <= 0)
        hi = (recon > 1) & (x >= 1)
        return torch.where(lo | hi, torch.zeros_like(recon), recon - x)

    def _targets(self, batch: Tensor) -> Tensor:
        """Frozen HR-VQVAE paths of all frames, ``[B, n, F, h, w]``."""
        with torch.no_grad():
            return self.quantizer.paths_of(self.encode_indices(batch), dim=1)

    def _ce(self, logits: list[Tensor], paths: Tensor) -> tuple[Tensor, list[float]]:
        """Eq. 7 summed over layers (hierarchical softmax = −log p(leaf)), mean over voxels."""
        f0 = self.context if self.config.prior_loss_frames == "future" else 1
        m = self.config.branching
        ce, acc = logits[0].new_zeros(()), []
        for i, lg in enumerate(logits):
            target = paths[:, i, f0:] % m  # local index k_i
            lg = lg[:, f0:]
            ce = ce + F.cross_entropy(lg.reshape(-1, m), target.reshape(-1))
            acc.append((lg.argmax(-1) == target).float().mean().item())
        return ce, acc

    def prior_loss(self, batch: Tensor) -> vpbench.StepOutput:
        paths = self._targets(batch)
        ce, acc = self._ce(self.prior.logits(paths), paths)
        return vpbench.StepOutput(ce, {"ce": ce.item(), **{f"acc{i + 1}": a for i, a in enumerate(acc)}})

    def joint_loss(self, batch: Tensor) -> vpbench.StepOutput:
        """Eq. 9: L_joint = L_p + λ‖x − D(ê_C)‖²₂ on the future frames.

        Reductions as the paper writes them: L_p is Eq. 7,
        −1/(H×W) Σ_j Σ_m p[j, m] log p̂[j, m], the cross-entropy averaged over the H×W latent
        positions of a frame (summed over the hierarchy's layers: −log p(leaf)); ‖·‖²₂ is the
        squared error summed over a frame's pixels. Both are per predicted frame, averaged over
        the future frames and the batch, so λ (0.11 in the paper) weighs one frame's SSE against
        one frame's mean CE per position.

        ``joint_codes=free``: ê_C are the codes the prior predicts free-running from the context
        (as at test time, with ``model.sampling``); the reconstruction term trains the decoder
        on them and the CE trains the prior. ``teacher``: ê_C is a straight-through one-hot of the
        teacher-forced logits, so the reconstruction term also reaches the prior.
        """
        cfg, t = self.config, self.context
        paths = self._targets(batch)  # encoder and quantiser frozen: no gradient
        logits = self.prior.logits(paths)
        ce, acc = self._ce(logits, paths)
        future = batch[:, t:]
        if cfg.joint_codes == "free":
            local = self.predict_indices(batch[:, :t], future.shape[1])  # [B, n, S, h, w], no gradient
            e_hat = self.quantizer.lookup(local.permute(0, 2, 3, 4, 1)).detach()
        else:
            e_hat = self._teacher_codes(logits, paths)
        pred = self.decode_sum(e_hat.flatten(0, 1)).view_as(future)
        sse = self._recon_error(pred, future).pow(2).flatten(2).sum(-1).mean()  # ‖x − D(ê_C)‖²₂ per frame
        # Eq. 9: L_joint = L_p + λ‖x − D(ê_C)‖²₂ with L_p of Eq. 7 (1/(H×W): a mean over the
        # latent positions, which `ce` already is); a sum over positions would weigh it h·w times more
        loss = ce + cfg.joint_lambda * sse
        return vpbench.StepOutput(loss, {"ce": ce.item(), "sse_frame": sse.item(), **{f"acc{i + 1}": a for i, a in enumerate(acc)}})

    def _teacher_codes(self, logits: list[Tensor], paths: Tensor) -> Tensor:
        """Straight-through codes of the teacher-forced future logits, ``[B, S, h, w, D]``."""
        t = self.context
        e_hat: Tensor | None = None
        for i, lg in enumerate(logits):
            pi = lg[:, t:].softmax(-1)  # [B, S, h, w, M]
            hard = F.one_hot(pi.argmax(-1), self.config.branching).to(pi)
            y = hard + pi - pi.detach()  # straight-through: forward hard, backward soft
            parent = paths[:, i - 1, t:] if i else torch.zeros_like(paths[:, 0, t:])
            book = self.quantizer.book(i).detach()[parent]  # [B, S, h, w, M, D], GT parent
            term = torch.einsum("...m,...md->...d", y, book)
            e_hat = term if e_hat is None else e_hat + term
        assert e_hat is not None
        return e_hat

    # -------------------------------------------------------------------------- stages

    def ae_parameters(self) -> list[nn.Parameter]:
        return [*self.encoder.parameters(), *self.quantizer.parameters(), *self.decoder.parameters()]

    def init_codebooks(self, batch: Tensor) -> None:
        """k-means per parent on a batch's latents (Stage.on_start, or after ``init_after`` steps);
        every codeword's Adam moments are reset at the next step."""
        with torch.no_grad():
            z = self.latents(batch.flatten(0, 1))
            if z.shape[0] > self.config.init_vectors:
                z = z[torch.randperm(z.shape[0], device=z.device)[: self.config.init_vectors]]
            self.quantizer.init_from_data(z, self.config.init_iters)
        q = self.quantizer
        q.reseeded = [(i, p, c) for i in range(q.n) for p in range(q.m**i) for c in range(q.m)]

    def restart_codes(self, batch: Tensor, step: int) -> None:
        """Stage.after_step: the delayed k-means init at ``init_after``; then every
        ``restart_every`` steps, re-seed dead children within their (material) parent."""
        cfg = self.config
        if cfg.init_after and step + 1 == cfg.init_after:
            self.init_codebooks(batch)
            return
        every = cfg.restart_every
        if not every or (step + 1) % every or step + 1 < cfg.init_after:
            return
        with torch.no_grad():
            self.quantizer.restart_dead(self.quantizer(self.latents(batch.flatten(0, 1))), self.config.dead_threshold)

    def _reset_reseeded_moments(self, opt: torch.optim.Optimizer) -> None:
        """Before each autoencoder step, zero Adam's moments of codewords re-seeded since the last."""
        opt.register_step_pre_hook(lambda o, args, kwargs: self.quantizer.reset_optimizer_rows(o))

    def stages(self) -> list[vpbench.Stage]:
        cfg = self.config
        ae = vpbench.Stage(
            "autoencoder", lambda b, s: self.autoencoder_loss(b), self.ae_parameters, cfg.ae_fraction,
            cfg.lr, selects=False, on_start=None if cfg.init_after else self.init_codebooks,
            after_step=self.restart_codes, on_optimizer=self._reset_reseeded_moments,
        )  # fmt: skip
        joint = cfg.joint_fraction if cfg.training == "joint" else 0.0
        out = [ae]
        prior_fraction = 1.0 - cfg.ae_fraction - joint
        if prior_fraction > 1e-9:
            out.append(vpbench.Stage("prior", lambda b, s: self.prior_loss(b), self.prior.parameters, prior_fraction, cfg.lr))
        if joint > 0:
            out.append(
                vpbench.Stage(
                    "joint", lambda b, s: self.joint_loss(b),
                    lambda: [*self.prior.parameters(), *self.decoder.parameters()], joint, cfg.lr,
                )  # fmt: skip
            )
        return out

    # ---------------------------------------------------------------------- prediction

    def decoding(self) -> str:
        """Which decoding produced the predictions, in words (stored in the record)."""
        cfg = self.config
        if cfg.sampling != "sample":
            return cfg.sampling
        out = f"sample (leaf draw, temperature {cfg.temperature}, top_k {cfg.top_k or 'all'}, top_p {cfg.top_p})"
        if cfg.best_of > 1:
            out += f", best of {cfg.best_of} by {cfg.best_of_by}"
        return out

    def picker(self, fast: bool = False) -> Picker:
        """The voxel decoding of ``model.sampling`` (see decoding.py); ``fast``: the heads use
        :func:`fast_elu` (the incremental sampler's per-voxel ELU)."""
        cfg = self.config
        elu = fast_elu if fast else F.elu
        if cfg.sampling == "greedy":
            return per_layer(self.prior, lambda lg: lg.argmax(-1), elu)
        if cfg.sampling == "best-leaf":
            return best_leaf(self.prior, elu)
        return leaf_sampler(self.prior, cfg.temperature, cfg.top_k, cfg.top_p, elu)

    def predict_indices(self, context: Tensor, horizon: int, cached: bool | None = None, reference: bool = False) -> Tensor:
        """Future local indices ``[B, n, S, h, w]`` for ``context [B, T, C, H, W]`` (eval mode).

        ``reference``: the cached sampler as it was before issue 23
        (:class:`ReferenceIncrementalSampler`), for tests and benchmarks only."""
        if context.shape[1] + horizon > self.config.max_frames:
            raise ConfigError(
                f"context {context.shape[1]} + horizon {horizon} exceeds model.max_frames={self.config.max_frames}"
            )
        cached = self.config.cached_sampling if cached is None else cached
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                paths = self.quantizer.paths_of(self.encode_indices(context), dim=1)
                if reference:
                    return ReferenceIncrementalSampler(self.prior).sample(paths, horizon, self.picker())
                if cached:
                    return IncrementalSampler(self.prior).sample(paths, horizon, self.picker(fast=True))
                return self.prior.sample_uncached(paths, horizon, self.picker())
        finally:
            self.train(was_training)

    def predict(self, context: Tensor, horizon: int) -> Tensor:
        n = self.config.best_of
        ctx = context.repeat_interleave(n, 0) if n > 1 else context
        local = self.predict_indices(ctx, horizon)
        with torch.no_grad():
            frames = self.decode_indices(local).clamp(0, 1)
            if n == 1:
                return frames
            b = context.shape[0]
            best = self.best_of_scores(ctx, local, frames).view(b, n).argmin(1)
            return frames.view(b, n, *frames.shape[1:])[torch.arange(b, device=frames.device), best]

    def best_of_scores(self, context: Tensor, local: Tensor, frames: Tensor) -> Tensor:
        """Per drawn future, lower is better ``[B]``; uses the context and the draw, never the truth.

        ``likelihood``: −log p(codes) under the prior (exact, one teacher-forced pass over
        context + drawn future). ``mass``: mean over the predicted frames of
        |Σ pixels − Σ pixels of the last context frame| / (Σ pixels of the last context frame + 1).
        """
        if self.config.best_of_by == "mass":
            last = context[:, -1].flatten(1).sum(1)  # [B]
            mass = frames.flatten(2).sum(2)  # [B, S]
            return ((mass - last[:, None]).abs() / (last[:, None] + 1.0)).mean(1)
        t, m = context.shape[1], self.config.branching
        was_training = self.training
        self.eval()
        try:
            paths = torch.cat([self.quantizer.paths_of(self.encode_indices(context), dim=1), self.quantizer.paths_of(local, dim=1)], 2)
            nll = []
            for chunk in paths.split(32):  # bounds the attention's memory
                logits = self.prior.logits(chunk)
                lp = sum(
                    lg[:, t:].log_softmax(-1).gather(-1, (chunk[:, i, t:] % m)[..., None]).flatten(1).sum(1)
                    for i, lg in enumerate(logits)
                )
                nll.append(-lp)
        finally:
            self.train(was_training)
        return torch.cat(nll)

    # ----------------------------------------------------------------------- artifacts

    def compression_ratio(self) -> float:
        """Table 1: 8-bit input bits over code bits, (H·W·C·8) / (h·w·n·log2 M)."""
        c, h, w = self.frame_shape.as_tuple()
        code_bits = self.grid[0] * self.grid[1] * self.config.layers * math.log2(self.config.branching)
        return h * w * c * 8 / code_bits

    def artifacts(self, out_dir: Path, frames: Tensor) -> dict[str, Any]:
        """Per-layer reconstructions D(e1), D(e1+e2), ... of ``frames [N, C, H, W]`` as a PNG grid
        (one row per frame: input, then one column per prefix) and the compression ratio."""
        from torchvision.utils import save_image

        frames = frames.to(self.device)
        with torch.no_grad():
            local = self.encode_indices(frames[None])  # [1, n, N, h, w]
            prefixes = [self.decode_indices(local, upto=i + 1)[0].clamp(0, 1) for i in range(self.config.layers)]
            paths = self.quantizer.paths_of(local, dim=1)[0].permute(1, 0, 2, 3)  # [N, n, h, w]
        usage = codebook_usage(paths.cpu(), frames.cpu(), self.config.stride, self.context)
        grid = torch.stack([frames, *prefixes], 1).flatten(0, 1)  # [N*(n+1), C, H, W]
        path = Path(out_dir) / "shrvq_layer_reconstructions.png"
        with atomic_path(path) as tmp:
            save_image(grid.cpu(), tmp, nrow=self.config.layers + 1, format="png")
        return {
            "compression_ratio": round(self.compression_ratio(), 4),
            "bits_per_position": self.config.layers * math.log2(self.config.branching),
            "prefix_recon_mse": [round(F.mse_loss(p, frames).item(), 6) for p in prefixes],
            "layer_reconstructions": path.name,
            "codebook_usage": usage,
            "decoding": self.decoding(),
        }
