"""Image-quality metrics, with their conventions written down.

Introduced in notebooks/02_recursive_band_learning.

Every metric is computed on 8-bit RGB: a float output in [0, 1] is clamped and rounded to
0..255 first (``drbn.images.to_uint8``), as a saved PNG would be, then scored in float64
with data range 255.

- PSNR (full image): the headline, as later papers report it.
- SSIM (full image): Gaussian window 11x11, σ = 1.5, population covariance, per RGB channel
  then averaged (Wang et al. 2004, skimage's ``gaussian_weights=True`` setting).
- PSNR (10-px border shaved, as released): the authors' test script shaves 10 pixels from
  every side before PSNR, a leftover of its super-resolution ancestry. It has no SSIM.

Identical images have PSNR = inf (zero error). It is returned as inf, not capped, so a
mean over images that includes one is inf too: that is a sign the output is the target.
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from .errors import DRBNError
from .images import to_uint8

PSNR = "PSNR (full image)"
SSIM = "SSIM (full image)"
PSNR_RELEASED = "PSNR (10-px border shaved, as released)"
LABELS = {"psnr": PSNR, "ssim": SSIM, "psnr_released": PSNR_RELEASED}  # key -> column name

RELEASED_SHAVE = 10


def as_uint8(image: np.ndarray) -> np.ndarray:
    """uint8 arrays pass through; float images in [0, 1] are clamped and rounded."""
    image = np.asarray(image)
    return image if image.dtype == np.uint8 else to_uint8(image)


def check_pair(output: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both images as uint8 H x W x 3, or a DRBNError naming both shapes."""
    output, target = as_uint8(output), as_uint8(target)
    if output.shape != target.shape:
        raise DRBNError(
            f"cannot score images of different shapes: output {output.shape}, target "
            f"{target.shape}; compare each output with the ground truth of the same image."
        )
    if output.ndim != 3 or output.shape[-1] != 3:
        raise DRBNError(f"metrics expect H x W x 3 RGB images, got shape {output.shape}.")
    return output, target


def psnr(output: np.ndarray, target: np.ndarray, shave: int = 0) -> float:
    """PSNR in dB on 8-bit RGB, over all pixels and channels; ``shave`` crops every side."""
    output, target = check_pair(output, target)
    if shave:
        h, w = output.shape[:2]
        if h <= 2 * shave or w <= 2 * shave:
            raise DRBNError(f"image of {h}x{w} is too small to shave {shave} pixels per side.")
        output = output[shave:-shave, shave:-shave]
        target = target[shave:-shave, shave:-shave]
    if np.array_equal(output, target):
        return math.inf  # zero error; skimage would return inf too, with a warning
    return float(
        peak_signal_noise_ratio(
            target.astype(np.float64), output.astype(np.float64), data_range=255
        )
    )


def ssim(output: np.ndarray, target: np.ndarray) -> float:
    """SSIM on 8-bit RGB: Gaussian 11x11, σ 1.5, per channel, border of 5 px excluded."""
    output, target = check_pair(output, target)
    return float(
        structural_similarity(
            target.astype(np.float64),
            output.astype(np.float64),
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            channel_axis=-1,
            data_range=255,
        )
    )


def score(output: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """All three metrics of one image: ``{'psnr', 'ssim', 'psnr_released'}`` (see LABELS)."""
    output, target = check_pair(output, target)
    return {
        "psnr": psnr(output, target),
        "ssim": ssim(output, target),
        "psnr_released": psnr(output, target, shave=RELEASED_SHAVE),
    }


def average(scores: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Mean over images of per-image values (not PSNR of the pooled error), as papers do."""
    scores = list(scores)
    if not scores:
        raise DRBNError("no scores to average: score at least one image first.")
    return {key: float(np.mean([s[key] for s in scores])) for key in scores[0]}


def labelled(scores: Mapping[str, float]) -> dict[str, float]:
    """The same numbers keyed by their table column names (PSNR, SSIM, PSNR_RELEASED)."""
    return {LABELS.get(key, key): value for key, value in scores.items()}
