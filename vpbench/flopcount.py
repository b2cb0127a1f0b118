"""The one FLOP counter of vpbench: torch's, plus the CPU attention kernel it lacks and a
correct count of a grouped convolution's weight gradient.

``torch.utils.flop_counter`` has formulas for matrix products, convolutions and the CUDA
attention kernels, but on CPU ``scaled_dot_product_attention`` dispatches to
``_scaled_dot_product_flash_attention_for_cpu``, which it does not know: without this,
attention would count 0 on CPU and the same model would count more on a GPU.

Its ``convolution_backward`` formula counts the weight gradient of a convolution with
``groups`` g as g times the forward convolution (it treats the whole input's channels as
one group; torch 2.14). The weight gradient multiplies each input value with each output
gradient exactly where the forward pass multiplied it with a weight, so it costs what the
forward convolution costs, grouped or not; a depthwise 3x3 layer of 512 channels was
charged 512x its cost, which gave TAU's and SimVP's training steps 7-11x their forward
MACs instead of about 3x. The input gradient's formula is right and kept.

Both the inference count (:func:`vpbench.profiling.count_flops`) and the training count
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


def _conv_backward(
    grad_out_shape: Any,
    x_shape: Any,
    w_shape: Any,
    _bias: Any,
    _stride: Any,
    _padding: Any,
    _dilation: Any,
    transposed: bool,
    _output_padding: Any,
    _groups: Any,
    output_mask: Any,
    out_shape: Any = None,
    **kwargs: Any,
) -> int:
    flops = 0
    if output_mask[0]:  # input gradient: the transposed convolution of the output gradient (torch's formula)
        flops += _fc.conv_flop_count(grad_out_shape, w_shape, _fc.get_shape(out_shape[0]), not transposed)  # type: ignore[no-untyped-call]
    if output_mask[1]:  # weight gradient: as many products as the forward convolution, whatever the groups
        flops += _fc.conv_flop_count(x_shape, w_shape, grad_out_shape, transposed)
    return int(flops)


def flop_counter() -> _fc.FlopCounterMode:
    """A fresh ``FlopCounterMode`` (no display) that also counts CPU attention as attention."""
    aten = torch.ops.aten
    extra: dict[Any, Callable[..., int]] = {aten.convolution_backward: _conv_backward}
    if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu"):
        extra[aten._scaled_dot_product_flash_attention_for_cpu] = _sdpa_cpu
    if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu_backward"):
        extra[aten._scaled_dot_product_flash_attention_for_cpu_backward] = _sdpa_cpu_backward
    return _fc.FlopCounterMode(display=False, custom_mapping=extra)
