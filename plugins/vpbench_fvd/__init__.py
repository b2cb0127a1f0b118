"""``fvd``: Fréchet Video Distance over the whole test set, a set-level metric.

The feature network is StyleGAN-V's TorchScript I3D (``i3d_torchscript.pt``), supplied by
the user through ``$VPBENCH_FVD_WEIGHTS`` (or the metric's ``weights`` option), its SHA-256
checked before it is loaded (:mod:`vpbench_fvd.weights`); without it FVD is reported as
unavailable. The protocol is in :mod:`vpbench_fvd.metric` and docs/fvd.md.
"""

from __future__ import annotations

from collections.abc import Callable

import vpbench


@vpbench.hookimpl
def register_metrics(register: Callable[[vpbench.MetricSpec], None]) -> None:
    register(
        vpbench.MetricSpec(
            name="fvd",
            target="vpbench_fvd.metric:FVD",
            description="Frechet Video Distance, StyleGAN-V's I3D, context + prediction at 224x224 (needs the local I3D file)",
            higher_is_better=False,
            protocols=("openstl", "standard"),
            display_name="FVD",
            number_format=".1f",
            column_order=60,
            level="set",
        )
    )
