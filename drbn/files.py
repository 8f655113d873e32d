"""Every file the kit writes goes through here; introduced in notebooks/00_setup_check
(README: "What the kit never does to your files").

One path for images, CSV/markdown/JSON text, result records, checkpoints and summaries:

- :func:`check_targets` before any work: each target is absent or a regular file, its name
  fits the file system, its folder can be made and written, and an existing file is the
  kit's own (or ``overwrite`` was given). Everything wrong is listed in one DRBNError.
- :func:`write_file` writes through a temporary file in the target's folder (so the rename
  is atomic), with the permissions the umask gives a new file, and renames it into place.
  Any OSError (no space, permission, name too long, a folder in the way) becomes one line
  naming the file and what to do; the temporary file is removed, the previous file (if any)
  is left as it was.
- The kit's own files: PNGs it writes carry a ``Software: drbn-kit`` text chunk and its
  checkpoints a ``drbn-stage1``/``drbn-stage2`` kind, and a run's ``result.json`` its key,
  so they say so themselves. For other files (tables, summaries) the folder holds
  ``.drbn-outputs`` (JSON): the name, size
  and modification time of each. A file listed with the same size and time is the kit's and
  may be replaced; anything else is the user's.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import socket
import threading
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator

from .errors import DRBNError

MANIFEST = ".drbn-outputs"  # JSON, without the suffix: a listing of *.json is the user's files
SOFTWARE = "drbn-kit"  # the Software text chunk of every PNG the kit writes
TEMP_PREFIX = ".drbn-"
TEMP_SUFFIX = ".tmp"
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
_UMASK_LOCK = threading.Lock()  # os.umask is read by setting it: one thread at a time
_MANIFEST_LOCK = threading.Lock()  # flock excludes other processes, this the other threads
_SWEPT: set[Path] = set()  # folders whose stale temporary files this process removed


# ----------------------------------------------------------------------------- messages
def explain(exc: OSError, path: Path, previous: bool | None = None) -> DRBNError:
    """One line for an OSError met while writing ``path``: what happened and what to do."""
    kept = "" if previous is None else (f"; the previous {path.name} is unchanged" if previous
                                        else "; nothing was written")
    code = exc.errno
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return DRBNError(f"no space left to write {path}{kept}: free space on that disk or write to another folder.")
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return DRBNError(f"no permission to write {path} (read-only folder or file system){kept}: "
                         "pass a folder you can write to.")
    if code == errno.ENAMETOOLONG:
        return DRBNError(f"the name {path.name[:60]}... is too long for this file system{kept}: "
                         "shorten the input's or the output's name.")
    if code == errno.EISDIR:
        return DRBNError(f"{path} is a folder{kept}: move it away or write to another folder.")
    if code == errno.ENOTDIR:
        return DRBNError(f"{path.parent} is not a folder (a file of that name is in the way){kept}: "
                         "move it away or write to another folder.")
    return DRBNError(f"cannot write {path} ({exc.strerror or type(exc).__name__}){kept}: "
                     "check the disk and the folder, then run again.")


# ----------------------------------------------------------------------------- which files are the kit's
def _stamp(path: Path) -> list[int]:
    info = path.stat()
    return [info.st_size, info.st_mtime_ns]


def _read_manifest(folder: Path) -> dict[str, list[int]]:
    try:
        entries = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):  # missing or unreadable: nothing is known to be the kit's
        return {}
    return entries if isinstance(entries, dict) else {}


def is_kit_checkpoint_file(path: Path) -> bool:
    """True for a checkpoint this kit wrote: a torch zip whose pickle names a drbn kind
    (read without unpickling)."""
    try:
        with zipfile.ZipFile(path) as archive:
            name = next((n for n in archive.namelist() if n.endswith("/data.pkl")), None)
            return name is not None and b"drbn-stage" in archive.read(name)[:1 << 20]
    except (OSError, zipfile.BadZipFile, KeyError, ValueError):
        return False


def is_own(path: str | os.PathLike) -> bool:
    """True when ``path`` is a file the kit wrote (and nobody changed since)."""
    path = Path(path)
    entry = _read_manifest(path.parent).get(path.name)
    try:
        if entry is not None and _stamp(path) == list(entry):
            return True
    except OSError:
        return False
    if path.suffix.lower() == ".png":
        return is_kit_image_file(path)
    if path.name == "result.json":  # a run's record (drbn.results.Result) says what it is
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            return False
        return isinstance(record, dict) and {"key", "finished"} <= record.keys()
    return path.suffix == ".pt" and is_kit_checkpoint_file(path)


def is_kit_image_file(path: Path) -> bool:
    """True for a PNG the kit wrote: its ``Software`` text chunk says so."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return getattr(image, "text", {}).get("Software") == SOFTWARE
    except Exception:  # noqa: BLE001  not an image Pillow reads: not the kit's
        return False


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Hold an advisory lock on ``folder`` (POSIX flock; nothing elsewhere) while the manifest changes."""
    with _MANIFEST_LOCK:
        try:
            import fcntl
            fd = os.open(folder, os.O_RDONLY)
        except (ImportError, OSError):
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _update_manifest(folder: Path, changes: dict[str, list[int] | None]) -> None:
    with _folder_lock(folder):
        entries = _read_manifest(folder)
        for name, stamp in changes.items():
            if stamp is None:
                entries.pop(name, None)
            else:
                entries[name] = stamp
        entries = {name: stamp for name, stamp in entries.items() if (folder / name).exists()}
        text = json.dumps(entries, sort_keys=True) + "\n"
        _atomic(folder / MANIFEST, lambda f: f.write(text.encode()))


def adopt(path: str | os.PathLike) -> None:
    """Record ``path`` as the kit's own (a file the user hands over, e.g. with --resume)."""
    path = Path(path)
    if path.is_file():
        try:
            _update_manifest(path.parent, {path.name: _stamp(path)})
        except OSError:  # a read-only folder: the write that follows reports it
            pass


def forget(path: str | os.PathLike) -> None:
    """Drop ``path`` from its folder's manifest (it was moved away or deleted)."""
    path = Path(path)
    with contextlib.suppress(OSError):
        if path.name in _read_manifest(path.parent):
            _update_manifest(path.parent, {path.name: None})


# ----------------------------------------------------------------------------- checks before the work
def _name_max(folder: Path) -> int:
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def problems(path: str | os.PathLike, overwrite: bool = False) -> str | None:
    """Why ``path`` cannot be written as a kit output, or None when it can."""
    path = Path(path)
    if len(os.fsencode(path.name)) > _name_max(path.parent):
        return f"{path.name[:40]}... (name too long for this file system)"
    if path.is_dir():
        return f"{path} (a folder)"
    if path.exists() and not path.is_file():
        return f"{path} (not a regular file)"
    if path.exists() and not overwrite and not is_own(path):
        return f"{path} (not written by the kit)"
    return None


def check_targets(paths: Iterable[str | os.PathLike], overwrite: bool = False, option: str = "--overwrite") -> None:
    """Refuse, naming them all, targets that are folders, special files, names too long,
    or files the kit did not write (unless ``overwrite``); also probes each folder."""
    paths = [Path(p) for p in paths]
    found = [p for p in (problems(path, overwrite) for path in paths) if p]
    if found:
        foreign = all(p.endswith("(not written by the kit)") for p in found)
        shown = ", ".join(found[:6]) + (f" and {len(found) - 6} more" if len(found) > 6 else "")
        how = (f"move them away, write elsewhere, or pass {option} to replace them" if foreign and option
               else "move them away or write to another folder")
        raise DRBNError(f"{len(found)} output path(s) cannot be written: {shown}; {how} (nothing was written).")
    for folder in dict.fromkeys(p.parent for p in paths):
        check_folder(folder)


def check_folder(folder: str | os.PathLike) -> Path:
    """``folder`` if it exists as a writable folder or can be created (nothing is created)."""
    folder = Path(folder)
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise DRBNError(f"{folder} cannot be a folder: {probe} is a file; move it away or pass another folder.")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise DRBNError(f"{folder} is not writable ({probe} is read-only for this user); pass a folder you can write to.")
    return folder


# ----------------------------------------------------------------------------- writing
def _umask_mode() -> int:
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def sweep(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that processes of this host which no longer run left in
    ``folder`` (a kill -9 mid-write); returns them."""
    folder = Path(folder)
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(TEMP_PREFIX + _HOST + "-") and name.endswith(TEMP_SUFFIX)):
            continue
        pid = name[len(TEMP_PREFIX) + len(_HOST) + 1:].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def _temp_name(path: Path) -> str:
    tag = f"{TEMP_PREFIX}{_HOST}-{os.getpid()}-{os.urandom(4).hex()}."
    room = max(1, _name_max(path.parent) - len(tag) - len(TEMP_SUFFIX))
    return tag + path.name[:room] + TEMP_SUFFIX


def _open(fd: int) -> BinaryIO:
    """The temporary file's writer (tests replace it to fail at the N-th byte)."""
    return os.fdopen(fd, "wb")


def _atomic(path: Path, write: Callable[[BinaryIO], Any]) -> None:
    """Write through a temporary file beside ``path`` and rename it into place (OSError raised as is)."""
    tmp = path.parent / _temp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _umask_mode())
    try:
        with _open(fd) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_file(path: str | os.PathLike, write: Callable[[BinaryIO], Any], overwrite: bool = False,
               option: str = "--overwrite", record: bool = True) -> Path:
    """Write ``path`` with ``write(binary file)``, atomically; the one way the kit writes a file.

    Checked first (:func:`check_targets`); then the folder is created, stale temporary files
    of dead runs are swept, the data goes to a temporary file there and is renamed into
    place, and the file is recorded as the kit's. Every OSError is one DRBNError naming the
    file; the previous file, if any, is unchanged and no temporary file is left.
    """
    path = Path(path).expanduser()
    check_targets([path], overwrite, option)
    previous = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent not in _SWEPT:
            sweep(path.parent)
            _SWEPT.add(path.parent)
        _atomic(path, write)
    except (OSError, RuntimeError) as exc:
        cause = os_error_in(exc)
        if cause is None:
            raise
        raise explain(cause, path, previous) from None
    if record:  # PNGs and checkpoints say inside that the kit wrote them: no list needed
        with contextlib.suppress(OSError):  # the file is written; only the record could not be
            _update_manifest(path.parent, {path.name: _stamp(path)})
    return path


def os_error_in(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc``: itself, or one it was raised from or while handling
    (torch.save's zip writer reports a failed write as a RuntimeError on closing)."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, OSError):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def write_bytes(path: str | os.PathLike, data: bytes, overwrite: bool = False) -> Path:
    return write_file(path, lambda f: f.write(data), overwrite)


def write_text(path: str | os.PathLike, text: str, overwrite: bool = False) -> Path:
    """``text`` as UTF-8, newlines as given."""
    return write_file(path, lambda f: f.write(text.encode("utf-8")), overwrite)


def plain(value: Any) -> Any:
    """A JSON encoder's fallback: numpy and torch scalars as numbers, paths as text."""
    if hasattr(value, "item") and callable(value.item):  # numpy and torch scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_json(path: str | os.PathLike, payload: Any, overwrite: bool = False) -> Path:
    """``payload`` as indented JSON (numpy/torch scalars as numbers, paths as text)."""
    return write_text(path, json.dumps(payload, indent=1, default=plain) + "\n", overwrite)


def write_image(path: str | os.PathLike, image: Any, overwrite: bool = False) -> Path:
    """A uint8 H x W x 3 (or H x W) array as PNG (or the format the suffix names)."""
    from PIL import Image

    from PIL import PngImagePlugin

    fmt = Image.registered_extensions().get(Path(path).suffix.lower(), "PNG")
    extra = {}
    if fmt == "PNG":  # marks it as the kit's, so a rerun may replace it even without the manifest
        extra["pnginfo"] = PngImagePlugin.PngInfo()
        extra["pnginfo"].add_text("Software", SOFTWARE)
    return write_file(path, lambda f: Image.fromarray(image).save(f, format=fmt, **extra), overwrite,
                      record=fmt != "PNG")


def write_checkpoint(path: str | os.PathLike, payload: dict[str, Any], overwrite: bool = False) -> Path:
    """``torch.save(payload)``: plain tensors and containers, loadable with ``weights_only=True``."""
    import torch

    return write_file(path, lambda f: torch.save(payload, f), overwrite,
                      record="drbn-stage" not in str(payload.get("kind", "")))


def write_figure(path: str | os.PathLike, figure: Any, overwrite: bool = False, **savefig: Any) -> Path:
    """A matplotlib figure, in the format the suffix names."""
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    return write_file(path, lambda f: figure.savefig(f, format=fmt, **savefig), overwrite)



def probe(folder: str | os.PathLike) -> None:
    """Create and remove a temporary file in ``folder``: raises the OSError a write would meet."""
    tmp = Path(folder) / _temp_name(Path(folder) / "probe")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    os.unlink(tmp)


def create_exclusive(path: str | os.PathLike, text: str) -> bool:
    """Create ``path`` holding ``text``, all at once; False if it already exists (a lock file)."""
    path = Path(path)
    tmp = path.parent / _temp_name(path)
    try:
        _atomic_new(tmp, text.encode())
        try:
            os.link(tmp, path)  # atomic and exclusive: a reader never sees an empty lock
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, _umask_mode())
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as f:
                f.write(text.encode())
        return True
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _atomic_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _umask_mode())
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def claim(paths: Iterable[str | os.PathLike], overwrite: bool = False, option: str = "--overwrite") -> None:
    """:func:`check_targets`, then, with ``overwrite``, record the existing files among
    ``paths`` as the kit's, so that the writes which follow may replace them."""
    paths = [Path(p) for p in paths]
    check_targets(paths, overwrite, option)
    if overwrite:
        for path in paths:
            if path.is_file() and not is_own(path):
                adopt(path)
