"""Device choice: "auto" follows what PyTorch sees, a wrong name is a clear error, and
training on an explicitly named device takes the same steps as the default."""
import pytest
import torch

from drbn.cli import main
from drbn.device import pick_device
from drbn.errors import DRBNError
from drbn.train import stage1_preset, train_stage1

NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")


def test_auto_follows_what_pytorch_sees():
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(torch.device("cpu")) == torch.device("cpu")


def test_unknown_device_is_a_clear_error():
    with pytest.raises(DRBNError, match="unknown device 'gpu0'"):
        pick_device("gpu0")


@NO_GPU
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(DRBNError, match="sees no CUDA GPU"):
        pick_device("cuda")


@NO_GPU
def test_cli_reports_a_missing_gpu_in_one_line(tmp_path, capsys):
    assert main(["train-stage1", "--preset", "smoke", "--out", str(tmp_path), "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("drbn: error: device 'cuda'") and err.count("\n") == 1


def test_training_on_a_named_device_matches_auto(tmp_path, monkeypatch):
    # on a GPU, cuDNN's default backward convolutions are not deterministic: ask for ones that are
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    # and bilinear upsampling's backward sums with atomics on CUDA: the weights then agree to rounding
    tolerance = 1e-6 if torch.cuda.is_available() else 0.0
    config = stage1_preset("smoke", steps=2, crop=16, batch_size=1, eval_every=2, checkpoint_every=2)
    default = train_stage1(config, tmp_path / "auto", progress=False)
    named = train_stage1(config, tmp_path / "named", progress=False, device=pick_device("auto"))
    assert default.history["loss"] == named.history["loss"]
    for a, b in zip(default.model.parameters(), named.model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=tolerance)
