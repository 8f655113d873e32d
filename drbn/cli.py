"""Command line: ``python -m drbn enhance | train-stage1 | train-stage2 | evaluate``.

Every predictable mistake ends with one line on stderr and exit status 2, never a trace.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .device import DEVICE_HELP
from .errors import DRBNError
from .images import IMAGE_SUFFIXES, list_images, read_image, write_image


def collect_inputs(inputs: list[str]) -> list[Path]:
    """Image files named directly, plus the images inside named folders."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files.extend(list_images(path, "input folder"))
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise DRBNError(f"{path} is not an image ({', '.join(IMAGE_SUFFIXES)}); pass images or folders of images.")
            files.append(path)
        else:
            raise DRBNError(f"input not found: {path}; check the path.")
    return files


def load_models(weights: str | None, stage2: str | None, device: str = "auto"):
    """(stage1, recomposer or None) from --weights and --stage2, on ``device``."""
    from .checkpoint import load_recomposer_any, load_stage1_any
    from .device import pick_device

    device = pick_device(device)  # first, so a wrong --device is reported before any loading

    recomposer, stage1 = None, None
    if stage2:
        recomposer, stage1 = load_recomposer_any(stage2)
    if weights:
        stage1 = load_stage1_any(weights)
    if stage1 is None:
        raise DRBNError(
            "no stage-1 weights: pass --weights with the authors' model_s1.pt or a stage1.pt "
            "from train-stage1 (a stage-2 checkpoint of this kit also carries its stage 1)."
        )
    return stage1.to(device), None if recomposer is None else recomposer.to(device)


def cmd_enhance(args) -> None:
    import numpy as np

    from .enhance import enhance

    files = collect_inputs(args.inputs)
    stage1, recomposer = load_models(args.weights, args.stage2, args.device)
    out = Path(args.output)
    for path in files:
        result = enhance(stage1, read_image(path), recomposer)
        target = write_image(out / f"{path.stem}.png", result.output)
        if args.save_bands and result.bands is not None:
            for i, band in enumerate(result.bands, 1):  # bands are signed: shown around mid-grey
                write_image(out / f"{path.stem}_band{i}.png", band + (0.0 if i == 1 else 0.5))
            for i, weight in enumerate(result.weights, 1):  # weights live around [0.6, 1.4]
                write_image(out / f"{path.stem}_w{i}.png", np.clip(weight - 0.4, 0, 1))
        print(target)


def cmd_train_stage1(args) -> None:
    from .train import stage1_preset, train_stage1

    overrides = {k: v for k, v in (("data", args.data), ("steps", args.steps), ("seed", args.seed)) if v is not None}
    config = stage1_preset(args.preset, **overrides)
    result = train_stage1(config, args.out, resume=args.resume, device=args.device)
    print(f"stage 1: {len(result.history['step'])} steps, checkpoint {result.checkpoint}")
    if result.history["psnr"]:
        print(f"validation PSNR {result.history['psnr'][-1]:.2f} dB, SSIM {result.history['ssim'][-1]:.4f} (full image)")


def cmd_train_stage2(args) -> None:
    from .checkpoint import load_stage1_any
    from .train import stage2_preset, train_stage2

    source = args.stage1[len("released:"):] if args.stage1.startswith("released:") else args.stage1
    stage1 = load_stage1_any(source)
    overrides = {k: v for k, v in (("data", args.data), ("unpaired", args.unpaired),
                                   ("high_quality", args.hq), ("steps", args.steps),
                                   ("seed", args.seed), ("adv_weight", args.adv_weight),
                                   ("vgg_weights", args.vgg_weights)) if v is not None}
    config = stage2_preset(args.preset, **overrides)
    result = train_stage2(config, stage1, args.out, resume=args.resume, device=args.device)
    print(f"stage 2: {len(result.history['step'])} steps, checkpoint {result.checkpoint}")
    if result.history["psnr"]:
        print(f"validation PSNR {result.history['psnr'][-1]:.2f} dB, SSIM {result.history['ssim'][-1]:.4f} (full image)")


def cmd_evaluate(args) -> None:
    from .data import describe, load_pairs
    from .evaluate import evaluate, format_table, write_csv

    stage1, recomposer = load_models(args.weights, args.stage2, args.device)
    pairs = load_pairs(args.data, args.split)
    rows = evaluate(stage1, pairs, recomposer)
    print(f"{describe(args.data)}, split {args.split}, {len(rows)} images")
    print(format_table(rows))
    print(f"written {write_csv(rows, args.csv)}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m drbn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("enhance", help="enhance images or folders of images")
    p.add_argument("inputs", nargs="+", help="image files and/or folders")
    p.add_argument("-o", "--output", required=True, help="output folder for 8-bit PNGs")
    p.add_argument("--weights", help="stage-1 weights: the authors' model_s1.pt or a kit checkpoint")
    p.add_argument("--stage2", help="recomposer: a stage2.pt of this kit or the authors' model_R_s2.pt")
    p.add_argument("--save-bands", action="store_true", help="also write the bands and weight maps")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.set_defaults(run=cmd_enhance)

    p = sub.add_parser("train-stage1", help="train stage 1 (recursive band learning)")
    p.add_argument("--preset", default="cpu", choices=["smoke", "cpu", "paper"])
    p.add_argument("--data", help="LOL folder (default: the synthetic set)")
    p.add_argument("--out", default="runs/stage1")
    p.add_argument("--resume", help="a stage1.pt to continue")
    p.add_argument("--steps", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.set_defaults(run=cmd_train_stage1)

    p = sub.add_parser("train-stage2", help="train stage 2 (band recomposition) over a frozen stage 1")
    p.add_argument("--stage1", required=True, help="a stage1.pt of this kit, or released:PATH to model_s1.pt")
    p.add_argument("--preset", default="cpu", choices=["smoke", "cpu", "paper"])
    p.add_argument("--data", help="LOL folder for paired data (default: the synthetic set)")
    p.add_argument("--unpaired", help="folder of unpaired low-light photos; 'test' = the test split's low images (the authors' choice)")
    p.add_argument("--hq", help="folder of high-quality photos (default: photos installed packages ship)")
    p.add_argument("--adv-weight", type=float, help="λ_adv: 2 for LOL (default), 1 for other data sets")
    p.add_argument("--vgg-weights", help="ImageNet VGG16 state dict file (default: torchvision's cache)")
    p.add_argument("--out", default="runs/stage2")
    p.add_argument("--resume", help="a stage2.pt to continue")
    p.add_argument("--steps", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.set_defaults(run=cmd_train_stage2)

    p = sub.add_parser("evaluate", help="PSNR/SSIM per image and mean, written as CSV")
    p.add_argument("--weights", help="stage-1 weights (optional when --stage2 is a kit checkpoint)")
    p.add_argument("--stage2", help="recomposer weights")
    p.add_argument("--data", default="auto", help="LOL folder, or 'auto' for the synthetic test set")
    p.add_argument("--split", default="test", choices=["train", "test"])
    p.add_argument("--csv", default="runs/evaluate.csv")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.set_defaults(run=cmd_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except DRBNError as exc:
        print(f"drbn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("drbn: interrupted", file=sys.stderr)
        return 130
    return 0
