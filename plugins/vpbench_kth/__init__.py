"""KTH human actions (Schuldt et al. 2004) as the OpenSTL / PredRNN tables use it.

10 -> 20 frames at 128x128, grey channel 0, bilinear resize from 160x120, persons 1-16
train / 17-25 test, of which persons 15-16 validate by default so that model selection never
sees a test person. The dataset code lives in :mod:`vpbench_kth.dataset`.
"""

from __future__ import annotations

from collections.abc import Callable

import vpbench


@vpbench.hookimpl
def register_datasets(register: Callable[[vpbench.DatasetSpec], None]) -> None:
    register(
        vpbench.DatasetSpec(
            name="kth",
            target="vpbench_kth.dataset:KTH",
            description="KTH actions, 10 -> 20 at 128x128 grey, persons 1-14 train, 15-16 val, 17-25 test (OpenSTL clips)",
            frame_shape=(1, 128, 128),
            context=10,
            horizon=20,
            source="http://www.csc.kth.se/cvap/actions/",
        )
    )
