"""NIQE: the MATLAB release's value on baboon, the hand-written MATLAB resize, the per-block
features against a plain loop, one-line refusals, and NIQE in ``evaluate``.

The reference values and the pristine model come from ../shared/reference/peers/niqe/
(tests skip where it is absent); the expected numbers below are derived in the tests
themselves, never read back from drbn.niqe.
"""
import csv
import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from scipy.special import gamma

from conftest import shared_path
from drbn import niqe as niqe_module
from drbn.cli import main
from drbn.errors import DRBNError
from drbn.evaluate import score_unpaired
from drbn.images import read_image, to_uint8, write_image
from drbn.metrics import niqe
from drbn.niqe import features, imresize_half, load_model, mscn

MATLAB_BABOON = 5.72957338  # the official MATLAB code (R2021a) on baboon.png, Y of rgb2ycbcr, no crop


@pytest.fixture(scope="module")
def model_path():
    return shared_path("reference", "peers", "niqe", "niqe_pris_params.npz")


@pytest.fixture(scope="module")
def model(model_path):
    return load_model(model_path)


@pytest.fixture(scope="module")
def baboon():
    return to_uint8(read_image(shared_path("reference", "peers", "niqe", "baboon.png")))


def one_line(info) -> str:
    message = str(info.value)
    assert message and "\n" not in message
    return message


# ----------------------------------------------------------------------------- the reference value
def test_baboon_scores_the_matlab_value(baboon, model):
    assert baboon.shape == (480, 492, 3)  # H x W; cut to 5 x 5 blocks of 96
    assert abs(niqe(baboon, model) - MATLAB_BABOON) < 0.01


def test_blur_makes_baboon_less_natural(baboon, model):
    blurred = np.stack([gaussian_filter(baboon[..., c].astype(np.float64), 2.0) for c in range(3)], -1)
    assert niqe(to_uint8(blurred / 255), model) > niqe(baboon, model) + 1


def test_the_model_is_found_in_a_niqe_folder_of_a_released_folder(monkeypatch, model_path, baboon):
    monkeypatch.setenv("DRBN_RELEASED_DIR", str(model_path.parent.parent))  # .../peers, holding niqe/
    assert niqe_module.find_model() == model_path
    assert niqe(baboon) == niqe(baboon, model_path)


# ----------------------------------------------------------------------------- MATLAB's imresize(·, 0.5)
def matlab_cubic(x: float) -> float:
    x = abs(x)
    if x <= 1:
        return 1.5 * x**3 - 2.5 * x**2 + 1
    if x <= 2:
        return -0.5 * x**3 + 2.5 * x**2 - 4 * x + 2
    return 0.0


def matlab_half_1d(values: np.ndarray) -> np.ndarray:
    """imresize's formula for one axis, one output at a time (1-based like MATLAB): centre
    u = 2i - 1/2, taps floor(u - 4) + 0..9, weights 0.5 cubic(0.5 (u - j)) normalised,
    an index outside 1..n mirrored with the edge sample repeated."""
    n = len(values)
    out = []
    for i in range(1, math.ceil(n / 2) + 1):
        u = 2 * i - 0.5
        taps = [math.floor(u - 4) + k for k in range(10)]
        weights = [0.5 * matlab_cubic(0.5 * (u - j)) for j in taps]
        total = 0.0
        for j, w in zip(taps, weights):
            while not 1 <= j <= n:
                j = 1 - j if j < 1 else 2 * n + 1 - j
            total += w * values[j - 1]
        out.append(total / sum(weights))
    return np.array(out)


@pytest.mark.parametrize("shape", [(13, 10), (8, 9), (24, 17)])
def test_imresize_half_matches_the_matlab_formula(shape):
    image = np.random.default_rng(0).uniform(0, 255, shape)
    expected = np.stack([matlab_half_1d(row) for row in np.stack([matlab_half_1d(col) for col in image.T], 1)])
    result = imresize_half(image)
    assert result.shape == (math.ceil(shape[0] / 2), math.ceil(shape[1] / 2))
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-10)


def test_imresize_half_keeps_constants_and_samples_a_ramp_between_pixels():
    assert np.allclose(imresize_half(np.full((20, 30), 97.0)), 97.0, rtol=0, atol=1e-12)
    # the cubic kernel reproduces straight lines: away from the borders, output i of a ramp
    # x_k = k (0-based) is the ramp at the output's centre 2i + 1/2
    ramp = np.tile(np.arange(40.0)[:, None], (1, 6))
    inner = imresize_half(ramp)[3:-3, 0]
    np.testing.assert_allclose(inner, 2 * np.arange(3, 17) + 0.5, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- features and refusals
def loop_features(coefficients: np.ndarray, block: int) -> np.ndarray:
    """computefeature.m for each block, written as a plain per-block loop."""
    shapes = np.arange(0.2, 10.001, 0.001)
    ratios = gamma(2 / shapes) ** 2 / (gamma(1 / shapes) * gamma(3 / shapes))

    def aggd(v):
        left, right = np.sqrt(np.mean(v[v < 0] ** 2)), np.sqrt(np.mean(v[v > 0] ** 2))
        g = left / right
        r = np.mean(np.abs(v)) ** 2 / np.mean(v**2) * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
        a = shapes[np.argmin((ratios - r) ** 2)]
        s = np.sqrt(gamma(1 / a) / gamma(3 / a))
        return a, left * s, right * s

    rows = []
    for top in range(0, coefficients.shape[0], block):
        for left in range(0, coefficients.shape[1], block):
            b = coefficients[top:top + block, left:left + block]
            a, bl, br = aggd(b.ravel())
            row = [a, (bl + br) / 2]
            for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
                a, bl, br = aggd((b * np.roll(b, shift, axis=(0, 1))).ravel())
                row += [a, (br - bl) * gamma(2 / a) / gamma(1 / a), bl, br]
            rows.append(row)
    return np.array(rows)


def test_vectorised_features_equal_the_per_block_loop(model):
    y = np.round(gaussian_filter(np.random.default_rng(1).uniform(16, 235, (200, 300)), 1.5))
    y = y[:192, :288]
    expected = np.concatenate([loop_features(mscn(y, model.window), 96),
                               loop_features(mscn(imresize_half(y), model.window), 48)], axis=1)
    np.testing.assert_allclose(features(y, model.window), expected, rtol=1e-12, atol=1e-12)


def test_a_flat_image_has_zero_mscn_and_no_niqe(model):
    assert not mscn(np.full((30, 40), 123.0), model.window).any()
    assert math.isnan(niqe(np.full((200, 200, 3), 77, np.uint8), model))


@pytest.mark.parametrize("image, words", [
    (np.zeros((200, 200, 3), np.float32), "uint8"),
    ([[1, 2, 3]], "uint8"),
    (np.zeros((200, 200), np.uint8), "H x W x 3"),
    (np.zeros((200, 200, 4), np.uint8), "H x W x 3"),
    (np.zeros((96, 191, 3), np.uint8), "too small"),
    (np.zeros((95, 500, 3), np.uint8), "too small"),
])
def test_refuses_what_it_cannot_score_in_one_line(model, image, words):
    with pytest.raises(DRBNError) as info:
        niqe(image, model)
    assert words in one_line(info)


def test_missing_or_broken_model_says_what_to_run(monkeypatch, tmp_path):
    monkeypatch.setattr("drbn.weights.search_folders", lambda: [tmp_path / "nowhere"])
    with pytest.raises(DRBNError) as info:
        niqe(np.zeros((200, 200, 3), np.uint8))
    assert "python -m drbn fetch-weights --only niqe" in one_line(info)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DRBNError) as info:
        load_model(tmp_path / "junk.npz")
    assert "fetch-weights --only niqe" in one_line(info)


# ----------------------------------------------------------------------------- evaluate
@pytest.fixture
def released_niqe(monkeypatch, model_path):
    monkeypatch.setenv("DRBN_RELEASED_DIR", str(model_path.parent))
    return model_path


def test_evaluate_niqe_adds_the_output_score_and_its_mean(tmp_path, tiny_checkpoint, released_niqe, capsys):
    target = tmp_path / "scores.csv"
    assert main(["evaluate", "--weights", str(tiny_checkpoint), "--data", "synthetic", "--niqe",
                 "--csv", str(target)]) == 0
    rows = list(csv.DictReader(open(target)))
    assert list(rows[0]) == ["image", "psnr", "ssim", "psnr_shave10", "psnr_gtmean", "niqe"]
    scores = [float(r["niqe"]) for r in rows]
    assert all(s > 0 for s in scores) and scores[2] == pytest.approx((scores[0] + scores[1]) / 2, abs=1e-9)
    assert "NIQE (lower is better" in capsys.readouterr().out


def test_evaluate_unpaired_scores_a_folder_without_targets(tmp_path, tiny_checkpoint, released_niqe, baboon, capsys):
    photos = tmp_path / "photos"
    write_image(photos / "a.png", baboon[:200, :300])
    write_image(photos / "night" / "b.png", baboon[250:450, 100:400])
    target = tmp_path / "unpaired.csv"
    assert main(["evaluate", "--weights", str(tiny_checkpoint), "--unpaired", str(photos), "--csv", str(target)]) == 0
    rows = list(csv.DictReader(open(target)))
    assert list(rows[0]) == ["image", "niqe"]
    assert [r["image"] for r in rows] == ["a.png", "night/b.png", "mean of 2"]
    assert "no targets: NIQE only" in capsys.readouterr().out
    # the photos themselves (no enhancer): the same as scoring each one directly
    rows = score_unpaired(None, [("a", baboon[:200, :300])])
    assert rows == [{"image": "a", "niqe": niqe(baboon[:200, :300])}]


def test_evaluate_unpaired_mistakes_are_one_line(tmp_path, tiny_checkpoint, monkeypatch, released_niqe, capsys):
    write_image(tmp_path / "small" / "tiny.png", np.zeros((50, 50, 3), np.uint8))
    message = _error(capsys, ["evaluate", "--weights", str(tiny_checkpoint), "--unpaired", str(tmp_path / "small"),
                              "--csv", str(tmp_path / "x.csv")])
    assert "tiny.png" in message and "too small for NIQE" in message
    monkeypatch.setattr("drbn.weights.search_folders", lambda: [tmp_path / "nowhere"])
    assert "fetch-weights --only niqe" in _error(
        capsys, ["evaluate", "--weights", str(tiny_checkpoint), "--unpaired", str(tmp_path), "--csv", str(tmp_path / "x.csv")])


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("drbn: error: "), err
    return err[0]
