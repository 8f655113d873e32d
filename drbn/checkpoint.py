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
from .model import DRBN, DRBNConfig
from .recompose import Recomposer, RecomposerConfig

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


def check_kind(payload: Any, kind: str, path: str | os.PathLike) -> dict[str, Any]:
    """Return ``payload`` if it is one of this kit's checkpoints of the expected ``kind``."""
    found = payload.get("kind") if isinstance(payload, dict) else None
    if found != kind:
        what = f"a {found} checkpoint" if found else "not a checkpoint of this kit"
        raise DRBNError(f"{path} is {what}, expected a {kind} checkpoint; pass the right file.")
    return payload


def load_checkpoint(path: str | os.PathLike, kind: str) -> dict[str, Any]:
    """Load one of this kit's checkpoints and check it is of the expected ``kind``."""
    return check_kind(read_weights_file(path), kind, path)


def is_kit_checkpoint(payload: Any) -> bool:
    return isinstance(payload, dict) and "kind" in payload


def load_state_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """``load_state_dict(strict=True)`` with a one-line message instead of PyTorch's report."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else first[0]
        raise DRBNError(
            f"{source} does not fit this model ({detail[:160]}); it is a checkpoint of a "
            "different model or configuration."
        ) from None


def load_stage1_any(path: str | os.PathLike) -> DRBN:
    """Stage 1 from this kit's stage-1 or stage-2 checkpoint or the authors' ``model_s1.pt``,
    ready for inference (eval mode, channels_last)."""
    payload = read_weights_file(path)
    if not is_kit_checkpoint(payload):
        from .released import load_stage1

        return load_stage1(path)
    return stage1_from_payload(payload, path)


def stage1_from_payload(payload: dict[str, Any], path: str | os.PathLike) -> DRBN:
    """The stage-1 network inside a stage-1 checkpoint, or the frozen one inside a stage-2 one."""
    if payload["kind"] == STAGE2:
        state, config = payload["stage1"], payload["stage1_config"]
    else:
        check_kind(payload, STAGE1, path)
        state, config = payload["model"], payload["model_config"]
    model = DRBN(DRBNConfig(**config))
    load_state_strict(model, state, str(path))
    return model.for_inference()


def load_recomposer_any(path: str | os.PathLike) -> tuple[Recomposer, DRBN | None]:
    """The recomposer from this kit's stage-2 checkpoint (with the stage 1 it was trained on)
    or from the authors' ``model_R_s2.pt`` (stage 1 then comes separately: None)."""
    payload = read_weights_file(path)
    if not is_kit_checkpoint(payload):
        from .released import load_recomposer

        return load_recomposer(path), None
    check_kind(payload, STAGE2, path)
    recomposer = Recomposer(RecomposerConfig(**payload["recomposer_config"]))
    load_state_strict(recomposer, payload["recomposer"], str(path))
    return recomposer.eval(), stage1_from_payload(payload, path)
