"""Every data set (LOL, synthetic, unpaired, high-quality) and seeded patches; introduced in notebooks/01_low_light_data.

Paired data: ``load_pairs("auto", split)`` reads the repository's ``data/LOL/`` when it
holds a LOL data set, else builds the synthetic set (natural photos shipped with
scikit-image and matplotlib, darkened by ``drbn.synthetic``'s camera model);
``load_pairs("synthetic", split)`` always builds the synthetic set; ``load_pairs("path/to/LOL",
split)`` reads LOL-v1 or LOL-v2, found by its folder layout. :func:`describe` names the
data a value stands for, for every log and table. Images are kept as uint8 (a full LOL set
is about 700 MB that way) and turned into float32 in [0, 1] only for the patches of a batch.

Batches are drawn from a ``numpy.random.Generator`` that the caller makes from (seed, step),
so any step can be replayed exactly and a training run resumes where it stopped.
"""
from __future__ import annotations

import functools
import os
import re
import zlib
from pathlib import Path

import numpy as np
import torch

from .errors import DRBNError
from .images import Pair, list_images, read_image, to_uint8
from .synthetic import LowLightParams, darken

SPLITS = ("train", "test")
REPO = Path(__file__).resolve().parents[1]
REPO_LOL = REPO / "data" / "LOL"  # found by data="auto"

# Folder layouts, relative to the dataset root: split -> (low-light folder, normal-light folder).
LOL_LAYOUTS = {
    "LOL-v1": {"train": ("our485/low", "our485/high"), "test": ("eval15/low", "eval15/high")},
    "LOL-v2": {"train": ("Train/Low", "Train/Normal"), "test": ("Test/Low", "Test/Normal")},
}


# ---------------------------------------------------------------------------------------
# LOL on disk


def _has_layout(folder: Path, layout: str, splits: tuple[str, ...] = SPLITS) -> bool:
    return all((folder / sub).is_dir() for split in splits for sub in LOL_LAYOUTS[layout][split])


def _layout_name(layout: str, folder: Path) -> str:
    """LOL-v2's real and synthetic parts share one layout; the folder name tells them apart."""
    if layout == "LOL-v2":
        return "LOL-v2-synthetic" if "synthetic" in folder.name.lower() else "LOL-v2-real"
    return layout


def detect_lol(root: str | os.PathLike, splits: tuple[str, ...] = SPLITS) -> tuple[str, Path]:
    """Which LOL layout ``root`` holds: ('LOL-v1' | 'LOL-v2-real' | 'LOL-v2-synthetic', folder).

    ``root`` is the dataset folder itself, or a folder holding exactly one such dataset one
    level down (e.g. the LOL-v2 folder whose only dataset is ``Real_captured``). Only the
    sub-folders of ``splits`` must exist: ``("test",)`` accepts a LOL-v1 with only eval15/.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DRBNError(f"data folder not found: {root}; pass a LOL folder, or 'synthetic' for the synthetic set.")
    if not root.is_dir():
        raise DRBNError(f"data path {root} is a file; pass the LOL dataset folder, or 'synthetic' for the synthetic set.")
    for layout in LOL_LAYOUTS:
        if _has_layout(root, layout, splits):
            return _layout_name(layout, root), root
    found = [
        (layout, child)
        for child in sorted(p for p in root.iterdir() if p.is_dir())
        for layout in LOL_LAYOUTS
        if _has_layout(child, layout, splits)
    ]
    if len(found) == 1:
        layout, child = found[0]
        return _layout_name(layout, child), child
    if len(found) > 1:
        names = ", ".join(str(child) for _, child in found)
        raise DRBNError(f"{root} holds several LOL datasets ({names}); pass one of them.")
    for layout, layout_splits in LOL_LAYOUTS.items():  # a partial layout: say what is missing
        subs = [sub for split in splits for sub in layout_splits[split]]
        if any((root / sub.split("/")[0]).is_dir() for pair in layout_splits.values() for sub in pair):
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


def find_lol(root: str | os.PathLike, splits: tuple[str, ...] = SPLITS) -> dict[str, list[tuple[str, Path, Path]]]:
    """Match low-light and normal-light files of a LOL folder by name.

    Returns ``{'train': [(name, low_path, high_path), ...], 'test': [...]}``, sorted by name.
    LOL-v1 names are equal in both folders ('1.png'); LOL-v2-real prefixes them
    ('low00001.png' / 'normal00001.png'); both are matched on what follows the prefix.
    """
    layout, folder = detect_lol(root, splits)
    version = "LOL-v1" if layout == "LOL-v1" else "LOL-v2"
    found = {}
    for split in splits:
        low_sub, high_sub = LOL_LAYOUTS[version][split]
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


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise DRBNError(f"unknown split '{split}'; use 'train' or 'test'.")
    return split


def load_lol(root: str | os.PathLike, split: str, limit: int | None = None) -> list[Pair]:
    """Read the ``split`` pairs of a LOL folder as uint8 ``Pair``s (the first ``limit`` only, if given)."""
    _check_split(split)
    entries = find_lol(root, (split,))[split][:limit]  # only this split's folders must exist
    return [
        Pair(name, to_uint8(read_image(low_path)), to_uint8(read_image(high_path)))
        for name, low_path, high_path in entries
    ]


# ---------------------------------------------------------------------------------------
# Which paired data: "auto", "synthetic" or a LOL folder


def resolve(data: str | os.PathLike | None) -> str | Path:
    """``"synthetic"`` or the LOL folder that ``data`` stands for.

    None or "auto": the repository's ``data/LOL/`` if it exists (it must then hold a LOL data
    set), else the synthetic set; "synthetic": the synthetic set; anything else: a LOL folder.
    """
    if data is None or (isinstance(data, str) and data == "auto"):
        if not REPO_LOL.exists():
            return "synthetic"
        detect_lol(REPO_LOL)  # a data/LOL/ that is not a LOL data set is an error, not a fallback
        return REPO_LOL
    if isinstance(data, str) and data == "synthetic":
        return "synthetic"
    return Path(data).expanduser()


def load_pairs(
    data: str | os.PathLike | None,
    split: str,
    *,
    seed: int = 0,
    variants: int | None = None,
    params: LowLightParams | None = None,
    limit: int | None = None,
) -> list[Pair]:
    """The paired set for ``split`` ('train' or 'test').

    data: "auto" (or None), "synthetic" or a LOL folder, see :func:`resolve`; ``seed``,
          ``variants`` and ``params`` apply to the synthetic set (:func:`synthetic_pairs`).
    limit: keep only the first ``limit`` pairs (demo-sized runs).
    """
    _check_split(split)
    source = resolve(data)
    if source == "synthetic":
        pairs = synthetic_pairs(split, seed=seed, params=params, variants=DEFAULT_VARIANTS if variants is None else variants)
        return pairs[:limit]
    return load_lol(source, split, limit=limit)


def hold_out(pairs: list[Pair], every: int) -> tuple[list[Pair], list[Pair]]:
    """(training pairs, validation pairs): every ``every``-th pair (the 1st, 11th, ... for 10)
    is held out to validate on during training, so that settings are never chosen on the
    test split. ``every=0`` holds out nothing and validates on nothing."""
    if every < 0:
        raise DRBNError(f"holdout_every must be 0 (none) or a positive number, got {every}.")
    if every == 0:
        return list(pairs), []
    held = pairs[::every]
    if len(held) == len(pairs):
        raise DRBNError(f"holding out every {every}. of {len(pairs)} training pairs leaves none to train on; "
                        "use more pairs or a larger holdout_every.")
    return [p for i, p in enumerate(pairs) if i % every], held


def describe(data: str | os.PathLike | None) -> str:
    """One line naming the paired data ``data`` stands for, for tables and logs."""
    source = resolve(data)
    if source == "synthetic":
        return f"synthetic ({photo_sources()} photos, darkened)"
    layout, folder = detect_lol(source, ("test",))  # a test-only folder is described too
    return f"{layout} at {folder}"


# ---------------------------------------------------------------------------------------
# The synthetic set: photos that ship with scikit-image and matplotlib, darkened

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
        names = tuple(n for n in names if (n in TEST_PHOTOS) == (_check_split(split) == "test"))
    return [(name, _photo(name)) for name in names]


def high_quality_photos(part: str = "train") -> list[tuple[str, np.ndarray]]:
    """Well-exposed photos for stage 2's quality discriminator (the role of the authors'
    AVA high-score set), as (name, uint8 H x W x 3). ``part="train"``: the training-split
    photos, which the discriminator trains on; ``"held_out"``: the test-split photos, which
    only scores of a trained discriminator use (see :func:`unpaired_part`)."""
    split = "train" if check_part(part) == "train" else "test"
    return [(name, to_uint8(photo)) for name, photo in natural_photos(split)]


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
    _check_split(split)
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
    pairs = []
    for name, photo in natural_photos(split):
        high = to_uint8(photo)
        for i in range(variants):
            rng = np.random.default_rng([seed, zlib.crc32(name.encode()), i])
            low = to_uint8(darken(photo, rng, params))
            pairs.append(Pair(name if split == "test" else f"{name}_{i}", low, high))
    return pairs


def synthetic_unpaired(
    seed: int = 1, params: LowLightParams | None = None, variants: int = DEFAULT_VARIANTS, part: str = "train"
) -> list[tuple[str, np.ndarray]]:
    """Low-light images without targets for stage 2's quality term, as (name, uint8 H x W x 3).

    ``part="train"``: darkenings of the training photos drawn from a seed other than the
    paired set's, so stage 2 never trains on a test scene. ``part="held_out"``: ``variants``
    darkenings of the test photos (chelsea, coffee) from the same seed, named
    '<photo>_<i>': scenes no stage trains on, for stage 2's scores and figures.
    """
    if check_part(part) == "train":
        return [(p.name, p.low) for p in synthetic_pairs("train", seed=seed, params=params, variants=variants)]
    if seed < 0 or variants < 1:
        raise DRBNError(f"seed must be non-negative and variants at least 1, got {seed} and {variants}.")
    held = []
    for name, photo in natural_photos("test"):
        for i in range(variants):
            rng = np.random.default_rng([seed, zlib.crc32(name.encode()), i])
            held.append((f"{name}_{i}", to_uint8(darken(photo, rng, params))))
    return held


# Poor photos for the paper's pre-trained quality critic (drbn.train.pretrain_critic)
POOR_KINDS = ("dark and noisy", "under-exposed", "over-exposed", "noisy")


def poor_version(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A badly taken version of a well-exposed photo (float32 H x W x 3 in [0, 1]), one of
    POOR_KINDS drawn from ``rng``: the synthetic camera model's dark, noisy shot
    (``drbn.synthetic.darken``); too dark (0.4-0.8 x^2-3.5); blown highlights (1.8-3 x,
    clipped); sensor noise (Gaussian, sigma 0.05-0.12). The stand-in for the low-scoring
    photos the paper's critic learned to tell from AVA's high-scoring ones."""
    photo = np.asarray(photo, dtype=np.float32)
    kind = POOR_KINDS[int(rng.integers(len(POOR_KINDS)))]
    if kind == "dark and noisy":
        poor = darken(photo, rng)
    elif kind == "under-exposed":
        poor = rng.uniform(0.4, 0.8) * photo ** rng.uniform(2.0, 3.5)
    elif kind == "over-exposed":
        poor = photo * rng.uniform(1.8, 3.0)
    else:
        poor = photo + rng.normal(0.0, rng.uniform(0.05, 0.12), size=photo.shape)
    return np.clip(poor, 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------
# Which unpaired photos stage 2 may train on: the held-out split, by name

PARTS = ("train", "held_out")
HELD_OUT_FOLDERS = ("lime",)  # every photo in a subfolder of this name (any case) is held out
HELD_OUT_EVERY, HELD_OUT_REMAINDER = 4, 2  # and every photo whose number is 2 mod 4: DICM 02, 06, ...; kodim02, ...
_TRAILING_NUMBER = re.compile(r"(\d+)$")


def check_part(part: str) -> str:
    if part not in PARTS:
        raise DRBNError(f"unknown part {part!r}; use 'train' (what stage 2 trains on) or 'held_out' "
                        "(what its scores and figures use).")
    return part


def unpaired_part(name: str, folder: str | os.PathLike | None = None) -> str:
    """'train' or 'held_out': the part of the unpaired or high-quality photo at ``name``
    (its path relative to the folder given, e.g. 'DICM/04.jpg'), decided by its name alone.

    The rule, written down in data/README.md:
      1. a photo inside a subfolder named LIME of the folder given is held out: LIME is the
         classic low-light test set (a LIME folder given by itself is split by rule 2, so
         that both parts have photos);
      2. else a photo whose file name ends in a number (before the extension) is held out
         when that number leaves remainder 2 divided by 4: DICM's 02.jpg, 06.jpg, ...
         (about a quarter of DICM), Kodak's kodim02, kodim06, ... (6 of 24), LIME's 2, 6, 10;
      3. else (no number) it is held out when the CRC-32 of its lower-case file name leaves
         remainder 2 divided by 4 (about a quarter of such names).
    Stage 2 and its discriminator train only on part 'train'; every stage-2 score, figure
    and teaser uses part 'held_out'. A photo's part depends on its own path only: adding or
    removing other photos never moves it. ``folder`` is accepted for symmetry with
    :func:`load_unpaired` and does not change the part.
    """
    path = Path(name)
    if any(p.lower() in HELD_OUT_FOLDERS for p in path.parts[:-1]):
        return "held_out"
    number = _TRAILING_NUMBER.search(path.stem)
    key = int(number.group(1)) if number else zlib.crc32(path.name.lower().encode())
    return "held_out" if key % HELD_OUT_EVERY == HELD_OUT_REMAINDER else "train"


# ---------------------------------------------------------------------------------------
# Unpaired low-light photos (stage 2)


def load_unpaired(folder: str | os.PathLike, what: str = "unpaired low-light folder",
                  part: str | None = None) -> list[tuple[str, np.ndarray]]:
    """Every image in ``folder`` and its subfolders (e.g. DICM/ and LIME/ side by side) as
    (path relative to ``folder``, uint8 H x W x 3); any size is fine.

    Used for stage 2's real low-light set and for a folder of high-quality photos; ``what``
    names the folder in error messages. ``part``: only the photos of that part of the
    held-out split (:func:`unpaired_part`), None for all.
    """
    files = list_images(folder, what, recursive=True)
    names = [path.relative_to(Path(folder)).as_posix() for path in files]
    if part is not None:
        check_part(part)
        chosen = [(n, f) for n, f in zip(names, files) if unpaired_part(n, folder) == part]
        if not chosen:
            raise DRBNError(
                f"{what} {folder} has no photo in part {part!r} of the held-out split (photos in a LIME subfolder "
                f"and those whose number is {HELD_OUT_REMAINDER} mod {HELD_OUT_EVERY} are held out, data/README.md): "
                "add photos of the other kind.")
        names, files = [n for n, _ in chosen], [f for _, f in chosen]
    return [(name, to_uint8(read_image(path))) for name, path in zip(names, files)]


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
