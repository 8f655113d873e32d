"""Zero-DCE against its authors' released weights and the output of their own code."""
import numpy as np
import pytest
import torch

from conftest import shared_path
from drbn.weights import save_checkpoint
from drbn.errors import DRBNError
from drbn.model import count_parameters
from drbn.zero_dce import ZeroDCE, enhance_zero_dce, load_zero_dce

TOLERANCE = 1e-4  # a faithful float32 implementation agrees to about 1e-6


@pytest.fixture
def weights_path():
    return shared_path("reference", "peers", "zero_dce_Epoch99.pth")


@pytest.fixture
def peer_reference():
    with np.load(shared_path("reference", "peers", "zero_dce_reference.npz")) as data:
        return dict(data)


def test_parameter_count_is_the_papers():
    assert count_parameters(ZeroDCE()) == 79_416


def test_matches_the_authors_output(weights_path, peer_reference):
    model = load_zero_dce(weights_path)
    assert not model.training
    # the authors' test script: np.asarray(img) / 255.0 -> float32 -> 1 x 3 x H x W
    low = torch.from_numpy(peer_reference["low"] / 255.0).float().permute(2, 0, 1)[None]
    with torch.no_grad():
        enhanced, curves = model(low, return_curves=True)
    expected = peer_reference["enhanced"]
    assert enhanced.shape[1:] == expected.shape
    assert float(np.abs(enhanced[0].numpy() - expected).max()) <= TOLERANCE
    assert len(curves) == 8 and all(c.shape == low.shape for c in curves)
    assert all(float(c.abs().max()) <= 1.0 for c in curves)  # tanh: α ∈ [−1, 1]


def test_image_api_matches_the_tensor_path(weights_path, peer_reference):
    model = load_zero_dce(weights_path)
    out = enhance_zero_dce(model, peer_reference["low"])  # uint8 accepted
    assert out.shape == peer_reference["low"].shape and out.dtype == np.float32
    assert float(np.abs(out.transpose(2, 0, 1) - peer_reference["enhanced"]).max()) <= TOLERANCE
    odd = enhance_zero_dce(model, peer_reference["low"][:37, :53] / 255.0)  # no size multiple needed
    assert odd.shape == (37, 53, 3)
    assert odd.min() >= 0.0 and odd.max() <= 1.0


def test_curve_is_equation_three():
    """With every curve map at r = −α the output is eq. (2) applied eight times."""
    model = ZeroDCE()
    for p in model.parameters():
        torch.nn.init.zeros_(p)
    alpha = 0.5
    torch.nn.init.constant_(model.e_conv7.bias, float(np.arctanh(-alpha)))
    x = torch.rand(1, 3, 5, 7)
    expected = x.clone()
    for _ in range(8):
        expected = expected + alpha * expected * (1 - expected)
    torch.testing.assert_close(model(x), expected)


def test_bad_inputs_are_one_line_errors():
    model = ZeroDCE().eval()
    with pytest.raises(DRBNError, match="H x W x 3"):
        enhance_zero_dce(model, np.zeros((4, 4)))
    bad = np.zeros((4, 4, 3), np.float32)
    bad[0, 0, 0] = np.nan
    with pytest.raises(DRBNError, match="NaN"):
        enhance_zero_dce(model, bad)


def test_wrong_files_are_one_line_errors(tmp_path):
    cases = {}
    cases["missing"] = tmp_path / "nope.pth"
    cases["folder"] = tmp_path
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    cases["junk"] = junk
    wrong_keys = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3, 3, 3, 3)}, wrong_keys)
    cases["wrong keys"] = wrong_keys
    short = tmp_path / "short.pth"
    state = ZeroDCE().state_dict()
    state.pop("e_conv7.bias")
    torch.save(state, short)
    cases["missing key"] = short
    kit = save_checkpoint(tmp_path / "kit.pt", {"kind": "drbn-stage1", "model": {}})
    cases["kit checkpoint"] = kit
    not_tensors = tmp_path / "list.pth"
    torch.save([1, 2, 3], not_tensors)
    cases["not a state dict"] = not_tensors
    for what, path in cases.items():
        with pytest.raises(DRBNError) as info:
            load_zero_dce(path)
        message = str(info.value)
        assert "\n" not in message and str(path) in message, what


def test_loads_a_saved_network_strictly(tmp_path):
    model = ZeroDCE()
    torch.save(model.state_dict(), tmp_path / "mine.pth")
    loaded = load_zero_dce(tmp_path / "mine.pth")
    x = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(loaded(x), model(x))


def test_finds_the_released_file_by_name(weights_path, tmp_path, monkeypatch):
    import shutil

    from drbn.weights import ZERO_DCE_FILENAME, find_released

    monkeypatch.setenv("DRBN_RELEASED_DIR", str(tmp_path))
    if find_released(ZERO_DCE_FILENAME) is None:  # unless data/released/ of this checkout has it
        with pytest.raises(DRBNError, match="fetch-weights"):
            load_zero_dce()
    shutil.copyfile(weights_path, tmp_path / ZERO_DCE_FILENAME)
    assert count_parameters(load_zero_dce()) == 79_416


def test_command_line_enhances_and_scores_with_the_peer(weights_path, peer_reference, tmp_path, capsys):
    """``enhance --method zero-dce`` writes what the network computes; ``evaluate --method
    zero-dce`` scores it; DRBN-only options are refused in one line."""
    from drbn.cli import main
    from drbn.images import read_image, write_image

    low = peer_reference["low"][:64, :96]
    write_image(tmp_path / "in" / "dark.png", low)
    assert main(["enhance", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--method", "zero-dce",
                 "--weights", str(weights_path)]) == 0
    expected = enhance_zero_dce(load_zero_dce(weights_path), low.astype(np.float32) / 255)
    written = read_image(tmp_path / "out" / "dark.png")
    assert np.abs(written - np.clip(expected, 0, 1)).max() <= 0.5 / 255 + 1e-6

    lol = tmp_path / "LOL"
    for split in ("our485", "eval15"):
        write_image(lol / split / "low" / "1.png", low)
        write_image(lol / split / "high" / "1.png", peer_reference["low"][64:128, :96])
    assert main(["evaluate", "--method", "zero-dce", "--weights", str(weights_path), "--data", str(lol),
                 "--csv", str(tmp_path / "eval.csv")]) == 0
    assert "method zero-dce" in capsys.readouterr().out
    assert main(["enhance", str(tmp_path / "in"), "-o", str(tmp_path / "out2"), "--method", "zero-dce",
                 "--save-bands"]) == 2
    assert "--save-bands" in capsys.readouterr().err
