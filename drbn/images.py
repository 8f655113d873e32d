"""Image I/O, the one pair of converters, and the ``Pair`` (y, x); introduced in notebooks/01_low_light_data.

Images inside the kit are float32 numpy arrays, H x W x 3, RGB, in [0, 1]; a data set keeps
them as uint8 (a ``Pair``) and the networks take 1 x 3 x H x W float32 tensors
(:func:`to_tensor` and back with :func:`to_image`). Every predictable mistake is a
``DRBNError`` with a clear message.
"""
from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from . import files
from .errors import DRBNError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read any common image as float32 RGB in [0, 1].

    Grayscale is repeated to three channels, alpha is dropped, 16-bit data keeps its
    precision (divided by 65535: grey through Pillow, colour PNGs through :func:`_read_png16`;
    an interlaced 16-bit colour PNG is read with Pillow's 8 bits), EXIF rotation is applied.
    """
    path = Path(path)
    if not path.is_file():
        raise DRBNError(f"image not found: {path}; check the path.")
    try:
        with Image.open(path) as img:
            if img.format == "PNG" and img.info.get("interlace", 0) == 0 and _png_depth(path) == 16 \
                    and img.mode not in ("I;16", "I;16B", "I"):  # 16-bit colour: Pillow keeps 8 bits
                img.verify()
                return _read_png16(path)
            img = ImageOps.exif_transpose(img)
            img.load()
    except Image.DecompressionBombError:  # a header that declares billions of pixels
        raise DRBNError(
            f"{path} declares more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels (a decompression bomb or "
            "a huge scan); shrink it or remove it."
        ) from None
    except Exception as exc:  # noqa: BLE001  Pillow raises many types for a bad file; each is one line
        raise DRBNError(
            f"cannot read {path} as an image ({type(exc).__name__}); the file is corrupt "
            "or not an image: remove it or replace it with a PNG/JPEG."
        ) from None
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit (or 32-bit integer) grayscale
        gray = np.asarray(img, dtype=np.float64) / 65535.0
        return np.repeat(np.clip(gray, 0, 1)[..., None], 3, axis=2).astype(np.float32)
    if img.mode == "F":
        gray = np.asarray(img, dtype=np.float64)
        bad = int(np.count_nonzero(~np.isfinite(gray)))
        if bad:  # a NaN max would turn the whole image black
            raise DRBNError(f"{path} holds {bad} pixel(s) that are not finite (NaN or infinite); "
                            "fix or remove that file.")
        gray = gray / max(float(gray.max()), 1.0)
        return np.repeat(np.clip(gray, 0, 1)[..., None], 3, axis=2).astype(np.float32)
    rgb = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return rgb


def _png_depth(path: Path) -> int:
    with open(path, "rb") as f:
        head = f.read(29)
    return head[24] if len(head) == 29 and head[12:16] == b"IHDR" else 8


def _read_png16(path: Path) -> np.ndarray:
    """A non-interlaced 16-bit PNG (RGB, RGBA, grey + alpha) as float32 RGB in [0, 1], every
    bit kept: Pillow has no 16-bit colour mode and would round it to 8 bits. The scanline
    filters are undone as the PNG specification (section 9) defines them."""
    data, chunks = path.read_bytes(), {}
    position = 8
    while position + 8 <= len(data):
        length = int.from_bytes(data[position:position + 4], "big")
        kind = data[position + 4:position + 8]
        chunks.setdefault(kind, []).append(data[position + 8:position + 8 + length])
        position += 12 + length
    width, height = (int.from_bytes(chunks[b"IHDR"][0][i:i + 4], "big") for i in (0, 4))
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[chunks[b"IHDR"][0][9]]
    bpp, stride = 2 * channels, 2 * channels * width
    raw = np.frombuffer(zlib.decompress(b"".join(chunks[b"IDAT"])), np.uint8)
    rows = raw[: height * (stride + 1)].reshape(height, stride + 1).astype(np.int32)
    out = np.zeros((height, stride), np.int32)
    previous = np.zeros(stride, np.int32)
    for y in range(height):
        kind, line = rows[y, 0], rows[y, 1:]
        if kind == 0:
            current = line
        elif kind == 1:  # Sub: running sum of each byte position within a pixel
            current = np.cumsum(line.reshape(width, bpp), axis=0).ravel() & 255
        elif kind == 2:  # Up
            current = (line + previous) & 255
        else:  # Average (3) and Paeth (4) depend on the pixel before: pixel by pixel
            current = line.copy()
            left = np.zeros(bpp, np.int32)
            for x in range(0, stride, bpp):
                up = previous[x:x + bpp]
                if kind == 3:
                    guess = (left + up) >> 1
                else:
                    up_left = previous[x - bpp:x] if x else np.zeros(bpp, np.int32)
                    p = left + up - up_left
                    pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - up_left)
                    guess = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, up_left))
                left = current[x:x + bpp] = (line[x:x + bpp] + guess) & 255
        out[y] = previous = current
    values = (out[:, 0::2] * 256 + out[:, 1::2]).reshape(height, width, channels) / 65535.0
    rgb = values[..., :3] if channels >= 3 else np.repeat(values[..., :1], 3, axis=2)
    return rgb.astype(np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Clamp to [0, 1] and round to 8 bits: what gets saved, displayed and scored (uint8
    arrays pass through unchanged)."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    return np.clip(np.rint(np.clip(image, 0.0, 1.0) * 255.0), 0, 255).astype(np.uint8)


def write_image(path: str | os.PathLike, image: np.ndarray, overwrite: bool = False) -> Path:
    """Write an H x W x 3 float image in [0, 1] (or uint8) as an 8-bit PNG, atomically
    (:func:`drbn.files.write_file`: a file the kit did not write is replaced only with ``overwrite``)."""
    return files.write_image(path, to_uint8(image), overwrite)


def list_images(folder: str | os.PathLike, what: str = "image folder", recursive: bool = False) -> list[Path]:
    """All image files directly inside ``folder`` (``recursive``: also in its subfolders),
    sorted by path; clear errors if none."""
    folder = Path(folder)
    if not folder.exists():
        raise DRBNError(f"{what} not found: {folder}; check the path.")
    if not folder.is_dir():
        raise DRBNError(f"{what} {folder} is a file, not a folder; pass the folder that holds the images.")
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    files = sorted(p for p in candidates if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DRBNError(
            f"{what} {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}); put images there or pass another folder."
        )
    return files


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """H x W x 3 array (float, or uint8 divided by 255) -> 1 x 3 x H x W float32 tensor."""
    array = np.asarray(image)
    array = array.astype(np.float32) / 255.0 if array.dtype == np.uint8 else array
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).permute(2, 0, 1)[None]


def to_image(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """A tensor (1 x C x H x W, C x H x W or H x W) or an array (H x W x C or H x W; uint8 is
    divided by 255) -> H x W x C (or H x W) float32 array, NOT clamped: signed bands stay signed."""
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu()
        if x.dim() == 4:
            x = x[0]
        if x.dim() == 3:
            x = x.permute(1, 2, 0)
        return x.contiguous().numpy()
    array = np.asarray(x)
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    return array.astype(np.float32, copy=False)


# ---------------------------------------------------------------------------------------
# A training/evaluation pair


@dataclass
class Pair:
    """One training/evaluation pair: the low-light input y and its normal-light target x.

    ``low`` and ``high`` are uint8 H x W x 3 RGB arrays of the same size.
    """

    name: str
    low: np.ndarray
    high: np.ndarray

    def __post_init__(self):
        for what, image in (("low-light", self.low), ("normal-light", self.high)):
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise DRBNError(
                    f"pair '{self.name}': the {what} image must be a uint8 H x W x 3 array, got "
                    f"{image.dtype} {image.shape}; convert it with drbn.images.to_uint8."
                )
        if self.low.shape != self.high.shape:
            raise DRBNError(
                f"pair '{self.name}': low-light image is {_size(self.low)} but normal-light image is "
                f"{_size(self.high)}; a pair must have the same size: fix or remove this pair."
            )

    @property
    def y(self) -> np.ndarray:
        """The low-light input y as float32 in [0, 1]."""
        return self.low.astype(np.float32) / 255.0

    @property
    def x(self) -> np.ndarray:
        """The normal-light target x as float32 in [0, 1]."""
        return self.high.astype(np.float32) / 255.0


def _size(image: np.ndarray) -> str:
    return f"{image.shape[0]}x{image.shape[1]} (HxW)"
