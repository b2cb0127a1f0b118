"""The embedded dataset ``glyphs``: Moving-MNIST-like clips that need no download.

Digits are rendered from the font that ships inside Pillow (``ImageFont.load_default``),
varied in size, stroke, rotation and shear, and moved with the standard Moving-MNIST
generator (two digits, 64x64, bouncing, 10 -> 10 frames).
"""

from __future__ import annotations

from collections.abc import Callable

import vpbench


@vpbench.hookimpl
def register_datasets(register: Callable[[vpbench.DatasetSpec], None]) -> None:
    register(
        vpbench.DatasetSpec(
            name="glyphs",
            target="vpbench_glyphs.dataset:GlyphsDataset",
            description="embedded Moving-MNIST-like digits drawn from Pillow's font; no download",
            frame_shape=(1, 64, 64),
            context=10,
            horizon=10,
            source="generated (Pillow's bundled Aileron font)",
        )
    )
