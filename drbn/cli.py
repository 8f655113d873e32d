"""The one command line, ``python -m drbn <command>``; introduced in notebooks/00_setup_check.

Commands: ``enhance``, ``train-stage1``, ``train-stage2``, ``evaluate``, ``ablate`` (the
ablation runner of notebooks/04), ``reproduce`` (runs the notebooks), ``fetch-weights``.
``python -m drbn.reproduce`` and ``python -m drbn.experiments`` are aliases of
``python -m drbn reproduce`` and ``python -m drbn ablate``.

Every predictable mistake ends with one line on stderr and exit status 2, never a trace.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from . import distributed, experiments, fetch, reproduce
from .data import describe, load_pairs, load_unpaired
from .device import DEVICE_HELP, pick_device
from .enhance import OVERLAP, Enhancement, enhance
from .errors import DRBNError
from .evaluate import format_table, score_outputs, score_unpaired, write_csv
from .images import IMAGE_SUFFIXES, list_images, read_image, write_image
from .niqe import load_model as load_niqe_model
from .runs import check_output_folder, check_settings, claim_run_folder, output_file, output_names, run_lock
from .train import (
    STAGE1_PRESETS, STAGE2_PRESETS, Stage1Config, Stage2Config, config_from_dict, stage1_preset, stage2_preset,
    train_stage1, train_stage2,
)
from .weights import STAGE1, STAGE2, is_kit_checkpoint, load_checkpoint, load_recomposer, load_stage1, read_weights_file
from .zero_dce import enhance_zero_dce, load_zero_dce

DATA_HELP = "'auto' (data/LOL/ in the repository if there, else the synthetic set), 'synthetic', or a LOL folder"


# ----------------------------------------------------------------------------- enhance
def collect_inputs(inputs: list[str]) -> list[Path]:
    """Image files named directly, plus the images directly inside named folders (the
    sub-folders skipped are named)."""
    files: list[Path] = []
    skipped: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files.extend(list_images(path, "input folder"))
            skipped += [f"{p.name}/" for p in sorted(path.iterdir()) if p.is_dir() and not p.name.startswith(".")]
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise DRBNError(f"{path} is not an image ({', '.join(IMAGE_SUFFIXES)}); pass images or folders of images.")
            files.append(path)
        else:
            raise DRBNError(f"input not found: {path}; check the path.")
    if skipped:
        shown = ", ".join(skipped[:8]) + (", ..." if len(skipped) > 8 else "")
        print(f"drbn: skipped {len(skipped)} sub-folder{'s' if len(skipped) > 1 else ''}: {shown} "
              "(only the images directly inside a folder are enhanced)")
    return files


def load_models(weights: str | None, stage2: str | None, device: str = "auto"):
    """(stage1, recomposer or None) from --weights and --stage2, on ``device``; a kit
    stage-2 checkpoint also carries the stage 1 it was trained over."""
    device = pick_device(device)  # first, so a wrong --device is reported before any loading
    recomposer = load_recomposer(stage2) if stage2 else None
    own = load_stage1(stage2) if stage2 and is_kit_checkpoint(read_weights_file(stage2)) else None
    if weights:
        stage1 = load_stage1(weights)
        if own is not None and not same_weights(stage1, own):
            print(f"drbn: warning: {stage2} was trained over another stage 1 than {weights}; its "
                  "recomposer expects the bands of its own (leave out --weights to use it)", file=sys.stderr)
    elif own is not None:
        stage1 = own
    else:
        raise DRBNError(
            "no stage-1 weights: pass --weights with the authors' model_s1.pt or a stage1.pt "
            "from train-stage1 (a stage-2 checkpoint of this kit also carries its stage 1)."
        )
    return stage1.to(device), None if recomposer is None else recomposer.to(device)


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape and bool((sa[k].cpu() == sb[k].cpu()).all())
                                          for k in sa)


BAND_SUFFIXES = ("_band1", "_band2", "_band3", "_w1", "_w2", "_w3")


def load_enhancer(args) -> Callable[[np.ndarray], Enhancement]:
    """What ``--method`` names, loaded once: image -> :class:`Enhancement`. Zero-DCE (the
    peer method of notebooks/05) has no bands: its Enhancement carries the output only."""
    if args.method == "zero-dce":
        drbn_only = [flag for flag, given in (("--stage2", args.stage2), ("--save-bands", getattr(args, "save_bands", False)))
                     if given]
        if drbn_only:
            raise DRBNError(f"{', '.join(drbn_only)}: DRBN options; --method zero-dce takes only --weights.")
        model = load_zero_dce(args.weights).to(pick_device(args.device))
        return lambda image: Enhancement(*(2 * [enhance_zero_dce(model, image)]))
    stage1, recomposer = load_models(args.weights, args.stage2, args.device)
    tile, overlap = getattr(args, "tile", "auto"), getattr(args, "overlap", OVERLAP)
    return lambda image: enhance(stage1, image, recomposer, tile=tile, overlap=overlap)


def cmd_enhance(args) -> None:
    files = collect_inputs(args.inputs)
    out = check_output_folder(args.output, "-o")
    stems, renamed = output_names(files, out, ("", *BAND_SUFFIXES) if args.save_bands else ("",))
    if renamed:
        print(f"drbn: inputs share a name, written as: {'; '.join(renamed)}")
    apply = load_enhancer(args)
    failed = []
    for path, stem in zip(files, stems):
        try:
            image = read_image(path)
        except DRBNError as exc:  # finish the others, then list what failed
            failed.append(str(exc).replace(str(path), path.name).rstrip("."))
            continue
        result = apply(image)
        target = write_image(f"{stem}.png", result.output)
        if args.save_bands and result.bands is not None:
            for i, band in enumerate(result.bands, 1):  # bands are signed: shown around mid-grey
                write_image(f"{stem}_band{i}.png", band + (0.0 if i == 1 else 0.5))
            for i, weight in enumerate(result.weights, 1):  # weights live around [0.6, 1.4]
                write_image(f"{stem}_w{i}.png", np.clip(weight - 0.4, 0, 1))
        print(target)
    if failed:
        written = len(files) - len(failed)
        kept = f"the other {written} were written to {out}" if written else "nothing was written"
        raise DRBNError(f"{len(failed)} of {len(files)} images failed ({' | '.join(failed)}); {kept}.")


# ----------------------------------------------------------------------------- training
def overrides(args, names: dict[str, str]) -> dict:
    """Config fields given on the command line: {config field: value} for flags not None."""
    return {field: getattr(args, flag) for flag, field in names.items() if getattr(args, flag) is not None}


def report(stage: str, result) -> None:
    if not distributed.is_main():
        return
    print(f"{stage}: {len(result.history['step'])} steps, checkpoint {result.checkpoint}")
    if result.history["psnr"]:
        print(f"validation PSNR {result.history['psnr'][-1]:.2f} dB, SSIM {result.history['ssim'][-1]:.4f} (full image)")
    for note in getattr(result, "notes", []):
        print(f"note: {note}")


def training_config(args, kind: str, names: dict[str, str]):
    """The settings a training command asks for: the preset with the options given; with
    --resume, the saved run's with the options given (training refuses any change but steps)."""
    preset, cls = (stage1_preset, Stage1Config) if kind == STAGE1 else (stage2_preset, Stage2Config)
    given = overrides(args, names)
    if args.resume is None:
        config = preset(args.preset or "cpu", **given)
    else:
        saved = config_from_dict(cls, load_checkpoint(args.resume, kind)["requested_config"])
        base = replace(preset(args.preset), steps=saved.steps) if args.preset else saved
        config = replace(base, **given)
    check_settings(config)
    return config


def cmd_train_stage1(args) -> None:
    config = training_config(args, STAGE1, {"data": "data", "steps": "steps", "seed": "seed"})
    out = check_output_folder(args.out)
    if distributed.is_main():  # under torchrun, one process speaks
        print(f"data: {describe(config.data)}")
    with run_lock(out):
        claim_run_folder(out, "stage1.pt", args.resume, args.overwrite)
        report("stage 1", train_stage1(config, out, resume=args.resume, device=args.device))


def cmd_train_stage2(args) -> None:
    config = training_config(args, STAGE2, {
        "data": "data", "unpaired": "unpaired", "hq": "high_quality", "steps": "steps", "seed": "seed",
        "adv_weight": "adv_weight", "vgg_weights": "vgg_weights"})
    out = check_output_folder(args.out)
    stage1 = load_stage1(args.stage1)
    if distributed.is_main():  # under torchrun, one process speaks
        print(f"data: {describe(config.data)}")
    with run_lock(out):
        claim_run_folder(out, "stage2.pt", args.resume, args.overwrite)
        report("stage 2", train_stage2(config, stage1, out, resume=args.resume, device=args.device))


# ----------------------------------------------------------------------------- evaluate, ablate, reproduce
def cmd_evaluate(args) -> None:
    csv_path = output_file(args.csv, "evaluate.csv", "--csv")  # a folder: evaluate.csv inside it
    if args.niqe or args.unpaired:
        load_niqe_model()  # a missing model is reported before anything is loaded or enhanced
    apply = load_enhancer(args)
    if args.unpaired:  # photos without targets: NIQE only
        photos = load_unpaired(args.unpaired, "unpaired photo folder")
        rows = score_unpaired(lambda y: apply(y).output, photos)
        print(f"photos: {args.unpaired} (no targets: NIQE only), {len(rows)} images, method {args.method}")
    else:
        pairs = load_pairs(args.data, args.split)
        rows = score_outputs(lambda y: apply(y).output, pairs, with_niqe=args.niqe)
        print(f"data: {describe(args.data)}, split {args.split}, {len(rows)} images, method {args.method}")
    print(format_table(rows))
    print(f"written {write_csv(rows, csv_path)}")


def parse_tile(text: str) -> int | str | None:
    """``--tile``: 'auto', 'none' (the whole image at once) or a window side in pixels."""
    if text in ("auto", "none"):
        return None if text == "none" else "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--tile takes a number of pixels, 'auto' or 'none', got {text!r}") from None


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` -> (K, N): this process runs the K-th of N shares of the runs (1 <= K <= N)."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard takes K/N, e.g. 1/4, got {text!r}") from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"--shard K/N needs 1 <= K <= N, got {text!r}")
    return k, n


def cmd_ablate(args) -> None:
    check_output_folder(args.out)
    variants = [experiments.variant(name) for name in args.only] if args.only else experiments.VARIANTS
    print(f"data: {describe(args.data)}")
    experiments.run_experiments(
        variants, args.preset, args.data, args.out, seeds=args.seeds, shard=args.shard, merge=args.merge,
        stage2_over=args.stage2_over, device=args.device, figures=True, high_quality=args.hq, unpaired=args.unpaired,
    )


def cmd_reproduce(args) -> int:
    params = {key: reproduce.parse_value(value) for key, value in args.p}
    params.update({key: value for key, value in (("DATA", args.data), ("HQ", args.hq),
                                                 ("UNPAIRED", args.unpaired)) if value is not None})
    print(f"data: {describe(params.get('DATA', 'auto'))}")
    return 1 if reproduce.run(args.preset, args.only, params, args.out, sequential=args.sequential) else 0


# ----------------------------------------------------------------------------- the parser
class Parser(argparse.ArgumentParser):
    """argparse with a mistake reported as one line (the usage is one --help away)."""

    def error(self, message: str):
        self.exit(2, f"drbn: error: {message}; see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m drbn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("enhance", help="enhance images or folders of images")
    p.add_argument("inputs", nargs="+", help="image files and/or folders")
    p.add_argument("-o", "--output", required=True, help="output folder for 8-bit PNGs")
    p.add_argument("--weights", help="stage-1 weights: the authors' model_s1.pt or a kit checkpoint")
    p.add_argument("--stage2", help="recomposer: a stage2.pt of this kit or the authors' model_R_s2.pt")
    p.add_argument("--save-bands", action="store_true", help="also write the bands and weight maps")
    p.add_argument("--tile", type=parse_tile, default="auto",
                   help="window side in pixels so that large photos fit in memory; 'auto' (default: the whole "
                        "image when it fits) or 'none'")
    p.add_argument("--overlap", type=int, default=OVERLAP,
                   help=f"pixels of context around each window (default {OVERLAP}: seams stay under one 8-bit level)")
    p.add_argument("--method", default="drbn", choices=["drbn", "zero-dce"],
                   help="drbn (default), or the peer method zero-dce with --weights zero_dce_Epoch99.pth "
                        "(default: found like the released weights)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.set_defaults(run=cmd_enhance)

    p = sub.add_parser("train-stage1", help="train stage 1 (recursive band learning)")
    p.add_argument("--preset", choices=list(STAGE1_PRESETS), help="default: cpu (with --resume: the saved run's)")
    p.add_argument("--data", help=DATA_HELP + " (default: auto)")
    p.add_argument("--out", default="runs/stage1")
    p.add_argument("--resume", help="a stage1.pt to continue (--steps N extends its schedule to N)")
    p.add_argument("--overwrite", action="store_true", help="start again in an --out that holds a checkpoint (moved aside, not deleted)")
    p.add_argument("--steps", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.set_defaults(run=cmd_train_stage1)

    p = sub.add_parser("train-stage2", help="train stage 2 (band recomposition) over a frozen stage 1")
    p.add_argument("--stage1", required=True, help="a stage1.pt of this kit, or the authors' model_s1.pt")
    p.add_argument("--preset", choices=list(STAGE2_PRESETS), help="default: cpu (with --resume: the saved run's)")
    p.add_argument("--data", help="paired data: " + DATA_HELP + " (default: auto)")
    p.add_argument("--unpaired", help="folder of unpaired low-light photos; 'test' = the test split's low images (the authors' choice)")
    p.add_argument("--hq", help="folder of high-quality photos (default: photos installed packages ship)")
    p.add_argument("--adv-weight", type=float, help="λ_adv: 2 for LOL (default), 1 for other data sets")
    p.add_argument("--vgg-weights", help="ImageNet VGG16 state dict file (default: torchvision's cache)")
    p.add_argument("--out", default="runs/stage2")
    p.add_argument("--resume", help="a stage2.pt to continue (--steps N extends its schedule to N)")
    p.add_argument("--overwrite", action="store_true", help="start again in an --out that holds a checkpoint (moved aside, not deleted)")
    p.add_argument("--steps", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.set_defaults(run=cmd_train_stage2)

    p = sub.add_parser("evaluate", help="PSNR/SSIM (and NIQE) per image and mean, written as CSV")
    p.add_argument("--weights", help="stage-1 weights (optional when --stage2 is a kit checkpoint)")
    p.add_argument("--stage2", help="recomposer weights")
    p.add_argument("--data", default="auto", help=DATA_HELP)
    p.add_argument("--split", default="test", choices=["train", "test"])
    p.add_argument("--method", default="drbn", choices=["drbn", "zero-dce"],
                   help="drbn (default), or the peer method zero-dce with --weights zero_dce_Epoch99.pth "
                        "(default: found like the released weights)")
    p.add_argument("--niqe", action="store_true",
                   help="also score each output's NIQE (no-reference, lower is better; fetch-weights --only niqe)")
    p.add_argument("--unpaired", metavar="DIR",
                   help="score the outputs for a folder of photos without targets (and its sub-folders): NIQE only")
    p.add_argument("--csv", default="runs/evaluate.csv", help="CSV file; a folder means FOLDER/evaluate.csv")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.set_defaults(run=cmd_evaluate)

    p = sub.add_parser("ablate", help="train and score the ablation variants side by side (notebooks/04)")
    p.add_argument("--preset", default="cpu-ablation", help="ablation budget, e.g. smoke-ablation, cpu-ablation, paper")
    p.add_argument("--data", default="auto", help=DATA_HELP)
    p.add_argument("--out", default="runs/ablations")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these variants (by name)")
    p.add_argument("--stage2-over", default="trained", choices=("trained", "released"),
                   help="stage-2 variants train over our DRBN T=4 or the authors' released stage 1")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], metavar="N", help="one run per seed (default: 0)")
    p.add_argument("--shard", type=parse_shard, metavar="K/N", help="run only the K-th of N shares of the runs")
    p.add_argument("--merge", action="store_true", help="only gather the finished runs of all shards into the table")
    p.add_argument("--hq", default="auto", help="stage-2 variants: folder of high-quality photos (default: photos installed packages ship)")
    p.add_argument("--unpaired", default="auto", help="stage-2 variants: folder of unpaired low-light photos (default: synthetic)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.set_defaults(run=cmd_ablate)

    p = sub.add_parser("reproduce", help="run the notebooks with papermill and write a summary")
    p.add_argument("--preset", default="cpu", choices=reproduce.PRESETS)
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only notebooks whose name contains NAME")
    p.add_argument("-p", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                   help="a notebook parameter, e.g. -p SEED 1")
    p.add_argument("--data", help="paired data for every notebook (parameter DATA): " + DATA_HELP)
    p.add_argument("--hq", help="folder of high-quality photos (parameter HQ)")
    p.add_argument("--unpaired", help="folder of unpaired low-light photos (parameter UNPAIRED)")
    p.add_argument("--out", default="outputs")
    p.add_argument("--sequential", action="store_true",
                   help="one notebook at a time with every thread (default: 04 beside 00-02, half the threads each)")
    p.set_defaults(run=cmd_reproduce)

    p = sub.add_parser("fetch-weights", help="download and verify the authors' released weights")
    fetch.add_arguments(p)
    p.set_defaults(run=fetch.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except DRBNError as exc:
        print(f"drbn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("drbn: interrupted", file=sys.stderr)
        return 130
