"""SimVP (v1 IncepU, v2 gSTA) and TAU: recurrent-free predictors, as in OpenSTL (see README.md).

Registers the specs only; the models live in :mod:`vpbench_simvp.model` and are imported when used.
"""

from __future__ import annotations

from collections.abc import Callable

import vpbench

#: tiny variants for the registry-driven tests: 4 spatial / 16 temporal channels, one down-sampling
TINY = {"hid_s": 4, "hid_t": 16, "n_s": 2, "n_t": 2, "mlp_ratio": 2.0}


@vpbench.hookimpl
def register_models(register: Callable[[vpbench.ModelSpec], None]) -> None:
    register(
        vpbench.ModelSpec(
            name="simvp",
            target="vpbench_simvp.model:SimVP",
            description="SimVP: conv encoder, translator over stacked frames (incepu: v1, gsta: v2), conv decoder",
            paper=(
                "Gao, Tan, Wu, Li. SimVP: Simpler yet Better Video Prediction, CVPR 2022; "
                "Tan, Li, Gao, Li. SimVP: Towards Simple yet Powerful Spatiotemporal Predictive Learning, "
                "arXiv 2211.12509"
            ),
            tiny=dict(TINY),
        )
    )
    register(
        vpbench.ModelSpec(
            name="tau",
            target="vpbench_simvp.model:TAU",
            description="TAU: SimVP with temporal attention units and the differential divergence loss",
            paper=(
                "Tan, Gao, Wu, Xu, Li. Temporal Attention Unit: Towards Efficient Spatiotemporal "
                "Predictive Learning, CVPR 2023"
            ),
            tiny=dict(TINY),
        )
    )
