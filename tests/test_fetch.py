"""fetch-weights against a local HTTP server laid out like raw.githubusercontent.com.

Only loopback addresses; every network wait is bounded by a short timeout.
"""
import argparse
import functools
import hashlib
import http.server
import shutil
import socket
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import shared_path
from drbn.errors import DRBNError
from drbn.fetch import CHOICES, RELEASED_FILES, add_arguments, fetch_weights, run

TIMEOUT = 5.0  # seconds; a local server answers in milliseconds
SOURCES = {  # where the reference copies of the released files live under ../shared
    "stage1": ("reference", "model_s1.pt"),
    "recomposer": ("reference", "model_R_s2.pt"),
    "zero-dce": ("reference", "peers", "zero_dce_Epoch99.pth"),
    "niqe": ("reference", "peers", "niqe", "niqe_pris_params.npz"),
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ("DRBN_WEIGHTS_BASE_URL", "DRBN_RELEASED_DIR"):
        monkeypatch.delenv(name, raising=False)
    for name in ("no_proxy", "NO_PROXY"):  # a proxy setting must not route loopback elsewhere
        monkeypatch.setenv(name, "*")


@pytest.fixture
def mirror(tmp_path) -> Path:
    """A folder laid out like the upstream URLs, holding the real released files."""
    root = tmp_path / "mirror"
    for file in RELEASED_FILES:
        target = root / file.relative_url
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared_path(*SOURCES[file.name]), target)
    return root


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class DroppingHandler(QuietHandler):
    """Sends the headers of the whole file, half of its bytes, then hangs up."""

    announce_length = True

    def do_GET(self):
        data = Path(self.translate_path(self.path)).read_bytes()
        self.send_response(200)
        if self.announce_length:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True


class DroppingHandlerNoLength(DroppingHandler):
    announce_length = False


@contextmanager
def serve(root: Path, handler=QuietHandler):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_one_line(info) -> str:
    message = str(info.value)
    assert message and "\n" not in message
    return message


def test_downloads_and_verifies_every_file(mirror, tmp_path):
    out = tmp_path / "released"
    with serve(mirror) as url:
        fetched = fetch_weights(out, base_url=url, timeout=TIMEOUT, log=None)
    assert [f.file.name for f in fetched] == list(CHOICES)
    assert all(f.downloaded for f in fetched)
    for f in fetched:
        assert f.path == out / f.file.filename and sha256(f.path) == f.file.sha256
    assert sorted(p.name for p in out.iterdir()) == sorted(f.file.filename for f in fetched)  # no temp files


def test_zero_dce_download_loads(mirror, tmp_path):
    from drbn.zero_dce import load_zero_dce

    with serve(mirror) as url:
        (fetched,) = fetch_weights(tmp_path / "w", only=["zero-dce"], base_url=url, timeout=TIMEOUT, log=None)
    assert fetched.path.name == "zero_dce_Epoch99.pth"
    assert sum(p.numel() for p in load_zero_dce(fetched.path).parameters()) == 79_416


def test_niqe_model_download_is_found_and_scores(mirror, tmp_path, monkeypatch):
    import numpy as np

    from drbn.niqe import find_model, niqe

    with serve(mirror) as url:
        (fetched,) = fetch_weights(tmp_path / "w", only=["niqe"], base_url=url, timeout=TIMEOUT, log=None)
    assert fetched.file.repository == "XPixelGroup/BasicSR" and len(fetched.file.commit) == 40
    monkeypatch.setenv("DRBN_RELEASED_DIR", str(tmp_path / "w"))
    assert find_model() == fetched.path == tmp_path / "w" / "niqe_pris_params.npz"
    assert np.isfinite(niqe(np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)))


def test_files_present_and_valid_are_not_downloaded_again(mirror, tmp_path):
    out = tmp_path / "released"
    with serve(mirror) as url:
        fetch_weights(out, base_url=url, timeout=TIMEOUT, log=None)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    # nothing listens there now: any download attempt would fail
    again = fetch_weights(out, base_url=f"http://127.0.0.1:{unused_port()}", timeout=TIMEOUT, log=None)
    assert not any(f.downloaded for f in again) and len(again) == len(CHOICES)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_base_url_from_the_environment(mirror, tmp_path, monkeypatch):
    with serve(mirror) as url:
        monkeypatch.setenv("DRBN_WEIGHTS_BASE_URL", url)
        (fetched,) = fetch_weights(tmp_path / "w", only="recomposer", timeout=TIMEOUT, log=None)
    assert fetched.downloaded and sha256(fetched.path) == fetched.file.sha256


def test_default_folder_is_drbn_released_dir(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("DRBN_RELEASED_DIR", str(tmp_path / "env"))
    with serve(mirror) as url:
        (fetched,) = fetch_weights(only=["recomposer"], base_url=url, timeout=TIMEOUT, log=None)
    assert fetched.path == tmp_path / "env" / "model_R_s2.pt"


def test_corrupted_file_is_rejected_and_deleted(mirror, tmp_path):
    (file,) = [f for f in RELEASED_FILES if f.name == "recomposer"]
    served = mirror / file.relative_url
    data = bytearray(served.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one wrong byte, same length
    served.write_bytes(bytes(data))
    out = tmp_path / "released"
    with serve(mirror) as url, pytest.raises(DRBNError) as info:
        fetch_weights(out, only=["recomposer"], base_url=url, timeout=TIMEOUT, log=None)
    message = assert_one_line(info)
    assert "sha256" in message and "deleted" in message
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("handler", [DroppingHandler, DroppingHandlerNoLength], ids=["with-length", "no-length"])
def test_dropped_connection_leaves_no_partial_file(mirror, tmp_path, handler):
    out = tmp_path / "released"
    with serve(mirror, handler) as url, pytest.raises(DRBNError) as info:
        fetch_weights(out, only=["stage1"], base_url=url, timeout=TIMEOUT, log=None)
    message = assert_one_line(info)
    # with a length the drop itself is seen; without one, the checksum catches the short file
    assert ("dropped" in message) if handler.announce_length else ("sha256" in message)
    assert list(out.iterdir()) == []


def test_offline_says_what_to_download_and_where(tmp_path):
    out = tmp_path / "released"
    with pytest.raises(DRBNError) as info:
        fetch_weights(out, base_url=f"http://127.0.0.1:{unused_port()}", timeout=TIMEOUT, log=None)
    message = assert_one_line(info)
    assert "download by hand" in message and "DRBN_RELEASED_DIR" in message
    for file in RELEASED_FILES:  # the real upstream URLs, and the file names to save them as
        assert file.url() in message and str(out / file.filename) in message
    assert list(out.iterdir()) == []


def test_silent_server_times_out(tmp_path):
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(DRBNError) as info:
            fetch_weights(tmp_path / "w", only=["zero-dce"], base_url=url, timeout=0.5, log=None)
    assert "download by hand" in assert_one_line(info)
    assert list((tmp_path / "w").iterdir()) == []


def test_missing_upstream_file_names_the_http_status(tmp_path):
    (tmp_path / "empty").mkdir()
    with serve(tmp_path / "empty") as url, pytest.raises(DRBNError) as info:
        fetch_weights(tmp_path / "w", only=["stage1"], base_url=url, timeout=TIMEOUT, log=None)
    assert "HTTP 404" in assert_one_line(info)


def test_never_overwrites_another_file_of_that_name(mirror, tmp_path):
    out = tmp_path / "released"
    out.mkdir()
    (out / "model_s1.pt").write_bytes(b"my own file")
    with serve(mirror) as url, pytest.raises(DRBNError) as info:
        fetch_weights(out, base_url=url, timeout=TIMEOUT, log=None)
    assert "move it aside" in assert_one_line(info)
    assert (out / "model_s1.pt").read_bytes() == b"my own file"
    assert [p.name for p in out.iterdir()] == ["model_s1.pt"]  # refused before any download


def test_bad_arguments_are_one_line_errors(tmp_path):
    with pytest.raises(DRBNError, match="choose from"):
        fetch_weights(tmp_path, only=["stage3"], log=None)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DRBNError, match="not a folder"):
        fetch_weights(tmp_path / "file", log=None)
    with pytest.raises(DRBNError, match="positive"):
        fetch_weights(tmp_path, timeout=0, log=None)


def test_command_line_pieces(mirror, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(SystemExit):  # argparse refuses unknown names itself
        parser.parse_args(["--only", "stage3"])
    with serve(mirror) as url:
        args = parser.parse_args(["--to", str(tmp_path / "w"), "--only", "zero-dce", "recomposer",
                                  "--base-url", url, "--timeout", str(TIMEOUT)])
        run(args)
    printed = capsys.readouterr().out
    assert "2 released file(s) verified" in printed and "sha256 ok" in printed
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["model_R_s2.pt", "zero_dce_Epoch99.pth"]
