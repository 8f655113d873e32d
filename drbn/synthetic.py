"""The synthetic camera model that turns a photo x into a low-light y; introduced in notebooks/01_low_light_data.

The built-in paired set made with it (photos that ship with scikit-image and matplotlib)
lives in ``drbn.data``.

The camera model (``darken``), one step per line of ``darken_steps``:
  1. linearise:  L = I ** 2.2                      (undo the display gamma)
  2. expose:     E = k L, k in [0.01, 0.1]         (a fraction of the light)
  3. sense:      N = (Poisson(p E) + Normal(0, r)) / p   (shot noise + read noise, electrons)
  4. cast:       C = g_c N per channel, g_c in [0.9, 1.1]  (white-balance error)
  5. gamma:      G = clip(C, 0, 1) ** (1 / 2.2)
  6. quantise:   y = round(255 G) / 255            (an 8-bit file)
The output y is the low-light input; the photo itself is the normal-light target x.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import DRBNError
from .images import to_uint8


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
