"""Conformance with the authors' released weights and the outputs of their own code."""
import numpy as np
import pytest
import torch

from drbn.errors import DRBNError
from drbn.recompose import decompose
from drbn.released import load_recomposer, load_stage1

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
