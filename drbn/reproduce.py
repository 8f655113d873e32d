"""Run the notebooks in order with papermill: ``python -m drbn.reproduce [--preset cpu]``.

Executed notebooks go to ``OUT/notebooks/``, figures to ``OUT/figures/``, and the numbers
each notebook recorded (with :func:`record`) to ``OUT/summary.json`` and ``OUT/summary.md``.
A failing notebook does not stop the others; the exit status is non-zero at the end.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
PRESETS = ("smoke", "cpu", "paper")


def record(out: str | os.PathLike, notebook: str, values: dict[str, Any]) -> Path:
    """Merge ``values`` into ``OUT/records/<notebook>.json`` (what the summary reports)."""
    path = Path(out) / "records" / f"{notebook}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    current = json.loads(path.read_text()) if path.exists() else {}
    current.update(values)
    path.write_text(json.dumps(current, indent=2, default=float))
    return path


def notebook_paths(folder: Path = NOTEBOOKS, only: list[str] | None = None) -> list[Path]:
    paths = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if any(name in p.stem for name in only)]
        if not paths:
            raise SystemExit(f"no notebook matches {only}; available: {[p.stem for p in sorted(folder.glob('[0-9][0-9]_*.ipynb'))]}")
    return paths


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


def write_summary(out: Path, runs: list[dict[str, Any]], preset: str) -> None:
    records = {p.stem: json.loads(p.read_text()) for p in sorted((out / "records").glob("*.json"))}
    summary = {"preset": preset, "runs": runs, "records": records}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    lines = [f"# DRBN reproduction summary (preset `{preset}`)", "",
             "| notebook | status | seconds |", "|---|---|---|"]
    lines += [f"| {r['notebook']} | {r['status']} | {r['seconds']:.0f} |" for r in runs]
    for name, values in records.items():
        lines += ["", f"## {name}", ""]
        lines += [f"- {key}: {value:.4g}" if isinstance(value, float) else f"- {key}: {value}"
                  for key, value in values.items()]
    (out / "summary.md").write_text("\n".join(lines) + "\n")


def run(preset: str = "cpu", only: list[str] | None = None, params: dict[str, Any] | None = None,
        out: str | os.PathLike = "outputs", notebooks: Path = NOTEBOOKS) -> int:
    """Execute the notebooks; return the number that failed."""
    import papermill

    out = Path(out).resolve()
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    parameters = {"PRESET": preset, "OUT": str(out), "INTERACTIVE": False, **(params or {})}
    runs = []
    for path in notebook_paths(notebooks, only):
        executed = out / "notebooks" / path.name
        print(f"== {path.stem} ({preset})", flush=True)
        started = time.perf_counter()
        status = "ok"
        try:
            papermill.execute_notebook(
                str(path), str(executed), parameters=parameters, cwd=str(path.parent),
                kernel_name="python3", progress_bar=False,
            )
        except Exception as exc:  # papermill raises its own error type, or the kernel died
            status = f"FAILED at {failed_cell(executed) if executed.exists() else type(exc).__name__}"
        seconds = time.perf_counter() - started
        runs.append({"notebook": path.stem, "status": status, "seconds": seconds})
        print(f"   {status} in {seconds:.0f} s", flush=True)
    write_summary(out, runs, preset)
    failures = [r for r in runs if r["status"] != "ok"]
    print(f"{len(runs) - len(failures)} of {len(runs)} notebooks ran; summary in {out / 'summary.md'}")
    for r in failures:
        print(f"  {r['notebook']}: {r['status']} (see {out / 'notebooks' / (r['notebook'] + '.ipynb')})")
    return len(failures)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drbn.reproduce", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu", choices=PRESETS)
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only notebooks whose name contains NAME")
    parser.add_argument("-p", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                        help="a notebook parameter, e.g. -p DATA /data/LOL")
    parser.add_argument("--out", default="outputs")
    args = parser.parse_args(argv)
    params = {key: parse_value(value) for key, value in args.p}
    return 1 if run(args.preset, args.only, params, args.out) else 0


if __name__ == "__main__":
    sys.exit(main())
