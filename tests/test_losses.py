import numpy as np
import pytest
import torch
import torchvision
from skimage.metrics import structural_similarity
from torchvision.models.vgg import cfgs, make_layers

from drbn.errors import DRBNError
from drbn.losses import (
    FAKE_TARGETS,
    REAL_TARGETS,
    VGG16_FILENAME,
    BandLoss,
    VGGPerceptualLoss,
    find_vgg16_weights,
    gaussian_window,
    lsgan_loss,
    ssim,
    ssim_map,
    uniform_targets,
)
from drbn.model import BandOutputs


def structured_pair(h=40, w=48):
    """A smooth gradient with a square, and a noisy, brighter copy of it (float64)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([xx, yy, 0.5 * (xx + yy)], axis=-1)
    base[10:25, 12:30] += 0.3
    other = np.clip(0.8 * base + 0.1 + 0.05 * rng.standard_normal(base.shape), 0, 1)
    return np.clip(base, 0, 1), other


def random_pair(h=32, w=36):
    rng = np.random.default_rng(1)
    a = rng.random((h, w, 3))
    return a, np.clip(a + 0.2 * rng.standard_normal(a.shape), 0, 1)


def to_batch(image):
    return torch.from_numpy(image).permute(2, 0, 1)[None]


# --- SSIM -------------------------------------------------------------------------------


def test_gaussian_window_is_normalised_and_peaked():
    w = gaussian_window()
    assert w.shape == (11, 11)
    assert abs(w.sum().item() - 1) < 1e-12
    assert w.argmax().item() == 5 * 11 + 5
    # σ = 1.5: the centre-to-neighbour ratio of the 1-D profile is exp(1 / (2 σ²))
    assert w[5, 5] / w[5, 4] == pytest.approx(np.exp(1 / 4.5))


@pytest.mark.parametrize("pair", [structured_pair, random_pair])
def test_ssim_valid_region_matches_skimage(pair):
    a, b = pair()
    reference = structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        data_range=1, channel_axis=-1,
    )
    ours = ssim_map(to_batch(a), to_batch(b))[..., 5:-5, 5:-5].mean().item()
    assert ours == pytest.approx(reference, abs=1e-4)
    assert reference < 0.95  # a pair that is not trivially similar


def test_ssim_counts_zero_padded_borders():
    # The released SSIM includes the border pixels, so it differs from the cropped mean.
    a, b = structured_pair()
    values = ssim_map(to_batch(a), to_batch(b))
    assert values.shape == (1, 3, 40, 48)
    assert ssim(to_batch(a), to_batch(b)).item() == pytest.approx(values.mean().item())
    assert abs(values.mean().item() - values[..., 5:-5, 5:-5].mean().item()) > 1e-3


def test_ssim_of_identical_images_is_one():
    x = torch.rand(2, 3, 24, 24, dtype=torch.float64)
    assert ssim(x, x).item() == pytest.approx(1.0, abs=1e-6)
    assert ssim(x, x.flip(-1)).item() < 0.9


def test_ssim_reduction_none_is_per_image():
    x = torch.rand(3, 3, 16, 16, dtype=torch.float64)
    y = x.clone()
    y[1] = torch.rand(3, 16, 16, dtype=torch.float64)
    per_image = ssim(x, y, reduction="none")
    assert per_image.shape == (3,)
    assert per_image[0].item() == pytest.approx(1.0) and per_image[2].item() == pytest.approx(1.0)
    assert per_image[1].item() < 0.5
    assert per_image.mean().item() == pytest.approx(ssim(x, y).item())
    with pytest.raises(DRBNError, match="reduction"):
        ssim(x, y, reduction="sum")


def test_ssim_data_range_scales_the_constants():
    a, b = (to_batch(v) for v in random_pair(16, 16))
    assert ssim(255 * a, 255 * b, data_range=255).item() == pytest.approx(ssim(a, b).item())
    # On a dim pair the constants dominate: with data_range 1 it looks almost identical.
    dim = ssim(0.02 * a, 0.02 * b).item()
    assert dim > 0.98 and dim - ssim(0.02 * a, 0.02 * b, data_range=0.02).item() > 0.1


def test_ssim_shape_mismatch_is_a_clear_error():
    with pytest.raises(DRBNError, match=r"\(1, 3, 8, 8\).*\(1, 3, 8, 12\)"):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 12))


# --- Band loss --------------------------------------------------------------------------


def bands_of(full):
    """Bands whose half and quarter are decimations of ``full``."""
    return BandOutputs(full, full[..., ::2, ::2], full[..., ::4, ::4])


def test_band_loss_is_minus_the_sum_of_three_ssims():
    torch.manual_seed(0)
    target = torch.rand(2, 3, 32, 32)
    out = BandOutputs(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 16, 16), torch.rand(2, 3, 8, 8))
    expected = -(
        ssim(out.full, target)
        + ssim(out.half, target[..., ::2, ::2])
        + ssim(out.quarter, target[..., ::4, ::4])
    )
    torch.testing.assert_close(BandLoss()(out, target), expected)
    assert BandLoss()(bands_of(target), target).item() == pytest.approx(-3.0, abs=1e-5)


def test_band_loss_targets_are_decimated_not_filtered():
    torch.manual_seed(0)
    target = torch.rand(1, 3, 32, 32)
    pooled = torch.nn.functional.avg_pool2d(target, 2)
    out = BandOutputs(target, pooled, target[..., ::4, ::4])
    loss = BandLoss((0, 1, 0))
    assert loss(out, target).item() > -0.9  # a low-passed half band is not the target
    assert loss(bands_of(target), target).item() == pytest.approx(-1.0, abs=1e-5)


def test_band_loss_weights():
    torch.manual_seed(0)
    target = torch.rand(1, 3, 32, 32)
    good = bands_of(target.clone())
    bad_quarter = good._replace(quarter=torch.rand(1, 3, 8, 8))

    single = BandLoss((1, 0, 0))  # RBL-v1: only the full-resolution term
    assert single(bad_quarter, target).item() == pytest.approx(-1.0, abs=1e-5)
    assert BandLoss()(bad_quarter, target).item() > -2.9  # the default sees the bad band

    # A zero-weight band is not even looked at (an ablation may not produce it).
    no_quarter = good._replace(quarter=torch.rand(1, 3, 5, 5))
    assert single(no_quarter, target).item() == pytest.approx(-1.0, abs=1e-5)

    out = BandOutputs(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 16, 16), torch.rand(1, 3, 8, 8))
    torch.testing.assert_close(BandLoss.paper(0.5, 0.25)(out, target), BandLoss((1, 0.5, 0.25))(out, target))
    assert BandLoss.paper(0.5, 0.25)(out, target).item() != pytest.approx(BandLoss()(out, target).item())


def test_band_loss_rejects_bands_that_do_not_fit_the_target():
    target = torch.rand(1, 3, 32, 32)
    out = BandOutputs(target, torch.rand(1, 3, 8, 8), target[..., ::4, ::4])
    with pytest.raises(DRBNError, match="decimated by 2"):
        BandLoss()(out, target)
    with pytest.raises(DRBNError, match="three weights"):
        BandLoss((1, 1))


def test_band_loss_trains_a_toy_estimate():
    torch.manual_seed(0)
    target = torch.rand(1, 3, 32, 32)
    estimate = torch.nn.Parameter(torch.rand(1, 3, 32, 32))
    optimizer = torch.optim.Adam([estimate], lr=0.05)
    loss_fn = BandLoss()
    losses = []
    for _ in range(20):
        loss = loss_fn(bands_of(estimate), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert estimate.grad is not None and estimate.grad.abs().sum() > 0
    assert losses[-1] < losses[0] - 0.5


# --- Perceptual loss --------------------------------------------------------------------


@pytest.fixture
def no_user_cache(tmp_path, monkeypatch):
    """Point torch.hub and the env var away from any real cache."""
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    monkeypatch.delenv("DRBN_VGG16_WEIGHTS", raising=False)
    return hub


@pytest.fixture(scope="module")
def random_vgg_state():
    """A randomly initialised torchvision VGG16 state dict, classifier weights left out.

    The 124 M classifier parameters would make every test write half a gigabyte; the loader
    never reads them. Keys and shapes are checked against torchvision's own VGG16.
    """
    torch.manual_seed(0)
    features = make_layers(cfgs["D"])  # what torchvision.models.vgg16 uses as .features
    state = {"features." + k: v for k, v in features.state_dict().items()}
    state["classifier.6.bias"] = torch.zeros(1000)  # a non-feature key, as in the real file
    with torch.device("meta"):
        reference = torchvision.models.vgg16(weights=None).state_dict()
    assert all(reference[k].shape == v.shape for k, v in state.items())
    assert {k for k in reference if k.startswith("features.")} <= set(state)
    return state


@pytest.fixture
def vgg_file(no_user_cache, random_vgg_state):
    """A structural stand-in for torchvision's VGG16 file, in the (temporary) hub cache."""
    path = no_user_cache / "checkpoints" / VGG16_FILENAME
    path.parent.mkdir(parents=True)
    torch.save(random_vgg_state, path)
    return path


def test_vgg_weights_are_looked_up_path_then_env_then_cache(vgg_file, tmp_path, monkeypatch):
    assert find_vgg16_weights() == vgg_file
    other = tmp_path / "elsewhere.pth"
    other.write_bytes(vgg_file.read_bytes())
    monkeypatch.setenv("DRBN_VGG16_WEIGHTS", str(other))
    assert find_vgg16_weights() == other
    assert find_vgg16_weights(vgg_file) == vgg_file
    assert find_vgg16_weights(tmp_path / "missing.pth") is None


def test_perceptual_loss_values_and_gradients(vgg_file, random_vgg_state):
    loss_fn = VGGPerceptualLoss()
    torch.testing.assert_close(loss_fn.features[0].weight, random_vgg_state["features.0.weight"])
    torch.testing.assert_close(loss_fn.features[7].bias, random_vgg_state["features.7.bias"])
    assert all(not p.requires_grad for p in loss_fn.parameters())
    assert not loss_fn.train().features.training

    torch.manual_seed(0)
    target = torch.rand(1, 3, 16, 16)
    assert loss_fn(target, target.clone()).item() == 0.0
    output = torch.rand(1, 3, 16, 16, requires_grad=True)
    loss = loss_fn(output, target)
    assert loss.item() > 0
    loss.backward()
    assert output.grad is not None and output.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss_fn.parameters())


def test_perceptual_loss_normalize_changes_the_value(vgg_file):
    torch.manual_seed(0)
    a, b = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    plain = VGGPerceptualLoss()(a, b).item()
    normalised = VGGPerceptualLoss(normalize=True)(a, b).item()
    assert normalised != pytest.approx(plain, rel=1e-3)


def test_missing_vgg_weights_is_a_clear_error(no_user_cache):
    with pytest.raises(DRBNError, match=f"{VGG16_FILENAME}.*IMAGENET1K_V1"):
        VGGPerceptualLoss()


def test_missing_explicit_vgg_file_names_it(no_user_cache, tmp_path):
    with pytest.raises(DRBNError, match="nowhere.pth"):
        VGGPerceptualLoss(tmp_path / "nowhere.pth")


def test_non_vgg_files_are_clear_errors(no_user_cache, tmp_path):
    not_vgg = tmp_path / "not_vgg.pth"
    torch.save({"conv.weight": torch.zeros(3)}, not_vgg)
    with pytest.raises(DRBNError, match="not a VGG16 state dict"):
        VGGPerceptualLoss(not_vgg)
    wrong_shape = tmp_path / "wrong_shape.pth"
    torch.save({"features.0.weight": torch.zeros(3)}, wrong_shape)
    with pytest.raises(DRBNError, match="not a VGG16 state dict"):
        VGGPerceptualLoss(wrong_shape)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(DRBNError, match="not a readable"):
        VGGPerceptualLoss(garbage)


# --- Adversarial loss -------------------------------------------------------------------


def test_lsgan_loss_is_mse_to_the_target():
    prediction = torch.tensor([0.2, 0.9])
    assert lsgan_loss(prediction, 1.0).item() == pytest.approx((0.8**2 + 0.1**2) / 2)
    targets = torch.tensor([0.0, 1.0])
    assert lsgan_loss(prediction, targets).item() == pytest.approx((0.2**2 + 0.1**2) / 2)


def test_uniform_targets_cover_the_released_ranges():
    g = torch.Generator().manual_seed(0)
    real = uniform_targets(1000, *REAL_TARGETS, generator=g)
    fake = uniform_targets(1000, *FAKE_TARGETS, generator=g)
    assert real.min() >= 0.7 and real.max() < 1.2 and real.max() > 1.1 and real.min() < 0.8
    assert fake.min() >= 0.0 and fake.max() < 0.3 and fake.max() > 0.2


def test_vgg_filename_is_torchvisions():
    url = torchvision.models.VGG16_Weights.IMAGENET1K_V1.url
    assert url.rsplit("/", 1)[-1] == VGG16_FILENAME
