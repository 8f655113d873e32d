from pathlib import Path

import numpy as np
import pytest
import torch

from drbn.data import (
    describe,
    detect_lol,
    find_lol,
    load_pairs,
    load_unpaired,
    resolve,
    sample_image_batch,
    sample_pair_batch,
)
from drbn.errors import DRBNError
from drbn.images import Pair, write_image

H, W = 20, 24


def tiny(seed: int, h: int = H, w: int = W) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def make_lol_v1(root: Path, train=("1", "2", "10"), test=("5",)) -> Path:
    for split, names in (("our485", train), ("eval15", test)):
        for i, name in enumerate(names):
            write_image(root / split / "low" / f"{name}.png", tiny(i))
            write_image(root / split / "high" / f"{name}.png", tiny(100 + i))
    return root


def make_lol_v2(root: Path, train=("00001", "00002"), test=("00690",)) -> Path:
    for split, names in (("Train", train), ("Test", test)):
        for i, name in enumerate(names):
            write_image(root / split / "Low" / f"low{name}.png", tiny(i))
            write_image(root / split / "Normal" / f"normal{name}.png", tiny(100 + i))
    return root


# ---------------------------------------------------------------------------------------
# LOL layouts


def test_lol_v1_is_detected_and_matched_by_name(tmp_path):
    root = make_lol_v1(tmp_path / "LOL")
    assert detect_lol(root) == ("LOL-v1", root)
    found = find_lol(root)
    assert [name for name, _, _ in found["train"]] == ["1", "2", "10"]  # numbers sort as numbers
    assert [name for name, _, _ in found["test"]] == ["5"]
    name, low, high = found["train"][2]
    assert low == root / "our485/low/10.png" and high == root / "our485/high/10.png"


def test_lol_v2_prefixes_are_matched(tmp_path):
    root = make_lol_v2(tmp_path / "LOL-v2" / "Real_captured")
    assert detect_lol(root) == ("LOL-v2-real", root)
    found = find_lol(root)
    assert [(n, lo.name, hi.name) for n, lo, hi in found["train"]] == [
        ("00001", "low00001.png", "normal00001.png"),
        ("00002", "low00002.png", "normal00002.png"),
    ]
    pairs = load_pairs(root, "test")
    assert len(pairs) == 1 and pairs[0].name == "00690"
    np.testing.assert_array_equal(pairs[0].low, tiny(0))
    np.testing.assert_array_equal(pairs[0].high, tiny(100))


def test_parent_folder_with_one_dataset_is_accepted(tmp_path):
    make_lol_v2(tmp_path / "LOL-v2" / "Real_captured")
    layout, folder = detect_lol(tmp_path / "LOL-v2")
    assert (layout, folder.name) == ("LOL-v2-real", "Real_captured")
    assert describe(tmp_path / "LOL-v2") == f"LOL-v2-real at {tmp_path / 'LOL-v2' / 'Real_captured'}"


def test_parent_folder_with_two_datasets_asks_for_one(tmp_path):
    make_lol_v2(tmp_path / "LOL-v2" / "Real_captured")
    make_lol_v2(tmp_path / "LOL-v2" / "Synthetic")
    assert detect_lol(tmp_path / "LOL-v2" / "Synthetic")[0] == "LOL-v2-synthetic"
    with pytest.raises(DRBNError, match="several LOL datasets.*Real_captured.*Synthetic.*pass one"):
        detect_lol(tmp_path / "LOL-v2")


def test_load_pairs_reads_uint8_pairs_and_limit(tmp_path):
    root = make_lol_v1(tmp_path)
    pairs = load_pairs(str(root), "train")
    assert [p.name for p in pairs] == ["1", "2", "10"]
    assert pairs[0].low.dtype == np.uint8 and pairs[0].low.shape == (H, W, 3)
    np.testing.assert_array_equal(pairs[1].high, tiny(101))
    np.testing.assert_array_equal(pairs[1].y, tiny(1).astype(np.float32) / 255.0)
    assert [p.name for p in load_pairs(root, "train", limit=2)] == ["1", "2"]
    assert describe(root) == f"LOL-v1 at {root}"


def test_unmatched_files_are_named(tmp_path):
    root = make_lol_v2(tmp_path, train=("00001", "00002", "00003"))
    (root / "Train/Normal/normal00002.png").unlink()
    write_image(root / "Train/Normal/normal00099.png", tiny(0))
    with pytest.raises(DRBNError) as err:
        find_lol(root)
    message = str(err.value)
    assert "LOL-v2-real train" in message and "\n" not in message
    assert "1 in" in message and "low00002.png" in message and "normal00099.png" in message


def test_many_unmatched_files_are_counted(tmp_path):
    root = make_lol_v1(tmp_path)
    for i in range(7):
        write_image(root / "our485/low" / f"extra{i}.png", tiny(i))
    with pytest.raises(DRBNError, match=r"7 in .*extra0.png.*extra4.png, \.\.\. \(7 in all\)"):
        find_lol(root)


def test_size_mismatch_is_reported_by_pair_name(tmp_path):
    root = make_lol_v1(tmp_path)
    write_image(root / "our485/high/2.png", tiny(0, H, W + 4))
    with pytest.raises(DRBNError, match=r"pair '2'.*20x24.*20x28.*fix or remove"):
        load_pairs(root, "train")
    load_pairs(root, "test")  # the other split is fine


def test_not_a_lol_folder_lists_expected_subfolders(tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(DRBNError, match=r"not a LOL dataset folder.*our485/low.*eval15/high.*Train/Low.*Test/Normal"):
        load_pairs(tmp_path, "train")


def test_partial_layout_names_the_missing_subfolders(tmp_path):
    root = make_lol_v1(tmp_path)
    (root / "eval15/high/5.png").unlink()
    (root / "eval15/high").rmdir()
    with pytest.raises(DRBNError, match=r"looks like LOL-v1 but lacks the sub-folders eval15/high;"):
        detect_lol(root)


def test_missing_path_file_path_and_empty_folder(tmp_path):
    with pytest.raises(DRBNError, match="data folder not found"):
        load_pairs(tmp_path / "nope", "train")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DRBNError, match="is a file"):
        detect_lol(tmp_path / "file.txt")
    root = make_lol_v1(tmp_path / "LOL")
    (root / "eval15/low/5.png").unlink()
    with pytest.raises(DRBNError, match="LOL-v1 test low-light folder .* holds no images"):
        find_lol(root)


def test_corrupt_image_is_a_drbn_error(tmp_path):
    root = make_lol_v1(tmp_path)
    (root / "eval15/low/5.png").write_bytes(b"not a png at all")
    with pytest.raises(DRBNError, match=r"cannot read .*5.png as an image"):
        load_pairs(root, "test")


def test_unknown_split(tmp_path):
    with pytest.raises(DRBNError, match="unknown split 'valid'"):
        load_pairs(make_lol_v1(tmp_path), "valid")


def test_pair_checks_its_arrays():
    with pytest.raises(DRBNError, match=r"pair 'a'.*20x24.*24x20"):
        Pair("a", tiny(0), tiny(1, W, H))
    with pytest.raises(DRBNError, match=r"pair 'b'.*uint8"):
        Pair("b", tiny(0).astype(np.float32), tiny(1))


# ---------------------------------------------------------------------------------------
# Random patches


def coordinate_pairs(n: int = 3, h: int = 40, w: int = 48) -> list[Pair]:
    """low encodes (row, column, pair index) per pixel; high = 255 - low."""
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    pairs = []
    for i in range(n):
        low = np.stack([rows, cols, np.full_like(rows, 50 * i)], axis=2).astype(np.uint8)
        pairs.append(Pair(f"p{i}", low, 255 - low))
    return pairs


def dihedral_match(patch: np.ndarray, source: np.ndarray, crop: int) -> tuple[bool, bool, bool]:
    """Which (hflip, vflip, transpose) turns a crop of ``source`` into ``patch``."""
    for hflip in (False, True):
        for vflip in (False, True):
            for transpose in (False, True):
                p = patch.transpose(1, 0, 2) if transpose else patch  # undo in reverse order
                p = p[::-1] if vflip else p
                p = p[:, ::-1] if hflip else p
                top, left = int(p[..., 0].min()), int(p[..., 1].min())
                if np.array_equal(p, source[top : top + crop, left : left + crop]):
                    return hflip, vflip, transpose
    raise AssertionError("patch is not a flipped/transposed crop of its source")


def test_pair_batch_shapes_and_range():
    y, x = sample_pair_batch(coordinate_pairs(), 5, 16, np.random.default_rng(0))
    assert y.shape == x.shape == (5, 3, 16, 16)
    assert y.dtype == x.dtype == torch.float32
    assert 0 <= float(y.min()) and float(y.max()) <= 1
    assert y.is_contiguous() and x.is_contiguous()


def test_pair_batch_crops_low_and_high_alike_with_every_augmentation():
    pairs = coordinate_pairs()
    y, x = sample_pair_batch(pairs, 64, 16, np.random.default_rng(1))
    low = torch.round(y * 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    high = torch.round(x * 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(high, 255 - low)  # the same crop and flips in both
    seen, used = set(), set()
    for patch in low:
        index = int(patch[0, 0, 2]) // 50
        used.add(index)
        seen.add(dihedral_match(patch, pairs[index].low, 16))
    assert len(seen) == 8 and used == {0, 1, 2}


def test_pair_batch_is_deterministic_for_the_generator():
    pairs = coordinate_pairs()
    a = sample_pair_batch(pairs, 4, 16, np.random.default_rng([3, 100]))
    b = sample_pair_batch(pairs, 4, 16, np.random.default_rng([3, 100]))
    c = sample_pair_batch(pairs, 4, 16, np.random.default_rng([3, 101]))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a[0], c[0])


def test_crop_larger_than_an_image_names_it():
    pairs = coordinate_pairs() + [Pair("small", tiny(0), tiny(1))]
    with pytest.raises(DRBNError, match=r"pair 'small' is 20x24 \(HxW\), smaller than the 32x32 crop; use a smaller crop"):
        sample_pair_batch(pairs, 2, 32, np.random.default_rng(0))
    with pytest.raises(DRBNError, match="multiple of 4"):
        sample_pair_batch(pairs, 2, 10, np.random.default_rng(0))
    with pytest.raises(DRBNError, match="no pair"):
        sample_pair_batch([], 2, 16, np.random.default_rng(0))


# ---------------------------------------------------------------------------------------
# Unpaired low-light photos


def test_load_unpaired_and_sample(tmp_path):
    write_image(tmp_path / "a.png", tiny(0, 37, 41))  # odd sizes are fine
    write_image(tmp_path / "b.jpg", tiny(1, 50, 33))
    images = load_unpaired(tmp_path)
    assert [name for name, _ in images] == ["a.png", "b.jpg"]
    assert images[0][1].shape == (37, 41, 3) and images[0][1].dtype == np.uint8
    np.testing.assert_array_equal(images[0][1], tiny(0, 37, 41))
    batch = sample_image_batch(images, 3, 32, np.random.default_rng(0))
    assert batch.shape == (3, 3, 32, 32) and batch.dtype == torch.float32
    again = sample_image_batch(images, 3, 32, np.random.default_rng(0))
    torch.testing.assert_close(batch, again, rtol=0, atol=0)
    with pytest.raises(DRBNError, match=r"image 'b.jpg' is 50x33 \(HxW\), smaller than the 36x36 crop"):
        sample_image_batch(images, 3, 36, np.random.default_rng(0))


def test_unpaired_folder_reads_its_subfolders(tmp_path):
    write_image(tmp_path / "DICM" / "01.jpg", tiny(0, 40, 40))
    write_image(tmp_path / "LIME" / "01.png", tiny(1, 40, 44))
    write_image(tmp_path / "top.png", tiny(2, 40, 40))
    assert [name for name, _ in load_unpaired(tmp_path)] == ["DICM/01.jpg", "LIME/01.png", "top.png"]


def test_unpaired_folder_errors(tmp_path):
    with pytest.raises(DRBNError, match="unpaired low-light folder not found"):
        load_unpaired(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DRBNError, match="holds no images"):
        load_unpaired(tmp_path / "empty")
    with pytest.raises(DRBNError, match="high-quality photo folder .* holds no images"):
        load_unpaired(tmp_path / "empty", what="high-quality photo folder")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(DRBNError, match=r"cannot read .*x.jpg"):
        load_unpaired(tmp_path / "bad")


@pytest.mark.parametrize("name, count", [("DICM", 64), ("LIME", 6), (".", 70)])
def test_real_unpaired_sets(unpaired_dir, name, count):
    images = load_unpaired(unpaired_dir / name)
    assert len(images) == count
    assert all(image.dtype == np.uint8 and image.ndim == 3 for _, image in images)
    batch = sample_image_batch(images, 2, 128, np.random.default_rng(0))
    assert batch.shape == (2, 3, 128, 128)
    assert 0.0 < np.median([image.mean() / 255 for _, image in images]) < 0.35  # mostly low-light photos


def test_auto_finds_a_lol_folder_inside_the_repository(tmp_path, monkeypatch):
    monkeypatch.setattr("drbn.data.REPO_LOL", tmp_path / "LOL")
    assert resolve("auto") == "synthetic" and describe("auto").startswith("synthetic")
    root = make_lol_v1(tmp_path / "LOL")
    assert resolve("auto") == root and resolve(None) == root
    assert describe("auto") == f"LOL-v1 at {root}"
    assert [p.name for p in load_pairs("auto", "test")] == ["5"]
    assert resolve("synthetic") == "synthetic"  # the synthetic set stays reachable by name
    (root / "eval15" / "high" / "5.png").unlink()
    (root / "eval15" / "high").rmdir()
    with pytest.raises(DRBNError, match="lacks the sub-folders"):
        load_pairs("auto", "test")


def test_hold_out_keeps_every_nth_training_pair_for_validation():
    from drbn.data import hold_out

    pairs = load_pairs("synthetic", "train")
    train, held = hold_out(pairs, 10)
    assert [p.name for p in held] == [p.name for p in pairs[::10]]
    assert len(train) + len(held) == len(pairs) and not {p.name for p in held} & {p.name for p in train}
    assert hold_out(pairs, 0) == (pairs, [])
    with pytest.raises(DRBNError, match="none to train on"):
        hold_out(pairs[:1], 10)
