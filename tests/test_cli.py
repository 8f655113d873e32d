"""The command line: it works end to end, and every predictable mistake is one line, exit 2."""
import csv
import subprocess
import sys

import numpy as np
import pytest

from drbn.cli import main
from drbn.images import read_image, write_image
from drbn.model import DRBN, DRBNConfig
from drbn.weights import STAGE1, save_checkpoint


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
    assert "does not fit this model" in error_line(capsys, ["enhance", str(image), "-o", str(tmp_path / "out"), "--weights", str(wrong)])


def test_train_and_evaluate_mistakes(tmp_path, capsys):
    assert "not found" in error_line(capsys, ["train-stage1", "--preset", "smoke", "--data", str(tmp_path / "LOL"), "--out", str(tmp_path)])
    assert "weights file not found" in error_line(capsys, ["train-stage2", "--stage1", str(tmp_path / "s1.pt"), "--out", str(tmp_path)])
    assert "no stage-1 weights" in error_line(capsys, ["evaluate", "--data", "auto"])


def test_evaluate_writes_a_short_keyed_csv_and_a_labelled_table(tmp_path, tiny_checkpoint, capsys):
    target = tmp_path / "scores.csv"
    assert main(["evaluate", "--weights", str(tiny_checkpoint), "--data", "synthetic", "--csv", str(target)]) == 0
    rows = list(csv.DictReader(open(target)))
    assert [r["image"] for r in rows] == ["chelsea", "coffee", "mean of 2"]
    assert list(rows[0]) == ["image", "psnr", "ssim", "psnr_shave10", "psnr_gtmean"]
    mean = float(rows[2]["psnr"])
    assert mean == pytest.approx((float(rows[0]["psnr"]) + float(rows[1]["psnr"])) / 2, abs=1e-9)
    out = capsys.readouterr().out
    assert out.startswith("data: synthetic (") and "PSNR (full image)" in out and "PSNR after GT-mean gain" in out


def test_module_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "drbn", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "enhance" in result.stdout


def test_one_command_line_with_every_command():
    result = subprocess.run([sys.executable, "-m", "drbn", "--help"], capture_output=True, text=True)
    for command in ("enhance", "train-stage1", "train-stage2", "evaluate", "ablate", "reproduce", "fetch-weights"):
        assert command in result.stdout, command
    alias = subprocess.run([sys.executable, "-m", "drbn.reproduce", "--help"], capture_output=True, text=True)
    assert alias.returncode == 0 and "--unpaired" in alias.stdout


def test_ablate_calls_the_runner_with_the_flags(monkeypatch, capsys):
    from drbn import experiments

    calls = []
    monkeypatch.setattr(experiments, "run_experiments", lambda *a, **k: calls.append((a, k)) or [])
    assert main(["ablate", "--preset", "smoke-ablation", "--data", "synthetic", "--out", "x", "--seeds", "0", "1",
                 "--shard", "2/3", "--stage2-over", "released", "--device", "cpu", "--hq", "good", "--unpaired", "dark"]) == 0
    (variants, preset, data, out), kwargs = calls[0]
    assert variants == experiments.VARIANTS and (preset, data, out) == ("smoke-ablation", "synthetic", "x")
    assert kwargs == {"seeds": [0, 1], "shard": (2, 3), "merge": False, "stage2_over": "released",
                      "device": "cpu", "figures": True, "high_quality": "good", "unpaired": "dark"}
    assert capsys.readouterr().out.startswith("data: synthetic (")
    main(["ablate", "--only", experiments.VARIANTS[0].name, "--merge"])
    assert [v.name for v in calls[1][0][0]] == [experiments.VARIANTS[0].name] and calls[1][1]["merge"]
    with pytest.raises(SystemExit):
        main(["ablate", "--shard", "3/2"])


def test_reproduce_passes_data_folders_to_every_notebook(tmp_path, monkeypatch, capsys):
    from drbn import reproduce

    calls = []
    monkeypatch.setattr(reproduce, "run", lambda *a, **k: calls.append((*a, k)) or 0)
    lol = tmp_path / "LOL"
    for sub in ("our485/low", "our485/high", "eval15/low", "eval15/high"):
        write_image(lol / sub / "1.png", np.zeros((8, 8, 3), np.float32))
    assert main(["reproduce", "--preset", "smoke", "--only", "01", "-p", "SEED", "3", "--data", str(lol),
                 "--hq", "hq", "--unpaired", "dark", "--out", str(tmp_path / "o")]) == 0
    preset, only, params, out, options = calls[0]
    assert (preset, only, out, options) == ("smoke", ["01"], str(tmp_path / "o"), {"sequential": False})
    assert params == {"SEED": 3, "DATA": str(lol), "HQ": "hq", "UNPAIRED": "dark"}
    assert capsys.readouterr().out.startswith(f"data: LOL-v1 at {lol}")


def test_reproduce_without_the_notebooks_folder_says_so(tmp_path):
    from drbn.errors import DRBNError
    from drbn.reproduce import notebook_paths

    with pytest.raises(DRBNError, match="come with a clone of the repository"):
        notebook_paths(tmp_path / "notebooks")
