"""Training and evaluation data: paired sets (LOL or the built-in synthetic set), unpaired
low-light photos for stage 2, and seeded random patches.

Paired data: ``load_pairs(None | "auto", split)`` gives the synthetic set from
``drbn.synthetic``; ``load_pairs("path/to/LOL", split)`` reads LOL-v1 or LOL-v2, found by
its folder layout. Images are kept as uint8 (a full LOL set is about 700 MB that way) and
turned into float32 in [0, 1] only for the patches of a batch.

Batches are drawn from a ``numpy.random.Generator`` that the caller makes from (seed, step),
so any step can be replayed exactly and a training run resumes where it stopped.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import DRBNError
from .images import list_images, read_image, to_uint8
from .synthetic import (  # the built-in set, re-exported: drbn.data is the one place to get data
    DEFAULT_VARIANTS,
    high_quality_photos,
    photo_sources,
    synthetic_pairs,
    synthetic_unpaired,
)

SPLITS = ("train", "test")

# Folder layouts, relative to the dataset root: split -> (low-light folder, normal-light folder).
LOL_LAYOUTS = {
    "LOL-v1": {"train": ("our485/low", "our485/high"), "test": ("eval15/low", "eval15/high")},
    "LOL-v2": {"train": ("Train/Low", "Train/Normal"), "test": ("Test/Low", "Test/Normal")},
}


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


# ---------------------------------------------------------------------------------------
# LOL on disk


def _has_layout(folder: Path, layout: str) -> bool:
    return all((folder / sub).is_dir() for pair in LOL_LAYOUTS[layout].values() for sub in pair)


def _layout_name(layout: str, folder: Path) -> str:
    """LOL-v2's real and synthetic parts share one layout; the folder name tells them apart."""
    if layout == "LOL-v2":
        return "LOL-v2-synthetic" if "synthetic" in folder.name.lower() else "LOL-v2-real"
    return layout


def detect_lol(root: str | os.PathLike) -> tuple[str, Path]:
    """Which LOL layout ``root`` holds: ('LOL-v1' | 'LOL-v2-real' | 'LOL-v2-synthetic', folder).

    ``root`` is the dataset folder itself, or a folder holding exactly one such dataset one
    level down (e.g. the LOL-v2 folder whose only dataset is ``Real_captured``).
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DRBNError(f"data folder not found: {root}; pass a LOL folder, or 'auto' for the synthetic set.")
    if not root.is_dir():
        raise DRBNError(f"data path {root} is a file; pass the LOL dataset folder, or 'auto' for the synthetic set.")
    for layout in LOL_LAYOUTS:
        if _has_layout(root, layout):
            return _layout_name(layout, root), root
    found = [
        (layout, child)
        for child in sorted(p for p in root.iterdir() if p.is_dir())
        for layout in LOL_LAYOUTS
        if _has_layout(child, layout)
    ]
    if len(found) == 1:
        layout, child = found[0]
        return _layout_name(layout, child), child
    if len(found) > 1:
        names = ", ".join(str(child) for _, child in found)
        raise DRBNError(f"{root} holds several LOL datasets ({names}); pass one of them.")
    for layout, splits in LOL_LAYOUTS.items():  # a partial layout: say what is missing
        subs = [sub for pair in splits.values() for sub in pair]
        if any((root / sub.split("/")[0]).is_dir() for sub in subs):
            missing = [sub for sub in subs if not (root / sub).is_dir()]
            raise DRBNError(
                f"{root} looks like {layout} but lacks the sub-folders {', '.join(missing)}; "
                "restore them or pass the complete dataset folder."
            )
    expected = "; ".join(
        f"{layout}: " + ", ".join(sub for pair in splits.values() for sub in pair)
        for layout, splits in LOL_LAYOUTS.items()
    )
    raise DRBNError(f"{root} is not a LOL dataset folder: expected the sub-folders of {expected}.")


_LOW_PREFIX = re.compile(r"^low(?=.)", re.IGNORECASE)
_HIGH_PREFIX = re.compile(r"^(normal|high)(?=.)", re.IGNORECASE)


def _keyed(files: list[Path], prefix: re.Pattern, what: str) -> dict[str, Path]:
    """File stem without LOL-v2's 'low'/'normal' prefix -> path ('low00001.png' -> '00001')."""
    keyed: dict[str, Path] = {}
    for path in files:
        key = prefix.sub("", path.stem)
        if key in keyed:
            raise DRBNError(
                f"{what} holds both {keyed[key].name} and {path.name}, which match the same pair; remove one."
            )
        keyed[key] = path
    return keyed


def _names(paths: list[Path], limit: int = 5) -> str:
    shown = ", ".join(p.name for p in paths[:limit])
    return shown + (f", ... ({len(paths)} in all)" if len(paths) > limit else "")


def find_lol(root: str | os.PathLike) -> dict[str, list[tuple[str, Path, Path]]]:
    """Match low-light and normal-light files of a LOL folder by name.

    Returns ``{'train': [(name, low_path, high_path), ...], 'test': [...]}``, sorted by name.
    LOL-v1 names are equal in both folders ('1.png'); LOL-v2-real prefixes them
    ('low00001.png' / 'normal00001.png'); both are matched on what follows the prefix.
    """
    layout, folder = detect_lol(root)
    version = "LOL-v1" if layout == "LOL-v1" else "LOL-v2"
    found = {}
    for split, (low_sub, high_sub) in LOL_LAYOUTS[version].items():
        low_dir, high_dir = folder / low_sub, folder / high_sub
        low = _keyed(list_images(low_dir, f"{layout} {split} low-light folder"), _LOW_PREFIX, str(low_dir))
        high = _keyed(list_images(high_dir, f"{layout} {split} normal-light folder"), _HIGH_PREFIX, str(high_dir))
        low_only = [low[k] for k in sorted(low.keys() - high.keys())]
        high_only = [high[k] for k in sorted(high.keys() - low.keys())]
        if low_only or high_only:
            parts = []
            if low_only:
                parts.append(f"{len(low_only)} in {low_dir} have no match in {high_sub} ({_names(low_only)})")
            if high_only:
                parts.append(f"{len(high_only)} in {high_dir} have no match in {low_sub} ({_names(high_only)})")
            raise DRBNError(
                f"{layout} {split}: unmatched images: " + "; ".join(parts)
                + "; pairs are matched by file name (a 'low'/'normal' prefix is ignored): add or remove those files."
            )
        found[split] = [(key, low[key], high[key]) for key in sorted(low, key=_natural_key)]
    return found


def _natural_key(name: str):
    """'2' before '10': numbers compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise DRBNError(f"unknown split '{split}'; use 'train' or 'test'.")


def _is_synthetic(data: str | os.PathLike | None) -> bool:
    return data is None or (isinstance(data, str) and data == "auto")


def load_lol(root: str | os.PathLike, split: str, limit: int | None = None) -> list[Pair]:
    """Read the ``split`` pairs of a LOL folder as uint8 ``Pair``s (the first ``limit`` only, if given)."""
    _check_split(split)
    entries = find_lol(root)[split][:limit]
    return [
        Pair(name, to_uint8(read_image(low_path)), to_uint8(read_image(high_path)))
        for name, low_path, high_path in entries
    ]


def load_pairs(
    data: str | os.PathLike | None,
    split: str,
    *,
    seed: int = 0,
    variants: int | None = None,
    params=None,
    limit: int | None = None,
) -> list[Pair]:
    """The paired set for ``split`` ('train' or 'test').

    data: None or 'auto' -> the synthetic set (``drbn.synthetic.synthetic_pairs``; ``seed``,
          ``variants`` and ``params`` apply to it); otherwise a LOL folder (see ``find_lol``).
    limit: keep only the first ``limit`` pairs (demo-sized runs).
    """
    _check_split(split)
    if _is_synthetic(data):
        pairs = synthetic_pairs(split, seed=seed, params=params, variants=DEFAULT_VARIANTS if variants is None else variants)
        return pairs[:limit]
    return load_lol(data, split, limit=limit)


def describe(data: str | os.PathLike | None) -> str:
    """One line naming the paired data, for tables and logs."""
    if _is_synthetic(data):
        return f"synthetic ({photo_sources()} photos, darkened)"
    layout, folder = detect_lol(data)
    return f"{layout} at {folder}"


# ---------------------------------------------------------------------------------------
# Unpaired low-light photos (stage 2)


def load_unpaired(folder: str | os.PathLike, what: str = "unpaired low-light folder") -> list[tuple[str, np.ndarray]]:
    """Every image in ``folder`` as (file name, uint8 H x W x 3); any size is fine.

    Used for stage 2's real low-light set and for a folder of high-quality photos; ``what``
    names the folder in error messages.
    """
    files = list_images(folder, what)
    return [(path.name, to_uint8(read_image(path))) for path in files]


# ---------------------------------------------------------------------------------------
# Random patches


def _check_crop(sizes: list[tuple[str, tuple[int, ...]]], batch_size: int, crop: int, what: str) -> None:
    if not sizes:
        raise DRBNError(f"no {what} to sample from; check the data folder.")
    if batch_size < 1:
        raise DRBNError(f"batch size must be at least 1, got {batch_size}.")
    if crop < 4 or crop % 4:
        raise DRBNError(f"crop must be a positive multiple of 4 (the network halves the size twice), got {crop}.")
    for name, shape in sizes:
        if shape[0] < crop or shape[1] < crop:
            raise DRBNError(
                f"{what} '{name}' is {shape[0]}x{shape[1]} (HxW), smaller than the {crop}x{crop} crop; "
                "use a smaller crop or remove the image."
            )


def _random_patch(images: tuple[np.ndarray, ...], crop: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The same random crop, h-flip, v-flip and transpose applied to every array in ``images``
    (the released training's augmentation); draws exactly 5 numbers from ``rng``."""
    h, w = images[0].shape[:2]
    top = int(rng.integers(0, h - crop + 1))
    left = int(rng.integers(0, w - crop + 1))
    hflip, vflip, transpose = rng.random(3) < 0.5
    patches = []
    for image in images:
        patch = image[top : top + crop, left : left + crop]
        if hflip:
            patch = patch[:, ::-1]
        if vflip:
            patch = patch[::-1, :]
        if transpose:
            patch = patch.transpose(1, 0, 2)
        patches.append(patch)
    return patches


def _to_batch(patches: list[np.ndarray]) -> torch.Tensor:
    """uint8 N x H x W x 3 patches -> float32 N x 3 x H x W tensor in [0, 1]."""
    batch = torch.from_numpy(np.ascontiguousarray(np.stack(patches)))
    return batch.permute(0, 3, 1, 2).float().div(255.0).contiguous()


def sample_pair_batch(
    pairs: list[Pair], batch_size: int, crop: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A training batch (y, x): ``batch_size`` random ``crop`` x ``crop`` patches of low-light
    inputs y and their normal-light targets x, float32 N x 3 x crop x crop in [0, 1].

    Pairs are drawn with replacement, so each step depends only on ``rng``: build it as
    ``np.random.default_rng([seed, step])`` and any step can be replayed.
    """
    _check_crop([(p.name, p.low.shape) for p in pairs], batch_size, crop, "pair")
    lows, highs = [], []
    for index in rng.integers(0, len(pairs), size=batch_size):
        low, high = _random_patch((pairs[index].low, pairs[index].high), crop, rng)
        lows.append(low)
        highs.append(high)
    return _to_batch(lows), _to_batch(highs)


def sample_image_batch(
    images: list[tuple[str, np.ndarray]], batch_size: int, crop: int, rng: np.random.Generator
) -> torch.Tensor:
    """``batch_size`` random patches of (name, uint8 image) entries, with the same
    augmentation as ``sample_pair_batch``; float32 N x 3 x crop x crop in [0, 1]."""
    _check_crop([(name, image.shape) for name, image in images], batch_size, crop, "image")
    patches = []
    for index in rng.integers(0, len(images), size=batch_size):
        patches.extend(_random_patch((images[index][1],), crop, rng))
    return _to_batch(patches)
