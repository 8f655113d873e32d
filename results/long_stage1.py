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
import json
import platform
import socket
import sys
import time
from pathlib import Path

import torch

from drbn.data import load_pairs
from drbn.evaluate import evaluate, mean_row
from drbn.results import write_text_atomic
from drbn.train import stage1_preset, train_stage1
from drbn.weights import export_weights, load_stage1


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="LOL folder (train split trains and validates; test split is only scored)")
    parser.add_argument("--out", required=True, help="run folder, outside the repository")
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--segment", type=int, default=1_000, help="steps between snapshots")
    parser.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    parser.add_argument("--threads", type=int, default=0, help="0: PyTorch's default")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
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
