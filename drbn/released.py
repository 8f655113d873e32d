"""Old home of the released-weights loaders, re-exported from drbn.weights; introduced in notebooks/00_setup_check.

# temporary: removed when every importer has moved
"""
from __future__ import annotations

import os
from pathlib import Path

from . import weights
from .weights import (  # noqa: F401
    RECOMPOSER_FILENAME, REPO, STAGE1_FILENAME, ZERO_DCE_FILENAME, load_recomposer, load_stage1,
    search_folders,
)


def find_released(filename: str, folder: str | os.PathLike = "auto") -> Path | None:
    """The old signature: ``folder="auto"`` is :func:`drbn.weights.find_released`."""
    if str(folder) == "auto":
        return weights.find_released(filename)
    return Path(folder) / filename if (Path(folder) / filename).is_file() else None
