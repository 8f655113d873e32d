"""Image-quality metrics keyed by short names, conventions written down; introduced in notebooks/01_low_light_data.

Every metric is computed on 8-bit RGB: a float output in [0, 1] is clamped and rounded to
0..255 first (``drbn.images.to_uint8``), as a saved PNG would be, then scored in float64
with data range 255. :func:`score` returns the four values of one image under short keys
(column labels for tables and figures live in ``drbn.results.LABELS``, nowhere else):

- ``psnr``: PSNR over the full image, the headline, as later papers report it.
- ``ssim``: SSIM over the full image: Gaussian window 11x11, σ = 1.5, population
  covariance, per RGB channel then averaged (Wang et al. 2004, skimage's
  ``gaussian_weights=True`` setting).
- ``psnr_shave10``: PSNR with 10 pixels shaved from every side, as the authors' test
  script reports it (a leftover of its super-resolution ancestry). It has no SSIM.
- ``psnr_gtmean``: PSNR after the GT-mean gain, which later low-light papers report to
  take overall brightness out of the comparison. Exactly: the output, as float in [0, 1]
  (uint8 divided by 255, floats clamped to [0, 1]), is multiplied by one scalar gain
  g = mean(x) / mean(output), both means over all pixels and all three channels of the
  8-bit target x read as [0, 1]; the result is clamped to [0, 1] and scored as ``psnr``
  (8-bit, full image). An all-black output (mean 0) is scored unscaled. Some codes take
  the means of a greyscale conversion instead; this kit uses the RGB mean.

One more score needs no target: ``niqe`` (:func:`drbn.niqe.niqe`, re-exported here), the
NIQE of one image (Mittal et al. 2013), lower is better. It measures how far the image's
natural-scene statistics lie from those of pristine photos, not whether a person likes it;
``drbn.evaluate`` adds it to a row on request and scores folders without targets with it.

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
from .niqe import niqe  # noqa: F401  (the no-reference score, re-exported under drbn.metrics)

KEYS = ("psnr", "ssim", "psnr_shave10", "psnr_gtmean")  # what score() returns, in order
RELEASED_SHAVE = 10
SSIM_WINDOW = 11  # the Gaussian window's side (σ = 1.5, truncated at 3.5σ)  # pixels per side the authors' test script shaves before PSNR


def check_pair(output: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both images as uint8 H x W x 3, or a DRBNError naming both shapes."""
    output, target = to_uint8(output), to_uint8(target)
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
    if min(output.shape[:2]) < SSIM_WINDOW:
        h, w = output.shape[:2]
        raise DRBNError(f"image of {h}x{w} is too small for SSIM's {SSIM_WINDOW}x{SSIM_WINDOW} window; "
                        f"score images of at least {2 * RELEASED_SHAVE + 1}x{2 * RELEASED_SHAVE + 1} pixels.")
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


def _as_float(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    return image.astype(np.float64) / 255.0 if image.dtype == np.uint8 else image.astype(np.float64)


def gtmean_gain(output: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The output scaled so that its mean equals the target's, clamped to [0, 1] (float64):
    the GT-mean gain of the module docstring, applied before ``psnr_gtmean`` is scored."""
    output = np.clip(_as_float(output), 0.0, 1.0)
    target = to_uint8(target).astype(np.float64) / 255.0
    mean = output.mean()
    return output if mean == 0 else np.clip(output * (target.mean() / mean), 0.0, 1.0)


def psnr_gtmean(output: np.ndarray, target: np.ndarray) -> float:
    """PSNR on 8-bit RGB after the GT-mean gain (:func:`gtmean_gain`)."""
    check_pair(output, target)
    return psnr(gtmean_gain(output, target), target)


def score(output: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """The four metrics of one image: ``{'psnr', 'ssim', 'psnr_shave10', 'psnr_gtmean'}``."""
    quantised, target = check_pair(output, target)
    return {
        "psnr": psnr(quantised, target),
        "ssim": ssim(quantised, target),
        "psnr_shave10": psnr(quantised, target, shave=RELEASED_SHAVE),
        "psnr_gtmean": psnr_gtmean(output, target),
    }


def average(scores: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Mean over images of per-image values (not PSNR of the pooled error), as papers do."""
    scores = list(scores)
    if not scores:
        raise DRBNError("no scores to average: score at least one image first.")
    return {key: float(np.mean([s[key] for s in scores])) for key in scores[0]}
