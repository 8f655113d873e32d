"""Run folders: what a command may write, and how, so that nothing a user made is lost;
introduced in notebooks/00_setup_check (README: "What the kit never does to your files").

- :func:`check_output_folder` / :func:`output_file`: an output path is checked (a folder,
  writable) before any work, so a mistake costs seconds, not a training run.
- :func:`run_lock`: one run at a time per folder. A lock file names the run's PID, host
  and start time; a second run into the same folder fails at once naming the first. The
  lock of a run that died on this host is taken over, saying so.
- :func:`claim_run_folder`: a training run never replaces a checkpoint it did not write.
  A folder holding one is refused unless the run continues it (``--resume``) or
  ``--overwrite`` is given, which moves the old checkpoint aside (never deletes it).
- :func:`continued_config`: ``--resume`` continues the saved run; only ``steps`` may
  change (the schedule is recomputed and said so), any other change is refused.
- :func:`output_names`: ``enhance`` never writes over an input, never into an input's own
  folder (a rerun would enhance its outputs), and gives inputs that share a stem distinct names.

Every file (the lock included) is written by :mod:`drbn.files`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import math
import os
import socket
import sys
from pathlib import Path
from typing import Any, Iterator, Sequence

from .distributed import is_main  # only the main process checks, locks and moves a run folder
from . import files
from .errors import DRBNError

LOCK_NAME = "drbn.lock"


# ----------------------------------------------------------------------------- output paths
def check_output_folder(folder: str | os.PathLike, what: str = "--out") -> Path:
    """``folder`` if it is (or can be created as) a folder this process can write to.

    Nothing is created: an existing folder is probed with a temporary file, a missing one
    through its nearest existing parent, which must be a writable folder.
    """
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise DRBNError(f"{what} {folder} is a file, not a folder; pass a folder (it is created if missing).")
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise DRBNError(f"{what} {folder} cannot be created: {probe} is a file; pass another folder.")
    try:
        files.probe(probe)
    except OSError as exc:
        where = "" if probe == folder else f" (its parent {probe} is not writable)"
        raise DRBNError(
            f"{what} {folder} is not writable{where}: {exc.strerror or type(exc).__name__}; "
            "pass a folder you can write to."
        ) from None
    return folder


def output_file(path: str | os.PathLike, default_name: str, what: str) -> Path:
    """The file an option like ``--csv`` names, checked before any work.

    An existing folder (or a path ending in a slash) means ``folder/default_name``.
    """
    text = os.fspath(path)
    path = Path(text).expanduser()
    if path.is_dir() or text.endswith(("/", os.sep)):
        path = path / default_name
    if path.is_dir():
        raise DRBNError(f"{what} {path} is a folder; pass a file name.")
    check_output_folder(path.parent, f"the folder of {what}")
    return path


# ----------------------------------------------------------------------------- the lock
_HELD: dict[Path, int] = {}  # lock files this process holds -> nesting depth


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except (OverflowError, ValueError):
        return False
    return True


def _read_lock(path: Path) -> dict[str, Any] | None:
    try:
        owner = json.loads(path.read_text())
        return owner if isinstance(owner, dict) and isinstance(owner.get("pid"), int) else {}
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


def _describe(owner: dict[str, Any]) -> str:
    return f"PID {owner.get('pid')} on {owner.get('host')}, started {owner.get('started')}"


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike, what: str = "--out") -> Iterator[Path]:
    """Hold ``folder/drbn.lock`` while the block runs (re-entrant within one process).

    A lock held by a live process, or by any process on another host, is an error that
    names it. The lock of a dead process on this host is taken over, saying so.
    """
    folder = Path(folder).expanduser()
    if not is_main():
        yield folder / LOCK_NAME
        return
    check_output_folder(folder, what)
    created = not folder.exists()  # removed again if the run leaves it empty (e.g. it was refused)
    folder.mkdir(parents=True, exist_ok=True)
    path = (folder / LOCK_NAME).resolve()
    if path in _HELD:
        _HELD[path] += 1
        try:
            yield path
        finally:
            _HELD[path] -= 1
        return
    me = {"pid": os.getpid(), "host": socket.gethostname(),
          "started": dt.datetime.now().isoformat(timespec="seconds"), "command": " ".join(sys.argv)}
    for _ in range(5):
        try:
            if files.create_exclusive(path, json.dumps(me)):
                break
        except OSError as exc:  # a full disk, a folder turned read-only: one line
            raise files.explain(exc, path) from None
        owner = _read_lock(path)
        if owner is None:  # released meanwhile
            continue
        if not owner:
            raise DRBNError(
                f"{path} is unreadable, so another run may be writing to {folder}; if none is, "
                "delete that file and run again."
            )
        same_host = owner.get("host") == me["host"]
        if not same_host or (owner["pid"] != me["pid"] and _pid_alive(owner["pid"])):
            raise DRBNError(
                f"another run ({_describe(owner)}) is writing to {folder}; wait for it to finish "
                f"or pass another {what}" + (
                    f" (if PID {owner['pid']} is not a drbn run, the number was reused: delete {path})."
                    if same_host else f" (if it no longer runs on {owner.get('host')}, delete {path}).")
            )
        stale = path.with_name(f".{path.name}.stale-{me['pid']}")
        try:
            os.replace(path, stale)  # only one of several takers gets it
        except FileNotFoundError:
            continue
        stale.unlink(missing_ok=True)
        print(f"drbn: warning: took over the lock of run {_describe(owner)}, which is no longer "
              "running (its outputs are kept)", file=sys.stderr)
    else:
        raise DRBNError(f"could not take the lock {path}; another run keeps claiming {folder}: try again.")
    _HELD[path] = 1
    try:
        yield path
    finally:
        _HELD[path] -= 1
        if _HELD[path] <= 0:
            del _HELD[path]
            if (_read_lock(path) or {}).get("pid") == me["pid"]:
                path.unlink(missing_ok=True)
            if created:
                with contextlib.suppress(OSError):  # only an empty folder: rmdir refuses any other
                    folder.rmdir()


# ----------------------------------------------------------------------------- training folders
def move_aside(path: Path, when: dt.datetime | None = None) -> Path:
    """Rename ``path`` to ``<stem>.replaced-YYYYmmdd-HHMMSS<suffix>`` beside it (never deletes)."""
    stamp = (when or dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.stem}.replaced-{stamp}{path.suffix}")
    n = 2
    while target.exists():
        target = path.with_name(f"{path.stem}.replaced-{stamp}-{n}{path.suffix}")
        n += 1
    os.replace(path, target)
    files.forget(path)
    return target


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def claim_run_folder(folder: str | os.PathLike, checkpoint_name: str,
                     resume: str | os.PathLike | None = None, overwrite: bool = False) -> Path | None:
    """Check that a training run may write ``folder/checkpoint_name``; call it holding
    :func:`run_lock`. Returns where an old checkpoint was moved, or None.

    A checkpoint already there is continued only when ``resume`` names that very file,
    and replaced only with ``overwrite``: it is moved aside, not deleted.
    """
    folder = Path(folder).expanduser()
    existing = folder / checkpoint_name
    if not existing.exists() or not is_main():
        return None
    resumes_it = resume is not None and _same_file(Path(resume).expanduser(), existing)
    if resumes_it and overwrite:
        raise DRBNError(f"--overwrite would move aside {existing}, the checkpoint --resume continues; "
                        "pass only one of them.")
    if resumes_it:
        files.adopt(existing)  # continued by the kit from now on, whoever wrote it
        return None
    if not overwrite:
        how = (f"--resume {existing} to continue it" if resume is None
               else f"--resume {existing} to continue that run instead")
        raise DRBNError(f"{existing} already exists (a previous run); pass {how}, --overwrite to move it "
                        "aside and start again, or another --out.")
    moved = move_aside(existing)
    print(f"drbn: moved the previous checkpoint aside: {moved}")
    return moved


# ----------------------------------------------------------------------------- settings
def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        found: dict[str, Any] = {}
        for key, item in value.items():
            found.update(_flat(item, f"{prefix}{key}."))
        return found
    return {prefix[:-1]: list(value) if isinstance(value, tuple) else value}


def check_settings(config: Any) -> None:
    """Refuse settings no run can use: ``steps`` <= 0, a negative seed, a size <= 0, or a
    number that is NaN or infinite (a NaN learning rate would pass for divergence)."""
    for name, value in _flat(config).items():
        leaf = name.rsplit(".", 1)[-1]
        if isinstance(value, bool):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise DRBNError(f"setting {name} is {value}; every numeric setting must be a finite number.")
        if isinstance(value, list) and any(isinstance(v, float) and not math.isfinite(v) for v in value):
            raise DRBNError(f"setting {name} is {value}; every numeric setting must be a finite number.")
        if leaf in ("steps", "batch_size", "crop", "eval_every", "checkpoint_every") and (
                not isinstance(value, int) or value <= 0):
            raise DRBNError(f"{leaf.replace('_', '-')} must be a positive whole number, got {value}"
                            + ("" if leaf != "steps" else "; a run needs at least one step") + ".")
        if leaf == "seed" and (not isinstance(value, int) or value < 0):
            raise DRBNError(f"seed must be a whole number >= 0, got {value}.")


def _same_setting(a: Any, b: Any, name: str) -> bool:
    if a == b:
        return True
    if name.rsplit(".", 1)[-1] in ("data", "unpaired", "high_quality", "vgg_weights") and \
            isinstance(a, str) and isinstance(b, str):
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    return False


def continued_config(saved: Any, asked: Any, done: int, source: str | os.PathLike,
                     halve_at: str | None = "lr_halve_at", ignore: Sequence[str] = ("notes",)) -> Any:
    """The config a resumed run continues with: ``saved`` with ``asked``'s ``steps``.

    Any other difference between ``asked`` and ``saved`` is refused, listing each one.
    A new ``steps`` recomputes the learning-rate schedule (the halving point of field
    ``halve_at``, a fraction of ``steps``), said in one line.
    """
    mine, theirs = _flat(saved), _flat(asked)
    changed = [f"{name} {theirs.get(name)!r} (saved {mine.get(name)!r})"
               for name in sorted(mine.keys() | theirs.keys())
               if name != "steps" and name.split(".")[0] not in ignore
               and not _same_setting(mine.get(name), theirs.get(name), name)]
    if changed:
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        raise DRBNError(f"--resume continues the run saved in {source}, which cannot change: {shown}; "
                        "drop those options (or start a new run with --overwrite or another --out).")
    steps = asked.steps
    if steps == saved.steps:
        return saved
    if steps < done:
        raise DRBNError(f"{source} is already at step {done}; pass --steps above {done} to extend it.")
    note = f"drbn: resuming at step {done} with the schedule changed from {saved.steps} to {steps} steps"
    if getattr(saved, "schedule", "halve") == "cosine":
        note += "; the learning rate is recomputed: the cosine decay now reaches 0 at the new end"
    elif halve_at is not None and hasattr(saved, halve_at):
        fraction = getattr(saved, halve_at)
        before, after = int(fraction * saved.steps), int(fraction * steps)
        note += f"; the learning rate is recomputed: it now halves after step {after} (was {before})"
    else:
        note += "; the learning rate is constant, so only the end moves"
    if is_main():
        print(note)
    return dataclasses.replace(saved, steps=steps)


# ----------------------------------------------------------------------------- enhance outputs
def output_names(inputs: Sequence[Path], out_dir: Path, suffixes: Sequence[str] = ("",),
                 extension: str = ".png") -> tuple[list[Path], list[str]]:
    """The output stem of each input (its file stem, made distinct) and notes on renames.

    Inputs that share a stem (``x.jpg``, ``x.png``) get ``x_jpg`` and ``x_png``; a name
    still taken gets ``_2``, ``_3``. Each stem is checked with every ``suffixes`` entry
    (``_band1``, ...) appended. Raises DRBNError when ``out_dir`` is the folder of an
    input (a rerun would enhance the outputs) or an output would land on an input.
    """
    out_resolved = out_dir.expanduser().resolve()
    input_files = {p.resolve() for p in inputs}
    for path in inputs:
        if path.resolve().parent == out_resolved:
            raise DRBNError(
                f"the output folder {out_dir} also holds the input {path.name}: outputs could replace "
                "photos and a rerun would enhance its own outputs; pass another -o (e.g. a sub-folder)."
            )
    counts: dict[str, int] = {}
    for path in inputs:
        counts[path.stem.lower()] = counts.get(path.stem.lower(), 0) + 1
    taken: set[str] = set()
    stems, notes = [], []
    for path in inputs:
        base = path.stem if counts[path.stem.lower()] == 1 else f"{path.stem}_{path.suffix.lstrip('.').lower()}"
        stem, n = base, 2
        while any((stem + s + extension).lower() in taken for s in suffixes):
            stem, n = f"{base}_{n}", n + 1
        taken.update((stem + s + extension).lower() for s in suffixes)
        target = out_dir / (stem + extension)
        if stem != path.stem:
            notes.append(f"{path} -> {target.name}")
        for s in suffixes:
            if (out_dir / (stem + s + extension)).resolve() in input_files:
                raise DRBNError(f"output {out_dir / (stem + s + extension)} would overwrite an input; "
                                "pass another -o.")
        stems.append(out_dir / stem)
    return stems, notes
