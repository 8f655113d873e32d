"""NIQE, a no-reference score of how natural an image's statistics look; lower is better.

Mittal, Soundararajan and Bovik, "Making a 'Completely Blind' Image Quality Analyzer",
IEEE Signal Processing Letters 20(3), 2013. A multivariate Gaussian (mean ν₁, covariance
Σ₁, the *pristine model*) was fitted once to 36 natural-scene statistics of blocks of
undistorted photos. An image is scored by the distance of its own block statistics (ν₂,
Σ₂) from that model (Eq. 10). It needs no target and knows nothing of taste: a photo can
look worse to a person and score better, and the model has never seen a night scene.

This module computes exactly what the official MATLAB release (``niqe_release.zip``,
``computequality.m``) computes, so its numbers can stand beside published ones:

- the Y channel of MATLAB's ``rgb2ycbcr`` on the 8-bit image (16..235, rounded to integers
  as MATLAB returns it for uint8 input), then read as float;
- no border crop; the image is cut to a whole number of 96x96 blocks from the top left;
- MSCN coefficients (Eq. 1-3) with the release's 7x7 Gaussian window (σ = 7/6),
  replicated borders;
- per block, 18 features: a GGD-shaped fit of the coefficients (shape α and mean scale) and
  an AGGD fit (Eq. 7-8) of the products of neighbours in four directions (Eq. 6);
- the same at half resolution (48x48 blocks of MATLAB's ``imresize(Y, 0.5)``), giving 36;
- ν₂ the mean over blocks ignoring NaN, Σ₂ the sample covariance of the blocks without NaN,
  and D = sqrt((ν₁ − ν₂)ᵀ ((Σ₁ + Σ₂)/2)⁺ (ν₁ − ν₂)) with the pseudo-inverse, as released.

The pristine model (``niqe_pris_params.npz``: ``mu_pris_param`` 1x36, ``cov_pris_param``
36x36, ``gaussian_window`` 7x7) is the release's ``modelparameters.mat``. It is not shipped
with the kit: ``python -m drbn fetch-weights --only niqe`` downloads it (README: Released
weights) and it is found where the released weights are (:func:`drbn.weights.find_released`,
also in a ``niqe/`` folder inside those).
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy.ndimage import correlate, correlate1d, maximum_filter, minimum_filter
from scipy.special import gamma

from .errors import DRBNError

MODEL_FILENAME = "niqe_pris_params.npz"
MODEL_SUBFOLDER = "niqe"  # also looked for in <folder>/niqe/, how the reference copy is laid out
BLOCK = 96  # block side at full resolution, the release's recommended value
MIN_BLOCKS = 2  # a covariance Σ₂ needs at least two blocks
FLAT = 1e-8  # a neighbourhood whose values differ by less is flat (far above rounding, far below 8-bit steps)

# the release's grid search for the shape parameter: α in 0.2:0.001:10
SHAPES = np.arange(0.2, 10.001, 0.001)
# ρ(α) = Γ(2/α)² / (Γ(1/α) Γ(3/α)), the (mean |x|)² / mean x² of a GGD of shape α
SHAPE_RATIOS = gamma(2 / SHAPES) ** 2 / (gamma(1 / SHAPES) * gamma(3 / SHAPES))
# neighbour directions of Eq. 6: horizontal, vertical, main and anti-diagonal
SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))
LUMA = np.array([65.481, 128.553, 24.966])  # MATLAB rgb2ycbcr's Y row, for RGB in 0..255 / 255


class PristineModel(NamedTuple):
    mean: np.ndarray  # ν₁, (36,)
    covariance: np.ndarray  # Σ₁, (36, 36)
    window: np.ndarray  # the 7x7 Gaussian window of the MSCN transform


# ----------------------------------------------------------------------------- the pristine model
def find_model() -> Path | None:
    """``niqe_pris_params.npz`` where the released weights are found, or None."""
    from .weights import find_released  # here, so that scoring needs no torch import

    return find_released(MODEL_FILENAME, subfolder=MODEL_SUBFOLDER)


def load_model(path: str | os.PathLike | None = None) -> PristineModel:
    """The pristine model ν₁, Σ₁ and window from ``path`` (default: :func:`find_model`)."""
    if path is None:
        path = find_model()
        if path is None:
            raise DRBNError(
                f"NIQE's pristine model ({MODEL_FILENAME}) not found in $DRBN_RELEASED_DIR or data/released/ "
                "(or a niqe/ folder inside them): run python -m drbn fetch-weights --only niqe."
            )
    return _read_model(str(Path(path).expanduser().resolve()))


@functools.lru_cache(maxsize=4)
def _read_model(path: str) -> PristineModel:
    try:
        with np.load(path) as data:
            model = PristineModel(
                np.asarray(data["mu_pris_param"], np.float64).reshape(36),
                np.asarray(data["cov_pris_param"], np.float64).reshape(36, 36),
                np.asarray(data["gaussian_window"], np.float64).reshape(7, 7),
            )
    except FileNotFoundError:
        raise DRBNError(f"NIQE model file not found: {path}; run python -m drbn fetch-weights --only niqe.") from None
    except Exception as exc:  # not an npz, or missing/misshapen arrays
        raise DRBNError(
            f"{path} is not NIQE's pristine model ({type(exc).__name__}); "
            f"delete it and run python -m drbn fetch-weights --only niqe."
        ) from None
    for array in model:
        array.setflags(write=False)
    return model


# ----------------------------------------------------------------------------- image preparation
def check_image(image: np.ndarray) -> np.ndarray:
    """``image`` if it is an H x W x 3 uint8 RGB array with room for two 96x96 blocks."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        what = f"dtype {image.dtype}" if isinstance(image, np.ndarray) else type(image).__name__
        raise DRBNError(f"NIQE scores 8-bit images: pass an H x W x 3 uint8 array (got {what}; "
                        "drbn.images.to_uint8 converts a float image in [0, 1]).")
    if image.ndim != 3 or image.shape[-1] != 3:
        raise DRBNError(f"NIQE scores RGB images of shape H x W x 3, got shape {image.shape}.")
    h, w = image.shape[:2]
    if (h // BLOCK) * (w // BLOCK) < MIN_BLOCKS:
        raise DRBNError(f"image of {h}x{w} is too small for NIQE: it needs two {BLOCK}x{BLOCK} blocks "
                        f"(at least {BLOCK}x{2 * BLOCK} or {2 * BLOCK}x{BLOCK} pixels).")
    return image


def luma(image: np.ndarray) -> np.ndarray:
    """Y of MATLAB's ``rgb2ycbcr`` on uint8 RGB: 16 + (65.481 R + 128.553 G + 24.966 B) / 255,
    rounded half away from zero to an integer in 16..235 as MATLAB's uint8 result is, as float64."""
    return np.floor(16.0 + image.astype(np.float64) @ (LUMA / 255.0) + 0.5)


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5, the kernel of MATLAB's ``imresize`` 'bicubic'."""
    x = np.abs(x)
    return ((1.5 * x**3 - 2.5 * x**2 + 1) * (x <= 1)
            + (-0.5 * x**3 + 2.5 * x**2 - 4 * x + 2) * ((x > 1) & (x <= 2)))


def half_weights(n: int) -> np.ndarray:
    """The (ceil(n/2), n) matrix of MATLAB's ``imresize(·, 0.5)`` along one axis: its
    ``contributions`` with the antialiased kernel 0.5·cubic(0.5·x) of width 8, weights
    normalised to sum 1, indices mirrored at the borders (symmetric, edge repeated)."""
    scale, width = 0.5, 4 / 0.5
    out = np.arange(1, -(-n // 2) + 1, dtype=np.float64)  # 1-based output coordinates
    centre = out / scale + 0.5 * (1 - 1 / scale)  # where each output sits on the input axis
    taps = int(np.ceil(width)) + 2
    index = np.floor(centre - width / 2)[:, None] + np.arange(taps)[None, :]  # 1-based
    weights = scale * cubic(scale * (centre[:, None] - index))
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(n), np.arange(n)[::-1]])  # 0-based, period 2n
    columns = mirror[(index.astype(np.int64) - 1) % (2 * n)]
    matrix = np.zeros((len(out), n))
    np.add.at(matrix, (np.repeat(np.arange(len(out)), taps), columns.ravel()), weights.ravel())
    return matrix


def imresize_half(image: np.ndarray) -> np.ndarray:
    """MATLAB's ``imresize(image, 0.5)`` (bicubic, antialiased) of a 2-D float image, rows then
    columns. Written by hand because the release's model expects exactly this filter:
    OpenCV's bicubic (no antialiasing) moves baboon's score from 5.73 to 7.64."""
    image = np.asarray(image, dtype=np.float64)
    return half_weights(image.shape[0]) @ image @ half_weights(image.shape[1]).T


# ----------------------------------------------------------------------------- statistics
def gaussian_filter(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """``imfilter(image, window, 'replicate')``; a separable window (the release's Gaussian is)
    runs as two 1-D passes, as MATLAB's ``imfilter`` does, 3x faster than the 7x7 one."""
    column = window.sum(axis=1)
    if np.allclose(np.outer(column, column), window, rtol=0, atol=1e-15):
        return correlate1d(correlate1d(image, column, axis=0, mode="nearest"), column, axis=1, mode="nearest")
    return correlate(image, window, mode="nearest")


def mscn(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """MSCN coefficients Î = (I − μ) / (σ + 1) (Eq. 1), μ and σ the local Gaussian-weighted
    mean and standard deviation (Eq. 2-3), borders replicated as MATLAB's ``imfilter``.

    Where the whole 7x7 neighbourhood is flat, Î is set to its exact value 0: floating point
    leaves about ±1e-14 there, and its sign decides on which side of the AGGD fit (Eq. 7) the
    pixel is counted (baboon: 5.72996 with the leftover, 5.72957 exact, MATLAB 5.72957)."""
    mu = gaussian_filter(image, window)
    sigma = np.sqrt(np.abs(gaussian_filter(image * image, window) - mu * mu))
    side = window.shape[0]
    spread = maximum_filter(image, side, mode="nearest") - minimum_filter(image, side, mode="nearest")
    return np.where(spread <= FLAT, 0.0, (image - mu) / (sigma + 1))


def fit_aggd(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moment-matching fit of an asymmetric generalised Gaussian (Eq. 7) to each row of
    ``samples``: shape α (the release's grid search), left and right scales β_l, β_r.

    A row with no negative (or positive) value has no left (right) scale: NaN, as in MATLAB.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        squares = samples * samples
        left = np.sqrt((squares * (samples < 0)).sum(1) / (samples < 0).sum(1))
        right = np.sqrt((squares * (samples > 0)).sum(1) / (samples > 0).sum(1))
        ratio = left / right  # γ̂
        r_hat = np.abs(samples).mean(1) ** 2 / squares.mean(1)
        r_norm = r_hat * (ratio**3 + 1) * (ratio + 1) / (ratio**2 + 1) ** 2
        # argmin over the grid; a NaN row gives the first shape, as MATLAB's min does
        alpha = SHAPES[np.argmin((SHAPE_RATIOS[None, :] - r_norm[:, None]) ** 2, axis=1)]
        spread = np.sqrt(gamma(1 / alpha) / gamma(3 / alpha))
    return alpha, left * spread, right * spread


def block_features(coefficients: np.ndarray, block: int) -> np.ndarray:
    """The 18 features of each ``block`` x ``block`` tile of MSCN ``coefficients`` (n, 18):
    α and (β_l + β_r)/2 of the coefficients, then for each direction of Eq. 6 the AGGD
    α, its mean η = (β_r − β_l) Γ(2/α) / Γ(1/α) (Eq. 8), β_l and β_r of the neighbour products.
    Products wrap around inside a block (MATLAB's ``circshift`` of the block)."""
    h, w = coefficients.shape
    tiles = (coefficients[: h // block * block, : w // block * block]
             .reshape(h // block, block, w // block, block).transpose(0, 2, 1, 3).reshape(-1, block, block))
    alpha, beta_l, beta_r = fit_aggd(tiles.reshape(len(tiles), -1))
    features = [alpha, (beta_l + beta_r) / 2]
    for shift in SHIFTS:
        products = tiles * np.roll(tiles, shift, axis=(1, 2))
        alpha, beta_l, beta_r = fit_aggd(products.reshape(len(tiles), -1))
        with np.errstate(invalid="ignore"):
            eta = (beta_r - beta_l) * gamma(2 / alpha) / gamma(1 / alpha)
        features += [alpha, eta, beta_l, beta_r]
    return np.stack(features, axis=1)


def features(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """The 36 features of each 96x96 block of a float Y image (n_blocks, 36): 18 at full
    resolution, 18 of the same region at half resolution (48x48 blocks)."""
    h, w = image.shape
    image = image[: h // BLOCK * BLOCK, : w // BLOCK * BLOCK]
    full = block_features(mscn(image, window), BLOCK)
    half = block_features(mscn(imresize_half(image), window), BLOCK // 2)
    return np.concatenate([full, half], axis=1)


def distance(block_stats: np.ndarray, model: PristineModel) -> float:
    """D(ν₁, ν₂, Σ₁, Σ₂) = sqrt((ν₁ − ν₂)ᵀ ((Σ₁ + Σ₂)/2)⁺ (ν₁ − ν₂)) (Eq. 10): ν₂ is the
    NaN-ignoring mean of the block features, Σ₂ the sample covariance of the blocks without
    NaN (MATLAB's ``nanmean``, ``nancov``), ⁺ the pseudo-inverse. NaN when fewer than two
    blocks have every feature (e.g. a photo that is flat black nearly everywhere)."""
    complete = block_stats[~np.isnan(block_stats).any(axis=1)]
    if len(complete) < MIN_BLOCKS:
        return float("nan")
    nu = np.nanmean(block_stats, axis=0)
    sigma = np.cov(complete, rowvar=False)
    diff = model.mean - nu
    return float(np.sqrt(diff @ np.linalg.pinv((model.covariance + sigma) / 2) @ diff))


def niqe(image: np.ndarray, model: str | os.PathLike | PristineModel | None = None) -> float:
    """NIQE of one H x W x 3 uint8 RGB image (lower is better), as the official MATLAB code
    computes it; ``model`` is the pristine model or its file (default: found like the
    released weights, see :func:`load_model`)."""
    check_image(image)
    if not isinstance(model, PristineModel):
        model = load_model(model)
    return distance(features(luma(image), model.window), model)
