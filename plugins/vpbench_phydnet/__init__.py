"""PhyDNet: PhyCell + ConvLSTM with the moment constraint (see README.md).

Registers the model only; the code lives in :mod:`vpbench_phydnet.model` (imported lazily).
"""

from __future__ import annotations

from collections.abc import Callable

import vpbench

#: tiny variant for the registry-driven tests: 16-wide frame encoder (32-channel latent), 2 ConvLSTM layers
TINY = {"nf": 16, "convlstm_hidden": [16, 32]}


@vpbench.hookimpl
def register_models(register: Callable[[vpbench.ModelSpec], None]) -> None:
    register(
        vpbench.ModelSpec(
            name="phydnet",
            target="vpbench_phydnet.model:PhyDNet",
            description="PhyDNet: PhyCell (moment-constrained physical branch) + 3-layer ConvLSTM, teacher forcing",
            paper="Le Guen and Thome, Disentangling Physical Dynamics from Unknown Factors for Unsupervised "
            "Video Prediction, CVPR 2020",
            tiny=dict(TINY),
        )
    )
