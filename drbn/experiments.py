"""Ablations and baselines: configurations of the library trained side by side with one
budget, scored on one test split, and tabulated.

Introduced in notebooks/04_ablations.

A :class:`Variant` is not a copy of any code: it is a set of knobs of ``DRBNConfig``, the
stage-1 loss weights and ``Stage2Config``. :func:`run_experiments` trains each variant with
one :class:`Budget`, evaluates it on the test split with ``drbn.metrics`` and writes
``results.csv``, ``results.md`` and ``results.json``. It is resumable: a finished variant
keeps ``OUT_DIR/<variant>/result.json`` (and its checkpoint) and is not trained again while
its configuration, budget and data are unchanged; an interrupted one continues from its
last checkpoint.

Command line (for a GPU run of the full protocol):
``python -m drbn.experiments --budget paper --data /path/to/LOL --out runs/ablations``
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from . import data as datasets
from . import metrics
from .baselines import Baseline, ReleasedDRBN, default_baselines
from .checkpoint import STAGE1, load_stage1_any
from .device import DEVICE_HELP, device_of, pick_device, synchronize
from .enhance import enhance, enhance_tensor
from .errors import DRBNError
from .evaluate import score_outputs
from .losses import find_vgg16_weights
from .model import DRBN, DRBNConfig, count_parameters
from .recompose import RecomposerConfig
from .released import STAGE1_FILENAME, find_released, load_stage1
from .train import (
    Stage1Config, Stage2Config, matching_run, negated_channels, train_or_reuse_stage2, train_stage1,
)

SCORES = (metrics.PSNR, metrics.SSIM, metrics.PSNR_RELEASED)
PARAMETERS = "parameters"
TRAIN_SECONDS = "training s"
INFERENCE_MS = "inference ms (400x600)"
TABLE_COLUMNS = ("variant", *SCORES, PARAMETERS, TRAIN_SECONDS, INFERENCE_MS, "notes")
TIMING_SIZE = (400, 600)  # a LOL image
# When a stage-1 run is checked for negated channels: by then the sign of every channel's
# correlation with its target is settled (seen on the synthetic set from step 10 on).
NEGATION_CHECK_STEPS = 50
SEED_STRIDE = 1000  # restart k of a run with seed s uses seed s + k * SEED_STRIDE


# ----------------------------------------------------------------------------- variants
@dataclass
class Variant:
    """One configuration to train and score.

    stage 1: a stage-1 network trained from scratch with ``model`` and ``loss_weights``
             (full, half, quarter; ``(1, 0, 0)`` is the single-scale loss).
    stage 2: a recomposer trained over the shared, frozen stage 1 (see ``run_experiments``)
             with ``weight_mapping``, ``adv_weight`` (λ_adv) and ``perceptual_weight``;
             ``recompose=False`` trains nothing and scores the stage-1 output itself.
    """

    name: str
    stage: int
    description: str
    model: DRBNConfig = field(default_factory=DRBNConfig)
    loss_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    recompose: bool = True
    weight_mapping: str = "released"
    adv_weight: float = 2.0
    perceptual_weight: float = 1.0

    def __post_init__(self):
        if self.stage not in (1, 2):
            raise DRBNError(f"variant {self.name!r}: stage must be 1 or 2, got {self.stage!r}.")

    @property
    def slug(self) -> str:
        """The folder name under the runner's ``out_dir``."""
        return slug(self.name)


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", name.replace("λ", "lambda")).strip("-")


def drbn_variant(recursions: int) -> Variant:
    return Variant(
        f"DRBN T={recursions}", 1,
        f"the full stage 1 with {recursions} recursion{'s' * (recursions > 1)} "
        "(feature residuals, recursive input, multi-scale loss)",
        DRBNConfig(recursions=recursions),
    )


# The full stage 1 (T = 4, 557,668 parameters): the reference, and the stage 1 that the
# stage-2 variants train over unless the released weights are asked for.
REFERENCE = drbn_variant(4)

STAGE1_VARIANTS = [
    Variant("RBL-v1", 1, "one recursion, single-scale loss: SSIM on the full-resolution output only",
            DRBNConfig(recursions=1), (1.0, 0.0, 0.0)),
    Variant("RBL-v2", 1, "one recursion, multi-scale loss on the full, half and quarter outputs",
            DRBNConfig(recursions=1)),
    Variant("RBL-v3", 1, "four recursions without feature residuals: each recursion sees only "
            "the previous estimate and y, not the previous recursion's features",
            DRBNConfig(recursions=4, feature_residuals=False)),
    drbn_variant(1),  # the same configuration as RBL-v2: the runner trains it once
    drbn_variant(2),
    drbn_variant(3),
    REFERENCE,
]

STAGE2_VARIANTS = [
    Variant("stage-1 output", 2, "no recomposition: the shared stage 1's full-resolution output",
            recompose=False),
    Variant("recomposed", 2, "band recomposition as released: w = 0.8 z + 0.6, λ_adv = 2, "
            "perceptual + SSIM + adversarial losses"),
    Variant("recomposed, bounded w", 2, "as 'recomposed' with w = 0.6 + 0.8 sigmoid(z), in [0.6, 1.4]",
            weight_mapping="bounded"),
    Variant("recomposed, λ_adv=0", 2, "as 'recomposed' without the adversarial (quality) term",
            adv_weight=0.0),
    Variant("recomposed, λ_adv=1", 2, "as 'recomposed' with λ_adv = 1 (the other-datasets setting)",
            adv_weight=1.0),
    Variant("recomposed, no perceptual", 2, "as 'recomposed' without the VGG16 perceptual term",
            perceptual_weight=0.0),
]

VARIANTS = STAGE1_VARIANTS + STAGE2_VARIANTS


def variant(name: str) -> Variant:
    """A variant of VARIANTS by name."""
    for v in VARIANTS:
        if v.name == name:
            return v
    raise DRBNError(f"unknown variant {name!r}; choose one of {', '.join(v.name for v in VARIANTS)}.")


def build(v: Variant) -> DRBN:
    """The untrained stage-1 network of a stage-1 variant."""
    return DRBN(v.model)


# ----------------------------------------------------------------------------- budgets
@dataclass
class Budget:
    """How much training every variant gets. ``stage2_*`` fall back to the stage-1 values.

    ``lr_scale`` multiplies the released learning rates (both stages, discriminator too):
    short runs need larger steps to get anywhere. ``eval_images`` limits the test images
    scored (None = all); ``timing_repeats`` forward passes are timed (median) per model.

    ``restarts``: a stage-1 run whose output has an RGB channel anti-correlated with its
    target after ``NEGATION_CHECK_STEPS`` steps has fallen into the negated-image local
    optimum of the -SSIM loss (see :func:`drbn.train.negated_channels`); it is started
    again with another seed, at most this many times, and the table says so. 0 keeps every
    first run as it comes (and flags it).
    """

    steps: int
    crop: int
    batch_size: int
    seed: int = 0
    stage2_steps: int | None = None
    stage2_crop: int | None = None
    stage2_batch_size: int | None = None
    lr_scale: float = 1.0
    eval_images: int | None = None
    timing_repeats: int = 3
    restarts: int = 3

    def describe(self) -> str:
        s2 = (self.stage2_steps or self.steps, self.stage2_crop or self.crop,
              self.stage2_batch_size or self.batch_size)
        text = (f"stage 1: {self.steps} steps, {self.crop}x{self.crop} crops, batch {self.batch_size}; "
                f"stage 2: {s2[0]} steps, {s2[1]}x{s2[1]} crops, batch {s2[2]}; seed {self.seed}")
        if self.lr_scale != 1:
            text += f"; learning rates x{self.lr_scale:g} the released ones"
        if self.restarts:
            text += (f"; a stage-1 run with a negated channel at step {min(self.steps, NEGATION_CHECK_STEPS)} "
                     f"is restarted with another seed (at most {self.restarts}x)")
        return text


BUDGETS = {
    # the released protocol (a GPU): 259 k stage-1 iterations at 256x256, 13.8 k stage-2 at 128x128
    "paper": Budget(steps=259_000, crop=256, batch_size=4, stage2_steps=13_800, stage2_crop=128,
                    stage2_batch_size=2),
    # about 11 minutes for every variant and baseline on 2 CPU cores (656 s measured): far too short to
    # converge, so differences between variants may be noise (notebooks/04 says so)
    "cpu": Budget(steps=500, crop=64, batch_size=4, stage2_steps=150, stage2_crop=64,
                  stage2_batch_size=2, lr_scale=5.0),
    # seconds: exercises every code path, learns nothing
    "smoke": Budget(steps=2, crop=32, batch_size=2, stage2_steps=2, stage2_crop=32, stage2_batch_size=2,
                    eval_images=1, timing_repeats=1),
}


def budget(name: str, **overrides: Any) -> Budget:
    """A budget by name with some fields replaced, e.g. ``budget('cpu', seed=1)``."""
    if name not in BUDGETS:
        raise DRBNError(f"unknown budget {name!r}; choose one of {', '.join(BUDGETS)}.")
    return replace(BUDGETS[name], **overrides)


def stage1_config(v: Variant, b: Budget, data: str | os.PathLike = "auto") -> Stage1Config:
    """The library's stage-1 training configuration of a stage-1 variant under a budget."""
    base = Stage1Config()
    return Stage1Config(
        steps=b.steps, batch_size=b.batch_size, crop=b.crop, lr=base.lr * b.lr_scale, seed=b.seed,
        data=str(data), eval_every=min(b.steps, 5_000), checkpoint_every=min(b.steps, 1_000),
        max_eval_images=1, loss_weights=tuple(v.loss_weights), model=v.model,
    )


def stage2_config(v: Variant, b: Budget, data: str | os.PathLike = "auto") -> Stage2Config:
    """The library's stage-2 training configuration of a stage-2 variant under a budget."""
    base = Stage2Config()
    steps = b.stage2_steps or b.steps
    return Stage2Config(
        steps=steps, batch_size=b.stage2_batch_size or b.batch_size, crop=b.stage2_crop or b.crop,
        lr=base.lr * b.lr_scale, lr_discriminator=base.lr_discriminator * b.lr_scale,
        adv_weight=v.adv_weight, perceptual_weight=v.perceptual_weight, seed=b.seed, data=str(data),
        eval_every=min(steps, 1_000), checkpoint_every=min(steps, 1_000), max_eval_images=1,
        recomposer=RecomposerConfig(weight_mapping=v.weight_mapping),
    )


# ----------------------------------------------------------------------------- scoring
def median_ms(call: Callable[[], Any], repeats: int = 3) -> float:
    """Median wall time of ``call()`` in milliseconds; one untimed warm-up when repeats > 1."""
    if repeats < 1:
        return math.nan
    if repeats > 1:
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(1000 * (time.perf_counter() - start))
    return float(statistics.median(times))


def inference_ms(stage1: DRBN, recomposer=None, repeats: int = 3, size: tuple[int, int] = TIMING_SIZE) -> float:
    """Milliseconds for one forward pass of a random 1 x 3 x 400 x 600 input (median), on
    the device of ``stage1`` (``recomposer`` must be there too)."""
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0)).to(device_of(stage1))

    def one_pass():
        enhance_tensor(stage1, x, recomposer)
        synchronize(x.device)  # a GPU runs asynchronously: time the work, not the launch

    return median_ms(one_pass, repeats)


def mean_scores(rows: list[dict[str, Any]]) -> dict[str, float]:
    return metrics.average([{c: r[c] for c in SCORES} for r in rows])


def short_history(history: dict[str, list], points: int = 200) -> dict[str, list]:
    """The loss curve thinned to at most ``points`` points, and every validation."""
    n = len(history.get("step", []))
    keep = sorted(set(np.linspace(0, n - 1, min(n, points)).round().astype(int).tolist())) if n else []
    return {"step": [history["step"][i] for i in keep], "loss": [history["loss"][i] for i in keep],
            "eval_step": list(history.get("eval_step", [])), "psnr": list(history.get("psnr", [])),
            "ssim": list(history.get("ssim", []))}


# ----------------------------------------------------------------------------- the runner
class _Run:
    """State of one ``run_experiments`` call: where, on what, with which budget."""

    def __init__(self, b: Budget, data, out_dir: Path, progress: bool, stage2_over: str, device: torch.device):
        self.budget, self.data, self.out_dir, self.progress = b, data, out_dir, progress
        self.stage2_over, self.device = stage2_over, device
        self.data_text = datasets.describe(data)
        self.test_pairs = datasets.load_pairs(data, "test")[: b.eval_images]
        self._train_pairs = None
        self.timings: dict[str, float] = {}  # architecture -> ms (weights do not change the cost)
        self.by_training: dict[str, dict] = {}  # training configuration -> finished row
        self.vgg = find_vgg16_weights() is not None
        self._stage1 = None
        self.done: dict[str, dict] = {}  # variant name -> row, in this call
        self.reused = 0  # rows read back from an earlier call

    @property
    def train_pairs(self):
        if self._train_pairs is None:
            self._train_pairs = datasets.load_pairs(self.data, "train")
        return self._train_pairs

    def log(self, text: str) -> None:
        print(text, flush=True)

    # -- caching
    def cached(self, name: str, key: dict) -> dict | None:
        path = self.out_dir / slug(name) / "result.json"
        if path.exists():
            row = json.loads(path.read_text())
            missing = row.get("checkpoint") and not (self.out_dir / row["checkpoint"]).exists()
            if row.get("key") == _jsonable(key) and not missing:
                self.reused += 1
                return row
        return None

    def save(self, row: dict) -> dict:
        path = self.out_dir / slug(row["variant"]) / "result.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(row, indent=1, default=_json_default))
        return row

    def time_model(self, stage1: DRBN, recomposer=None) -> float:
        arch = json.dumps([asdict(stage1.config), asdict(recomposer.config) if recomposer else None,
                           str(device_of(stage1))])
        if arch not in self.timings:
            self.timings[arch] = inference_ms(stage1, recomposer, self.budget.timing_repeats)
        return self.timings[arch]

    def reuse(self, name: str, description: str, group: str, key: dict, training: str, notes: list[str]):
        """A variant whose training configuration an earlier one already ran: share its result."""
        other = self.by_training.get(training)
        if other is None:
            return None
        row = {**other, "variant": name, "description": description, "group": group, "key": _jsonable(key),
               "same_as": other["variant"],
               "notes": "; ".join([*notes, f"same configuration as {other['variant']}: trained once"])}
        self.log(f"  {name}: same configuration as {other['variant']}, result shared")
        return self.save(row)

    # -- baselines
    def baseline(self, b: Baseline) -> dict:
        key = {"kind": "baseline", "baseline": repr(b), "data": self.data_text, "eval_images": self.budget.eval_images}
        row = self.cached(b.name, key)
        if row is not None:
            self.log(f"  {b.name}: done before, reused")
            return row
        self.log(f"  {b.name}: {b.description}")
        train_pairs = self.train_pairs  # loaded before the clock starts
        started = time.perf_counter()
        b.fit(train_pairs)
        fit_seconds = time.perf_counter() - started
        folder = self.out_dir / slug(b.name)
        per_image = score_outputs(b, self.test_pairs, folder / "images")
        low = torch.rand(*TIMING_SIZE, 3, generator=torch.Generator().manual_seed(0)).numpy()
        released = isinstance(b, ReleasedDRBN)
        if released:  # timed where the kit's own networks are timed
            ms = self.time_model(*(None if m is None else m.to(self.device) for m in b.models()))
        else:
            ms = median_ms(lambda: b(low), self.budget.timing_repeats)
        return self.save({
            "variant": b.name, "group": "baseline", "description": b.description, "key": _jsonable(key),
            **mean_scores(per_image), PARAMETERS: b.parameters(),
            TRAIN_SECONDS: math.nan if released else fit_seconds, INFERENCE_MS: ms,
            "notes": "authors' weights, trained on LOL-v2-real" if released else
                     ("; ".join(f"{k} = {v}" for k, v in b.settings().items() if k != "grid") or ""),
            "settings": b.settings(), "per_image": per_image, "images": _images(folder, self.test_pairs),
        })

    # -- stage 1
    def stage1_key(self, v: Variant) -> dict:
        return {"kind": "stage 1", "config": asdict(stage1_config(v, self.budget, self.data)),
                "restarts": self.budget.restarts, "data": self.data_text, "eval_images": self.budget.eval_images}

    def stage1(self, v: Variant) -> dict:
        if v.name in self.done:
            return self.done[v.name]
        key = self.stage1_key(v)
        training = json.dumps(key["config"], sort_keys=True)
        row = self.cached(v.name, key)
        if row is not None:
            self.log(f"  {v.name}: done before, reused")
            self.by_training.setdefault(training, row)
            self.done[v.name] = row
            return row
        shared = self.reuse(v.name, v.description, "stage 1", key, training, [])
        if shared is not None:
            self.done[v.name] = shared
            return shared
        folder = self.out_dir / v.slug
        config = stage1_config(v, self.budget, self.data)
        self.log(f"  {v.name}: {v.description}; training {config.steps} steps")
        result, negated, notes = self.train_stage1_guarded(config, folder)
        model = result.model.eval()
        per_image = score_outputs(lambda y: enhance(model, y).output, self.test_pairs, folder / "images")
        row = self.save({
            "variant": v.name, "group": "stage 1", "description": v.description, "key": _jsonable(key),
            **mean_scores(per_image), PARAMETERS: count_parameters(model),
            TRAIN_SECONDS: result.history["seconds"][-1] if result.history["seconds"] else 0.0,
            INFERENCE_MS: self.time_model(model), "notes": "; ".join(notes),
            "seed": result.config.seed, "negated": negated,
            "settings": {"model": asdict(v.model), "loss_weights": list(v.loss_weights)},
            "per_image": per_image, "images": _images(folder, self.test_pairs),
            "checkpoint": str(result.checkpoint.relative_to(self.out_dir)),
            "history": short_history(result.history),
        })
        self.by_training[training] = row
        self.done[v.name] = row
        return row

    def train_stage1_guarded(self, config: Stage1Config, folder: Path):
        """Train (or continue) stage 1, restarting with another seed while the run falls
        into the negated-image optimum (``Budget.restarts``). An interrupted run continues
        with the attempt it had reached, so a long restarted run is never thrown away.

        Returns (the result, the channels still negated at the end, notes for the table)."""
        check_at = min(config.steps, NEGATION_CHECK_STEPS)
        attempts = [replace(config, seed=config.seed + k * SEED_STRIDE) for k in range(self.budget.restarts + 1)]
        checkpoint, log = folder / "stage1.pt", folder / "restarts.json"
        reached = next((k for k, run in enumerate(attempts) if matching_run(checkpoint, run, STAGE1)), None)
        notes: list[str] = json.loads(log.read_text()) if reached and log.exists() else []
        for k, run in enumerate(attempts[reached or 0:], start=reached or 0):
            resume = checkpoint if k == reached else None
            early = train_stage1(run, folder, resume=resume, progress=self.progress, stop_at=check_at,
                                 device=self.device)
            negated = negated_channels(early.model, self.train_pairs[0])
            if not negated or k == len(attempts) - 1:
                break
            notes.append(f"seed {run.seed}: {', '.join(negated)} negated at step {check_at}, restarted")
            log.write_text(json.dumps(notes))
            self.log(f"    seed {run.seed}: {', '.join(negated)} anti-correlated with the target at step "
                     f"{check_at} (the negated-image optimum of -SSIM); restarting with seed "
                     f"{run.seed + SEED_STRIDE}")
        result = train_stage1(run, folder, resume=checkpoint, progress=self.progress, device=self.device)
        final = negated_channels(result.model, self.train_pairs[0])
        if final:
            notes.append(f"{', '.join(final)} negated: anti-correlated with the target (see notebook 04)")
        return result, final, notes

    # -- stage 2
    def shared_stage1(self) -> tuple[DRBN, dict]:
        """The frozen stage 1 of every stage-2 variant, and what identifies it."""
        if self.stage2_over == "released":
            path = find_released(STAGE1_FILENAME)
            if path is None:
                raise DRBNError(
                    f"stage2_over='released' but {STAGE1_FILENAME} was not found (drbn.released.search_folders); "
                    "put the authors' weights there or use stage2_over='trained'.")
            ident = {"released": str(path), "bytes": path.stat().st_size}
            if self._stage1 is None:
                self._stage1 = load_stage1(path).to(self.device)
            return self._stage1, ident
        if self.stage2_over != "trained":
            raise DRBNError(f"stage2_over must be 'trained' or 'released', got {self.stage2_over!r}.")
        ident = self.stage1_key(REFERENCE)
        if self._stage1 is None:
            row = self.stage1(REFERENCE)  # trains it if no finished run exists
            self._stage1 = load_stage1_any(self.out_dir / row["checkpoint"]).to(self.device)
        return self._stage1, ident

    def stage1_label(self) -> str:
        return "the released stage 1" if self.stage2_over == "released" else REFERENCE.name

    def stage2(self, v: Variant) -> dict:
        stage1, ident = self.shared_stage1()
        notes = [f"over {self.stage1_label()}"]
        if not v.recompose:
            key = {"kind": "stage-1 output", "stage1": ident, "eval_images": self.budget.eval_images}
            row = self.cached(v.name, key)
            if row is not None:
                self.log(f"  {v.name}: done before, reused")
                return row
            folder = self.out_dir / v.slug
            per_image = score_outputs(lambda y: enhance(stage1, y).output, self.test_pairs, folder / "images")
            return self.save({
                "variant": v.name, "group": "stage 2", "description": v.description, "key": _jsonable(key),
                **mean_scores(per_image), PARAMETERS: count_parameters(stage1), TRAIN_SECONDS: 0.0,
                INFERENCE_MS: self.time_model(stage1), "notes": "; ".join([*notes, "nothing trained"]),
                "settings": {}, "per_image": per_image, "images": _images(folder, self.test_pairs),
            })
        config = stage2_config(v, self.budget, self.data)
        key = {"kind": "stage 2", "config": asdict(config), "stage1": ident, "data": self.data_text,
               "eval_images": self.budget.eval_images}
        effective = replace(config, perceptual_weight=config.perceptual_weight if self.vgg else 0.0)
        if config.perceptual_weight > 0 and not self.vgg:
            notes.append("perceptual term off: no VGG16 weights found")
        training = json.dumps({"config": asdict(effective), "stage1": ident}, sort_keys=True, default=str)
        row = self.cached(v.name, key)
        if row is not None:
            self.log(f"  {v.name}: done before, reused")
            self.by_training.setdefault(training, row)
            return row
        shared = self.reuse(v.name, v.description, "stage 2", key, training, notes)
        if shared is not None:
            return shared
        folder = self.out_dir / v.slug
        self.log(f"  {v.name}: {v.description}; training {config.steps} steps over {self.stage1_label()}")
        result = train_or_reuse_stage2(config, stage1, folder, progress=self.progress, device=self.device)
        recomposer = result.model.eval()
        per_image = score_outputs(lambda y: enhance(stage1, y, recomposer).output, self.test_pairs,
                                 folder / "images")
        row = self.save({
            "variant": v.name, "group": "stage 2", "description": v.description, "key": _jsonable(key),
            **mean_scores(per_image), PARAMETERS: count_parameters(stage1) + count_parameters(recomposer),
            TRAIN_SECONDS: result.history["seconds"][-1] if result.history["seconds"] else 0.0,
            INFERENCE_MS: self.time_model(stage1, recomposer), "notes": "; ".join(notes),
            "settings": {"weight_mapping": v.weight_mapping, "adv_weight": v.adv_weight,
                         "perceptual_weight": effective.perceptual_weight},
            "per_image": per_image, "images": _images(folder, self.test_pairs),
            "checkpoint": str(result.checkpoint.relative_to(self.out_dir)),
            "history": short_history(result.history),
        })
        self.by_training[training] = row
        return row


def _images(folder: Path, pairs) -> dict[str, str]:
    return {p.name: str(Path(folder.name) / "images" / f"{p.name}.png") for p in pairs}


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _jsonable(value):
    """``value`` as it reads back from JSON (tuples become lists), so keys compare equal."""
    return json.loads(json.dumps(value, default=_json_default))


def run_experiments(
    variants: Sequence[Variant] = VARIANTS,
    budget: Budget | str = "cpu",
    data: str | os.PathLike = "auto",
    out_dir: str | os.PathLike = "runs/ablations",
    progress: bool = True,
    baselines: Sequence[Baseline] | None = None,
    stage2_over: str = "trained",
    figures: bool = False,
    device: str | torch.device = "auto",
) -> list[dict[str, Any]]:
    """Train and score ``variants`` (and ``baselines``) with one budget on one dataset.

    Baselines first, then stage-1 variants, then stage-2 variants, which all train over one
    shared frozen stage 1: the ``DRBN T=4`` variant (``stage2_over='trained'``, trained here
    if needed) or the authors' released weights (``stage2_over='released'``).
    ``baselines=None`` means ``drbn.baselines.default_baselines()``; pass ``[]`` for none.

    Returns one row per baseline and variant (the table's columns plus per-image scores,
    paths of the saved test outputs, settings and a thinned training history) and writes
    ``out_dir/results.{csv,md,json}``; ``figures=True`` also saves the metric chart and the
    comparison grid to ``out_dir/figures``. ``device``: where the networks train and are
    timed (see :func:`drbn.device.pick_device`); the baselines run on the CPU.
    """
    b = BUDGETS[budget] if isinstance(budget, str) and budget in BUDGETS else budget
    if not isinstance(b, Budget):
        raise DRBNError(f"unknown budget {budget!r}; pass a Budget or one of {', '.join(BUDGETS)}.")
    names = [v.name for v in variants]
    if len(set(map(slug, names))) != len(names):
        raise DRBNError(f"variant names must be unique (as folder names): {names}.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = _Run(b, data, out_dir, progress, stage2_over, pick_device(device))
    baselines = default_baselines() if baselines is None else list(baselines)
    started = time.perf_counter()
    run.log(f"{run.data_text}; {b.describe()}; results in {out_dir}")

    rows = [run.baseline(base) for base in baselines]
    ordered = [v for v in variants if v.stage == 1] + [v for v in variants if v.stage == 2]
    rows += [run.stage1(v) if v.stage == 1 else run.stage2(v) for v in ordered]
    seconds = time.perf_counter() - started
    header = results_header(run.data_text, b, run.stage1_label() if any(v.stage == 2 for v in variants) else None,
                            run.device)
    header.append(f"This call took {seconds:.0f} s; {run.reused} of {len(rows)} rows were finished "
                  "before and reused, not retrained.")
    write_results(rows, out_dir, header)
    run.log(f"done in {seconds:.0f} s: {out_dir / 'results.md'}")
    if figures:
        save_result_figures(rows, out_dir, data)
    return rows


def results_header(data_text: str, b: Budget, stage1_label: str | None, device: torch.device) -> list[str]:
    lines = [f"Data: {data_text}.", f"Budget: {b.describe()}."]
    if stage1_label:
        lines.append(f"Stage-2 variants train over {stage1_label} (frozen).")
    where = f"this machine's {'CPU' if device.type == 'cpu' else device}"
    lines.append("Scores: mean over the test images, outputs rounded to 8 bits (drbn.metrics); "
                 f"inference: median of one forward pass of a 1x3x400x600 input on {where}.")
    return lines


def format_value(column: str, value: Any) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "—"
    if column == metrics.SSIM:
        return f"{value:.4f}"
    if column in (metrics.PSNR, metrics.PSNR_RELEASED):
        return f"{value:.2f}"
    if column == PARAMETERS:
        return f"{int(value):,}"
    if column == TRAIN_SECONDS:
        return f"{value:.1f}"
    if column == INFERENCE_MS:
        return f"{value:.0f}"
    return str(value)


def markdown_table(rows: list[dict[str, Any]], header: Sequence[str] = ()) -> str:
    lines = [*header, ""] if header else []
    lines += ["| " + " | ".join(TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
    for row in rows:
        lines.append("| " + " | ".join(format_value(c, row.get(c, "")) for c in TABLE_COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def write_results(rows: list[dict[str, Any]], out_dir: Path, header: Sequence[str]) -> None:
    """``results.csv`` (table columns + group and description), ``results.md``, ``results.json``."""
    with open(out_dir / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*TABLE_COLUMNS, "group", "description"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    (out_dir / "results.md").write_text(markdown_table(rows, header))
    (out_dir / "results.json").write_text(json.dumps({"header": header, "rows": rows}, indent=1, default=_json_default))


def read_results(out_dir: str | os.PathLike) -> tuple[list[str], list[dict[str, Any]]]:
    """(header lines, rows) of a finished ``run_experiments`` in ``out_dir``."""
    path = Path(out_dir) / "results.json"
    if not path.exists():
        raise DRBNError(f"no results in {out_dir} (missing {path.name}); run drbn.experiments.run_experiments first.")
    payload = json.loads(path.read_text())
    return payload["header"], payload["rows"]


def comparison_columns(rows: list[dict[str, Any]], out_dir: str | os.PathLike, data: str | os.PathLike = "auto"):
    """The saved test outputs of every row, with the low input and ground truth:
    ``(image names, {column label: [H x W x 3 uint8 per image]})`` for a comparison grid."""
    from .images import read_image

    names = list(rows[0]["images"]) if rows else []
    pairs = {p.name: p for p in datasets.load_pairs(data, "test") if p.name in names}
    columns = {"low-light input": [pairs[n].low for n in names]}
    for row in rows:
        columns[row["variant"]] = [read_image(Path(out_dir) / row["images"][n]) for n in names]
    columns["ground truth"] = [pairs[n].high for n in names]
    return names, columns


def save_result_figures(rows, out_dir: Path, data) -> list[Path]:
    """The metric chart and the comparison grid, saved to ``out_dir/figures``."""
    from . import viz

    names, columns = comparison_columns(rows, out_dir, data)
    return [viz.save_figure(viz.plot_metrics(rows), out_dir, "ablation_metrics"),
            viz.save_figure(viz.plot_comparison(columns, names), out_dir, "ablation_comparison")]


# ----------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drbn.experiments", description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="cpu", choices=list(BUDGETS))
    parser.add_argument("--data", default="auto", help="'auto' (synthetic pairs) or a LOL folder")
    parser.add_argument("--out", default="runs/ablations")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these variants (by name)")
    parser.add_argument("--stage2-over", default="trained", choices=("trained", "released"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    args = parser.parse_args(argv)
    try:
        chosen = [variant(n) for n in args.only] if args.only else VARIANTS
        run_experiments(chosen, budget(args.budget, seed=args.seed), args.data, args.out,
                        stage2_over=args.stage2_over, figures=True, device=args.device)
    except DRBNError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
