"""The long stage-1 run behind results/weights/: the `cpu` recipe (4 crops of 128x128 per
step, Adam, cosine from 3e-4 after a 5% warm-up) for many more steps, in segments.

After each segment the run is checkpointed (resumable: run the same command again), its
network is kept as a small snapshot, and the snapshot is scored on the test split. The test
split chooses nothing: the published model is the last step, fixed before the run. The
curve (steps, wall seconds, validation and test PSNR/SSIM) goes to OUT/curve.json.

    python results/long_stage1.py --data ../shared/data/LOL --out /tmp/drbn-long --steps 10000 \
        --precision bf16 --threads 1
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import platform
import socket
import sys
import time
from pathlib import Path

import torch

from drbn import viz
from drbn.curve import extrapolate, read_curve
from drbn.data import load_pairs
from drbn.evaluate import evaluate, mean_row
from drbn.results import read_results, write_text_atomic
from drbn.train import stage1_preset, train_stage1
from drbn.weights import export_weights, load_stage1


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


RESULTS = Path(__file__).resolve().parent
RELEASED_ROW = "DRBN, released stage 1"  # its eval15 scores, from the reference table beside this script


def report(out: Path, to: Path) -> None:
    """Publish the run in ``out`` to ``to``: weights, curve, table, figure (see the module docstring)."""
    curve = read_curve(out / "curve.json")
    points, last = curve["points"], curve["points"][-1]
    released = next(r for r in read_results(RESULTS)["rows"] if r["variant"] == RELEASED_ROW)
    weights = export_weights(out / "stage1.pt", to / "stage1.pt")
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    write_text_atomic(to / "curve.json", json.dumps(curve, indent=1))
    budget = stage1_preset("cpu").steps
    fig = viz.plot_quality_vs_compute(points, {"label": "released weights", "psnr": released["psnr"],
                                               "ssim": released["ssim"]}, budget_step=budget)
    viz.save_figure(fig, to, "quality_vs_compute")
    lines = ["| step | training min | validation PSNR / SSIM | eval15 PSNR / SSIM | eval15 PSNR after GT-mean gain |",
             "|---|---|---|---|---|"]
    lines += [f"| {p['step']} | {p['train_seconds'] / 60:.1f} | {p['val_psnr']:.2f} / {p['val_ssim']:.3f} | "
              f"{p['test_psnr']:.2f} / {p['test_ssim']:.3f} | {p['test_psnr_gtmean']:.2f} |" for p in points]
    lines += [f"| released weights | | | {released['psnr']:.2f} / {released['ssim']:.3f} | "
              f"{released['psnr_gtmean']:.2f} |", ""]
    for key, target in (("test_ssim", released["ssim"]), ("test_psnr", released["psnr"])):
        fit = extrapolate(points, key, target)
        if fit["reached"]:
            lines.append(f"- {key}: the released weights' {target:.3f} is reached within the run.")
        elif fit["step"] is None:
            lines.append(f"- {key}: flat over steps {fit['fitted_on']}; no extrapolation to {target:.3f}.")
        else:
            rate = last["train_seconds"] / last["step"]
            lines.append(f"- {key}: +{fit['slope_per_doubling']:.4f} per doubling of the steps over steps "
                         f"{fit['fitted_on']}; a log line reaches {target:.3f} at about {fit['step']:,.0f} steps, "
                         f"{fit['step'] * rate / 3600:.0f} hours at this run's {rate:.2f} s per step.")
    lines += ["", f"`stage1.pt`: step {last['step']}, sha256 `{sha}`."]
    write_text_atomic(to / "curve.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="LOL folder (train split trains and validates; test split is only scored)")
    parser.add_argument("--out", required=True, help="run folder, outside the repository")
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--segment", type=int, default=1_000, help="steps between snapshots")
    parser.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    parser.add_argument("--threads", type=int, default=0, help="0: PyTorch's default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", metavar="DIR", help="publish the run in --out to DIR; trains nothing")
    args = parser.parse_args(argv)
    if args.report:
        return report(Path(args.out), Path(args.report))
    if not args.data:
        parser.error("--data is required to train")
    if args.threads:
        torch.set_num_threads(args.threads)

    out = Path(args.out)
    config = stage1_preset("cpu", data=args.data, steps=args.steps, seed=args.seed, precision=args.precision,
                           eval_every=args.segment // 2, checkpoint_every=args.segment)
    checkpoint = out / "stage1.pt"
    curve_path = out / "curve.json"
    curve = json.loads(curve_path.read_text()) if curve_path.exists() else {
        "command": " ".join([sys.executable.rsplit("/", 1)[-1], *sys.argv]), "data": str(args.data),
        "machine": f"{cpu_name()}, {torch.get_num_threads()} thread(s), host {socket.gethostname()}",
        "torch": torch.__version__, "started": dt.datetime.now().isoformat(timespec="seconds"),
        "config": {k: v for k, v in vars(config).items() if k != "model"}, "points": [], "sittings": []}
    test_pairs = load_pairs(args.data, "test")
    done = {p["step"] for p in curve["points"]}
    sitting = {"started": dt.datetime.now().isoformat(timespec="seconds"), "from_step": max(done, default=0),
               "threads": torch.get_num_threads()}
    curve["sittings"].append(sitting)
    began = time.perf_counter()
    for stop in range(args.segment, args.steps + 1, args.segment):
        if stop in done:
            continue
        resume = checkpoint if checkpoint.exists() else None
        result = train_stage1(config, out, resume=resume, progress=False, stop_at=stop, device="cpu")
        snapshot = export_weights(checkpoint, out / "snapshots" / f"step{stop:06d}.pt")
        test = mean_row(evaluate(load_stage1(snapshot), test_pairs))
        history = result.history
        point = {"step": stop, "train_seconds": round(history["seconds"][-1], 1),
                 "val_psnr": history["psnr"][-1], "val_ssim": history["ssim"][-1],
                 "test_psnr": float(test["psnr"]), "test_ssim": float(test["ssim"]),
                 "test_psnr_gtmean": float(test["psnr_gtmean"]), "snapshot": snapshot.name}
        curve["points"].append(point)
        sitting.update(to_step=stop, wall_s=round(time.perf_counter() - began, 1),
                       ended=dt.datetime.now().isoformat(timespec="seconds"))
        write_text_atomic(curve_path, json.dumps(curve, indent=1))
        print(f"step {stop}: {point['train_seconds'] / 60:.1f} min, validation {point['val_psnr']:.2f} / "
              f"{point['val_ssim']:.3f}, test {point['test_psnr']:.2f} / {point['test_ssim']:.3f}", flush=True)


if __name__ == "__main__":
    main()
