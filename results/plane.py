"""The fidelity-perception plane: one point per method, x = mean NIQE on the held-out unpaired
photos (no reference; lower is better), y = PSNR and SSIM on the paired test split.

Methods: the dark input, HE, CLAHE, gamma, Zero-DCE, the authors' released stage 1 and
released stage 1 + the recomposer of their other-datasets branch, a kit stage 1 (a snapshot
of a `cpu`-recipe run) and, over it, kit recomposers trained here with the `cpu` stage-2
preset: λ_adv = 0, 1, 2, the bounded mapping, and the paper's pre-trained critic.

Every stage-2 run trains on part "train" of the unpaired and high-quality folders only
(drbn.data.unpaired_part) and NIQE is measured on part "held_out". Runs and per-method scores
are kept in RUNS (resumable: run the same command again); the table, the figure and the
provenance go to OUT (results/plane.{json,md,png}).

    python results/plane.py --stage1 SNAPSHOT.pt --data LOL --hq kodak24 --unpaired unpaired \
        --runs /tmp/stage2-runs --out results --train-only    # the stage-2 runs, one after the other
    python results/plane.py ... --score-only   # scores what is there (missing runs are listed), writes OUT
Without either flag it trains every run, then scores.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import socket
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from drbn import data as datasets
from drbn.baselines import RELEASED_RECOMPOSER, default_baselines
from drbn.discriminator import QualityDiscriminator, score_images
from drbn.enhance import enhance
from drbn.evaluate import score_outputs
from drbn.metrics import average
from drbn.recompose import RecomposerConfig
from drbn.results import write_json, write_text_atomic
from drbn.train import high_quality_images, stage2_preset, train_stage2, unpaired_images
from drbn.weights import load_stage1

# The kit's stage-2 runs: (key, label, Stage2Config fields over the `cpu` preset)
STAGE2_RUNS = (
    ("adv2", "kit stage 1 + recomposer, λ_adv=2 (as released, LOL setting)", {}),
    ("critic", "kit stage 1 + recomposer, pre-trained critic (paper, -log D)", {"critic": "pretrained"}),
    ("adv0", "kit stage 1 + recomposer, λ_adv=0 (no quality term)", {"adv_weight": 0.0}),
    ("adv1", "kit stage 1 + recomposer, λ_adv=1 (other-datasets setting)", {"adv_weight": 1.0}),
    ("bounded", "kit stage 1 + recomposer, bounded w, λ_adv=2",
     {"recomposer": RecomposerConfig(weight_mapping="bounded")}),
)
KIT_STAGE1 = "kit stage 1"
CACHED_ONLY = False  # --cached-only: assemble the table from the scores already cached, compute none


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def stage2_config(args, fields: dict):
    return stage2_preset(args.preset, data=str(args.data), high_quality=str(args.hq), unpaired=str(args.unpaired),
                         seed=args.seed, **fields)


def saved_run(config, stage1, folder: Path):
    """The TrainResult view of the latest checkpoint of a run of exactly ``config`` over
    ``stage1`` (finished or not: its ``step`` says how far it got), or None."""
    from drbn.train import TrainResult, matching_run
    from drbn.weights import STAGE2, load_recomposer

    checkpoint = matching_run(folder / "stage2.pt", config, STAGE2, stage1)
    if checkpoint is None:
        return None
    payload = torch.load(checkpoint, weights_only=True)
    result = TrainResult(load_recomposer(checkpoint), payload["history"], checkpoint, config, payload.get("notes", []))
    result.step = payload["step"]
    return result


def train_runs(args, stage1) -> dict:
    """Train every stage-2 run in segments of ``checkpoint_every`` steps, round robin (all runs
    to step 100, then all to 200, ...), so that an interrupted sitting leaves every run at
    about the same step; each segment continues the run's checkpoint exactly."""
    from drbn.train import matching_run
    from drbn.weights import STAGE2

    configs = {key: stage2_config(args, fields) for key, _, fields in STAGE2_RUNS}
    steps, every = configs["adv2"].steps, configs["adv2"].checkpoint_every
    for stop in range(every, steps + every, every):
        for key, label, _ in STAGE2_RUNS:
            folder, config = args.runs / key, configs[key]
            resume = matching_run(folder / "stage2.pt", config, STAGE2, stage1)
            if resume is not None and torch.load(resume, weights_only=True)["step"] >= min(stop, config.steps):
                continue
            started = time.perf_counter()
            result = train_stage2(config, stage1, folder, resume=resume, progress=False, stop_at=stop, device="cpu")
            print(f"{label}: step {result.history['step'][-1]} of {config.steps} in {folder} "
                  f"({result.history['seconds'][-1]:.0f} s of training, {time.perf_counter() - started:.0f} s this "
                  f"segment); notes: {'; '.join(result.notes) or 'none'}", flush=True)
    return {key: saved_run(configs[key], stage1, args.runs / key) for key, _, _ in STAGE2_RUNS}


def niqe_of(images) -> list[float]:
    from drbn.metrics import niqe  # the no-reference measure (Mittal et al. 2013)

    return [float(niqe(np.asarray(np.clip(np.round(255 * np.clip(i, 0, 1)), 0, 255), dtype=np.uint8)))
            for i in images]


def score_method(name: str, apply, test_pairs, held_out, cache: Path, extra=None, tag: str = "",
                 prepare=None) -> dict:
    """PSNR/SSIM on the test pairs and NIQE on the held-out photos of ``apply``, cached under
    name + tag; ``prepare()`` runs first when the score is not cached yet."""
    path = cache / f"{(name + tag).replace('/', '_').replace(' ', '_')}.json"
    if path.exists():
        return json.loads(path.read_text())
    if CACHED_ONLY:
        return None
    if prepare is not None:
        prepare()
    started = time.perf_counter()
    rows = score_outputs(apply, test_pairs)
    outputs = [apply(image / 255.0) for _, image in held_out]
    niqe = niqe_of(outputs)
    record = {"method": name, **average([{k: r[k] for k in ("psnr", "ssim")} for r in rows]),
              "niqe": float(np.mean(niqe)), "niqe_std": float(np.std(niqe, ddof=1)) if len(niqe) > 1 else None,
              "niqe_per_photo": dict(zip([n for n, _ in held_out], niqe)), "seconds": time.perf_counter() - started}
    if extra is not None:
        record.update(extra(outputs))
    write_json(path, record)
    print(f"  {name}: PSNR {record['psnr']:.2f} SSIM {record['ssim']:.3f} NIQE {record['niqe']:.3f} "
          f"({record['seconds']:.0f} s)", flush=True)
    return record


def trade_off(a: dict, b: dict) -> dict:
    """Stage 1 (``a``) -> stage 1 + recomposer (``b``): the fidelity change on the test pairs and
    the NIQE change per held-out photo (the same photos for both). A NIQE change counts as real
    only beyond twice its standard error over the photos; otherwise it is within noise."""
    photos = sorted(set(a["niqe_per_photo"]) & set(b["niqe_per_photo"]))
    change = np.array([b["niqe_per_photo"][n] - a["niqe_per_photo"][n] for n in photos])
    sem = float(change.std(ddof=1) / np.sqrt(len(change))) if len(change) > 1 else float("inf")
    mean = float(change.mean())
    verdict = "lower (better)" if mean < -2 * sem else "higher (worse)" if mean > 2 * sem else "within noise"
    return {"from": a["method"], "to": b["method"], "psnr_change": b["psnr"] - a["psnr"],
            "ssim_change": b["ssim"] - a["ssim"], "niqe_change": mean, "niqe_change_sem": sem,
            "photos_lower": int((change < 0).sum()), "photos": len(change), "niqe_verdict": verdict}


def draw(points: list[dict], path: Path, title: str) -> Path:
    """PSNR and SSIM against NIQE, one marker per method, readable at about 950 px wide."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.6), dpi=100)
    groups = {"baseline": ("s", "0.45"), "released": ("D", "C3"), "kit": ("o", "C0")}
    for ax, key, label in ((axes[0], "psnr", "PSNR on eval15 (dB), higher is better"),
                           (axes[1], "ssim", "SSIM on eval15, higher is better")):
        for i, p in enumerate(points):
            marker, color = groups[p["group"]]
            ax.plot(p["niqe"], p[key], marker=marker, color=color, ms=7, ls="none")
            ax.annotate(str(i + 1), (p["niqe"], p[key]), textcoords="offset points", xytext=(5, 4), fontsize=8)
        ax.set_xlabel("NIQE on held-out unpaired photos (lower is better)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], marker=m, color=c, ls="none", label=g) for g, (m, c) in groups.items()]
    axes[0].legend(handles=handles, fontsize=8, loc="lower left")
    legend = "\n".join(f"{i + 1}: {p['method']}" for i, p in enumerate(points))
    fig.text(1.0, 0.5, legend, fontsize=7.5, va="center", ha="left", family="monospace")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage1", type=Path, required=True, help="the kit stage-1 snapshot the recomposers train over")
    parser.add_argument("--data", type=Path, required=True, help="LOL folder: train pairs for stage 2, test pairs scored")
    parser.add_argument("--hq", type=Path, required=True, help="high-quality photos for the discriminator")
    parser.add_argument("--unpaired", type=Path, required=True, help="unpaired low-light photos (e.g. DICM/, LIME/)")
    parser.add_argument("--runs", type=Path, required=True, help="stage-2 run folders and score cache (outside the repository)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default="cpu", help="the stage-2 preset ('smoke' checks this script in seconds)")
    parser.add_argument("--threads", type=int, default=0, help="0: PyTorch's default")
    parser.add_argument("--train-only", action="store_true")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N images of each set (a check)")
    parser.add_argument("--score-only", action="store_true", help="train nothing; score the runs' latest checkpoints")
    parser.add_argument("--only", nargs="*", default=None,
                        help="with --score-only: score (and cache) the methods whose name holds one of these words, "
                             "write nothing to OUT")
    parser.add_argument("--cached-only", action="store_true",
                        help="with --score-only: write OUT from the cached scores alone; the others are listed as missing")
    parser.add_argument("--runs-only", action="store_true",
                        help="with --score-only: score (and cache) the stage-2 runs alone, write nothing to OUT")
    args = parser.parse_args(argv)
    global CACHED_ONLY
    CACHED_ONLY = args.cached_only
    if args.threads:
        torch.set_num_threads(args.threads)
    args.runs.mkdir(parents=True, exist_ok=True)
    provenance_path = args.runs / "provenance.json"
    provenance = json.loads(provenance_path.read_text()) if provenance_path.exists() else {"sittings": []}
    provenance["sittings"].append({
        "command": " ".join([Path(sys.executable).name, *sys.argv]), "started": dt.datetime.now(dt.timezone.utc)
        .isoformat(timespec="seconds"), "machine": f"{cpu_name()}, {torch.get_num_threads()} thread(s), host "
        f"{socket.gethostname()}", "torch": torch.__version__, "python": platform.python_version()})
    write_json(provenance_path, provenance)

    stage1 = load_stage1(args.stage1).eval() if args.stage1.exists() or not args.score_only else None
    if args.score_only:
        runs = {key: saved_run(stage2_config(args, fields), stage1, args.runs / key) if stage1 else None
                for key, _, fields in STAGE2_RUNS}
    else:
        runs = train_runs(args, stage1)
    if args.train_only:
        return

    base = stage2_config(args, {})
    held_out = unpaired_images(base, "held_out")[: args.limit]
    held_hq = high_quality_images(base, "held_out")[: args.limit]
    test_pairs = datasets.load_pairs(args.data, "test")[: args.limit]
    cache = args.runs / ("scores" if args.limit is None else f"scores-limit{args.limit}")
    kit_tag = f" [{args.stage1.name}]"  # the kit's cached scores belong to this stage-1 snapshot
    print(f"scoring on {len(test_pairs)} test pairs and {len(held_out)} held-out unpaired photos", flush=True)

    points, missing = [], []
    for b in [] if args.runs_only else default_baselines():
        if b.missing():
            print(f"  {b.name}: {b.missing()}", flush=True)
            continue
        if args.only and not any(word in b.name for word in args.only):
            continue
        group = "released" if "released" in b.name and "Zero" not in b.name else "baseline"
        fit = (lambda b=b: b.fit(datasets.load_pairs(args.data, "train")))  # gamma only: the training split
        scored = score_method(b.name, b, test_pairs, held_out, cache, prepare=fit)
        if scored is None:
            missing.append(f"{b.name} (not scored yet)")
            continue
        points.append({**scored, "group": group})
    if stage1 is None:
        missing.append(f"{KIT_STAGE1} ({args.stage1} not found)")
    elif not args.runs_only and (not args.only or any(word in KIT_STAGE1 for word in args.only)):
        scored = score_method(KIT_STAGE1, lambda image: np.clip(enhance(stage1, image).output, 0, 1),
                              test_pairs, held_out, cache, tag=kit_tag)
        if scored is None:
            missing.append(f"{KIT_STAGE1} (not scored yet)")
        else:
            points.append({**scored, "group": "kit"})
    for key, label, _ in STAGE2_RUNS:
        if runs.get(key) is None:
            missing.append(f"{label} (no checkpoint in {args.runs / key})")
            continue
        if args.only and not any(word in label for word in args.only):
            continue
        run_label = label if runs[key].step == runs[key].config.steps else \
            f"{label} [step {runs[key].step} of {runs[key].config.steps}]"
        recomposer, payload = runs[key].model.eval(), torch.load(runs[key].checkpoint, weights_only=True)
        critic = QualityDiscriminator()
        critic.load_state_dict(payload["discriminator"])

        def d_scores(outputs, critic=critic):  # the run's own D on held-out photos of each kind
            return {"d_held_out_recomposed": float(np.mean(score_images(critic, outputs, tiles=3))),
                    "d_held_out_hq": float(np.mean(score_images(critic, [i for _, i in held_hq], tiles=3))),
                    "notes": runs[key].notes, "last_d_real": runs[key].history["d_real"][-1],
                    "last_d_fake": runs[key].history["d_fake"][-1]}
        apply = (lambda image, r=recomposer: np.clip(enhance(stage1, image, r).output, 0, 1))
        scored = score_method(run_label, apply, test_pairs, held_out, cache, d_scores, kit_tag)
        if scored is None:
            missing.append(f"{run_label} (checkpoint at step {runs[key].step}, not scored yet)")
            continue
        points.append({**scored, "group": "kit", "run": key, "step": runs[key].step, "steps": runs[key].config.steps})

    if args.runs_only or args.only:
        return
    finished = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    by = {p["method"]: p for p in points}
    stage2_of = {"DRBN, released stage 1": [RELEASED_RECOMPOSER],
                 KIT_STAGE1: [p["method"] for p in points if p.get("run")]}
    trade_offs = [trade_off(by[a], by[b]) for a, bs in stage2_of.items() if a in by for b in bs if b in by]
    record = {
        "what": "fidelity-perception plane: x = mean NIQE (Mittal et al. 2013; lower is better, a no-reference "
                "statistic, not a judgement of taste) on the held-out unpaired photos; y = full-image PSNR and SSIM "
                "on the paired test split",
        "data": datasets.describe(args.data), "test pairs": len(test_pairs),
        "held_out_unpaired": [n for n, _ in held_out], "held_out_hq": [n for n, _ in held_hq],
        "stage1_snapshot": str(args.stage1), "stage2_preset": args.preset, "seed": args.seed,
        "stage2_runs": {key: str(args.runs / key) for key, _, _ in STAGE2_RUNS},
        "sittings": provenance["sittings"], "finished": finished, "points": points, "missing": missing,
        # the authors' trade-off, stage 1 -> stage 1 + recomposer, for the released weights and the kit's
        "trade_off_pairs": [["DRBN, released stage 1", RELEASED_RECOMPOSER],
                            [KIT_STAGE1, next((p["method"] for p in points if p.get("run") == "adv2"), STAGE2_RUNS[0][1])]],
        "trade_offs": trade_offs,
        "released_recomposer": RELEASED_RECOMPOSER + ": the authors' other-datasets branch (λ_adv = 1, unpaired "
                               "photos selected from LIME, NPE, VV and DICM): its NIQE on the held-out DICM and "
                               "LIME photos is not held out (it may have trained on them)",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "plane.json", record)
    draw(points, args.out / "plane.png", f"{datasets.describe(args.data).split(' at ')[0]} eval15 vs NIQE on "
                                         f"{len(held_out)} held-out unpaired photos; kit stage 2: {args.preset} preset")
    lines = ["| # | method | NIQE ↓ (held-out unpaired) | PSNR (dB) | SSIM | D: held-out HQ / recomposed |",
             "|---|---|---|---|---|---|"]
    for i, p in enumerate(points):
        d = (f"{p['d_held_out_hq']:.3f} / {p['d_held_out_recomposed']:.3f}" if "d_held_out_hq" in p else "")
        lines.append(f"| {i + 1} | {p['method']} | {p['niqe']:.3f} ± {p['niqe_std']:.3f} | {p['psnr']:.2f} | "
                     f"{p['ssim']:.3f} | {d} |")
    lines += ["", "| stage 1 -> stage 1 + recomposer | PSNR change | SSIM change | NIQE change ± s.e. | photos lower | NIQE |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {t['from']} -> {t['to']} | {t['psnr_change']:+.2f} | {t['ssim_change']:+.3f} | "
              f"{t['niqe_change']:+.3f} ± {t['niqe_change_sem']:.3f} | {t['photos_lower']} of {t['photos']} | "
              f"{t['niqe_verdict']} |" for t in trade_offs]
    lines += [f"\nNot measured: {'; '.join(missing)}."] if missing else []
    write_text_atomic(args.out / "plane_table.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
