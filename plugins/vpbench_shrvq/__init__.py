"""S-HR-VQVAE: hierarchical residual VQ-VAE frame codes with a spatiotemporal PixelCNN prior.

Registers the model only; the code lives in :mod:`vpbench_shrvq.model` (imported lazily).
"""

from __future__ import annotations

from collections.abc import Callable

import vpbench

#: a tiny variant for registry-driven tests and smoke runs (stride 16: a 4x4 latent at 64x64)
TINY = {
    "stride": 16,
    "hidden": 8,
    "res_hidden": 4,
    "res_blocks": 1,
    "latent_dim": 2,
    "layers": 2,
    "branching": 2,
    "init_iters": 2,
    "prior_channels": 8,
    "prior_blocks": 1,
    "prior_res_blocks": 1,
    "attn_dim": 8,
    "attn_heads": 2,
}


@vpbench.hookimpl
def register_models(register: Callable[[vpbench.ModelSpec], None]) -> None:
    register(
        vpbench.ModelSpec(
            name="shrvq",
            target="vpbench_shrvq.model:SHRVQVAE",
            description="S-HR-VQVAE: HR-VQVAE codebook tree + ST-PixelCNN prior, disjoint or joint training",
            paper=(
                "Adiban, Stefanov, Siniscalchi, Salvi. S-HR-VQVAE: Sequential Hierarchical Residual "
                "Learning Vector Quantized Variational Autoencoder for Video Prediction. arXiv 2307.06701"
            ),
            tiny=TINY,
        )
    )
