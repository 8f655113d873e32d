"""The budget ladder: the paper's stage-1 ablation claims judged at several training budgets;
introduced in notebooks/04_ablations (results/ladder/ holds the kit's reference ladder).

Each rung is one ``python -m drbn ablate --preset ladder-<k>x`` table. A claim compares two
rows with :func:`drbn.results.compare` (a difference is real only beyond the combined seed
spread) and reads as *supported* (real, in the paper's direction), *contradicted* (real,
against it) or *within noise*; with one seed on a side, *one seed: no spread known*.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from .errors import DRBNError
from .results import compare, read_results

# The paper's claims about stage 1 (Sec. 4.3, Table 2): (claim, the paper's better row, the other)
CLAIMS = (
    ("the multi-scale band loss helps", "RBL-v2", "RBL-v1"),
    ("recursion with feature residuals and the recursive input helps", "DRBN T=4", "RBL-v3"),
    # DRBN T=1 trains exactly as RBL-v2 (one run serves both rows), so the ladder trains RBL-v2 only
    ("more recursions help (T = 4 vs T = 1)", "DRBN T=4", "RBL-v2"),
)
VARIANTS = ("RBL-v1", "RBL-v2", "RBL-v3", "DRBN T=4")


def read_ladder(folder: str | os.PathLike, rungs: Sequence[int] = (1, 4, 16)) -> list[tuple[int, list[dict]]]:
    """``[(budget multiple, rows), ...]`` of the rungs present under ``folder`` (``<k>x/results.json``)."""
    found = [(k, read_results(Path(folder) / f"{k}x")["rows"]) for k in rungs
             if (Path(folder) / f"{k}x" / "results.json").exists()]
    if not found:
        raise DRBNError(f"no ladder in {folder}: expected {', '.join(f'{k}x/results.json' for k in rungs)}.")
    return found


def verdict(rows: Sequence[dict], better: str, other: str, key: str) -> dict[str, Any]:
    """One claim on one metric: :func:`compare`'s numbers and a word for the paper's claim."""
    result = compare(rows, better, other, key)
    by = {r["variant"]: r for r in rows}
    if any(by[name].get("only_negated") for name in (better, other)):
        result.update(real=None, word="not comparable: every run negated")
    elif result["real"] is None:
        result["word"] = "one seed: no spread known"
    elif not result["real"]:
        result["word"] = "within noise"
    else:
        result["word"] = "supported" if result["delta"] > 0 else "contradicted"
    result["seeds"] = (by[better].get("seeds"), by[other].get("seeds"))
    return result


def verdicts(rungs: Sequence[tuple[int, Sequence[dict]]], keys: Sequence[str] = ("psnr", "ssim")) -> list[dict[str, Any]]:
    """Every claim of :data:`CLAIMS` at every rung where both rows exist, on each metric."""
    found = []
    for budget, rows in rungs:
        names = {r["variant"] for r in rows if r.get("psnr") is not None}
        for claim, better, other in CLAIMS:
            if better in names and other in names:
                found.append({"budget": budget, "claim": claim, "better": better, "other": other,
                              **{key: verdict(rows, better, other, key) for key in keys}})
    return found


def verdict_table(rungs: Sequence[tuple[int, Sequence[dict]]]) -> str:
    """The verdicts as a markdown table: per budget and claim, each metric's Δ (combined seed
    spread) and its word, and the seeds on each side."""
    lines = ["| budget | claim | PSNR Δ (spread) | PSNR verdict | SSIM Δ (spread) | SSIM verdict | seeds |",
             "|---|---|---|---|---|---|---|"]
    for v in verdicts(rungs):
        cells = []
        for key, digits in (("psnr", 2), ("ssim", 3)):
            spread = "—" if v[key]["spread"] is None else f"{v[key]['spread']:.{digits}f}"
            cells += [f"{v[key]['delta']:+.{digits}f} ({spread})", v[key]["word"]]
        seeds = " vs ".join(str(s) for s in v["psnr"]["seeds"])
        lines.append(f"| {v['budget']}x | {v['claim']} ({v['better']} vs {v['other']}) | {' | '.join(cells)} | {seeds} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m drbn.ladder DIR [--figure OUT]``: print the verdict table of the ladder in
    DIR; with ``--figure``, also draw each variant against the budget to OUT/figures/ladder.png."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m drbn.ladder", description=main.__doc__.split("\n")[0])
    parser.add_argument("folder", nargs="?", default="results/ladder")
    parser.add_argument("--figure", metavar="OUT", help="also save the figure under OUT/figures/")
    args = parser.parse_args(argv)
    rungs = read_ladder(args.folder)
    print(verdict_table(rungs))
    if args.figure:
        from . import viz  # matplotlib only when a figure is asked for

        fig = viz.plot_ladder(rungs, VARIANTS, title=f"the ladder in {args.folder}: mean ± std over seeds")
        print(f"figure: {viz.save_figure(fig, args.figure, 'ladder')}")


if __name__ == "__main__":
    main()
