"""Baselines that learn nothing (or one number), to put DRBN's scores in context.

Introduced in notebooks/04_ablations.

Every baseline maps a low-light image (H x W x 3 float in [0, 1]) to an enhanced one of the
same shape and range, and is scored exactly like the networks (``drbn.metrics``).

- Histogram equalisation and CLAHE work on the HSV value channel: hue and saturation are
  kept and only the brightness is remapped. Equalising R, G and B separately would also
  "correct" the colours, usually badly (each channel is stretched on its own). This is the
  choice scikit-image makes for ``equalize_adapthist`` on colour images; we make the same
  one for ``equalize_hist`` so the two differ only in global versus local.
- Gamma correction, y ** gamma, with gamma picked on the TRAINING split by grid search on
  mean PSNR (``fit_gamma``): a one-parameter learned baseline.
- The authors' released DRBN weights, run through this library, when ``find_released``
  finds them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from skimage import exposure
from skimage.color import hsv2rgb, rgb2hsv

from .data import Pair
from .enhance import enhance
from .errors import DRBNError
from .metrics import psnr
from .model import count_parameters
from .released import RECOMPOSER_FILENAME, STAGE1_FILENAME, find_released, load_recomposer, load_stage1

GAMMA_GRID = tuple(np.round(np.arange(0.10, 1.01, 0.05), 2))  # 0.10, 0.15, ..., 1.00


def _check(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise DRBNError(f"baselines expect an H x W x 3 RGB image, got shape {image.shape}.")
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    return np.clip(image.astype(np.float32), 0.0, 1.0)


def _on_value(image: np.ndarray, remap) -> np.ndarray:
    """Apply ``remap`` to the HSV value channel (max of R, G, B) and convert back to RGB."""
    hsv = rgb2hsv(_check(image))
    hsv[..., 2] = remap(hsv[..., 2])
    return np.clip(hsv2rgb(hsv), 0.0, 1.0).astype(np.float32)


def equalize_histogram(image: np.ndarray) -> np.ndarray:
    """Global histogram equalisation of the HSV value channel (``skimage.exposure.equalize_hist``)."""
    return _on_value(image, lambda v: exposure.equalize_hist(v, nbins=256))


def clahe(image: np.ndarray, clip_limit: float = 0.01) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation (``skimage.exposure.equalize_adapthist``,
    which works on the HSV value channel of a colour image; tiles of 1/8 of each side)."""
    return np.clip(exposure.equalize_adapthist(_check(image), clip_limit=clip_limit), 0.0, 1.0).astype(np.float32)


def gamma_correct(image: np.ndarray, gamma: float) -> np.ndarray:
    """y ** gamma per channel: gamma < 1 brightens the dark tones most."""
    if not gamma > 0:
        raise DRBNError(f"gamma must be positive, got {gamma!r}.")
    return (_check(image) ** gamma).astype(np.float32)


def gamma_scores(pairs: Sequence[Pair], grid: Sequence[float] = GAMMA_GRID) -> np.ndarray:
    """Mean full-image PSNR over ``pairs`` of ``gamma_correct(low, g)`` for each g in ``grid``.

    The low images are 8-bit, so y ** g is a 256-entry lookup table: the search is fast.
    """
    pairs = list(pairs)
    if not pairs:
        raise DRBNError("no pairs to fit gamma on; pass the training split (drbn.data.load_pairs(data, 'train')).")
    levels = np.arange(256, dtype=np.float64) / 255.0
    scores = np.zeros(len(grid))
    for i, g in enumerate(grid):
        lut = np.clip(np.rint(levels ** float(g) * 255.0), 0, 255).astype(np.uint8)
        scores[i] = np.mean([psnr(lut[p.low], p.high) for p in pairs])
    return scores


def fit_gamma(pairs: Sequence[Pair], grid: Sequence[float] = GAMMA_GRID) -> float:
    """The gamma of ``grid`` with the best mean PSNR on ``pairs`` (use the training split)."""
    grid = list(grid)
    if not grid:
        raise DRBNError("the gamma grid is empty; pass values such as drbn.baselines.GAMMA_GRID.")
    return float(grid[int(np.argmax(gamma_scores(pairs, grid)))])


# ---------------------------------------------------------------------------------------
# Baselines as objects the experiment runner can fit, apply and describe


@dataclass
class Baseline:
    """A non-learned (or one-parameter) enhancer. ``fit`` sees the training split only."""

    name: str
    description: str

    def fit(self, train_pairs: Sequence[Pair]) -> None:
        """Nothing to learn by default."""

    def __call__(self, image: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def parameters(self) -> int:
        """Learned parameters (numbers chosen on data)."""
        return 0

    def settings(self) -> dict:
        """What was chosen or loaded, for the results record."""
        return {}


@dataclass
class HistogramEqualization(Baseline):
    name: str = "HE"
    description: str = "global histogram equalisation of the HSV value channel"

    def __call__(self, image):
        return equalize_histogram(image)


@dataclass
class CLAHE(Baseline):
    name: str = "CLAHE"
    description: str = "contrast-limited adaptive histogram equalisation (value channel, clip 0.01)"
    clip_limit: float = 0.01

    def __call__(self, image):
        return clahe(image, self.clip_limit)

    def settings(self):
        return {"clip_limit": self.clip_limit}


@dataclass
class GammaCorrection(Baseline):
    name: str = "gamma"
    description: str = "y ** gamma, gamma chosen on the training split by mean PSNR"
    grid: tuple[float, ...] = GAMMA_GRID
    gamma: float | None = None

    def fit(self, train_pairs):
        self.gamma = fit_gamma(train_pairs, self.grid)

    def __call__(self, image):
        if self.gamma is None:
            raise DRBNError("GammaCorrection is not fitted: call .fit(train_pairs) first.")
        return gamma_correct(image, self.gamma)

    def parameters(self):
        return 1

    def settings(self):
        return {"gamma": self.gamma, "grid": [float(g) for g in self.grid]}


@dataclass
class ReleasedDRBN(Baseline):
    """The authors' released weights through this library (stage 1, optionally the recomposer)."""

    name: str = "released DRBN"
    description: str = "the authors' released stage-1 weights (trained on LOL-v2-real)"
    stage1_path: str = ""
    recomposer_path: str | None = None
    _models: tuple = field(default=(), repr=False, compare=False)

    def models(self):
        if not self._models:
            stage1 = load_stage1(self.stage1_path)
            recomposer = load_recomposer(self.recomposer_path) if self.recomposer_path else None
            self._models = (stage1, recomposer)
        return self._models

    def __call__(self, image):
        stage1, recomposer = self.models()
        return np.clip(enhance(stage1, _check(image), recomposer).output, 0.0, 1.0)

    def parameters(self):
        return sum(count_parameters(m) for m in self.models() if m is not None)

    def settings(self):
        return {"stage1": str(self.stage1_path), "recomposer": self.recomposer_path}


def released_baselines(folder: str | os.PathLike = "auto") -> list[ReleasedDRBN]:
    """The released stage 1 (and stage 1 + recomposer) if the weights are found; else []."""
    stage1 = find_released(STAGE1_FILENAME, folder)
    if stage1 is None:
        return []
    found = [ReleasedDRBN(stage1_path=str(stage1))]
    recomposer = find_released(RECOMPOSER_FILENAME, folder)
    if recomposer is not None:
        found.append(ReleasedDRBN(
            name="released DRBN + recomposer",
            description="released stage 1 + released recomposer (other-datasets setting, released mapping)",
            stage1_path=str(stage1), recomposer_path=str(recomposer),
        ))
    return found


def default_baselines(released: str | os.PathLike | None = "auto") -> list[Baseline]:
    """HE, CLAHE, gamma, and the released weights where ``find_released`` finds them
    (``released=None`` leaves them out)."""
    found = [HistogramEqualization(), CLAHE(), GammaCorrection()]
    if released is not None:
        found += released_baselines(released)
    return found


def describe_missing_released(folder: str | os.PathLike = "auto") -> str | None:
    """A one-line reason when the released weights are not available, else None."""
    if find_released(STAGE1_FILENAME, folder) is not None:
        return None
    from .released import search_folders

    where = ", ".join(str(p) for p in search_folders()) if str(folder) == "auto" else str(Path(folder))
    return f"released weights not found ({STAGE1_FILENAME} in {where}): that row is left out."
