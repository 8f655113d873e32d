"""bf16 autocast training (the long run's recipe) and the weights-only export of a run."""
import pytest
import torch

from drbn.errors import DRBNError
from drbn.model import DRBN, DRBNConfig
from drbn.train import forward_in, stage1_preset, train_stage1
from drbn.weights import export_weights, load_stage1, read_weights_file

TINY = dict(steps=2, batch_size=1, crop=16, eval_every=100, checkpoint_every=100, max_eval_images=1,
            data="synthetic", model=DRBNConfig(recursions=2))


def test_bf16_forward_returns_float32_bands_close_to_the_fp32_ones():
    torch.manual_seed(0)
    net, low = DRBN(DRBNConfig(recursions=2)).eval(), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        exact, rounded = forward_in("fp32", net, low), forward_in("bf16", net, low)
    assert all(band.dtype == torch.float32 for band in rounded)
    # bfloat16 keeps 8 significant bits: relative error 2^-8 per operation, a few hundred
    # accumulated in a conv chain; bands live in about [-1, 2]
    for a, b in zip(exact, rounded):
        assert (a - b).abs().max() < 0.1
        assert not torch.equal(a, b)  # the autocast really ran in bf16


def test_bf16_training_keeps_weights_and_loss_in_float32(tmp_path):
    result = train_stage1(stage1_preset("smoke", precision="bf16", **TINY), tmp_path, progress=False, device="cpu")
    assert all(p.dtype == torch.float32 for p in result.model.parameters())
    assert all(isinstance(v, float) and -3 <= v <= 0 for v in result.history["loss"])
    assert read_weights_file(result.checkpoint)["train_config"]["precision"] == "bf16"


def test_an_unknown_precision_is_refused_before_any_step(tmp_path):
    with pytest.raises(DRBNError, match="unknown precision 'fp16'; choose one of fp32, bf16"):
        train_stage1(stage1_preset("smoke", precision="fp16", **TINY), tmp_path, progress=False, device="cpu")
    assert not (tmp_path / "stage1.pt").exists()


def test_exported_weights_hold_the_network_alone_and_load_everywhere(tmp_path):
    result = train_stage1(stage1_preset("smoke", **TINY), tmp_path / "run", progress=False, device="cpu")
    path = export_weights(result.checkpoint, tmp_path / "stage1.pt")
    payload = torch.load(path, weights_only=True)
    assert set(payload) == {"kind", "model", "model_config", "train_config", "step"}
    assert payload["step"] == 2
    loaded = load_stage1(path)
    for (name, a), b in zip(result.model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    assert path.stat().st_size < result.checkpoint.stat().st_size / 2  # no optimizer state, no history
