"""Speed of the stage-1 network on CPU: forward pass (400x600) and training step (4 x 128² and 256²).

    python benchmarks/bench_stage1.py [--repeats N] [--threads 2] [--json results.json]
    python benchmarks/bench_stage1.py --profile      # where the 400x600 enhance pass spends its time

Forward variants, all on the same weights and the same input, timed in this one run:

    as released        contiguous (NCHW) layout, dense blocks concatenate (the authors' code)
    channels_last      channels_last layout, dense blocks concatenate
    summed             contiguous layout, dense blocks sum split convolutions (no torch.cat)
    fast               channels_last + summed: ``model.for_inference()`` under inference_mode
    enhance path       ``drbn.enhance.enhance_tensor`` on the fast model (what users call)

Every variant's bands are compared with "as released" (max abs difference). The training step is timed for the authors' computation (their training loop: contiguous
layout, dense blocks concatenating after every layer, their SSIM loss, ``zero_grad``,
``loss.item()``, Adam) and for the kit's (``model.for_training()``: channels_last,
``BandLoss``), at batch 4 of 128² and of 256² crops. Variants are
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

from drbn.enhance import enhance_tensor
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
def summed_blocks():
    """Make every ResidualDenseBlock sum split convolutions, also under autograd."""
    saved = ResidualDenseBlock.forward
    ResidualDenseBlock.forward = ResidualDenseBlock.forward_summed
    try:
        yield
    finally:
        ResidualDenseBlock.forward = saved


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
        from drbn.weights import load_stage1

        return load_stage1(weights)
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

    def enhance_path():
        return enhance_tensor(channels_last, y)[0],

    variants = {
        "as released": released, "channels_last": cl_concat, "summed": summed, "fast": fast,
        "enhance path": enhance_path,
    }
    reference = released()
    diffs = {  # the enhance path returns x_full only: zip stops there
        name: max((a - b).abs().max().item() for a, b in zip(reference, fn()))
        for name, fn in variants.items()
    }
    return time_round_robin(variants, repeats), diffs


def authors_ssim_loss(img1: torch.Tensor, img2: torch.Tensor) -> torch.Tensor:
    """-SSIM as the authors' training code computes it (the pytorch_ssim package they ship):
    a 2-D 11x11 Gaussian window as a grouped convolution, five blurs, zero padding 5."""
    channels = img1.shape[1]
    g = torch.exp(-((torch.arange(11, dtype=torch.float32) - 5) ** 2) / (2 * 1.5**2))
    g = g / g.sum()
    window = (g[:, None] @ g[None, :]).expand(channels, 1, 11, 11).contiguous().to(img1.device)
    mu1 = F.conv2d(img1, window, padding=5, groups=channels)
    mu2 = F.conv2d(img2, window, padding=5, groups=channels)
    mu1_sq, mu2_sq, mu1_mu2 = mu1.pow(2), mu2.pow(2), mu1 * mu2
    sigma1_sq = F.conv2d(img1 * img1, window, padding=5, groups=channels) - mu1_sq
    sigma2_sq = F.conv2d(img2 * img2, window, padding=5, groups=channels) - mu2_sq
    sigma12 = F.conv2d(img1 * img2, window, padding=5, groups=channels) - mu1_mu2
    c1, c2 = 0.01**2, 0.03**2
    ssim_map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / (
        (mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2)
    )
    return -ssim_map.mean()


def training_steps(model: DRBN, batch: int, size: int, device: str | torch.device = "cpu") -> dict:
    """One training step of the authors' computation and one of the kit's, same weights and batch."""
    from drbn.losses import BandLoss

    g = torch.Generator().manual_seed(2)
    y = (0.3 * torch.rand(batch, 3, size, size, generator=g)).to(device)
    x = torch.rand(batch, 3, size, size, generator=g).to(device)

    def authors():
        net = copy.deepcopy(model).train()  # contiguous (NCHW), as their code runs
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)

        def step():
            with concatenating_blocks():
                optimizer.zero_grad()
                full, half, quarter = net(y)
                loss = (authors_ssim_loss(full, x) + authors_ssim_loss(half, x[:, :, 0::2, 0::2])
                        + authors_ssim_loss(quarter, x[:, :, 0::4, 0::4]))
                loss.item()  # their loop reads the loss every step (skip threshold)
                loss.backward()
                optimizer.step()

        return step

    def kit():
        net = copy.deepcopy(model).for_training()
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
        loss_fn = BandLoss()
        yf, xf = y.contiguous(memory_format=CL), x.contiguous(memory_format=CL)

        def step():
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(yf), xf)
            loss.item()
            loss.backward()
            optimizer.step()

        return step

    def kit_summed():
        step = kit()

        def summed_step():
            with summed_blocks():
                step()

        return summed_step

    return {"authors' code": authors(), "kit (for_training)": kit(), "kit, summed blocks": kit_summed()}


def bench_training(model: DRBN, repeats: int, batch: int, size: int):
    return time_round_robin(training_steps(model, batch, size), repeats)


# ----------------------------------------------------------------------------- profile
CATEGORIES = (  # profiler op name fragment -> category, first match wins
    ("convolution_transpose", "transposed convolutions"),
    ("mkldnn_convolution", "convolutions"),
    ("slow_conv2d", "convolutions"),
    ("upsample", "upsampling"),
    ("add", "additions"),
    ("clamp_min", "ReLU"),
    ("relu", "ReLU"),
    ("cat", "concatenation"),
    ("copy_", "layout conversions and copies"),
    ("contiguous", "layout conversions and copies"),
)


def conv_flops(model: DRBN, size: tuple[int, int]) -> int:
    """FLOPs (2 x multiply-adds) of the convolutions in one pass."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(torch.rand(1, 3, *size).contiguous(memory_format=CL))
    return counter.get_total_flops()


def fp32_peak() -> tuple[float, str]:
    """This CPU's fp32 peak in GFLOP/s from its flags and clock (threads used x FMA width),
    and the matrix-multiply rate measured here (the practical ceiling)."""
    flags, mhz = "", 0.0
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags") and not flags:
                    flags = line
                if line.startswith("cpu MHz") and not mhz:
                    mhz = float(line.split(":")[1])
    except OSError:
        pass
    # two FMA units per core on current x86; 16 (AVX-512) or 8 (AVX2) float32 lanes
    lanes = 16 if " avx512f" in flags else 8 if " fma" in flags else 4
    peak = torch.get_num_threads() * 2 * 2 * lanes * mhz / 1e3
    a = torch.randn(2048, 2048)
    a @ a
    start = time.perf_counter()
    for _ in range(3):
        a @ a
    matmul = 3 * 2 * 2048**3 / (time.perf_counter() - start) / 1e9
    return peak, f"{peak:.0f} GFLOP/s nominal ({mhz:.0f} MHz x {2 * 2 * lanes} FLOP/cycle x " \
        f"{torch.get_num_threads()} threads), 2048² matmul measured {matmul:.0f} GFLOP/s"


def profile_enhance(model: DRBN, size: tuple[int, int], repeats: int) -> dict:
    from torch.profiler import ProfilerActivity, profile

    from drbn.enhance import enhance_tensor

    y = 0.3 * torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(1))
    enhance_tensor(model, y)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(repeats):
            enhance_tensor(model, y)
    totals: dict[str, float] = {}
    others: dict[str, float] = {}
    for event in prof.key_averages():
        name = next((c for k, c in CATEGORIES if k in event.key), "other")
        seconds = event.self_cpu_time_total / 1e6 / repeats
        totals[name] = totals.get(name, 0.0) + seconds
        if name == "other":
            others[event.key] = seconds
    everything = sum(totals.values())
    print(f"\nprofile of the enhance path, 1x3x{size[0]}x{size[1]}, {repeats} passes "
          f"({everything:.3f} s per pass under the profiler)")
    for name, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<32}{seconds:8.3f} s {100 * seconds / everything:6.1f}%")
    top = sorted(others.items(), key=lambda kv: -kv[1])[:4]
    print("  other, largest: " + ", ".join(f"{k} {v:.3f} s" for k, v in top))
    conv_seconds = totals.get("convolutions", 0) + totals.get("transposed convolutions", 0)
    flops = conv_flops(model, size)
    peak, peak_text = fp32_peak()
    rate = flops / conv_seconds / 1e9
    print(f"convolutions: {flops / 1e9:.1f} GFLOP per pass at {rate:.0f} GFLOP/s; fp32 peak: "
          f"{peak_text}")
    return {"seconds": totals, "conv_gflop": flops / 1e9, "conv_gflops_per_s": rate,
            "fp32_peak": peak_text}


TRAINING_CATEGORIES = (("convolution_backward", "convolution gradients (input and weight)"),
                       ("mkldnn_convolution", "convolutions (forward)"), ("_foreach", "Adam"), ("adam", "Adam"))


def profile_training(model: DRBN, size: int, repeats: int) -> dict:
    """Where a kit training step (batch 4, size x size) spends its time, and its convolution rate."""
    from torch.profiler import ProfilerActivity, profile

    step = training_steps(model, 4, size)["kit (for_training)"]
    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(repeats):
            step()
    totals: dict[str, float] = {}
    for event in prof.key_averages():
        name = next((c for k, c in TRAINING_CATEGORIES + CATEGORIES if k in event.key.lower()), "other")
        totals[name] = totals.get(name, 0.0) + event.self_cpu_time_total / 1e6 / repeats
    everything = sum(totals.values())
    print(f"\nprofile of the kit's training step, 4 x 3x{size}x{size}, {repeats} steps "
          f"({everything:.3f} s per step under the profiler)")
    for name, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<42}{seconds:8.3f} s {100 * seconds / everything:6.1f}%")
    # forward FLOPs of the batch; the backward computes input and weight gradients: about 2x that
    forward = 4 * conv_flops(model, (size, size))
    forward_s = totals.get("convolutions (forward)", 0) + totals.get("transposed convolutions", 0)
    backward_s = totals.get("convolution gradients (input and weight)", 0)
    rates = {"forward_gflops_per_s": forward / max(forward_s, 1e-9) / 1e9,
             "backward_gflops_per_s": 2 * forward / max(backward_s, 1e-9) / 1e9}
    print(f"convolutions: forward {forward / 1e9:.1f} GFLOP at {rates['forward_gflops_per_s']:.0f} GFLOP/s, "
          f"gradients about {2 * forward / 1e9:.1f} GFLOP at {rates['backward_gflops_per_s']:.0f} GFLOP/s; "
          f"fp32 peak: {fp32_peak()[1]}")
    return {"seconds": totals, **rates}


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
    parser.add_argument("--train-sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--skip-forward", action="store_true")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also profile N passes of the enhance path by kind of operation")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    model = make_model(args.weights)
    size = (args.height, args.width)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}")

    results = {"forward": {}, "training": {}}
    times, diffs = bench_forward(model, args.repeats, size) if not args.skip_forward else ({}, {})
    base = statistics.median(times["as released"]) if times else 0.0
    print(f"\nforward 1x3x{size[0]}x{size[1]}, median of {args.repeats} (after a warm-up)")
    print(f"{'variant':<16}{'median s':>10}{'best s':>9}{'time ratio':>12}{'max |diff|':>12}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<16}{med:>10.3f}{min(ts):>9.3f}{med / base:>11.2f}x{diffs[name]:>12.1e}")
        results["forward"][name] = {
            "median_s": med, "best_s": min(ts), "times_s": ts,
            "time_ratio_vs_as_released": med / base, "max_abs_diff": diffs[name],
        }
    if size == (400, 600) and times:
        fast = statistics.median(times["fast"])
        print(f"(context, not measured here: the authors' code takes about {AUTHORS_SECONDS} s "
              f"on a 2-core machine; fast is {AUTHORS_SECONDS / fast:.2f}x that figure)")

    if not args.skip_training:
        for crop in args.train_sizes:
            ttimes = bench_training(model, args.train_repeats, 4, crop)
            tbase = statistics.median(ttimes["authors' code"])
            print(f"\ntraining step, batch 4 x 3x{crop}x{crop}, forward + -SSIM band loss + "
                  f"backward + Adam, median of {args.train_repeats}")
            print(f"{'variant':<22}{'median s':>10}{'best s':>9}{'time ratio':>12}")
            for name, ts in ttimes.items():
                med = statistics.median(ts)
                print(f"{name:<22}{med:>10.3f}{min(ts):>9.3f}{med / tbase:>11.2f}x")
                results["training"][f"{name} {crop}"] = {
                    "median_s": med, "best_s": min(ts), "times_s": ts,
                    "time_ratio_vs_authors": med / tbase}
    if args.profile:
        results["profile"] = profile_enhance(model, size, args.profile)
        results["profile_training"] = {crop: profile_training(model, crop, args.profile) for crop in args.train_sizes}

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
