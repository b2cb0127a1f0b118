"""Digit glyphs rendered from Pillow's bundled font with random size, stroke and shape."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["GLYPH", "render_glyph"]

#: side of a glyph image, as MNIST's 28x28 digits
GLYPH = 28


def render_glyph(rng: np.random.Generator) -> np.ndarray:
    """One random digit, uint8 ``[28, 28]``, white on black, roughly centred like MNIST."""
    digit = str(int(rng.integers(10)))
    size = int(rng.integers(20, 34))
    stroke = int(rng.integers(0, 3))
    font = ImageFont.load_default(size=size)
    canvas = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(canvas).text((32, 32), digit, fill=255, font=font, anchor="mm", stroke_width=stroke, stroke_fill=255)
    # shape: rotation and horizontal shear, as handwriting slants
    angle = float(rng.uniform(-25, 25))
    shear = float(rng.uniform(-0.35, 0.35))
    canvas = canvas.rotate(angle, resample=Image.BILINEAR, center=(32, 32))
    canvas = canvas.transform((64, 64), Image.AFFINE, (1, shear, -32 * shear, 0, 1, 0), resample=Image.BILINEAR)
    box = canvas.getbbox()
    if box is None:  # pragma: no cover - a digit always has ink
        return np.zeros((GLYPH, GLYPH), np.uint8)
    ink = canvas.crop(box)
    # fit the ink into a 20x20 box and centre it in 28x28 (MNIST's normalisation)
    scale = 20.0 / max(ink.size)
    w, h = max(1, round(ink.size[0] * scale)), max(1, round(ink.size[1] * scale))
    ink = ink.resize((w, h), Image.BILINEAR)
    out = Image.new("L", (GLYPH, GLYPH), 0)
    out.paste(ink, ((GLYPH - w) // 2, (GLYPH - h) // 2))
    return np.asarray(out, dtype=np.uint8)
