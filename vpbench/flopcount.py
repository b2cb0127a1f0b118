"""The one FLOP counter of vpbench: torch's, plus the CPU attention kernel it lacks.

``torch.utils.flop_counter`` has formulas for matrix products, convolutions and the CUDA
attention kernels, but on CPU ``scaled_dot_product_attention`` dispatches to
``_scaled_dot_product_flash_attention_for_cpu``, which it does not know: without this,
attention would count 0 on CPU and the same model would count more on a GPU. Both the
inference count (:func:`vpbench.profiling.count_flops`) and the training count
(:func:`vpbench.engine.budget.count_step_macs`) use :func:`flop_counter`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils import flop_counter as _fc

__all__ = ["flop_counter"]


def _sdpa_cpu(q: Any, k: Any, v: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    return int(_fc.sdpa_flop_count(q, k, v))  # type: ignore[no-untyped-call]


def _sdpa_cpu_backward(g: Any, q: Any, k: Any, v: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    return int(_fc.sdpa_backward_flop_count(g, q, k, v))  # type: ignore[no-untyped-call]


def flop_counter() -> _fc.FlopCounterMode:
    """A fresh ``FlopCounterMode`` (no display) that also counts CPU attention as attention."""
    aten = torch.ops.aten
    extra: dict[Any, Callable[..., int]] = {}
    if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu"):
        extra[aten._scaled_dot_product_flash_attention_for_cpu] = _sdpa_cpu
    if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu_backward"):
        extra[aten._scaled_dot_product_flash_attention_for_cpu_backward] = _sdpa_cpu_backward
    return _fc.FlopCounterMode(display=False, custom_mapping=extra)
