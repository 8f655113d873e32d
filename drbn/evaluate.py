"""Score a model on paired images: per-image and mean PSNR/SSIM, written as a CSV table.

Headline: full-image PSNR and SSIM on 8-bit outputs. Also PSNR with a 10-pixel border
shaved, as the authors' code reports it. Every column says which is which.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from . import metrics
from .data import Pair
from .enhance import enhance
from .images import write_image
from .model import DRBN
from .recompose import Recomposer

COLUMNS = ("image", metrics.PSNR, metrics.SSIM, metrics.PSNR_RELEASED)


def score_outputs(
    apply: Callable[[np.ndarray], np.ndarray], pairs: Iterable[Pair], image_dir: str | os.PathLike | None = None
) -> list[dict[str, float | str]]:
    """One row per pair, in input order, with the three labelled scores of ``apply(pair.y)``
    (any enhancer: a network, a baseline); with ``image_dir`` each output is saved as PNG."""
    rows = []
    for pair in pairs:
        output = apply(pair.y)
        if image_dir is not None:
            write_image(Path(image_dir) / f"{pair.name}.png", output)
        rows.append({"image": pair.name, **metrics.labelled(metrics.score(output, pair.high))})
    return rows


def evaluate(
    stage1: DRBN, pairs: Iterable[Pair], recomposer: Recomposer | None = None
) -> list[dict[str, float | str]]:
    """One row per pair, in input order, with the three labelled scores."""
    return score_outputs(lambda y: enhance(stage1, y, recomposer).output, pairs)


def mean_row(rows: list[dict[str, float | str]]) -> dict[str, float | str]:
    """The mean over images of each per-image score."""
    return {"image": f"mean of {len(rows)}", **metrics.average([{c: r[c] for c in COLUMNS[1:]} for r in rows])}


def write_csv(rows: list[dict[str, float | str]], path: str | os.PathLike) -> Path:
    """Per-image rows then the mean row."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows + [mean_row(rows)])
    return path


def format_table(rows: list[dict[str, float | str]]) -> str:
    """A plain-text table for the terminal."""
    lines = [" | ".join(COLUMNS)]
    for row in rows + [mean_row(rows)]:
        lines.append(" | ".join([str(row["image"])] + [f"{row[c]:.4f}" if c == metrics.SSIM else f"{row[c]:.2f}" for c in COLUMNS[1:]]))
    return "\n".join(lines)
