"""Baselines: the rows of the results table that are not the kit's own training; introduced
in notebooks/04_ablations.

Every baseline maps a low-light image (H x W x 3, float in [0, 1] or uint8) to an enhanced
one of the same shape, and is scored exactly like the networks (``drbn.metrics``).

- The dark input itself: what doing nothing scores.
- Histogram equalisation and CLAHE work on the HSV value channel: hue and saturation are
  kept and only the brightness is remapped. Equalising R, G and B separately would also
  "correct" the colours, usually badly (each channel is stretched on its own). This is the
  choice scikit-image makes for ``equalize_adapthist`` on colour images; we make the same
  one for ``equalize_hist`` so the two differ only in global versus local.
- Gamma correction, y ** gamma, with gamma picked on the TRAINING split by grid search on
  mean PSNR (``fit_gamma``): a one-parameter learned baseline.
- Zero-DCE (Guo et al., CVPR 2020) and the authors' released DRBN weights (stage 1, and
  the recomposer of their other-datasets branch: λ_adv = 1, unpaired photos from LIME, NPE,
  VV and DICM), run through this library where ``drbn.weights.find_released`` finds their files; where it does not,
  :meth:`Baseline.missing` says how to get them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from skimage import exposure
from skimage.color import hsv2rgb, rgb2hsv

from .enhance import enhance
from .errors import DRBNError
from .images import Pair, to_image
from .metrics import psnr
from .model import count_parameters
from .weights import (
    RECOMPOSER_FILENAME, STAGE1_FILENAME, ZERO_DCE_FILENAME, find_released, load_recomposer, load_stage1,
    search_folders,
)
from .zero_dce import enhance_zero_dce, load_zero_dce

GAMMA_GRID = tuple(np.round(np.arange(0.10, 1.01, 0.05), 2))  # 0.10, 0.15, ..., 1.00


def rgb(image: np.ndarray) -> np.ndarray:
    """An H x W x 3 image as float32 in [0, 1] (``drbn.images.to_image``, then clamped)."""
    if np.ndim(image) != 3 or np.shape(image)[2] != 3:
        raise DRBNError(f"baselines expect an H x W x 3 RGB image, got shape {np.shape(image)}.")
    return np.clip(to_image(image), 0.0, 1.0)


def _on_value(image: np.ndarray, remap) -> np.ndarray:
    """Apply ``remap`` to the HSV value channel (max of R, G, B) and convert back to RGB."""
    hsv = rgb2hsv(rgb(image))
    hsv[..., 2] = remap(hsv[..., 2])
    return np.clip(hsv2rgb(hsv), 0.0, 1.0).astype(np.float32)


def equalize_histogram(image: np.ndarray) -> np.ndarray:
    """Global histogram equalisation of the HSV value channel (``skimage.exposure.equalize_hist``)."""
    return _on_value(image, lambda v: exposure.equalize_hist(v, nbins=256))


def clahe(image: np.ndarray, clip_limit: float = 0.01) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation (``skimage.exposure.equalize_adapthist``,
    which works on the HSV value channel of a colour image; tiles of 1/8 of each side)."""
    return np.clip(exposure.equalize_adapthist(rgb(image), clip_limit=clip_limit), 0.0, 1.0).astype(np.float32)


def gamma_correct(image: np.ndarray, gamma: float) -> np.ndarray:
    """y ** gamma per channel: gamma < 1 brightens the dark tones most."""
    if not gamma > 0:
        raise DRBNError(f"gamma must be positive, got {gamma!r}.")
    return (rgb(image) ** gamma).astype(np.float32)


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


def missing_weights(*filenames: str) -> str | None:
    """None when ``find_released`` finds every file, else one line saying how to get them."""
    absent = [name for name in filenames if find_released(name) is None]
    if not absent:
        return None
    where = ", ".join(str(p) for p in search_folders())
    return (f"weights not found ({', '.join(absent)}; looked in {where}): run `python -m drbn fetch-weights`, "
            "or put the file in data/released/ or set DRBN_RELEASED_DIR")


# ---------------------------------------------------------------------------------------
# Baselines as objects the experiment runner can fit, apply and describe


@dataclass
class Baseline:
    """An enhancer that this kit does not train. ``fit`` sees the training split only."""

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

    def missing(self) -> str | None:
        """Why this baseline cannot run here (with what to do), or None."""
        return None

    def to(self, device: str | torch.device) -> Baseline:
        """Run on ``device`` (networks only; the others stay on the CPU)."""
        return self


@dataclass
class DarkInput(Baseline):
    name: str = "input (no enhancement)"
    description: str = "the low-light input itself, scored against the target"

    def __call__(self, image):
        return rgb(image)


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
class Network(Baseline):
    """A released network: its files are found with ``drbn.weights.find_released``."""

    files: tuple[str, ...] = ()
    device: str = "cpu"
    _models: tuple = field(default=(), repr=False, compare=False)

    def missing(self):
        return missing_weights(*self.files)

    def paths(self) -> list[str]:
        found = [find_released(name) for name in self.files]
        if None in found:
            raise DRBNError(f"{self.name}: {self.missing()}.")
        return [str(p) for p in found]

    def load(self) -> tuple[torch.nn.Module, ...]:
        raise NotImplementedError

    def models(self) -> tuple[torch.nn.Module, ...]:
        if not self._models:
            self._models = tuple(m.to(self.device) for m in self.load())
        return self._models

    def to(self, device):
        self.device, self._models = str(device), tuple(m.to(device) for m in self._models)
        return self

    def parameters(self):
        return sum(count_parameters(m) for m in self.models())

    def settings(self):
        return {"weights": self.paths()}


@dataclass
class ZeroDCEBaseline(Network):
    name: str = "Zero-DCE (released weights)"
    description: str = "Guo et al., CVPR 2020: eight pixel-wise curves, trained without paired data"
    files: tuple[str, ...] = (ZERO_DCE_FILENAME,)

    def load(self):
        return (load_zero_dce(self.paths()[0]),)

    def __call__(self, image):
        return np.clip(enhance_zero_dce(self.models()[0], rgb(image)), 0.0, 1.0)


@dataclass
class ReleasedDRBN(Network):
    """The authors' released weights through this library (stage 1, optionally the recomposer)."""

    name: str = "DRBN, released stage 1"
    description: str = "the authors' released stage-1 weights (trained on LOL-v2-real)"
    files: tuple[str, ...] = (STAGE1_FILENAME,)

    def load(self):
        paths = self.paths()
        return (load_stage1(paths[0]), *(load_recomposer(p) for p in paths[1:]))

    def __call__(self, image):
        stage1, *recomposer = self.models()
        return np.clip(enhance(stage1, rgb(image), *recomposer).output, 0.0, 1.0)


RELEASED_RECOMPOSER = "DRBN, released stage 1 + other-datasets recomposer"
RELEASED_RECOMPOSER_DESCRIPTION = (
    "released stage 1 + the recomposer of the authors' other-datasets branch (DRBL-stage2-other-datasets: "
    "λ_adv = 1, unpaired training photos selected from LIME, NPE, VV and DICM, released mapping); it may have "
    "trained on DICM and LIME photos, so a score of it on those is not held out")


def released_drbn(recomposer: bool = False) -> ReleasedDRBN:
    """The released stage 1, or stage 1 + the released recomposer. The only released
    recomposer (``model_R_s2.pt``) comes from the authors' other-datasets branch (λ_adv = 1,
    unpaired photos selected from LIME, NPE, VV and DICM): it is named so in every row, and
    its outputs on DICM or LIME photos are not held-out results."""
    if not recomposer:
        return ReleasedDRBN()
    return ReleasedDRBN(RELEASED_RECOMPOSER, RELEASED_RECOMPOSER_DESCRIPTION,
                        files=(STAGE1_FILENAME, RECOMPOSER_FILENAME))


def default_baselines(released: bool = True) -> list[Baseline]:
    """The results table's rows besides the kit's own: the dark input, HE, CLAHE, gamma and,
    with ``released``, Zero-DCE and the released DRBN (stage 1, and with its recomposer),
    whether or not their weights are here (a missing one's row says how to get them)."""
    found = [DarkInput(), HistogramEqualization(), CLAHE(), GammaCorrection()]
    if released:
        found += [ZeroDCEBaseline(), released_drbn(), released_drbn(recomposer=True)]
    return found
