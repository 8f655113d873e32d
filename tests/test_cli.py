"""The command line: it works end to end, and every predictable mistake is one line, exit 2."""
import csv
import subprocess
import sys

import numpy as np
import pytest
import torch

from drbn.checkpoint import STAGE1, save_checkpoint
from drbn.cli import main
from drbn.images import read_image, write_image
from drbn.model import DRBN, DRBNConfig


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = DRBN(DRBNConfig(recursions=1))
    path = tmp_path_factory.mktemp("ckpt") / "stage1.pt"
    save_checkpoint(path, {"kind": STAGE1, "model": model.state_dict(),
                           "model_config": {"recursions": 1}, "step": 0})
    return path


def error_line(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("drbn: error: "), err
    return err[0]


def test_enhance_writes_pngs_for_files_and_folders(tmp_path, tiny_checkpoint, capsys):
    folder = tmp_path / "in"
    write_image(folder / "a.png", np.full((10, 13, 3), 0.1, np.float32))
    write_image(tmp_path / "b.jpg", np.full((8, 8, 3), 0.2, np.float32))
    assert main(["enhance", str(folder), str(tmp_path / "b.jpg"), "-o", str(tmp_path / "out"),
                 "--weights", str(tiny_checkpoint)]) == 0
    assert read_image(tmp_path / "out" / "a.png").shape == (10, 13, 3)
    assert read_image(tmp_path / "out" / "b.png").shape == (8, 8, 3)


def test_enhance_with_released_weights_and_bands(tmp_path, released_stage1_path, released_recomposer_path):
    write_image(tmp_path / "in" / "x.png", np.full((21, 30, 3), 0.05, np.float32))
    assert main(["enhance", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--weights",
                 str(released_stage1_path), "--stage2", str(released_recomposer_path), "--save-bands"]) == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["x.png", "x_band1.png", "x_band2.png", "x_band3.png", "x_w1.png", "x_w2.png", "x_w3.png"]


def test_enhance_mistakes(tmp_path, tiny_checkpoint, capsys):
    image = write_image(tmp_path / "x.png", np.zeros((8, 8, 3), np.float32))
    out = str(tmp_path / "out")
    assert "not found" in error_line(capsys, ["enhance", str(tmp_path / "nope"), "-o", out, "--weights", str(tiny_checkpoint)])
    assert "no stage-1 weights" in error_line(capsys, ["enhance", str(image), "-o", out])
    assert "weights file not found" in error_line(capsys, ["enhance", str(image), "-o", out, "--weights", str(tmp_path / "w.pt")])
    (tmp_path / "junk.pt").write_text("junk")
    assert "not a readable PyTorch checkpoint" in error_line(
        capsys, ["enhance", str(image), "-o", out, "--weights", str(tmp_path / "junk.pt")])
    (tmp_path / "notes.txt").write_text("text")
    assert "is not an image" in error_line(capsys, ["enhance", str(tmp_path / "notes.txt"), "-o", out, "--weights", str(tiny_checkpoint)])
    (tmp_path / "broken.png").write_bytes(b"\x89PNG broken")
    assert "corrupt" in error_line(capsys, ["enhance", str(tmp_path / "broken.png"), "-o", out, "--weights", str(tiny_checkpoint)])
    (tmp_path / "empty").mkdir()
    assert "holds no images" in error_line(capsys, ["enhance", str(tmp_path / "empty"), "-o", out, "--weights", str(tiny_checkpoint)])
    assert "expected a drbn-stage2 checkpoint" in error_line(
        capsys, ["enhance", str(image), "-o", out, "--stage2", str(tiny_checkpoint)])


def test_wrong_model_checkpoint_is_a_clear_error(tmp_path, capsys):
    wrong = save_checkpoint(tmp_path / "wrong.pt", {"kind": STAGE1, "model": DRBN(DRBNConfig(recursions=1)).state_dict(),
                                                    "model_config": {"recursions": 2}, "step": 0})
    image = write_image(tmp_path / "x.png", np.zeros((8, 8, 3), np.float32))
    assert "does not fit this model" in error_line(capsys, ["enhance", str(image), "-o", str(tmp_path), "--weights", str(wrong)])


def test_train_and_evaluate_mistakes(tmp_path, capsys):
    assert "not found" in error_line(capsys, ["train-stage1", "--preset", "smoke", "--data", str(tmp_path / "LOL"), "--out", str(tmp_path)])
    assert "weights file not found" in error_line(capsys, ["train-stage2", "--stage1", str(tmp_path / "s1.pt"), "--out", str(tmp_path)])
    assert "no stage-1 weights" in error_line(capsys, ["evaluate", "--data", "auto"])


def test_evaluate_writes_a_labelled_csv(tmp_path, tiny_checkpoint, capsys):
    target = tmp_path / "scores.csv"
    assert main(["evaluate", "--weights", str(tiny_checkpoint), "--csv", str(target)]) == 0
    rows = list(csv.DictReader(open(target)))
    assert [r["image"] for r in rows] == ["chelsea", "coffee", "mean of 2"]
    assert set(rows[0]) == {"image", "PSNR (full image)", "SSIM (full image)", "PSNR (10-px border shaved, as released)"}
    mean = float(rows[2]["PSNR (full image)"])
    assert mean == pytest.approx((float(rows[0]["PSNR (full image)"]) + float(rows[1]["PSNR (full image)"])) / 2)


def test_module_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "drbn", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "enhance" in result.stdout
