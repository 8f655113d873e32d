"""How often a DRBN T=4 run falls into the negated optimum of -SSIM, by recipe.

For each recipe and seed: train to the ablation runner's check step
(drbn.experiments.negation_check_step), then on to ``--until`` steps of the same run, and
ask drbn.train.negated_channels which output channels are anti-correlated with their
target on the first training pair: before training (step 0), at the check and at the end.
Writes a JSON table (one file per call, so recipes can run side by side on two cores).

    python results/negation_check.py --data ../shared/data/LOL --seeds 0-7 \\
        --recipes bf16-default --out results/ladder/negation/bf16-default.json
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from dataclasses import replace

import torch

from drbn import data as datasets
from drbn.experiments import REFERENCE, ablation_preset, negation_check_step, stage1_config
from drbn.results import write_text_atomic
from drbn.train import initial_stage1, negated_channels, train_stage1

# key -> (label, ablation preset, stage-1 overrides); the ladder-1x run length (500 steps)
RECIPES = {
    "bf16-default": ("ladder recipe (cosine from 3e-4, 5% warm-up), bf16, PyTorch's default start",
                     "ladder-1x", dict(head_init="default")),
    "fp32-default": ("ladder recipe, fp32, PyTorch's default start", "ladder-1x",
                     dict(head_init="default", precision="fp32")),
    "bf16-zero": ("ladder recipe, bf16, band heads started at 0 (the ladder as run)", "ladder-1x", {}),
    "released-schedule": ("cpu-ablation: released schedule at 5e-4, no warm-up, fp32, default start",
                          "cpu-ablation", {}),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--seeds", default="0-7", help="a range A-B (inclusive)")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--until", type=int, default=250, help="the last step checked (the schedule is the preset's)")
    parser.add_argument("--out", required=True, help="JSON file")
    args = parser.parse_args(argv)
    first, last = (int(s) for s in args.seeds.split("-"))
    pair = datasets.load_pairs(args.data, "train")[0]  # the pair the ablation runner checks
    rows = []
    for key in args.recipes:
        label, preset, overrides = RECIPES[key]
        p = ablation_preset(preset)
        p = replace(p, stage1={**p.stage1, **overrides})
        for seed in range(first, last + 1):
            config = stage1_config(REFERENCE, p, args.data, seed)
            at_start = negated_channels(initial_stage1(config).eval(), pair)  # the start train_stage1 builds
            started = time.perf_counter()
            with tempfile.TemporaryDirectory() as folder:
                check = negation_check_step(config)
                run = train_stage1(config, folder, progress=False, stop_at=check, device="cpu")
                at_check = negated_channels(run.model, pair)
                run = train_stage1(config, folder, resume=run.checkpoint, progress=False, stop_at=args.until,
                                   device="cpu")
                at_end = negated_channels(run.model, pair)
            rows.append({"recipe": key, "seed": seed, "negated_at_step_0": at_start,
                         "check_step": check, "negated_at_check": at_check,
                         f"negated_at_step_{args.until}": at_end, "seconds": round(time.perf_counter() - started, 1)})
            print(rows[-1], flush=True)
    summary = {key: {column: sum(bool(r[column]) for r in rows if r["recipe"] == key)
                     for column in ("negated_at_step_0", "negated_at_check", f"negated_at_step_{args.until}")}
               for key in args.recipes}
    write_text_atomic(args.out, json.dumps({
        "command": " ".join(["python", *sys.argv]), "data": args.data, "date": dt.date.today().isoformat(),
        "machine": f"{torch.get_num_threads()} thread(s)", "torch": torch.__version__,
        "recipes": {key: RECIPES[key][0] for key in args.recipes},
        "runs_negated": summary, "seeds": [first, last], "rows": rows}, indent=1))
    print(summary)


if __name__ == "__main__":
    main()
