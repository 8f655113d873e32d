"""Running the notebooks in order with papermill (``python -m drbn reproduce``); introduced in notebooks/00_setup_check.

``python -m drbn.reproduce [--preset cpu]`` is an alias of ``python -m drbn reproduce``.
The notebooks come with a clone of the repository, not with an installed package: they
are found in ``<repository>/notebooks``. Executed notebooks go to ``OUT/notebooks/``, figures to ``OUT/figures/``, and the numbers
each notebook recorded (with :func:`record`) to ``OUT/summary.json`` and ``OUT/summary.md``.
A failing notebook does not stop the others; the exit status is non-zero at the end.

Notebook 04 trains its own ablation grid and reads nothing the others write, so on two or
more cores it runs beside notebooks 00-02, each kernel with half the threads (``--sequential``
runs one at a time): two half-width trainings at once finish sooner than the same two at full
width one after the other (the README's run times). 03, 05 and 06 read 02's or 04's runs, so they
come after, with every thread.
"""
from __future__ import annotations

import ast
import contextlib
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from . import files
from .errors import DRBNError
from .results import read_json, write_json, write_text_atomic
from .runs import check_output_folder, run_lock

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
PRESETS = ("smoke", "cpu", "paper")
SIDE_LANE = ("04_",)  # notebooks that read no other notebook's runs and may run beside ...
MAIN_LANE = ("00_", "01_", "02_")  # ... these, which nothing in SIDE_LANE reads either
# Parameters that name a file or folder unless they hold one of these words.
PATH_PARAMETERS = {"DATA": ("auto", "synthetic"), "HQ": ("auto",), "UNPAIRED": ("auto", "test"),
                   "WEIGHTS": ("auto", "ours")}


def record(out: str | os.PathLike, notebook: str, values: dict[str, Any]) -> None:
    """Merge ``values`` into ``OUT/records/<notebook>.json`` (what the summary reports).

    Returns None: it is a notebook's last line, where a returned path would be printed.
    """
    path = Path(out) / "records" / f"{notebook}.json"
    current = read_json(path, "notebook record") if path.exists() else {}
    current.update(values)
    write_json(path, current)


def notebook_paths(folder: Path = NOTEBOOKS, only: list[str] | None = None) -> list[Path]:
    """The numbered notebooks in ``folder`` (those whose name contains one of ``only``)."""
    folder = Path(folder)
    available = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not available:
        raise DRBNError(
            f"no notebooks in {folder}: they come with a clone of the repository, not with the "
            "installed package; run this from a clone (git clone, then pip install -e .)."
        )
    paths = [p for p in available if any(name in p.stem for name in only)] if only else available
    if not paths:
        raise DRBNError(f"no notebook matches {only}; choose from {', '.join(p.stem for p in available)}.")
    return paths


def notebook_parameters(path: Path) -> set[str]:
    """The names the notebook's ``parameters`` cell assigns (read with ``ast``, which also
    takes the lines papermill.inspect_notebook cannot parse, e.g. a quote in a comment)."""
    import nbformat

    names: set[str] = set()
    for cell in nbformat.read(path, as_version=4).cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            for node in ast.walk(ast.parse(cell.source)):
                targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
                names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def check_parameters(paths: list[Path], params: dict[str, Any]) -> dict[str, Any]:
    """``params`` checked before any notebook runs: each name is a parameter of at least one
    of the notebooks, and a path parameter names a path that exists (made absolute, since
    the notebooks run in their own folder)."""
    known = set().union(*(notebook_parameters(p) for p in paths))
    unknown = sorted(set(params) - known)
    if unknown:
        raise DRBNError(f"unknown notebook parameter {', '.join(unknown)}; the notebooks take "
                        f"{', '.join(sorted(known))}.")
    checked = dict(params)
    for name, words in PATH_PARAMETERS.items():
        value = params.get(name)
        if isinstance(value, str) and value not in words:
            path = Path(value).expanduser()
            if not path.exists():
                raise DRBNError(f"-p {name} {value}: not found; pass an existing path or one of "
                                f"{', '.join(repr(w) for w in words)}.")
            checked[name] = str(path.resolve())
    return checked


def parse_value(text: str) -> Any:
    """``-p KEY VALUE``: a Python literal if it parses as one, else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def failed_cell(executed: Path) -> str:
    """Which cell raised, read from papermill's executed notebook."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return f"cell {index}: {output.get('ename')}: {output.get('evalue')}"
    return "no cell recorded an error (the kernel may have died)"


def schedule(paths: list[Path], side_by_side: bool = True) -> list[list[list[Path]]]:
    """The order to run ``paths`` in: phases one after another, each a list of lanes that run
    at the same time, each lane a list of notebooks run one after another."""
    side = [p for p in paths if p.stem.startswith(SIDE_LANE)]
    main = [p for p in paths if p.stem.startswith(MAIN_LANE)]
    if not (side_by_side and side and main):
        return [[[p]] for p in paths]
    rest = [p for p in paths if p not in side and p not in main]
    return [[main, side]] + [[[p]] for p in rest]


def default_threads() -> int:
    """The CPU threads PyTorch uses when a notebook's THREADS is 0 (its default)."""
    import torch

    return torch.get_num_threads()


def write_summary(out: Path, runs: list[dict[str, Any]], preset: str, wall_seconds: float) -> None:
    records = {p.stem: read_json(p, "notebook record") for p in sorted((out / "records").glob("*.json"))}
    write_json(out / "summary.json", {"preset": preset, "wall_seconds": wall_seconds, "runs": runs,
                                      "records": records})
    lines = [f"# DRBN reproduction summary (preset `{preset}`)", "",
             f"All notebooks: {wall_seconds / 60:.1f} min wall time.", "",
             "| notebook | status | seconds | ran beside |", "|---|---|---|---|"]
    lines += [f"| {r['notebook']} | {r['status']} | {r['seconds']:.0f} | {r.get('beside') or ''} |" for r in runs]
    for name, values in records.items():
        lines += ["", f"## {name}", ""]
        lines += [f"- {key}: {value:.4g}" if isinstance(value, float) else f"- {key}: {value}"
                  for key, value in values.items()]
    write_text_atomic(out / "summary.md", "\n".join(lines) + "\n")


PRINT_LOCK = threading.Lock()  # two lanes print: one whole line at a time


def say(line: str) -> None:
    with PRINT_LOCK:
        print(line, flush=True)


def run_notebook(path: Path, out: Path, parameters: dict[str, Any], preset: str, beside: str = "") -> dict[str, Any]:
    """Execute one notebook into ``out/notebooks``; its status ("ok" or where it failed) and seconds."""
    import papermill  # optional dependency: the [notebooks] and [dev] extras

    executed = out / "notebooks" / path.name
    say(f"== {path.stem} ({preset}" + (f", beside {beside}" if beside else "") + ")")
    started = time.perf_counter()
    status = "ok"
    try:
        papermill.execute_notebook(
            str(path), str(executed), parameters=parameters, cwd=str(path.parent),
            kernel_name="python3", progress_bar=False,
        )
    except Exception as exc:  # papermill raises its own error type, or the kernel died
        status = f"FAILED at {failed_cell(executed) if executed.exists() else type(exc).__name__}"
    files.adopt(executed)  # the kit's own from now on: a rerun replaces it
    seconds = time.perf_counter() - started
    say(f"   {path.stem}: {status} in {seconds:.0f} s")
    return {"notebook": path.stem, "status": status, "seconds": seconds, "beside": beside,
            "threads": parameters.get("THREADS") or default_threads()}


def run_lanes(lanes: list[list[Path]], out: Path, parameters: dict[str, Any], preset: str) -> list[dict[str, Any]]:
    """Run ``lanes`` at the same time, each in a daemon thread (papermill starts one kernel
    process per notebook). Ctrl-C ends the wait and papermill's exit hooks stop the kernels.
    That worked on a quiet machine; once, under load, the interrupted run hung and left its
    kernels running (not understood yet: look for leftover ipykernel processes)."""
    names = [", ".join(p.stem[:2] for p in lane) for lane in lanes]
    results: list[list[dict[str, Any]]] = [[] for _ in lanes]

    def run_lane(index: int) -> None:
        beside = " / ".join(name for k, name in enumerate(names) if k != index)
        for path in lanes[index]:
            results[index].append(run_notebook(path, out, parameters, preset, beside))

    threads = [threading.Thread(target=run_lane, args=(k,), daemon=True) for k in range(len(lanes))]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=1.0)
    except KeyboardInterrupt:
        say("interrupted: stopping the notebooks' kernels")
        stop_children()
        raise
    return [r for lane in results for r in lane]


def stop_children(grace: float = 5.0) -> int:
    """Stop every process this one started (the notebooks' kernels) and wait until they are
    gone: SIGTERM, then SIGKILL after ``grace`` seconds. Returns how many there were.

    Papermill's exit hooks stop the kernels only when the interpreter exits, up to 20 s after
    the command returned; a Ctrl-C must not return before they are gone.
    """
    try:
        import psutil  # installed with ipykernel, which the notebooks need
    except ImportError:
        return 0
    children = psutil.Process().children(recursive=True)
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=grace)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()
    psutil.wait_procs(alive, timeout=grace)
    return len(children)


def run(preset: str = "cpu", only: list[str] | None = None, params: dict[str, Any] | None = None,
        out: str | os.PathLike = "outputs", notebooks: Path = NOTEBOOKS, sequential: bool = False) -> int:
    """Execute the notebooks (see the module's docstring for which run side by side); return
    the number that failed."""
    import papermill  # noqa: F401  (fails here, before any work, without the extras)

    paths = notebook_paths(notebooks, only)  # first, so a wheel install fails before any work
    params = check_parameters(paths, params or {})
    out = check_output_folder(out).resolve()
    # papermill writes the executed notebooks itself: no folder may sit at their paths
    files.check_targets([out / "notebooks" / path.name for path in paths], overwrite=True)
    with run_lock(out):  # one run per OUT, the notebooks' training runs inside it included
        try:
            return _run(paths, params, out, preset, sequential)
        except KeyboardInterrupt:
            stop_children()
            raise


def _run(paths: list[Path], params: dict[str, Any], out: Path, preset: str, sequential: bool) -> int:
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    parameters = {"PRESET": preset, "OUT": str(out), "INTERACTIVE": False, "SOLUTIONS": True, **params}
    threads = params.get("THREADS") or default_threads()
    phases = schedule(paths, side_by_side=not sequential and threads >= 2)
    started = time.perf_counter()
    runs = []
    for lanes in phases:
        if len(lanes) == 1:
            runs += [run_notebook(path, out, parameters, preset) for path in lanes[0]]
            continue
        shared = {**parameters, "THREADS": params.get("THREADS") or max(1, threads // len(lanes))}
        runs += run_lanes(lanes, out, shared, preset)
    runs.sort(key=lambda r: r["notebook"])
    wall_seconds = time.perf_counter() - started
    write_summary(out, runs, preset, wall_seconds)
    failures = [r for r in runs if r["status"] != "ok"]
    print(f"{len(runs) - len(failures)} of {len(runs)} notebooks ran in {wall_seconds / 60:.1f} min; "
          f"summary in {out / 'summary.md'}")
    for r in failures:
        print(f"  {r['notebook']}: {r['status']} (see {out / 'notebooks' / (r['notebook'] + '.ipynb')})")
    return len(failures)


if __name__ == "__main__":  # python -m drbn.reproduce: an alias of python -m drbn reproduce
    from drbn.cli import main

    sys.exit(main(["reproduce", *sys.argv[1:]]))
