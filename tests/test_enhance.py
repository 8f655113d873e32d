"""Whole-image inference: any size, any common image format, outputs cropped back."""
import numpy as np
import pytest
import torch
from PIL import Image

from drbn.enhance import enhance, pad_to_multiple
from drbn.errors import DRBNError
from drbn.images import list_images, read_image, write_image
from drbn.model import DRBN, DRBNConfig
from drbn.recompose import Recomposer


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return DRBN(DRBNConfig(recursions=1)).eval(), Recomposer().eval()


@pytest.mark.parametrize("size", [(17, 30), (32, 32), (3, 5), (1, 1), (45, 61)])
def test_any_size_comes_back_at_its_own_size(tiny, size):
    stage1, recomposer = tiny
    image = np.random.default_rng(0).random((*size, 3), dtype=np.float32)
    result = enhance(stage1, image, recomposer)
    assert result.output.shape == result.stage1.shape == (*size, 3)
    assert all(b.shape == (*size, 3) for b in result.bands)
    assert all(w.shape == (*size, 3) for w in result.weights)
    assert np.isfinite(result.output).all()


def test_padding_does_not_change_a_multiple_of_four_image(tiny):
    stage1, _ = tiny
    image = np.random.default_rng(1).random((32, 48, 3), dtype=np.float32)
    y = torch.from_numpy(image).permute(2, 0, 1)[None]
    assert pad_to_multiple(y) is y
    with torch.no_grad():
        expected = stage1(y).full[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(enhance(stage1, image).output, expected, atol=1e-5)


def test_bands_of_the_enhanced_image_sum_to_the_stage1_output(tiny):
    stage1, recomposer = tiny
    image = np.random.default_rng(2).random((24, 40, 3), dtype=np.float32)
    result = enhance(stage1, image, recomposer)
    np.testing.assert_allclose(sum(result.bands), result.stage1, atol=1e-5)


def test_released_model_on_real_photos_of_odd_sizes(released_stage1_path, unpaired_dir):
    from drbn.weights import load_stage1

    stage1 = load_stage1(released_stage1_path)
    low = read_image(unpaired_dir / "LIME" / "6.png")  # 326 x 326: not a multiple of 4
    result = enhance(stage1, low)
    assert result.output.shape == low.shape == (326, 326, 3)
    assert result.output.mean() > 3 * low.mean()  # it brightens a real night photo


def save(path, array, mode=None):
    Image.fromarray(array, mode=mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


def test_read_image_handles_gray_rgba_16bit_and_palette(tmp_path):
    gray = save(tmp_path / "g.png", np.full((4, 6), 128, np.uint8))
    rgba = save(tmp_path / "a.png", np.full((4, 6, 4), 200, np.uint8))
    deep = tmp_path / "d.png"
    Image.fromarray(np.full((4, 6), 65535 // 3, np.uint16)).save(deep)
    pal = tmp_path / "p.png"
    Image.fromarray(np.full((4, 6, 3), 90, np.uint8)).convert("P", palette=Image.Palette.ADAPTIVE).save(pal)
    for path, value in ((gray, 128 / 255), (rgba, 200 / 255), (deep, 1 / 3), (pal, 90 / 255)):
        image = read_image(path)
        assert image.shape == (4, 6, 3) and image.dtype == np.float32, path
        np.testing.assert_allclose(image, value, atol=1e-4)


def test_write_image_round_trips_8_bit(tmp_path):
    image = np.random.default_rng(3).random((5, 7, 3)).astype(np.float32)
    path = write_image(tmp_path / "x.png", image)
    np.testing.assert_allclose(read_image(path), np.rint(image * 255) / 255, atol=1e-6)


def test_bad_images_and_folders_are_clear_errors(tmp_path):
    corrupt = tmp_path / "bad.png"
    corrupt.write_bytes(b"\x89PNG not really")
    with pytest.raises(DRBNError, match="corrupt or not an image"):
        read_image(corrupt)
    with pytest.raises(DRBNError, match="not found"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(DRBNError, match="holds no images"):
        list_images(make_empty(tmp_path))
    with pytest.raises(DRBNError, match="not found"):
        list_images(tmp_path / "nowhere")
    with pytest.raises(DRBNError, match="is a file"):
        list_images(corrupt)


def make_empty(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "notes.txt").write_text("no images here")
    return folder
