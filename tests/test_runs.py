"""Run folders: checked outputs, one run per folder, checkpoints never replaced silently,
resume that refuses changed settings, enhance outputs that never land on an input."""
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from drbn import runs
from drbn.errors import DRBNError


# ----------------------------------------------------------------------------- output paths
def test_output_folder_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(DRBNError, match="is a file, not a folder"):
        runs.check_output_folder(tmp_path / "f")
    with pytest.raises(DRBNError, match="is a file"):
        runs.check_output_folder(tmp_path / "f" / "sub")


def test_missing_output_folder_is_checked_but_not_created(tmp_path):
    assert runs.check_output_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert not (tmp_path / "a").exists()
    assert list(tmp_path.iterdir()) == []  # the probe file is gone


def test_read_only_output_folder_is_refused(tmp_path, monkeypatch):
    def no_write(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(runs.files, "probe", no_write)
    with pytest.raises(DRBNError, match="not writable: Permission denied"):
        runs.check_output_folder(tmp_path)


def test_read_only_folder_for_real(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as a user who can write to read-only folders (root)")
        with pytest.raises(DRBNError, match="not writable"):
            runs.check_output_folder(folder / "run")
    finally:
        folder.chmod(0o755)


def test_output_file_given_a_folder_writes_inside_it(tmp_path):
    assert runs.output_file(tmp_path, "evaluate.csv", "--csv") == tmp_path / "evaluate.csv"
    assert runs.output_file(str(tmp_path / "new") + "/", "evaluate.csv", "--csv") == tmp_path / "new" / "evaluate.csv"
    assert runs.output_file(tmp_path / "x.csv", "evaluate.csv", "--csv") == tmp_path / "x.csv"
    (tmp_path / "file").write_text("")
    with pytest.raises(DRBNError, match="is a file"):
        runs.output_file(tmp_path / "file" / "x.csv", "evaluate.csv", "--csv")


# ----------------------------------------------------------------------------- the lock
HOLD = """
import sys, time
from drbn.runs import run_lock
with run_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_second_run_into_the_same_folder_fails_naming_the_first(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.perf_counter()
        with pytest.raises(DRBNError, match=f"another run \\(PID {holder.pid} on "):
            with runs.run_lock(tmp_path):
                pass
        assert time.perf_counter() - started < 5  # at once, no waiting
    finally:
        holder.kill()
        holder.wait()


def test_lock_is_released_and_reentrant(tmp_path):
    lock = tmp_path / runs.LOCK_NAME
    with runs.run_lock(tmp_path):
        owner = json.loads(lock.read_text())
        assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname() and owner["started"]
        with runs.run_lock(tmp_path):  # the CLI locks, then the training loop inside it
            assert lock.exists()
        assert lock.exists()
    assert not lock.exists()


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path, capsys):
    pid = dead_pid()
    (tmp_path / runs.LOCK_NAME).write_text(json.dumps({"pid": pid, "host": socket.gethostname(),
                                                       "started": "2020-01-01T00:00:00"}))
    with runs.run_lock(tmp_path):
        assert json.loads((tmp_path / runs.LOCK_NAME).read_text())["pid"] == os.getpid()
    err = capsys.readouterr().err
    assert f"took over the lock of run PID {pid}" in err and "no longer running" in err


def test_lock_from_another_host_is_never_taken_over(tmp_path):
    (tmp_path / runs.LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "x"}))
    with pytest.raises(DRBNError, match="PID 1 on elsewhere.*delete"):
        with runs.run_lock(tmp_path):
            pass
    assert (tmp_path / runs.LOCK_NAME).exists()


def test_worker_processes_of_a_distributed_run_do_not_lock(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    with runs.run_lock(tmp_path):
        assert not (tmp_path / runs.LOCK_NAME).exists()


# ----------------------------------------------------------------------------- checkpoints
def test_existing_checkpoint_is_refused_unless_resumed_or_overwritten(tmp_path, capsys):
    ckpt = tmp_path / "stage1.pt"
    ckpt.write_bytes(b"days of training")
    with pytest.raises(DRBNError, match="already exists.*--resume.*--overwrite"):
        runs.claim_run_folder(tmp_path, "stage1.pt")
    assert runs.claim_run_folder(tmp_path, "stage1.pt", resume=ckpt) is None
    other = tmp_path / "other.pt"
    other.write_bytes(b"another run")
    with pytest.raises(DRBNError, match="already exists"):
        runs.claim_run_folder(tmp_path, "stage1.pt", resume=other)
    with pytest.raises(DRBNError, match="pass only one"):
        runs.claim_run_folder(tmp_path, "stage1.pt", resume=ckpt, overwrite=True)
    assert ckpt.read_bytes() == b"days of training"

    moved = runs.claim_run_folder(tmp_path, "stage1.pt", overwrite=True)
    assert not ckpt.exists() and moved.read_bytes() == b"days of training"
    assert moved.name.startswith("stage1.replaced-") and moved.suffix == ".pt"
    assert f"moved the previous checkpoint aside: {moved}" in capsys.readouterr().out
    assert runs.claim_run_folder(tmp_path / "new", "stage1.pt") is None


def test_move_aside_never_replaces_an_earlier_one(tmp_path):
    import datetime as dt

    when = dt.datetime(2024, 5, 1, 12, 0, 0)
    names = []
    for text in ("first", "second"):
        (tmp_path / "stage1.pt").write_text(text)
        names.append(runs.move_aside(tmp_path / "stage1.pt", when))
    assert [p.read_text() for p in names] == ["first", "second"]
    assert names[0] != names[1]


# ----------------------------------------------------------------------------- settings
@dataclass
class Inner:
    width: int = 8


@dataclass
class Config:
    steps: int = 100
    lr: float = 1e-4
    lr_halve_at: float = 0.5
    seed: int = 0
    data: str = "auto"
    inner: Inner = field(default_factory=Inner)
    notes: list = field(default_factory=list)


def test_resume_with_more_steps_extends_the_schedule_and_says_so(capsys):
    config = runs.continued_config(Config(), Config(steps=300), done=60, source="s.pt")
    assert config == Config(steps=300)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "from 100 to 300 steps" in out[0] and "halves after step 150 (was 50)" in out[0]
    assert runs.continued_config(Config(), Config(), done=60, source="s.pt") == Config()
    assert capsys.readouterr().out == ""


def test_resume_refuses_other_changed_settings_listing_them():
    with pytest.raises(DRBNError) as caught:
        runs.continued_config(Config(), Config(steps=300, seed=3, inner=Inner(4)), done=60, source="s.pt")
    message = str(caught.value)
    assert "inner.width 4 (saved 8)" in message and "seed 3 (saved 0)" in message and "steps" not in message
    with pytest.raises(DRBNError, match="already at step 60"):
        runs.continued_config(Config(), Config(steps=50), done=60, source="s.pt")
    # the same data folder written differently is the same setting; notes are not settings
    assert runs.continued_config(Config(data="x/../x"), Config(data="x", notes=["n"]), 0, "s.pt").data == "x/../x"


@pytest.mark.parametrize("change, message", [
    (dict(steps=0), "steps must be a positive whole number, got 0; a run needs at least one step"),
    (dict(steps=-5), "steps must be a positive whole number, got -5"),
    (dict(seed=-1), "seed must be a whole number >= 0, got -1"),
    (dict(lr=float("nan")), "setting lr is nan; every numeric setting must be a finite number"),
    (dict(lr_halve_at=float("inf")), "setting lr_halve_at is inf"),
])
def test_unusable_settings_are_refused(change, message):
    runs.check_settings(Config())
    with pytest.raises(DRBNError) as caught:
        runs.check_settings(Config(**change))
    assert message in str(caught.value)


# ----------------------------------------------------------------------------- enhance outputs
def files(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")
    return [folder / n for n in names]


def test_inputs_sharing_a_stem_get_distinct_names(tmp_path):
    inputs = files(tmp_path / "in", "x.jpg", "x.png", "y.png") + files(tmp_path / "other", "y.png")
    stems, notes = runs.output_names(inputs, tmp_path / "out")
    names = [s.name for s in stems]
    assert names == ["x_jpg", "x_png", "y_png", "y_png_2"]
    assert len(notes) == 4 and notes[0].endswith("x.jpg -> x_jpg.png")


def test_extra_outputs_never_collide_with_another_input(tmp_path):
    inputs = files(tmp_path / "in", "a.png", "a_band1.png")
    stems, _ = runs.output_names(inputs, tmp_path / "out", suffixes=("", "_band1"))
    outputs = {s.name + suffix for s in stems for suffix in ("", "_band1")}
    assert len(outputs) == 4


def test_output_folder_of_an_input_is_refused(tmp_path):
    inputs = files(tmp_path / "in", "a.png")
    for out in (tmp_path / "in", tmp_path / "in" / "." , tmp_path / "in" / "sub" / ".."):
        with pytest.raises(DRBNError, match="also holds the input a.png"):
            runs.output_names(inputs, out)
    stems, _ = runs.output_names(inputs, tmp_path / "in" / "enhanced")  # a sub-folder is fine
    assert stems == [tmp_path / "in" / "enhanced" / "a"]
