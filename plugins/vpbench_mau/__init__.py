"""MAU: the motion-aware unit (see README.md).

Registers the model only; the code lives in :mod:`vpbench_mau.model` (imported lazily).
"""

from __future__ import annotations

from collections.abc import Callable

import vpbench

#: tiny variant for the registry-driven tests: 2 units of 8 channels, 3x3 filters, τ = 2
TINY = {"num_layers": 2, "hidden": 8, "filter_size": 3, "tau": 2}


@vpbench.hookimpl
def register_models(register: Callable[[vpbench.ModelSpec], None]) -> None:
    register(
        vpbench.ModelSpec(
            name="mau",
            target="vpbench_mau.model:MAU",
            description="MAU: 4 motion-aware units (attention over tau past states + fusion), scheduled sampling",
            paper="Chang et al., MAU: A Motion-Aware Unit for Video Prediction and Beyond, NeurIPS 2021",
            tiny=dict(TINY),
        )
    )
