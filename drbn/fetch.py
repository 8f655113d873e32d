"""Download the authors' released weights from their public repositories and verify them; introduced in notebooks/00_setup_check.

``python -m drbn fetch-weights [--to DIR] [--only stage1 recomposer zero-dce niqe]``

Every file comes from a commit-pinned raw URL, so what is downloaded can never change
under us, and is checked against its sha256 before it is kept. Nothing half-downloaded
or wrong is ever left behind: a download goes to a temporary file beside the target and
is renamed into place only when its checksum matches (a wrong checksum deletes it). Files
already present with the right checksum are not downloaded again; a file of the same name
with other contents is never overwritten.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, NamedTuple

from .errors import DRBNError
from .niqe import MODEL_FILENAME as NIQE_FILENAME
from .weights import RECOMPOSER_FILENAME, STAGE1_FILENAME, ZERO_DCE_FILENAME, search_folders

RAW_URL = "https://raw.githubusercontent.com"
BASE_URL_ENV = "DRBN_WEIGHTS_BASE_URL"  # a mirror laid out like RAW_URL (tests serve one locally)
TIMEOUT = 60.0  # seconds without a byte before we call the server unreachable
CHUNK = 1 << 16


@dataclass(frozen=True)
class ReleasedFile:
    """One released file: where it lives upstream (repository, commit, path) and its sha256."""

    name: str  # the --only choice
    filename: str  # the name on disk, what drbn.weights.find_released looks for
    repository: str
    commit: str
    path: str
    sha256: str
    what: str

    @property
    def relative_url(self) -> str:
        return f"{self.repository}/{self.commit}/{self.path}"

    def url(self, base_url: str | None = None) -> str:
        return f"{(base_url or RAW_URL).rstrip('/')}/{self.relative_url}"


DRBN_REPOSITORY = "flyywh/CVPR-2020-Semi-Low-Light"
RELEASED_FILES = (
    ReleasedFile(
        "stage1", STAGE1_FILENAME, DRBN_REPOSITORY, "9f383de", "DRBL-stage1/src/pretrain/model_s1.pt",
        "6a61baf2d17a92468ada5e9d45049aee6f58dc52067174dca311f6042e1765a6",
        "DRBN stage 1 (recursive band learning, trained on LOL-v2-real)",
    ),
    ReleasedFile(
        "recomposer", RECOMPOSER_FILENAME, DRBN_REPOSITORY, "9f383de",
        "DRBL-stage2-other-datasets/src/pretrain/model_R_s2.pt",
        "ccf57ad146ac836b55c037885852c5bcf3ccd701aa881346067ac5ea09a3a25c",
        "DRBN stage-2 recomposer (other-datasets setting)",
    ),
    ReleasedFile(
        "zero-dce", ZERO_DCE_FILENAME, "Li-Chongyi/Zero-DCE", "e0f4adc", "Zero-DCE_code/snapshots/Epoch99.pth",
        "a4395acb874f320375d9704997cef874eaaaaa26a1777ceb29a92b70f74c3612",
        "Zero-DCE (Guo et al., CVPR 2020), the peer method",
    ),
    ReleasedFile(  # the official MATLAB release's modelparameters.mat, as BasicSR stores it (Apache-2.0)
        "niqe", NIQE_FILENAME, "XPixelGroup/BasicSR", "8d56e3a045f9fb3e1d8872f92ee4a4f07f886b0a",
        "basicsr/metrics/niqe_pris_params.npz",
        "2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296",
        "NIQE's pristine model (Mittal et al. 2013), the no-reference score's parameters",
    ),
)
CHOICES = tuple(f.name for f in RELEASED_FILES)


class Fetched(NamedTuple):
    file: ReleasedFile
    path: Path
    downloaded: bool  # False: it was already there with the right checksum


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def default_folder() -> Path:
    """Where the kit looks first: the first folder of ``$DRBN_RELEASED_DIR`` if set, else the
    repository's data/released/."""
    return search_folders()[0]


def select(only: str | Iterable[str] | None) -> list[ReleasedFile]:
    if only is None:
        return list(RELEASED_FILES)
    names = [only] if isinstance(only, str) else list(only)
    unknown = [n for n in names if n not in CHOICES]
    if unknown:
        raise DRBNError(f"unknown released file {unknown[0]!r}; choose from {', '.join(CHOICES)}.")
    return [f for f in RELEASED_FILES if f.name in names]


def prepare_folder(folder: Path) -> None:
    """Make sure ``folder`` exists and takes new files, before any download."""
    if folder.exists() and not folder.is_dir():
        raise DRBNError(f"{folder} is a file, not a folder; pass --to a folder for the weights.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DRBNError(f"cannot create {folder} ({exc.strerror or exc}); pass --to a folder you can write to.") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DRBNError(f"{folder} is not writable; pass --to a folder you can write to.")


def by_hand(files: list[ReleasedFile], folder: Path) -> str:
    where = ", ".join(f"{f.url()} as {folder / f.filename}" for f in files)
    return f"download by hand {where} (or into the folder named by $DRBN_RELEASED_DIR)"


def download(file: ReleasedFile, url: str, target: Path, timeout: float) -> None:
    """Stream ``url`` into a temporary file beside ``target``; check length and sha256; rename.

    Raises DRBNError for a wrong checksum or a connection dropped mid-transfer, and lets
    ``OSError``/``urllib.error.URLError`` through for the caller to call it offline.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        digest, received = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            try:
                for block in iter(lambda: response.read(CHUNK), b""):
                    digest.update(block)
                    out.write(block)
                    received += len(block)
            except (http.client.HTTPException, ConnectionError) as exc:  # the server hung up mid-body
                raise DRBNError(
                    f"the connection dropped while downloading {url} after {received} bytes "
                    f"({type(exc).__name__}); nothing was kept: run fetch-weights again."
                ) from None
        # read(n) returns b"" at an early close instead of raising: compare with the announced length
        if length is not None and received != int(length):
            raise DRBNError(
                f"the connection dropped while downloading {url} ({received} of {length} bytes); "
                "nothing was kept: run fetch-weights again."
            )
        found = digest.hexdigest()
        if found != file.sha256:
            raise DRBNError(
                f"{url} has sha256 {found[:16]}..., not the released {file.sha256[:16]}...; "
                f"the download was deleted ({target.name} not written): check the source or download by hand."
            )
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fetch_weights(
    to: str | os.PathLike | None = None,
    only: str | Iterable[str] | None = None,
    base_url: str | None = None,
    timeout: float = TIMEOUT,
    log: Callable[[str], None] | None = print,
) -> list[Fetched]:
    """Download the released files named in ``only`` (default all of ``CHOICES``) into ``to``
    (default :func:`default_folder`), each verified by sha256.

    ``base_url`` (or ``$DRBN_WEIGHTS_BASE_URL``) replaces ``https://raw.githubusercontent.com``:
    a file is then fetched from ``<base_url>/<owner>/<repository>/<commit>/<path>``.
    """
    files = select(only)
    folder = Path(to).expanduser() if to is not None else default_folder()
    base_url = base_url or os.environ.get(BASE_URL_ENV) or None
    if not timeout > 0:
        raise DRBNError(f"timeout must be a positive number of seconds, got {timeout}.")
    say = log or (lambda _: None)

    # every check on what is already there comes before the first download
    prepare_folder(folder)
    present, missing = [], []
    for file in files:
        target = folder / file.filename
        if target.is_dir():
            raise DRBNError(f"{target} is a folder; move it away so that {file.filename} can be written there.")
        if not target.exists():
            missing.append(file)
        elif sha256_of(target) == file.sha256:
            present.append(Fetched(file, target, False))
        else:  # someone's own file of that name: never overwritten
            raise DRBNError(
                f"{target} exists but is not the released {file.filename} (sha256 differs); "
                "move it aside or delete it, then run fetch-weights again."
            )
    for fetched in present:
        say(f"{fetched.path}: already present, sha256 ok")

    done = list(present)
    for i, file in enumerate(missing):
        target, url = folder / file.filename, file.url(base_url)
        say(f"{target}: downloading {url}")
        try:
            download(file, url, target, timeout)
        except urllib.error.HTTPError as exc:
            raise DRBNError(
                f"{url} answered HTTP {exc.code} ({exc.reason}); {by_hand(missing[i:], folder)}."
            ) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:  # offline, refused, timed out
            reason = getattr(exc, "reason", None) or exc
            raise DRBNError(
                f"cannot download the released weights ({type(reason).__name__}: {reason}); "
                f"{by_hand(missing[i:], folder)}."
            ) from None
        say(f"{target}: sha256 ok")
        done.append(Fetched(file, target, True))
    return done


# ----------------------------------------------------------------------------- command line
def add_arguments(parser) -> None:
    """The ``fetch-weights`` options, added to an argparse (sub)parser."""
    parser.add_argument("--to", help="folder for the files (default: $DRBN_RELEASED_DIR, else data/released/ in the repository)")
    parser.add_argument("--only", nargs="+", choices=CHOICES, metavar="NAME",
                        help=f"fetch only these ({', '.join(CHOICES)}; default: all)")
    parser.add_argument("--base-url", help=f"a mirror laid out like {RAW_URL} (also ${BASE_URL_ENV})")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds to wait for the server (default %(default)s)")


def run(args) -> None:
    """``python -m drbn fetch-weights``: what :func:`fetch_weights` did, one line per file."""
    fetched = fetch_weights(args.to, args.only, args.base_url, args.timeout)
    new = sum(f.downloaded for f in fetched)
    folder = fetched[0].path.parent if fetched else args.to
    print(f"{len(fetched)} released file(s) verified in {folder} ({new} downloaded)")
