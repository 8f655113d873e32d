"""The built-in paired set: natural photos shipped with scikit-image and matplotlib, darkened
by a simple camera model. It needs no download, so every chapter runs out of the box; a
user with LOL points the kit at it instead (``drbn.data.load_pairs``).

The camera model (``darken``), one step per line of ``darken_steps``:
  1. linearise:  L = I ** 2.2                      (undo the display gamma)
  2. expose:     E = k L, k in [0.01, 0.1]         (a fraction of the light)
  3. sense:      N = (Poisson(p E) + Normal(0, r)) / p   (shot noise + read noise, electrons)
  4. cast:       C = g_c N per channel, g_c in [0.9, 1.1]  (white-balance error)
  5. gamma:      G = clip(C, 0, 1) ** (1 / 2.2)
  6. quantise:   y = round(255 G) / 255            (an 8-bit file)
The output y is the low-light input; the photo itself is the normal-light target x.

The split is by source photo, so no test scene is ever seen in training: see TEST_PHOTOS.
"""
from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .errors import DRBNError
from .images import read_image, to_uint8

if TYPE_CHECKING:
    from .data import Pair

# scikit-image (skimage.data) and matplotlib (sample_data) colour photos that ship with
# the packages. Left out: greyscale, microscopy, medical, astronomy, drawings, and
# motorcycle_right (the same scene as motorcycle_left).
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "grace_hopper")

# Held out by source: a cat (fur, fine texture) and a cup of coffee (indoor still life, warm
# light). Training sees people, a rocket and a motorcycle, never these scenes.
TEST_PHOTOS = ("chelsea", "coffee")

MAX_SIDE = 640  # longer photos are downscaled to this long side
DEFAULT_VARIANTS = 8  # darkenings per training photo
TEST_SEED = 2020  # the test darkenings are fixed: every run is scored on the same images


@dataclass
class LowLightParams:
    """Ranges of the camera model; each image draws its own values from them.

    Intensities are relative to full scale (1.0 = white); noise is counted in electrons.
    """

    gamma: float = 2.2
    """Display gamma: linear = image ** gamma, and back with ** (1 / gamma). Unitless."""
    exposure: tuple[float, float] = (0.01, 0.1)
    """k, the fraction of the normal exposure's light that reaches the sensor; drawn
    log-uniformly. Unitless. After the gamma this darkens the mean by about 3-8x."""
    photons: tuple[float, float] = (1000.0, 10000.0)
    """p, the photo-electrons a pixel at full scale collects under the NORMAL exposure
    (a well-lit shot); drawn log-uniformly. The low-light shot collects k p L electrons
    (white: 10 to 1000), so smaller k p means relatively more shot noise. Electrons."""
    read_noise: tuple[float, float] = (1.0, 4.0)
    """r, standard deviation of the Gaussian read noise; drawn uniformly. Electrons."""
    colour_cast: tuple[float, float] = (0.9, 1.1)
    """g_c, a gain per RGB channel on linear values (white-balance error); drawn uniformly
    and independently per channel. Unitless."""

    def __post_init__(self):
        if not self.gamma > 0:
            raise DRBNError(f"LowLightParams.gamma must be positive, got {self.gamma!r}.")
        for name in ("exposure", "photons", "read_noise", "colour_cast"):
            low, high = getattr(self, name)
            if not 0 <= low <= high or (low == 0 and name != "read_noise"):
                raise DRBNError(
                    f"LowLightParams.{name} = {(low, high)!r} is invalid; "
                    "use (low, high) with 0 < low <= high (read_noise may start at 0)."
                )


@dataclass
class Darkening:
    """Every intermediate image of ``darken`` (float32 H x W x 3) and the values drawn."""

    linear: np.ndarray
    exposed: np.ndarray
    noisy: np.ndarray
    cast: np.ndarray
    gamma: np.ndarray
    quantised: np.ndarray
    exposure: float
    photons: float
    read_noise: float
    gains: tuple[float, float, float]

    STEPS = ("linear", "exposed", "noisy", "cast", "gamma", "quantised")

    def steps(self) -> list[tuple[str, np.ndarray]]:
        """(name, image) for each step, in order, for plotting."""
        return [(name, getattr(self, name)) for name in self.STEPS]


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def darken_steps(image: np.ndarray, rng: np.random.Generator, params: LowLightParams | None = None) -> Darkening:
    """Run the camera model on ``image`` (float32 H x W x 3 in [0, 1]) and keep every step.

    Draws, in this order: k, p, r, the three channel gains, then the noise; the result is a
    function of the generator's state alone.
    """
    params = params or LowLightParams()
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[2] != 3:
        raise DRBNError(f"darken expects an H x W x 3 RGB image, got shape {image.shape}.")
    exposure = _log_uniform(rng, *params.exposure)
    photons = _log_uniform(rng, *params.photons)
    read_noise = float(rng.uniform(*params.read_noise))
    gains = rng.uniform(*params.colour_cast, size=3)

    linear = np.clip(image, 0.0, 1.0).astype(np.float64) ** params.gamma
    exposed = exposure * linear
    electrons = rng.poisson(photons * exposed) + rng.normal(0.0, read_noise, size=image.shape)
    noisy = electrons / photons
    cast = noisy * gains
    gamma = np.clip(cast, 0.0, 1.0) ** (1.0 / params.gamma)
    quantised = to_uint8(gamma).astype(np.float32) / 255.0  # same values as reading the 8-bit file back

    linear, exposed, noisy, cast, gamma = (a.astype(np.float32) for a in (linear, exposed, noisy, cast, gamma))
    return Darkening(
        linear, exposed, noisy, cast, gamma, quantised, exposure, photons, read_noise, tuple(float(g) for g in gains)
    )


def darken(image: np.ndarray, rng: np.random.Generator, params: LowLightParams | None = None) -> np.ndarray:
    """A synthetic low-light version y of ``image``: float32 H x W x 3, multiples of 1/255."""
    return darken_steps(image, rng, params).quantised


# ---------------------------------------------------------------------------------------
# The photos


def _load_photo(name: str) -> np.ndarray:
    """One source photo as float32 H x W x 3 in [0, 1], as shipped."""
    if name == "grace_hopper":
        from matplotlib import cbook

        return read_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    import skimage.data

    if name == "motorcycle_left":
        photo = skimage.data.stereo_motorcycle()[0]
    else:
        photo = getattr(skimage.data, name)()
    return photo.astype(np.float32) / 255.0


def _fit(photo: np.ndarray) -> np.ndarray:
    """Downscale to a long side of at most MAX_SIDE, crop H and W to multiples of 4, and
    round to 8 bits (the target x is then exactly what an 8-bit file holds)."""
    h, w = photo.shape[:2]
    if max(h, w) > MAX_SIDE:
        from skimage.transform import resize

        scale = MAX_SIDE / max(h, w)
        shape = (round(h * scale), round(w * scale))
        photo = resize(photo, shape, order=1, anti_aliasing=True, preserve_range=True)
    h, w = photo.shape[:2]
    photo = photo[: h - h % 4, : w - w % 4]
    return to_uint8(photo).astype(np.float32) / 255.0


def photo_names() -> tuple[str, ...]:
    """Names of the photos; the same on every machine, so every run sees the same data."""
    return PHOTOS


def photo_sources() -> str:
    """The packages the photos come from."""
    return "scikit-image/matplotlib"


@functools.lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray:
    photo = _fit(_load_photo(name))
    photo.setflags(write=False)  # cached and shared: never modified in place
    return photo


def natural_photos(split: str | None = None) -> list[tuple[str, np.ndarray]]:
    """The source photos as (name, float32 H x W x 3 in [0, 1]); all, or one split's.

    Long side at most 640, H and W multiples of 4. Arrays are cached and read-only.
    """
    names = photo_names()
    if split is not None:
        names = tuple(n for n in names if (n in TEST_PHOTOS) == (_split(split) == "test"))
    return [(name, _photo(name)) for name in names]


def _split(split: str) -> str:
    if split not in ("train", "test"):
        raise DRBNError(f"unknown split '{split}'; use 'train' or 'test'.")
    return split


def high_quality_photos() -> list[tuple[str, np.ndarray]]:
    """Well-exposed photos for stage 2's quality discriminator (the role of the authors'
    AVA high-score set): the training-split photos, as (name, uint8 H x W x 3)."""
    return [(name, to_uint8(photo)) for name, photo in natural_photos("train")]


def synthetic_pairs(
    split: str, seed: int = 0, params: LowLightParams | None = None, variants: int = DEFAULT_VARIANTS
) -> list[Pair]:
    """The synthetic paired set for ``split``.

    train: ``variants`` darkenings of each training photo, named '<photo>_<i>', drawn from
           ``seed``.
    test:  one darkening of each TEST_PHOTOS photo, named '<photo>', always drawn from
           TEST_SEED (``seed`` and ``variants`` are ignored), so every run is scored on the
           same images.
    Each image's generator is keyed by (seed, photo name, variant): adding a photo leaves
    the others' darkenings unchanged.
    """
    from .data import Pair  # drbn.data imports this module at the top

    _split(split)
    if seed < 0:
        raise DRBNError(f"seed must be a non-negative integer, got {seed}.")
    if variants < 1:
        raise DRBNError(f"variants must be at least 1, got {variants}.")
    if split == "test":
        seed, variants = TEST_SEED, 1
    if params is None:  # the default set is the same every time: darken it once per process
        return list(_default_pairs(split, seed, variants))
    return _make_pairs(split, seed, params, variants)


@functools.lru_cache(maxsize=8)
def _default_pairs(split: str, seed: int, variants: int) -> tuple[Pair, ...]:
    pairs = tuple(_make_pairs(split, seed, None, variants))
    for pair in pairs:  # cached and shared: never modified in place
        pair.low.setflags(write=False)
        pair.high.setflags(write=False)
    return pairs


def _make_pairs(split: str, seed: int, params: LowLightParams | None, variants: int) -> list[Pair]:
    from .data import Pair

    pairs = []
    for name, photo in natural_photos(split):
        high = to_uint8(photo)
        for i in range(variants):
            rng = np.random.default_rng([seed, zlib.crc32(name.encode()), i])
            low = to_uint8(darken(photo, rng, params))
            pairs.append(Pair(name if split == "test" else f"{name}_{i}", low, high))
    return pairs


def synthetic_unpaired(
    seed: int = 1, params: LowLightParams | None = None, variants: int = DEFAULT_VARIANTS
) -> list[tuple[str, np.ndarray]]:
    """Low-light images without targets for stage 2's quality term, as (name, uint8 H x W x 3):
    darkenings of the training photos drawn from a seed other than the paired set's, so
    the unpaired set never touches a test scene."""
    return [(p.name, p.low) for p in synthetic_pairs("train", seed=seed, params=params, variants=variants)]
