"""Enhance whole images of any size with stage 1 and, optionally, the stage-2 recomposer.

The bare network needs H and W divisible by 4; here images are reflect-padded up to the
next multiple of 4 and the outputs cropped back, so any size works.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from .device import device_of
from .images import to_image, to_tensor
from .model import DRBN
from .recompose import Bands, Recomposer, decompose


def pad_to_multiple(y: torch.Tensor, multiple: int = 4) -> torch.Tensor:
    """Reflect-pad the bottom and right of N x C x H x W so H and W divide by ``multiple``."""
    h, w = y.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    if not (pad_h or pad_w):
        return y
    # reflect needs the pad to be smaller than the side; tiny images fall back to replicate
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(y, (0, pad_w, 0, pad_h), mode=mode)


class Enhancement(NamedTuple):
    """Everything ``enhance`` computed for one image, as H x W x 3 float32 arrays (no clamp).

    ``output`` is the recomposed image when a recomposer was given, else stage 1's x_full.
    """

    output: np.ndarray
    stage1: np.ndarray
    bands: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    weights: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


@torch.inference_mode()
def enhance_tensor(
    stage1: DRBN, y: torch.Tensor, recomposer: Recomposer | None = None
) -> tuple[torch.Tensor, torch.Tensor, Bands | None, tuple | None]:
    """Run stage 1 (and the recomposer) on N x 3 x H x W of any H, W; crop outputs back.

    ``y`` is moved to the device of ``stage1``; the outputs stay there.
    """
    h, w = y.shape[-2:]
    y = y.to(device_of(stage1))
    padded = pad_to_multiple(y).contiguous(memory_format=torch.channels_last)
    outputs = stage1(padded)
    full = outputs.full[..., :h, :w]
    if recomposer is None:
        return full, full, None, None
    bands = decompose(outputs)
    result = recomposer(padded, bands)
    crop = lambda t: t[..., :h, :w]  # noqa: E731
    return (
        crop(result.image),
        full,
        Bands(*(crop(b) for b in bands)),
        tuple(crop(wt) for wt in (result.w1, result.w2, result.w3)),
    )


def enhance(stage1: DRBN, image: np.ndarray, recomposer: Recomposer | None = None) -> Enhancement:
    """Enhance one H x W x 3 image in [0, 1] (any size). See :class:`Enhancement`."""
    output, full, bands, weights = enhance_tensor(stage1, to_tensor(image), recomposer)
    return Enhancement(
        to_image(output),
        to_image(full),
        None if bands is None else tuple(to_image(b) for b in bands),
        None if weights is None else tuple(to_image(wt) for wt in weights),
    )
