"""Stage 2's quality side: the held-out unpaired split, D's scores through training, the
paper's pre-trained critic, and the released recomposer named for its branch."""
import numpy as np
import pytest
import torch

from drbn import data as datasets
from drbn.baselines import RELEASED_RECOMPOSER, default_baselines, released_drbn
from drbn.discriminator import QualityDiscriminator, score_images, tile_origins
from drbn.errors import DRBNError
from drbn.experiments import PRETRAINED_CRITIC, STAGE2_VARIANTS, VARIANTS, stage2_config, variant
from drbn.model import DRBN, DRBNConfig
from drbn.train import (critic_batch, high_quality_images, pretrain_critic, stage2_preset, train_stage2,
                        unpaired_images)


def tiny_stage2(**overrides):
    values = dict(steps=3, crop=16, eval_every=100, checkpoint_every=100, max_eval_images=1, critic_steps=3)
    values.update(overrides)
    return stage2_preset("smoke", **values)


@pytest.fixture(scope="module")
def tiny_stage1():
    torch.manual_seed(0)
    return DRBN(DRBNConfig(recursions=1))


# ----------------------------------------------------------------------------- the split
@pytest.mark.parametrize("name, folder, part", [
    ("LIME/2.png", None, "held_out"), ("lime/13.png", None, "held_out"), ("photos/LIME/3.png", None, "held_out"),
    ("2.png", "/photos/LIME", "held_out"), ("3.png", "/photos/LIME", "train"),  # a LIME folder given alone: rule 2
    ("DICM/02.jpg", None, "held_out"), ("DICM/66.jpg", None, "held_out"), ("DICM/01.jpg", None, "train"),
    ("DICM/04.jpg", None, "train"), ("kodim22.png", None, "held_out"), ("kodim24.png", None, "train"),
])
def test_the_split_rule_by_name(name, folder, part):
    assert datasets.unpaired_part(name, folder) == part


def test_a_photos_part_never_depends_on_the_others():
    names = [f"DICM/{i:02d}.jpg" for i in range(1, 70)] + [f"night_{c}.png" for c in "abcdefgh"]
    alone = {n: datasets.unpaired_part(n) for n in names}
    assert alone == {n: datasets.unpaired_part(n) for n in reversed(names)}
    held = [n for n in names if alone[n] == "held_out"]
    assert 0.15 < len(held) / len(names) < 0.35  # about a quarter


def test_folder_parts_are_disjoint_and_cover_it(tmp_path):
    from drbn.images import write_image

    for name in ("DICM/01.jpg", "DICM/06.png", "LIME/3.png", "mine/7.png", "mine/10.png"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        write_image(tmp_path / name, np.full((20, 20, 3), 0.2, np.float32))
    config = tiny_stage2(unpaired=str(tmp_path), high_quality=str(tmp_path))
    train = [n for n, _ in unpaired_images(config, "train")]
    held = [n for n, _ in unpaired_images(config, "held_out")]
    assert train == ["DICM/01.jpg", "mine/7.png"]
    assert held == ["DICM/06.png", "LIME/3.png", "mine/10.png"]
    assert [n for n, _ in high_quality_images(config, "held_out")] == held
    assert [n for n, _ in datasets.load_unpaired(tmp_path / "LIME", part="train")] == ["3.png"]  # given alone
    with pytest.raises(DRBNError, match="no photo in part 'held_out'"):
        datasets.load_unpaired(tmp_path / "LIME", part="held_out")
    with pytest.raises(DRBNError, match="unknown part"):
        unpaired_images(config, "test")


def test_the_auto_sets_hold_out_the_test_scenes():
    config = tiny_stage2()
    train, held = unpaired_images(config, "train"), unpaired_images(config, "held_out")
    assert {n.rsplit("_", 1)[0] for n, _ in train} == set(datasets.photo_names()) - set(datasets.TEST_PHOTOS)
    assert {n.rsplit("_", 1)[0] for n, _ in held} == set(datasets.TEST_PHOTOS)
    assert [n for n, _ in high_quality_images(config, "held_out")] == list(datasets.TEST_PHOTOS)
    assert not {n for n, _ in high_quality_images(config, "train")} & set(datasets.TEST_PHOTOS)
    with pytest.raises(DRBNError, match="holds nothing out|no unpaired photo is held out"):
        unpaired_images(tiny_stage2(unpaired="test"), "held_out")


def test_stage2_never_reads_a_held_out_photo(tiny_stage1, tmp_path, monkeypatch):
    asked = []
    original = datasets.load_unpaired

    def spy(folder, what="unpaired low-light folder", part=None):
        asked.append(part)
        return original(folder, what, part)

    from drbn.images import write_image
    for name in ("01.png", "04.png", "05.png"):
        write_image(tmp_path / "photos" / name, np.full((40, 40, 3), 0.3, np.float32))
    monkeypatch.setattr(datasets, "load_unpaired", spy)
    config = tiny_stage2(steps=1, unpaired=str(tmp_path / "photos"), high_quality=str(tmp_path / "photos"))
    train_stage2(config, tiny_stage1, tmp_path / "run", progress=False)
    assert asked == ["train", "train"]


# ----------------------------------------------------------------------------- D's scores
def test_history_records_d_scores_each_step(tiny_stage1, tmp_path):
    result = train_stage2(tiny_stage2(), tiny_stage1, tmp_path, progress=False)
    history = result.history
    assert len(history["d_real"]) == len(history["d_fake"]) == len(history["step"]) == 3
    assert all(0 < v < 1 for v in history["d_real"] + history["d_fake"])
    assert "critic_step" not in history  # the released joint D is not pre-trained


def test_score_images_tiles_any_size_and_restores_the_mode():
    torch.manual_seed(0)
    d = QualityDiscriminator(width=8).train()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (50, 70, 3), dtype=np.uint8), rng.random((20, 16, 3)).astype(np.float32)]
    scores = score_images(d, images, crop=32, tiles=2)
    assert len(scores) == 2 and all(0 < s < 1 for s in scores) and d.training
    assert tile_origins(70, 32, 2) == [0, 38] and tile_origins(20, 32, 4) == [0]
    assert score_images(d, images, crop=32, tiles=2) == scores  # eval mode: deterministic


# ----------------------------------------------------------------------------- the paper's critic
def test_poor_versions_are_worse_exposed_and_seeded():
    photo = np.random.default_rng(1).random((24, 24, 3)).astype(np.float32) * 0.6 + 0.2
    made = [datasets.poor_version(photo, np.random.default_rng(seed)) for seed in range(40)]
    again = [datasets.poor_version(photo, np.random.default_rng(seed)) for seed in range(40)]
    assert all(np.array_equal(a, b) for a, b in zip(made, again))
    assert all(m.shape == photo.shape and m.dtype == np.float32 and 0 <= m.min() and m.max() <= 1 for m in made)
    assert all(np.abs(m - photo).mean() > 0.03 for m in made)  # every kind changes the photo visibly
    means = [m.mean() for m in made]
    assert min(means) < photo.mean() - 0.2 and max(means) > photo.mean() + 0.2  # too dark and too bright both


def test_critic_batch_pairs_good_with_poor():
    photos = datasets.high_quality_photos("train")
    good, poor = critic_batch(photos, 3, 32, np.random.default_rng(0))
    assert good.shape == poor.shape == (3, 3, 32, 32) and good.dtype == poor.dtype == torch.float32


@pytest.mark.slow
def test_a_pretrained_critic_learns_to_tell_good_from_poor():
    """Smoke-sized: 100 steps at 32x32 already score well-exposed photos above poor ones,
    on the held-out high-quality photos (never trained on); an untrained D scores both alike."""
    config = stage2_preset("smoke", crop=32, critic_steps=100, batch_size=4)
    torch.manual_seed(0)
    d = QualityDiscriminator(width=16)
    history = pretrain_critic(config, d, datasets.high_quality_photos("train"), torch.device("cpu"))
    assert np.mean(history["critic_loss"][-10:]) < np.mean(history["critic_loss"][:10])
    held = datasets.high_quality_photos("held_out")
    rng = np.random.default_rng(5)
    poor = [datasets.poor_version(image / 255.0, rng) for _, image in held for _ in range(3)]
    good_scores, poor_scores = score_images(d, [image for _, image in held], 32), score_images(d, poor, 32)
    assert np.mean(good_scores) > np.mean(poor_scores) + 0.1


def test_stage2_with_a_pretrained_critic_freezes_it_and_resumes(tiny_stage1, tmp_path):
    config = tiny_stage2(critic="pretrained", checkpoint_every=2, steps=4)
    straight = train_stage2(config, tiny_stage1, tmp_path / "straight", progress=False)
    history = straight.history
    assert history["critic_step"] == [1, 2, 3] and len(history["d_fake"]) == 4
    assert any("critic pre-trained" in n for n in straight.notes)
    payload = torch.load(straight.checkpoint, weights_only=True)
    split = train_stage2(config, tiny_stage1, tmp_path / "split", progress=False, stop_at=2)
    resumed = train_stage2(config, tiny_stage1, tmp_path / "split", resume=split.checkpoint, progress=False)
    for key, value in payload["discriminator"].items():  # frozen after pre-training, the same in both runs
        assert torch.equal(value, torch.load(resumed.checkpoint, weights_only=True)["discriminator"][key]), key
    for (name, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name
    assert resumed.history["loss_adv"] == pytest.approx(history["loss_adv"])


def test_the_critic_must_be_known(tiny_stage1, tmp_path):
    with pytest.raises(DRBNError, match="unknown critic"):
        train_stage2(tiny_stage2(critic="ava"), tiny_stage1, tmp_path, progress=False)


def test_released_learning_rate_stays_the_default_and_the_variant_is_separate():
    assert stage2_preset("paper").lr_discriminator == 1e-6 and stage2_preset("paper").critic == "joint"
    assert stage2_preset("cpu").critic_steps < stage2_preset("paper").critic_steps
    assert PRETRAINED_CRITIC not in VARIANTS and variant(PRETRAINED_CRITIC.name) is PRETRAINED_CRITIC
    assert all(v.critic == "joint" for v in STAGE2_VARIANTS)
    assert stage2_config(PRETRAINED_CRITIC, "cpu-ablation").critic == "pretrained"


# ----------------------------------------------------------------------------- naming
def test_the_released_recomposer_is_named_for_its_branch():
    row = released_drbn(recomposer=True)
    assert row.name == RELEASED_RECOMPOSER and "other-datasets" in row.name
    for words in ("λ_adv = 1", "LIME", "NPE", "VV", "DICM", "not held out"):
        assert words in row.description
    assert RELEASED_RECOMPOSER in [b.name for b in default_baselines()]


def test_the_data_flow_figure_names_both_kinds_of_data():
    from drbn import viz

    fig = viz.plot_semi_supervised()
    words = " ".join(t.get_text() for t in fig.axes[0].texts)
    for word in ("PAIRED", "UNPAIRED", "semi-supervised", "frozen", "λ_adv", "x̂_F"):
        assert word in words, word


def test_the_committed_plane_names_its_sources():
    """results/plane.json (written by results/plane.py) scores every point on the same
    held-out photos, names the released recomposer's branch, and says what it did not run."""
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "results" / "plane.json"
    if not path.exists():
        pytest.skip("no results/plane.json in this checkout")
    plane = json.loads(path.read_text())
    assert all(datasets.unpaired_part(name) == "held_out" for name in plane["held_out_unpaired"])
    for point in plane["points"]:
        assert set(point["niqe_per_photo"]) == set(plane["held_out_unpaired"]), point["method"]
        assert np.mean(list(point["niqe_per_photo"].values())) == pytest.approx(point["niqe"])
    names = [p["method"] for p in plane["points"]] + plane["missing"]
    assert any(n.startswith(RELEASED_RECOMPOSER) for n in names) and "other-datasets" in plane["released_recomposer"]
    assert any("pre-trained critic" in n for n in names) and plane["sittings"][0]["command"]
    by = {p["method"]: p for p in plane["points"]}
    for t in plane.get("trade_offs", []):  # each NIQE change is the mean per-photo change of its two points
        a, b = by[t["from"]]["niqe_per_photo"], by[t["to"]]["niqe_per_photo"]
        assert t["niqe_change"] == pytest.approx(np.mean([b[n] - a[n] for n in a]))
        assert t["photos_lower"] == sum(b[n] < a[n] for n in a)
