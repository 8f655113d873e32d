"""Stage 2 of DRBN: band decomposition and recomposition; introduced in notebooks/03_band_recomposition."""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from .model import BandOutputs, ResidualDenseBlock, conv3x3, upsample

WEIGHT_MAPPINGS = ("released", "bounded")


class Bands(NamedTuple):
    """Δ-bands at full resolution; ``coarse + middle + fine`` equals the full-scale output.

    coarse = up4(x_quarter)
    middle = up2(x_half) - up4(x_quarter)
    fine   = x_full - up2(x_half)
    """

    coarse: torch.Tensor
    middle: torch.Tensor
    fine: torch.Tensor


def decompose(outputs: BandOutputs) -> Bands:
    """Split stage-1 outputs into three full-resolution bands (the x4 upsample is one step)."""
    coarse = upsample(outputs.quarter, 4)
    half_up = upsample(outputs.half, 2)
    return Bands(coarse, half_up - coarse, outputs.full - half_up)


@dataclass
class RecomposerConfig:
    """Knobs of the recomposition network. Defaults are the released model (19,161 parameters)."""

    width: int = 16
    growth: int = 8
    # 'released': w = 0.8 z + 0.6 (unbounded; the released code never applies its sigmoid).
    # 'bounded':  w = 0.6 + 0.8 sigmoid(z), in [0.6, 1.4], probably what was meant.
    weight_mapping: str = "released"


class Recomposed(NamedTuple):
    """x_F = w1 * coarse + w2 * middle + w3 * fine, with the per-pixel, per-channel weights."""

    image: torch.Tensor
    w1: torch.Tensor
    w2: torch.Tensor
    w3: torch.Tensor


class Recomposer(nn.Module):
    """Predicts weights w1, w2, w3 from cat(y, bands) and recombines the bands: x̂_F = Σ_i w_i ⊙ Δ̂_i."""

    def __init__(self, config: RecomposerConfig | None = None):
        super().__init__()
        self.config = config or RecomposerConfig()
        if self.config.weight_mapping not in WEIGHT_MAPPINGS:
            raise ValueError(
                f"weight_mapping must be one of {WEIGHT_MAPPINGS}, got {self.config.weight_mapping!r}"
            )
        width = self.config.width
        self.entry = conv3x3(12, width)
        self.entry2 = conv3x3(width, width)
        self.block = ResidualDenseBlock(width, self.config.growth)
        self.fuse = nn.Sequential(nn.Conv2d(width, width, 1), conv3x3(width, width))
        self.head = nn.Sequential(conv3x3(width, width), conv3x3(width, 9))

    def weights(self, y: torch.Tensor, bands: Bands) -> torch.Tensor:
        """The 9-channel weight map w (w1 = channels 0-2, w2 = 3-5, w3 = 6-8)."""
        skip = self.entry(torch.cat((y, *bands), 1))
        z = self.head(self.fuse(self.block(self.entry2(skip))) + skip)
        if self.config.weight_mapping == "bounded":
            return 0.6 + 0.8 * torch.sigmoid(z)
        return 0.8 * z + 0.6

    def forward(self, y: torch.Tensor, bands: Bands) -> Recomposed:
        w1, w2, w3 = self.weights(y, bands).chunk(3, dim=1)
        image = w1 * bands.coarse + w2 * bands.middle + w3 * bands.fine
        return Recomposed(image, w1, w2, w3)
