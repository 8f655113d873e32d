"""Shared fixtures. ``../shared`` (the authors' weights, reference outputs and real photos)
exists beside the repository on the maintainers' machines and in CI, not in a fresh clone:
tests that need it skip with a reason."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DRBN_SHARED", REPO.parent / "shared"))

torch.set_num_threads(min(2, torch.get_num_threads()))

# drbn.weights.find_released looks in $DRBN_RELEASED_DIR: point it at the reference folder
# (the authors' DRBN weights) and its peers/ folder (Zero-DCE; NIQE's model is found in
# peers/niqe/, a niqe/ folder being looked in too) when they are there (an explicit setting wins).
if (SHARED / "reference").is_dir():
    os.environ.setdefault("DRBN_RELEASED_DIR", os.pathsep.join(
        str(folder) for folder in (SHARED / "reference", SHARED / "reference" / "peers") if folder.is_dir()))


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with the reason it is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found: reference data lives in ../shared beside the repository")
    return path


@pytest.fixture
def reference():
    """The authors' reference outputs (drbn_reference.npz) as a dict of arrays."""
    import numpy as np

    with np.load(shared_path("reference", "drbn_reference.npz")) as data:
        return dict(data)


@pytest.fixture
def released_stage1_path() -> Path:
    return shared_path("reference", "model_s1.pt")


@pytest.fixture
def released_recomposer_path() -> Path:
    return shared_path("reference", "model_R_s2.pt")


@pytest.fixture
def unpaired_dir() -> Path:
    return shared_path("data", "unpaired")


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A kit stage-1 checkpoint of an untrained one-recursion DRBN: the cheapest real model."""
    from drbn.model import DRBN, DRBNConfig
    from drbn.weights import STAGE1, save_checkpoint

    torch.manual_seed(0)
    model = DRBN(DRBNConfig(recursions=1))
    path = tmp_path_factory.mktemp("ckpt") / "stage1.pt"
    save_checkpoint(path, {"kind": STAGE1, "model": model.state_dict(),
                           "model_config": {"recursions": 1}, "step": 0})
    return path
