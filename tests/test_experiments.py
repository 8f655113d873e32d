"""Ablation variants, presets and the runner: shared runs, resuming, restarts, the table, shards."""
import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from drbn import data as datasets
from drbn import experiments
from drbn.baselines import HistogramEqualization, Network
from drbn.errors import DRBNError
from drbn.experiments import (
    ABLATION_PRESETS, REFERENCE, STAGE1_VARIANTS, STAGE2_VARIANTS, Variant, ablation_preset, build, ms_per_image,
    read_results, run_experiments, stage1_config, stage2_config, variant,
)
from drbn.images import Pair, write_image
from drbn.losses import BandLoss
from drbn.model import DRBN, BandOutputs, DRBNConfig, count_parameters
from drbn.results import TABLE_COLUMNS, usable_results
from drbn.train import STAGE1_PRESETS, STAGE2_PRESETS, negated_channels, train_stage1, train_stage2

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
    config = stage1_config(v, "smoke-ablation")
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
    v3 = variant("RBL-v3").model  # the paper's RBL-v3: no feature bypass AND no recursive input
    assert (v3.recursions, v3.feature_residuals, v3.recursive_input) == (4, False, False)
    assert "feature bypass" in variant("RBL-v3").description and "recursive input" in variant("RBL-v3").description
    assert REFERENCE.model == DRBNConfig()  # the released stage 1


def test_rbl_v3_differs_from_drbn_after_the_first_recursion():
    torch.manual_seed(0)
    full = DRBN(DRBNConfig())
    v3 = DRBN(variant("RBL-v3").model)
    v3.load_state_dict(full.state_dict())
    y = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(full(y).full, v3(y).full)
        torch.testing.assert_close(full.recursions(y)[0].full, v3.recursions(y)[0].full)


def test_stage2_variants_set_the_stage2_knobs():
    configs = {v.name: stage2_config(v, "cpu-ablation") for v in STAGE2_VARIANTS if v.recompose}
    assert {c.adv_weight for c in configs.values()} == {0.0, 1.0, 2.0}
    assert configs["recomposed"].recomposer.weight_mapping == "released"
    assert configs["recomposed, bounded w"].recomposer.weight_mapping == "bounded"
    assert configs["recomposed, no perceptual"].perceptual_weight == 0.0 < configs["recomposed"].perceptual_weight
    assert [v.name for v in STAGE2_VARIANTS if not v.recompose] == ["stage-1 output"]


def test_ablation_presets_are_derived_from_the_training_presets_by_name():
    assert set(ABLATION_PRESETS) == {"paper", "cpu-ablation", "smoke-ablation", "ladder-1x", "ladder-4x", "ladder-16x"}
    paper = stage1_config(REFERENCE, "paper")
    assert (paper.steps, paper.crop, paper.batch_size, paper.lr) == (259_000, 256, 4, 1e-4)
    stage2 = stage2_config(variant("recomposed"), "paper")
    assert (stage2.steps, stage2.crop, stage2.batch_size, stage2.lr) == (13_800, 128, 2, 1e-4)
    cpu, s2 = stage1_config(REFERENCE, "cpu-ablation", seed=3), stage2_config(variant("recomposed"), "cpu-ablation")
    assert (cpu.steps, cpu.crop, cpu.seed, cpu.batch_size) == (500, 64, 3, STAGE1_PRESETS["cpu"].batch_size)
    # the released schedule at 5x the released lr, whatever recipe the `cpu` training preset uses
    assert (cpu.lr, cpu.schedule, cpu.warmup) == (pytest.approx(5e-4), "halve", 0.0) and (s2.steps, s2.crop) == (150, 64)
    # the ladder: 1x, 4x, 16x the cpu-ablation steps with the cpu recipe's warm-up schedule in bf16
    for k in (1, 4, 16):
        rung = stage1_config(REFERENCE, f"ladder-{k}x")
        assert (rung.steps, rung.crop, rung.precision) == (500 * k, 64, "bf16")
        assert (rung.lr, rung.schedule, rung.warmup) == (STAGE1_PRESETS["cpu"].lr, "cosine", STAGE1_PRESETS["cpu"].warmup)
    assert s2.lr_discriminator == pytest.approx(5 * STAGE2_PRESETS["cpu"].lr_discriminator)
    assert STAGE1_PRESETS["cpu"].steps != cpu.steps  # "cpu" keeps one meaning: drbn.train's
    assert ablation_preset("smoke-ablation", restarts=0).restarts == 0
    with pytest.raises(DRBNError, match="unknown ablation preset 'cpu'"):
        ablation_preset("cpu")


def test_timing_uses_a_600x400_image():
    shapes = []
    ms = ms_per_image(lambda image: shapes.append(image.shape), 2)
    assert ms is not None and ms >= 0 and shapes[-1] == (400, 600, 3) and len(shapes) >= 3  # warm-up + 2
    assert ms_per_image(lambda image: None, 0) is None


def test_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(DRBNError, match="stage must be 1 or 2"):
        Variant("x", 3, "")
    with pytest.raises(DRBNError, match="unknown variant"):
        variant("RBL-v9")
    with pytest.raises(DRBNError, match="unique"):
        run_experiments([variant("RBL-v1"), variant("RBL-v1")], "smoke-ablation", out_dir=tmp_path, baselines=[])
    with pytest.raises(DRBNError, match="unique"):
        run_experiments([variant("RBL-v1")], "smoke-ablation", out_dir=tmp_path, seeds=(0, 0), baselines=[])


# ----------------------------------------------------------------------------- the runner
SMALL = [variant("RBL-v1"), variant("RBL-v2"), variant("DRBN T=1")]
TINY = ablation_preset("smoke-ablation", timing_runs=0, restarts=0)  # restarts: tested below


@pytest.fixture(scope="module")
def tiny_lol(tmp_path_factory):
    """A LOL-v1 folder of 64x96 crops of the synthetic set: 3 training pairs, 1 test pair."""
    root = tmp_path_factory.mktemp("lol")
    layout = (("train", "our485", 3), ("test", "eval15", 1))
    for split, folder, n in layout:
        low, high = f"{folder}/low", f"{folder}/high"
        for i, pair in enumerate(datasets.load_pairs("synthetic", split, limit=n)):
            write_image(root / low / f"{i + 1}.png", pair.low[:64, :96])
            write_image(root / high / f"{i + 1}.png", pair.high[:64, :96])
    return root


@pytest.fixture
def counted(monkeypatch):
    """Count the runs the runner starts from scratch, per stage (they still train)."""
    calls = {"stage1": 0, "stage2": 0}

    def stage1(*args, **kwargs):
        calls["stage1"] += kwargs.get("resume") is None
        return train_stage1(*args, **kwargs)

    def stage2(*args, **kwargs):
        calls["stage2"] += kwargs.get("resume") is None
        return train_stage2(*args, **kwargs)

    monkeypatch.setattr(experiments, "train_stage1", stage1)
    monkeypatch.setattr(experiments, "train_stage2", stage2)
    return calls


def forbid_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a finished run was trained again")
    monkeypatch.setattr(experiments, "train_stage1", refuse)
    monkeypatch.setattr(experiments, "train_stage2", refuse)


def test_runner_shares_equal_trainings_and_resumes_without_retraining(tmp_path, tiny_lol, counted, monkeypatch):
    rows = run_experiments(SMALL, TINY, tiny_lol, tmp_path, progress=False, baselines=[HistogramEqualization()])
    assert counted["stage1"] == 2  # DRBN T=1 is RBL-v2's training configuration: one run, one folder
    names = ["HE", "RBL-v1", "RBL-v2", "DRBN T=1", "DRBN, as reported in the paper"]
    assert [r["variant"] for r in rows] == names
    he, v1, v2, t1, paper = rows
    assert t1["same_as"] == "RBL-v2" and t1["runs"] == v2["runs"] != v1["runs"] and t1["psnr"] == v2["psnr"]
    assert len(list((tmp_path / "runs").glob("stage1-*"))) == 2
    for row in rows[:4]:
        assert math.isfinite(row["psnr"]) and 0 < row["ssim"] <= 1 and math.isfinite(row["psnr_gtmean"])
    assert [r["parameters"] for r in rows[:4]] == [0, UNIT, UNIT, UNIT]
    assert (v1["seeds"], he["seeds"]) == (1, None)

    # the cited row: the paper's numbers, its split said plainly, nothing else filled
    assert (paper["psnr"], paper["ssim"], paper["group"]) == (20.13, 0.830, "cited")
    assert "LOL-v2-real's 100 test images (690-789)" in paper["notes"]
    assert all(paper.get(c) in (None, "") for c in ("psnr_shave10", "psnr_gtmean", "parameters", "inference_ms"))

    # the table: CSV keyed by short names, markdown labelled
    with open(tmp_path / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["variant"] for r in table] == names and set(TABLE_COLUMNS) <= set(table[0])
    markdown = (tmp_path / "results.md").read_text()
    assert "PSNR (full image)" in markdown and "PSNR after GT-mean gain" in markdown
    assert "ms per 600x400 image" in markdown and "LOL-v1 at" in markdown
    assert sum(line.startswith("| ") for line in markdown.splitlines()) == 1 + len(rows)

    forbid_training(monkeypatch)
    again = run_experiments(SMALL, TINY, tiny_lol, tmp_path, progress=False, baselines=[HistogramEqualization()])
    assert [r.get("psnr") for r in again] == [r.get("psnr") for r in rows]
    results = read_results(tmp_path)
    assert [r["variant"] for r in results["rows"]] == names and results["missing"] == []
    assert usable_results(tmp_path, datasets.describe(tiny_lol), needs=["RBL-v1"]) == (results, None)
    assert "no measured row 'recomposed'" in usable_results(tmp_path, datasets.describe(tiny_lol))[1]
    assert "other data" in usable_results(tmp_path, "synthetic (something else)")[1]


@pytest.mark.slow
def test_a_changed_preset_trains_a_new_run_and_a_changed_scoring_only_rescores(tmp_path, tiny_lol, counted):
    run_experiments(SMALL[:1], TINY, tiny_lol, tmp_path, progress=False, baselines=[])
    run_experiments(SMALL[:1], ablation_preset(TINY, stage1={**TINY.stage1, "steps": 3}), tiny_lol, tmp_path,
                    progress=False, baselines=[])
    assert counted["stage1"] == 2 and len(list((tmp_path / "runs").glob("stage1-*"))) == 2
    timed = run_experiments(SMALL[:1], ablation_preset(TINY, timing_runs=1), tiny_lol, tmp_path, progress=False,
                            baselines=[])
    assert counted["stage1"] == 2  # the finished checkpoint is resumed: scored and timed again, not retrained
    assert timed[0]["inference_ms"] > 0


def test_a_corrupt_result_record_is_one_clear_error(tmp_path, tiny_lol):
    run_experiments(SMALL[:1], TINY, tiny_lol, tmp_path, progress=False, baselines=[])
    record = next((tmp_path / "runs").glob("stage1-*/result.json"))
    record.write_text(record.read_text()[:40])
    with pytest.raises(DRBNError, match=rf"{record.name} is truncated or corrupt.*delete it"):
        run_experiments(SMALL[:1], TINY, tiny_lol, tmp_path, progress=False, baselines=[])


def test_a_negated_run_is_restarted_and_the_run_records_it(tmp_path, tiny_lol, counted, monkeypatch):
    verdicts = iter(["GB", "", ""])  # the first run is negated at its check, the restart is not
    monkeypatch.setattr(experiments, "negated_channels", lambda model, pair: next(verdicts))
    preset = ablation_preset(TINY, restarts=3)
    row = run_experiments(SMALL[:1], preset, tiny_lol, tmp_path, progress=False, baselines=[])[0]
    assert counted["stage1"] == 2 and row["seeds_used"] == [experiments.SEED_STRIDE] and not row["negated"]
    assert row["notes"] == "seed 0: G, B negated at step 2, restarted"
    folder = tmp_path / "runs" / row["runs"][0]
    assert json.loads((folder / "result.json").read_text())["restarts"] == [row["notes"]]  # in the run's own record
    assert [p.name for p in folder.iterdir() if p.suffix == ".json"] == ["result.json"]  # no side file
    saved = torch.load(folder / "stage1.pt", weights_only=True)
    assert saved["train_config"]["seed"] == experiments.SEED_STRIDE and saved["step"] == 2

    # interrupted before it was scored: the restarted run is continued, not trained again
    record = json.loads((folder / "result.json").read_text())
    (folder / "result.json").write_text(json.dumps({**record, "finished": False}))
    monkeypatch.setattr(experiments, "negated_channels", lambda model, pair: "")
    again = run_experiments(SMALL[:1], preset, tiny_lol, tmp_path, progress=False, baselines=[])[0]
    assert counted["stage1"] == 2 and again["seeds_used"] == [experiments.SEED_STRIDE]
    assert again["notes"] == row["notes"]


def test_without_restarts_a_negated_run_is_kept_and_flagged(tmp_path, tiny_lol, counted, monkeypatch):
    monkeypatch.setattr(experiments, "negated_channels", lambda model, pair: "B")
    row = run_experiments(SMALL[:1], TINY, tiny_lol, tmp_path, progress=False, baselines=[])[0]
    assert counted["stage1"] == 1 and row["seeds_used"] == [0]
    assert row["negated"] == "seed 0: B" and "B still negated" in row["notes"]


def test_missing_weights_rows_say_how_to_get_them(tmp_path, tiny_lol, monkeypatch):
    monkeypatch.setenv("DRBN_RELEASED_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setattr(Network, "missing", lambda self: "weights not found: run `python -m drbn fetch-weights`")
    rows = run_experiments([], TINY, tiny_lol, tmp_path, progress=False)
    by = {r["variant"]: r for r in rows}
    assert list(by) == ["input (no enhancement)", "HE", "CLAHE", "gamma", "Zero-DCE (released weights)",
                        "DRBN, released stage 1", "DRBN, released stage 1 + other-datasets recomposer",
                        "DRBN, as reported in the paper"]
    assert "fetch-weights" in by["DRBN, released stage 1"]["notes"] and by["DRBN, released stage 1"].get("psnr") is None
    assert by["gamma"]["parameters"] == 1 and by["input (no enhancement)"]["psnr"] < by["gamma"]["psnr"]


@pytest.mark.slow
def test_stage2_variants_train_over_the_stage1_of_their_seed(tmp_path, tiny_lol, counted, monkeypatch):
    monkeypatch.setattr(experiments, "find_vgg16_weights", lambda *a, **k: None)
    chosen = [variant("stage-1 output"), variant("recomposed"), variant("recomposed, no perceptual")]
    rows = run_experiments(chosen, TINY, tiny_lol, tmp_path, progress=False, baselines=[])[:-1]
    assert counted == {"stage1": 1, "stage2": 1}  # DRBN T=4 trained for them; no-perceptual shares the run
    assert [r["variant"] for r in rows] == [v.name for v in chosen]  # the reference is not a row
    assert [r["parameters"] for r in rows] == [557_668, 576_829, 576_829]
    assert "no VGG16 weights" in rows[1]["notes"] and rows[2]["same_as"] == "recomposed"
    forbid_training(monkeypatch)
    again = run_experiments(chosen, TINY, tiny_lol, tmp_path, progress=False, baselines=[])
    assert [r["ssim"] for r in again[:-1]] == [r["ssim"] for r in rows]


def test_stage2_variants_take_the_photo_folders_given(tmp_path, tiny_lol, monkeypatch):
    monkeypatch.setattr(experiments, "find_vgg16_weights", lambda *a, **k: None)
    with pytest.raises(DRBNError, match="high-quality photo folder not found: .*missing"):
        run_experiments([variant("recomposed")], TINY, tiny_lol, tmp_path, baselines=[], high_quality=tmp_path / "missing")
    with pytest.raises(DRBNError, match="unpaired photo folder not found: .*missing"):
        run_experiments([variant("recomposed")], TINY, tiny_lol, tmp_path, baselines=[], unpaired=tmp_path / "missing")
    seen = []

    def stage2(config, *args, **kwargs):
        seen.append((config.high_quality, config.unpaired))
        return train_stage2(config, *args, **kwargs)

    monkeypatch.setattr(experiments, "train_stage2", stage2)
    good, dark = tiny_lol / "our485" / "high", tiny_lol / "our485" / "low"
    run_experiments([variant("recomposed")], TINY, tiny_lol, tmp_path, progress=False, baselines=[],
                    high_quality=good, unpaired=dark)
    assert seen == [(str(good), str(dark))]
    header = json.loads((tmp_path / "results.json").read_text())["header"]
    assert f"high-quality {good}, unpaired low-light {dark}." in " ".join(header)


SHARD_SCRIPT = """
import sys
from drbn.baselines import HistogramEqualization
from drbn.experiments import ablation_preset, run_experiments, variant
shard = tuple(map(int, sys.argv[3].split("/"))) if len(sys.argv) > 3 else None
run_experiments([variant("RBL-v1"), variant("RBL-v2"), variant("DRBN T=1")],
                ablation_preset("smoke-ablation", timing_runs=0, restarts=0), sys.argv[1], sys.argv[2],
                seeds=(0, 1), shard=shard, progress=False, baselines=[HistogramEqualization()])
"""


def measured(rows):
    keep = ("variant", "psnr", "psnr_std", "ssim", "ssim_std", "psnr_shave10", "psnr_gtmean", "seeds", "same_as")
    return [{k: r.get(k) for k in keep} for r in rows]


@pytest.mark.slow
def test_two_shards_side_by_side_give_the_table_of_one_process(tmp_path, tiny_lol):
    def run(*args):
        return subprocess.Popen([sys.executable, "-c", SHARD_SCRIPT, str(tiny_lol), *map(str, args)])

    whole = run(tmp_path / "one")
    parts = [run(tmp_path / "sharded", "1/2"), run(tmp_path / "sharded", "2/2")]
    assert [p.wait() for p in (whole, *parts)] == [0, 0, 0]
    merged = run_experiments(SMALL, TINY, tiny_lol, tmp_path / "sharded", seeds=(0, 1), merge=True,
                             progress=False, baselines=[HistogramEqualization()])
    one = read_results(tmp_path / "one")["rows"]
    assert measured(merged) == measured(one)
    assert one[1]["seeds"] == 2 and one[1]["psnr_std"] is not None  # two seeds: mean ± std
    assert "±" in (tmp_path / "one" / "results.md").read_text()


def test_merge_names_what_is_missing(tmp_path, tiny_lol):
    assert run_experiments(SMALL[:2], TINY, tiny_lol, tmp_path, shard=(1, 2), progress=False, baselines=[]) == []
    rows = run_experiments(SMALL[:2], TINY, tiny_lol, tmp_path, merge=True, progress=False, baselines=[])
    assert math.isfinite(rows[0]["psnr"]) and rows[1].get("psnr") is None
    assert rows[1]["notes"] == "1 of 1 runs not done yet"
    assert read_results(tmp_path)["missing"] == ["RBL-v2, seed 0"]
    assert "Missing (not run yet): RBL-v2, seed 0." in (tmp_path / "results.md").read_text()
    with pytest.raises(DRBNError, match="shard must be K/N"):
        run_experiments(SMALL[:2], TINY, tiny_lol, tmp_path, shard=(3, 2), progress=False, baselines=[])


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
