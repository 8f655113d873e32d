"""Reading, writing and listing images, with a clear message for every predictable mistake.

Images inside the kit are float32 numpy arrays, H x W x 3, RGB, in [0, 1].
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import DRBNError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read any common image as float32 RGB in [0, 1].

    Grayscale is repeated to three channels, alpha is dropped, 16-bit data keeps its
    precision (divided by 65535), EXIF rotation is applied.
    """
    path = Path(path)
    if not path.is_file():
        raise DRBNError(f"image not found: {path}; check the path.")
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            img.load()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DRBNError(
            f"cannot read {path} as an image ({type(exc).__name__}); the file is corrupt "
            "or not an image: remove it or replace it with a PNG/JPEG."
        ) from None
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit (or 32-bit integer) grayscale
        gray = np.asarray(img, dtype=np.float64) / 65535.0
        return np.repeat(np.clip(gray, 0, 1)[..., None], 3, axis=2).astype(np.float32)
    if img.mode == "F":
        gray = np.asarray(img, dtype=np.float64)
        gray = gray / max(float(gray.max()), 1.0)
        return np.repeat(np.clip(gray, 0, 1)[..., None], 3, axis=2).astype(np.float32)
    rgb = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return rgb


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Clamp to [0, 1] and round to 8 bits: what gets saved, displayed and scored."""
    return np.clip(np.rint(np.clip(image, 0.0, 1.0) * 255.0), 0, 255).astype(np.uint8)


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an H x W x 3 float image in [0, 1] (or uint8) as an 8-bit PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = image if image.dtype == np.uint8 else to_uint8(image)
    Image.fromarray(data).save(path)
    return path


def list_images(folder: str | os.PathLike, what: str = "image folder") -> list[Path]:
    """All image files directly inside ``folder``, sorted by name; clear errors if none."""
    folder = Path(folder)
    if not folder.exists():
        raise DRBNError(f"{what} not found: {folder}; check the path.")
    if not folder.is_dir():
        raise DRBNError(f"{what} {folder} is a file, not a folder; pass the folder that holds the images.")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DRBNError(
            f"{what} {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}); put images there or pass another folder."
        )
    return files


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """H x W x 3 array -> 1 x 3 x H x W float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]


def to_image(tensor: torch.Tensor) -> np.ndarray:
    """1 x 3 x H x W (or 3 x H x W) tensor -> H x W x 3 float32 array (no clamp)."""
    if tensor.dim() == 4:
        tensor = tensor[0]
    return tensor.detach().float().cpu().permute(1, 2, 0).contiguous().numpy()
