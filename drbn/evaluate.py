"""Scoring a model on paired images, one short-keyed row per image; introduced in notebooks/02_recursive_band_learning.

Rows are ``{"image", "psnr", "ssim", "psnr_shave10", "psnr_gtmean"}`` (``drbn.metrics``),
plus ``"niqe"`` (of the output, lower is better) when asked for. Photos without targets
(:func:`score_unpaired`) get ``{"image", "niqe"}`` only. The CSV header keeps those keys,
the terminal table shows their labels (``drbn.results``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from . import metrics, results
from .enhance import enhance
from .errors import DRBNError
from .images import Pair, to_uint8, write_image
from .niqe import load_model, niqe
from .model import DRBN
from .recompose import Recomposer

COLUMNS = ("image", *metrics.KEYS)
SCORE_KEYS = (*metrics.KEYS, "niqe")  # every per-image score a row may hold, in column order


def score_niqe(name: str, output: np.ndarray) -> float:
    """NIQE of one output (rounded to 8 bits first, as every metric here); a mistake names the image."""
    try:
        return niqe(to_uint8(output))
    except DRBNError as exc:
        raise DRBNError(f"{name}: {exc}") from None


def score_outputs(
    apply: Callable[[np.ndarray], np.ndarray], pairs: Iterable[Pair], image_dir: str | os.PathLike | None = None,
    with_niqe: bool = False,
) -> list[dict[str, float | str]]:
    """One row per pair, in input order, with the scores of ``apply(pair.y)`` (any enhancer:
    a network, a baseline); with ``with_niqe`` also the output's NIQE; with ``image_dir``
    each output is saved as PNG."""
    if with_niqe:
        load_model()  # a missing NIQE model is reported before any image is enhanced
    rows = []
    for pair in pairs:
        output = apply(pair.y)
        if image_dir is not None:
            write_image(Path(image_dir) / f"{pair.name}.png", output)
        row = {"image": pair.name, **metrics.score(output, pair.high)}
        if with_niqe:
            row["niqe"] = score_niqe(pair.name, output)
        rows.append(row)
    return rows


def score_unpaired(
    apply: Callable[[np.ndarray], np.ndarray] | None, photos: Iterable[tuple[str, np.ndarray]],
    image_dir: str | os.PathLike | None = None,
) -> list[dict[str, float | str]]:
    """One row ``{"image", "niqe"}`` per photo without a target (``drbn.data.load_unpaired``),
    in input order: the NIQE of ``apply(photo)``, or of the photo itself when ``apply`` is None."""
    load_model()
    rows = []
    for name, photo in photos:
        output = photo if apply is None else apply(photo)
        if image_dir is not None:
            write_image(Path(image_dir) / f"{Path(name).with_suffix('')}.png", output)
        rows.append({"image": name, "niqe": score_niqe(name, output)})
    return rows


def evaluate(
    stage1: DRBN, pairs: Iterable[Pair], recomposer: Recomposer | None = None, with_niqe: bool = False
) -> list[dict[str, float | str]]:
    """One row per pair, in input order, with the scores of stage 1 (and the recomposer)."""
    return score_outputs(lambda y: enhance(stage1, y, recomposer).output, pairs, with_niqe=with_niqe)


def columns(rows: list[dict[str, float | str]]) -> tuple[str, ...]:
    """``image`` and the scores the rows hold, in :data:`SCORE_KEYS` order."""
    return ("image", *(k for k in SCORE_KEYS if rows and k in rows[0]))


def mean_row(rows: list[dict[str, float | str]]) -> dict[str, float | str]:
    """The mean over images of each per-image score (NaN if one image has none: a NIQE of
    an image with fewer than two textured blocks)."""
    keys = columns(rows)[1:]
    return {"image": f"mean of {len(rows)}", **metrics.average([{k: r[k] for k in keys} for r in rows])}


def write_csv(rows: list[dict[str, float | str]], path: str | os.PathLike) -> Path:
    """Per-image rows then the mean row; the header is the short keys."""
    return results.write_csv(rows + [mean_row(rows)], path, columns(rows))


def format_table(rows: list[dict[str, float | str]]) -> str:
    """A plain-text table for the terminal, with the column labels."""
    shown = columns(rows)
    lines = [" | ".join(results.label(c) for c in shown)]
    for row in rows + [mean_row(rows)]:
        lines.append(" | ".join(results.format_value(c, row[c]) for c in shown))
    return "\n".join(lines)
