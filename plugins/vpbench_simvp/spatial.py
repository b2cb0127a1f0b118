"""SimVP's spatial encoder and decoder (shared by SimVP v1, v2 and TAU).

Each layer is ``y = SiLU(GN_2(conv_k(x)))`` (GroupNorm with 2 groups). With ``N_S`` layers the
encoder halves the resolution at every odd layer (``2^(N_S/2)`` in all) and the decoder doubles
it at every even layer with a convolution to ``4C`` channels and a pixel shuffle. The first
encoder layer's full-resolution output is the skip added before the last decoder layer::

    e_1 = enc_1(x),  z = enc_{N_S} ∘ … ∘ enc_2(e_1)                 x [BT, C, H, W] -> z [BT, C_S, H', W']
    ŷ = readout(dec_{N_S}(dec_{N_S-1} ∘ … ∘ dec_1(z) + e_1))        z -> ŷ [BT, C, H, W]
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

__all__ = ["ConvNormAct", "Encoder", "Decoder"]


class ConvNormAct(nn.Module):
    """``SiLU(GN_2(conv(x)))``; ``down``: stride 2, ``up``: conv to ``4·C_out`` then pixel shuffle ×2."""

    def __init__(self, cin: int, cout: int, kernel: int, mode: Literal["same", "down", "up"] = "same") -> None:
        super().__init__()
        stride = 2 if mode == "down" else 1
        self.conv = nn.Conv2d(cin, cout * 4 if mode == "up" else cout, kernel, stride, (kernel - stride + 1) // 2)
        self.shuffle = nn.PixelShuffle(2) if mode == "up" else nn.Identity()
        self.norm = nn.GroupNorm(2, cout)
        self.act = nn.SiLU()
        nn.init.trunc_normal_(self.conv.weight, std=0.02)  # OpenSTL's BasicConv2d initialisation
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.norm(self.shuffle(self.conv(x))))


class Encoder(nn.Module):
    """``[BT, C, H, W] -> (z [BT, C_S, H/2^(N_S/2), W/2^(N_S/2)], e_1 [BT, C_S, H, W])``."""

    def __init__(self, cin: int, hidden: int, layers: int, kernel: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            ConvNormAct(cin if i == 0 else hidden, hidden, kernel, "down" if i % 2 else "same") for i in range(layers)
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        skip = z = self.layers[0](x)
        for layer in self.layers[1:]:
            z = layer(z)
        return z, skip


class Decoder(nn.Module):
    """``(z [BT, C_S, H', W'], e_1 [BT, C_S, H, W]) -> [BT, C, H, W]``."""

    def __init__(self, hidden: int, cout: int, layers: int, kernel: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            ConvNormAct(hidden, hidden, kernel, "same" if i % 2 else "up") for i in range(layers)
        )
        self.readout = nn.Conv2d(hidden, cout, 1)

    def forward(self, z: Tensor, skip: Tensor) -> Tensor:
        for layer in self.layers[:-1]:
            z = layer(z)
        return self.readout(self.layers[-1](z + skip))
