"""Quality against compute: the curve of a long stage-1 run, read back and extrapolated;
introduced in notebooks/02_recursive_band_learning (results/weights/ holds the kit's run).

A curve is what ``results/long_stage1.py`` writes: one point per snapshot with the step,
the training seconds so far, and validation and test PSNR/SSIM of that snapshot.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DRBNError


def read_curve(path: str | os.PathLike) -> dict[str, Any]:
    """The curve file (``curve.json``): its provenance fields and ``points`` sorted by step."""
    path = Path(path)
    if not path.is_file():
        raise DRBNError(f"no curve at {path}; results/long_stage1.py writes one (see results/weights/README.md).")
    curve = json.loads(path.read_text())
    curve["points"] = sorted(curve["points"], key=lambda p: p["step"])
    return curve


def extrapolate(points: list[dict[str, Any]], key: str, target: float, last: int = 4) -> dict[str, Any]:
    """Where ``key`` would reach ``target`` if it kept growing as over the ``last`` points:
    a least-squares line of ``key`` against log10(step) (diminishing returns: each doubling
    of the steps adds the same amount). Returns ``{"slope_per_doubling", "step", "reached"}``;
    ``step`` is None when the fitted line does not rise.

    A rough guide, not a prediction: the points come from one run whose learning rate is
    still decaying, and quality curves flatten faster than a log line at the end.
    """
    points = [p for p in points if p.get(key) is not None][-last:]
    if len(points) < 2:
        raise DRBNError(f"extrapolating {key} needs at least 2 points, got {len(points)}.")
    x = np.log10([p["step"] for p in points])
    y = np.array([p[key] for p in points], dtype=np.float64)
    slope, intercept = np.polyfit(x, y, 1)
    reached = any(p[key] >= target for p in points)
    step = None if slope <= 0 else 10 ** ((target - intercept) / slope)
    return {"key": key, "target": target, "slope_per_doubling": float(slope * math.log10(2)),
            "step": None if step is None else float(step), "reached": reached,
            "fitted_on": [p["step"] for p in points]}
