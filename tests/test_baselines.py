"""Baselines: valid images out, gamma fitted on the training split, released weights wrapped."""
import numpy as np
import pytest

from drbn.baselines import (
    CLAHE, GAMMA_GRID, GammaCorrection, HistogramEqualization, ReleasedDRBN, clahe, default_baselines,
    equalize_histogram, fit_gamma, gamma_correct, gamma_scores,
)
from drbn.data import Pair
from drbn.errors import DRBNError


def dark_image(seed=0, shape=(40, 52, 3)):
    rng = np.random.default_rng(seed)
    return (rng.random(shape) * 0.25).astype(np.float32)


def toy_pairs(power=2.0, n=3):
    """high is random; low = high ** power (so gamma = 1 / power undoes it exactly)."""
    rng = np.random.default_rng(1)
    pairs = []
    for i in range(n):
        high = rng.random((24, 32, 3))
        pairs.append(Pair(f"toy{i}", np.rint(high**power * 255).astype(np.uint8), np.rint(high * 255).astype(np.uint8)))
    return pairs


@pytest.mark.parametrize("method", [equalize_histogram, clahe, lambda y: gamma_correct(y, 0.5)])
def test_outputs_are_valid_images(method):
    low = dark_image()
    out = method(low)
    assert out.shape == low.shape and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert out.mean() > low.mean() + 0.05  # they brighten a dark image


def test_uint8_input_gives_the_same_result():
    low = dark_image()
    as_uint8 = np.rint(low * 255).astype(np.uint8)
    np.testing.assert_allclose(gamma_correct(as_uint8, 0.5), gamma_correct(as_uint8.astype(np.float32) / 255, 0.5))


def test_histogram_equalisation_keeps_hue():
    """Equalising the HSV value channel scales R, G and B of a pixel by the same factor."""
    low = dark_image() + 0.01
    out = equalize_histogram(low)
    ratio_in = low[..., 0] / low[..., 1]
    ratio_out = out[..., 0] / np.maximum(out[..., 1], 1e-6)
    unsaturated = out.max(-1) < 0.999
    np.testing.assert_allclose(ratio_out[unsaturated], ratio_in[unsaturated], rtol=1e-3)


def test_histogram_equalisation_flattens_the_value_histogram():
    out = equalize_histogram(dark_image(shape=(64, 64, 3)))
    value = out.max(-1)
    counts, _ = np.histogram(value, bins=4, range=(0, 1))
    assert counts.min() > 0.15 * value.size  # roughly uniform, not piled at the bottom


def test_fit_gamma_finds_the_known_answer():
    assert fit_gamma(toy_pairs(2.0), GAMMA_GRID) == 0.5
    assert fit_gamma(toy_pairs(2.0), (0.3, 0.5, 0.9)) == 0.5
    assert fit_gamma(toy_pairs(1.0), (0.5, 1.0, 1.5)) == 1.0


def test_gamma_scores_peak_at_the_answer():
    scores = gamma_scores(toy_pairs(2.0), (0.25, 0.5, 1.0))
    assert scores[1] > scores[0] and scores[1] > scores[2]


def test_gamma_baseline_fits_on_training_pairs_only():
    baseline = GammaCorrection(grid=(0.25, 0.5, 1.0))
    with pytest.raises(DRBNError, match="not fitted"):
        baseline(dark_image())
    baseline.fit(toy_pairs(2.0))
    assert baseline.gamma == 0.5 and baseline.parameters() == 1
    np.testing.assert_allclose(baseline(dark_image()), gamma_correct(dark_image(), 0.5))


def test_bad_inputs_are_clear_errors():
    with pytest.raises(DRBNError, match="gamma must be positive"):
        gamma_correct(dark_image(), 0)
    with pytest.raises(DRBNError, match="H x W x 3"):
        equalize_histogram(np.zeros((8, 8)))
    with pytest.raises(DRBNError, match="no pairs"):
        fit_gamma([])


def test_default_baselines_without_released_weights(tmp_path):
    found = default_baselines(released=tmp_path)
    assert [type(b) for b in found] == [HistogramEqualization, CLAHE, GammaCorrection]
    assert all(b.parameters() <= 1 for b in found)


def test_released_weights_run_through_the_library(released_stage1_path, released_recomposer_path):
    found = [b for b in default_baselines(released=released_stage1_path.parent) if isinstance(b, ReleasedDRBN)]
    assert [b.parameters() for b in found] == [557_668, 576_829]
    out = found[0](dark_image(shape=(32, 44, 3)))
    assert out.shape == (32, 44, 3) and 0 <= out.min() and out.max() <= 1
