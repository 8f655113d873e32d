"""Every file the kit writes goes through drbn.files: checked before the work, written whole
or not at all, one line for every OS error, nothing but the kit's own files replaced.

Fault injection: a full disk is a small tmpfs when the tests run as root (as CI does) and a
patched write that raises ENOSPC once a byte budget is spent otherwise; a kill -9 is sent
at each stage of a checkpoint write; read-only folders, folders and foreign files at an
output's path. After each: the previous state is intact and a rerun succeeds.
"""
import dataclasses
import errno
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from drbn import files
from drbn.cli import main
from drbn.errors import DRBNError
from drbn.images import read_image, write_image
from drbn.weights import STAGE1, read_weights_file, save_checkpoint

REPO = Path(__file__).resolve().parents[1]


def one_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("drbn: error: "), err
    return err[0]


def temporaries(folder: Path) -> list[Path]:
    return sorted(folder.rglob(files.TEMP_PREFIX + "*" + files.TEMP_SUFFIX))


def noise(side: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((side, side, 3)).astype(np.float32) * 0.3


# ----------------------------------------------------------------------------- a full disk
class FullDisk:
    """A folder on a disk that can be filled and freed: a tmpfs as root, else patched writes."""

    def __init__(self, folder: Path, monkeypatch, tmpfs: bool):
        self.folder, self.tmpfs, self.budget = folder, tmpfs, None
        if not tmpfs:
            real = files._open

            def limited(fd):
                f = real(fd)
                disk = self

                class Limited:
                    def write(self, data):
                        if disk.budget is not None:
                            if len(data) > disk.budget:
                                raise OSError(errno.ENOSPC, "No space left on device")
                            disk.budget -= len(data)
                        return f.write(data)

                    def __getattr__(self, name):
                        return getattr(f, name)

                    def __enter__(self):
                        return self

                    def __exit__(self, *exc):
                        f.close()

                return Limited()

            monkeypatch.setattr(files, "_open", limited)

    def fill(self, leave: int = 0) -> None:
        """``leave`` bytes left (a tmpfs: a filler file takes every other block)."""
        if not self.tmpfs:
            self.budget = leave
            return
        fd = os.open(self.folder / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            for size in (1 << 16, 512, 1):
                try:
                    while os.write(fd, b"\0" * size):
                        pass
                except OSError:
                    pass
            if leave:
                os.ftruncate(fd, max(0, os.fstat(fd).st_size - leave))
        finally:
            os.close(fd)

    def free(self) -> None:
        self.budget = None
        (self.folder / "filler").unlink(missing_ok=True)


@pytest.fixture
def disk(tmp_path, monkeypatch):
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(folder)], capture_output=True).returncode == 0
    try:
        yield FullDisk(folder, monkeypatch, mounted)
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture
def read_only(tmp_path):
    """A folder this process cannot write: a read-only tmpfs as root (root ignores modes)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() == 0:
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(folder)],
                          capture_output=True).returncode:
            pytest.skip("running as root without the right to mount a read-only tmpfs")
        yield folder
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)
    else:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)


# ----------------------------------------------------------------------------- the module itself
def test_a_rewritten_file_keeps_the_umask_mode_and_no_temporary_file(tmp_path):
    # before: written through mkstemp, a 0644 CSV came back 0600
    old = os.umask(0o022)
    try:
        path = files.write_text(tmp_path / "t.csv", "a\n")
        assert files.write_text(path, "b\n") == path and path.read_text() == "b\n"
        assert oct(path.stat().st_mode & 0o777) == oct(0o644)
    finally:
        os.umask(old)
    assert temporaries(tmp_path) == []


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "no space left"), (errno.EACCES, "no permission"),
                                         (errno.ENAMETOOLONG, "too long"), (errno.EISDIR, "is a folder"),
                                         (errno.EIO, "cannot write")])
def test_every_os_error_is_one_line_naming_the_file_and_the_old_file_stays(tmp_path, monkeypatch, code, words):
    path = save_checkpoint(tmp_path / "stage1.pt", {"kind": STAGE1, "step": 1})
    real = files._open

    def failing(fd):
        f = real(fd)
        f.write(b"half")  # something is written, then the error
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(files, "_open", failing)
    with pytest.raises(DRBNError, match=words) as caught:
        save_checkpoint(path, {"kind": STAGE1, "step": 2})
    message = str(caught.value)
    assert str(path) in message or path.name in message
    assert "\n" not in message and "previous stage1.pt is unchanged" in message
    assert read_weights_file(path)["step"] == 1 and temporaries(tmp_path) == []


def test_a_folder_a_special_name_or_a_foreign_file_is_refused_before_writing(tmp_path):
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "mine.csv").write_text("the user's own\n")
    with pytest.raises(DRBNError, match="folder.csv \\(a folder\\).*mine.csv \\(not written by the kit\\)"):
        files.check_targets([tmp_path / "folder.csv", tmp_path / "mine.csv"])
    with pytest.raises(DRBNError, match="not written by the kit"):
        files.write_text(tmp_path / "mine.csv", "x\n")
    assert (tmp_path / "mine.csv").read_text() == "the user's own\n"
    files.write_text(tmp_path / "mine.csv", "x\n", overwrite=True)  # only when asked
    files.write_text(tmp_path / "mine.csv", "y\n")  # and from then on it is the kit's
    with pytest.raises(DRBNError, match="too long"):
        files.write_text(tmp_path / ("n" * 300 + ".csv"), "x\n")


def test_a_file_the_kit_wrote_and_the_user_changed_is_the_users_again(tmp_path):
    path = files.write_text(tmp_path / "table.md", "kit\n")
    assert files.is_own(path)
    path.write_text("edited by hand, a longer text\n")
    assert not files.is_own(path)


# ----------------------------------------------------------------------------- kill -9 while a checkpoint is written
KILLER = textwrap.dedent("""
    import os, signal, sys
    import torch
    from drbn import files
    from drbn.weights import save_checkpoint
    path, stage = sys.argv[1], sys.argv[2]
    die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
    if stage == "writing":  # a few bytes in
        real = files._open
        def dying(fd):
            f = real(fd)
            f.write(b"PK")
            die()
        files._open = dying
    elif stage == "before-fsync":
        files.os.fsync = die
    elif stage == "before-rename":
        files.os.replace = die
    save_checkpoint(path, {"kind": "drbn-stage1", "step": 2, "model": {"w": torch.ones(100_000)}})
""")


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["writing", "before-fsync", "before-rename"])
def test_kill_9_at_each_stage_of_a_checkpoint_write(tmp_path, monkeypatch, stage):
    path = save_checkpoint(tmp_path / "stage1.pt", {"kind": STAGE1, "step": 1, "model": {"w": torch.zeros(100_000)}})
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    done = subprocess.run([sys.executable, str(script), str(path), stage], cwd=REPO, capture_output=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == -signal.SIGKILL, done.stderr
    # the old checkpoint, or (killed after the rename) the whole new one: never half a file
    assert read_weights_file(path)["step"] == 1  # the old checkpoint, whole
    assert len(temporaries(tmp_path)) == 1
    monkeypatch.setattr(files, "_SWEPT", set())  # as in a new process: a resume sweeps the folder
    save_checkpoint(path, {"kind": STAGE1, "step": 3})
    assert read_weights_file(path)["step"] == 3 and temporaries(tmp_path) == []


# ----------------------------------------------------------------------------- enhance
@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "imgs"
    for i in range(3):
        write_image(folder / f"p{i}.png", noise(24, i))
    return folder


def enhance(photos, out, weights, *extra):
    return ["enhance", str(photos), "-o", str(out), "--weights", str(weights), *extra]


def test_item1_an_unrelated_photo_in_the_output_folder_is_refused_by_name(photos, tmp_path, tiny_checkpoint, capsys):
    # before: the photo was replaced by an output of the same name, exit 0, no word
    out = tmp_path / "out"
    out.mkdir()
    photo = bytes(np.random.default_rng(9).integers(0, 255, 5000, dtype=np.uint8))
    (out / "p0.png").write_bytes(photo)
    message = one_error(capsys, enhance(photos, out, tiny_checkpoint))
    assert "p0.png (not written by the kit)" in message and "--overwrite" in message
    assert (out / "p0.png").read_bytes() == photo and not (out / "p1.png").exists()  # refused before the batch
    assert main(enhance(photos, out, tiny_checkpoint)[:-2] + ["--weights", str(tiny_checkpoint), "--overwrite"]) == 0
    assert read_image(out / "p0.png").shape == (24, 24, 3)
    assert main(enhance(photos, out, tiny_checkpoint)) == 0  # its own outputs: a rerun replaces them


def test_item3_a_folder_at_an_outputs_path_is_refused_before_the_batch(photos, tmp_path, tiny_checkpoint, capsys):
    # before: IsADirectoryError traceback mid-batch
    out = tmp_path / "o"
    (out / "p1.png").mkdir(parents=True)
    message = one_error(capsys, enhance(photos, out, tiny_checkpoint))
    assert "p1.png (a folder)" in message
    assert sorted(p.name for p in out.iterdir()) == ["p1.png"]


def bomb_png(path: Path, side: int = 50_000) -> None:
    """A valid PNG header that declares side x side pixels (a few hundred bytes)."""
    def chunk(kind, data):
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    header = side.to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def test_item4_a_decompression_bomb_is_one_listed_failure(photos, tmp_path, tiny_checkpoint, capsys):
    # before: PIL's DecompressionBombError escaped read_image: a traceback, nothing written
    bomb_png(photos / "p1.png")
    with pytest.raises(DRBNError, match="declares more than"):
        read_image(photos / "p1.png")
    out = tmp_path / "out"
    message = one_error(capsys, enhance(photos, out, tiny_checkpoint))
    assert "1 of 3 images failed" in message and "p1.png" in message
    assert sorted(p.name for p in out.glob("*.png")) == ["p0.png", "p2.png"]


def test_item5_a_negative_overlap_is_refused_before_any_work(photos, tmp_path, capsys):
    # before: ValueError: could not broadcast ... traceback
    out = tmp_path / "out"
    message = one_error(capsys, enhance(photos, out, tmp_path / "missing.pt", "--overlap", "-8"))
    assert "overlap must be a whole number of pixels >= 0" in message  # before the weights are looked at
    assert "tile" in one_error(capsys, enhance(photos, out, tmp_path / "missing.pt", "--tile", "0"))
    assert not out.exists()


def test_item2_a_full_disk_during_enhance_lists_the_failures_and_a_rerun_succeeds(photos, disk, tiny_checkpoint, capsys):
    # before: a traceback, a 0-byte p2.png left, the rest of the batch abandoned
    out = disk.folder / "out"
    assert main(enhance(photos, out, tiny_checkpoint)) == 0
    before = {p.name: p.read_bytes() for p in out.glob("*.png")}
    capsys.readouterr()
    disk.fill()
    message = one_error(capsys, enhance(photos, out, tiny_checkpoint))
    assert "3 of 3 images failed" in message and message.count("no space left") == 3
    assert {p.name: p.read_bytes() for p in out.glob("*.png")} == before  # the previous outputs, whole
    assert temporaries(disk.folder) == []
    disk.free()
    assert main(enhance(photos, out, tiny_checkpoint)) == 0
    assert all(read_image(out / f"p{i}.png").shape == (24, 24, 3) for i in range(3))


def test_a_read_only_output_folder_is_refused_before_any_work(photos, read_only, tiny_checkpoint, capsys):
    message = one_error(capsys, enhance(photos, read_only / "out", tiny_checkpoint))
    assert "not writable" in message


# ----------------------------------------------------------------------------- evaluate --csv
def evaluate(weights, csv, *extra):
    return ["evaluate", "--weights", str(weights), "--data", "synthetic", "--csv", str(csv), *extra]


@pytest.mark.slow
def test_evaluate_csv_on_a_full_disk_keeps_the_previous_table(disk, tiny_checkpoint, capsys):
    # before: a chained torch/OSError traceback
    csv = disk.folder / "scores" / "evaluate.csv"
    assert main(evaluate(tiny_checkpoint, csv)) == 0
    before = csv.read_bytes()
    capsys.readouterr()
    disk.fill()
    message = one_error(capsys, evaluate(tiny_checkpoint, csv))
    assert "no space left to write" in message and "previous evaluate.csv is unchanged" in message
    assert csv.read_bytes() == before and temporaries(disk.folder) == []
    disk.free()
    assert main(evaluate(tiny_checkpoint, csv)) == 0


def test_evaluate_refuses_a_foreign_csv_a_folder_and_a_read_only_folder_first(tmp_path, read_only, tiny_checkpoint, capsys):
    mine = tmp_path / "mine.csv"
    mine.write_text("my own notes\n")
    assert "not written by the kit" in one_error(capsys, evaluate(tiny_checkpoint, mine))
    assert mine.read_text() == "my own notes\n"
    (tmp_path / "folder" / "evaluate.csv").mkdir(parents=True)
    assert "is a folder" in one_error(capsys, evaluate(tiny_checkpoint, tmp_path / "folder"))  # FOLDER/evaluate.csv
    assert "not writable" in one_error(capsys, evaluate(tiny_checkpoint, read_only / "e.csv"))


# ----------------------------------------------------------------------------- training
@pytest.mark.slow
def test_training_on_a_full_disk_keeps_the_last_checkpoint_and_resumes(disk, capsys):
    out = disk.folder / "run"
    from drbn.train import stage1_preset, train_stage1
    train_stage1(stage1_preset("smoke", data="synthetic"), out, progress=False, device="cpu", stop_at=3)
    before = (out / "stage1.pt").read_bytes()
    capsys.readouterr()
    disk.fill(leave=1 << 16)  # room for the lock, not for a checkpoint
    resume = ["train-stage1", "--resume", str(out / "stage1.pt"), "--out", str(out), "--device", "cpu"]
    assert main(resume) == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar's lines
    assert message.startswith("drbn: error: ")
    assert "no space left to write" in message and "previous stage1.pt is unchanged" in message
    assert (out / "stage1.pt").read_bytes() == before and temporaries(disk.folder) == []
    disk.free()
    assert main(resume) == 0
    assert read_weights_file(out / "stage1.pt")["step"] == 6


@pytest.mark.slow
def test_kill_9_during_a_training_checkpoint_then_resume_matches_an_uninterrupted_run(tmp_path):
    # item 6: the temporary file the killed write left is swept by the resume
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""
        import os, signal, sys
        from drbn import files, train
        stop = int(sys.argv[2])
        if stop == -1:  # die in the middle of writing the step-6 checkpoint
            real, calls = files._open, []
            def dying(fd):
                calls.append(1)
                f = real(fd)
                if len(calls) == 2:  # checkpoints at steps 3 and 6
                    f.write(b"PK")
                    os.kill(os.getpid(), signal.SIGKILL)
                return f
            files._open = dying
        resume = sys.argv[3] if len(sys.argv) > 3 else None
        train.train_stage1(train.stage1_preset("smoke", data="synthetic"), sys.argv[1], resume=resume,
                           progress=False, device="cpu")
    """))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}

    def run(*args):
        return subprocess.run([sys.executable, str(script), *map(str, args)], cwd=REPO, env=env, capture_output=True, text=True)

    assert run(tmp_path / "whole", 0).returncode == 0
    killed = run(tmp_path / "cut", -1)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    cut = tmp_path / "cut" / "stage1.pt"
    assert read_weights_file(cut)["step"] == 3 and len(temporaries(tmp_path / "cut")) == 1
    resumed = run(tmp_path / "cut", 0, cut)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert temporaries(tmp_path / "cut") == []
    whole, again = read_weights_file(tmp_path / "whole" / "stage1.pt"), read_weights_file(cut)
    assert again["step"] == 6
    assert all(torch.equal(whole["model"][k], again["model"][k]) for k in whole["model"])


# ----------------------------------------------------------------------------- ablate
def test_ablate_refuses_foreign_tables_before_any_run(tmp_path, capsys):
    out = tmp_path / "ablations"
    out.mkdir()
    (out / "results.md").write_text("my notes\n")
    message = one_error(capsys, ["ablate", "--preset", "smoke-ablation", "--data", "synthetic", "--out", str(out)])
    assert "results.md (not written by the kit)" in message
    assert (out / "results.md").read_text() == "my notes\n"


def test_ablate_tables_on_a_full_disk_keep_the_previous_tables(disk, capsys):
    from drbn.results import write_table
    out = disk.folder / "ablations"
    write_table(out, [{"variant": "a", "psnr": 10.0}], ["first"])
    before = {p.name: p.read_bytes() for p in out.glob("results.*")}
    disk.fill()
    with pytest.raises(DRBNError, match="no space left to write .*results"):
        write_table(out, [{"variant": "a", "psnr": 11.0}], ["second"])
    assert {p.name: p.read_bytes() for p in out.glob("results.*")} == before
    assert temporaries(disk.folder) == []
    disk.free()
    write_table(out, [{"variant": "a", "psnr": 11.0}], ["second"])
    assert "11.00" in (out / "results.md").read_text()


# ----------------------------------------------------------------------------- the one module
def test_no_file_is_written_outside_drbn_files():
    """A grep of the package for every call that writes, creates or renames a file; the
    allowed exceptions say why."""
    allowed = {  # file: why it may write by itself
        "files.py": "the one module",
        "fetch.py": "a streamed download, checked by sha256, into its own temporary file renamed into place",
    }
    writes = re.compile(r"open\([^)]*['\"](w|a|x|r\+)|O_WRONLY|O_CREAT|O_RDWR|(?<!files)\.write_(text|bytes)\(|"
                        r"torch\.save\(|\.savefig\(|\.to_csv\(|imsave\(|np\.savez?\(|mkstemp\(|TemporaryFile|"
                        r"(?<!record)\.save\(|shutil\.(copy|move)|os\.(replace|rename|link|symlink)\(|\.dump\(")
    renames = ("os.replace(path, target)", "os.replace(path, stale)")  # runs.py: a lock or checkpoint moved aside whole
    renames += (".save(buffer, ",)  # viz.Explorer: PNG bytes encoded into an in-memory io.BytesIO for a widget, no file
    found = []
    for path in sorted((REPO / "drbn").glob("*.py")):
        if path.name in allowed:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if writes.search(code) and not any(ok in code for ok in renames):
                found.append(f"{path.name}:{number}: {line.strip()}")
    assert found == [], "\n".join(found)


# ----------------------------------------------------------------------------- item 6: the minor ones
def test_item6_the_same_input_named_twice_is_enhanced_once(photos, tmp_path, tiny_checkpoint, capsys):
    # before: enhanced twice, as p0_png.png and p0_png_2.png
    out = tmp_path / "out"
    assert main(["enhance", str(photos / "p0.png"), str(photos / "p0.png"), "-o", str(out),
                 "--weights", str(tiny_checkpoint)]) == 0
    assert "named more than once, enhanced once" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["p0.png"]


def test_item6_a_lock_held_by_a_live_process_says_what_to_do_if_it_is_not_a_run(tmp_path):
    from drbn import runs
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / runs.LOCK_NAME).write_text(
            '{"pid": %d, "host": "%s", "started": "then"}' % (sleeper.pid, socket.gethostname()))
        with pytest.raises(DRBNError, match=f"if PID {sleeper.pid} is not a drbn run.*delete"):
            with runs.run_lock(tmp_path):
                pass
    finally:
        sleeper.kill()
        sleeper.wait()


def test_item6_a_refused_run_leaves_no_empty_out_folder(tmp_path):
    from drbn import runs
    out = tmp_path / "new"
    with pytest.raises(DRBNError):
        with runs.run_lock(out):
            raise DRBNError("refused")
    assert not out.exists()
    kept = tmp_path / "kept"
    with runs.run_lock(kept):
        (kept / "x.txt").write_text("made by the run")
    assert (kept / "x.txt").exists()


@pytest.mark.slow
def test_item6_stage2_resume_with_another_stage1_is_refused(tmp_path, tiny_checkpoint, capsys):
    # before: the saved stage 1 was kept silently
    from drbn.model import DRBN, DRBNConfig
    out = tmp_path / "s2"
    assert main(["train-stage2", "--stage1", str(tiny_checkpoint), "--preset", "smoke", "--data", "synthetic",
                 "--out", str(out), "--steps", "1", "--device", "cpu"]) == 0
    torch.manual_seed(1)
    other = save_checkpoint(tmp_path / "other.pt", {"kind": STAGE1, "model": DRBN(DRBNConfig(recursions=1)).state_dict(),
                                                    "model_config": {"recursions": 1}, "step": 0})
    capsys.readouterr()
    message = one_error(capsys, ["train-stage2", "--stage1", str(other), "--resume", str(out / "stage2.pt"),
                                 "--out", str(out), "--steps", "2", "--device", "cpu"])
    assert "another stage 1" in message  # the run's own stage 1 continues it:
    assert main(["train-stage2", "--stage1", str(tiny_checkpoint), "--resume", str(out / "stage2.pt"),
                 "--out", str(out), "--steps", "2", "--device", "cpu"]) == 0


def test_item6_fetch_finds_a_file_in_any_folder_of_drbn_released_dir(tmp_path, monkeypatch):
    # before: DRBN_RELEASED_DIR=A:B downloaded into A a file already in B
    from drbn import fetch
    a, b = tmp_path / "A", tmp_path / "B"
    a.mkdir()
    b.mkdir()
    content = b"released bytes"
    file = dataclasses.replace(fetch.RELEASED_FILES[0], sha256=hashlib.sha256(content).hexdigest())
    (b / file.filename).write_bytes(content)
    monkeypatch.setattr(fetch, "RELEASED_FILES", (file,))
    monkeypatch.setattr(fetch, "CHOICES", (file.name,))
    monkeypatch.setenv("DRBN_RELEASED_DIR", os.pathsep.join((str(a), str(b))))
    (fetched,) = fetch.fetch_weights(base_url="http://127.0.0.1:9", timeout=1, log=None)  # nothing may be downloaded
    assert not fetched.downloaded and fetched.path == b / file.filename
    assert list(a.iterdir()) == []


def png16(path: Path, pixels: np.ndarray, filters: list[int]) -> None:
    """``pixels`` (H x W x C uint16) as a 16-bit PNG, row y filtered with ``filters[y]`` (0-4)."""
    height, width, channels = pixels.shape
    bpp = 2 * channels
    rows = pixels.astype(">u2").reshape(height, -1).view(np.uint8).astype(np.int32)
    encoded, previous = b"", np.zeros(rows.shape[1], np.int32)
    for y, kind in enumerate(filters):
        line = rows[y]
        left = np.concatenate((np.zeros(bpp, np.int32), line[:-bpp]))
        up_left = np.concatenate((np.zeros(bpp, np.int32), previous[:-bpp]))
        p = left + previous - up_left
        pa, pb, pc = np.abs(p - left), np.abs(p - previous), np.abs(p - up_left)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, previous, up_left))
        guess = [0, left, previous, (left + previous) >> 1, paeth][kind]
        encoded += bytes([kind]) + ((line - guess) & 255).astype(np.uint8).tobytes()
        previous = line

    def chunk(kind, data):
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([16, {3: 2, 4: 6}[channels], 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(encoded))
                     + chunk(b"IEND", b""))


@pytest.mark.parametrize("channels", [3, 4])
def test_item6_a_16_bit_colour_png_keeps_its_precision(tmp_path, channels):
    # before: Pillow's 8 bits (3007 / 65535 read as 11 / 255)
    pixels = np.random.default_rng(0).integers(0, 65536, (5, 7, channels)).astype(np.uint16)
    png16(tmp_path / "deep.png", pixels, filters=[0, 1, 2, 3, 4])
    image = read_image(tmp_path / "deep.png")
    np.testing.assert_array_equal(np.rint(image * 65535).astype(np.uint16), pixels[..., :3])


@pytest.mark.slow
def test_item6_after_ctrl_c_reproduce_returns_only_once_its_kernels_are_gone(tmp_path, monkeypatch):
    # before: the kernels ran on for up to 20 s after the command had exited
    psutil = pytest.importorskip("psutil")
    from drbn import reproduce
    kernel = subprocess.Popen([sys.executable, "-c", "import signal, time\n"
                               "signal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)"])  # ignores SIGTERM

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(reproduce, "run_notebook", interrupted)
    notebooks = tmp_path / "nb"
    notebooks.mkdir()
    import nbformat
    nbformat.write(nbformat.v4.new_notebook(), notebooks / "00_x.ipynb")
    real_stop = reproduce.stop_children
    monkeypatch.setattr(reproduce, "stop_children", lambda grace=5.0: real_stop(grace=0.5))  # SIGKILL sooner
    with pytest.raises(KeyboardInterrupt):
        reproduce.run("smoke", params={}, out=tmp_path / "out", notebooks=notebooks)
    assert not psutil.pid_exists(kernel.pid) or psutil.Process(kernel.pid).status() == psutil.STATUS_ZOMBIE
    kernel.wait()
