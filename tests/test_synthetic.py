"""The camera model (drbn.synthetic) and the synthetic paired set built with it (drbn.data)."""
import numpy as np
import pytest

from drbn import data
from drbn.data import (
    PHOTOS,
    TEST_PHOTOS,
    describe,
    high_quality_photos,
    load_pairs,
    natural_photos,
    synthetic_pairs,
    synthetic_unpaired,
)
from drbn.errors import DRBNError
from drbn.images import Pair, to_uint8
from drbn.synthetic import LowLightParams, darken, darken_steps


def test_every_photo_loads_offline_as_a_colour_image_the_network_takes():
    photos = dict(natural_photos())
    assert set(PHOTOS) <= set(photos)
    for name, photo in photos.items():
        h, w, c = photo.shape
        assert c == 3 and photo.dtype == np.float32, name
        assert h % 4 == 0 and w % 4 == 0, name
        assert max(h, w) <= 640 and min(h, w) >= 256, name  # stage-1 crops are 256x256
        assert 0.0 <= photo.min() and photo.max() <= 1.0, name
        assert np.abs(photo[..., 0] - photo[..., 1]).mean() > 0.01, f"{name} looks greyscale"
        np.testing.assert_array_equal(to_uint8(photo).astype(np.float32) / 255.0, photo)


def test_split_is_by_source_photo_and_disjoint():
    train = [name for name, _ in natural_photos("train")]
    test = [name for name, _ in natural_photos("test")]
    assert sorted(test) == sorted(TEST_PHOTOS)
    assert not set(train) & set(test)
    assert set(train) | set(test) == set(data.photo_names())
    assert [name for name, _ in high_quality_photos()] == train
    train_sources = {p.name.rsplit("_", 1)[0] for p in synthetic_pairs("train", variants=2)}
    assert train_sources == set(train)
    assert [p.name for p in synthetic_pairs("test")] == test


def test_darken_is_deterministic_for_a_generator_seed():
    photo = dict(natural_photos())["astronaut"]
    a = darken(photo, np.random.default_rng(7))
    b = darken(photo, np.random.default_rng(7))
    c = darken(photo, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_darkened_images_are_dark_8bit_and_in_range():
    for name, photo in natural_photos():
        y = darken(photo, np.random.default_rng(0))
        assert y.dtype == np.float32 and y.shape == photo.shape, name
        assert 0.0 <= y.min() and y.max() <= 1.0, name
        np.testing.assert_array_equal(np.rint(y * 255.0), y * 255.0)  # values k / 255
        ratio = y.mean() / photo.mean()
        assert 0.05 < ratio < 0.4, (name, ratio)


def test_steps_follow_the_camera_model():
    params = LowLightParams()
    photo = dict(natural_photos())["rocket"]
    d = darken_steps(photo, np.random.default_rng(3), params)
    assert [name for name, _ in d.steps()] == ["linear", "exposed", "noisy", "cast", "gamma", "quantised"]
    assert params.exposure[0] <= d.exposure <= params.exposure[1]
    assert params.photons[0] <= d.photons <= params.photons[1]
    assert all(params.colour_cast[0] <= g <= params.colour_cast[1] for g in d.gains)
    np.testing.assert_allclose(d.linear, photo.astype(np.float64) ** 2.2, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(d.exposed, d.exposure * d.linear, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(d.cast, d.noisy * np.array(d.gains, dtype=np.float32), rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(d.gamma, np.clip(d.cast, 0, 1) ** (1 / 2.2), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(d.quantised, to_uint8(d.gamma).astype(np.float32) / 255.0)
    np.testing.assert_array_equal(d.quantised, darken(photo, np.random.default_rng(3), params))


def test_noise_is_poisson_gaussian_in_electrons():
    # A flat grey card: the variance of (noisy - exposed) is (p E + r^2) / p^2.
    params = LowLightParams(exposure=(0.05, 0.05), photons=(2000, 2000), read_noise=(3, 3), colour_cast=(1, 1))
    grey = np.full((200, 200, 3), 0.5, dtype=np.float32)
    d = darken_steps(grey, np.random.default_rng(0), params)
    residual = d.noisy.astype(np.float64) - d.exposed
    exposed = float(d.exposed.mean())
    expected = (2000 * exposed + 3**2) / 2000**2
    assert abs(residual.mean()) < 0.05 * exposed
    assert residual.var() == pytest.approx(expected, rel=0.05)


def test_synthetic_pairs_are_deterministic_for_the_seed():
    a = synthetic_pairs("train", seed=0, variants=2)
    b = synthetic_pairs("train", seed=0, variants=2)
    c = synthetic_pairs("train", seed=1, variants=2)
    assert len(a) == 2 * len(natural_photos("train"))
    assert all(isinstance(p, Pair) and p.low.dtype == np.uint8 for p in a)
    assert [p.name for p in a] == [p.name for p in b] == [p.name for p in c]
    for pa, pb, pc in zip(a, b, c):
        np.testing.assert_array_equal(pa.low, pb.low)
        np.testing.assert_array_equal(pa.high, pc.high)
        assert not np.array_equal(pa.low, pc.low), pa.name
    assert not np.array_equal(a[0].low, a[1].low)  # two variants of one photo differ


def test_test_pairs_are_fixed_whatever_the_seed():
    a = synthetic_pairs("test", seed=0)
    b = synthetic_pairs("test", seed=5, variants=3)
    assert len(a) == len(TEST_PHOTOS)
    for pa, pb in zip(a, b):
        np.testing.assert_array_equal(pa.low, pb.low)


def test_synthetic_unpaired_set_is_fresh_darkenings_of_training_photos():
    unpaired = synthetic_unpaired(seed=1, variants=1)
    paired = synthetic_pairs("train", seed=0, variants=1)
    assert [name for name, _ in unpaired] == [p.name for p in paired]
    for (name, low), pair in zip(unpaired, paired):
        assert low.dtype == np.uint8 and low.shape == pair.low.shape
        assert not np.array_equal(low, pair.low), name
        assert low.mean() < 0.4 * pair.high.mean(), name


def test_load_pairs_auto_is_the_synthetic_set():
    a = load_pairs("auto", "test")
    b = load_pairs(None, "test")
    assert [p.name for p in a] == [p.name for p in b] == list(TEST_PHOTOS)
    np.testing.assert_array_equal(a[0].low, synthetic_pairs("test")[0].low)
    assert len(load_pairs(None, "train", variants=1, limit=2)) == 2
    assert describe("auto").startswith("synthetic (scikit-image/matplotlib")
    np.testing.assert_array_equal(load_pairs("synthetic", "test")[0].low, a[0].low)


def test_bad_inputs_raise_drbn_errors():
    with pytest.raises(DRBNError, match="unknown split 'val'"):
        synthetic_pairs("val")
    with pytest.raises(DRBNError, match="variants"):
        synthetic_pairs("train", variants=0)
    with pytest.raises(DRBNError, match="LowLightParams.exposure"):
        LowLightParams(exposure=(0.2, 0.1))
    with pytest.raises(DRBNError, match="LowLightParams.photons"):
        LowLightParams(photons=(0, 100))
    with pytest.raises(DRBNError, match="H x W x 3"):
        darken(np.zeros((8, 8), np.float32), np.random.default_rng(0))
