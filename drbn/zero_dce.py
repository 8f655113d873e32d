"""Zero-DCE, a peer method run with its authors' released weights (inference only); introduced in notebooks/05_figures.

Guo, Li et al., "Zero-Reference Deep Curve Estimation for Low-Light Image Enhancement",
CVPR 2020. A small plain CNN (DCE-Net, 79,416 parameters) predicts, for every pixel and
colour channel, the parameters of eight quadratic "light-enhancement" curves; the image is
brightened by applying them one after another. It is trained without any paired or even
unpaired reference image (hence "zero-reference"), which makes it a useful contrast to DRBN:
no ground truth, no perceptual prior, only hand-made losses on exposure, colour and
smoothness. Training it is out of scope here.

The curves (the paper's notation):

- eq. (1), the light-enhancement curve:  LE(I; α) = I + α·I·(1 − I),  α ∈ [−1, 1].
  It maps [0, 1] onto [0, 1], is monotonic, and is differentiable: safe for any α.
- eq. (2), applied n times: LE_n = LE_{n−1} + α_n·LE_{n−1}·(1 − LE_{n−1}).
- eq. (3), per pixel: the scalar α_n becomes a map A_n(x), one per colour channel.

The released code writes eq. (3) as ``x + r·(x² − x)``, i.e. r = −A_n; we keep the code's
form and names so that its weights load strictly and the outputs match its own.
"""
from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .device import device_of
from .errors import DRBNError
from .images import to_image, to_tensor
from .weights import ZERO_DCE_FILENAME, find_released, load_state_strict, read_weights_file

ZERO_DCE_FILE = "Zero-DCE weights (Epoch99.pth)"
CURVES = 8  # n = 1..8 iterations of eq. (2)


class ZeroDCE(nn.Module):
    """DCE-Net: seven 3x3 convolutions, 32 channels, symmetric skip concatenations.

    Written by hand with the released parameter names (``e_conv1`` ... ``e_conv7``)
    because its released weights must load strictly, key for key.
    """

    def __init__(self, width: int = 32):
        super().__init__()
        conv = lambda cin, cout: nn.Conv2d(cin, cout, 3, 1, 1, bias=True)  # noqa: E731
        self.e_conv1 = conv(3, width)
        self.e_conv2 = conv(width, width)
        self.e_conv3 = conv(width, width)
        self.e_conv4 = conv(width, width)
        self.e_conv5 = conv(2 * width, width)  # takes cat(x3, x4)
        self.e_conv6 = conv(2 * width, width)  # takes cat(x2, x5)
        self.e_conv7 = conv(2 * width, 3 * CURVES)  # takes cat(x1, x6): 8 curve maps of 3 channels

    def curves(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The eight curve-parameter maps r_1..r_8 (each N x 3 x H x W, in [−1, 1]; r_n = −A_n)."""
        x1 = F.relu(self.e_conv1(x))
        x2 = F.relu(self.e_conv2(x1))
        x3 = F.relu(self.e_conv3(x2))
        x4 = F.relu(self.e_conv4(x3))
        x5 = F.relu(self.e_conv5(torch.cat([x3, x4], 1)))
        x6 = F.relu(self.e_conv6(torch.cat([x2, x5], 1)))
        r = torch.tanh(self.e_conv7(torch.cat([x1, x6], 1)))
        return torch.split(r, 3, dim=1)

    def forward(self, x: torch.Tensor, return_curves: bool = False):
        """Enhance N x 3 x H x W in [0, 1] (any H, W): eq. (3) applied with r_1..r_8 in turn.

        Returns the enhanced image, or ``(image, curves)`` with the tuple of the eight maps.
        """
        curves = self.curves(x)
        for r in curves:
            x = x + r * (x * x - x)  # = LE_{n-1} + A_n·LE_{n-1}·(1 − LE_{n-1}), eq. (3), with r = −A_n
        return (x, curves) if return_curves else x


def load_zero_dce(path: str | os.PathLike | None = None) -> ZeroDCE:
    """The authors' released Zero-DCE weights (``Epoch99.pth``, a plain state dict) loaded
    strictly with ``weights_only=True``; the network is returned in eval mode.

    ``path=None`` looks for ``zero_dce_Epoch99.pth`` where :func:`drbn.weights.find_released` looks.
    """
    if path is None:
        path = find_released(ZERO_DCE_FILENAME)
        if path is None:
            raise DRBNError(
                f"Zero-DCE weights ({ZERO_DCE_FILENAME}) not found in $DRBN_RELEASED_DIR or data/released/; "
                "run python -m drbn fetch-weights --only zero-dce, or pass --weights FILE."
            )
    state = read_weights_file(path)
    if isinstance(state, dict) and "kind" in state:
        raise DRBNError(
            f"{path} is a {state['kind']} checkpoint of this kit, not Zero-DCE weights; "
            "pass the authors' Epoch99.pth (python -m drbn fetch-weights --only zero-dce)."
        )
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DRBNError(f"{path} is not a state dict of tensors; pass the authors' {ZERO_DCE_FILE}.")
    model = ZeroDCE()
    load_state_strict(model, state, str(path))
    return model.eval()


@torch.inference_mode()
def enhance_zero_dce(model: ZeroDCE, image: np.ndarray) -> np.ndarray:
    """Enhance one H x W x 3 image (float in [0, 1], or uint8) of any size; returns
    H x W x 3 float32 (no clamp: the curves keep [0, 1] inside [0, 1]).

    Zero-DCE has no down-sampling, so unlike DRBN no padding to a size multiple is needed.
    The input is ``low / 255`` as 1 x 3 x H x W float32, as in the authors' test script.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise DRBNError(f"expected an H x W x 3 RGB image, got shape {image.shape}; read it with drbn.images.read_image.")
    if image.dtype == np.uint8:
        image = image / 255.0
    if not np.isfinite(image).all():
        raise DRBNError("the image has NaN or infinite pixels; fix or replace the input file.")
    y = to_tensor(np.clip(image, 0.0, 1.0)).to(device_of(model))  # outside [0, 1] the curve is unbounded
    # Subnormal floats inside the network make CPU convolutions about 40x slower (a 200x300
    # image on one thread: 12.6 s, 0.31 s with them flushed); flushing changes nothing above 1e-38.
    torch.set_flush_denormal(True)
    try:
        return to_image(model(y))
    finally:
        torch.set_flush_denormal(False)
