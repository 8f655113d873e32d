"""Scoring a model on paired images, one short-keyed row per image; introduced in notebooks/02_recursive_band_learning.

Rows are ``{"image", "psnr", "ssim", "psnr_shave10", "psnr_gtmean"}`` (``drbn.metrics``);
the CSV header keeps those keys, the terminal table shows their labels (``drbn.results``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from . import metrics, results
from .enhance import enhance
from .images import Pair, write_image
from .model import DRBN
from .recompose import Recomposer

COLUMNS = ("image", *metrics.KEYS)


def score_outputs(
    apply: Callable[[np.ndarray], np.ndarray], pairs: Iterable[Pair], image_dir: str | os.PathLike | None = None
) -> list[dict[str, float | str]]:
    """One row per pair, in input order, with the scores of ``apply(pair.y)`` (any enhancer:
    a network, a baseline); with ``image_dir`` each output is saved as PNG."""
    rows = []
    for pair in pairs:
        output = apply(pair.y)
        if image_dir is not None:
            write_image(Path(image_dir) / f"{pair.name}.png", output)
        rows.append({"image": pair.name, **metrics.score(output, pair.high)})
    return rows


def evaluate(
    stage1: DRBN, pairs: Iterable[Pair], recomposer: Recomposer | None = None
) -> list[dict[str, float | str]]:
    """One row per pair, in input order, with the scores of stage 1 (and the recomposer)."""
    return score_outputs(lambda y: enhance(stage1, y, recomposer).output, pairs)


def mean_row(rows: list[dict[str, float | str]]) -> dict[str, float | str]:
    """The mean over images of each per-image score."""
    return {"image": f"mean of {len(rows)}", **metrics.average([{k: r[k] for k in metrics.KEYS} for r in rows])}


def write_csv(rows: list[dict[str, float | str]], path: str | os.PathLike) -> Path:
    """Per-image rows then the mean row; the header is the short keys."""
    return results.write_csv(rows + [mean_row(rows)], path, COLUMNS)


def format_table(rows: list[dict[str, float | str]]) -> str:
    """A plain-text table for the terminal, with the column labels."""
    lines = [" | ".join(results.label(c) for c in COLUMNS)]
    for row in rows + [mean_row(rows)]:
        lines.append(" | ".join(results.format_value(c, row[c]) for c in COLUMNS))
    return "\n".join(lines)
