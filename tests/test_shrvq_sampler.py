"""Issue 23: the fast incremental sampler draws the same tokens as the one it replaced.

A tiny S-HR-VQVAE is trained for a few steps on glyph clips (autoencoder with its k-means
init, then the prior), so that the prior's distributions are peaked as a trained model's
are; then, for each decoding, :class:`IncrementalSampler` (the model's cached sampler) and
:class:`ReferenceIncrementalSampler` (the cached sampler before issue 23) sample from the
same context with the same seed, and the full network (``cached=False``) checks both.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vpbench import FrameShape
from vpbench_glyphs.dataset import GlyphsDataset
from vpbench_shrvq import TINY
from vpbench_shrvq.model import SHRVQVAE
from vpbench_shrvq.prior import IncrementalSampler, ReferenceIncrementalSampler, fast_elu

CONTEXT, HORIZON = 3, 2
#: an 8x8 latent grid (stride 8 at 64x64), 2 PixelBlocks so that both attention caches are exercised
CONFIG = {**TINY, "stride": 8, "hidden": 16, "latent_dim": 4, "layers": 2, "branching": 4, "prior_channels": 16, "prior_blocks": 2, "attn_dim": 8}


def glyph_clips(n: int, split: str = "train") -> torch.Tensor:
    ds = GlyphsDataset(GlyphsDataset.Config(), data_root=None, seed=0)  # type: ignore[arg-type]
    clips = ds.split(split)  # type: ignore[arg-type]
    return torch.stack([clips[i][: CONTEXT + HORIZON] for i in range(n)])


def train_tiny(attention: str) -> SHRVQVAE:
    """The codebook tree from its k-means init on glyph latents (a few autoencoder steps on
    so little data collapse the codes to one path), then prior steps on their codes."""
    torch.manual_seed(0)
    m = SHRVQVAE(SHRVQVAE.Config(**{**CONFIG, "attention": attention, "attn_window": 1}), FrameShape(1, 64, 64), CONTEXT, HORIZON)
    x = glyph_clips(6)
    m.init_codebooks(x)
    _, prior = m.stages()
    opt = torch.optim.Adam(prior.parameters(), 1e-2)
    for i in range(40):
        opt.zero_grad()
        prior.step(x, i).loss.backward()
        opt.step()
    return m.eval()


@pytest.fixture(scope="module", params=["full", "window"])
def trained(request: pytest.FixtureRequest) -> SHRVQVAE:
    m = train_tiny(request.param)
    with torch.no_grad():
        paths = m._targets(glyph_clips(6))
        first = m.prior_loss(glyph_clips(6)).loss.item()
    assert first < 0.8 * 2 * torch.log(torch.tensor(4.0)).item(), "the prior did not learn: the test would not be about a trained model"
    assert paths.unique().numel() > 8  # codes with some variety
    return m


@pytest.mark.parametrize(
    "sampling", [{"sampling": "greedy"}, {"sampling": "best-leaf"}, {"sampling": "sample", "top_k": 6, "top_p": 0.9, "temperature": 0.8}]
)
def test_fast_sampler_draws_the_reference_samplers_tokens(trained: SHRVQVAE, sampling: dict) -> None:
    m, saved = trained, trained.config
    m.config = m.config.model_copy(update=sampling)
    ctx = glyph_clips(4, "test")[:, :CONTEXT]
    try:
        torch.manual_seed(7)
        fast = m.predict_indices(ctx, HORIZON)  # the model's default path: IncrementalSampler
        torch.manual_seed(7)
        ref = m.predict_indices(ctx, HORIZON, reference=True)
        torch.manual_seed(7)
        full = m.predict_indices(ctx, HORIZON, cached=False)  # the whole network recomputed per voxel
    finally:
        m.config = saved
    assert fast.shape == (4, 2, HORIZON, 8, 8)
    assert torch.equal(fast, ref)
    assert fast.unique().numel() > 1  # not a constant prediction that any sampler would match
    assert torch.equal(fast, full)


def test_fast_sampler_features_equal_the_full_network_on_its_own_tokens(trained: SHRVQVAE) -> None:
    """The trunk features the sampler picks from are the teacher-forced ones (to fp32 rounding)."""
    m = trained
    ctx = glyph_clips(3, "test")[:, :CONTEXT]
    seen: list[torch.Tensor] = []

    def record(o: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        seen.append(o.clone())
        return m.picker(fast=True)(o)

    with torch.no_grad():
        paths_ctx = m.quantizer.paths_of(m.encode_indices(ctx), dim=1)
        local = IncrementalSampler(m.prior).sample(paths_ctx, HORIZON, record)
        paths = torch.cat([paths_ctx, m.quantizer.paths_of(local, dim=1)], 2)
        full = m.prior.trunk(paths)[:, CONTEXT:].flatten(1, 3)  # [B, S·H·W, Cp]
    got = torch.stack(seen, 1)
    assert got.shape == full.shape
    torch.testing.assert_close(got, full, rtol=1e-5, atol=1e-5)


def test_fast_elu_matches_elu_to_fp32_rounding() -> None:
    x = torch.cat([torch.linspace(-30, 30, 100_001), torch.tensor([0.0, -0.0, 1e-30, -1e-30, -1e-8, 1e-8])])
    ref = F.elu(x)
    out = fast_elu(x)
    pos = x > 0
    assert torch.equal(out[pos], ref[pos])  # exact where ELU is the identity
    assert (out - ref).abs().max().item() <= 1.2e-7
