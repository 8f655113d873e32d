import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from drbn.errors import DRBNError
from drbn import metrics
from drbn.metrics import KEYS, average, gtmean_gain, psnr, psnr_gtmean, score, ssim


def pair(h=48, w=56, seed=0):
    """A float target in [0, 1] with structure, and a noisy, darker output (may leave [0, 1])."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    target = np.stack([xx, yy, 0.5 * (xx + yy)], axis=-1)
    target[8:30, 10:40] = 0.9
    output = 0.85 * target + 0.08 * rng.standard_normal(target.shape)
    return output, target


def quantise(image):
    return np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8)


def test_psnr_and_ssim_match_skimage_on_8_bit_images():
    output, target = pair()
    o8, t8 = quantise(output).astype(np.float64), quantise(target).astype(np.float64)
    expected_psnr = peak_signal_noise_ratio(t8, o8, data_range=255)
    expected_ssim = structural_similarity(
        t8, o8, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        channel_axis=-1, data_range=255,
    )
    assert psnr(output, target) == pytest.approx(expected_psnr, abs=1e-9)
    assert ssim(output, target) == pytest.approx(expected_ssim, abs=1e-9)
    # uint8 inputs give the same numbers as the float images they come from
    assert psnr(quantise(output), quantise(target)) == pytest.approx(expected_psnr, abs=1e-9)
    assert 10 < expected_psnr < 40 and 0.1 < expected_ssim < 0.95


def test_floats_are_quantised_before_scoring():
    output, target = pair()
    unquantised = peak_signal_noise_ratio(target, np.clip(output, 0, 1), data_range=1)
    assert psnr(output, target) != pytest.approx(unquantised, abs=1e-3)


def test_released_psnr_shaves_ten_pixels():
    output, target = pair()
    # Make the border much worse than the inside, so shaving visibly matters.
    output[:10] = 1 - target[:10]
    o8, t8 = quantise(output), quantise(target)
    cropped = peak_signal_noise_ratio(
        t8[10:-10, 10:-10].astype(np.float64), o8[10:-10, 10:-10].astype(np.float64), data_range=255
    )
    scores = score(output, target)
    assert scores["psnr_shave10"] == pytest.approx(cropped, abs=1e-9)
    assert scores["psnr_shave10"] > scores["psnr"] + 3
    assert psnr(output, target, shave=10) == scores["psnr_shave10"]


def test_score_has_the_four_metrics_under_short_keys():
    output, target = pair()
    scores = score(output, target)
    assert tuple(scores) == KEYS == ("psnr", "ssim", "psnr_shave10", "psnr_gtmean")
    assert scores["psnr"] == psnr(output, target)
    assert scores["ssim"] == ssim(output, target)


def test_identical_images_have_infinite_psnr():
    _, target = pair()
    scores = score(target, target)
    assert math.isinf(scores["psnr"]) and scores["psnr"] > 0
    assert math.isinf(scores["psnr_shave10"])
    assert scores["ssim"] == pytest.approx(1.0)


def test_shape_mismatch_names_both_shapes():
    output, target = pair(48, 56)
    with pytest.raises(DRBNError, match=r"\(48, 56, 3\).*\(48, 52, 3\)"):
        score(output, target[:, :52])
    with pytest.raises(DRBNError, match="H x W x 3"):
        psnr(output[..., 0], target[..., 0])
    with pytest.raises(DRBNError, match="too small"):
        psnr(output[:16], target[:16], shave=10)


def test_average_is_the_mean_of_per_image_values():
    a = score(*pair(seed=0))
    out_b, target_b = pair(seed=1)
    out_b = 0.5 * out_b  # a much worse second image
    b = score(out_b, target_b)
    mean = average([a, b])
    for key in a:
        assert mean[key] == pytest.approx((a[key] + b[key]) / 2)
    # Not the PSNR of the pooled error, which would weight the worse image differently.
    pooled = peak_signal_noise_ratio(
        np.concatenate([quantise(pair(seed=0)[1]), quantise(target_b)]).astype(np.float64),
        np.concatenate([quantise(pair(seed=0)[0]), quantise(out_b)]).astype(np.float64),
        data_range=255,
    )
    assert mean["psnr"] != pytest.approx(pooled, abs=0.1)
    with pytest.raises(DRBNError, match="no scores"):
        average([])


def test_gtmean_gain_takes_a_uniform_exposure_error_out():
    _, target = pair()
    dark = 0.5 * target  # the right image, uniformly under-exposed
    scores = score(dark, target)
    assert scores["psnr"] < 15
    assert scores["psnr_gtmean"] > scores["psnr"] + 20
    # The convention, step by step: one gain mean(x) / mean(output) on [0, 1] floats, clamp,
    # then 8-bit PSNR.
    x = quantise(target).astype(np.float64) / 255
    expected = np.clip(np.clip(dark, 0, 1) * (x.mean() / np.clip(dark, 0, 1).mean()), 0, 1)
    np.testing.assert_allclose(gtmean_gain(dark, target), expected)
    assert psnr_gtmean(dark, target) == psnr(expected, target)
    assert np.mean(gtmean_gain(dark, target)) == pytest.approx(x.mean(), rel=1e-6)


def test_gtmean_gain_cannot_fix_structure_and_leaves_black_alone():
    output, target = pair()
    scores = score(output, target)
    assert scores["psnr_gtmean"] < 40  # noise and structure errors stay
    black = np.zeros_like(target)
    assert psnr_gtmean(black, target) == psnr(black, target)
    # uint8 outputs are read as k / 255, the same as the float image they come from
    assert psnr_gtmean(quantise(output), target) == pytest.approx(psnr_gtmean(np.clip(np.rint(np.clip(output, 0, 1) * 255) / 255, 0, 1), target))


def test_metrics_module_holds_no_labels():
    assert not hasattr(metrics, "LABELS") and not hasattr(metrics, "PSNR")


def test_images_too_small_to_score_are_a_clear_error():
    tiny = np.zeros((8, 30, 3), np.uint8)
    with pytest.raises(DRBNError, match="too small for SSIM"):
        metrics.ssim(tiny, tiny)
    with pytest.raises(DRBNError, match="too small"):
        metrics.score(np.zeros((16, 16, 3), np.uint8), np.zeros((16, 16, 3), np.uint8))
