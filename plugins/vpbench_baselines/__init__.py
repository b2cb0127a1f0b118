"""Trivial baselines every real benchmark reports: copy-last-frame and mean-of-context.

They need no training; every trained model must beat them.
"""

from __future__ import annotations

from collections.abc import Callable

import vpbench


@vpbench.hookimpl
def register_models(register: Callable[[vpbench.ModelSpec], None]) -> None:
    register(
        vpbench.ModelSpec(
            name="copy-last",
            target="vpbench_baselines.models:CopyLast",
            description="repeats the last context frame for every predicted frame",
            trainable=False,
        )
    )
    register(
        vpbench.ModelSpec(
            name="mean-context",
            target="vpbench_baselines.models:MeanContext",
            description="predicts the mean of the context frames for every predicted frame",
            trainable=False,
        )
    )
