"""drbn.weights: conformance with the authors' released weights and their code's outputs, one
loader per network for both formats, and where released files are looked for."""
import os

import numpy as np
import pytest
import torch

from drbn.errors import DRBNError
from drbn.recompose import decompose
from drbn import weights
from drbn.model import DRBN, DRBNConfig
from drbn.recompose import Recomposer, RecomposerConfig
from drbn.weights import STAGE1, STAGE2, find_released, load_recomposer, load_stage1, save_checkpoint

TOLERANCE = 1e-4  # a faithful float32 implementation agrees to about 1e-5


def low_tensor(reference):
    return torch.from_numpy(reference["low"]).permute(2, 0, 1)[None].float() / 255


def max_error(tensor, expected):
    return float(np.abs(tensor[0].numpy() - expected).max())


def test_stage1_matches_the_authors_outputs(reference, released_stage1_path):
    model = load_stage1(released_stage1_path)
    assert not model.training
    with torch.no_grad():
        out = model(low_tensor(reference))
    assert max_error(out.full, reference["x1"]) <= TOLERANCE
    assert max_error(out.half, reference["x2"]) <= TOLERANCE
    assert max_error(out.quarter, reference["x4"]) <= TOLERANCE


def test_bands_and_recomposer_match_the_authors_outputs(
    reference, released_stage1_path, released_recomposer_path
):
    stage1 = load_stage1(released_stage1_path)
    recomposer = load_recomposer(released_recomposer_path)
    y = low_tensor(reference)
    with torch.no_grad():
        bands = decompose(stage1(y))
        result = recomposer(y, bands)
    for name, band in zip(("b1", "b2", "b3"), bands):
        assert max_error(band, reference[name]) <= TOLERANCE, name
    for name in ("recomposed", "w1", "w2", "w3"):
        assert max_error(getattr(result, "image" if name == "recomposed" else name), reference[name]) <= TOLERANCE, name


def test_wrong_released_file_is_a_clear_error(released_stage1_path, released_recomposer_path):
    with pytest.raises(DRBNError, match="not the authors' recomposer"):
        load_recomposer(released_stage1_path)
    with pytest.raises(DRBNError, match="not the authors' stage-1"):
        load_stage1(released_recomposer_path)


def test_missing_and_non_checkpoint_files(tmp_path):
    with pytest.raises(DRBNError, match="not found"):
        load_stage1(tmp_path / "nope.pt")
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    with pytest.raises(DRBNError, match="not a readable PyTorch checkpoint"):
        load_stage1(junk)
    with pytest.raises(DRBNError, match="folder"):
        load_stage1(tmp_path)


def test_one_loader_per_network_takes_kit_checkpoints_too(tmp_path):
    torch.manual_seed(0)
    stage1, recomposer = DRBN(DRBNConfig(recursions=2)), Recomposer(RecomposerConfig(weight_mapping="bounded"))
    s1 = save_checkpoint(tmp_path / "stage1.pt", {"kind": STAGE1, "model": stage1.state_dict(),
                                                  "model_config": {"recursions": 2}})
    s2 = save_checkpoint(tmp_path / "stage2.pt", {
        "kind": STAGE2, "recomposer": recomposer.state_dict(),
        "recomposer_config": {"weight_mapping": "bounded"},
        "stage1": stage1.state_dict(), "stage1_config": {"recursions": 2}})
    for path in (s1, s2):  # stage 1 from either kind of kit checkpoint
        loaded = load_stage1(path)
        assert not loaded.training and loaded.config.recursions == 2
        for key, value in stage1.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value), key
    loaded = load_recomposer(s2)
    assert loaded.config.weight_mapping == "bounded" and not loaded.training
    with pytest.raises(DRBNError, match="expected a drbn-stage2 checkpoint"):
        load_recomposer(s1)


def test_find_released_looks_in_the_environment_folder_then_the_repository(tmp_path, monkeypatch):
    monkeypatch.setenv("DRBN_RELEASED_DIR", str(tmp_path))
    assert weights.search_folders() == [tmp_path, weights.REPO / "data" / "released"]
    assert all(weights.REPO in p.parents or p == tmp_path for p in weights.search_folders())
    (tmp_path / weights.STAGE1_FILENAME).write_bytes(b"")
    assert find_released(weights.STAGE1_FILENAME) == tmp_path / weights.STAGE1_FILENAME
    monkeypatch.delenv("DRBN_RELEASED_DIR")
    assert weights.search_folders() == [weights.REPO / "data" / "released"]
    monkeypatch.setenv("DRBN_RELEASED_DIR", os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")]))
    assert weights.search_folders()[:2] == [tmp_path / "a", tmp_path / "b"]
    assert find_released("no_such_file.pt") is None
