"""Trivial baselines every real benchmark reports: blank, copy-last-frame and mean-of-context.

They need no training; every trained model must beat them. ``blank`` (all zeros, the
background of the digit datasets) exposes metrics and selections that reward a prediction
which fades to the background.
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
    register(
        vpbench.ModelSpec(
            name="blank",
            target="vpbench_baselines.models:Blank",
            description="predicts an all-zero (background) frame for every predicted frame",
            trainable=False,
        )
    )
