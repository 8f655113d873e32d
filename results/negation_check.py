"""How often a DRBN T=4 run starts in the negated optimum of -SSIM, by learning-rate recipe.

For each seed and recipe: train NEGATION_CHECK_STEPS steps (the ablation runner's check
point) and ask drbn.train.negated_channels which output channels are anti-correlated with
their target on the first training pair, before training (step 0) and at the check.
Writes a JSON table beside the printed one.

    python results/negation_check.py --data ../shared/data/LOL --seeds 0-9 --out results/ladder/negation.json
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from drbn import data as datasets
from drbn.experiments import NEGATION_CHECK_STEPS, REFERENCE, ablation_preset, stage1_config
from drbn.model import DRBN
from drbn.results import write_text_atomic
from drbn.train import negated_channels, train_stage1

# name -> (ablation preset, overrides): the old ablation budget's schedule and the cpu recipe's
RECIPES = {
    "released schedule at 5e-4, no warm-up (cpu-ablation)": ("cpu-ablation", {}),
    "cosine from 3e-4, 5% warm-up (the cpu recipe)": ("cpu-ablation", dict(lr=3e-4 / 5, schedule="cosine", warmup=0.05)),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--seeds", default="0-9", help="a range A-B (inclusive)")
    parser.add_argument("--steps", type=int, default=500, help="the run length whose schedule is followed")
    parser.add_argument("--out", required=True, help="JSON file")
    args = parser.parse_args(argv)
    first, last = (int(s) for s in args.seeds.split("-"))
    pair = datasets.load_pairs(args.data, "train")[0]  # the pair the ablation runner checks
    rows = []
    for name, (preset, overrides) in RECIPES.items():
        p = ablation_preset(preset)
        p = replace(p, stage1={**p.stage1, "steps": args.steps, **overrides})
        for seed in range(first, last + 1):
            config = stage1_config(REFERENCE, p, args.data, seed)
            torch.manual_seed(seed)
            at_start = negated_channels(DRBN(config.model).eval(), pair)
            started = time.perf_counter()
            with tempfile.TemporaryDirectory() as folder:
                model = train_stage1(config, folder, progress=False, stop_at=NEGATION_CHECK_STEPS, device="cpu").model
            rows.append({"recipe": name, "seed": seed, "negated_at_step_0": at_start,
                         f"negated_at_step_{NEGATION_CHECK_STEPS}": negated_channels(model, pair),
                         "seconds": round(time.perf_counter() - started, 1)})
            print(rows[-1], flush=True)
    summary = {name: sum(bool(r[f"negated_at_step_{NEGATION_CHECK_STEPS}"]) for r in rows if r["recipe"] == name)
               for name in RECIPES}
    write_text_atomic(args.out, json.dumps({
        "command": " ".join(["python", *sys.argv]), "data": args.data, "date": dt.date.today().isoformat(),
        "machine": f"{torch.get_num_threads()} thread(s)", "torch": torch.__version__,
        "negated_runs_per_recipe": summary, "seeds": [first, last], "rows": rows}, indent=1))
    print(summary)


if __name__ == "__main__":
    main()
