"""ConvLSTM, PredRNN and PredRNN-V2, with correct cells (see README.md).

Only registers specs: the models live in :mod:`vpbench_rnn.convlstm`,
:mod:`vpbench_rnn.predrnn` and :mod:`vpbench_rnn.predrnn_v2` and are imported when used.
"""

from __future__ import annotations

from collections.abc import Callable

import vpbench

# tiny variants for the registry-driven tests: 2 layers of 8 channels, 3×3 filters, patch 4
_TINY = {"num_layers": 2, "hidden": 8, "filter_size": 3, "patch_size": 4}


@vpbench.hookimpl
def register_models(register: Callable[[vpbench.ModelSpec], None]) -> None:
    register(
        vpbench.ModelSpec(
            name="convlstm",
            target="vpbench_rnn.convlstm:ConvLSTM",
            description="ConvLSTM, 4x128 5x5, patch reshaping, scheduled sampling (correct h = o * tanh(c) cell)",
            paper="Shi et al., Convolutional LSTM Network, NeurIPS 2015",
            tiny=dict(_TINY),
        )
    )
    register(
        vpbench.ModelSpec(
            name="predrnn",
            target="vpbench_rnn.predrnn:PredRNN",
            description="PredRNN, 4x128 ST-LSTM with zigzag spatiotemporal memory, scheduled sampling",
            paper="Wang et al., PredRNN: Recurrent Neural Networks for Predictive Learning using "
            "Spatiotemporal LSTMs, NeurIPS 2017",
            tiny=dict(_TINY),
        )
    )
    register(
        vpbench.ModelSpec(
            name="predrnn-v2",
            target="vpbench_rnn.predrnn_v2:PredRNNv2",
            description="PredRNN-V2, PredRNN with the decoupling loss on memory increments and reverse scheduled sampling",
            paper="Wang et al., PredRNN: A Recurrent Neural Network for Spatiotemporal Predictive Learning, "
            "IEEE TPAMI 2022",
            tiny=dict(_TINY),
        )
    )
