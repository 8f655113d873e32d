"""Training presets and loops for both stages; introduced in notebooks/02 (stage 1) and 03 (stage 2).

One preset table per stage (``STAGE1_PRESETS``, ``STAGE2_PRESETS``: ``smoke``, ``cpu``,
``paper``); other budgets (the ablation runner's) are derived from these by name.

Every random draw of step k comes from generators seeded with (seed, k), so a run that is
stopped and resumed from a checkpoint takes exactly the same steps as one that is not.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from . import data as datasets
from . import distributed
from .weights import (
    STAGE1, STAGE2, check_kind, load_state_strict, read_weights_file, save_checkpoint,
)
from .device import pick_device
from .discriminator import QualityDiscriminator
from .errors import DRBNError
from .enhance import enhance
from .evaluate import evaluate, mean_row
from .images import Pair
from .losses import (
    FAKE_TARGETS, REAL_TARGETS, BandLoss, VGGPerceptualLoss, find_vgg16_weights, lsgan_loss,
    ssim, uniform_targets,
)
from .model import DRBN, DRBNConfig, zero_band_heads
from .recompose import Recomposer, RecomposerConfig, decompose
from .runs import check_settings, continued_config

# A loss above this (or NaN/inf) means the run has diverged: -SSIM losses live in [-3, 3].
DIVERGED = 1e4


# ----------------------------------------------------------------------------- stage 1
@dataclass
class Stage1Config:
    """Stage-1 training. ``paper`` is the released schedule; see STAGE1_PRESETS."""

    steps: int = 259_000
    batch_size: int = 4
    crop: int = 256
    lr: float = 1e-4
    lr_halve_at: float = 2 / 3  # fraction of ``steps`` after which lr is halved ("halve" only)
    schedule: str = "halve"  # "halve" (released) or "cosine" (decays to 0 over the run)
    warmup: float = 0.0  # fraction of ``steps`` with the lr rising linearly from 0
    loss_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)  # full, half, quarter
    seed: int = 0
    data: str = "auto"  # "auto", "synthetic" or a LOL folder (drbn.data.resolve)
    eval_every: int = 5_000
    checkpoint_every: int = 5_000
    max_eval_images: int = 15
    holdout_every: int = 10  # every 10th training pair validates instead of training; never the test split
    channels_last: bool = True  # fastest convolution layout on CPU
    precision: str = "fp32"  # "bf16": the forward pass under bf16 autocast (loss, weights, Adam stay fp32)
    head_init: str = "default"  # "zero": the output x̂^T starts at 0 (drbn.model.zero_band_heads), against negation
    model: DRBNConfig = field(default_factory=DRBNConfig)


STAGE1_PRESETS = {
    "paper": Stage1Config(),
    # chosen on the held-out training pairs among cosine schedules (benchmarks of the recipe: README)
    "cpu": Stage1Config(steps=1200, batch_size=4, crop=128, lr=3e-4, schedule="cosine", warmup=0.05,
                        eval_every=200, checkpoint_every=200),
    "smoke": Stage1Config(steps=6, batch_size=2, crop=32, eval_every=3, checkpoint_every=3,
                          max_eval_images=1),
}


def stage1_preset(name: str, **overrides: Any) -> Stage1Config:
    """A preset by name with some fields replaced, e.g. ``stage1_preset('cpu', steps=50)``."""
    if name not in STAGE1_PRESETS:
        raise DRBNError(f"unknown preset {name!r}; choose one of {', '.join(STAGE1_PRESETS)}.")
    return replace(STAGE1_PRESETS[name], **overrides)


def learning_rate(step: int, base: float, steps: int, halve_at: float,
                  schedule: str = "halve", warmup: float = 0.0) -> float:
    """The lr of ``step``: "halve" is the released schedule (constant, halved once after
    ``halve_at`` of the run); "cosine" decays from ``base`` to 0 over the run. Either starts
    with a linear warm-up over the first ``warmup`` fraction of the steps."""
    if schedule not in SCHEDULES:
        raise DRBNError(f"unknown learning-rate schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}.")
    ramp = int(warmup * steps)
    if step < ramp:
        return base * (step + 1) / ramp
    if schedule == "halve":
        return base * (0.5 if step >= int(halve_at * steps) else 1.0)
    return base * 0.5 * (1 + math.cos(math.pi * (step - ramp) / max(1, steps - ramp)))


SCHEDULES = ("halve", "cosine")
PRECISIONS = ("fp32", "bf16")
HEAD_INITS = ("default", "zero")  # PyTorch's initialisation as released, or zero_band_heads


def forward_in(precision: str, net: torch.nn.Module, low: torch.Tensor):
    """The network's bands for ``low``, computed in ``precision`` and returned in float32.

    bf16 autocast runs the convolutions in bfloat16 (0.64x the fp32 step time on a CPU with
    AVX-512 BF16, benchmarks/README.md); the SSIM loss then sees float32 bands, since its
    variance terms (E[x²] − E[x]²) lose every digit in bfloat16's 8-bit mantissa.
    """
    with torch.autocast(low.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        bands = net(low)
    return type(bands)(*(band.float() for band in bands))


def step_rng(seed: int, step: int, stream: int = 0) -> np.random.Generator:
    """The random source of one training step; resuming at step k reproduces it exactly."""
    return np.random.default_rng([seed, step, stream])


def new_history() -> dict[str, list]:
    return {"step": [], "loss": [], "lr": [], "eval_step": [], "psnr": [], "ssim": [], "seconds": []}


def check_finite(loss: float, step: int, last_checkpoint: Path | None) -> None:
    if math.isfinite(loss) and abs(loss) < DIVERGED:
        return
    kept = f"the last good checkpoint is {last_checkpoint}" if last_checkpoint else "no checkpoint was written yet"
    raise DRBNError(
        f"training diverged at step {step} (loss {loss}); {kept}. Lower the learning rate "
        "or start again with another seed (--overwrite keeps the old checkpoint aside)."
    )


def config_from_dict(cls, values: dict[str, Any]):
    """Rebuild a nested config dataclass from ``asdict`` output (tuples come back as lists)."""
    values = dict(values)
    values.pop("notes", None)  # earlier stage-2 checkpoints kept the run's notes in the config
    if cls is Stage1Config:
        values["model"] = DRBNConfig(**values["model"])
        values["loss_weights"] = tuple(values["loss_weights"])
    if cls is Stage2Config:
        values["recomposer"] = RecomposerConfig(**values["recomposer"])
    return cls(**values)


def validate(model: DRBN, pairs, recomposer: Recomposer | None = None) -> tuple[float, float]:
    """Mean full-image PSNR and SSIM on held-out pairs (model left in its previous mode)."""
    was_training = model.training
    model.eval()
    row = mean_row(evaluate(model, pairs, recomposer))
    model.train(was_training)
    return float(row["psnr"]), float(row["ssim"])


def negated_channels(model: DRBN, pair: Pair) -> str:
    """The RGB channels ("R", "G", "B") of the model's output that are anti-correlated with
    the target on ``pair``; "" when none is.

    SSIM's luminance and contrast-structure terms both change sign with the output's sign, so
    along the line of outputs t·x the -SSIM loss has, besides t = 1, a second local optimum
    at a negative t. Its position and height depend on the target (how many of its windows
    are textured, how many flat): notebooks 02 and 04 compute them per image, and SSIM(-x, x)
    itself is negative for some targets. A channel that starts out far enough on the negative
    side is pushed away from +x and can stay there: the output turns red or magenta
    (results/README.md records such runs). The test here, a correlation below 0, is a
    heuristic: it also flags channels that would still climb back. Introduced in notebooks/04.
    """
    output = enhance(model, pair.y).output.astype(np.float64)
    target = pair.x.astype(np.float64)
    names = ""
    for c, name in enumerate("RGB"):
        a, b = output[..., c].ravel(), target[..., c].ravel()
        if a.std() > 0 and b.std() > 0 and np.corrcoef(a, b)[0, 1] < 0:
            names += name
    return names


@dataclass
class TrainResult:
    """What a training call leaves: the network (eval mode), its history, the checkpoint,
    the configuration it trained with, and ``notes`` on what was switched off and why."""

    model: torch.nn.Module
    history: dict[str, list]
    checkpoint: Path
    config: Any
    notes: list[str] = field(default_factory=list)


def initial_stage1(config: Stage1Config) -> DRBN:
    """The network a stage-1 run of ``config`` starts from: seeded, and with the start that
    ``config.head_init`` names."""
    torch.manual_seed(config.seed)
    model = DRBN(config.model)
    return zero_band_heads(model) if config.head_init == "zero" else model


def train_stage1(
    config: Stage1Config,
    out_dir: str | os.PathLike,
    resume: str | os.PathLike | None = None,
    progress: bool = True,
    stop_at: int | None = None,
    device: str | torch.device = "auto",
) -> TrainResult:
    """Train stage 1 with the released objective (-SSIM at three scales).

    Writes ``out_dir/stage1.pt`` every ``checkpoint_every`` steps and at the end.
    ``stop_at`` ends this call early at that step (with a checkpoint) without changing the
    schedule, so the run can be resumed later. ``device``: see :func:`drbn.device.pick_device`
    (batches are drawn on the CPU either way, so the steps taken do not depend on it).
    """
    out_dir = Path(out_dir)
    checkpoint_path = out_dir / "stage1.pt"
    device = distributed.setup(pick_device(device))  # joins torchrun's processes, if any
    payload = None
    check_settings(config)  # a NaN setting is refused here, never reported as divergence
    if config.precision not in PRECISIONS:
        raise DRBNError(f"unknown precision {config.precision!r}; choose one of {', '.join(PRECISIONS)}.")
    if config.head_init not in HEAD_INITS:
        raise DRBNError(f"unknown head_init {config.head_init!r}; choose one of {', '.join(HEAD_INITS)}.")
    if resume is not None:  # continue the saved run: only ``steps`` may differ from it
        payload = check_kind(read_weights_file(resume), STAGE1, resume)
        config = continued_config(config_from_dict(Stage1Config, payload["train_config"]), config,
                                  payload["step"], resume)
    distributed.check_batch(config.batch_size)
    model = initial_stage1(config)
    if payload is not None:
        load_state_strict(model, payload["model"], str(resume))
    model = model.to(device, memory_format=torch.channels_last if config.channels_last else torch.preserve_format)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.9, 0.999))
    net = distributed.wrap(model)  # averages gradients over processes; ``model`` is saved and validated
    history, start = new_history(), 0
    if payload is not None:
        optimizer.load_state_dict(payload["optimizer"])  # moves its state to the parameters' device
        history, start = payload["history"], payload["step"]

    train_pairs, eval_pairs = datasets.hold_out(datasets.load_pairs(config.data, "train"), config.holdout_every)
    eval_pairs = eval_pairs[: config.max_eval_images]
    loss_fn = BandLoss(config.loss_weights)

    def save(step: int) -> Path:
        return save_checkpoint(checkpoint_path, {
            "kind": STAGE1, "model": model.state_dict(), "model_config": asdict(config.model),
            "train_config": asdict(config), "requested_config": asdict(config),
            "optimizer": optimizer.state_dict(), "step": step, "history": history,
            "world_size": distributed.world_size(),
        })

    last_saved = Path(resume) if resume is not None else None
    model.train()
    started = time.perf_counter() - (history["seconds"][-1] if history["seconds"] else 0.0)
    end = config.steps if stop_at is None else min(stop_at, config.steps)
    bar = tqdm(range(start, end), initial=start, total=config.steps,
               desc="stage 1", disable=not (progress and distributed.is_main()))
    for step in bar:
        lr = learning_rate(step, config.lr, config.steps, config.lr_halve_at, config.schedule, config.warmup)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = datasets.sample_pair_batch(train_pairs, config.batch_size, config.crop, step_rng(config.seed, step))
        low, high = (distributed.shard(t).to(device) for t in batch)  # this process's share
        if config.channels_last:
            low = low.contiguous(memory_format=torch.channels_last)
        loss = loss_fn(forward_in(config.precision, net, low), high)
        logged = distributed.mean(loss).item()  # the global batch's loss
        check_finite(logged, step, last_saved)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

        done = step + 1
        history["step"].append(done)
        history["loss"].append(logged)
        history["lr"].append(lr)
        history["seconds"].append(time.perf_counter() - started)
        if eval_pairs and distributed.is_main() and (done % config.eval_every == 0 or done == config.steps):
            psnr, ssim_value = validate(model, eval_pairs)
            history["eval_step"].append(done)
            history["psnr"].append(psnr)
            history["ssim"].append(ssim_value)
            bar.set_postfix(loss=f"{logged:.4f}", psnr=f"{psnr:.2f}")
        if done % config.checkpoint_every == 0 or done == end:
            last_saved = save(done) if distributed.is_main() else checkpoint_path  # rank 0 writes
    if distributed.is_main() and not checkpoint_path.exists():  # resumed a finished run into a new folder
        save(start)
    distributed.barrier()  # every process returns once the checkpoint is written
    return TrainResult(model.eval(), history, checkpoint_path, config)


# ----------------------------------------------------------------------------- stage 2
@dataclass
class Stage2Config:
    """Stage-2 training over a frozen stage 1. ``paper`` is the released schedule."""

    steps: int = 13_800
    batch_size: int = 2
    crop: int = 128
    lr: float = 1e-4  # recomposer
    lr_discriminator: float = 1e-6
    adv_weight: float = 2.0  # λ_adv: 2 in the LOL setting, 1 in the other-datasets setting
    perceptual_weight: float = 1.0  # set to 0 (and recorded) when no VGG16 weights exist
    ssim_weight: float = 1.0
    seed: int = 0
    data: str = "auto"  # paired set: "auto", "synthetic" or a LOL folder (drbn.data.resolve)
    unpaired: str = "auto"  # "auto" = synthetic low-light images of train photos, "test" = the
    # paired test split's low images (the authors' choice), else a folder of low-light photos
    high_quality: str = "auto"  # "auto" = the photos installed packages ship, else a folder
    vgg_weights: str | None = None  # explicit VGG16 file; else DRBN_VGG16_WEIGHTS or torch's cache
    vgg_normalize: bool = False  # released: no ImageNet normalisation
    eval_every: int = 1_000
    checkpoint_every: int = 1_000
    max_eval_images: int = 15
    holdout_every: int = 10  # as in Stage1Config: validation on held-out training pairs
    # The quality critic D. "joint" (released): trained from scratch beside the recomposer at
    # lr_discriminator, LSGAN, quality term λ_adv · (D(fake) − 1)². "pretrained" (the paper's
    # Sec. 3.2): first pre-trained for critic_steps to tell the high-quality photos from poor
    # versions of them (drbn.data.poor_version), then frozen; quality term λ_adv · (−log D(fake)).
    critic: str = "joint"
    critic_steps: int = 2_000  # pre-training steps of a "pretrained" critic (the paper gives none for AVA)
    critic_lr: float = 3e-4  # Adam, pre-training only
    recomposer: RecomposerConfig = field(default_factory=RecomposerConfig)


CRITICS = ("joint", "pretrained")
STAGE2_PRESETS = {
    "paper": Stage2Config(),
    "cpu": Stage2Config(steps=300, eval_every=100, checkpoint_every=100, critic_steps=200),
    "smoke": Stage2Config(steps=4, crop=32, eval_every=2, checkpoint_every=2, max_eval_images=1, critic_steps=2),
}


def stage2_preset(name: str, **overrides: Any) -> Stage2Config:
    """A preset by name with some fields replaced; ``adv_weight=1.0`` is the other-datasets setting."""
    if name not in STAGE2_PRESETS:
        raise DRBNError(f"unknown preset {name!r}; choose one of {', '.join(STAGE2_PRESETS)}.")
    return replace(STAGE2_PRESETS[name], **overrides)


def freeze(model: torch.nn.Module) -> torch.nn.Module:
    """Eval mode and no gradients: stage 1 is fixed while stage 2 trains."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def unpaired_images(config: Stage2Config, part: str = "train"):
    """The unpaired low-light photos of ``part`` as (name, uint8 H x W x 3): "train" is what
    stage 2 and its discriminator train on, "held_out" is what every stage-2 score, figure
    and teaser uses. The split is by name (:func:`drbn.data.unpaired_part`, data/README.md):
    a folder's LIME photos and those whose name ends in a multiple of 4 are held out;
    ``unpaired="auto"`` trains on darkenings of the training photos and holds out darkenings
    of the test photos. Never the paired test set unless asked (``unpaired="test"``, the
    authors' choice, which trains on every test input and so holds nothing out)."""
    datasets.check_part(part)
    if config.unpaired == "auto":
        return datasets.synthetic_unpaired(seed=config.seed + 1, part=part)
    if config.unpaired == "test":  # the authors' choice: the test split's low-light images, no targets
        if part == "held_out":
            raise DRBNError("unpaired='test' trains stage 2 on every test input, so no unpaired photo is held out; "
                            "use unpaired='auto' or a folder of low-light photos to score on held-out photos.")
        return [(p.name, p.low) for p in datasets.load_pairs(config.data, "test")]
    return datasets.load_unpaired(config.unpaired, part=part)


def high_quality_images(config: Stage2Config, part: str = "train"):
    """The discriminator's well-exposed photos of ``part`` (the same rule as :func:`unpaired_images`):
    D trains on "train"; a score of a trained D on high-quality photos uses "held_out"."""
    datasets.check_part(part)
    if config.high_quality == "auto":
        return datasets.high_quality_photos(part)
    return datasets.load_unpaired(config.high_quality, what="high-quality photo folder", part=part)


def critic_batch(photos, batch_size: int, crop: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(good, poor): ``batch_size`` patches of the high-quality ``photos`` and ``batch_size``
    poor versions (:func:`drbn.data.poor_version`) of other patches of the same photos."""
    good = datasets.sample_image_batch(photos, batch_size, crop, rng)
    source = datasets.sample_image_batch(photos, batch_size, crop, rng)
    poor = [datasets.poor_version(patch.permute(1, 2, 0).numpy(), rng) for patch in source]
    return good, torch.from_numpy(np.stack(poor)).permute(0, 3, 1, 2).contiguous()


def pretrain_critic(config: Stage2Config, discriminator: QualityDiscriminator, photos,
                    device: torch.device, progress: bool = False) -> dict[str, list]:
    """The paper's quality critic: D pre-trained to score well-exposed photos 1 and poor
    versions of them 0 (binary cross-entropy, i.e. −log D on good and −log(1 − D) on poor),
    for ``config.critic_steps`` Adam steps at ``config.critic_lr``; the paper pre-trains on
    AVA photos chosen by mean opinion score, the kit on ``photos`` (the train part of the
    high-quality set). Draws from seeds (seed, step, 1). Returns the pre-training history."""
    history = {"critic_step": [], "critic_loss": [], "critic_good": [], "critic_poor": []}
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=config.critic_lr)
    discriminator.train()
    for step in tqdm(range(config.critic_steps), desc="critic", disable=not progress):
        good, poor = (t.to(device) for t in critic_batch(photos, config.batch_size, config.crop,
                                                          step_rng(config.seed, step, 1)))
        # one batch, so BatchNorm's statistics mix good and poor as its running statistics will
        score_good, score_poor = discriminator(torch.cat((good, poor))).split(len(good))
        loss = -(torch.log(score_good.clamp_min(1e-6)).mean() + torch.log((1 - score_poor).clamp_min(1e-6)).mean())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        for key, value in (("critic_step", step + 1), ("critic_loss", loss.item()),
                           ("critic_good", score_good.mean().item()), ("critic_poor", score_poor.mean().item())):
            history[key].append(value)
    return history


def train_stage2(
    config: Stage2Config,
    stage1: DRBN,
    out_dir: str | os.PathLike,
    resume: str | os.PathLike | None = None,
    progress: bool = True,
    stop_at: int | None = None,
    device: str | torch.device = "auto",
) -> TrainResult:
    """Train the recomposer and the quality discriminator with stage 1 frozen.

    Per step, as released: one discriminator step (LSGAN; real = paired normal-light and
    high-quality patches, targets in [0.7, 1.2); fake = recomposed unpaired patches, targets
    in [0, 0.3)), then one recomposer step (perceptual + (-SSIM) on paired data
    + λ_adv · LSGAN(D(fake), 1) on unpaired data). With ``config.critic="pretrained"`` (the
    paper's form) D is pre-trained first (:func:`pretrain_critic`) and then frozen: no D step,
    and the quality term is λ_adv · (−log D(fake)). Unpaired and high-quality photos come
    from part "train" of the held-out split only. The history records D's mean score on the
    real batch (``d_real``) and on the recomposed unpaired batch (``d_fake``) at every step.
    ``stop_at`` and ``device`` as in :func:`train_stage1`; ``stage1`` is moved to that device.
    """
    out_dir = Path(out_dir)
    checkpoint_path = out_dir / "stage2.pt"
    device = distributed.setup(pick_device(device))  # joins torchrun's processes, if any
    payload = None
    check_settings(config)
    if config.critic not in CRITICS:
        raise DRBNError(f"unknown critic {config.critic!r}; choose one of {', '.join(CRITICS)}.")
    if resume is not None:
        payload = check_kind(read_weights_file(resume), STAGE2, resume)
        config = continued_config(config_from_dict(Stage2Config, payload["requested_config"]), config,
                                  payload["step"], resume, halve_at=None)
    distributed.check_batch(config.batch_size)
    requested = config  # before any switch-off below, so a resumed run decides the same way
    stage1 = freeze(stage1)

    # The perceptual term needs ImageNet VGG16 weights: without them it is switched off, once, loudly.
    # The run's notes go into the checkpoint and the TrainResult, never into the config.
    vgg_path = find_vgg16_weights(config.vgg_weights) if config.perceptual_weight > 0 else None
    if vgg_path is None and config.vgg_weights is not None and config.perceptual_weight > 0:
        # only the automatic lookup may fall back; a wrong explicit path is a mistake
        raise DRBNError(f"VGG16 weights not found: {config.vgg_weights}; check the --vgg-weights path "
                        "(or leave it out to use DRBN_VGG16_WEIGHTS or torchvision's cache).")
    perceptual, notes = None, []
    if vgg_path is not None:
        perceptual = VGGPerceptualLoss(vgg_path, normalize=config.vgg_normalize)
    elif config.perceptual_weight > 0:
        notes.append("no ImageNet VGG16 weights found: perceptual loss weight set to 0 "
                     "(pass vgg_weights or set DRBN_VGG16_WEIGHTS to use it)")
        if distributed.is_main():
            print(f"drbn: {notes[-1]}")
        config = replace(config, perceptual_weight=0.0)

    torch.manual_seed(config.seed)
    recomposer = Recomposer(config.recomposer)
    discriminator = QualityDiscriminator()
    if payload is not None:
        load_state_strict(recomposer, payload["recomposer"], str(resume))
        load_state_strict(discriminator, payload["discriminator"], str(resume))
        load_state_strict(stage1, payload["stage1"], str(resume))
    for module in (stage1, recomposer, discriminator, perceptual):
        if module is not None:
            module.to(device)
    opt_r = torch.optim.Adam(recomposer.parameters(), lr=config.lr)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr_discriminator)
    # Gradients averaged over processes; the bare modules are saved and validated (stage 1
    # is frozen: every process holds the same copy). The adversarial term of the recomposer
    # step goes through the bare discriminator: its gradients there are thrown away.
    recomposer_net, discriminator_net = distributed.wrap(recomposer), distributed.wrap(discriminator)
    history, start = new_history(), 0
    history.update(loss_d=[], loss_adv=[], loss_perceptual=[], loss_ssim=[], d_real=[], d_fake=[])
    if payload is not None:  # the optimizers' state follows their parameters' device
        opt_r.load_state_dict(payload["optimizer"])
        opt_d.load_state_dict(payload["optimizer_discriminator"])
        history, start = payload["history"], payload["step"]
        notes = list(payload.get("notes", notes))
        for key in ("d_real", "d_fake"):  # a checkpoint written before D's scores were recorded
            history.setdefault(key, [])

    train_pairs, eval_pairs = datasets.hold_out(datasets.load_pairs(config.data, "train"), config.holdout_every)
    eval_pairs = eval_pairs[: config.max_eval_images]
    unpaired = unpaired_images(config, "train")  # never a held-out photo (drbn.data.unpaired_part)
    high_quality = high_quality_images(config, "train")
    pretrained = config.critic == "pretrained"
    if pretrained:
        if payload is None:  # a resumed run has its pre-trained critic in the checkpoint
            history.update(pretrain_critic(config, discriminator, high_quality, device,
                                           progress and distributed.is_main()))
            notes.append(f"critic pre-trained for {config.critic_steps} steps on the high-quality photos' train part "
                         "against poor versions of them, then frozen; quality term -log D(fake)")
        freeze(discriminator)

    def save(step: int) -> Path:
        return save_checkpoint(checkpoint_path, {
            "kind": STAGE2, "recomposer": recomposer.state_dict(),
            "recomposer_config": asdict(config.recomposer),
            "discriminator": discriminator.state_dict(), "train_config": asdict(config),
            "requested_config": asdict(requested),
            "optimizer": opt_r.state_dict(), "optimizer_discriminator": opt_d.state_dict(),
            "stage1": stage1.state_dict(), "stage1_config": asdict(stage1.config),
            "step": step, "history": history, "notes": notes, "world_size": distributed.world_size(),
        })

    def recompose(low: torch.Tensor):
        with torch.no_grad():
            bands = decompose(stage1(low))
        return recomposer_net(low, bands).image

    last_saved = Path(resume) if resume is not None else None
    recomposer.train()
    discriminator.train(not pretrained)  # a frozen critic scores with its running BatchNorm statistics
    started = time.perf_counter() - (history["seconds"][-1] if history["seconds"] else 0.0)
    end = config.steps if stop_at is None else min(stop_at, config.steps)
    bar = tqdm(range(start, end), initial=start, total=config.steps,
               desc="stage 2", disable=not (progress and distributed.is_main()))
    for step in bar:
        rng = step_rng(config.seed, step)
        low, high = datasets.sample_pair_batch(train_pairs, config.batch_size, config.crop, rng)
        unpaired_low = datasets.sample_image_batch(unpaired, config.batch_size, config.crop, rng)
        good = datasets.sample_image_batch(high_quality, config.batch_size, config.crop, rng)
        low, high, unpaired_low, good = (distributed.shard(t).to(device) for t in (low, high, unpaired_low, good))
        targets = torch.Generator().manual_seed(int(rng.integers(2**62)))

        fake = recompose(unpaired_low)
        real = torch.cat((high, good))
        if pretrained:  # the frozen critic: nothing to train; its scores and its own loss are recorded
            with torch.no_grad():
                score_real = discriminator(real)
            score_fake = discriminator(fake)  # the recomposer's gradient flows through it
            loss_d = -(torch.log(score_real.clamp_min(1e-6)).mean()
                       + torch.log((1 - score_fake.detach()).clamp_min(1e-6)).mean())
            loss_adv = -torch.log(score_fake.clamp_min(1e-6)).mean()  # the paper's L_quality = -log D
        else:
            # discriminator step (LSGAN on the sigmoid output)
            # the soft labels of the global batch (high and good, then fake), this process's share of each
            real_target = uniform_targets(2 * config.batch_size, *REAL_TARGETS, generator=targets)
            fake_target = uniform_targets(config.batch_size, *FAKE_TARGETS, generator=targets)
            real_target = torch.cat([distributed.shard(t) for t in real_target.chunk(2)]).to(device)
            fake_target = distributed.shard(fake_target).to(device)
            score_real, score_fake = discriminator_net(real), discriminator_net(fake.detach())
            loss_d = lsgan_loss(score_real, real_target) + lsgan_loss(score_fake, fake_target)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            loss_adv = lsgan_loss(discriminator(fake), 1.0)

        # recomposer step
        output = recompose(low)
        loss_ssim = -ssim(output, high)
        loss_perc = perceptual(output, high) if perceptual is not None else output.new_zeros(())
        loss = config.perceptual_weight * loss_perc + config.ssim_weight * loss_ssim + config.adv_weight * loss_adv
        logged = dict(zip(("loss", "loss_d", "loss_adv", "loss_perceptual", "loss_ssim", "d_real", "d_fake"),
                          distributed.mean(torch.stack((loss, loss_d, loss_adv, loss_perc, loss_ssim, score_real.mean(),
                                                        score_fake.mean())).detach()).tolist()))  # of the global batch
        check_finite(logged["loss"], step, last_saved)
        check_finite(logged["loss_d"], step, last_saved)
        opt_r.zero_grad(set_to_none=True)
        loss.backward()
        opt_r.step()

        done = step + 1
        for key, value in (("step", done), ("lr", config.lr), ("seconds", time.perf_counter() - started),
                           *logged.items()):
            history[key].append(value)
        if eval_pairs and distributed.is_main() and (done % config.eval_every == 0 or done == config.steps):
            recomposer.eval()
            psnr, ssim_value = validate(stage1, eval_pairs, recomposer)
            recomposer.train()
            history["eval_step"].append(done)
            history["psnr"].append(psnr)
            history["ssim"].append(ssim_value)
            bar.set_postfix(loss=f"{logged['loss']:.4f}", d=f"{logged['loss_d']:.3f}", psnr=f"{psnr:.2f}")
        if done % config.checkpoint_every == 0 or done == end:
            last_saved = save(done) if distributed.is_main() else checkpoint_path  # rank 0 writes
    if distributed.is_main() and not checkpoint_path.exists():  # resumed a finished run into a new folder
        save(start)
    distributed.barrier()  # every process returns once the checkpoint is written
    return TrainResult(recomposer.eval(), history, checkpoint_path, config, notes)


# ----------------------------------------------------------------------------- continuing a run
def matching_run(checkpoint: Path, config: Any, kind: str, stage1: DRBN | None = None) -> Path | None:
    """``checkpoint`` if it holds a run of exactly this config (finished or not), and for
    stage 2 over this very stage 1; else None."""
    if not checkpoint.exists():
        return None
    payload = read_weights_file(checkpoint)
    if not (isinstance(payload, dict) and payload.get("kind") == kind
            and payload.get("requested_config") == asdict(config)):
        return None
    if stage1 is not None:
        theirs = payload["stage1"]
        if theirs.keys() != stage1.state_dict().keys() or not all(
                torch.equal(theirs[k], v.cpu()) for k, v in stage1.state_dict().items()):
            return None
    return checkpoint


def train_or_reuse_stage1(config: Stage1Config, out_dir: str | os.PathLike, progress: bool = True,
                          device: str | torch.device = "auto") -> TrainResult:
    """Continue the same run in ``out_dir`` if there is one (a finished one returns at once),
    else train from scratch. Notebooks use it so a later chapter reuses an earlier one's run."""
    resume = matching_run(Path(out_dir) / "stage1.pt", config, STAGE1)
    return train_stage1(config, out_dir, resume=resume, progress=progress, device=device)


def train_or_reuse_stage2(config: Stage2Config, stage1: DRBN, out_dir: str | os.PathLike,
                          progress: bool = True, device: str | torch.device = "auto") -> TrainResult:
    """As :func:`train_or_reuse_stage1`, for stage 2 over the given frozen stage 1."""
    resume = matching_run(Path(out_dir) / "stage2.pt", config, STAGE2, stage1)
    return train_stage2(config, stage1, out_dir, resume=resume, progress=progress, device=device)
