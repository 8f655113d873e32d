"""The quality discriminator of stage 2, used only in training; introduced in notebooks/03_band_recomposition."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


def sorted_channels(x: torch.Tensor) -> torch.Tensor:
    """The image with its per-pixel sorted channels appended: cat(x, min, median, max).

    Sorting discards which channel is which, so the discriminator also sees colour-free
    structure (how bright and how saturated each pixel is), as in the released code.
    """
    return torch.cat((x, torch.sort(x, dim=1).values), 1)


class QualityDiscriminator(nn.Module):
    """Eight 3x3 conv + ReLU (BatchNorm from the second), 1x1 head, global average, sigmoid.

    4,691,329 parameters. The 1x1 head keeps the released ``padding=1`` quirk: it adds a
    one-pixel frame of the bias alone, which the global average then includes.
    """

    def __init__(self, width: int = 64):
        super().__init__()
        plan = [  # (in, out, stride)
            (6, width, 1), (width, width, 2),
            (width, 2 * width, 1), (2 * width, 2 * width, 2),
            (2 * width, 4 * width, 1), (4 * width, 4 * width, 2),
            (4 * width, 8 * width, 1), (8 * width, 8 * width, 2),
        ]
        layers: list[nn.Module] = []
        for i, (cin, cout, stride) in enumerate(plan):
            layers.append(nn.Conv2d(cin, cout, 3, stride=stride, padding=1))
            if i > 0:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.ReLU(inplace=True))
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(8 * width, 1, 1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Quality score in (0, 1) per image, shape N."""
        score = self.head(self.features(sorted_channels(x)))
        return torch.sigmoid(score.mean(dim=(1, 2, 3)))


def tile_origins(size: int, crop: int, count: int) -> list[int]:
    """Up to ``count`` evenly spaced starts of ``crop``-long windows covering ``size``."""
    if size <= crop:
        return [0]
    n = min(count, -(-size // crop))  # enough windows to cover the side, at most ``count``
    return sorted({round(i * (size - crop) / max(n - 1, 1)) for i in range(n)})


@torch.no_grad()
def score_images(discriminator: QualityDiscriminator, images, crop: int = 128, tiles: int = 4) -> list[float]:
    """D's score of each image (H x W x 3, uint8 or float in [0, 1]): the mean of D over a grid
    of up to ``tiles`` x ``tiles`` evenly spaced ``crop`` x ``crop`` windows (the patch size D
    trained on), in eval mode (BatchNorm's running statistics). Near 1: D takes the image for
    a well-exposed photo; near 0: for a recomposed low-light one. The module's mode is restored.
    """
    was_training = discriminator.training
    discriminator.eval()
    device = next(discriminator.parameters()).device
    scores = []
    for image in images:
        array = np.asarray(image)
        array = array.astype(np.float32) / 255.0 if array.dtype == np.uint8 else array.astype(np.float32)
        x = torch.from_numpy(np.clip(array, 0.0, 1.0)).permute(2, 0, 1)
        h, w = x.shape[1:]
        side_h, side_w = min(crop, h), min(crop, w)
        windows = [x[:, t:t + side_h, l:l + side_w] for t in tile_origins(h, side_h, tiles)
                   for l in tile_origins(w, side_w, tiles)]
        scores.append(float(discriminator(torch.stack(windows).to(device)).mean()))
    discriminator.train(was_training)
    return scores
