"""Stage 1 of DRBN, the deep recursive band network; introduced in notebooks/02_recursive_band_learning.

Naming of the scales: this library says ``full``, ``half`` and ``quarter``; the paper, the
authors' code and reading notes number them s1..s3 in different directions, so the kit uses
none of those numbers. Layer by layer this follows the authors' released code, because
their released weights must load and agree.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .errors import DRBNError


@dataclass
class DRBNConfig:
    """Knobs of stage 1. The defaults are the released model (557,668 parameters)."""

    recursions: int = 4  # T in the paper
    width: int = 16  # feature channels at full and half scale; the quarter scale uses 2x
    growth: int = 8  # channels each dense layer adds; the quarter scale uses 2x
    feature_residuals: bool = True  # f^t = Δf^t + f^(t-1) across recursions
    # The paper's recursive input: recursion t > 1 sees cat(x^(t-1), y). Without it, only the
    # previous estimate, as cat(x^(t-1), x^(t-1)) (the paper's ablation RBL-v3 drops this and
    # the feature residuals).
    recursive_input: bool = True


class BandOutputs(NamedTuple):
    """One recursion's estimate of the normal-light image at three scales.

    ``full`` is H x W, ``half`` H/2 x W/2, ``quarter`` H/4 x W/4.
    No clamp: values may leave [0, 1]; clamp only to display, save or score.
    """

    full: torch.Tensor
    half: torch.Tensor
    quarter: torch.Tensor


class Features(NamedTuple):
    """The decoder features f at three scales that feature residual learning carries on."""

    full: torch.Tensor
    half: torch.Tensor
    quarter: torch.Tensor


def upsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Bilinear upsampling with align_corners=False, as the released weights assume."""
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


class ResidualDenseBlock(nn.Module):
    """RDB(G0, G, C=4): four densely connected 3x3 conv + ReLU, 1x1 fusion, local residual.

    Written by hand because the released weights must map onto it one tensor to one tensor.
    """

    def __init__(self, channels: int, growth: int, layers: int = 4):
        super().__init__()
        self.layers = nn.ModuleList(
            conv3x3(channels + i * growth, growth) for i in range(layers)
        )
        self.fuse = nn.Conv2d(channels + layers * growth, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled():
            return self.forward_summed(x)
        features = x
        for conv in self.layers:
            # in place: a convolution's backward needs its input, not its output
            features = torch.cat((features, conv(features).relu_()), 1)
        return self.fuse(features) + x

    def forward_summed(self, x: torch.Tensor) -> torch.Tensor:
        """The same block without concatenating before every layer (the inference path).

        A conv over cat(f_0, ..., f_i) is the sum of convs over each f_j with the weight
        split by input channels, so layer i's pre-activation is accumulated from one conv
        per earlier feature map; only the 1x1 fusion sees them all concatenated, once.
        Agrees with ``forward`` to float32 rounding (about 1e-6), also in its gradients.
        """
        # torch.cat along channels is slow on CPU (measured in benchmarks/README.md)
        cl = x.is_contiguous(memory_format=torch.channels_last)
        layout = torch.channels_last if cl else torch.contiguous_format
        features = [x]
        for conv in self.layers:
            pre, start = None, 0
            for f in features:
                end = start + f.shape[1]
                # a sliced weight is not contiguous: oneDNN would fall back to a slow kernel
                w = conv.weight[:, start:end].contiguous(memory_format=layout)
                out = F.conv2d(f, w, conv.bias if start == 0 else None, padding=conv.padding)
                pre = out if pre is None else pre.add_(out)
                start = end
            features.append(pre.relu_())
        return self.fuse(torch.cat(features, 1)) + x


class BandLearningUnit(nn.Module):
    """One recursion: a small U-Net that maps a 6-channel input to three bands.

    Encoder full -> half -> quarter, decoder back up with skip additions, and one head per
    scale whose outputs are added coarse-to-fine: x_half = head_half(f_half) + up2(x_quarter).
    """

    def __init__(self, width: int = 16, growth: int = 8):
        super().__init__()
        wide = 2 * width
        self.entry = conv3x3(6, width)
        self.entry2 = conv3x3(width, width)
        self.encode_full = ResidualDenseBlock(width, growth)
        self.down_to_half = conv3x3(width, width, stride=2)
        self.encode_half = ResidualDenseBlock(width, growth)
        self.down_to_quarter = conv3x3(width, wide, stride=2)
        self.bottleneck = nn.Sequential(
            ResidualDenseBlock(wide, 2 * growth), ResidualDenseBlock(wide, 2 * growth)
        )
        self.up_to_half = nn.ConvTranspose2d(wide, width, 4, stride=2, padding=1)
        self.decode_half = ResidualDenseBlock(width, growth)
        self.up_to_full = nn.ConvTranspose2d(width, width, 4, stride=2, padding=1)
        self.decode_full = ResidualDenseBlock(width, growth)
        self.head_quarter = nn.Sequential(conv3x3(wide, width), conv3x3(width, 3))
        self.head_half = nn.Sequential(conv3x3(width, width), conv3x3(width, 3))
        self.head_full = nn.Sequential(conv3x3(width, width), conv3x3(width, 3))

    def forward(
        self, x: torch.Tensor, previous: Features | None = None
    ) -> tuple[BandOutputs, Features]:
        """Return the three bands and the decoder features f.

        With ``previous`` features, f^t = Δf^t + f^(t-1) is applied at each scale where
        f is formed, before it feeds the next scale up (as in the released code).
        """
        e0 = F.relu(self.entry(x))
        e_full = F.relu(self.entry2(e0))
        e_half = self.down_to_half(self.encode_full(e_full))
        e_quarter = self.down_to_quarter(self.encode_half(e_half))

        f_quarter = e_quarter + self.bottleneck(e_quarter)
        if previous is not None:
            f_quarter = f_quarter + previous.quarter
        f_half = e_half + self.decode_half(self.up_to_half(f_quarter))
        if previous is not None:
            f_half = f_half + previous.half
        f_full = e_full + self.decode_full(self.up_to_full(f_half)) + e0
        if previous is not None:
            f_full = f_full + previous.full

        x_quarter = self.head_quarter(f_quarter)
        x_half = self.head_half(f_half) + upsample(x_quarter, 2)
        x_full = self.head_full(f_full) + upsample(x_half, 2)
        return BandOutputs(x_full, x_half, x_quarter), Features(f_full, f_half, f_quarter)


def check_size(y: torch.Tensor) -> None:
    """Raise a clear error for inputs the network cannot take (it halves twice)."""
    if y.dim() != 4 or y.shape[1] != 3:
        raise DRBNError(
            f"DRBN expects a batch of RGB images shaped N x 3 x H x W, got {tuple(y.shape)}; "
            "convert the image to RGB and add a batch dimension (tensor[None])."
        )
    h, w = y.shape[-2:]
    if h % 4 or w % 4:
        raise DRBNError(
            f"DRBN needs height and width that are multiples of 4, got {h}x{w}; use "
            "drbn.enhance (it pads and crops back) or crop the image to "
            f"{h - h % 4}x{w - w % 4}."
        )


class DRBN(nn.Module):
    """Stage 1: T band-learning units, each refining the previous estimate.

    Recursion t = 1 sees cat(y, y); recursion t > 1 sees cat(x_full^(t-1), y) and adds the
    previous recursion's features. The units do not share weights. Only the last
    recursion's bands are supervised.
    """

    def __init__(self, config: DRBNConfig | None = None):
        super().__init__()
        self.config = config or DRBNConfig()
        if self.config.recursions < 1:
            raise DRBNError(f"recursions must be at least 1, got {self.config.recursions}")
        self.units = nn.ModuleList(
            BandLearningUnit(self.config.width, self.config.growth)
            for _ in range(self.config.recursions)
        )

    def recursions(self, y: torch.Tensor) -> list[BandOutputs]:
        """Every recursion's bands, t = 1..T (the last one is what ``forward`` returns)."""
        check_size(y)
        outputs: list[BandOutputs] = []
        features = None
        estimate = y  # x^0: recursion t = 1 sees cat(y, y)
        for unit in self.units:
            x_in = torch.cat((estimate, y if self.config.recursive_input else estimate), 1)
            bands, new_features = unit(x_in, features if self.config.feature_residuals else None)
            outputs.append(bands)
            features = new_features
            estimate = bands.full
        return outputs

    def forward(self, y: torch.Tensor) -> BandOutputs:
        """Enhance a low-light batch y in [0, 1] (N x 3 x H x W, H and W multiples of 4)."""
        return self.recursions(y)[-1]

    def for_inference(self) -> DRBN:
        """Eval mode with channels_last weights, the fastest layout on CPU; returns self.

        Use as ``with torch.inference_mode(): model(y)``; under no_grad the residual dense
        blocks also take their concatenation-free path (see benchmarks/README.md).
        """
        # channels_last convolutions: a 400x600 pass 0.57 s instead of 0.98 s on 2 cores
        return self.eval().to(memory_format=torch.channels_last)

    def for_training(self) -> DRBN:
        """Train mode with channels_last weights (feed channels_last batches); returns self.

        The same computation and gradients as the contiguous layout (tested), and the
        fastest layout for a training step on CPU (benchmarks/README.md).
        """
        return self.train().to(memory_format=torch.channels_last)


def zero_band_heads(model: DRBN) -> DRBN:
    """Start the last convolution of the last recursion's band heads (weights and bias) at 0,
    so that the supervised output x̂^T starts at 0; returns ``model``.

    With PyTorch's default initialisation x̂ starts as a random function of y whose sign
    differs per channel. SSIM's structure term deepens whichever correlation with x a channel
    starts with, so a channel that starts anti-correlated can stay in the negated optimum of
    -SSIM (``drbn.train.negated_channels``). From x̂^T = 0 every channel starts with no
    correlation of either sign: the luminance term first lifts the output, and the structure
    term grows the correlation from zero. Only the last recursion: earlier ones keep their
    random start, so that a recursion without the recursive input (RBL-v3) still passes y's
    content on. The released code uses the default start; the network and its loss are
    unchanged (results/ladder/negation/ counts runs of each start).
    """
    last = model.units[-1]
    for head in (last.head_full, last.head_half, last.head_quarter):
        nn.init.zeros_(head[-1].weight)
        nn.init.zeros_(head[-1].bias)
    return model


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
