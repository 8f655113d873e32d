"""Checkpoints: plain dicts of tensors and containers, written atomically.

A checkpoint is ``{'kind', 'model', 'model_config', 'train_config', 'optimizer', 'step',
'history', ...}`` and loads with ``torch.load(..., weights_only=True)``.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from .errors import DRBNError

STAGE1 = "drbn-stage1"
STAGE2 = "drbn-stage2"


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` via a temporary file and a rename, so a crash mid-write
    never leaves a truncated checkpoint behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_weights_file(path: str | os.PathLike) -> Any:
    """``torch.load`` with ``weights_only=True`` and a clear message for each failure."""
    path = Path(path)
    if not path.exists():
        raise DRBNError(f"weights file not found: {path}; check the path (see README: released weights).")
    if path.is_dir():
        raise DRBNError(f"{path} is a folder, not a weights file; pass the .pt file inside it.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a non-checkpoint file
        raise DRBNError(
            f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}); "
            "pass a .pt file written by this kit or the authors' released weights."
        ) from None


def load_checkpoint(path: str | os.PathLike, kind: str) -> dict[str, Any]:
    """Load one of this kit's checkpoints and check it is of the expected ``kind``."""
    payload = read_weights_file(path)
    found = payload.get("kind") if isinstance(payload, dict) else None
    if found != kind:
        what = found or "not a checkpoint of this kit"
        raise DRBNError(f"{path} is {what!s}, expected a {kind} checkpoint; pass the right file.")
    return payload
