"""The CUDA paths on one GPU: training steps, tiled enhancement, peak GPU memory.

    python benchmarks/bench_cuda.py [--weights model_s1.pt] [--json cuda.json]

In one run on ``cuda:0``:

- training step (batch 4 of 128² and of 256² crops, forward + -SSIM + backward + Adam) for
  the authors' computation and for the kit's, as in ``bench_stage1.py``, timed round-robin
  with the GPU synchronised after each step;
- ``enhance`` at 1, 3 and 12 megapixels with ``tile="auto"`` and, where it fits, whole:
  seconds and peak GPU memory (``torch.cuda.max_memory_allocated``);
- on a 1200 x 900 image, the largest difference between tiled (768-px windows, the default
  overlap) and whole-image output in 8-bit levels, and between the GPU's and the CPU's
  whole-image output.

The GPU convolutions run in PyTorch's default precision settings (cuDNN may use TF32 on
Ampere and later GPUs); the GPU-vs-CPU row says what that costs in 8-bit levels.
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import time

import numpy as np
import torch

from bench_stage1 import make_model, time_round_robin, training_steps
from bench_tiling import SIZES, test_image
from drbn.enhance import OVERLAP, enhance


def synchronised(fn, device):
    def run():
        fn()
        torch.cuda.synchronize(device)
    return run


def training_table(model, device, repeats: int) -> list[dict]:
    rows = []
    for size in (128, 256):
        steps = {name: synchronised(fn, device) for name, fn in training_steps(model.to(device), 4, size, device).items()}
        # two warm-up steps each: cuDNN picks its algorithms on the first steps
        medians = {name: statistics.median(t) for name, t in time_round_robin(steps, repeats, warmup=2).items()}
        authors = medians["authors' code"]
        rows.append({"crop": size, "seconds": medians, "ratios": {k: v / authors for k, v in medians.items()}})
        print(f"training step 4 x {size}²: " + ", ".join(f"{name} {1e3 * v:.1f} ms ({v / authors:.2f}x)"
                                                         for name, v in medians.items()), flush=True)
    return rows


def enhance_table(model, device) -> list[dict]:
    rows = []
    enhance(model, test_image(64, 64, None))  # warm the kernels
    for name, (h, w) in SIZES.items():
        image = test_image(h, w, None)
        for tile in ("auto", None):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            start = time.perf_counter()
            try:
                enhance(model, image, tile=tile)
            except torch.OutOfMemoryError:
                print(f"{name} tile={tile}: out of GPU memory", flush=True)
                continue
            torch.cuda.synchronize(device)
            seconds = time.perf_counter() - start
            peak = torch.cuda.max_memory_allocated(device)
            rows.append({"size": name, "tile": tile or "none", "seconds": seconds, "peak_bytes": peak})
            print(f"{name:>6} {w}x{h} tile={tile or 'none':<5} {seconds:6.2f} s  "
                  f"{seconds / (h * w / 1e6):5.3f} s/MP  peak GPU memory {peak / 2**30:5.2f} GiB", flush=True)
    return rows


def seams_and_precision(model, device) -> dict:
    image = test_image(900, 1200, None)
    whole = np.clip(enhance(model, image, tile=None).output, 0, 1)
    tiled = np.clip(enhance(model, image, tile=768, overlap=OVERLAP).output, 0, 1)
    on_cpu = np.clip(enhance(model.to("cpu").for_inference(), image, tile=None).output, 0, 1)
    model.to(device)
    result = {"tiled_vs_whole_levels": float(255 * np.abs(tiled - whole).max()),
              "gpu_vs_cpu_levels": float(255 * np.abs(whole - on_cpu).max()),
              "gpu_vs_cpu_mean_levels": float(255 * np.abs(whole - on_cpu).mean())}
    print(f"1200x900: tiled (768 px, overlap {OVERLAP}) vs whole {result['tiled_vs_whole_levels']:.3f} levels; "
          f"GPU vs CPU max {result['gpu_vs_cpu_levels']:.3f}, mean {result['gpu_vs_cpu_mean_levels']:.4f} levels",
          flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", help="stage-1 weights (default: random init, seed 0)")
    parser.add_argument("--repeats", type=int, default=20, help="timed training steps per variant")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_cuda.py needs a CUDA GPU; PyTorch sees none here.")
    device = torch.device("cuda", 0)
    print(f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}, "
          f"cuDNN TF32 {torch.backends.cudnn.allow_tf32}", flush=True)
    model = make_model(args.weights)
    results = {
        "date": datetime.date.today().isoformat(), "gpu": torch.cuda.get_device_name(device),
        "torch": torch.__version__, "python": platform.python_version(),
        "training": training_table(model, device, args.repeats),
        "enhance": enhance_table(model.to(device).for_inference(), device),
        "seams_and_precision": seams_and_precision(model.to(device).for_inference(), device),
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
