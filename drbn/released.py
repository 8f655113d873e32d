"""Load the authors' released weights (flyywh/CVPR-2020-Semi-Low-Light) into this library.

Their parameter names differ from ours; the tables below map one to one, so loading is
strict: every released tensor lands in exactly one of ours and nothing is left over.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from .checkpoint import load_state_strict, read_weights_file
from .errors import DRBNError
from .model import DRBN, DRBNConfig
from .recompose import Recomposer, RecomposerConfig

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


def convert_state(state, renamer, source: str, expected: str) -> dict[str, torch.Tensor]:
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


def load_stage1(path: str | os.PathLike) -> DRBN:
    """The authors' released stage-1 network (``model_s1.pt``) as a :class:`DRBN`, ready for
    inference (eval mode, channels_last)."""
    state = convert_state(read_weights_file(path), rename_stage1, str(path), STAGE1_FILE)
    recursions = 1 + max(int(k.split(".")[1]) for k in state)
    model = DRBN(DRBNConfig(recursions=recursions))
    load_state_strict(model, state, str(path))
    return model.for_inference()


def load_recomposer(path: str | os.PathLike, weight_mapping: str = "released") -> Recomposer:
    """The authors' released recomposer (``model_R_s2.pt``) as a :class:`Recomposer`, in eval mode."""
    state = convert_state(
        read_weights_file(path), lambda k: rename(k, RECOMPOSER_NAMES), str(path), RECOMPOSER_FILE
    )
    model = Recomposer(RecomposerConfig(weight_mapping=weight_mapping))
    load_state_strict(model, state, str(path))
    return model.eval()


STAGE1_FILENAME = "model_s1.pt"
RECOMPOSER_FILENAME = "model_R_s2.pt"
REPO = Path(__file__).resolve().parents[1]


def search_folders() -> list[Path]:
    """Where "auto" looks: $DRBN_RELEASED_DIR, the kit's data/released/, and a reference
    folder beside the repository (the maintainers' layout)."""
    env = os.environ.get("DRBN_RELEASED_DIR")
    return ([Path(env)] if env else []) + [REPO / "data" / "released", REPO.parent / "shared" / "reference"]


def find_released(filename: str, folder: str | os.PathLike = "auto") -> Path | None:
    """Path of a released weights file (``STAGE1_FILENAME`` or ``RECOMPOSER_FILENAME``), or None.

    ``folder="auto"`` tries :func:`search_folders` in order; any other value is the one folder.
    """
    for candidate in search_folders() if str(folder) == "auto" else [Path(folder)]:
        if (candidate / filename).is_file():
            return candidate / filename
    return None
