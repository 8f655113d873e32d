"""Tiled inference and the per-recursion outputs: the same pictures as whole-image inference."""
import numpy as np
import pytest
import torch

from drbn.enhance import (
    OVERLAP, auto_tile, enhance, pad_to_multiple, recursions, tile_windows,
)
from drbn.errors import DRBNError
from drbn.images import to_uint8
from drbn.model import DRBN, DRBNConfig
from drbn.recompose import Recomposer


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return DRBN(DRBNConfig(recursions=2)).eval(), Recomposer().eval()


@pytest.mark.parametrize("size,tile,overlap", [
    (1000, 300, 48), (1032, 300, 48), (900, 768, OVERLAP), (96, 64, 16), (4000, 1024, 160), (64, 64, 16),
])
def test_windows_cover_each_pixel_once_with_the_overlap_inside(size, tile, overlap):
    windows = tile_windows(size, tile, overlap)
    assert windows[0][2] == 0 and windows[-1][3] == size
    for (*_, keep_end), (_, _, next_keep, _) in zip(windows, windows[1:]):
        assert keep_end == next_keep
    for start, end, keep_start, keep_end in windows:
        assert end - start == min(tile, size) and start % 4 == 0 and keep_start % 4 == 0
        assert start <= keep_start < keep_end <= end
        assert keep_start == 0 or keep_start - start >= overlap
        assert keep_end == size or end - keep_end >= overlap


def test_tiles_give_the_whole_image_result_stage_1_and_2(tiny):
    stage1, recomposer = tiny
    image = np.random.default_rng(0).random((150, 203, 3), dtype=np.float32)
    whole = enhance(stage1, image, recomposer, tile=None)
    tiled = enhance(stage1, image, recomposer, tile=96, overlap=40)
    for got, expected in zip(
        (tiled.output, tiled.stage1, *tiled.bands, *tiled.weights),
        (whole.output, whole.stage1, *whole.bands, *whole.weights),
    ):
        assert got.shape == expected.shape == (150, 203, 3)
        np.testing.assert_allclose(got, expected, atol=1e-4)


def test_too_narrow_overlap_shows_and_bad_tiles_are_clear_errors(tiny):
    stage1, _ = tiny
    image = np.random.default_rng(1).random((64, 256, 3), dtype=np.float32)
    whole = enhance(stage1, image, tile=None).output
    assert np.abs(enhance(stage1, image, tile=64, overlap=4).output - whole).max() > 1e-3
    with pytest.raises(DRBNError, match="larger than"):
        enhance(stage1, image, tile=64, overlap=32)
    for bad in (0, -8, "big", 1.5):
        with pytest.raises(DRBNError, match="tile must be"):
            enhance(stage1, image, tile=bad)


def test_auto_tile_keeps_small_images_whole_and_tiles_large_ones():
    assert auto_tile(400, 600) is None
    tile = auto_tile(3000, 4000)
    assert tile is not None and tile % 4 == 0 and tile > 2 * OVERLAP


def test_recursions_of_any_size_match_the_network_on_the_padded_image(tiny):
    stage1, _ = tiny
    image = np.random.default_rng(2).random((37, 50, 3), dtype=np.float32)
    per_t = recursions(stage1, image)
    assert len(per_t) == 2
    for bands in per_t:
        assert bands.full.shape == (37, 50, 3)
        assert bands.half.shape == (19, 25, 3)
        assert bands.quarter.shape == (10, 13, 3)
    y = pad_to_multiple(torch.from_numpy(image).permute(2, 0, 1)[None])
    with torch.no_grad():
        expected = stage1.recursions(y)
    for got, want in zip(per_t, expected):
        np.testing.assert_allclose(got.full, want.full[0, :, :37, :50].permute(1, 2, 0), atol=1e-5)
        np.testing.assert_allclose(got.quarter, want.quarter[0, :, :10, :13].permute(1, 2, 0), atol=1e-5)
    np.testing.assert_allclose(per_t[-1].full, enhance(stage1, image).stage1, atol=1e-6)
    tiled = recursions(stage1, image, tile=48, overlap=16)  # two windows across
    for got, want in zip(tiled, per_t):
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, atol=1e-3)  # a misaligned grid: about 0.1


@pytest.mark.slow
def test_seams_are_invisible_at_the_default_overlap_on_a_1200x900_photo(released_stage1_path, unpaired_dir):
    """The released weights on a real night photo, tiles meeting across and down."""
    from PIL import Image

    from drbn.weights import load_stage1

    stage1 = load_stage1(released_stage1_path)
    with Image.open(unpaired_dir / "DICM" / "32.jpg") as img:
        image = np.asarray(img.convert("RGB").resize((1200, 900), Image.BICUBIC), np.float32) / 255
    whole = to_uint8(enhance(stage1, image, tile=None).output).astype(int)
    tiled = to_uint8(enhance(stage1, image, tile=768).output).astype(int)
    assert np.abs(tiled - whole).max() <= 1
