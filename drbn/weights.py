"""Kit checkpoints and the authors' released weights, one loader per network; introduced in notebooks/00_setup_check.

A kit checkpoint is a plain dict ``{'kind', 'model', 'model_config', 'train_config',
'optimizer', 'step', 'history', ...}``, written atomically and read with
``torch.load(..., weights_only=True)``. The authors' files (flyywh/CVPR-2020-Semi-Low-Light)
are bare state dicts whose parameter names differ from ours; the tables below map one to
one, so loading is strict: every released tensor lands in exactly one of ours.

- :func:`load_stage1` takes a kit stage-1 or stage-2 checkpoint (the frozen stage 1 inside it)
  or the authors' ``model_s1.pt``.
- :func:`load_recomposer` takes a kit stage-2 checkpoint or the authors' ``model_R_s2.pt``.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

from .errors import DRBNError
from .model import DRBN, DRBNConfig
from .recompose import Recomposer, RecomposerConfig

STAGE1 = "drbn-stage1"
STAGE2 = "drbn-stage2"

STAGE1_FILENAME = "model_s1.pt"
RECOMPOSER_FILENAME = "model_R_s2.pt"
ZERO_DCE_FILENAME = "zero_dce_Epoch99.pth"
REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- files
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


def export_weights(checkpoint: str | os.PathLike, path: str | os.PathLike) -> Path:
    """A stage-1 checkpoint's network alone (weights, model config, the training config and
    step it came from; no optimizer, no history): the small file to publish or snapshot.
    It loads wherever weights load (:func:`load_stage1`, ``enhance --weights``)."""
    payload = load_checkpoint(checkpoint, STAGE1)
    return save_checkpoint(path, {key: payload[key] for key in ("kind", "model", "model_config", "train_config", "step")})


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


# ----------------------------------------------------------------------------- the authors' names
STAGE1_FILE = "stage-1 weights (model_s1.pt)"
RECOMPOSER_FILE = "recomposer weights (model_R_s2.pt)"

# authors' name inside one recursion -> our name inside one BandLearningUnit
UNIT_NAMES = {
    "SFENet1": "entry",
    "SFENet2": "entry2",
    "RDBs.0": "encode_full",
    "Down1": "down_to_half",
    "RDBs.1": "encode_half",
    "Down2": "down_to_quarter",
    "RDBs.2": "bottleneck.0",
    "RDBs.3": "bottleneck.1",
    "Up2": "up_to_half",
    "RDBs.4": "decode_half",
    "Up1": "up_to_full",
    "RDBs.5": "decode_full",
    "UPNet4": "head_quarter",
    "UPNet2": "head_half",
    "UPNet": "head_full",
}

# authors' recomposer names -> ours (their UPNet / UPNet2 are our two-conv head)
RECOMPOSER_NAMES = {
    "SFENet1": "entry",
    "SFENet2": "entry2",
    "RDBs.0": "block",
    "GFF": "fuse",
    "UPNet": "head.0",
    "UPNet2": "head.1",
}


def rename_rdb(name: str) -> str:
    """Inside a residual dense block: ``convs.i.conv.0`` -> ``layers.i``, ``LFF`` -> ``fuse``."""
    name = re.sub(r"convs\.(\d+)\.conv\.0\.", r"layers.\1.", name)
    return name.replace("LFF.", "fuse.")


def rename(key: str, table: dict[str, str]) -> str:
    for theirs, ours in table.items():
        if key.startswith(theirs + "."):
            return f"{ours}.{rename_rdb(key[len(theirs) + 1:])}"
    raise KeyError(key)


def rename_stage1(key: str) -> str:
    match = re.fullmatch(r"recur(\d+)\.(.+)", key)
    if not match:
        raise KeyError(key)
    return f"units.{int(match.group(1)) - 1}.{rename(match.group(2), UNIT_NAMES)}"


def rename_recomposer(key: str) -> str:
    return rename(key, RECOMPOSER_NAMES)


def convert_state(state: Any, renamer: Callable[[str], str], source: str, expected: str) -> dict[str, torch.Tensor]:
    """Rename one of the authors' state dicts to ours; a clear error if it is not one."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DRBNError(f"{source} is not a state dict of tensors; pass the authors' {expected}.")
    try:
        return {renamer(k): v for k, v in state.items()}
    except KeyError as exc:
        raise DRBNError(
            f"{source} is not the authors' {expected} (unexpected key {exc.args[0]!r}); "
            "pass the right released file."
        ) from None


# ----------------------------------------------------------------------------- one loader per network
def load_stage1(path: str | os.PathLike) -> DRBN:
    """Stage 1 (:class:`DRBN`) ready for inference (eval mode, channels_last), from this kit's
    stage-1 checkpoint, the frozen stage 1 inside a kit stage-2 checkpoint, or the authors'
    released ``model_s1.pt``."""
    payload = read_weights_file(path)
    if is_kit_checkpoint(payload):
        if payload["kind"] == STAGE2:
            state, config = payload["stage1"], DRBNConfig(**payload["stage1_config"])
        else:
            check_kind(payload, STAGE1, path)
            state, config = payload["model"], DRBNConfig(**payload["model_config"])
    else:
        state = convert_state(payload, rename_stage1, str(path), STAGE1_FILE)
        config = DRBNConfig(recursions=1 + max(int(k.split(".")[1]) for k in state))
    model = DRBN(config)
    load_state_strict(model, state, str(path))
    return model.for_inference()


def load_recomposer(path: str | os.PathLike, weight_mapping: str = "released") -> Recomposer:
    """The stage-2 :class:`Recomposer` in eval mode, from this kit's stage-2 checkpoint (its
    own configuration; ``weight_mapping`` is then ignored) or the authors' ``model_R_s2.pt``
    (built with ``weight_mapping``). The stage 1 inside a kit stage-2 checkpoint comes from
    ``load_stage1(same path)``."""
    payload = read_weights_file(path)
    if is_kit_checkpoint(payload):
        check_kind(payload, STAGE2, path)
        state, config = payload["recomposer"], RecomposerConfig(**payload["recomposer_config"])
    else:
        state = convert_state(payload, rename_recomposer, str(path), RECOMPOSER_FILE)
        config = RecomposerConfig(weight_mapping=weight_mapping)
    model = Recomposer(config)
    load_state_strict(model, state, str(path))
    return model.eval()


# ----------------------------------------------------------------------------- where released files live
def search_folders() -> list[Path]:
    """Where :func:`find_released` looks, in order: the folders of ``$DRBN_RELEASED_DIR`` (one
    folder, or several joined by ``os.pathsep`` like ``PATH``), then the repository's
    ``data/released/``."""
    env = os.environ.get("DRBN_RELEASED_DIR", "")
    return [Path(part).expanduser() for part in env.split(os.pathsep) if part] + [REPO / "data" / "released"]


def find_released(filename: str, subfolder: str | None = None) -> Path | None:
    """Path of a released file (``STAGE1_FILENAME``, ``RECOMPOSER_FILENAME``,
    ``ZERO_DCE_FILENAME``, NIQE's model) in :func:`search_folders`, or None when it is in none
    of them. With ``subfolder``, each folder's ``subfolder/`` is looked in right after it."""
    for folder in search_folders():
        for candidate in (folder / filename, *((folder / subfolder / filename,) if subfolder else ())):
            if candidate.is_file():
                return candidate
    return None
