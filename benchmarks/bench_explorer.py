"""The explorer of notebook 06: what one band-slider move costs against one recursions pass.

    python benchmarks/bench_explorer.py                       # synthetic test pair, random weights
    python benchmarks/bench_explorer.py --weights model_s1.pt --data path/to/LOL --threads 2

In one run, repeats interleaved (round-robin) so that a busier stretch of the machine hits
every measurement alike, medians of ``--repeats``:

- *recursions pass*: ``stage1.recursions`` on the whole image, padded as the explorer pads
  it: what every slider move cost before the explorer cached the recursions;
- *first view*: ``viz.explore`` on an image it has not seen (the pass, the bands, the figure);
- *band change*: ``viz.explore`` with new band scales on an image it has seen (the figure only);
- *band change, shown*: the same plus the PNG that the notebook displays (IPython's
  ``print_figure``, ``bbox_inches="tight"``, as ``%matplotlib inline`` does);
- *recursion change, shown*: another recursion t of the same image, with its PNG;
- *widget band change*: ``viz.Explorer``, the explorer as widgets: a band slider moved,
  its two changed panels encoded as PNG (what the kernel sends; the browser's drawing is
  not timed).

The target: a band change costs at most 0.1 of a recursions pass. Both ratios are printed.
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import time

import numpy as np
import torch
from IPython.core.pylabtools import print_figure

from drbn import viz
from drbn.data import describe, load_pairs
from drbn.enhance import pad_to_multiple
from drbn.model import DRBN

TARGET = 0.1


def load(weights: str | None) -> DRBN:
    """Stage 1: the released weights if given, else the released configuration with random init (seed 0)."""
    if weights:
        from drbn.weights import load_stage1

        return load_stage1(weights).eval()
    torch.manual_seed(0)
    return DRBN().eval()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", help="a stage-1 checkpoint (default: random weights, same speed)")
    parser.add_argument("--data", default="synthetic", help="paired data for drbn.data.load_pairs (test split, first pair)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    parser.add_argument("--json", help="write the numbers here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    stage1 = load(args.weights)
    pair = load_pairs(args.data, "test")[0]
    low, target = pair.y, pair.x
    padded = pad_to_multiple(torch.from_numpy(np.ascontiguousarray(low)).permute(2, 0, 1)[None])
    rng = np.random.default_rng(0)

    def recursions_pass():
        with torch.inference_mode():
            stage1.recursions(padded)

    def first_view():
        viz._explored.clear()  # forget every image: the next view runs the network
        viz.explore(stage1, low, band_scales=(1.0, 1.0, 1.0), target=target)

    def band_change():
        return viz.explore(stage1, low, band_scales=tuple(rng.uniform(0, 3, 3).round(2)), target=target)

    def band_change_shown():
        print_figure(band_change(), "png")

    def recursion_change_shown():
        t = int(rng.integers(1, stage1.config.recursions + 1))
        print_figure(viz.explore(stage1, low, recursion=t, band_scales=(1.0, 1.0, 1.0), target=target), "png")

    explorer = viz.Explorer(stage1, {pair.name: (low, target)})

    def widget_band_change():
        explorer.scales[int(rng.integers(3))].value = round(float(rng.uniform(0, 3)), 2)

    measured = {"recursions pass": recursions_pass, "first view": first_view, "band change": band_change,
                "band change, shown": band_change_shown, "recursion change, shown": recursion_change_shown,
                "widget band change": widget_band_change}
    recursions_pass(), first_view(), band_change_shown()  # warm-up: allocations, fonts, the cache filled
    seconds: dict[str, list[float]] = {name: [] for name in measured}
    for _ in range(args.repeats):
        for name, run in measured.items():
            if name != "first view":
                viz.explored(stage1, low)  # refill after the first view emptied it (not timed)
            started = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - started)
    median = {name: float(np.median(values)) for name, values in seconds.items()}
    base = median["recursions pass"]
    report = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads",
        "torch": torch.__version__, "weights": args.weights or "random (released configuration)",
        "image": f"{describe(args.data)}: {pair.name}, {low.shape[1]} x {low.shape[0]}",
        "repeats": args.repeats, "median_seconds": median,
        "fastest_seconds": {name: float(min(values)) for name, values in seconds.items()},
        "ratio_to_recursions_pass": {name: value / base for name, value in median.items()},
    }
    print(f"{report['image']}; {report['machine']}; weights: {report['weights']}; {args.repeats} repeats")
    print(f"{'':<26}{'median s':>10}{'fastest s':>11}{'/ pass':>9}")
    for name in measured:
        print(f"{name:<26}{median[name]:>10.3f}{report['fastest_seconds'][name]:>11.3f}"
              f"{report['ratio_to_recursions_pass'][name]:>9.3f}")
    for name in ("band change", "band change, shown", "widget band change"):
        ratio = report["ratio_to_recursions_pass"][name]
        print(f"{name}: {ratio:.3f} of a recursions pass ({'within' if ratio <= TARGET else 'ABOVE'} the target {TARGET})")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)
    return report


if __name__ == "__main__":
    main()
