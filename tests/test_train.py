"""Training loops: exact resume, checkpoints, divergence, presets, stage 2 over a frozen stage 1."""
import math

import pytest
import torch

from drbn.weights import STAGE1, load_checkpoint, load_recomposer, load_stage1, save_checkpoint
from drbn.errors import DRBNError
from drbn.model import DRBN, DRBNConfig
from drbn.train import (
    learning_rate, stage1_preset, stage2_preset, train_or_reuse_stage1, train_stage1, train_stage2,
)

TINY = DRBNConfig(recursions=1)


def tiny_stage1(**overrides):
    values = dict(steps=4, batch_size=1, crop=16, eval_every=100, checkpoint_every=100,
                  max_eval_images=1, model=TINY)
    values.update(overrides)
    return stage1_preset("smoke", **values)


def tiny_stage2(**overrides):
    values = dict(steps=4, crop=16, eval_every=100, checkpoint_every=100, max_eval_images=1)
    values.update(overrides)
    return stage2_preset("smoke", **values)


def assert_same_weights(a, b):
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


def test_learning_rate_is_halved_after_two_thirds():
    assert learning_rate(0, 1e-4, 300, 2 / 3) == 1e-4
    assert learning_rate(199, 1e-4, 300, 2 / 3) == 1e-4
    assert learning_rate(200, 1e-4, 300, 2 / 3) == 5e-5


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(DRBNError, match="unknown preset"):
        stage1_preset("fast")


def test_paper_preset_is_the_released_schedule():
    paper = stage1_preset("paper")
    assert (paper.crop, paper.batch_size, paper.lr) == (256, 4, 1e-4)
    assert paper.model == DRBNConfig()
    stage2 = stage2_preset("paper")
    assert (stage2.crop, stage2.batch_size, stage2.lr, stage2.lr_discriminator, stage2.adv_weight) == (
        128, 2, 1e-4, 1e-6, 2.0)


def test_resume_continues_the_same_run(tmp_path):
    config = tiny_stage1(steps=4)
    straight = train_stage1(config, tmp_path / "straight", progress=False)
    half = train_stage1(config, tmp_path / "split", progress=False, stop_at=2)
    assert half.history["step"] == [1, 2]
    resumed = train_stage1(config, tmp_path / "split", resume=half.checkpoint, progress=False)
    assert resumed.history["step"] == [1, 2, 3, 4]
    assert resumed.history["loss"] == straight.history["loss"]
    assert_same_weights(straight.model, resumed.model)


def test_checkpoint_is_plain_and_loads_with_weights_only(tmp_path):
    result = train_stage1(tiny_stage1(steps=2), tmp_path, progress=False)
    payload = torch.load(result.checkpoint, weights_only=True)
    assert payload["kind"] == STAGE1 and payload["step"] == 2
    assert set(payload) >= {"model", "model_config", "train_config", "optimizer", "history"}
    assert all(math.isfinite(v) for v in payload["history"]["loss"])
    model = load_stage1(result.checkpoint)
    assert_same_weights(model, result.model)


def test_training_reduces_the_loss(tmp_path):
    result = train_stage1(tiny_stage1(steps=30, crop=32, batch_size=2, lr=1e-3), tmp_path, progress=False)
    losses = result.history["loss"]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5


def test_reuse_returns_a_finished_run_without_training(tmp_path, monkeypatch):
    config = tiny_stage1(steps=2)
    first = train_or_reuse_stage1(config, tmp_path, progress=False)
    calls = []
    monkeypatch.setattr("drbn.train.datasets.sample_pair_batch", lambda *a: calls.append(a))
    again = train_or_reuse_stage1(config, tmp_path, progress=False)
    assert calls == [] and again.history["step"] == first.history["step"]
    assert_same_weights(first.model, again.model)


def test_divergence_stops_with_a_clear_message_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    config = tiny_stage1(steps=4, checkpoint_every=2)
    real_loss = __import__("drbn.losses", fromlist=["BandLoss"]).BandLoss.forward
    state = {"calls": 0}

    def exploding(self, outputs, target):
        state["calls"] += 1
        loss = real_loss(self, outputs, target)
        return loss * float("nan") if state["calls"] == 3 else loss

    monkeypatch.setattr("drbn.losses.BandLoss.forward", exploding)
    with pytest.raises(DRBNError, match="diverged at step 2.*stage1.pt"):
        train_stage1(config, tmp_path, progress=False)
    assert load_checkpoint(tmp_path / "stage1.pt", STAGE1)["step"] == 2


def test_resume_rejects_the_wrong_checkpoint(tmp_path):
    bogus = save_checkpoint(tmp_path / "other.pt", {"kind": "drbn-stage2"})
    with pytest.raises(DRBNError, match="expected a drbn-stage1 checkpoint"):
        train_stage1(tiny_stage1(), tmp_path, resume=bogus, progress=False)


def test_stage2_keeps_stage1_frozen_and_records_missing_vgg(tmp_path, monkeypatch):
    monkeypatch.setenv("DRBN_VGG16_WEIGHTS", str(tmp_path / "absent.pth"))
    monkeypatch.setattr("torch.hub.get_dir", lambda: str(tmp_path / "hub"))
    torch.manual_seed(0)
    stage1 = DRBN(TINY)
    before = {k: v.clone() for k, v in stage1.state_dict().items()}
    result = train_stage2(tiny_stage2(steps=3), stage1, tmp_path / "s2", progress=False)
    for key, value in stage1.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert result.config.perceptual_weight == 0.0
    assert any("VGG16" in note for note in result.notes)
    assert not hasattr(result.config, "notes")  # run state lives in the result and checkpoint
    payload = torch.load(result.checkpoint, weights_only=True)
    assert payload["notes"] == result.notes
    assert payload["train_config"]["perceptual_weight"] == 0.0
    assert payload["requested_config"]["perceptual_weight"] == 1.0
    assert len(result.history["loss_d"]) == 3 and all(math.isfinite(v) for v in result.history["loss"])
    recomposer, frozen = load_recomposer(result.checkpoint), load_stage1(result.checkpoint)
    assert_same_weights(frozen, stage1)
    assert_same_weights(recomposer, result.model)


def test_stage2_resume_continues_the_same_run(tmp_path):
    torch.manual_seed(0)
    stage1 = DRBN(TINY)
    config = tiny_stage2(steps=4, perceptual_weight=0.0)
    straight = train_stage2(config, stage1, tmp_path / "a", progress=False)
    train_stage2(config, stage1, tmp_path / "b", progress=False, stop_at=2)
    resumed = train_stage2(config, stage1, tmp_path / "b", resume=tmp_path / "b" / "stage2.pt", progress=False)
    assert resumed.history["loss"] == straight.history["loss"]
    assert_same_weights(straight.model, resumed.model)


def test_stage2_with_the_perceptual_term(tmp_path, monkeypatch):
    import torchvision

    torch.manual_seed(0)
    weights = tmp_path / "vgg16.pth"
    torch.save({k: v for k, v in torchvision.models.vgg16().state_dict().items() if k.startswith("features.")}, weights)
    result = train_stage2(tiny_stage2(steps=2, vgg_weights=str(weights)), DRBN(TINY), tmp_path / "s2", progress=False)
    assert result.config.perceptual_weight == 1.0 and not result.notes
    assert all(v > 0 for v in result.history["loss_perceptual"])


def test_stage2_bad_inputs_are_clear_errors(tmp_path):
    stage1 = DRBN(TINY)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DRBNError, match="holds no images"):
        train_stage2(tiny_stage2(unpaired=str(tmp_path / "empty")), stage1, tmp_path / "a", progress=False)
    with pytest.raises(DRBNError, match="not found"):
        train_stage2(tiny_stage2(high_quality=str(tmp_path / "missing")), stage1, tmp_path / "b", progress=False)
    with pytest.raises(DRBNError, match="smaller|crop"):
        train_stage2(tiny_stage2(crop=4096), stage1, tmp_path / "c", progress=False)


def test_learning_rate_schedules():
    from drbn.train import learning_rate

    # released: constant, halved after two thirds
    assert learning_rate(0, 1e-4, 300, 2 / 3) == 1e-4
    assert learning_rate(199, 1e-4, 300, 2 / 3) == 1e-4 and learning_rate(200, 1e-4, 300, 2 / 3) == 5e-5
    # cosine with a 10 % linear warm-up: rises to the peak, then falls to 0 at the end
    lrs = [learning_rate(s, 3e-4, 100, 2 / 3, "cosine", 0.1) for s in range(100)]
    assert lrs[0] == pytest.approx(3e-5) and lrs[9] == pytest.approx(3e-4) and max(lrs) == pytest.approx(3e-4)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:])) and lrs[-1] < 1e-6
    with pytest.raises(DRBNError, match="schedule"):
        learning_rate(0, 1e-4, 10, 2 / 3, "linear")


def test_zero_band_heads_start_at_zero_and_still_learn():
    """x̂^T starts at 0 in every band; the heads' weights get a gradient at once and, within
    four steps, every layer does too, also without the recursive input and feature residuals
    (RBL-v3), where later recursions see only the earlier ones' estimates."""
    from drbn.losses import BandLoss
    from drbn.model import zero_band_heads

    low, high = torch.rand(2, 3, 32, 32) * 0.2, torch.rand(2, 3, 32, 32)
    for config in (TINY, DRBNConfig(recursions=3, width=8, growth=4, feature_residuals=False, recursive_input=False)):
        torch.manual_seed(0)
        model = zero_band_heads(DRBN(config))
        assert all(torch.count_nonzero(band) == 0 for band in model(low))
        optimizer, reached = torch.optim.Adam(model.parameters(), lr=1e-3), set()
        for step in range(4):  # a narrow layer can be dead (ReLU) at one step: any of four counts
            optimizer.zero_grad()
            BandLoss()(model(low), high).backward()
            if step == 0:
                assert torch.count_nonzero(model.units[-1].head_full[-1].weight.grad) > 0
            reached |= {name for name, p in model.named_parameters() if torch.count_nonzero(p.grad) > 0}
            optimizer.step()
        assert reached == {name for name, _ in model.named_parameters()}


def test_head_init_is_applied_by_training_and_checked(tmp_path):
    from drbn.experiments import ablation_preset

    assert all(ablation_preset(f"ladder-{k}x").stage1["head_init"] == "zero" for k in (1, 4, 16))
    result = train_stage1(tiny_stage1(steps=1, lr=0.0, head_init="zero"), tmp_path, progress=False)
    assert torch.count_nonzero(result.model.units[-1].head_full[-1].weight) == 0
    with pytest.raises(DRBNError, match="head_init"):
        train_stage1(tiny_stage1(head_init="ones"), tmp_path / "bad", progress=False)
