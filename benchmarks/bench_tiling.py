"""Tiled inference: how wide the overlap must be, and memory and time against image size.

    python benchmarks/bench_tiling.py overlap [--weights model_s1.pt] [--image photo.jpg]
    python benchmarks/bench_tiling.py memory  [--weights model_s1.pt] [--stage2 model_R_s2.pt]

``overlap``: how far the change made by cutting an image reaches into the output, and on a
1200 x 900 image the largest difference between tiled and whole-image
output (in 8-bit levels) for a range of overlaps, with small tiles so that there are many
seams, and the network's theoretical receptive field (the radius over which the gradient
of one output pixel with respect to the input is non-zero), which is far wider than the
distance over which the output actually depends on the input.

``memory``: for 1, 3 and 12 megapixels, in a fresh process per run, the peak resident
memory (``getrusage`` ru_maxrss: torch allocates outside Python's heap, so tracemalloc
would not see it) and the wall time of ``enhance`` with ``tile="auto"``, and whole-image
runs where they fit, to measure the bytes per pixel the automatic tile size is based on.
One run per size: these are long.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np
import torch

from drbn.enhance import BYTES_PER_PIXEL, OVERLAP, enhance, pad_to_multiple
from drbn.model import DRBN

SIZES = {"1 MP": (864, 1152), "3 MP": (1500, 2000), "12 MP": (3000, 4000)}


def load(weights: str | None, stage2: str | None):
    """Stage 1 (released weights if given, else random init, seed 0) and the recomposer."""
    if weights:
        from drbn.weights import load_stage1

        stage1 = load_stage1(weights)
    else:
        torch.manual_seed(0)
        stage1 = DRBN().for_inference()
    recomposer = None
    if stage2:
        from drbn.weights import load_recomposer

        recomposer = load_recomposer(stage2)
    return stage1, recomposer


def test_image(height: int, width: int, path: str | None) -> np.ndarray:
    """A photo resized to height x width, or smooth random structure with noise."""
    if path:
        from PIL import Image

        with Image.open(path) as img:
            return np.asarray(img.convert("RGB").resize((width, height), Image.BICUBIC), np.float32) / 255
    rng = np.random.default_rng(0)
    coarse = torch.from_numpy(rng.random((1, 3, height // 32 + 2, width // 32 + 2), np.float32))
    smooth = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic")[0]
    image = 0.25 * smooth.permute(1, 2, 0).numpy() + 0.02 * rng.standard_normal((height, width, 3))
    return np.clip(image, 0, 1).astype(np.float32)


# ----------------------------------------------------------------------------- overlap
def receptive_radius(stage1: DRBN, size: int = 640) -> int:
    """Largest distance from the centre at which d output(centre) / d input is non-zero."""
    y = (0.3 * torch.rand(1, 3, size, size)).requires_grad_()
    with torch.enable_grad():
        stage1.recursions(y)[-1].full[0, :, size // 2, size // 2].sum().backward()
    rows, cols = torch.nonzero(y.grad[0].abs().sum(0)).unbind(1)
    return int(max((rows - size // 2).abs().max(), (cols - size // 2).abs().max()))


def cut_reach(stage1: DRBN, image: np.ndarray, width: int = 512) -> dict[int, float]:
    """How far a cut reaches: max |output of image[:, :width] - output of the whole image|
    (8-bit levels) in the column at each distance from the cut."""
    whole = enhance(stage1, image, tile=None).output[:, :width]
    cut = enhance(stage1, image[:, :width], tile=None).output
    per_column = 255 * np.abs(cut - whole).max(axis=(0, 2))
    return {d: float(per_column[width - 1 - d]) for d in (0, 16, 32, 64, 96, 128, 160, 192, 256)}


def cmd_overlap(args) -> dict:
    stage1, recomposer = load(args.weights, args.stage2)
    reach = cut_reach(stage1, test_image(256, 768, args.image))
    print("distance from a cut -> max change (8-bit levels): "
          + ", ".join(f"{d}: {v:.3g}" for d, v in reach.items()), flush=True)
    image = test_image(900, 1200, args.image)
    start = time.perf_counter()
    whole = enhance(stage1, image, recomposer, tile=None).output
    print(f"whole 1200x900: {time.perf_counter() - start:.1f} s")
    radius = receptive_radius(stage1)
    print(f"theoretical receptive field: {radius} px from the centre (non-zero gradient)")
    rows = []
    for overlap in args.overlaps:
        tile = args.tile
        start = time.perf_counter()
        tiled = enhance(stage1, image, recomposer, tile=tile, overlap=overlap).output
        diff = 255 * np.abs(np.clip(tiled, 0, 1) - np.clip(whole, 0, 1)).max()
        raw = 255 * np.abs(tiled - whole).max()
        rows.append({"overlap": overlap, "tile": tile, "max_diff_8bit": float(diff),
                     "max_diff_unclamped_8bit": float(raw), "seconds": time.perf_counter() - start})
        print(f"overlap {overlap:4d}, tile {tile}: max |tiled - whole| = {diff:.3f} levels "
              f"(unclamped {raw:.3f}), {rows[-1]['seconds']:.1f} s", flush=True)
    return {"cut_reach": reach, "receptive_radius": radius, "overlaps": rows}


# ----------------------------------------------------------------------------- memory
def child(args) -> None:
    """One measurement in this (fresh) process; prints one JSON line."""
    torch.set_num_threads(args.threads)
    stage1, recomposer = load(args.weights, args.stage2)
    height, width = args.child
    image = test_image(height, width, None)
    # warm the kernels on a small image, so the measured run is the steady state
    enhance(stage1, image[:64, :64], recomposer)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tile = None if args.tile == "none" else ("auto" if args.tile == "auto" else int(args.tile))
    start = time.perf_counter()
    enhance(stage1, image, recomposer, tile=tile)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"height": height, "width": width, "tile": args.tile, "seconds": seconds,
                      "peak_rss": peak, "baseline_rss": baseline}))


def run_child(args, height: int, width: int, tile: str) -> dict:
    command = [sys.executable, __file__, "memory", "--child", str(height), str(width),
               "--tile", tile, "--threads", str(args.threads)]
    command += ["--weights", args.weights] if args.weights else []
    command += ["--stage2", args.stage2] if args.stage2 else []
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def cmd_memory(args) -> dict:
    from drbn.enhance import auto_tile

    rows = []
    for name, (h, w) in SIZES.items():
        if name not in args.sizes:
            continue
        for tile in ["auto"] + (["none"] if h * w <= args.whole_up_to * 1e6 else []):
            r = run_child(args, h, w, tile)
            r["name"] = name
            r["auto_tile"] = auto_tile(*pad_to_multiple(torch.empty(1, 1, h, w)).shape[-2:])
            rows.append(r)
            print(f"{name:>6} {w}x{h} tile={tile:<5} (auto: {r['auto_tile']}) "
                  f"{r['seconds']:7.1f} s  {r['seconds'] / (h * w / 1e6):5.2f} s/MP  "
                  f"peak RSS {r['peak_rss'] / 2**30:5.2f} GiB "
                  f"(before the run {r['baseline_rss'] / 2**30:4.2f} GiB)", flush=True)
    whole = [r for r in rows if r["tile"] == "none"]
    if len(whole) >= 2:
        a, b = whole[0], whole[-1]
        slope = (b["peak_rss"] - a["peak_rss"]) / (b["height"] * b["width"] - a["height"] * a["width"])
        print(f"whole-image peak RSS grows by {slope:.0f} bytes per pixel "
              f"(enhance.BYTES_PER_PIXEL = {BYTES_PER_PIXEL})")
    return {"runs": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("overlap", "memory"))
    parser.add_argument("--weights", help="stage-1 weights (default: random init, seed 0)")
    parser.add_argument("--stage2", help="recomposer weights: tile stage 2 as well")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--image", help="overlap: a photo resized to 1200x900 (default: synthetic)")
    parser.add_argument("--tile", default="768", help="overlap: tile side; memory --child: auto|none|N")
    parser.add_argument("--overlaps", type=int, nargs="+", default=[96, 128, OVERLAP, 192])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--whole-up-to", type=float, default=3.5,
                        help="memory: also run whole images up to this many megapixels")
    parser.add_argument("--child", type=int, nargs=2, metavar=("H", "W"), help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if args.child:
        return child(args)
    torch.set_num_threads(args.threads)
    if args.what == "overlap":
        args.tile = int(args.tile)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {args.threads} threads, "
          f"{platform.processor() or platform.machine()}")
    results = cmd_overlap(args) if args.what == "overlap" else cmd_memory(args)
    if args.json:
        results["meta"] = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
                           "torch": torch.__version__, "threads": args.threads,
                           "weights": args.weights or "random init (seed 0)", "stage2": args.stage2}
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
