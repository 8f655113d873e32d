"""Every subcommand's mistakes: exit status 2, exactly one line on stderr, no traceback, and
nothing the user made is lost (photos, checkpoints). Cheap: smoke presets, tiny images."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from drbn import runs
from drbn.cli import main
from drbn.images import read_image, write_image
from drbn.model import DRBN, DRBNConfig
from drbn.weights import save_checkpoint

REPO = Path(__file__).resolve().parents[1]


def one_error(capsys, argv, status=2) -> str:
    """Run the command line in-process; assert ``status``, one stderr line, no traceback."""
    assert main(argv) == status
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if not line.startswith("drbn: warning:")]
    assert len(lines) == 1 and lines[0].startswith("drbn: "), err
    assert "Traceback" not in err
    return lines[0]


def run_cli(*argv: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """A real process; PyTorch's own import-time log lines ("W1126 ... torch/utils/...",
    e.g. no CUDA runtime beside a CUDA_HOME) are left out of its stderr: they are not ours."""
    env = {**os.environ, "TQDM_DISABLE": "1"}
    done = subprocess.run([sys.executable, "-m", "drbn", *argv], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)
    done.stderr = "".join(line for line in done.stderr.splitlines(keepends=True)
                          if not re.match(r"[WI]\d{4} [\d:.]+ +\d+ torch/", line))
    return done


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """A finished 2-step smoke stage-1 run: its folder."""
    out = tmp_path_factory.mktemp("run") / "s1"
    assert main(["train-stage1", "--preset", "smoke", "--steps", "2", "--out", str(out)]) == 0
    return out


def photos(folder: Path, *names: str) -> list[Path]:
    return [write_image(folder / n, np.full((8, 12, 3), 0.2 + 0.1 * i, np.float32)) for i, n in enumerate(names)]


# ----------------------------------------------------------------------------- argument mistakes
def test_argument_mistakes_are_one_line_in_a_real_process(tmp_path):
    for argv in (["train-stage1", "--steps", "many"], ["enhance", "x.png"], ["frobnicate"]):
        done = run_cli(*argv, cwd=tmp_path)
        assert done.returncode == 2, argv
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.startswith("drbn: error: ")


def test_steps_and_seed_are_checked_before_any_work(tmp_path, capsys):
    out = tmp_path / "run"
    for command in (["train-stage1"], ["train-stage2", "--stage1", "x.pt"]):
        for extra, message in ((["--steps", "0"], "steps must be a positive whole number, got 0"),
                               (["--steps", "-5"], "got -5"),
                               (["--seed", "-1"], "seed must be a whole number >= 0")):
            assert message in one_error(capsys, [*command, "--preset", "smoke", "--out", str(out), *extra])
    assert not out.exists()  # nothing written, no checkpoint of an untrained model


def test_unusable_out_is_found_before_step_one(tmp_path, capsys):
    (tmp_path / "file").write_text("mine")
    photos(tmp_path / "in", "a.png")
    for argv in (["train-stage1", "--preset", "smoke", "--out", str(tmp_path / "file")],
                 ["train-stage2", "--stage1", "x.pt", "--preset", "smoke", "--out", str(tmp_path / "file")],
                 ["ablate", "--out", str(tmp_path / "file")],
                 ["reproduce", "--out", str(tmp_path / "file")],
                 ["enhance", str(tmp_path / "in"), "-o", str(tmp_path / "file")],
                 ["evaluate", "--csv", str(tmp_path / "file" / "x.csv")]):
        assert "is a file" in one_error(capsys, argv), argv
    assert (tmp_path / "file").read_text() == "mine"


def test_read_only_out_is_found_before_step_one(tmp_path, capsys, monkeypatch):
    def no_write(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    photos(tmp_path / "in", "a.png")
    monkeypatch.setattr(runs.files, "probe", no_write)
    assert "not writable" in one_error(capsys, ["train-stage1", "--preset", "smoke", "--out", str(tmp_path / "r")])
    assert "not writable" in one_error(capsys, ["enhance", str(tmp_path / "in"), "-o", str(tmp_path / "r")])


# ----------------------------------------------------------------------------- training folders
def test_existing_checkpoint_is_refused_then_moved_aside_with_overwrite(smoke_run, capsys):
    before = (smoke_run / "stage1.pt").read_bytes()
    message = one_error(capsys, ["train-stage1", "--preset", "smoke", "--steps", "2", "--out", str(smoke_run)])
    assert "already exists" in message and "--resume" in message and "--overwrite" in message
    assert (smoke_run / "stage1.pt").read_bytes() == before


def test_resume_extends_steps_and_refuses_other_changes(smoke_run, tmp_path, capsys):
    run = tmp_path / "s1"
    run.mkdir()
    (run / "stage1.pt").write_bytes((smoke_run / "stage1.pt").read_bytes())
    ckpt = str(run / "stage1.pt")
    message = one_error(capsys, ["train-stage1", "--resume", ckpt, "--out", str(run), "--seed", "3", "--steps", "4"])
    assert "seed 3 (saved 0)" in message and "cannot change" in message
    message = one_error(capsys, ["train-stage1", "--resume", ckpt, "--out", str(run), "--preset", "cpu"])
    assert "crop 128 (saved 32)" in message

    assert main(["train-stage1", "--resume", ckpt, "--out", str(run), "--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "from 2 to 3 steps" in out and "halves after step 2 (was 1)" in out
    payload = torch.load(ckpt, weights_only=True)
    assert payload["step"] == 3 and payload["train_config"]["steps"] == 3
    assert payload["history"]["lr"] == [1e-4, 5e-5, 5e-5]  # halved after step 1 of 2, then of 3


def test_overwrite_moves_the_old_checkpoint_aside(smoke_run, tmp_path, capsys):
    run = tmp_path / "s1"
    run.mkdir()
    before = (smoke_run / "stage1.pt").read_bytes()
    (run / "stage1.pt").write_bytes(before)
    assert main(["train-stage1", "--preset", "smoke", "--steps", "1", "--out", str(run), "--overwrite"]) == 0
    kept = [p for p in run.iterdir() if p.name.startswith("stage1.replaced-")]
    assert len(kept) == 1 and kept[0].read_bytes() == before
    assert torch.load(run / "stage1.pt", weights_only=True)["step"] == 1
    assert f"moved the previous checkpoint aside: {kept[0]}" in capsys.readouterr().out


def test_concurrent_run_into_the_same_out_fails_at_once(tmp_path, capsys):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom drbn.runs import run_lock\n"
                               "with run_lock(sys.argv[1]):\n    print('locked', flush=True)\n    time.sleep(60)",
                               str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        message = one_error(capsys, ["train-stage1", "--preset", "smoke", "--out", str(tmp_path)])
        assert f"PID {holder.pid}" in message
    finally:
        holder.kill()
        holder.wait()
    assert not (tmp_path / "stage1.pt").exists()


def test_explicit_vgg_weights_that_do_not_exist_are_an_error(tiny_checkpoint, tmp_path, capsys):
    message = one_error(capsys, ["train-stage2", "--stage1", str(tiny_checkpoint), "--preset", "smoke",
                                 "--vgg-weights", str(tmp_path / "vgg16-typo.pth"), "--out", str(tmp_path / "r")])
    assert "vgg16-typo.pth" in message and "not found" in message
    assert not (tmp_path / "r" / "stage2.pt").exists()


def test_nan_setting_is_refused_not_called_divergence(tmp_path):
    from drbn.errors import DRBNError
    from drbn.train import stage1_preset, train_stage1

    with pytest.raises(DRBNError) as caught:
        train_stage1(stage1_preset("smoke", lr=float("nan")), tmp_path, progress=False)
    assert "lr is nan" in str(caught.value) and "Lower the learning rate" not in str(caught.value)
    assert not (tmp_path / "stage1.pt").exists()


# ----------------------------------------------------------------------------- enhance
def test_enhance_never_overwrites_an_input(tiny_checkpoint, tmp_path, capsys):
    inputs = photos(tmp_path / "in", "a.png", "b.png")
    before = [p.read_bytes() for p in inputs]
    message = one_error(capsys, ["enhance", str(tmp_path / "in"), "-o", str(tmp_path / "in"), "--weights", str(tiny_checkpoint)])
    assert "also holds the input" in message
    one_error(capsys, ["enhance", str(inputs[0]), "-o", str(tmp_path / "in"), "--weights", str(tiny_checkpoint)])
    assert [p.read_bytes() for p in inputs] == before

    # into a sub-folder: allowed, and a rerun skips that sub-folder (and says so)
    out = tmp_path / "in" / "enhanced"
    for _ in range(2):
        assert main(["enhance", str(tmp_path / "in"), "-o", str(out), "--weights", str(tiny_checkpoint)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    assert "skipped 1 sub-folder: enhanced/" in capsys.readouterr().out
    assert [p.read_bytes() for p in inputs] == before


def test_inputs_with_the_same_stem_get_distinct_outputs(tiny_checkpoint, tmp_path, capsys):
    photos(tmp_path / "in", "x.png")
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(tmp_path / "in" / "x.jpg")
    assert main(["enhance", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--weights", str(tiny_checkpoint)]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x_jpg.png", "x_png.png"]
    out = capsys.readouterr().out
    assert "x.jpg -> x_jpg.png" in out and "x.png -> x_png.png" in out


def test_a_corrupt_file_does_not_stop_the_batch(tiny_checkpoint, tmp_path, capsys):
    photos(tmp_path / "in", "a.png", "c.png")
    (tmp_path / "in" / "b.png").write_bytes(b"\x89PNG broken")
    message = one_error(capsys, ["enhance", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--weights", str(tiny_checkpoint)])
    assert "1 of 3 images failed" in message and "b.png" in message
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]


def test_non_finite_pixels_are_refused_with_the_file_name(tiny_checkpoint, tmp_path, capsys):
    data = np.full((6, 6), 0.5, np.float32)
    data[2, 3] = np.nan
    Image.fromarray(data, mode="F").save(tmp_path / "nan.tif")
    data[2, 3] = np.inf
    Image.fromarray(data, mode="F").save(tmp_path / "inf.tif")
    from drbn.errors import DRBNError

    for name in ("nan.tif", "inf.tif"):
        with pytest.raises(DRBNError, match=f"{name}.*not finite"):
            read_image(tmp_path / name)
    message = one_error(capsys, ["enhance", str(tmp_path / "nan.tif"), "-o", str(tmp_path / "out"), "--weights", str(tiny_checkpoint)])
    assert "nan.tif" in message


# ----------------------------------------------------------------------------- evaluate
def lol(root: Path, splits=("our485", "eval15")) -> Path:
    for split in splits:
        for side, value in (("low", 0.05), ("high", 0.5)):
            for i in (1, 2):
                write_image(root / split / side / f"{i}.png", np.full((24, 24, 3), value * i, np.float32))
    return root


def test_evaluate_csv_folder_writes_inside_it(tiny_checkpoint, tmp_path, capsys):
    data = lol(tmp_path / "LOL", splits=("eval15",))  # test-only evaluation needs only eval15/
    target = tmp_path / "results"
    target.mkdir()
    assert main(["evaluate", "--weights", str(tiny_checkpoint), "--data", str(data), "--csv", str(target)]) == 0
    assert (target / "evaluate.csv").read_text().startswith("image,")
    assert f"written {target / 'evaluate.csv'}" in capsys.readouterr().out
    message = one_error(capsys, ["evaluate", "--weights", str(tiny_checkpoint), "--data", str(data), "--split", "train"])
    assert "our485" in message


def test_evaluate_warns_when_stage2_was_trained_over_another_stage1(tiny_checkpoint, tmp_path, capsys):
    from drbn.recompose import Recomposer, RecomposerConfig
    from drbn.weights import STAGE2

    torch.manual_seed(1)
    other = DRBN(DRBNConfig(recursions=1))
    stage2 = save_checkpoint(tmp_path / "stage2.pt", {
        "kind": STAGE2, "recomposer": Recomposer(RecomposerConfig()).state_dict(),
        "recomposer_config": {}, "stage1": other.state_dict(), "stage1_config": {"recursions": 1}, "step": 0})
    data = lol(tmp_path / "LOL", splits=("eval15",))
    argv = ["evaluate", "--stage2", str(stage2), "--data", str(data), "--csv", str(tmp_path / "e.csv")]
    assert main([*argv, "--weights", str(tiny_checkpoint)]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "trained over another stage 1" in err
    assert main(argv) == 0  # its own stage 1: no warning
    assert "warning" not in capsys.readouterr().err


# ----------------------------------------------------------------------------- ablate, reproduce
def test_ctrl_c_in_the_ablation_runner_is_one_line(tmp_path, capsys, monkeypatch):
    from drbn import experiments

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(experiments, "run_experiments", interrupted)
    assert "interrupted" in one_error(capsys, ["ablate", "--out", str(tmp_path / "abl")], status=130)


def test_reproduce_checks_parameters_before_running_anything(tmp_path, capsys, monkeypatch):
    import papermill

    def refuse(*args, **kwargs):
        raise AssertionError("a notebook ran")

    monkeypatch.setattr(papermill, "execute_notebook", refuse)
    message = one_error(capsys, ["reproduce", "--out", str(tmp_path / "o"), "-p", "DATTA", "x"])
    assert "DATTA" in message and "DATA" in message
    message = one_error(capsys, ["reproduce", "--out", str(tmp_path / "o"), "-p", "DATA", str(tmp_path / "missing")])
    assert "missing" in message and "not found" in message
    assert not (tmp_path / "o").exists()


def test_truncated_result_record_is_one_line_naming_the_file(tmp_path):
    from drbn.errors import DRBNError
    from drbn.results import Result

    path = tmp_path / "DRBN T=4" / "result.json"
    Result(key={"a": 1}, finished=True).save(path)
    path.write_text(path.read_text()[:20])  # a write cut short (results are written atomically now)
    with pytest.raises(DRBNError) as caught:
        Result.load(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
