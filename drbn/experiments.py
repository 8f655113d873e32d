"""Ablations and the results table: variants trained with one preset and several seeds,
scored on one test split beside the baselines; introduced in notebooks/04_ablations.

A :class:`Variant` is a set of knobs of ``DRBNConfig``, the loss weights and ``Stage2Config``,
not a copy of any code. :func:`run_experiments` works through a grid of runs: each baseline
once, each variant once per seed. A run's folder ``OUT/runs/<kind>-<hash>`` is named by its
training configuration, so variants that train alike (RBL-v2 and DRBN T=1) share one run. A
run is done when its folder holds a finished ``result.json`` with the same key
(:meth:`Grid.done` decides, nowhere else); an unfinished one continues from its checkpoint.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from . import data as datasets
from .baselines import Baseline, default_baselines
from .device import pick_device
from .enhance import enhance
from .errors import DRBNError
from .evaluate import score_outputs
from .images import list_images, read_image
from .losses import find_vgg16_weights
from .metrics import KEYS, average
from .model import DRBN, DRBNConfig, count_parameters
from .recompose import RecomposerConfig
from .results import Result, jsonable, read_results, short_history, table_row, write_table  # noqa: F401 (read_results)
from .train import (Stage1Config, Stage2Config, negated_channels, stage1_preset, stage2_preset, train_stage1,
                    train_stage2)
from .weights import STAGE1_FILENAME, find_released, load_stage1, read_weights_file

TIMING_SIZE = (400, 600)  # H x W of the timed image: a LOL photo
# A stage-1 run is checked for negated channels at this step: by then the sign of every
# channel's correlation with its target is settled (seen on the synthetic set from step 10 on).
NEGATION_CHECK_STEPS = 50


def negation_check_step(config: Stage1Config) -> int:
    """The step at which a stage-1 run is checked for negated channels: NEGATION_CHECK_STEPS
    from PyTorch's default start; from a zero start (``head_init="zero"``) 30% of the run,
    as the output's correlation is still noise while the luminance term lifts it (in a trial
    of RBL-v3 at the ladder-1x budget: flagged at step 50 in 2 of 3 seeds, none at step 150)."""
    if config.head_init == "zero":
        return min(config.steps, max(NEGATION_CHECK_STEPS, 3 * config.steps // 10))
    return min(config.steps, NEGATION_CHECK_STEPS)

SEED_STRIDE = 1000  # restart k of a run with seed s uses seed s + k * SEED_STRIDE
PAPER_ROW = {"variant": "DRBN, as reported in the paper", "group": "cited", "psnr": 20.13, "ssim": 0.830,
             "notes": "cited from Yang et al., CVPR 2020: measured on LOL-v2-real's 100 test images (690-789), "
                      "not on this test split"}


# ----------------------------------------------------------------------------- variants
@dataclass
class Variant:
    """One configuration to train and score. Stage 1: a network trained from scratch with
    ``model`` and ``loss_weights`` (full, half, quarter; ``(1, 0, 0)`` is single-scale).
    Stage 2: a recomposer over the frozen stage 1 with ``weight_mapping``, ``adv_weight``
    (λ_adv), ``perceptual_weight`` and ``critic`` ("joint" as released, "pretrained" as in the
    paper: ``Stage2Config.critic``); ``recompose=False`` scores the stage-1 output itself."""

    name: str
    stage: int
    description: str
    model: DRBNConfig = field(default_factory=DRBNConfig)
    loss_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    recompose: bool = True
    weight_mapping: str = "released"
    adv_weight: float = 2.0
    perceptual_weight: float = 1.0
    critic: str = "joint"

    def __post_init__(self):
        if self.stage not in (1, 2):
            raise DRBNError(f"variant {self.name!r}: stage must be 1 or 2, got {self.stage!r}.")


def drbn_variant(t: int) -> Variant:
    return Variant(f"DRBN T={t}", 1, f"the full stage 1 with {t} recursion{'s' * (t > 1)} (feature bypass, "
                   "recursive input, multi-scale loss)", DRBNConfig(recursions=t))


REFERENCE = drbn_variant(4)  # the released stage 1 (557,668 parameters); stage 2 trains over it
STAGE1_VARIANTS = [
    Variant("RBL-v1", 1, "one recursion, single-scale loss: SSIM on the full-resolution output only",
            DRBNConfig(recursions=1), (1.0, 0.0, 0.0)),
    Variant("RBL-v2", 1, "one recursion, multi-scale loss on the full, half and quarter outputs",
            DRBNConfig(recursions=1)),
    Variant("RBL-v3", 1, "four recursions without the feature bypass and without the recursive input: each "
            "recursion sees only the previous estimate, neither y nor the previous recursion's features",
            DRBNConfig(recursions=4, feature_residuals=False, recursive_input=False)),
    drbn_variant(1), drbn_variant(2), drbn_variant(3), REFERENCE,  # T=1 trains as RBL-v2: one run
]
STAGE2_VARIANTS = [
    Variant("stage-1 output", 2, "no recomposition: the DRBN T=4 stage 1's output", recompose=False),
    Variant("recomposed", 2, "band recomposition as released: w = 0.8 z + 0.6, λ_adv = 2, perceptual + SSIM + "
            "adversarial losses"),
    Variant("recomposed, bounded w", 2, "as 'recomposed' with w = 0.6 + 0.8 sigmoid(z), in [0.6, 1.4]",
            weight_mapping="bounded"),
    Variant("recomposed, λ_adv=0", 2, "as 'recomposed' without the adversarial (quality) term", adv_weight=0.0),
    Variant("recomposed, λ_adv=1", 2, "as 'recomposed' with λ_adv = 1 (the other-datasets setting)", adv_weight=1.0),
    Variant("recomposed, no perceptual", 2, "as 'recomposed' without the VGG16 perceptual term",
            perceptual_weight=0.0),
]
VARIANTS = STAGE1_VARIANTS + STAGE2_VARIANTS
# The paper's quality critic (Sec. 3.2): not in the ablation grid by default (results/plane.md measures it);
# `ablate --only "recomposed, pre-trained critic"` or run_experiments([...]) runs it.
PRETRAINED_CRITIC = Variant(
    "recomposed, pre-trained critic", 2, "as 'recomposed' with the paper's critic: D pre-trained to tell the "
    "high-quality photos from dark, noisy and badly exposed versions of them, then frozen; quality term "
    "λ_adv · (−log D)", critic="pretrained")
EXTRA_VARIANTS = [PRETRAINED_CRITIC]


def variant(name: str) -> Variant:
    """A variant of VARIANTS (or EXTRA_VARIANTS) by name."""
    for v in VARIANTS + EXTRA_VARIANTS:
        if v.name == name:
            return v
    raise DRBNError(f"unknown variant {name!r}; choose one of {', '.join(v.name for v in VARIANTS + EXTRA_VARIANTS)}.")


def build(v: Variant) -> DRBN:
    """The untrained stage-1 network of a stage-1 variant."""
    return DRBN(v.model)


# ----------------------------------------------------------------------------- presets
@dataclass
class Preset:
    """An ablation preset: drbn.train's stage-1 and stage-2 presets named ``base`` with the
    fields of ``stage1`` / ``stage2`` replaced and both learning rates times ``lr_scale``.
    ``eval_images``: test images scored (None = all); ``timing_runs``: timed enhancements
    of a 600x400 image per run (0 = none); ``restarts``: at most this many restarts of a
    stage-1 run negated at step :func:`negation_check_step` (:func:`drbn.train.negated_channels`)."""

    base: str
    stage1: dict = field(default_factory=dict)
    stage2: dict = field(default_factory=dict)
    lr_scale: float = 1.0
    eval_images: int | None = None
    timing_runs: int = 3
    restarts: int = 3

    def describe(self) -> str:
        s1, s2 = stage1_preset(self.base, **self.stage1), stage2_preset(self.base, **self.stage2)
        schedule = (f"{s1.lr * self.lr_scale:g}, " + ("halved after 2/3" if s1.schedule == "halve" else "cosine")
                    + (f" after a {s1.warmup:.0%} warm-up" if s1.warmup else "") + (", bf16 autocast" if s1.precision == "bf16" else "")
                    + (", band heads started at 0" if s1.head_init == "zero" else ""))
        return (f"drbn.train's {self.base!r} presets with stage 1: {s1.steps} steps, {s1.crop}x{s1.crop} crops, batch "
                f"{s1.batch_size}, learning rate {schedule}; stage 2: {s2.steps} steps, {s2.crop}x{s2.crop}, batch {s2.batch_size}; learning "
                f"rates x{self.lr_scale:g}; a stage-1 run negated at step {negation_check_step(s1)} "
                f"restarts with seed + {SEED_STRIDE} (at most {self.restarts}x)")


ABLATION_PRESETS = {
    # the released protocol (a GPU): 259 k stage-1 steps at 256x256, 13.8 k stage-2 steps at 128x128
    "paper": Preset("paper", {"max_eval_images": 1}, {"max_eval_images": 1}, timing_runs=10),
    # about 17 minutes for every variant and baseline on 2 CPU cores, one seed (results/README.md): far from converged
    # (its schedule is pinned: a change to the `cpu` preset's recipe leaves this table as it was)
    "cpu-ablation": Preset("cpu", dict(steps=500, crop=64, eval_every=500, checkpoint_every=500, max_eval_images=1,
                                       lr=1e-4, schedule="halve", warmup=0.0),
                           dict(steps=150, crop=64, eval_every=150, checkpoint_every=150, max_eval_images=1),
                           lr_scale=5.0),
    # The budget ladder (results/ladder/): the stage-1 variants at 1x, 4x and 16x the cpu-ablation
    # budget, with the `cpu` recipe's schedule (cosine from 3e-4 after a 5% warm-up), bf16 autocast on
    # the forward pass and the band heads started at 0 (with PyTorch's default start, runs of every
    # precision and schedule fell into the negated optimum: results/ladder/negation/).
    **{f"ladder-{k}x": Preset("cpu", dict(steps=500 * k, crop=64, eval_every=500 * k, checkpoint_every=500,
                                          max_eval_images=1, precision="bf16", head_init="zero"),
                              dict(steps=150 * k, crop=64, eval_every=150 * k, checkpoint_every=150,
                                   max_eval_images=1)) for k in (1, 4, 16)},
    # seconds: exercises every code path, learns nothing
    # (a 2-step run always looks negated: one restart exercises that path, more only cost time)
    "smoke-ablation": Preset("smoke", dict(steps=2, eval_every=2, checkpoint_every=2),
                             dict(steps=2, eval_every=2, checkpoint_every=2), eval_images=1, timing_runs=1,
                             restarts=1),
}


def ablation_preset(name: str | Preset, **overrides: Any) -> Preset:
    """An ablation preset by name with some fields replaced, e.g. ``ablation_preset('cpu-ablation', restarts=0)``."""
    if not isinstance(name, Preset) and name not in ABLATION_PRESETS:
        raise DRBNError(f"unknown ablation preset {name!r}; choose one of {', '.join(ABLATION_PRESETS)}.")
    return replace(name if isinstance(name, Preset) else ABLATION_PRESETS[name], **overrides)


def stage1_config(v: Variant, preset: str | Preset, data: str | os.PathLike = "auto", seed: int = 0) -> Stage1Config:
    p = ablation_preset(preset)
    base = stage1_preset(p.base, **p.stage1)
    return replace(base, lr=base.lr * p.lr_scale, seed=seed, data=str(data), loss_weights=tuple(v.loss_weights),
                   model=v.model)


def stage2_config(v: Variant, preset: str | Preset, data: str | os.PathLike = "auto", seed: int = 0) -> Stage2Config:
    p = ablation_preset(preset)
    base = stage2_preset(p.base, **p.stage2)
    return replace(base, lr=base.lr * p.lr_scale, lr_discriminator=base.lr_discriminator * p.lr_scale, seed=seed,
                   data=str(data), adv_weight=v.adv_weight, perceptual_weight=v.perceptual_weight,
                   critic=v.critic, recomposer=RecomposerConfig(weight_mapping=v.weight_mapping))


def ms_per_image(apply: Callable[[np.ndarray], Any], runs: int) -> float | None:
    """Milliseconds ``apply`` takes to enhance one 600x400 image: the mean of ``runs`` calls
    after warm-up (``torch.utils.benchmark.Timer``, which also waits for a GPU)."""
    # imported here: torch.utils.benchmark pulls in cpp_extension, which logs a CUDA warning
    # on CPU-only machines into every command's stderr
    from torch.utils import benchmark

    image = np.random.default_rng(0).random((*TIMING_SIZE, 3), dtype=np.float32)
    timer = benchmark.Timer("apply(image)", globals={"apply": apply, "image": image},
                            num_threads=torch.get_num_threads())
    return 1000 * timer.timeit(runs).mean if runs > 0 else None


def checkpoint_step(path: Path, config: Any) -> int:
    """The step a checkpoint of exactly this training configuration has reached (0: none)."""
    payload = read_weights_file(path) if path.exists() else {}
    return payload["step"] if jsonable(payload.get("requested_config")) == jsonable(asdict(config)) else 0


# ----------------------------------------------------------------------------- the grid
@dataclass
class Unit:
    """One run of the grid. ``key`` (the training, and how it is scored) is what a finished
    record must match; ``group``: units that must run in one process (a stage 2 with its stage 1)."""

    label: str
    key: dict
    folder: Path
    make: Callable[[Unit, Result], None]  # trains and scores into the record
    group: str


class Grid:
    """The runs of one ``run_experiments`` call, and how each is made, shared and tabulated."""

    def __init__(self, variants, preset: Preset, data, out_dir, seeds, stage2_over, device, progress, baselines):
        if stage2_over not in ("trained", "released"):
            raise DRBNError(f"stage2_over must be 'trained' or 'released', got {stage2_over!r}.")
        self.preset, self.data, self.out_dir, self.stage2_over = preset, data, Path(out_dir), stage2_over
        self.device, self.progress, self.vgg = device, progress, find_vgg16_weights() is not None
        self.data_text = datasets.describe(data)
        self.test_pairs = datasets.load_pairs(data, "test")[: preset.eval_images]
        self.scoring = {"data": self.data_text, "test images": [p.name for p in self.test_pairs],
                        "timing_runs": preset.timing_runs}
        self._train_pairs, self._stage1 = None, {}
        self.units: dict[Path, Unit] = {}  # by folder: equal trainings are one unit
        self.rows = [(b, [] if b.missing() else [self.add(self.baseline(b))]) for b in baselines]
        self.reference = {s: self.stage1(REFERENCE, s) for s in seeds}  # what stage 2 trains over
        for v in sorted(variants, key=lambda v: v.stage):
            self.rows.append((v, list(dict.fromkeys(self.add((self.stage1 if v.stage == 1 else self.stage2)(v, s))
                                                    for s in seeds))))

    def add(self, unit: Unit) -> Path:
        return self.units.setdefault(unit.folder, unit).folder

    def unit(self, label: str, kind: str, training: dict, make, group: str = "") -> Unit:
        digest = hashlib.sha256(json.dumps(jsonable(training), sort_keys=True).encode()).hexdigest()[:12]
        folder = self.out_dir / "runs" / f"{kind}-{digest}"
        key = jsonable({"training": training, "scoring": self.scoring})
        return Unit(label, key, folder, make, group or folder.name)

    @property
    def train_pairs(self):
        if self._train_pairs is None:
            self._train_pairs = datasets.load_pairs(self.data, "train")
        return self._train_pairs

    def done(self, unit: Unit) -> Result | None:
        """The finished record of ``unit``, or None: the one place that decides "already done"."""
        path = unit.folder / "result.json"
        record = Result.load(path) if path.exists() else None
        if record is None or not record.finished or record.key != unit.key:
            return None
        return None if record.checkpoint and not (self.out_dir / record.checkpoint).exists() else record

    def make(self, unit: Unit) -> Result:
        path = unit.folder / "result.json"
        earlier = Result.load(path) if path.exists() else None
        same = earlier is not None and earlier.key["training"] == unit.key["training"]  # restarts are training facts
        record = Result(unit.key, restarts=earlier.restarts, seed=earlier.seed) if same else Result(unit.key)
        print(f"  {unit.label}: {'continuing' if same else 'starting'} in {unit.folder.name}", flush=True)
        unit.make(unit, record)
        record.finished = True
        record.save(path)
        return record

    def score(self, unit: Unit, record: Result, apply: Callable[[np.ndarray], np.ndarray]) -> None:
        record.per_image = score_outputs(apply, self.test_pairs, unit.folder / "images")
        record.scores = average([{k: r[k] for k in KEYS} for r in record.per_image])
        record.images = {p.name: f"runs/{unit.folder.name}/images/{p.name}.png" for p in self.test_pairs}
        record.inference_ms = ms_per_image(apply, self.preset.timing_runs)

    def baseline(self, b: Baseline) -> Unit:
        def make(unit, record):
            pairs, started = self.train_pairs, time.perf_counter()
            b.fit(pairs)  # the training split only (gamma)
            record.train_seconds = time.perf_counter() - started
            self.score(unit, record, b.to(self.device))
            record.parameters, record.settings = b.parameters(), b.settings()
        return self.unit(b.name, "baseline", {"baseline": b.name, "description": b.description,
                                              "train data": str(self.data)}, make)

    def stage1(self, v: Variant, seed: int) -> Unit:
        config = stage1_config(v, self.preset, self.data, seed)

        def make(unit, record):
            """Train (or continue), restarting with seed + k * SEED_STRIDE while the run falls
            into the negated-image optimum of -SSIM; the record lists every restart."""
            check_at, checkpoint = negation_check_step(config), unit.folder / "stage1.pt"
            run = replace(config, seed=config.seed if record.seed is None else record.seed)
            while checkpoint_step(checkpoint, run) < check_at:
                early = train_stage1(run, unit.folder, resume=checkpoint if checkpoint_step(checkpoint, run) else None,
                                     progress=self.progress, stop_at=check_at, device=self.device)
                negated = negated_channels(early.model, self.train_pairs[0])
                if not negated or len(record.restarts) >= self.preset.restarts:
                    break
                record.restarts.append(f"seed {run.seed}: {', '.join(negated)} negated at step {check_at}, restarted")
                run = replace(config, seed=config.seed + len(record.restarts) * SEED_STRIDE)
                record.seed = run.seed
                record.save(unit.folder / "result.json")  # unfinished: says which seed to continue
                print(f"    {record.restarts[-1]} with seed {run.seed}", flush=True)
            result = train_stage1(run, unit.folder, resume=checkpoint, progress=self.progress, device=self.device)
            model = result.model.eval()
            self.score(unit, record, lambda image: enhance(model, image).output)
            record.seed, record.negated = run.seed, negated_channels(model, self.train_pairs[0])
            record.notes = record.restarts + ([f"{', '.join(record.negated)} still negated"] if record.negated else [])
            self.trained(record, result, count_parameters(model), {"model": asdict(v.model),
                                                                   "loss_weights": list(v.loss_weights)})
        return self.unit(f"{v.name}, seed {seed}", "stage1", {"stage1": asdict(config),
                                                              "restarts": self.preset.restarts}, make)

    def trained(self, record: Result, result, parameters: int, settings: dict) -> None:
        record.parameters, record.train_seconds = parameters, result.history["seconds"][-1]
        record.checkpoint = str(result.checkpoint.relative_to(self.out_dir))
        record.history, record.settings = short_history(result.history), settings

    def frozen_stage1(self, seed: int) -> tuple[Callable[[], DRBN], dict, str]:
        """How to load the stage 1 a stage-2 run of ``seed`` trains over, what identifies it, its group."""
        if self.stage2_over == "released":
            path = find_released(STAGE1_FILENAME)
            if path is None:
                raise DRBNError(f"stage2_over='released' but {STAGE1_FILENAME} was not found: run `python -m drbn "
                                "fetch-weights`, put it in data/released/ or set DRBN_RELEASED_DIR.")
            return lambda: self.load(path), {"released": STAGE1_FILENAME, "bytes": path.stat().st_size}, ""
        ref = self.units[self.add(self.reference[seed])]
        return (lambda: self.load(self.out_dir / (self.done(ref) or self.make(ref)).checkpoint),
                {"stage1 run": ref.folder.name}, ref.group)

    def load(self, path: Path) -> DRBN:
        if path not in self._stage1:
            self._stage1[path] = load_stage1(path).to(self.device).eval()
        return self._stage1[path]

    def stage2(self, v: Variant, seed: int) -> Unit:
        stage1, over, group = self.frozen_stage1(seed)
        config = stage2_config(v, self.preset, self.data, seed) if v.recompose else None
        notes = []
        if config and config.perceptual_weight > 0 and not self.vgg:  # then equal to "no perceptual": one run
            config, notes = replace(config, perceptual_weight=0.0), ["perceptual term off: no VGG16 weights found"]

        def make(unit, record):
            record.seed = seed  # the seed of the stage 1 it is over (and of its own training)
            if config is None:
                self.score(unit, record, lambda image: enhance(stage1(), image).output)
                record.parameters, record.train_seconds = count_parameters(stage1()), 0.0
                record.notes = ["nothing trained"]
                return
            checkpoint = unit.folder / "stage2.pt"
            result = train_stage2(config, stage1(), unit.folder, progress=self.progress, device=self.device,
                                  resume=checkpoint if checkpoint_step(checkpoint, config) else None)
            recomposer = result.model.eval()
            self.score(unit, record, lambda image: enhance(stage1(), image, recomposer).output)
            record.notes = notes
            self.trained(record, result, count_parameters(stage1()) + count_parameters(recomposer), {
                "weight_mapping": v.weight_mapping, "adv_weight": v.adv_weight,
                "perceptual_weight": config.perceptual_weight, "critic": v.critic})
        training = {"stage2": config and asdict(config), "over": over}
        return self.unit(f"{v.name}, seed {seed}", "stage2" if config else "stage1-output", training, make, group)

    def share(self, shard: tuple[int, int] | None) -> list[Unit]:
        """The units of part K of N (1-based): whole groups, dealt out in turn in grid order."""
        units = list(self.units.values())
        if shard is None:
            return units
        k, n = shard
        if not 1 <= k <= n:
            raise DRBNError(f"shard must be K/N with 1 <= K <= N, got {k}/{n}; e.g. --shard 1/2 and --shard 2/2.")
        groups = list(dict.fromkeys(u.group for u in units))
        return [u for u in units if groups.index(u.group) % n == k - 1]

    def table(self) -> tuple[list[dict[str, Any]], list[str]]:
        """One row per baseline and variant (mean ± std over its seeds), the cited paper row,
        and the labels of the units not done yet."""
        done = {folder: self.done(unit) for folder, unit in self.units.items()}
        rows, first = [], {}
        for item, folders in self.rows:
            stage = getattr(item, "stage", None)
            row = table_row(item.name, f"stage {stage}" if stage else "baseline", item.description,
                            [done[f] for f in folders if done[f]], len(folders), None if stage else item.missing())
            row.update(runs=[f.name for f in folders], **({} if stage else {"seeds": None}))
            if first.setdefault(tuple(folders), item.name) != item.name and folders:
                row["same_as"] = first[tuple(folders)]
            rows.append(row)
        return rows + [dict(PAPER_ROW)], [u.label for f, u in self.units.items() if done[f] is None]


def run_experiments(variants: Sequence[Variant] = VARIANTS, preset: str | Preset = "cpu-ablation",
                    data: str | os.PathLike = "auto", out_dir: str | os.PathLike = "runs/ablations",
                    seeds: Sequence[int] = (0,), shard: tuple[int, int] | None = None, merge: bool = False,
                    stage2_over: str = "trained", device: str | torch.device = "auto", figures: bool = False,
                    progress: bool = True, baselines: Sequence[Baseline] | None = None,
                    high_quality: str | os.PathLike = "auto", unpaired: str | os.PathLike = "auto") -> list[dict[str, Any]]:
    """Train and score every variant with every seed beside ``baselines`` (None: all of
    ``drbn.baselines.default_baselines()``, ``[]``: none) on the test split of ``data``.

    Stage-2 variants train over the DRBN T=4 stage 1 of the same seed (``stage2_over=
    'trained'``, trained here if needed) or the authors' released stage 1 (``'released'``),
    with the quality discriminator's photos from ``high_quality`` and the unpaired low-light
    photos from ``unpaired`` (folders, or "auto" as in ``Stage2Config``).
    ``shard=(K, N)`` makes only part K of N of the runs, so processes or machines can fill one
    ``out_dir``; ``merge=True`` trains nothing. Once every run is done, or with ``merge``
    (then naming what is missing), writes ``out_dir/results.{csv,md,json}`` (``figures``:
    also ``out_dir/figures``) and returns the table's rows; else returns [].
    """
    p = ablation_preset(preset)
    name = preset if isinstance(preset, str) else "custom"
    for flag, folder, words in (("high-quality", high_quality, ("auto",)), ("unpaired", unpaired, ("auto", "test"))):
        if str(folder) not in words:  # a missing or empty folder is said before hours of stage-1 runs
            list_images(folder, f"{flag} photo folder", recursive=True)
    if (str(high_quality), str(unpaired)) != ("auto", "auto"):
        p = replace(p, stage2={**p.stage2, "high_quality": str(high_quality), "unpaired": str(unpaired)})
    if len({v.name for v in variants}) != len(variants) or not seeds or len(set(seeds)) != len(seeds):
        raise DRBNError(f"variant names and seeds must be unique (and one seed at least): {list(seeds)}.")
    device = pick_device(device)
    baselines = default_baselines() if baselines is None else baselines
    grid = Grid(variants, p, data, out_dir, list(seeds), stage2_over, device, progress, baselines)
    mine = [] if merge else grid.share(shard)
    print(f"{grid.data_text}; {p.describe()}; seeds {list(seeds)}; {len(mine)} of {len(grid.units)} runs here, "
          f"in {grid.out_dir}", flush=True)
    for unit in mine:
        if grid.done(unit) is None:
            grid.make(unit)
    rows, missing = grid.table()
    if missing and not merge:
        print(f"this part is done; elsewhere not yet: {', '.join(missing)} (merge=True tabulates what is there)")
        return []
    over = "the released stage 1" if stage2_over == "released" else "DRBN T=4 of the same seed"
    stage2 = stage2_preset(p.base, **p.stage2)
    header = [f"Data: {grid.data_text}; {len(grid.test_pairs)} test images.",
              f"Preset: {name}: {p.describe()}.",
              f"Stage 2's photos: high-quality {stage2.high_quality}, unpaired low-light {stage2.unpaired}.",
              f"Seeds: {', '.join(map(str, seeds))}; a score over several seeds is mean ± sample std. Stage-2 "
              f"variants train over {over} (frozen).", "Scores: mean over the test images of 8-bit outputs "
              f"(drbn.metrics); time: mean of {p.timing_runs} enhancements of a 600x400 image on {device}."]
    header += [f"Missing (not run yet): {', '.join(missing)}."] if missing else []
    write_table(grid.out_dir, rows, header, data=grid.data_text, preset=p.describe(), seeds=list(seeds),
                missing=missing)
    if figures:
        save_result_figures(rows, grid.out_dir, data)
    return rows


# ----------------------------------------------------------------------------- reading back
def comparison_columns(rows: list[dict[str, Any]], out_dir: str | os.PathLike, data: str | os.PathLike = "auto"):
    """The saved test outputs of every measured row with the input and the ground truth:
    ``(image names, {column label: [H x W x 3 image per test image]})`` for a comparison grid."""
    rows = [r for r in rows if r.get("images")]
    names = list(rows[0]["images"]) if rows else []
    pairs = {p.name: p for p in datasets.load_pairs(data, "test") if p.name in names}
    return names, {"low-light input": [pairs[n].low for n in names],
                   **{r["variant"]: [read_image(Path(out_dir) / r["images"][n]) for n in names] for r in rows},
                   "ground truth": [pairs[n].high for n in names]}


def save_result_figures(rows, out_dir: Path, data) -> list[Path]:
    """The metric chart and the comparison grid, saved to ``out_dir/figures``."""
    from . import viz  # matplotlib only when figures are asked for (viz never imports this module)

    names, columns = comparison_columns(rows, out_dir, data)
    return [viz.save_figure(viz.plot_metrics([r for r in rows if r.get("images")]), out_dir, "ablation_metrics"),
            viz.save_figure(viz.plot_comparison(columns, names), out_dir, "ablation_comparison")]


if __name__ == "__main__":  # python -m drbn.experiments: an alias of python -m drbn ablate
    import sys

    from .cli import main

    sys.exit(main(["ablate", *sys.argv[1:]]))
