"""PhyDNet's two recurrent branches and its image encoder/decoder (Le Guen & Thome, CVPR 2020).

Every tensor is ``[B, channels, h, w]`` with ``h × w`` the latent size (frame size / ``patch``);
``*`` is a "same" convolution, ``∘`` the element-wise product.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["PhyCell", "ConvLSTMCell", "down_block", "up_block", "FrameEncoder", "FrameDecoder"]


class PhyCell(nn.Module):
    """PhyCell (eq. 4–5): a physical predictor followed by a Kalman-like correction::

        h̃_t   = h_{t-1} + Φ(h_{t-1})                      prediction, Φ = conv_1×1 ∘ GN ∘ conv_{k×k}
        K_t   = σ(W_K * [E_p(x_t), h_{t-1}] + b_K)         gain, 3×3
        h_t   = h̃_t + K_t ∘ (E_p(x_t) − h̃_t)              correction

    ``Φ``'s first convolution has ``k²`` (= 49 for 7×7) filters per input channel; they carry
    the moment constraint (:mod:`.moments`). GroupNorm with 7 groups, as published.
    """

    def __init__(self, channels: int, k: int = 7) -> None:
        super().__init__()
        self.k = k
        self.conv_phi = nn.Conv2d(channels, k * k, k, padding=k // 2)  # [C -> k², k×k]: the derivative filters
        self.norm_phi = nn.GroupNorm(7, k * k)
        self.out_phi = nn.Conv2d(k * k, channels, 1)  # combines the k² derivatives
        self.gate = nn.Conv2d(2 * channels, channels, 3, padding=1)

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        gain = torch.sigmoid(self.gate(torch.cat([x, h], dim=1)))
        h_tilde: Tensor = h + self.out_phi(self.norm_phi(self.conv_phi(h)))
        return h_tilde + gain * (x - h_tilde)


class ConvLSTMCell(nn.Module):
    """PhyDNet's residual branch: a ConvLSTM cell with biases and one convolution on ``[x, h]``::

        [i, f, o, g] = W * [X_t, H_{t-1}] + b
        C_t = σ(f) ∘ C_{t-1} + σ(i) ∘ tanh(g),    H_t = σ(o) ∘ tanh(C_t)
    """

    def __init__(self, cin: int, hidden: int, k: int = 3) -> None:
        super().__init__()
        self.hidden = hidden
        self.conv = nn.Conv2d(cin + hidden, 4 * hidden, k, padding=k // 2)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        h, c = state
        i, f, o, g = self.conv(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


def down_block(cin: int, cout: int, stride: int) -> nn.Sequential:
    """3×3 conv (stride 1 or 2) → GroupNorm(16) → LeakyReLU(0.2): the DCGAN block of the paper."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.GroupNorm(16, cout), nn.LeakyReLU(0.2))


def up_block(cin: int, cout: int, stride: int) -> nn.Sequential:
    """3×3 transposed conv (×1 or ×2) → GroupNorm(16) → LeakyReLU(0.2)."""
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, 3, stride, 1, output_padding=stride - 1),
        nn.GroupNorm(16, cout),
        nn.LeakyReLU(0.2),
    )


class FrameEncoder(nn.Module):
    """``E``: ``[B, C, H, W] -> [B, 2nf, H/p, W/p]`` (strides 2, 1, p/2)."""

    def __init__(self, channels: int, nf: int, patch: int) -> None:
        super().__init__()
        self.net = nn.Sequential(down_block(channels, nf, 2), down_block(nf, nf, 1), down_block(nf, 2 * nf, patch // 2))

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.net(x)
        return out


class FrameDecoder(nn.Module):
    """``D``: ``[B, 2nf, H/p, W/p] -> [B, C, H, W]`` logits (strides 2, 1, p/2; no norm on the last)."""

    def __init__(self, channels: int, nf: int, patch: int) -> None:
        super().__init__()
        s = patch // 2
        self.net = nn.Sequential(
            up_block(2 * nf, nf, 2),
            up_block(nf, nf, 1),
            nn.ConvTranspose2d(nf, channels, 3, s, 1, output_padding=s - 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.net(x)
        return out
