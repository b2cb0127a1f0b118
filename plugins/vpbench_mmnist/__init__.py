"""Moving MNIST (Srivastava et al. 2015) as the OpenSTL tables use it: 10 -> 10 at 64x64x1.

Training clips are generated on the fly from the MNIST training digits; the test set is the
fixed ``mnist_test_seq.npy``. The dataset code lives in :mod:`vpbench_mmnist.dataset`.
"""

from __future__ import annotations

from collections.abc import Callable

import vpbench


@vpbench.hookimpl
def register_datasets(register: Callable[[vpbench.DatasetSpec], None]) -> None:
    register(
        vpbench.DatasetSpec(
            name="mmnist",
            target="vpbench_mmnist.dataset:MovingMNIST",
            description="Moving MNIST, two bouncing digits; train generated on the fly, test mnist_test_seq.npy",
            frame_shape=(1, 64, 64),
            context=10,
            horizon=10,
            source="http://www.cs.toronto.edu/~nitish/unsupervised_video/ (test), http://yann.lecun.com/exdb/mnist/ (digits)",
        )
    )
