"""S-HR-VQVAE plugin: codebook tree, causal prior, exact cached sampling, training paths."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from vpbench import FrameShape
from vpbench.errors import ConfigError
from vpbench_shrvq import TINY
from vpbench_shrvq.decoding import best_leaf, leaf_log_probs, leaf_sampler, per_layer
from vpbench_shrvq.hrvq import HRQuantizer
from vpbench_shrvq.model import SHRVQVAE
from vpbench_shrvq.prior import IncrementalSampler, STPixelCNN

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
SMALL = FrameShape(1, 32, 32)


def tiny(**over: object) -> SHRVQVAE.Config:
    return SHRVQVAE.Config(**{**TINY, **over})


def build(seed: int = 0, shape: FrameShape = SMALL, context: int = 3, horizon: int = 2, **over: object) -> SHRVQVAE:
    torch.manual_seed(seed)
    return SHRVQVAE(tiny(**over), shape, context, horizon)


def clips(seed: int = 1, b: int = 2, f: int = 5, shape: FrameShape = SMALL) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, f, *shape.as_tuple(), generator=g)


def paper_model(name: str, shape: FrameShape, context: int, horizon: int) -> SHRVQVAE:
    data = yaml.safe_load((CONFIGS / f"shrvq-{name}.yaml").read_text())
    return SHRVQVAE(SHRVQVAE.Config(**data["model"]), shape, context, horizon)


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def small_prior(attention: str = "full", layers: int = 3) -> STPixelCNN:
    torch.manual_seed(0)
    return STPixelCNN(layers, 2, (3, 4), 6, 8, 2, 1, 8, 2, attention, 1, 0.0).eval()


def random_paths(prior: STPixelCNN, b: int, f: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    local = torch.randint(prior.m, (b, f, *prior.grid, prior.n), generator=g)
    q = HRQuantizer(prior.n, prior.m, 1, 0.25)
    return q.paths_of(local).permute(0, 4, 1, 2, 3)  # [B, n, F, H, W]


# ----------------------------------------------------------------------- codebook tree


def test_quantizer_uses_the_child_codebook_of_the_chosen_parent_and_lookup_reproduces_the_sum() -> None:
    torch.manual_seed(0)
    q = HRQuantizer(layers=3, branching=3, dim=2, beta=0.25)
    with torch.no_grad():  # hand-made tree: every child codebook distinct and shrinking
        for i, cb in enumerate(q.codebooks):
            cb.copy_(torch.randn(cb.shape) * 0.5**i)
    z = torch.randn(200, 2)
    out = q(z)
    parent = torch.zeros(200, dtype=torch.long)
    residual = z
    for i in range(3):
        k = out.local[:, i]
        expected = q.codebooks[i][parent, k]
        assert torch.equal(out.codes[i], expected)
        # the n·M search equals a brute force over the parent's valid children (flat view)
        flat = q.codebooks[i].detach().reshape(-1, 2)
        children = parent[:, None] * 3 + torch.arange(3)
        brute = (residual[:, None] - flat[children]).pow(2).sum(-1).argmin(1)
        assert torch.equal(brute, k)
        assert torch.equal(out.paths[:, i], parent * 3 + k)
        residual = residual - expected.detach()
        parent = out.paths[:, i]
    assert torch.allclose(q.lookup(out.local), out.total.detach())
    assert torch.allclose(q.lookup(out.local, upto=1), out.codes[0].detach())


def test_residuals_shrink_layer_by_layer_after_data_dependent_init() -> None:
    torch.manual_seed(0)
    q = HRQuantizer(layers=3, branching=4, dim=2, beta=0.25)
    z = torch.randn(2000, 2)
    q.init_from_data(z, iters=10)
    out = q(z)
    errors = [(z - q.lookup(out.local, upto=i + 1)).pow(2).mean().item() for i in range(3)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.1 * z.pow(2).mean().item()


def test_dead_children_are_reseeded_only_from_residuals_of_their_own_parent() -> None:
    torch.manual_seed(0)
    q = HRQuantizer(layers=2, branching=2, dim=2, beta=0.25)
    z = torch.randn(500, 2)
    q.init_from_data(z, iters=5)
    out = q(z)
    q.usage(1).fill_(0.25)  # usage is a share of the vectors: 125 hits per batch of 500
    q.usage(1)[3] = 0.0  # child 1 of parent 1 is dead
    assert q.restart_dead(out, threshold=1.0) == 1
    routed = out.residuals[1][out.paths[:, 0] == 1]
    new = q.codebooks[1][1, 1].detach()
    assert (routed - new).abs().sum(1).min() == 0  # one of the parent's own residuals
    assert q.usage(1)[3] * 500 == pytest.approx(1.0)  # its statistics are reset to the threshold
    assert q.reseeded == [(1, 1, 1)]


def _static_and_moving(seed: int = 0) -> torch.Tensor:
    """Latents of 'background' cells (one vector plus 1e-3 noise) and spread 'digit' cells."""
    g = torch.Generator().manual_seed(seed)
    bg = torch.tensor([3.0, -2.0]) + 1e-3 * torch.randn(600, 2, generator=g)
    fg = torch.randn(400, 2, generator=g)
    return torch.cat([bg, fg])


@pytest.mark.parametrize("zero_code", [False, True])
def test_restarts_never_touch_a_parent_with_negligible_residual(zero_code: bool) -> None:
    torch.manual_seed(0)
    q = HRQuantizer(layers=3, branching=3, dim=2, beta=0.25, min_energy=0.02, zero_code=zero_code)
    z = _static_and_moving()
    q.init_from_data(z, iters=5)
    out = q(z)
    bg_parent = int(out.paths[0, 1])  # the background's level-2 path
    assert (out.paths[:600, 1] == bg_parent).all()  # one stable path through level 2 ...
    assert (out.paths[:600, 2] == out.paths[0, 2]).all()  # ... and level 3
    assert not q.codebooks[2][bg_parent].detach().any()  # its children are zero, not fitted to noise
    before = q.codebooks[2].detach().clone()
    q.usage(2).zero_()  # every level-3 child looks dead
    q.usage(1).fill_(1.0)  # every level-2 parent looks alive
    assert q.restart_dead(out, threshold=1.0) > 0
    after = q.codebooks[2].detach()
    assert torch.equal(after[bg_parent], before[bg_parent])  # the static parent was left alone
    changed = (after != before).any(-1).any(-1)
    assert changed.any()  # parents with material residuals were re-seeded
    assert all(p != bg_parent for _, p, _ in q.reseeded)
    if zero_code:
        assert not q.book(2)[:, 0].any()  # the fixed zero child stays zero and is never re-seeded
        assert all(c != 0 for i, _, c in q.reseeded if i > 0)


def test_a_parent_whose_residual_becomes_negligible_collapses_to_one_stable_path() -> None:
    torch.manual_seed(0)
    q = HRQuantizer(layers=3, branching=3, dim=2, beta=0.25, min_energy=0.0, zero_code=True)
    z = _static_and_moving()
    q.init_from_data(z, iters=5)  # without the rule, k-means fits the static cells' noise
    out = q(z)
    assert out.paths[:600, 2].unique().numel() > 1
    q.min_energy = 0.02  # now the rule applies at the next restart pass
    q.usage(1).fill_(1.0)
    q.restart_dead(out, threshold=1.0)
    assert q.collapsed >= 1
    again = q(z)
    assert again.paths[:600, 2].unique().numel() == 1  # one stable path for the static cells
    assert again.paths[600:, 2].unique().numel() > 3  # the moving content keeps its codes


def test_without_the_energy_rule_the_static_parent_is_reseeded_from_noise() -> None:
    torch.manual_seed(0)
    q = HRQuantizer(layers=3, branching=3, dim=2, beta=0.25, min_energy=0.0)
    z = _static_and_moving()
    q.init_from_data(z, iters=5)
    out = q(z)
    assert out.paths[:600, 2].unique().numel() > 1  # k-means on noise splits the static cells


def test_reseeded_codewords_get_fresh_adam_moments() -> None:
    torch.manual_seed(0)
    q = HRQuantizer(layers=2, branching=2, dim=2, beta=0.25)
    opt = torch.optim.Adam(q.parameters(), lr=1e-2)
    z = torch.randn(100, 2)
    q(z).loss.backward()
    opt.step()
    assert opt.state[q.codebooks[1]]["exp_avg_sq"].abs().sum() > 0
    q.reseeded = [(1, 0, 1)]
    q.reset_optimizer_rows(opt)
    state = opt.state[q.codebooks[1]]
    assert not state["exp_avg"][0, 1].any() and not state["exp_avg_sq"][0, 1].any()
    assert state["exp_avg_sq"][1].abs().sum() > 0 and q.reseeded == []


def test_usage_is_a_share_whatever_the_batch_size() -> None:
    q = HRQuantizer(layers=1, branching=2, dim=1, beta=0.25, usage_decay=0.0)
    q.track_usage(torch.tensor([[0], [0], [0], [1]]))
    assert q.usage(0).tolist() == [0.75, 0.25]
    q.track_usage(torch.tensor([[0], [1]] * 500))
    assert q.usage(0).tolist() == [0.5, 0.5]


# -------------------------------------------------------------------------------- prior


@pytest.mark.parametrize("attention", ["full", "window"])
def test_changing_a_token_never_changes_logits_that_precede_it(attention: str) -> None:
    prior = small_prior(attention)
    paths = random_paths(prior, 1, 4)
    f, y, x = 2, 1, 2
    base = [lg.detach() for lg in prior.logits(paths)]
    flat = lambda t: t.reshape(-1, t.shape[-1])  # noqa: E731  (raster order over f, h, w)
    p = (f * 3 + y) * 4 + x
    # every layer of voxel p changed: head 1 at voxels <= p and all heads at voxels < p unchanged
    changed = paths.clone()
    changed[:, :, f, y, x] = (paths[:, :, f, y, x] + 1) % torch.tensor([2, 4, 8])
    after = prior.logits(changed)
    assert torch.allclose(flat(after[0])[: p + 1], flat(base[0])[: p + 1], atol=1e-6)
    for i in (1, 2):
        assert torch.allclose(flat(after[i])[:p], flat(base[i])[:p], atol=1e-6)
    assert not torch.allclose(flat(after[0])[p + 1 :], flat(base[0])[p + 1 :])  # it does matter later
    # only the finest layer changed: no head at voxel p moves
    finest = paths.clone()
    finest[:, 2, f, y, x] = finest[:, 2, f, y, x] ^ 1
    after = prior.logits(finest)
    for i in range(3):
        assert torch.allclose(flat(after[i])[: p + 1], flat(base[i])[: p + 1], atol=1e-6)
    # changing the layer-2 code at p may change head 3 at p (conditioned on its parent)
    coarse = paths.clone()
    coarse[:, 1, f, y, x] = coarse[:, 1, f, y, x] ^ 1
    assert not torch.allclose(flat(prior.logits(coarse)[2])[p], flat(base[2])[p])


@pytest.mark.parametrize("attention", ["full", "window"])
def test_cached_sampler_equals_full_recomputation(attention: str) -> None:
    prior = small_prior(attention)
    ctx = random_paths(prior, 2, 2)
    greedy = per_layer(prior, lambda lg: lg.argmax(-1))
    cached = IncrementalSampler(prior).sample(ctx, 3, greedy)
    with torch.no_grad():
        full = prior.sample_uncached(ctx, 3, greedy)
    assert torch.equal(cached, full)
    # the cached trunk features equal the teacher-forced ones on the sampled tokens
    q = HRQuantizer(3, 2, 1, 0.25)
    paths = torch.cat([ctx, q.paths_of(cached, dim=1)], 2)
    tf = prior.logits(paths)[0][:, 2:]
    assert tf.argmax(-1).equal(cached[:, 0])
    # multinomial sampling draws the same tokens from the same random stream
    draw = per_layer(prior, lambda lg: torch.multinomial(lg.softmax(-1), 1)[:, 0])
    torch.manual_seed(5)
    a = IncrementalSampler(prior).sample(ctx, 2, draw)
    torch.manual_seed(5)
    with torch.no_grad():
        b = prior.sample_uncached(ctx, 2, draw)
    assert torch.equal(a, b)


@pytest.mark.parametrize("picker", ["best-leaf", "sample"])
def test_leaf_pickers_give_the_same_tokens_cached_and_uncached(picker: str) -> None:
    prior = small_prior()
    ctx = random_paths(prior, 2, 2)
    make = lambda: best_leaf(prior) if picker == "best-leaf" else leaf_sampler(prior, 0.7, top_k=5, top_p=0.9)  # noqa: E731
    torch.manual_seed(5)
    a = IncrementalSampler(prior).sample(ctx, 2, make())
    torch.manual_seed(5)
    with torch.no_grad():
        b = prior.sample_uncached(ctx, 2, make())
    assert torch.equal(a, b)


def brute_force_leaves(prior: STPixelCNN, o: torch.Tensor) -> torch.Tensor:
    """log p(k1) + log p(k2|k1) + log p(k3|k1,k2) for every leaf, one explicit path at a time."""
    m, out = prior.m, []
    for k1 in range(m):
        for k2 in range(m):
            for k3 in range(m):
                g1, g2 = torch.full((o.shape[0],), k1), torch.full((o.shape[0],), k1 * m + k2)
                lp = prior.head(0, o, None).log_softmax(-1)[:, k1]
                lp = lp + prior.head(1, o, g1).log_softmax(-1)[:, k2]
                lp = lp + prior.head(2, o, g2).log_softmax(-1)[:, k3]
                out.append(lp)
    return torch.stack(out, 1)


def test_best_leaf_equals_brute_force_map_and_can_beat_greedy_per_layer() -> None:
    torch.manual_seed(0)
    prior = STPixelCNN(3, 3, (2, 2), 4, 8, 1, 1, 8, 2, "full", 1, 0.0).eval()
    with torch.no_grad():
        for head in prior.heads:  # sharpen the heads so that the tree's structure matters
            head.weight.mul_(8)
        o = torch.randn(400, 8)
        exact = brute_force_leaves(prior, o)
        assert torch.allclose(leaf_log_probs(prior, o), exact, atol=1e-5)
        ks, gs = best_leaf(prior)(o)
        leaf = gs[:, -1]
        assert torch.equal(leaf, exact.argmax(1))
        assert torch.equal(gs[:, 0], ks[:, 0]) and torch.equal(leaf, (ks[:, 0] * 3 + ks[:, 1]) * 3 + ks[:, 2])
        gk, gg = per_layer(prior, lambda lg: lg.argmax(-1))(o)
        greedy_lp = exact.gather(1, gg[:, -1:])[:, 0]
        best_lp = exact.max(1).values
        assert (greedy_lp <= best_lp + 1e-6).all()
        assert (greedy_lp < best_lp - 1e-3).any()  # greedy per layer misses the MAP leaf somewhere


def test_leaf_sampler_truncates_to_top_k_and_nucleus() -> None:
    torch.manual_seed(0)
    prior = STPixelCNN(2, 3, (2, 2), 4, 8, 1, 1, 8, 2, "full", 1, 0.0).eval()
    with torch.no_grad():
        o = torch.randn(1, 8).expand(3000, -1)
        lp = leaf_log_probs(prior, o[:1])[0]
        order = lp.argsort(descending=True)
        _, gs = leaf_sampler(prior, top_k=2)(o)
        assert set(gs[:, -1].tolist()) == set(order[:2].tolist())
        p = lp.exp()[order]
        mass = float(p[:3].sum())  # nucleus reaching exactly the first three leaves' mass
        _, gs = leaf_sampler(prior, top_p=mass - 1e-4)(o)
        assert set(gs[:, -1].tolist()) == set(order[:3].tolist())
        _, gs = leaf_sampler(prior, temperature=1e-3)(o)  # τ -> 0 is the MAP leaf
        assert set(gs[:, -1].tolist()) == {int(order[0])}


def test_model_predict_cached_and_uncached_agree() -> None:
    m = build()
    ctx = clips()[:, :3]
    torch.manual_seed(3)
    cached = m.predict_indices(ctx, 2, cached=True)
    torch.manual_seed(3)
    assert torch.equal(cached, m.predict_indices(ctx, 2, cached=False))  # same draws from the same stream
    out = m.predict(ctx, 2)
    assert out.shape == (2, 2, 1, 32, 32) and out.min() >= 0 and out.max() <= 1


def test_coding_clips_in_frame_chunks_equals_coding_all_frames_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import vpbench_shrvq.model as model_mod

    m = build().eval()
    x = clips(b=3, f=5)  # 15 frames: chunks of 4, 4, 4, 3
    with torch.no_grad():
        whole = m.quantizer(m.latents(x.flatten(0, 1))).local.view(3, 5, *m.grid, -1).permute(0, 4, 1, 2, 3)
        frames = m.decode_sum(m.quantizer.lookup(whole.permute(0, 2, 3, 4, 1)).flatten(0, 1)).view_as(x)
        monkeypatch.setattr(model_mod, "FRAME_CHUNK", 4)
        assert torch.equal(m.encode_indices(x), whole)
        assert torch.equal(m.decode_indices(whole), frames)


# ------------------------------------------------------------------------------ training


def test_disjoint_and_joint_stage_layouts() -> None:
    m = build()
    names = [(s.name, s.selects) for s in m.stages()]
    assert names == [("autoencoder", False), ("prior", True)]
    j = build(training="joint", ae_fraction=0.4, joint_fraction=0.3)
    stages = j.stages()
    assert [s.name for s in stages] == ["autoencoder", "prior", "joint"]
    assert sum(s.fraction for s in stages) == pytest.approx(1.0)
    assert all(s.lr == 3e-4 for s in stages)
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    assert ids(stages[2].parameters()) == ids(j.prior.parameters()) | ids(j.decoder.parameters())
    assert ids(stages[1].parameters()) == ids(j.prior.parameters())


def test_joint_step_trains_decoder_and_prior_but_not_encoder_or_codebooks() -> None:
    m = build(training="joint")
    x = clips()
    m.init_codebooks(x)
    out = m.joint_loss(x)
    out.loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.decoder.parameters())
    assert m.prior.heads[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in m.encoder.parameters())
    assert all(p.grad is None for p in m.quantizer.parameters())
    assert out.logs["sse_frame"] > 0


def test_free_running_joint_step_decodes_the_codes_the_prior_predicts_from_the_context() -> None:
    m = build(training="joint", joint_codes="free", sampling="greedy")  # deterministic codes to compare
    x = clips()
    m.init_codebooks(x)
    seen: list[torch.Tensor] = []
    original = m.decode_sum
    m.decode_sum = lambda e: (seen.append(e.detach().clone()), original(e))[1]  # type: ignore[method-assign]
    m.joint_loss(x).loss.backward()
    expected = m.quantizer.lookup(m.predict_indices(x[:, :3], 2).permute(0, 2, 3, 4, 1)).flatten(0, 1)
    assert torch.equal(seen[0], expected)
    assert m.training  # prediction inside the step leaves the model in training mode


def test_reconstruction_term_alone_reaches_the_prior_through_the_straight_through_codes() -> None:
    m = build(training="joint", joint_lambda=1.0, joint_codes="teacher")
    x = clips()
    m.init_codebooks(x)
    ce = m._ce(m.prior.logits(m._targets(x)), m._targets(x))[0]
    total = m.joint_loss(x).loss
    (total - ce).backward()  # the λ·SSE term only (Eq. 9: L_p + λ·SSE)
    assert m.prior.heads[0].weight.grad.abs().sum() > 0
    assert m.prior.conv_a.conv.weight.grad.abs().sum() > 0


def test_joint_loss_is_eq9_with_eq7_cross_entropy_a_mean_over_latent_positions() -> None:
    """Eq. 9, L_p + λ‖x − D(ê_C)‖²₂, with L_p of Eq. 7 normalised by 1/(H×W): the CE term is the
    mean over latent positions of −log p(leaf) (not their sum, h·w times larger), the
    reconstruction term the squared error summed over a frame's pixels, both per future frame."""
    shape = FrameShape(1, 64, 64)  # a 4x4 latent grid: a sum over positions would be 16x the mean
    m = build(training="joint", joint_codes="teacher", dropout=0.0, shape=shape)
    x = clips(shape=shape)
    m.init_codebooks(x)
    t, k = m.context, m.config.branching
    with torch.no_grad():
        paths = m._targets(x)
        logits = m.prior.logits(paths)
        # −log p(leaf) per future voxel, summed over the layers' conditionals, by hand
        nll = sum(-lg[:, t:].log_softmax(-1).gather(-1, (paths[:, i, t:] % k)[..., None])[..., 0] for i, lg in enumerate(logits))
        e_hat = m._teacher_codes(logits, paths)
        pred = m.decode_sum(e_hat.flatten(0, 1)).view_as(x[:, t:])
        sse_per_frame = (pred - x[:, t:]).pow(2).sum((2, 3, 4))  # [B, S]
        lam = m.config.joint_lambda  # 0.11, the paper's
        got = m.joint_loss(x).loss
    assert m.grid == (4, 4)
    expected = nll.mean() + lam * sse_per_frame.mean()
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    # the sum-over-positions reading (the old code) is a different, larger loss
    assert got.item() < (nll.sum((2, 3)).mean() + lam * sse_per_frame.mean()).item() - 1.0


def test_autoencoder_stage_trains_encoder_codebooks_and_decoder() -> None:
    m = build()
    x = clips()
    ae = m.stages()[0]
    ae.on_start(x)  # type: ignore[misc]
    ae.step(x, 0).loss.backward()
    for part in (m.encoder, m.quantizer, m.decoder):
        assert all(p.grad is not None for p in part.parameters())
    assert all(p.grad is None for p in m.prior.parameters())
    ae.after_step(x, 49)  # type: ignore[misc]  # restart pass runs without error


def test_range_loss_ignores_only_errors_the_clamp_removes() -> None:
    x = torch.tensor([0.0, 0.0, 0.5, 1.0, 1.0, 0.3])
    recon = torch.tensor([-0.4, 0.2, -0.1, 1.3, 0.7, 1.2], requires_grad=True)
    err = build(recon_loss="range")._recon_error(recon, x)
    # below 0 on black and above 1 on white cost nothing; every other error is the raw one
    assert err.tolist() == pytest.approx([0.0, 0.2, -0.6, 0.0, -0.3, 0.9])
    err.pow(2).sum().backward()
    assert recon.grad is not None
    assert recon.grad.tolist() == pytest.approx([0.0, 0.4, -1.2, 0.0, -0.6, 1.8])
    assert build(recon_loss="mse")._recon_error(recon, x).tolist() == pytest.approx((recon - x).tolist())


def test_prior_step_learns_on_frozen_indices() -> None:
    m = build()
    x = clips()
    m.init_codebooks(x)
    stage = m.stages()[1]
    opt = torch.optim.Adam(stage.parameters(), 3e-3)
    first = stage.step(x, 0).loss.item()
    for i in range(15):
        opt.zero_grad()
        stage.step(x, i).loss.backward()
        opt.step()
    assert stage.step(x, 16).loss.item() < first
    assert all(p.grad is None for p in m.encoder.parameters())


# ------------------------------------------------------------------- state and errors


def test_state_dict_round_trip_gives_the_same_predictions(tmp_path: Path) -> None:
    m = build(seed=0)
    m.init_codebooks(clips())
    torch.save(m.state_dict(), tmp_path / "m.pt")
    other = build(seed=7)
    other.load_state_dict(torch.load(tmp_path / "m.pt"))
    ctx = clips()[:, :3]
    assert torch.equal(m.predict(ctx, 2), other.predict(ctx, 2))


def test_same_seed_gives_same_weights_losses_and_samples() -> None:
    runs = []
    for _ in range(2):
        m = build(seed=3, sampling="sample")
        m.init_codebooks(clips())
        loss = m.autoencoder_loss(clips()).loss.item()
        torch.manual_seed(11)
        runs.append((loss, m.predict(clips()[:, :3], 2)))
    assert runs[0][0] == runs[1][0]
    assert torch.equal(runs[0][1], runs[1][1])


def test_checkpoint_from_another_config_fails_on_shape_mismatch() -> None:
    m = build(branching=2)
    other = build(branching=3)
    with pytest.raises(RuntimeError, match="size mismatch"):
        other.load_state_dict(m.state_dict())


def test_latent_grid_that_does_not_fit_the_frame_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="latent_size"):
        SHRVQVAE(SHRVQVAE.Config(latent_size=16), FrameShape(1, 32, 32), 10, 10)
    with pytest.raises(ConfigError, match="stride"):
        SHRVQVAE(SHRVQVAE.Config(), FrameShape(1, 30, 30), 10, 10)
    with pytest.raises(ConfigError, match="max_frames"):
        SHRVQVAE(SHRVQVAE.Config(max_frames=20), FrameShape(1, 64, 64), 10, 20)


def test_unknown_config_key_is_rejected() -> None:
    with pytest.raises(ValueError):
        SHRVQVAE.Config(branchig=4)  # type: ignore[call-arg]


# ------------------------------------------------------------------ paper configurations


def test_paper_configs_have_the_exact_parameter_budget() -> None:
    mm = paper_model("mmnist", FrameShape(1, 64, 64), 10, 10)
    assert n_params(mm) == 1_136_905
    assert n_params(mm.prior) == 948_020
    kth = paper_model("kth", FrameShape(3, 128, 128), 10, 20)
    assert n_params(kth) == 1_135_695
    assert n_params(kth.prior) == 937_860


def test_paper_configs_have_table_1_compression_ratios() -> None:
    assert paper_model("mmnist", FrameShape(1, 64, 64), 10, 10).compression_ratio() == pytest.approx(21.333, abs=1e-3)
    assert paper_model("kth", FrameShape(3, 128, 128), 10, 20).compression_ratio() == pytest.approx(42.667, abs=1e-3)


@pytest.mark.parametrize(("layers", "branching"), [(1, 64), (6, 2)])
def test_table_3_variants_are_expressible(layers: int, branching: int) -> None:
    m = build(layers=layers, branching=branching)
    assert len(m.quantizer.codebooks) == layers
    assert m.quantizer.codebooks[-1].shape[:2] == (branching ** (layers - 1), branching)
    assert m.predict(clips()[:1, :3], 1).shape == (1, 1, 1, 32, 32)


def test_artifacts_write_layer_reconstructions_and_report_the_compression_ratio(tmp_path: Path) -> None:
    m = build(stride=4, layers=3, branching=4, latent_dim=4)
    frames = clips(b=1, f=3)[0]
    m.init_codebooks(frames[None])
    facts = m.artifacts(tmp_path, frames)
    png = tmp_path / facts["layer_reconstructions"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert facts["compression_ratio"] == pytest.approx(32 * 32 * 8 / (8 * 8 * 6), abs=1e-3)
    assert len(facts["prefix_recon_mse"]) == 3


def test_plugin_registers_the_model_with_a_tiny_variant() -> None:
    from vpbench.plugins import get_registry

    spec = get_registry().models.get("shrvq")
    assert spec.load() is SHRVQVAE
    assert spec.tiny == TINY and spec.paper


@pytest.mark.parametrize(("name", "grid"), [("glyphs", 8), ("glyphs-s4", 16)])
def test_glyphs_configs_build_for_the_embedded_dataset(name: str, grid: int) -> None:
    m = paper_model(name, FrameShape(1, 64, 64), 10, 10)
    assert m.grid == (grid, grid)
    assert [s.name for s in m.stages()] == ["autoencoder", "prior"]


def test_delayed_kmeans_init_runs_once_after_init_after_steps_and_resets_adam() -> None:
    m = build(init_after=3, restart_every=2)
    ae = m.stages()[0]
    assert ae.on_start is None  # no init on the first batch
    x = clips()
    opt = torch.optim.Adam(m.ae_parameters(), lr=1e-3)
    assert ae.on_optimizer is not None
    ae.on_optimizer(opt)
    for step in range(3):
        opt.zero_grad()
        ae.step(x, step).loss.backward()
        opt.step()
        if step < 2:
            ae.after_step(x, step)  # type: ignore[misc]
            assert not m.quantizer.reseeded  # step 2 (before init) restarts nothing
    moved = [cb.detach().clone() for cb in m.quantizer.codebooks]
    ae.after_step(x, 2)  # type: ignore[misc]  # step 3: the k-means init
    assert any(not torch.allclose(a, b, atol=1e-3) for a, b in zip(moved, m.quantizer.codebooks))
    assert len(m.quantizer.reseeded) == sum(cb.shape[0] * cb.shape[1] for cb in m.quantizer.codebooks)
    opt.zero_grad()
    ae.step(x, 3).loss.backward()
    opt.step()  # the pre-step hook zeroes every codeword's moments before this update
    assert not m.quantizer.reseeded


def test_artifacts_report_codebook_usage_and_decoding(tmp_path: Path) -> None:
    m = build()
    frames = clips(b=1, f=6)[0]
    frames[:, :, :16] = 0.0  # the top half is background
    m.init_codebooks(frames[None])
    out = m.artifacts(tmp_path, frames)
    usage = out["codebook_usage"]
    assert out["decoding"] == "sample (leaf draw, temperature 1.0, top_k all, top_p 0.8)"
    assert [set(r) for r in usage["all"]] == [{"codes_used", "perplexity"}] * 2
    assert 0 < usage["foreground_share"] < 1
    assert 0 <= usage["background_finest_flip_rate"] <= 1


# ------------------------------------------------------------------------- best of N


@pytest.mark.parametrize("by", ["mass", "likelihood"])
def test_best_of_n_keeps_the_draw_with_the_best_context_only_score(by: str) -> None:
    m = build(seed=2, best_of=3, best_of_by=by)
    m.init_codebooks(clips())
    ctx = clips()[:, :3]
    torch.manual_seed(5)
    got = m.predict(ctx, 2)
    # the same three draws per clip, made by hand from the same random stream
    torch.manual_seed(5)
    rep = ctx.repeat_interleave(3, 0)
    local = m.predict_indices(rep, 2)
    frames = m.decode_indices(local).clamp(0, 1).detach()
    scores = m.best_of_scores(rep, local, frames).view(2, 3)
    want = frames.view(2, 3, *frames.shape[1:])[torch.arange(2), scores.argmin(1)]
    assert torch.equal(got, want)
    assert not torch.equal(frames.view(2, 3, -1)[:, 0], frames.view(2, 3, -1)[:, 1])  # the draws differ
    assert m.decoding().endswith(f"best of 3 by {by}")


def test_best_of_likelihood_is_the_priors_exact_log_probability() -> None:
    m = build(seed=2, best_of=2, best_of_by="likelihood")
    m.init_codebooks(clips())
    m.eval()
    ctx = clips()[:, :3]
    local = m.predict_indices(ctx, 2)
    frames = m.decode_indices(local).detach()
    nll = m.best_of_scores(ctx, local, frames)
    with torch.no_grad():  # brute force: −Σ log p(leaf) from leaf_log_probs at every future voxel
        paths = torch.cat([m.quantizer.paths_of(m.encode_indices(ctx), dim=1), m.quantizer.paths_of(local, dim=1)], 2)
        o = m.prior.trunk(paths)[:, 3:]  # [B, S, h, w, Cp]
        logp = leaf_log_probs(m.prior, o.reshape(-1, o.shape[-1]))
        leaf = paths[:, -1, 3:].reshape(-1)
        want = -logp.gather(1, leaf[:, None]).view(2, -1).sum(1)
    assert torch.allclose(nll, want, atol=1e-4)


def test_best_of_n_without_sampling_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="best_of"):
        build(best_of=2, sampling="greedy")
