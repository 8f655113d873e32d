"""Baselines: valid images out, gamma fitted on the training split, released weights wrapped."""
import numpy as np
import pytest

from drbn.baselines import (
    CLAHE, GAMMA_GRID, DarkInput, GammaCorrection, HistogramEqualization, ReleasedDRBN, ZeroDCEBaseline, clahe,
    default_baselines, equalize_histogram, fit_gamma, gamma_correct, gamma_scores, missing_weights,
)
from drbn.errors import DRBNError
from drbn.images import Pair

from conftest import shared_path


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


def test_the_dark_input_is_returned_as_it_is():
    low = dark_image()
    np.testing.assert_array_equal(DarkInput()(low), low)
    as_uint8 = np.rint(low * 255).astype(np.uint8)
    np.testing.assert_allclose(DarkInput()(as_uint8), as_uint8 / 255.0, atol=1e-7)


def test_missing_weights_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("DRBN_RELEASED_DIR", str(tmp_path))
    found = default_baselines()
    assert [type(b) for b in found] == [DarkInput, HistogramEqualization, CLAHE, GammaCorrection, ZeroDCEBaseline,
                                        ReleasedDRBN, ReleasedDRBN]
    assert [b.missing() is None for b in found] == [True] * 4 + [False] * 3
    reason = found[-1].missing()
    assert "model_s1.pt, model_R_s2.pt" in reason and "python -m drbn fetch-weights" in reason
    assert "DRBN_RELEASED_DIR" in reason and str(tmp_path) in reason
    with pytest.raises(DRBNError, match="fetch-weights"):
        found[-2](dark_image())
    assert [type(b) for b in default_baselines(released=False)] == [DarkInput, HistogramEqualization, CLAHE,
                                                                    GammaCorrection]


def test_released_networks_run_through_the_library(released_stage1_path, released_recomposer_path):
    shared_dir = released_stage1_path.parent
    assert missing_weights("model_s1.pt", "model_R_s2.pt") is None  # DRBN_RELEASED_DIR points there (conftest)
    networks = [b for b in default_baselines() if isinstance(b, ReleasedDRBN)]
    assert [b.parameters() for b in networks] == [557_668, 576_829]
    assert networks[0].settings() == {"weights": [str(shared_dir / "model_s1.pt")]}
    out = networks[1](dark_image(shape=(32, 44, 3)))
    assert out.shape == (32, 44, 3) and 0 <= out.min() and out.max() <= 1


def test_zero_dce_runs_with_its_released_weights():
    shared_path("reference", "peers")  # found there through DRBN_RELEASED_DIR (conftest)
    zero_dce = ZeroDCEBaseline()
    assert zero_dce.missing() is None
    assert zero_dce.parameters() == 79_416
    low = dark_image(shape=(32, 44, 3))
    out = zero_dce(low)
    assert out.shape == low.shape and out.mean() > low.mean()
