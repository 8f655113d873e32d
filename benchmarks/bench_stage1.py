"""Speed of the stage-1 network on CPU: forward pass (400x600) and training step (4 x 256x256).

    python benchmarks/bench_stage1.py [--repeats N] [--threads 2] [--json results.json]

Forward variants, all on the same weights and the same input, timed in this one run:

    as released        contiguous (NCHW) layout, dense blocks concatenate (the authors' code)
    channels_last      channels_last layout, dense blocks concatenate
    summed             contiguous layout, dense blocks sum split convolutions (no torch.cat)
    fast               channels_last + summed: ``model.for_inference()`` under inference_mode

Every variant's three bands are compared with "as released" (max abs difference). The
training step (forward, BandLoss, backward, Adam) is timed in both layouts. Variants are
timed round-robin, so a slower or busier stretch of the run hits them all alike; the table
gives the median (and the fastest) of the repeats and ratios of medians.
"""
from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import platform
import statistics
import time
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from drbn.model import DRBN, ResidualDenseBlock

CL = torch.channels_last
AUTHORS_SECONDS = 1.3  # reported for the authors' code: 400x600, 2 cores, 2 threads (context only)


def concatenating_forward(self: ResidualDenseBlock, x: torch.Tensor) -> torch.Tensor:
    """The dense block as the authors wrote it: torch.cat after every layer."""
    features = x
    for conv in self.layers:
        features = torch.cat((features, F.relu(conv(features))), 1)
    return self.fuse(features) + x


@contextmanager
def concatenating_blocks():
    """Make every ResidualDenseBlock take the concatenating path, also under no_grad."""
    saved = ResidualDenseBlock.forward
    ResidualDenseBlock.forward = concatenating_forward
    try:
        yield
    finally:
        ResidualDenseBlock.forward = saved


def time_round_robin(variants: dict, repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def make_model(weights: str | None) -> DRBN:
    if weights:
        from drbn.released import load_stage1_any

        return load_stage1_any(weights)
    torch.manual_seed(0)
    return DRBN().eval()


def bench_forward(model: DRBN, repeats: int, size: tuple[int, int]):
    contiguous = model.eval()
    channels_last = copy.deepcopy(model).for_inference()
    y = 0.3 * torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(1))
    y_cl = y.contiguous(memory_format=CL)

    def released():
        with torch.no_grad(), concatenating_blocks():
            return contiguous(y)

    def cl_concat():
        with torch.inference_mode(), concatenating_blocks():
            return channels_last(y_cl)

    def summed():
        with torch.inference_mode():
            return contiguous(y)

    def fast():
        with torch.inference_mode():
            return channels_last(y_cl)

    variants = {
        "as released": released, "channels_last": cl_concat, "summed": summed, "fast": fast
    }
    reference = released()
    diffs = {
        name: max((a - b).abs().max().item() for a, b in zip(reference, fn()))
        for name, fn in variants.items()
    }
    return time_round_robin(variants, repeats), diffs


def bench_training(model: DRBN, repeats: int, batch: int, size: int):
    try:
        from drbn.losses import BandLoss

        loss_fn, loss_name = BandLoss(), "BandLoss (-SSIM, 3 scales)"
    except ImportError:  # a stand-in with the same shape of computation

        def loss_fn(out, x):
            return sum((b - x[..., ::s, ::s]).abs().mean() for b, s in zip(out, (1, 2, 4)))

        loss_name = "L1 on 3 scales"
    g = torch.Generator().manual_seed(2)
    y = 0.3 * torch.rand(batch, 3, size, size, generator=g)
    x = torch.rand(batch, 3, size, size, generator=g)

    def make_step(fmt):
        net = copy.deepcopy(model).train().to(memory_format=fmt)
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
        yf, xf = y.contiguous(memory_format=fmt), x.contiguous(memory_format=fmt)

        def step():
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(yf), xf)
            loss.backward()
            optimizer.step()

        return step

    variants = {
        "train contiguous": make_step(torch.contiguous_format),
        "train channels_last": make_step(CL),
    }
    return time_round_robin(variants, repeats), loss_name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed forward passes per variant")
    parser.add_argument(
        "--train-repeats", type=int, default=3, help="timed training steps per layout"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--height", type=int, default=400)
    parser.add_argument("--width", type=int, default=600)
    parser.add_argument(
        "--weights", help="a stage-1 checkpoint or the released model_s1.pt (default: random init)"
    )
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    model = make_model(args.weights)
    size = (args.height, args.width)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}")

    times, diffs = bench_forward(model, args.repeats, size)
    results = {"forward": {}, "training": {}}
    base = statistics.median(times["as released"])
    print(f"\nforward 1x3x{size[0]}x{size[1]}, median of {args.repeats} (after a warm-up)")
    print(f"{'variant':<16}{'median s':>10}{'best s':>9}{'speed-up':>10}{'max |diff|':>12}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<16}{med:>10.3f}{min(ts):>9.3f}{base / med:>9.2f}x{diffs[name]:>12.1e}")
        results["forward"][name] = {
            "median_s": med, "best_s": min(ts), "times_s": ts,
            "speedup_vs_as_released": base / med, "max_abs_diff": diffs[name],
        }
    if size == (400, 600):
        fast = statistics.median(times["fast"])
        print(f"(context, not measured here: the authors' code takes about {AUTHORS_SECONDS} s "
              f"on a 2-core machine; fast is {AUTHORS_SECONDS / fast:.2f}x that figure)")

    if not args.skip_training:
        ttimes, loss_name = bench_training(model, args.train_repeats, 4, 256)
        tbase = statistics.median(ttimes["train contiguous"])
        print(f"\ntraining step, batch 4 x 3x256x256, Adam, {loss_name}, "
              f"median of {args.train_repeats}")
        print(f"{'variant':<22}{'median s':>10}{'best s':>9}{'speed-up':>10}")
        for name, ts in ttimes.items():
            med = statistics.median(ts)
            print(f"{name:<22}{med:>10.3f}{min(ts):>9.3f}{tbase / med:>9.2f}x")
            results["training"][name] = {"median_s": med, "best_s": min(ts), "times_s": ts,
                                         "speedup_vs_contiguous": tbase / med}

    if args.json:
        results["meta"] = {
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "torch": torch.__version__, "cpus": os.cpu_count(), "threads": args.threads,
            "size": list(size), "repeats": args.repeats, "train_repeats": args.train_repeats,
            "weights": args.weights or "random init (seed 0)",
        }
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
