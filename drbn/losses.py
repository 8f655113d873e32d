"""The training losses of DRBN; introduced in notebooks/02_recursive_band_learning and notebooks/03_band_recomposition.

SSIM and the band loss (stage 1) in notebook 02; the VGG perceptual loss and LSGAN (stage 2)
in notebook 03.

Bands are named as in ``drbn.model``: ``full`` is the paper's x̂_s3, ``half`` x̂_s2,
``quarter`` x̂_s1.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .errors import DRBNError
from .model import BandOutputs

# ---------------------------------------------------------------------------------------
# SSIM
# ---------------------------------------------------------------------------------------


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """A size x size Gaussian window that sums to 1 (float64)."""
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-pixel, per-channel SSIM of two N x C x H x W batches, same size as the input.

    Written by hand because the released code's SSIM zero-pads by 5, so border pixels count
    (library SSIMs crop or reflect). Gaussian 11x11, σ = 1.5, C1 = (0.01 L)², C2 = (0.03 L)².
    """
    if x.shape != y.shape or x.dim() != 4:
        raise DRBNError(
            f"SSIM needs two N x C x H x W batches of the same shape, got {tuple(x.shape)} "
            f"and {tuple(y.shape)}."
        )
    channels = x.shape[1]
    window = gaussian_window().to(device=x.device, dtype=x.dtype)
    window = window.expand(channels, 1, *window.shape).contiguous()

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window, padding=window.shape[-1] // 2, groups=channels)

    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )


def ssim(
    x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """SSIM as in the released code (the similarity in the paper's losses): the mean of
    ``ssim_map`` over everything.

    ``reduction='mean'`` gives a scalar; ``'none'`` gives one value per image (shape N).
    """
    values = ssim_map(x, y, data_range)
    if reduction == "mean":
        return values.mean()
    if reduction == "none":
        return values.flatten(1).mean(1)
    raise DRBNError(f"reduction must be 'mean' or 'none', got {reduction!r}.")


# ---------------------------------------------------------------------------------------
# Stage 1: the band loss
# ---------------------------------------------------------------------------------------


class BandLoss(nn.Module):
    """Stage-1 loss, the paper's multi-scale reconstruction loss with SSIM as the similarity:

        L = -(SSIM(x̂_s3, x) + λ1 SSIM(x̂_s2, x↓2) + λ2 SSIM(x̂_s1, x↓4))

    here written with weights (w_full, w_half, w_quarter) = (1, λ1, λ2);
    ``BandLoss.paper(λ1, λ2)`` builds that form. The released code uses (1, 1, 1), the
    default. Targets are plain decimation (x[..., ::2, ::2]), no low-pass filter, as
    released. Negative SSIM, not 1 - SSIM (same gradients, different logged values).
    A zero weight skips its term: ``BandLoss((1, 0, 0))`` is the single-scale RBL-v1.
    """

    def __init__(self, weights: tuple[float, float, float] = (1.0, 1.0, 1.0)):
        super().__init__()
        if len(weights) != 3:
            raise DRBNError(f"BandLoss needs three weights (full, half, quarter), got {weights}.")
        self.weights = tuple(float(w) for w in weights)

    @classmethod
    def paper(cls, lambda1: float = 1.0, lambda2: float = 1.0) -> "BandLoss":
        """The paper's form: weight 1 on x̂_s3, λ1 on x̂_s2, λ2 on x̂_s1."""
        return cls((1.0, lambda1, lambda2))

    def forward(self, outputs: BandOutputs, target: torch.Tensor) -> torch.Tensor:
        """``outputs``: the last recursion's bands; ``target``: x, N x 3 x H x W in [0, 1]."""
        loss = target.new_zeros(())
        for weight, band, step in zip(self.weights, outputs, (1, 2, 4)):
            if weight == 0:
                continue
            decimated = target[..., ::step, ::step]
            if band.shape != decimated.shape:
                raise DRBNError(
                    f"band of shape {tuple(band.shape)} does not match the target decimated by "
                    f"{step} ({tuple(decimated.shape)}); the target must be the full-size image."
                )
            loss = loss - weight * ssim(band, decimated)
        return loss

    def extra_repr(self) -> str:
        return f"weights={self.weights}"


# ---------------------------------------------------------------------------------------
# Stage 2: perceptual loss on frozen VGG16 features
# ---------------------------------------------------------------------------------------

VGG16_FILENAME = "vgg16-397923af.pth"  # torchvision's VGG16_Weights.IMAGENET1K_V1 file
VGG_LAYERS = (1, 3, 6, 8)  # relu1_1, relu1_2, relu2_1, relu2_2 in vgg16().features
VGG_LAYER_WEIGHTS = (1.0, 0.6, 0.4, 0.2)  # as released
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg16_cache_path() -> Path:
    """Where ``torchvision.models.vgg16(weights="IMAGENET1K_V1")`` stores its download."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILENAME


def vgg16_weights_candidate(path: str | os.PathLike | None = None) -> Path:
    """The file to look for: ``path``, else $DRBN_VGG16_WEIGHTS, else torchvision's cache."""
    if path is None:
        path = os.environ.get("DRBN_VGG16_WEIGHTS") or vgg16_cache_path()
    return Path(path).expanduser()


def find_vgg16_weights(path: str | os.PathLike | None = None) -> Path | None:
    """The VGG16 weights file to use, or None if the candidate does not exist.

    No fallback past the first candidate given (a wrong explicit path is an error, not a
    cue to use something else), and never a download.
    """
    candidate = vgg16_weights_candidate(path)
    return candidate if candidate.is_file() else None


def vgg16_head() -> nn.Sequential:
    """The first 9 modules of torchvision's ``vgg16().features`` (up to relu2_2), same indices.

    Built directly so the 138 M-parameter classifier is never allocated.
    """
    return nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(),
        nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(),
    )


def load_vgg16_features(path: str | os.PathLike | None = None) -> nn.Sequential:
    """``vgg16_head`` with ImageNet weights from a local torchvision VGG16 file, frozen.

    Raises DRBNError if no weights file is found or it is not a VGG16 state dict: random
    weights would give a loss that trains but means nothing.
    """
    found = find_vgg16_weights(path)
    if found is None:
        raise DRBNError(
            f"VGG16 ImageNet weights not found (looked for {vgg16_weights_candidate(path)}); "
            f"put {VGG16_FILENAME} there or set DRBN_VGG16_WEIGHTS to its path; to get it, run "
            'torchvision.models.vgg16(weights="IMAGENET1K_V1") once with internet.'
        )
    try:
        state = torch.load(found, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        raise DRBNError(
            f"{found} is not a readable PyTorch weights file ({type(exc).__name__}); replace it "
            f"with torchvision's {VGG16_FILENAME}."
        ) from None

    features = vgg16_head()
    expected = features.state_dict()
    state = state if isinstance(state, dict) else {}
    wanted = {k: state.get("features." + k) for k in expected}
    if not all(torch.is_tensor(v) and v.shape == expected[k].shape for k, v in wanted.items()):
        raise DRBNError(
            f"{found} is not a VGG16 state dict (its features.* tensors are missing or of the "
            f"wrong shape); replace it with torchvision's {VGG16_FILENAME}."
        )
    features.load_state_dict(wanted)
    features.eval()
    features.requires_grad_(False)
    return features


class VGGPerceptualLoss(nn.Module):
    """Stage-2 perceptual loss: Σ_k w_k MSE(φ_k(x̂), φ_k(x)) on frozen VGG16 features.

    Layers relu1_1, relu1_2, relu2_1, relu2_2 with weights 1.0, 0.6, 0.4, 0.2, inputs in
    [0, 1] fed WITHOUT ImageNet normalisation, as released; ``normalize=True`` applies the
    ImageNet mean and std that the VGG weights were trained with. The paper names a
    perceptual term but not these details.
    """

    def __init__(self, weights_path: str | os.PathLike | None = None, normalize: bool = False):
        super().__init__()
        self.features = load_vgg16_features(weights_path)
        self.normalize = normalize
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> "VGGPerceptualLoss":
        super().train(mode)
        self.features.eval()  # the extractor stays frozen whatever the caller does
        return self

    def tapped(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The four feature maps the loss compares."""
        if self.normalize:
            x = (x - self.mean) / self.std
        taps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in VGG_LAYERS:
                taps.append(x)
        return taps

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = output.new_zeros(())
        for w, a, b in zip(VGG_LAYER_WEIGHTS, self.tapped(output), self.tapped(target)):
            loss = loss + w * F.mse_loss(a, b.detach())
        return loss


# ---------------------------------------------------------------------------------------
# Stage 2: adversarial loss
# ---------------------------------------------------------------------------------------

REAL_TARGETS = (0.7, 1.2)  # released soft labels for real images
FAKE_TARGETS = (0.0, 0.3)  # and for recomposed outputs


def lsgan_loss(prediction: torch.Tensor, target: torch.Tensor | float) -> torch.Tensor:
    """LSGAN loss, MSE between the discriminator's sigmoid output and its target.

    The released code's form; the paper writes the quality loss as -log D instead.
    """
    if not torch.is_tensor(target):
        target = torch.full_like(prediction, float(target))
    return F.mse_loss(prediction, target)


def uniform_targets(
    n: int, low: float, high: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """n soft labels drawn uniformly from [low, high), e.g. REAL_TARGETS or FAKE_TARGETS."""
    return low + (high - low) * torch.rand(n, generator=generator)
