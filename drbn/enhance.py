"""Enhancing images of any size, in bounded memory; introduced in notebooks/02_recursive_band_learning.

Stage 1 and, optionally, the stage-2 recomposer: ``recursions`` is introduced in
notebooks/02_recursive_band_learning, ``enhance`` in notebooks/03_band_recomposition.

The bare network needs H and W divisible by 4; here images are reflect-padded up to the
next multiple of 4 and the outputs cropped back, so any size works. Large images run in
overlapping tiles so that memory stays bounded: each tile is computed with ``overlap``
pixels of context on every side and only its centre is kept, wider than the distance over
which the network's output depends on its input, so the seams do not show.
"""
from __future__ import annotations

import math
import os
from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .device import device_of
from .errors import DRBNError
from .images import to_tensor
from .model import DRBN, BandOutputs
from .recompose import Bands, Recomposer, decompose

MULTIPLE = 4  # the network halves twice
# Context kept around each tile, in pixels: wider than the reach of the network's output.
# With the released stage 1 (T = 4), cutting a photo changes the output by about 1 8-bit
# level 128 pixels from the cut, 0.1 at 160 and nothing beyond about 200
# (benchmarks/README.md, "Tiled inference").
OVERLAP = 160
# Peak memory of inference per pixel of a tile (stage 1: slope of peak RSS against pixels,
# about 1060 bytes, benchmarks/bench_tiling.py; rounded up for the recomposer's maps).
BYTES_PER_PIXEL = 1200
MEMORY_BUDGET = 3 << 29  # 1.5 GiB: "auto" keeps a tile's activations under this
Tile = int | str | None


def pad_to_multiple(y: torch.Tensor, multiple: int = MULTIPLE) -> torch.Tensor:
    """Reflect-pad the bottom and right of N x C x H x W so H and W divide by ``multiple``."""
    h, w = y.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    if not (pad_h or pad_w):
        return y
    # reflect needs the pad to be smaller than the side; tiny images fall back to replicate
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(y, (0, pad_w, 0, pad_h), mode=mode)


# ----------------------------------------------------------------------------- tiles
def available_memory(device: torch.device) -> int:
    """Bytes free for activations: free GPU memory, or the system's available memory."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def auto_tile(
    height: int, width: int, device: torch.device = torch.device("cpu"), overlap: int = OVERLAP
) -> int | None:
    """The tile side for an image of this size: None (the whole image at once) when its
    activations fit the budget, else the largest square tile that does.

    Budget: ``BYTES_PER_PIXEL`` per pixel of a tile must fit in ``MEMORY_BUDGET`` and in a
    quarter of the memory free on ``device``.
    """
    budget = min(MEMORY_BUDGET, available_memory(device) // 4)
    pixels = budget // BYTES_PER_PIXEL
    if height * width <= pixels:
        return None
    side = math.isqrt(pixels) // MULTIPLE * MULTIPLE
    return max(side, 2 * round_up(overlap) + 4 * MULTIPLE)


def round_up(n: int, multiple: int = MULTIPLE) -> int:
    return -(-n // multiple) * multiple


def tile_windows(size: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Split one side of ``size`` pixels (a multiple of 4) into windows of ``tile`` pixels.

    Returns (window start, window end, keep start, keep end): the network sees
    [window start, window end) and its output is kept on [keep start, keep end). Windows are
    spread evenly from the first pixel to the last, consecutive ones overlapping by at least
    2 x ``overlap``; the kept parts meet in the middle of each overlap, so they cover the
    side once and each lies at least ``overlap`` pixels inside its window, except at the
    image border (where the whole image has a border too).
    """
    if size <= tile:
        return [(0, size, 0, size)]
    count = -(-(size - tile) // (tile - 2 * overlap)) + 1
    starts = [i * (size - tile) // (count - 1) // MULTIPLE * MULTIPLE for i in range(count)]
    bounds = [0]
    for left, right in zip(starts, starts[1:]):
        shared = left + tile - right  # pixels both windows see, at least 2 x overlap
        bounds.append(right + shared // (2 * MULTIPLE) * MULTIPLE)
    bounds.append(size)
    return [(s, s + tile, bounds[i], bounds[i + 1]) for i, s in enumerate(starts)]


def run_tiled(
    fn: Callable[[torch.Tensor], Sequence[torch.Tensor]],
    y: torch.Tensor,
    tile: int | None,
    overlap: int = OVERLAP,
) -> list[np.ndarray]:
    """Apply ``fn`` to overlapping tiles of ``y`` (1 x 3 x H x W, H and W multiples of 4) and
    stitch its outputs.

    ``fn`` maps a 1 x 3 x h x w window to tensors 1 x C x h/s x w/s with s in (1, 2, 4) (a
    band at full, half or quarter scale); the results are float32 arrays H/s x W/s x C.
    Tiles and margins are multiples of 4, so the half- and quarter-scale grids of a tile
    coincide with those of the whole image.
    """
    h, w = y.shape[-2:]
    if h % MULTIPLE or w % MULTIPLE:
        raise DRBNError(f"run_tiled needs H and W that are multiples of 4, got {h}x{w}; pad first.")
    if tile is not None:
        overlap = round_up(overlap)
        tile = tile // MULTIPLE * MULTIPLE
        if tile <= 2 * overlap:
            raise DRBNError(
                f"tile {tile} leaves nothing inside the {overlap}-pixel overlap on each side; "
                f"use a tile larger than {2 * overlap} (or no tiling: tile=None, --tile none)."
            )
    rows = tile_windows(h, tile or h, overlap)
    cols = tile_windows(w, tile or w, overlap)
    outputs: list[np.ndarray] = []
    for r0, r1, kr0, kr1 in rows:
        for c0, c1, kc0, kc1 in cols:
            window = y[..., r0:r1, c0:c1]
            for k, t in enumerate(fn(window)):
                s = (r1 - r0) // t.shape[-2]
                if k == len(outputs):  # first window: allocate the stitched outputs
                    outputs.append(np.empty((h // s, w // s, t.shape[1]), np.float32))
                part = t[0, :, (kr0 - r0) // s : (kr1 - r0) // s, (kc0 - c0) // s : (kc1 - c0) // s]
                outputs[k][kr0 // s : kr1 // s, kc0 // s : kc1 // s] = (
                    part.detach().float().cpu().permute(1, 2, 0).numpy()
                )
    return outputs


def check_tiling(tile: Tile, overlap: int) -> None:
    """Refuse, before any work, a tile or overlap no image can be enhanced with."""
    if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0:
        raise DRBNError(f"overlap must be a whole number of pixels >= 0, got {overlap!r} (default {OVERLAP}).")
    if tile == "auto" or tile is None:
        return
    if isinstance(tile, bool) or not isinstance(tile, int) or tile <= 0:
        raise DRBNError(f"tile must be a positive number of pixels, 'auto' or None, got {tile!r}.")
    if tile // MULTIPLE * MULTIPLE <= 2 * round_up(overlap):
        raise DRBNError(
            f"tile {tile} leaves nothing inside the {round_up(overlap)}-pixel overlap on each side; "
            f"use a tile larger than {2 * round_up(overlap)} (or no tiling: tile=None, --tile none)."
        )


def resolve_tile(tile: Tile, height: int, width: int, device: torch.device, overlap: int) -> int | None:
    check_tiling(tile, overlap)
    if tile == "auto":
        return auto_tile(height, width, device, overlap)
    if tile is None or (isinstance(tile, int) and not isinstance(tile, bool) and tile > 0):
        return tile
    raise DRBNError(f"tile must be a positive number of pixels, 'auto' or None, got {tile!r}.")


def prepare(image: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """The image as a 1 x 3 x H' x W' tensor padded to multiples of 4, and its own H and W."""
    y = image if isinstance(image, torch.Tensor) else to_tensor(image)
    if y.dim() == 3:
        y = y[None]
    if y.dim() != 4 or y.shape[:2] != (1, 3):
        raise DRBNError(
            f"expected one RGB image (H x W x 3 array or 1 x 3 x H x W tensor), got shape "
            f"{tuple(y.shape)}; convert it to RGB and pass images one at a time."
        )
    h, w = y.shape[-2:]
    return pad_to_multiple(y.float()), h, w


def on_device(stage1: DRBN, window: torch.Tensor) -> torch.Tensor:
    return window.to(device_of(stage1)).contiguous(memory_format=torch.channels_last)


# ----------------------------------------------------------------------------- stage 1
def recursions(
    stage1: DRBN, image: np.ndarray | torch.Tensor, tile: Tile = "auto", overlap: int = OVERLAP
) -> list[BandOutputs]:
    """Every recursion's bands x̂^t (t = 1..T) for one image of any size, as float32 arrays:
    ``full`` H x W x 3, ``half`` ceil(H/2) x ceil(W/2) x 3, ``quarter`` ceil(H/4) x ceil(W/4) x 3.

    ``image``: H x W x 3 in [0, 1] (or a 1 x 3 x H x W tensor). Pads to multiples of 4,
    runs ``stage1.recursions`` (in tiles for large images, see ``enhance``) and crops back.
    """
    y, h, w = prepare(image)

    @torch.inference_mode()
    def all_bands(window):
        return [band for bands in stage1.recursions(on_device(stage1, window)) for band in bands]

    arrays = run_tiled(all_bands, y, resolve_tile(tile, *y.shape[-2:], device_of(stage1), overlap), overlap)
    crop = lambda a, s: a[: -(-h // s), : -(-w // s)]  # noqa: E731
    return [
        BandOutputs(crop(full, 1), crop(half, 2), crop(quarter, 4))
        for full, half, quarter in zip(arrays[0::3], arrays[1::3], arrays[2::3])
    ]


# ----------------------------------------------------------------------------- stage 1 + 2
class Enhancement(NamedTuple):
    """Everything ``enhance`` computed for one image, as H x W x 3 float32 arrays (no clamp).

    ``output`` is the recomposed image when a recomposer was given, else stage 1's x_full.
    """

    output: np.ndarray
    stage1: np.ndarray
    bands: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    weights: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


def enhance_window(
    stage1: DRBN, y: torch.Tensor, recomposer: Recomposer | None = None
) -> list[torch.Tensor]:
    """Stage 1 (and the recomposer, on the bands decomposed from this same window) on
    1 x 3 x h x w, h and w multiples of 4: [x_full] or [x_F, x_full, 3 bands, w1, w2, w3]."""
    outputs = stage1(y)
    if recomposer is None:
        return [outputs.full]
    bands = decompose(outputs)
    result = recomposer(y, bands)
    return [result.image, outputs.full, *bands, result.w1, result.w2, result.w3]


@torch.inference_mode()
def enhance_tensor(
    stage1: DRBN, y: torch.Tensor, recomposer: Recomposer | None = None
) -> tuple[torch.Tensor, torch.Tensor, Bands | None, tuple | None]:
    """Run stage 1 (and the recomposer) on N x 3 x H x W of any H, W, whole images at once;
    crop outputs back.

    ``y`` is moved to the device of ``stage1``; the outputs stay there.
    """
    h, w = y.shape[-2:]
    padded = on_device(stage1, pad_to_multiple(y))
    out = [t[..., :h, :w] for t in enhance_window(stage1, padded, recomposer)]
    if recomposer is None:
        return out[0], out[0], None, None
    return out[0], out[1], Bands(*out[2:5]), tuple(out[5:8])


def enhance(
    stage1: DRBN,
    image: np.ndarray,
    recomposer: Recomposer | None = None,
    tile: Tile = "auto",
    overlap: int = OVERLAP,
) -> Enhancement:
    """Enhance one H x W x 3 image in [0, 1] (any size). See :class:`Enhancement`.

    ``tile``: ``"auto"`` runs the whole image at once when its activations fit in memory
    (see ``auto_tile``) and square tiles otherwise; an int is the tile side in pixels
    (a multiple of 4, larger than 2 x ``overlap``); None forces the whole image. The
    recomposer sees the same tiles as stage 1, its bands decomposed per tile.
    """
    y, h, w = prepare(image)
    chosen = resolve_tile(tile, *y.shape[-2:], device_of(stage1), overlap)
    fn = torch.inference_mode()(lambda window: enhance_window(stage1, on_device(stage1, window), recomposer))
    arrays = [a[:h, :w] for a in run_tiled(fn, y, chosen, overlap)]
    if recomposer is None:
        return Enhancement(arrays[0], arrays[0])
    return Enhancement(arrays[0], arrays[1], tuple(arrays[2:5]), tuple(arrays[5:8]))
