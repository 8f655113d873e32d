"""Ablation variants, budgets and the resumable experiment runner."""
import csv
import json
import math

import numpy as np
import pytest
import torch

from drbn import experiments, metrics
from drbn.baselines import HistogramEqualization
from drbn.errors import DRBNError
from drbn.experiments import (
    BUDGETS, REFERENCE, STAGE1_VARIANTS, STAGE2_VARIANTS, TABLE_COLUMNS, Variant, budget, build,
    inference_ms, median_ms, read_results, run_experiments, stage1_config, stage2_config, variant,
)
from drbn.losses import BandLoss
from drbn.model import DRBN, BandOutputs, DRBNConfig, count_parameters
from drbn.data import Pair
from drbn.train import negated_channels, train_or_reuse_stage2, train_stage1

UNIT = 139_417  # one recursion of the released model
EXPECTED_PARAMETERS = {
    "RBL-v1": UNIT, "RBL-v2": UNIT, "RBL-v3": 4 * UNIT,
    "DRBN T=1": UNIT, "DRBN T=2": 2 * UNIT, "DRBN T=3": 3 * UNIT, "DRBN T=4": 557_668,
}


def test_every_stage1_variant_is_listed_with_its_parameter_count():
    assert [v.name for v in STAGE1_VARIANTS] == list(EXPECTED_PARAMETERS)
    for v in STAGE1_VARIANTS:
        assert count_parameters(build(v)) == EXPECTED_PARAMETERS[v.name], v.name
    assert count_parameters(build(REFERENCE)) == 557_668 == 4 * UNIT


@pytest.mark.parametrize("v", STAGE1_VARIANTS, ids=lambda v: v.name)
def test_each_stage1_variant_takes_a_training_step(v):
    torch.manual_seed(0)
    model = build(v)
    config = stage1_config(v, budget("smoke"))
    assert config.model == v.model and config.loss_weights == v.loss_weights
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    low, high = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    before = [p.detach().clone() for p in model.parameters()]
    loss = BandLoss(config.loss_weights)(model(low), high)
    loss.backward()
    optimizer.step()
    assert math.isfinite(loss.item())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_variants_mean_what_their_names_say():
    assert variant("RBL-v1").loss_weights == (1.0, 0.0, 0.0)  # single-scale
    assert variant("RBL-v2").loss_weights == (1.0, 1.0, 1.0) and variant("RBL-v2").model.recursions == 1
    v3 = variant("RBL-v3").model
    assert (v3.recursions, v3.feature_residuals, v3.recursive_input) == (4, False, True)
    assert REFERENCE.model == DRBNConfig()  # the released stage 1


def test_rbl_v3_differs_from_drbn_only_in_feature_residuals():
    torch.manual_seed(0)
    full = DRBN(DRBNConfig())
    no_features = DRBN(variant("RBL-v3").model)
    no_features.load_state_dict(full.state_dict())
    y = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(full(y).full, no_features(y).full)
        torch.testing.assert_close(full.recursions(y)[0].full, no_features.recursions(y)[0].full)


def test_stage2_variants_set_the_stage2_knobs():
    configs = {v.name: stage2_config(v, budget("cpu")) for v in STAGE2_VARIANTS if v.recompose}
    assert {c.adv_weight for c in configs.values()} == {0.0, 1.0, 2.0}
    assert configs["recomposed"].recomposer.weight_mapping == "released"
    assert configs["recomposed, bounded w"].recomposer.weight_mapping == "bounded"
    assert configs["recomposed, no perceptual"].perceptual_weight == 0.0
    assert configs["recomposed"].perceptual_weight > 0
    assert [v.name for v in STAGE2_VARIANTS if not v.recompose] == ["stage-1 output"]


def test_budgets():
    paper = stage1_config(REFERENCE, BUDGETS["paper"])
    assert (paper.steps, paper.crop, paper.batch_size, paper.lr) == (259_000, 256, 4, 1e-4)
    stage2 = stage2_config(variant("recomposed"), BUDGETS["paper"])
    assert (stage2.steps, stage2.crop, stage2.batch_size, stage2.lr) == (13_800, 128, 2, 1e-4)
    cpu = BUDGETS["cpu"]
    assert stage1_config(REFERENCE, cpu).lr == pytest.approx(1e-4 * cpu.lr_scale)
    assert budget("cpu", seed=3).seed == 3
    with pytest.raises(DRBNError, match="unknown budget"):
        budget("fast")


def test_timing_helpers():
    assert math.isnan(median_ms(lambda: None, 0))
    calls = []
    assert median_ms(lambda: calls.append(1), 3) >= 0 and len(calls) == 4  # one warm-up
    ms = inference_ms(DRBN(DRBNConfig(recursions=1)), repeats=1, size=(16, 24))
    assert 0 < ms < 60_000


def test_bad_variant_definitions_are_clear_errors():
    with pytest.raises(DRBNError, match="stage must be 1 or 2"):
        Variant("x", 3, "")
    with pytest.raises(DRBNError, match="unknown variant"):
        variant("RBL-v9")
    twins = [Variant("a b", 1, ""), Variant("a-b", 1, "")]
    with pytest.raises(DRBNError, match="unique"):
        run_experiments(twins, "smoke", out_dir="unused", baselines=[])


# ----------------------------------------------------------------------------- the runner
SMALL = [variant("RBL-v1"), variant("RBL-v2"), variant("DRBN T=1")]


@pytest.fixture
def counted(monkeypatch):
    """Count the runs the runner starts from scratch, per stage (they still train)."""
    calls = {"stage1": 0, "stage2": 0}

    def stage1(*args, **kwargs):
        calls["stage1"] += kwargs.get("resume") is None
        return train_stage1(*args, **kwargs)

    def stage2(*args, **kwargs):
        calls["stage2"] += 1
        return train_or_reuse_stage2(*args, **kwargs)

    monkeypatch.setattr(experiments, "train_stage1", stage1)
    monkeypatch.setattr(experiments, "train_or_reuse_stage2", stage2)
    return calls


def forbid_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a finished variant was trained again")
    monkeypatch.setattr(experiments, "train_stage1", refuse)
    monkeypatch.setattr(experiments, "train_or_reuse_stage2", refuse)


def test_runner_trains_once_and_resumes_without_retraining(tmp_path, counted, monkeypatch):
    tiny = budget("smoke", crop=16, timing_repeats=1, restarts=0)  # restarts: tested below
    rows = run_experiments(SMALL, tiny, out_dir=tmp_path, progress=False, baselines=[HistogramEqualization()])
    assert counted["stage1"] == 2  # DRBN T=1 is RBL-v2's configuration: trained once
    assert [r["variant"] for r in rows] == ["HE", "RBL-v1", "RBL-v2", "DRBN T=1"]
    assert rows[3]["same_as"] == "RBL-v2" and rows[3][metrics.PSNR] == rows[2][metrics.PSNR]
    for row in rows:
        assert all(c in row for c in TABLE_COLUMNS)
        assert math.isfinite(row[metrics.PSNR]) and 0 < row[metrics.SSIM] <= 1
    assert [r[experiments.PARAMETERS] for r in rows] == [0, UNIT, UNIT, UNIT]
    assert (tmp_path / "RBL-v1" / "stage1.pt").exists() and (tmp_path / "RBL-v1" / "result.json").exists()

    # the table: one row per variant and the labelled columns
    with open(tmp_path / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["variant"] for r in table] == ["HE", "RBL-v1", "RBL-v2", "DRBN T=1"]
    assert set(TABLE_COLUMNS) <= set(table[0])
    markdown = (tmp_path / "results.md").read_text()
    assert "Data: synthetic" in markdown and "Budget: stage 1: 2 steps, 16x16 crops" in markdown
    assert sum(line.startswith("| ") for line in markdown.splitlines()) == 1 + len(rows)
    assert all(c in markdown for c in TABLE_COLUMNS)

    forbid_training(monkeypatch)
    again = run_experiments(SMALL, tiny, out_dir=tmp_path, progress=False, baselines=[HistogramEqualization()])
    assert [r[metrics.PSNR] for r in again] == [r[metrics.PSNR] for r in rows]
    header, read_back = read_results(tmp_path)
    assert "4 of 4 rows were finished before" in header[-1]
    assert [r["variant"] for r in read_back] == [r["variant"] for r in rows]


def test_runner_retrains_when_the_budget_changes(tmp_path, counted):
    tiny = budget("smoke", crop=16, timing_repeats=0, restarts=0)
    run_experiments(SMALL[:1], tiny, out_dir=tmp_path, progress=False, baselines=[])
    run_experiments(SMALL[:1], tiny, out_dir=tmp_path, progress=False, baselines=[])
    assert counted["stage1"] == 1
    longer = run_experiments(SMALL[:1], budget("smoke", crop=16, steps=3, timing_repeats=0, restarts=0),
                             out_dir=tmp_path, progress=False, baselines=[])
    assert counted["stage1"] == 2
    assert json.loads((tmp_path / "RBL-v1" / "result.json").read_text())["key"]["config"]["steps"] == 3
    assert math.isnan(longer[0][experiments.INFERENCE_MS])


@pytest.mark.slow
def test_stage2_variants_share_one_stage1_and_resume(tmp_path, counted, monkeypatch):
    monkeypatch.setattr(experiments, "find_vgg16_weights", lambda *a, **k: None)
    chosen = [variant("stage-1 output"), variant("recomposed"), variant("recomposed, no perceptual")]
    tiny = budget("smoke", crop=16, restarts=0)
    rows = run_experiments(chosen, tiny, out_dir=tmp_path, progress=False, baselines=[])
    assert counted == {"stage1": 1, "stage2": 1}  # DRBN T=4 trained for them; no-perceptual shared
    assert (tmp_path / "DRBN-T-4" / "stage1.pt").exists()
    assert [r["variant"] for r in rows] == [v.name for v in chosen]  # the reference is not a row
    assert rows[0][experiments.PARAMETERS] == 557_668 and rows[1][experiments.PARAMETERS] == 576_829
    assert "no VGG16 weights" in rows[1]["notes"] and rows[2]["same_as"] == "recomposed"
    forbid_training(monkeypatch)
    again = run_experiments(chosen, tiny, out_dir=tmp_path, progress=False, baselines=[])
    assert [r[metrics.SSIM] for r in again] == [r[metrics.SSIM] for r in rows]


# ----------------------------------------------------------------------------- negated channels
class SignedIdentity(torch.nn.Module):
    """A stand-in stage 1 whose output is its input with some channels' signs flipped."""

    def __init__(self, signs):
        super().__init__()
        self.signs = torch.nn.Parameter(torch.tensor(signs, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, y):
        out = y * self.signs
        return BandOutputs(out, out[..., ::2, ::2], out[..., ::4, ::4])


def test_negated_channels_names_the_anti_correlated_ones():
    image = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    pair = Pair("p", image, image)
    assert negated_channels(SignedIdentity([1, 1, 1]), pair) == ""
    assert negated_channels(SignedIdentity([1, -1, -1]), pair) == "GB"
    assert negated_channels(SignedIdentity([-0.5, 1, 1]), pair) == "R"


def test_a_negated_run_is_restarted_with_another_seed(tmp_path, counted, monkeypatch):
    verdicts = iter(["GB", "", ""])  # the first run is negated at its check, the restart is not
    monkeypatch.setattr(experiments, "negated_channels", lambda model, pair: next(verdicts))
    row = run_experiments(SMALL[:1], budget("smoke", crop=16, timing_repeats=0), out_dir=tmp_path,
                          progress=False, baselines=[])[0]
    assert counted["stage1"] == 2
    assert row["seed"] == experiments.SEED_STRIDE and row["negated"] == ""
    assert row["notes"] == "seed 0: G, B negated at step 2, restarted"
    saved = torch.load(tmp_path / "RBL-v1" / "stage1.pt", weights_only=True)
    assert saved["train_config"]["seed"] == experiments.SEED_STRIDE and saved["step"] == 2

    # interrupted before it was scored: the restarted run is continued, not trained again
    (tmp_path / "RBL-v1" / "result.json").unlink()
    monkeypatch.setattr(experiments, "negated_channels", lambda model, pair: "")
    again = run_experiments(SMALL[:1], budget("smoke", crop=16, timing_repeats=0), out_dir=tmp_path,
                            progress=False, baselines=[])[0]
    assert counted["stage1"] == 2
    assert again["seed"] == experiments.SEED_STRIDE and again["notes"] == row["notes"]


def test_without_restarts_a_negated_run_is_kept_and_flagged(tmp_path, counted, monkeypatch):
    monkeypatch.setattr(experiments, "negated_channels", lambda model, pair: "B")
    row = run_experiments(SMALL[:1], budget("smoke", crop=16, timing_repeats=0, restarts=0), out_dir=tmp_path,
                          progress=False, baselines=[])[0]
    assert counted["stage1"] == 1 and row["seed"] == 0
    assert row["negated"] == "B" and "B negated" in row["notes"]
    assert "B negated" in (tmp_path / "results.md").read_text()
