"""Figures: pure functions that take images or results and return a Figure; introduced in notebooks/01_low_light_data.

Each function builds a ``matplotlib.figure.Figure`` directly (no pyplot state, safe under
the Agg backend). A notebook calls it once, saves it with :func:`save_figure` under
``OUT/figures`` and shows it inline; ``ipywidgets.interact`` only ever wraps the same call.

Images may be given as torch tensors (3 x H x W or 1 x 3 x H x W) or numpy arrays
(H x W x 3, float in [0, 1] or uint8). Float images are clamped to [0, 1] for display only;
signed bands are drawn around mid-grey.

Band naming as in ``drbn.model`` and ``drbn.recompose`` (README, "Band naming"), the only
one used here: the estimates x̂_full, x̂_half, x̂_quarter and the Δ-bands Δ̂_coarse,
Δ̂_middle, Δ̂_fine, written in titles with matplotlib's mathtext (``estimate_label``,
``band_sum``). Figures are drawn for a notebook's column: at most about 950 pixels wide
at 100% zoom (``COLUMN_WIDTH`` inches at ``NOTEBOOK_DPI``).

Results rows are keyed by short names (``psnr``, ``ssim``, ...); a figure shows their
labels from ``drbn.results`` (``label``, ``format_value``) and never reads a label back.
"""
from __future__ import annotations

import hashlib
import io
import math
import weakref
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Patch
from matplotlib.table import Table
from matplotlib.ticker import MaxNLocator
from torchvision.utils import make_grid

from . import files, results
from .discriminator import sorted_channels
from .enhance import on_device, pad_to_multiple
from .images import to_image
from .losses import gaussian_window
from .metrics import psnr as metrics_psnr
from .model import DRBNConfig
from .recompose import Bands, decompose

DPI = 110  # saved PNG files
NOTEBOOK_DPI = 100  # figures shown inline: at 100% zoom one inch is 100 pixels
COLUMN_WIDTH = 9.3  # inches: JupyterLab's output column is about 950 pixels at 100% zoom (with the 0.1 inch padding of the inline display)
BANDS = ("coarse", "middle", "fine")
BAND_NAMES = tuple(rf"$\hat{{\Delta}}_{{\mathrm{{{name}}}}}$" for name in BANDS)  # mathtext


# ----------------------------------------------------------------------------- helpers
def for_display(image) -> np.ndarray:
    """An image clamped to [0, 1] for ``imshow`` (a single channel is squeezed to H x W)."""
    array = np.clip(to_image(image), 0.0, 1.0)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    return array


def signed_for_display(band, gain: float | None = None) -> tuple[np.ndarray, float]:
    """A signed band shown around mid-grey: 0.5 + gain * band, clamped; returns (image, gain).

    With ``gain=None`` the 99.5th percentile of |band| is mapped to 0.5 (capped at x64).
    """
    array = to_image(band)
    if gain is None:
        spread = float(np.percentile(np.abs(array), 99.5)) if array.size else 0.0
        gain = min(0.5 / spread, 64.0) if spread > 0 else 1.0
    return np.clip(0.5 + gain * array, 0.0, 1.0), gain


def _figure(nrows: int, ncols: int, size: float = 2.6, height: float | None = None,
            squeeze: bool = False, **kwargs) -> tuple[Figure, np.ndarray]:
    """A grid of panels ``size`` x ``height`` inches, all shrunk alike to fit the column."""
    height = height or size
    if size * ncols > COLUMN_WIDTH:
        shrink = COLUMN_WIDTH / (size * ncols)
        size, height = size * shrink, height * shrink
    fig = Figure(figsize=(size * ncols, height * nrows), dpi=NOTEBOOK_DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=squeeze, **kwargs)
    return fig, axes


def _pin_size(fig: Figure) -> None:
    """Keep ``fig`` its full size when shown: the inline display crops a figure to what is
    drawn, which would make the size depend on the image's aspect; a transparent frame
    around the whole figure is always drawn."""
    from matplotlib.patches import Rectangle

    fig.add_artist(Rectangle((0, 0), 1, 1, transform=fig.transFigure, fill=False, edgecolor="none"))


def _image_axes(ax, image, title: str | None = None) -> None:
    ax.imshow(for_display(image), cmap="gray", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def _psnr(output, target) -> float:
    """PSNR in dB on 8-bit RGB (the kit's headline metric, drbn.metrics.psnr)."""
    return metrics_psnr(np.clip(to_image(output), 0, 1), np.clip(to_image(target), 0, 1))


def save_figure(fig: Figure, out, name: str, dpi: int = DPI) -> Path:
    """Save ``fig`` as ``OUT/figures/<name>.png`` (dpi 110) and return the path."""
    return files.write_figure(Path(out) / "figures" / f"{name}.png", fig, dpi=dpi, bbox_inches="tight")


# ----------------------------------------------------------------------------- images
def show_images(images: Sequence, titles: Sequence[str] | None = None, ncols: int | None = None,
                size: float = 2.6, suptitle: str | None = None) -> Figure:
    """A row (or grid of ``ncols`` columns) of images, clamped to [0, 1]: y, x̂, x side by side.

    One axes per image, ``size`` inches wide (all shrunk alike where the row would be wider
    than a notebook's column), as tall as the first image's aspect and its title need;
    the grid's unused cells are removed. Used in every notebook.
    """
    images = list(images)
    if not images:
        raise ValueError("show_images needs at least one image.")
    ncols = min(ncols or len(images), len(images))
    nrows = math.ceil(len(images) / ncols)
    size = min(size, COLUMN_WIDTH / ncols)
    first = to_image(images[0])
    lines = max((str(t).count("\n") + 1 for t in titles), default=0) if titles is not None else 0
    fig, axes = _figure(nrows, ncols, size, height=size * first.shape[0] / first.shape[1] + 0.2 * lines + 0.05)
    for i, ax in enumerate(axes.flat):
        if i >= len(images):
            fig.delaxes(ax)
            continue
        _image_axes(ax, images[i], titles[i] if titles is not None else None)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def image_grid(batch, nrow: int = 4, padding: int = 2) -> np.ndarray:
    """A N x 3 x H x W batch tiled into one H' x W' x 3 image with torchvision's make_grid."""
    batch = torch.as_tensor(batch).detach().float().clamp(0, 1).cpu()
    return make_grid(batch, nrow=nrow, padding=padding, pad_value=1.0).permute(1, 2, 0).numpy()


def plot_batch(low, high, nrow: int = 4, size: float = 4.0) -> Figure:
    """A training batch: the low-light patches y (left) and their targets x (right).

    Introduced in notebooks/01_low_light_data.
    """
    fig, axes = _figure(1, 2, size, squeeze=True)
    _image_axes(axes[0], image_grid(low, nrow), f"low-light patches y ({len(low)})")
    _image_axes(axes[1], image_grid(high, nrow), f"normal-light targets x ({len(high)})")
    return fig


# ----------------------------------------------------------------------------- training
STAGE2_TERMS = ("loss_ssim", "loss_perceptual", "loss_adv", "loss_d")


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(values) < window:
        return values
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


def plot_history(history: dict, title: str | None = None) -> Figure:
    """Training curves of a run's ``history``: the loss L per step (raw and smoothed) and the
    validation PSNR (SSIM in the labels); for stage 2 also each loss term, one axes more.

    Introduced in notebooks/02_recursive_band_learning.
    """
    stage2 = any(history.get(k) for k in STAGE2_TERMS)
    fig, axes = _figure(1, 3 if stage2 else 2, 4.0, height=3.0, squeeze=True)
    steps = np.asarray(history.get("step", []), dtype=float)
    loss = np.asarray(history.get("loss", []), dtype=float)
    ax = axes[0]
    if len(loss):
        ax.plot(steps, loss, color="0.7", lw=0.8, label="per step")
        window = max(1, len(loss) // 20)
        if window > 1:
            ax.plot(steps[window - 1:], _smooth(loss, window), color="C0", label=f"mean of {window}")
        ax.legend(fontsize=8)
    ax.set_xlabel("step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    ax.set_ylabel("loss")
    ax.set_title("training loss", fontsize=10)
    ax.grid(alpha=0.3)

    ax = axes[1]
    eval_steps, psnr = history.get("eval_step", []), history.get("psnr", [])
    if len(psnr):
        ax.plot(eval_steps, psnr, "o-", color="C1", ms=4)
        ssims = history.get("ssim", [None] * len(psnr))
        every = max(1, math.ceil(len(psnr) / 8))  # at most about eight labels
        for i, (s, p, q) in enumerate(zip(eval_steps, psnr, ssims)):
            if q is not None and (i % every == 0 or i == len(psnr) - 1):
                ax.annotate(f"{q:.3f}", (s, p), textcoords="offset points", xytext=(0, 6),
                            ha="center", fontsize=7, color="C1")
    else:
        ax.text(0.5, 0.5, "no validation yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.margins(x=0.08, y=0.15)  # room for the labels
    ax.set_ylabel("PSNR (dB)")
    ax.set_title("validation PSNR (labels: SSIM)", fontsize=10)
    ax.grid(alpha=0.3)
    minutes = np.asarray(history.get("seconds", []), dtype=float) / 60
    if len(psnr) and len(minutes) == len(steps) > 1 and np.all(np.diff(minutes) > 0):
        # the same axis in wall-clock minutes of training, read from the run's own timing
        top = ax.secondary_xaxis("top", functions=(lambda s: np.interp(s, steps, minutes),
                                                   lambda m: np.interp(m, minutes, steps)))
        top.set_xlabel("minutes of training", fontsize=8)
        top.tick_params(labelsize=7)

    if stage2:
        ax = axes[2]
        for key in STAGE2_TERMS:
            values = history.get(key, [])
            if len(values):
                ax.plot(history["step"][: len(values)], values, lw=1, label=key.removeprefix("loss_"))
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title("stage-2 loss terms", fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


# ----------------------------------------------------------------------------- low light
def plot_darkening_steps(darkening, original=None, stretch: bool = True, ncols: int = 4) -> Figure:
    """The camera model of ``drbn.synthetic.darken_steps`` one step per panel, from the
    normal-light image to the low-light input y (linear L, exposed E = kL, noisy N, cast
    C = g_c N, gamma G, quantised), ``ncols`` panels per row. With ``stretch`` each step
    has a second panel below it: the yellow box (:func:`zoom_box` of the first image)
    zoomed and brightened to full range, so that the noise and the colour cast the dark
    images hide become visible at a notebook's width.

    Introduced in notebooks/01_low_light_data.
    """
    from matplotlib.patches import Rectangle

    steps = list(darkening.steps())
    if original is not None:
        steps = [("original", original)] + steps
    gains = ", ".join(f"{g:.2f}" for g in darkening.gains)
    labels = {"original": "original",
              "linear": "linear $L = I^{2.2}$",
              "exposed": f"exposed $E = kL$\n$k$ = {darkening.exposure:.3f}",
              "noisy": f"noisy $N$\n$p$ = {darkening.photons:.0f} e$^-$, $r$ = {darkening.read_noise:.1f} e$^-$",
              "cast": f"cast $C = g_c N$\n$g$ = {gains}",
              "gamma": "gamma $G = C^{1/2.2}$",
              "quantised": "quantised: $y$, 8 bits"}
    ncols = min(ncols, len(steps))
    blocks = math.ceil(len(steps) / ncols)
    first = np.clip(to_image(steps[0][1]), 0, 1)
    width = COLUMN_WIDTH / ncols
    image_height = width * first.shape[0] / first.shape[1]
    heights = ([image_height + 0.45] + ([image_height + 0.2] if stretch else [])) * blocks
    fig = Figure(figsize=(COLUMN_WIDTH, sum(heights)), dpi=NOTEBOOK_DPI, layout="constrained")
    axes = fig.subplots(len(heights), ncols, squeeze=False, gridspec_kw={"height_ratios": heights})
    rows = 2 if stretch else 1
    top, left, bh, bw = zoom_box(first, 0.25)
    number = 0
    for i, (name, image) in enumerate(steps):
        array = np.clip(to_image(image), 0, 1)
        row, col = rows * (i // ncols), i % ncols
        if name != "original":
            number += 1
        title = labels.get(name, name)
        _image_axes(axes[row, col], array, title if name == "original" else f"{number}. {title}")
        if stretch:
            axes[row, col].add_patch(Rectangle((left - 0.5, top - 0.5), bw, bh, fill=False, edgecolor="yellow", lw=1.0))
            bright = float(np.percentile(array, 99.5)) or 1.0
            _image_axes(axes[row + 1, col], array[top:top + bh, left:left + bw] / bright,
                        f"box, × {1 / bright:.1f} to see")
    for i in range(len(steps), blocks * ncols):
        row, col = rows * (i // ncols), i % ncols
        for r in range(rows):
            axes[row + r, col].set_axis_off()
    if stretch and len(steps) < blocks * ncols:
        axes[-2, -1].text(0.5, 0.5, "below each step:\nthe yellow box, zoomed\nand brightened to full\nrange",
                          ha="center", va="center", fontsize=9, color="0.35", transform=axes[-2, -1].transAxes)
    fig.suptitle(f"synthetic low light, step by step (mean {to_image(steps[0][1]).mean():.2f} "
                 f"→ {darkening.quantised.mean():.2f})", fontsize=10)
    return fig


def plot_histograms(low, high, bins: int = 64) -> Figure:
    """Per-channel intensity histograms of the low-light y (left) and the normal-light x
    (right): low light squeezes everything into the bottom of the range.

    Introduced in notebooks/01_low_light_data.
    """
    fig, axes = _figure(1, 2, 4.0, height=2.8, squeeze=True, sharey=True)
    for ax, image, title in ((axes[0], low, "low-light y"), (axes[1], high, "normal-light x")):
        array = np.clip(to_image(image), 0, 1)
        for c, colour in enumerate(("red", "green", "blue")):
            counts, edges = np.histogram(array[..., c], bins=bins, range=(0, 1))
            ax.stairs(counts / counts.sum(), edges, color=colour, alpha=0.8, label=colour)
        ax.set_title(f"{title} (mean {array.mean():.3f})", fontsize=10)
        ax.set_xlabel("intensity")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("fraction of pixels")
    axes[0].legend(fontsize=8)
    return fig


def plot_noise_model(darkening, bins: int = 24) -> Figure:
    """The Poisson-Gaussian sensor noise of the camera model: the standard deviation of the
    noisy signal against the exposed signal E, measured on the image (dots) and predicted,
    σ(E) = sqrt(p E + r²) / p (line); right, the signal-to-noise ratio E / σ(E) in dB.

    Introduced in notebooks/01_low_light_data.
    """
    p, r = darkening.photons, darkening.read_noise
    exposed = to_image(darkening.exposed).ravel()
    residual = to_image(darkening.noisy).ravel() - exposed
    top = float(np.percentile(exposed, 99.5)) or 1e-3
    edges = np.linspace(0, top, bins + 1)
    which = np.digitize(exposed, edges) - 1
    centres, measured = [], []
    for b in range(bins):
        chosen = residual[which == b]
        if chosen.size >= 50:
            centres.append(0.5 * (edges[b] + edges[b + 1]))
            measured.append(chosen.std())
    grid = np.linspace(1e-6, top, 200)
    sigma = np.sqrt(p * grid + r * r) / p
    fig, axes = _figure(1, 2, 4.0, height=2.8, squeeze=True)
    axes[0].plot(centres, measured, "o", ms=4, label="measured on the image")
    axes[0].plot(grid, sigma, "-", label="σ(E) = √(pE + r²) / p")
    axes[0].set_xlabel("exposed signal E (linear)")
    axes[0].set_ylabel("noise σ (linear)")
    axes[0].set_title(f"shot + read noise (p = {p:.0f}, r = {r:.1f})", fontsize=10)
    axes[0].legend(fontsize=8)
    axes[1].plot(grid, 20 * np.log10(grid / sigma), "-", color="C2")
    axes[1].set_xlabel("exposed signal E (linear)")
    axes[1].set_ylabel("SNR (dB)")
    axes[1].set_title("darker pixels are noisier, relatively", fontsize=10)
    for ax in axes:
        ax.grid(alpha=0.3)
    return fig



def plot_brightness(groups: dict, bins: int = 20, title: str | None = None) -> Figure:
    """Histograms of the mean brightness (over pixels and RGB, in [0, 1]) of several sets of
    images, one outlined histogram per named set (``{name: sequence of means}``), each
    set's median dashed: e.g. the low-light inputs, the normal-light targets and
    well-exposed photos side by side.

    Introduced in notebooks/01_low_light_data.
    """
    fig, ax = _figure(1, 1, 6.0, height=3.0, squeeze=True)
    edges = np.linspace(0.0, 1.0, bins + 1)
    for i, (name, values) in enumerate(groups.items()):
        values = np.asarray(values, dtype=float)
        if not len(values):
            continue
        counts, _ = np.histogram(np.clip(values, 0, 1), bins=edges)
        median = float(np.median(values))
        ax.stairs(counts / len(values), edges, color=f"C{i}", lw=1.5,
                  label=f"{name} ({len(values)}, median {median:.2f})")
        ax.axvline(median, color=f"C{i}", lw=1.0, ls="--")
    ax.set_xlim(0, 1)
    ax.set_xlabel("mean brightness of an image")
    ax.set_ylabel("fraction of the set")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    return fig

# ----------------------------------------------------------------------------- stage 1
def plot_recursions(outputs_per_t: Sequence, target=None, low=None, ncols: int = 3) -> Figure:
    """The full-scale estimate x̂^(t)_full of every recursion t = 1..T (``DRBN.recursions``),
    optionally after the input y and before the target x, with the PSNR to x in the titles,
    ``ncols`` panels per row. Items may be ``BandOutputs`` (their ``full`` is shown) or images.

    Introduced in notebooks/02_recursive_band_learning.
    """
    images = [getattr(o, "full", o) for o in outputs_per_t]
    T = len(images)
    titles = []
    for t, image in enumerate(images, 1):
        title = f"{estimate_label(t)}: recursion {t} of {T}"
        if target is not None:
            title += f"\n{_psnr(image, target):.2f} dB to x"
        titles.append(title)
    if low is not None:
        images.insert(0, low)
        titles.insert(0, "input y" + (f"\n{_psnr(low, target):.2f} dB to x" if target is not None else ""))
    if target is not None:
        images.append(target)
        titles.append("target x")
    return show_images(images, titles, ncols=min(ncols, len(images)), size=COLUMN_WIDTH / ncols,
                       suptitle="one estimate per recursion (only the last is supervised)")


def plot_bands(bands, output=None, gain: float | None = None) -> Figure:
    """The three Δ-bands of ``drbn.recompose.decompose`` and their sum, three panels a row.

    Δ̂_coarse = up4(x̂_quarter) is an image; Δ̂_middle = up2(x̂_half) − up4(x̂_quarter) and
    Δ̂_fine = x̂_full − up2(x̂_half) are signed details, drawn around mid-grey (grey = 0)
    with the gain in the title. The sum Δ̂_coarse + Δ̂_middle + Δ̂_fine is x̂_full; with
    ``output`` (x̂_full itself) it is shown beside, with the largest difference.

    Introduced in notebooks/03_band_recomposition.
    """
    coarse, middle, fine = (to_image(b) for b in bands)
    total = coarse + middle + fine
    aspect = coarse.shape[0] / coarse.shape[1]
    size = COLUMN_WIDTH / 3
    fig, axes = _figure(2, 3, size, height=size * aspect + 0.45)
    axes = axes.ravel()
    _image_axes(axes[0], coarse, f"{BAND_NAMES[0]}\n" + r"$= \mathrm{up}_4(\hat{x}_{\mathrm{quarter}})$")
    for ax, band, name in ((axes[1], middle, BAND_NAMES[1]), (axes[2], fine, BAND_NAMES[2])):
        shown, used = signed_for_display(band, gain)
        _image_axes(ax, shown, f"{name}\n(grey = 0, × {used:.1f})")
    _image_axes(axes[3], total, "sum " + band_sum((1, 1, 1)).replace(r"1\,", ""))
    if output is not None:
        difference = float(np.abs(total - to_image(output)).max())
        _image_axes(axes[4], output, rf"$\hat{{x}}_{{\mathrm{{full}}}}$" + f"\n(max |diff| {difference:.1e})")
    else:
        fig.delaxes(axes[4])
    # the fine band, where texture and noise live, zoomed into the sum's most detailed box
    from matplotlib.patches import Rectangle

    top, left, bh, bw = zoom_box(total, 0.25)
    shown, used = signed_for_display(fine[top:top + bh, left:left + bw], gain)
    _image_axes(axes[5], shown, f"{BAND_NAMES[2]} in the yellow box\n(grey = 0, × {used:.1f})")
    axes[3].add_patch(Rectangle((left - 0.5, top - 0.5), bw, bh, fill=False, edgecolor="yellow", lw=1.0))
    return fig


# ----------------------------------------------------------------------------- stage 2
def plot_weight_maps(w1, w2, w3, limit: float | None = None, title: str | None = None) -> Figure:
    """The recomposition weights w1, w2, w3 (x̂_F = w1 Δ̂_coarse + w2 Δ̂_middle + w3 Δ̂_fine),
    averaged over RGB, on a diverging map centred at 1 (= keep the band as it is), and below
    them a histogram of all their values (per pixel and channel). Axes: three maps, the
    histogram, a colour bar.

    Introduced in notebooks/03_band_recomposition.
    """
    maps = [to_image(w) for w in (w1, w2, w3)]
    if limit is None:
        limit = max(float(np.percentile(np.abs(m - 1.0), 99.5)) for m in maps) or 0.1
    size = (COLUMN_WIDTH - 0.8) / 3  # room for the colour bar
    aspect = maps[0].shape[0] / maps[0].shape[1]
    fig = Figure(figsize=(COLUMN_WIDTH, size * aspect + 0.35 + 2.4), dpi=NOTEBOOK_DPI, layout="constrained")
    axes = fig.subplot_mosaic([["w1", "w2", "w3"], ["hist", "hist", "hist"]],
                              height_ratios=(size * aspect + 0.35, 2.4))
    image = None
    for i, (key, m, band) in enumerate(zip(("w1", "w2", "w3"), maps, BANDS), 1):
        ax = axes[key]
        image = ax.imshow(m.mean(-1), cmap="RdBu_r", vmin=1 - limit, vmax=1 + limit)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"$w_{i}$ ({band}): mean {m.mean():.3f}", fontsize=9)
    fig.colorbar(image, ax=[axes[k] for k in ("w1", "w2", "w3")], shrink=0.8, label="weight (1 = unchanged)")
    ax = axes["hist"]
    low = min(float(m.min()) for m in maps)
    high = max(float(m.max()) for m in maps)
    if high - low < 1e-6:
        low, high = low - 0.05, high + 0.05
    for i, m in enumerate(maps):
        ax.hist(m.ravel(), bins=60, range=(low, high), histtype="step", color=f"C{i}", label=f"$w_{i + 1}$",
                density=True)
    ax.axvline(1.0, color="0.5", lw=0.8, ls="--")
    ax.set_xlabel("weight")
    ax.set_title("all values (per pixel and channel)", fontsize=9)
    ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def plot_sorted_channels(image) -> Figure:
    """What the quality discriminator D sees (``drbn.discriminator.sorted_channels``): the
    RGB image and, per pixel, its channels sorted into min, median and max. Sorting drops
    which channel is which, leaving brightness and saturation structure.

    Introduced in notebooks/03_band_recomposition.
    """
    tensor = torch.as_tensor(to_image(image), dtype=torch.float32).permute(2, 0, 1)[None]
    channels = sorted_channels(tensor)[0]
    fig, axes = _figure(1, 4, 2.6)
    axes = axes[0]
    _image_axes(axes[0], tensor[0], "RGB (channels 0-2)")
    for ax, index, name in zip(axes[1:], (3, 4, 5), ("min", "median", "max")):
        _image_axes(ax, channels[index], f"{name} (channel {index})")
    return fig


# ----------------------------------------------------------------------------- explorer
EXPLORER_SIZE = (COLUMN_WIDTH, 5.56)  # inches: one size for every image, paired or not
EXPLORER_CACHE_SIZE = 4  # images kept per model: about 50 MB each for a 600 x 400 photo at T = 4


class Explored(NamedTuple):
    """Everything the explorer shows of one image that a band scale does not change, as
    H x W x 3 float32 arrays: per recursion t the estimate x̂^(t)_full and its Δ-bands
    (``drbn.recompose.decompose``), and the zoom box (:func:`zoom_box` of x̂^(T)_full)."""

    estimates: list
    bands: list
    box: tuple[int, int, int, int]


# model -> {(weights fingerprint, image fingerprint): Explored}, oldest first
_explored: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _fingerprint(arrays) -> bytes:
    """A digest of the arrays' shapes, dtypes and bytes: equal only for equal contents."""
    digest = hashlib.blake2b(digest_size=16)
    for array in arrays:
        if isinstance(array, torch.Tensor):
            array = array.detach().cpu().reshape(-1)
            digest.update(f"{array.dtype}{array.numel()}".encode())
            array = array.view(torch.uint8).numpy()
        else:
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.view(np.uint8).data)
    return digest.digest()


def explored(stage1, image) -> Explored:
    """Every recursion of ``stage1`` on one image, with its bands: computed once per image and
    weights (``stage1.recursions`` on the image padded to a multiple of 4, cropped back) and
    then taken from a cache, so that moving a band slider costs no network pass. The cache
    keeps the last few images per model; changed weights are a new entry (the weights are
    part of the key), and the model's train/eval mode is left as it was.

    Introduced in notebooks/06_explorer.
    """
    array = np.ascontiguousarray(to_image(image)[..., :3], dtype=np.float32)
    key = (_fingerprint(stage1.state_dict().values()), _fingerprint([array]))
    cache = _explored.setdefault(stage1, OrderedDict())
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    h, w = array.shape[:2]
    y = pad_to_multiple(torch.from_numpy(array).permute(2, 0, 1)[None])
    was_training = stage1.training
    stage1.eval()
    try:
        with torch.inference_mode():
            outputs = stage1.recursions(on_device(stage1, y))
    finally:
        stage1.train(was_training)
    crop = lambda t: to_image(t[..., :h, :w])  # noqa: E731
    estimates = [crop(o.full) for o in outputs]
    bands = [Bands(*(crop(b) for b in decompose(o))) for o in outputs]
    cache[key] = Explored(estimates, bands, zoom_box(estimates[-1]))
    while len(cache) > EXPLORER_CACHE_SIZE:
        cache.popitem(last=False)
    return cache[key]


def band_sum(scales: Sequence[float]) -> str:
    """The recomposition by hand in mathtext, e.g. 1 Δ̂_coarse + 0.5 Δ̂_middle + 1.5 Δ̂_fine."""
    return "$" + " + ".join(rf"{float(s):g}\,\hat{{\Delta}}_{{\mathrm{{{name}}}}}"
                            for s, name in zip(scales, BANDS)) + "$"


def estimate_label(t: int | str, scale: str = "full") -> str:
    """x̂^(t)_scale in mathtext: recursion t's estimate at one scale."""
    return rf"$\hat{{x}}^{{({t})}}_{{\mathrm{{{scale}}}}}$"


def explore(stage1, image, recursion: int | None = None,
            band_scales: tuple[float, float, float] = (1.0, 1.0, 1.0), target=None) -> Figure:
    """The explorer's view of one image. Top: the low-light y, the full-scale estimate
    x̂^(t)_full of recursion t (``None`` = the last, T) and the image recomposed from that
    recursion's bands with each band scaled by hand, s_c Δ̂_coarse + s_m Δ̂_middle +
    s_f Δ̂_fine (the recomposer's job done by hand, one weight per band). Bottom: the box
    outlined in yellow, zoomed, where noise and texture show (the box :func:`zoom_box`
    picks on the target x when given, else on x̂^(T)_full); first the target's zoom when
    given (then PSNRs to x in the titles). One figure size for every image, with or
    without a target, so the page does not jump as the explorer switches images.

    The recursions come from :func:`explored`'s cache: only the first view of an image
    runs the network; a band scale or another recursion of the same image does not.

    Introduced in notebooks/06_explorer, which wraps it in ``ipywidgets.interact``.
    """
    from matplotlib.patches import Rectangle

    view = explored(stage1, image)
    T = len(view.estimates)
    t = T if recursion is None else int(recursion)
    if not 1 <= t <= T:
        raise ValueError(f"recursion must be in 1..{T}, got {recursion}.")
    scales = tuple(float(s) for s in band_scales)
    bands = view.bands[t - 1]
    recomposed = scales[0] * bands.coarse + scales[1] * bands.middle + scales[2] * bands.fine
    low = np.ascontiguousarray(to_image(image)[..., :3])
    shown = [low, view.estimates[t - 1], recomposed]
    titles = ["input y", f"{estimate_label(t)}, recursion {t} of {T}", band_sum(scales)]
    if target is not None:
        titles = [f"{title}\n{_psnr(im, target):.2f} dB to x" for title, im in zip(titles, shown)]
    else:
        titles = [f"{title}\n(no target)" for title in titles]

    # a fixed layout (no layout engine): one size for every image, and nothing to re-solve
    # at each redraw; 0.5 inch above each row for two lines of title
    fig = Figure(figsize=EXPLORER_SIZE, dpi=NOTEBOOK_DPI)
    rows, title, height = (2.1, 2.4), 0.5, EXPLORER_SIZE[1]  # inches: image rows, title space above each
    axes = fig.subplots(2, 3, gridspec_kw=dict(left=0.01, right=0.99, bottom=0.06 / height, top=1 - title / height,
                                               wspace=0.04, hspace=title / np.mean(rows), height_ratios=rows))
    top, left, bh, bw = view.box if target is None else zoom_box(target)
    zoom = np.s_[top:top + bh, left:left + bw]
    for ax, im, title in zip(axes[0], shown, titles):
        _image_axes(ax, im, title)
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), bw, bh, fill=False, edgecolor="yellow", lw=1.0))
    if target is not None:
        _image_axes(axes[1, 0], to_image(target)[zoom], "target x, zoomed")
    else:
        axes[1, 0].set_axis_off()
        axes[1, 0].text(0.5, 0.5, "no target x:\nan unpaired photo", ha="center", va="center",
                        fontsize=9, color="0.4", transform=axes[1, 0].transAxes)
    _image_axes(axes[1, 1], view.estimates[t - 1][zoom], f"{estimate_label(t)}, zoomed")
    _image_axes(axes[1, 2], recomposed[zoom], "recomposed, zoomed")
    _pin_size(fig)
    return fig


class Explorer:
    """The explorer as widgets, for a slider that answers at once: an image menu, a
    recursion slider and one slider per band, over the same six panels as :func:`explore`
    (y, x̂^(t)_full, the recomposed image; below, the zoomed box of the target, of x̂^(t)_full
    and of the recomposed image). Each panel is its own small PNG in a box of fixed size,
    so a band slider re-encodes two panels and draws no figure; the recursions come from
    :func:`explored`'s cache. ``images``: {name: (low-light y, target x or None)}.

    In a notebook: ``viz.Explorer(model, images)`` as a cell's last line shows it.
    Introduced in notebooks/06_explorer.
    """

    PANEL = (300, 200)  # pixels: top-row boxes; the zoomed boxes are 240 x 240

    def __init__(self, stage1, images: dict, scale_max: float = 3.0, step: float = 0.05):
        import ipywidgets as widgets

        if not images:
            raise ValueError("Explorer needs at least one image: {name: (y, x or None)}.")
        self.stage1, self.images = stage1, dict(images)
        recursions = len(stage1.units) if hasattr(stage1, "units") else stage1.config.recursions
        self.image = widgets.Dropdown(options=list(self.images), description="image")
        self.recursion = widgets.IntSlider(value=recursions, min=1, max=recursions, description="recursion",
                                           continuous_update=False)
        self.scales = [widgets.FloatSlider(value=1.0, min=0.0, max=scale_max, step=step, description=name,
                                           continuous_update=False) for name in BANDS]
        width, height = self.PANEL
        boxes = [(width, height)] * 3 + [(240, 240)] * 3
        self.titles = [widgets.HTML() for _ in boxes]
        self.panels = [widgets.Image(format="png", layout=widgets.Layout(width=f"{w}px", height=f"{h}px",
                                                                         object_fit="contain"))
                       for w, h in boxes]
        cells = [widgets.VBox([title, panel], layout=widgets.Layout(width=f"{width + 8}px", align_items="center"))
                 for title, panel in zip(self.titles, self.panels)]
        self.widget = widgets.VBox([widgets.HBox([self.image, self.recursion]), widgets.HBox(self.scales),
                                    widgets.HBox(cells[:3]), widgets.HBox(cells[3:])])
        self.image.observe(lambda _: self.update(), "value")
        self.recursion.observe(lambda _: self.update(), "value")
        for slider in self.scales:
            slider.observe(lambda _: self.update(bands_only=True), "value")
        self.update()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    @staticmethod
    def _png(image) -> bytes:
        """An image as 8-bit PNG bytes (fast compression: these are redrawn at every move)."""
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)).save(buffer, format="png",
                                                                                 compress_level=1)
        return buffer.getvalue()

    def _image_view(self) -> dict:
        """What a band slider does not change, per image and recursion: kept until those
        change (then the weights' fingerprint is checked again, through :func:`explored`)."""
        key = (self.image.value, self.recursion.value)
        if getattr(self, "_key", None) != key:
            low, target = self.images[self.image.value]
            low = np.ascontiguousarray(to_image(low)[..., :3])
            seen = explored(self.stage1, low)
            t = self.recursion.value
            box = seen.box if target is None else zoom_box(target)
            top, left, bh, bw = box
            zoom = np.s_[top:top + bh, left:left + bw]
            estimate = seen.estimates[t - 1]
            x_hat = f"x&#770;<sup>({t})</sup><sub>full</sub>"
            titles = ["input y", f"{x_hat}, recursion {t} of {len(seen.estimates)}"]
            if target is not None:
                titles = [f"{title}<br>{_psnr(im, target):.2f} dB to x" for title, im in zip(titles, (low, estimate))]
                first_zoom, first_title = to_image(target)[zoom], "target x, zoomed"
            else:
                titles = [f"{title}<br>(no target)" for title in titles]
                first_zoom, first_title = np.ones((bh, bw, 3), np.float32), "no target x: an unpaired photo"
            self._key, self._view = key, {
                "bands": seen.bands[t - 1], "zoom": zoom, "target": target,
                "images": [low, estimate, None, first_zoom, estimate[zoom], None],
                "titles": [*titles, None, first_title, f"{x_hat}, zoomed", "recomposed, zoomed"]}
        return self._view

    def view(self) -> dict:
        """What the panels show now: {"images": six arrays, "titles": six HTML strings}."""
        fixed = self._image_view()
        scales = [slider.value for slider in self.scales]
        bands = fixed["bands"]
        recomposed = scales[0] * bands.coarse + scales[1] * bands.middle + scales[2] * bands.fine
        formula = " + ".join(f"{s:g}&middot;&Delta;&#770;<sub>{name}</sub>" for s, name in zip(scales, BANDS))
        target = fixed["target"]
        formula += f"<br>{_psnr(recomposed, target):.2f} dB to x" if target is not None else "<br>(no target)"
        images, titles = list(fixed["images"]), list(fixed["titles"])
        images[2], images[5], titles[2] = recomposed, recomposed[fixed["zoom"]], formula
        return {"images": images, "titles": titles}

    def update(self, bands_only: bool = False) -> None:
        """Redraw the panels; after a band slider only the two recomposed ones."""
        shown = self.view()
        which = (2, 5) if bands_only else range(6)
        for i in which:
            self.panels[i].value = self._png(shown["images"][i])
        for widget, title in zip(self.titles, shown["titles"]):
            widget.value = f"<div style='text-align:center; line-height:1.2'>{title}</div>"


# ---- results figures (experiments) ----
# Introduced in notebooks/04_ablations and notebooks/05_figures. Rows are the dicts that
# drbn.experiments.run_experiments returns: short-keyed scores (psnr, ssim, parameters,
# inference_ms, ...), a "variant" name, a "group" (baseline, stage 1, stage 2) and a
# thinned "history". Column titles are drbn.results labels.

GROUP_COLOURS = {"baseline": "0.55", "stage 1": "C0", "stage 2": "C1"}


METRICS = ("psnr", "ssim")  # what the results figures show by default


def plot_metrics(rows: Sequence[dict], columns: Sequence[str] | None = None, title: str | None = None) -> Figure:
    """One horizontal bar chart per metric (default full-image PSNR and SSIM), one bar per
    row in table order, coloured by group (grey baselines, blue stage 1, orange stage 2),
    each bar labelled with its value. The best value of each metric is outlined in black.
    """
    rows = list(rows)
    if not rows:
        raise ValueError("plot_metrics needs at least one result row.")
    columns = list(columns or METRICS)
    height = 0.28 * len(rows) + 1.0
    fig, axes = _figure(1, len(columns), 4.2, height=height, squeeze=False, sharey=True)
    labels = [r["variant"] for r in rows]
    y = np.arange(len(rows))[::-1]
    for ax, column in zip(axes[0], columns):
        values = np.array([float(r.get(column, np.nan)) for r in rows])
        finite = np.isfinite(values)
        colours = [GROUP_COLOURS.get(r.get("group"), "C2") for r in rows]
        bars = ax.barh(y, np.where(finite, values, 0.0), color=colours)
        if finite.any():
            low, high = np.nanmin(values[finite]), np.nanmax(values[finite])
            span = (high - low) or abs(high) or 1.0
            ax.set_xlim(max(0.0, low - 0.6 * span) if low >= 0 else low - 0.6 * span, high + 0.35 * span)
            best = int(np.nanargmax(np.where(finite, values, -np.inf)))
            bars[best].set_edgecolor("black")
            bars[best].set_linewidth(1.5)
        for yi, v in zip(y, values):
            text = results.format_value(column, v) if np.isfinite(v) else "n/a"
            ax.text(v if np.isfinite(v) else ax.get_xlim()[0], yi, f" {text}", va="center", fontsize=7)
        ax.set_title(results.label(column), fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_yticks(y)
    axes[0, 0].set_yticklabels(labels, fontsize=8)
    handles = [Patch(color=c, label=g) for g, c in GROUP_COLOURS.items() if any(r.get("group") == g for r in rows)]
    if handles:
        axes[0, -1].legend(handles=handles, fontsize=7, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_metric_lines(rows: Sequence[dict], xs: Sequence[float], xlabel: str,
                      columns: Sequence[str] | None = None, title: str | None = None) -> Figure:
    """One line chart per column (default PSNR, SSIM, parameters, inference ms) against
    ``xs`` (e.g. the number of recursions T of the rows), one marker per row."""
    rows = list(rows)
    if len(rows) != len(xs) or not rows:
        raise ValueError(f"plot_metric_lines needs one x per row, got {len(xs)} for {len(rows)} rows.")
    columns = list(columns or (*METRICS, "parameters", "inference_ms"))
    fig, axes = _figure(1, len(columns), 3.0, height=2.6, squeeze=False)
    for ax, column in zip(axes[0], columns):
        values = [float(r.get(column, np.nan)) for r in rows]
        ax.plot(xs, values, "o-", color="C0")
        for x, v in zip(xs, values):
            if np.isfinite(v):
                text = f"{v / 1000:.0f}k" if column == "parameters" else results.format_value(column, v)
                ax.annotate(text, (x, v), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=7)
        ax.set_xticks(list(xs))
        ax.set_xlabel(xlabel)
        ax.set_title(results.label(column), fontsize=9)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_training_curves(rows: Sequence[dict], title: str | None = None) -> Figure:
    """The (thinned) training loss of each row that trained, one line each: were the
    variants still improving when the budget ran out? A stage-1 loss is divided by the sum
    of its loss weights (−SSIM per supervised scale), so a single-scale loss (RBL-v1) and
    the three-scale one share one axis."""
    rows = [r for r in rows if r.get("history") and r["history"].get("loss") and not r.get("same_as")]
    fig, axes = _figure(1, 1, 5.5, height=3.2, squeeze=True)
    for i, r in enumerate(rows):
        scale = sum(r.get("settings", {}).get("loss_weights", [1.0])) or 1.0
        steps, loss = r["history"]["step"], np.asarray(r["history"]["loss"], dtype=float) / scale
        window = max(1, len(loss) // 10)
        shown = _smooth(loss, window)
        axes.plot(steps[len(steps) - len(shown):], shown, color=f"C{i % 10}", lw=1.2, label=r["variant"])
    if not rows:
        axes.text(0.5, 0.5, "no training histories", ha="center", va="center", transform=axes.transAxes)
    axes.set_xlabel("step")
    axes.set_ylabel("loss per scale (running mean)")
    axes.grid(alpha=0.3)
    if rows:
        axes.legend(fontsize=7, ncols=2)
    axes.set_title(title or "training loss per variant", fontsize=10)
    return fig


def plot_comparison(columns: dict, names: Sequence[str], ncols: int = 6, size: float = 2.1,
                    target: str | None = "ground truth") -> Figure:
    """The same test images through every method: for each image (``names``) a block of
    panels, one per entry of ``columns`` ({label: [one image per name]}), in order, wrapped
    into ``ncols`` columns. With a ``target`` entry the other panels' titles carry their
    PSNR to it (full image, 8-bit).
    """
    labels = list(columns)
    if not labels or not names:
        raise ValueError("plot_comparison needs at least one column and one image.")
    for label in labels:
        if len(columns[label]) != len(names):
            raise ValueError(f"column {label!r} has {len(columns[label])} images for {len(names)} names.")
    ncols = min(ncols, len(labels))
    block = math.ceil(len(labels) / ncols)
    first = to_image(columns[labels[0]][0])
    aspect = first.shape[0] / first.shape[1]
    fig, axes = _figure(block * len(names), ncols, size, height=size * aspect + 0.35)
    for n, name in enumerate(names):
        reference = columns[target][n] if target in columns else None
        for i, label in enumerate(labels):
            ax = axes[n * block + i // ncols, i % ncols]
            image = columns[label][n]
            heading = f"{label}" if i else f"{name}: {label}"
            if reference is not None and label != target:
                heading += f"\n{_psnr(image, reference):.2f} dB"
            _image_axes(ax, image, heading)
        for i in range(len(labels), block * ncols):
            fig.delaxes(axes[n * block + i // ncols, i % ncols])
    return fig


def plot_gamma_fit(grid: Sequence[float], scores: Sequence[float], chosen: float | None = None) -> Figure:
    """Mean PSNR of y ** gamma on the training split for each gamma of the grid search
    (``drbn.baselines.gamma_scores``), with the chosen gamma marked."""
    fig, ax = _figure(1, 1, 4.5, height=2.8, squeeze=True)
    ax.plot(grid, scores, "o-", ms=3)
    if chosen is not None:
        ax.axvline(chosen, color="C1", ls="--", label=f"chosen gamma = {chosen:g}")
        ax.legend(fontsize=8)
    ax.set_xlabel("gamma (output = y ** gamma)")
    ax.set_ylabel("mean PSNR on the training split (dB)")
    ax.grid(alpha=0.3)
    ax.set_title("gamma correction: one parameter fitted on training data", fontsize=10)
    return fig


def plot_results_table(rows: Sequence[dict], header: Sequence[str] = (), columns: Sequence[str] | None = None) -> Figure:
    """The results table as a figure (for slides and the paper-style figure set): one line
    per row, cells formatted as in ``results.md`` (``drbn.results.cell``), column labels
    from ``drbn.results.label``, the header lines above it."""
    rows = list(rows)
    columns = [c for c in (columns or results.TABLE_COLUMNS) if c != "notes"]
    labels = [results.label(c) for c in columns]
    cells = [[results.cell(r, c) for c in columns] for r in rows] or [[""] * len(columns)]
    widths = [max(len(str(v)) for v in [label, *column]) for label, column in zip(labels, zip(*cells))]
    fig = Figure(figsize=(0.085 * sum(widths) + 0.3 * len(columns), 0.24 * (len(cells) + 1) + 0.16 * len(header) + 0.2))
    ax = fig.add_axes((0, 0, 1, 1 - (0.16 * len(header) + 0.1) / fig.get_figheight()))
    ax.axis("off")
    table = Table(ax, bbox=(0, 0, 1, 1))  # cells added one by one: each gets its own alignment
    height = 1 / (len(cells) + 1)
    for c, (label, width) in enumerate(zip(labels, widths)):
        table.add_cell(0, c, width / sum(widths), height, text=label, loc="center")
        table[0, c].set_text_props(weight="bold")
        for r, row in enumerate(cells, 1):
            table.add_cell(r, c, width / sum(widths), height, text=row[c], loc="left" if c == 0 else "right")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    ax.add_table(table)
    if header:
        fig.text(0.005, 0.995, "\n".join(header), fontsize=7, va="top", ha="left")
    return fig


# ----------------------------------------------------------------------------- teaching figures
def _box(ax, x, y, w, h, text, colour, fontsize=7.5):
    """A rounded box centred at (x, y) with ``text`` inside (data units)."""
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=colour, edgecolor="0.25", lw=0.8))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, start, end, colour="0.2", text=None, ls="-", rad=0.0, text_offset=(0.0, 0.12)):
    """An arrow from ``start`` to ``end`` (data units), optionally labelled at its middle."""
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=9, color=colour, lw=1.0,
                                 linestyle=ls, connectionstyle=f"arc3,rad={rad}", shrinkA=1, shrinkB=1))
    if text:
        ax.text((start[0] + end[0]) / 2 + text_offset[0], (start[1] + end[1]) / 2 + text_offset[1], text,
                ha="center", va="center", fontsize=6.5, color=colour)


def _plus(ax, x, y, colour="white"):
    """A summing node: a small circle with a plus sign."""
    ax.add_patch(Circle((x, y), 0.14, facecolor=colour, edgecolor="0.2", lw=0.8, zorder=3))
    ax.text(x, y, "+", ha="center", va="center", fontsize=8, zorder=4)


def plot_architecture(config: DRBNConfig | None = None) -> Figure:
    """Stage 1 drawn from its configuration (default: the released model). Top, one
    band-learning unit: a U-Net over three scales (full, half, quarter) built from residual
    dense blocks (RDB), the decoder features f where the previous recursion's are added
    (f^t = Δf^t + f^(t-1)), and three heads whose outputs are added coarse to fine
    (x̂_half = head(f_half) + up2(x̂_quarter)). Bottom, the T recursions: unit t is fed
    cat(x̂^(t-1)_full, y) and the features of unit t-1; only the last unit's three outputs
    enter the loss. Variants without the recursive input or the feature residuals are drawn
    without them.

    Introduced in notebooks/02_recursive_band_learning.
    """
    config = config or DRBNConfig()
    width, growth, T = config.width, config.growth, config.recursions
    wide = 2 * width
    fig = Figure(figsize=(COLUMN_WIDTH, 5.9), dpi=NOTEBOOK_DPI, layout="constrained")
    top, bottom = fig.subplots(2, 1, height_ratios=(2.7, 1.0))
    for ax in (top, bottom):
        ax.set_axis_off()
        ax.set_aspect("equal")
    enc, dec, feat, head = "#cfe2f3", "#d9ead3", "#fff2cc", "#f4cccc"

    # one unit: one row per scale; encoder left, decoder middle, heads right
    ax = top
    ax.set_xlim(-0.6, 14.2)
    ax.set_ylim(-0.1, 5.4)
    rows = {"full": 4.3, "half": 2.4, "quarter": 0.5}
    y_full, y_half, y_quarter = rows.values()
    source = (r"cat($\hat{x}^{t-1}_{\mathrm{full}}$, y)" if config.recursive_input
              else r"cat($\hat{x}^{t-1}$, $\hat{x}^{t-1}$)")
    _box(ax, 0.35, y_full, 1.3, 0.75, f"input, 6 ch\ncat(y, y) at t = 1\n{source}", "white", fontsize=6.5)
    _box(ax, 2.0, y_full, 1.2, 0.6, f"2 × conv3x3\n+ReLU → {width}", enc)
    _box(ax, 3.6, y_full, 1.0, 0.6, f"RDB({width},{growth})", enc)
    _box(ax, 3.6, y_half, 1.0, 0.6, f"RDB({width},{growth})", enc)
    _box(ax, 5.4, y_quarter, 1.7, 0.6, f"2 × RDB({wide},{2 * growth})\n+ residual", enc)
    _arrow(ax, (1.0, y_full), (1.4, y_full))
    _arrow(ax, (2.6, y_full), (3.1, y_full))
    _arrow(ax, (3.6, y_full - 0.3), (3.6, y_half + 0.3), text="conv s2", text_offset=(0.35, 0))
    _arrow(ax, (3.6, y_half - 0.3), (4.55, y_quarter + 0.15), text=f"conv s2\n→ {wide} ch",
           text_offset=(-0.25, -0.05))
    _box(ax, 7.6, y_half, 1.0, 0.6, f"RDB({width},{growth})", dec)
    _box(ax, 7.6, y_full, 1.0, 0.6, f"RDB({width},{growth})", dec)
    _arrow(ax, (6.25, y_quarter + 0.2), (7.45, y_half - 0.3), text="deconv ×2", text_offset=(0.45, -0.05))
    _arrow(ax, (7.6, y_half + 0.3), (7.6, y_full - 0.3), text="deconv ×2", text_offset=(0.45, 0))
    _arrow(ax, (2.0, y_full + 0.3), (8.4, y_full + 0.15), colour="0.5", ls="--", rad=-0.18,
           text=r"skips: + $e_0$ + $e_{\mathrm{full}}$", text_offset=(0, 0.85))
    # e_half joins after the decoder block: f_half = e_half + RDB(up(f_quarter))
    _arrow(ax, (4.1, y_half - 0.1), (8.78, y_half - 0.1), colour="0.5", ls="--", rad=0.28,
           text=r"skip: + $e_{\mathrm{half}}$", text_offset=(-1.3, 0.0))
    for scale, y in rows.items():  # the features f, where feature residual learning adds f^(t-1)
        _plus(ax, 8.9, y, feat)
        ax.text(8.9, y - 0.32, rf"$f_{{\mathrm{{{scale}}}}}$", ha="center", va="top", fontsize=7.5)
        if config.feature_residuals:
            _arrow(ax, (8.9, y + 0.75), (8.9, y + 0.16), colour="C2")
            ax.text(9.0, y + 0.6, rf"+ $f^{{t-1}}_{{\mathrm{{{scale}}}}}$", ha="left", va="center", fontsize=7, color="C2")
    _arrow(ax, (8.1, y_full), (8.74, y_full))
    _arrow(ax, (8.1, y_half), (8.74, y_half))
    _arrow(ax, (6.25, y_quarter), (8.74, y_quarter))
    for scale, y in rows.items():  # heads, and the coarse-to-fine addition
        _box(ax, 10.5, y, 1.4, 0.55, "head: 2 × conv3x3\n→ 3 ch", head, fontsize=6.5)
        _arrow(ax, (9.05, y), (9.8, y))
        if scale != "quarter":
            _plus(ax, 11.8, y)
            _arrow(ax, (11.2, y), (11.65, y))
        size = {"full": "H × W", "half": "H/2 × W/2", "quarter": "H/4 × W/4"}[scale]
        _arrow(ax, (11.95 if scale != "quarter" else 11.2, y), (12.9, y))
        ax.text(13.0, y, rf"$\hat{{x}}_{{\mathrm{{{scale}}}}}$" + f"\n{size}", ha="left", va="center", fontsize=7.5)
        ax.text(-0.55, y - 0.55, scale, ha="left", va="center", fontsize=7, color="0.45", style="italic")
    _arrow(ax, (12.3, y_quarter + 0.05), (11.85, y_half - 0.15), colour="C3", text="up2", text_offset=(0.35, 0))
    _arrow(ax, (12.3, y_half + 0.05), (11.85, y_full - 0.15), colour="C3", text="up2", text_offset=(0.35, 0))
    ax.set_title("one recursion: a band-learning unit (U-Net), outputs added coarse to fine", fontsize=9.5)

    # the T recursions (at most five drawn)
    ax = bottom
    shown = list(range(1, T + 1)) if T <= 5 else [1, 2, None, T - 1, T]
    ax.set_xlim(-0.6, 2.6 * len(shown) + 2.2)
    ax.set_ylim(-0.3, 1.9)
    _box(ax, 0.0, 0.1, 0.9, 0.5, "y (low light)", "white")
    xs = [1.6 + 2.6 * i for i in range(len(shown))]
    for i, (x, t) in enumerate(zip(xs, shown)):
        if t is None:
            ax.text(x, 1.1, "…", ha="center", va="center", fontsize=14)
            continue
        _box(ax, x, 1.1, 1.4, 0.7, f"unit t = {t}\n(own weights)", enc)
        if t == 1 or config.recursive_input:
            _arrow(ax, (x - 0.4, 0.1), (x - 0.4, 0.75), colour="0.35")
        if i + 1 < len(shown):
            end = xs[i + 1] - (0.7 if shown[i + 1] else 0.25)
            start = x + 0.7 if t is not None else x + 0.25
            _arrow(ax, (start, 1.25), (end, 1.25), text=r"$\hat{x}^t_{\mathrm{full}}$", text_offset=(0, 0.17))
            if config.feature_residuals:
                _arrow(ax, (start, 0.95), (end, 0.95), colour="C2", text="$f^t$", text_offset=(0, -0.19))
    for i, (x, t) in enumerate(zip(xs, shown)):  # arrows out of the "…" column
        if t is None and i + 1 < len(shown):
            _arrow(ax, (x + 0.25, 1.25), (xs[i + 1] - 0.7, 1.25))
            if config.feature_residuals:
                _arrow(ax, (x + 0.25, 0.95), (xs[i + 1] - 0.7, 0.95), colour="C2")
    ax.plot([0.45, (xs[-1] if config.recursive_input else xs[0]) - 0.4], [0.1, 0.1], color="0.35", lw=1.0)
    _box(ax, xs[-1] + 2.0, 1.1, 1.5, 0.9,
         r"loss on unit T only:" "\n" r"$-$SSIM($\hat{x}_{\mathrm{full}}$, x)" "\n" r"$-$SSIM($\hat{x}_{\mathrm{half}}$, x$\downarrow$2)"
         "\n" r"$-$SSIM($\hat{x}_{\mathrm{quarter}}$, x$\downarrow$4)", head, fontsize=6.5)
    _arrow(ax, (xs[-1] + 0.7, 1.1), (xs[-1] + 1.25, 1.1))
    ax.set_title(f"T = {T} recursions: unit t > 1 sees {source}"
                 + (" and adds the features $f^{t-1}$ of unit t-1" if config.feature_residuals else ""),
                 fontsize=9.5)
    return fig


def plot_negated_optimum(target, amplitudes: Sequence[float] | None = None) -> Figure:
    """Why -SSIM has a second optimum near a channel's negated image. Left: SSIM(t·x_c, x_c)
    for each RGB channel c of the target x and amplitudes t (default 61 values in
    [-1.5, 1.5]), each curve's minimum over t < 0 marked: along this line, the boundary
    between the slope towards +x and the basin around -x. Right: at t = -1 (green channel)
    the luminance term l = (2 μ_a μ_b + C1) / (μ_a² + μ_b² + C1), the contrast-structure
    term cs = (2 σ_ab + C2) / (σ_a² + σ_b² + C2) and their product, the SSIM map: both terms
    are negative, and the product positive, only where 2μ² > C1 and 2σ² > C2.

    For an output a = t·x the window statistics follow from x's own: μ_a = t μ,
    σ_a² = t² σ², σ_ab = t σ², so every t costs no further filtering (the same window and
    constants as ``drbn.losses.ssim_map``).

    Introduced in notebooks/02_recursive_band_learning.
    """
    x = torch.as_tensor(to_image(target), dtype=torch.float64).permute(2, 0, 1)[None].clamp(0, 1)
    ts = np.linspace(-1.5, 1.5, 61) if amplitudes is None else np.asarray(amplitudes, dtype=float)
    window = gaussian_window().to(x.dtype).expand(3, 1, -1, -1)
    blur = lambda t: torch.nn.functional.conv2d(t, window, padding=window.shape[-1] // 2, groups=3)  # noqa: E731
    mu = blur(x)
    mu2, var = mu**2, blur(x * x) - mu**2
    c1, c2 = 0.01**2, 0.03**2  # data range 1

    def terms(t: float) -> tuple[torch.Tensor, torch.Tensor]:
        luminance = (2 * t * mu2 + c1) / ((t * t + 1) * mu2 + c1)
        contrast_structure = (2 * t * var + c2) / ((t * t + 1) * var + c2)
        return luminance, contrast_structure

    curves = np.array([(lambda l, cs: (l * cs).mean((0, 2, 3)).numpy())(*terms(t)) for t in ts])
    fig = Figure(figsize=(COLUMN_WIDTH, 6.2), dpi=NOTEBOOK_DPI, layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=(1.0, 1.1))
    axes = [top.subplots(1, 1), *bottom.subplots(1, 3)]
    ax = axes[0]
    for c, colour in enumerate(("red", "green", "blue")):
        ax.plot(ts, curves[:, c], color=colour, lw=1.2, label="RGB"[c])
        if (ts < 0).any():
            low = int(np.argmin(np.where(ts < 0, curves[:, c], np.inf)))
            ax.plot(ts[low], curves[low, c], "v", color=colour, ms=5)
    ax.axhline(0, color="0.5", lw=0.6)
    ax.axvline(-1, color="0.5", lw=0.6, ls=":")
    ax.set_xlabel("amplitude t of the output t·x")
    ax.set_ylabel("SSIM(t·x, x)")
    ax.set_title("SSIM along the line t·x\n(▼ lowest point for t < 0)", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    luminance, contrast_structure = (m[0, 1].numpy() for m in terms(-1.0))
    image = None
    for ax, m, name in ((axes[1], luminance, "luminance $l$"), (axes[2], contrast_structure, "contrast-structure $cs$"),
                        (axes[3], luminance * contrast_structure, r"SSIM map $l \cdot cs$")):
        image = ax.imshow(m, cmap="RdBu", vmin=-1, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{name}\nmean {float(m.mean()):+.3f}", fontsize=9)
    bottom.suptitle("the green channel at $t = -1$", fontsize=9)
    bottom.colorbar(image, ax=list(axes[1:]), shrink=0.8, label="< 0 red, > 0 blue")
    return fig


# ----------------------------------------------------------------------------- teaser
def zoom_box(image, fraction: float = 0.3) -> tuple[int, int, int, int]:
    """A square box ``(top, left, height, width)`` with sides ``fraction`` of the shorter side,
    placed where ``image`` (best: the target) has the most detail (largest mean gradient
    magnitude): where noise, blur and colour errors show when zoomed in.

    Introduced in notebooks/05_figures.
    """
    gray = np.clip(to_image(image), 0, 1).mean(-1)
    h, w = gray.shape
    side = max(8, int(round(fraction * min(h, w))))
    side = min(side, h, w)
    energy = np.zeros_like(gray)
    energy[:-1, :] += np.abs(np.diff(gray, axis=0))
    energy[:, :-1] += np.abs(np.diff(gray, axis=1))
    total = np.pad(energy, ((1, 0), (1, 0))).cumsum(0).cumsum(1)  # summed-area table
    stride = max(1, side // 4)
    best, box = -1.0, (0, 0, side, side)
    for top in range(0, h - side + 1, stride):
        for left in range(0, w - side + 1, stride):
            s = (total[top + side, left + side] - total[top, left + side]
                 - total[top + side, left] + total[top, left])
            if s > best:
                best, box = s, (top, left, side, side)
    return box


def plot_teaser(columns: dict, box: tuple[int, int, int, int] | None = None, target: str | None = "ground truth",
                ncols: int | None = None, size: float = 2.2, title: str | None = None) -> Figure:
    """The paper-style teaser of one image: every method's output (``columns``: {label:
    image}, in order) with the zoom ``box`` outlined, and below each the zoomed crop. With a
    ``target`` entry the titles carry each output's PSNR to it (full image, 8-bit). ``box``
    None picks :func:`zoom_box` of the target (else of the last column). More than ``ncols``
    methods wrap onto further pairs of rows.

    Introduced in notebooks/05_figures.
    """
    from matplotlib.patches import Rectangle

    labels = list(columns)
    if not labels:
        raise ValueError("plot_teaser needs at least one image.")
    reference = columns[target] if target in columns else None
    if box is None:
        box = zoom_box(reference if reference is not None else columns[labels[-1]])
    top, left, bh, bw = box
    ncols = min(ncols or len(labels), len(labels))
    blocks = math.ceil(len(labels) / ncols)
    first = to_image(columns[labels[0]])
    aspect = first.shape[0] / first.shape[1]
    size = min(size, COLUMN_WIDTH / ncols)
    heights = [size * aspect + 0.35, size * bh / bw + 0.1] * blocks
    fig = Figure(figsize=(size * ncols, sum(heights)), dpi=NOTEBOOK_DPI, layout="constrained")
    axes = fig.subplots(2 * blocks, ncols, squeeze=False, gridspec_kw={"height_ratios": heights})
    for i, name in enumerate(labels):
        image = to_image(columns[name])
        if image.shape[:2] != first.shape[:2]:
            raise ValueError(f"column {name!r} is {image.shape[:2]}, the first is {first.shape[:2]}: one image size.")
        heading = name
        if reference is not None and name != target:
            heading += f"\n{_psnr(image, reference):.2f} dB"
        row, col = 2 * (i // ncols), i % ncols
        _image_axes(axes[row, col], image, heading)
        axes[row, col].add_patch(Rectangle((left - 0.5, top - 0.5), bw, bh, fill=False, edgecolor="yellow", lw=1.2))
        _image_axes(axes[row + 1, col], image[top:top + bh, left:left + bw])
    for i in range(len(labels), blocks * ncols):
        row, col = 2 * (i // ncols), i % ncols
        fig.delaxes(axes[row, col])
        fig.delaxes(axes[row + 1, col])
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


# ----------------------------------------------------------------------------- quality against compute
def plot_quality_vs_compute(points: Sequence[dict], reference: dict | None = None,
                            budget_step: int | None = None, title: str | None = None) -> Figure:
    """PSNR and SSIM of a long run's snapshots against training steps (drbn.curve), on the
    validation pairs and on the test split, with ``reference`` scores on the test split
    (e.g. ``{"label": "released weights", "psnr": .., "ssim": ..}``) as a dashed line and
    ``budget_step`` (e.g. the `cpu` preset's 1200 steps) as a dotted vertical line. The top
    axis gives the training minutes at the run's mean pace."""
    points = sorted(points, key=lambda p: p["step"])
    if not points:
        raise ValueError("plot_quality_vs_compute needs at least one point.")
    steps = np.array([p["step"] for p in points], dtype=float)
    minutes = np.array([p["train_seconds"] / 60 for p in points])
    fig, axes = _figure(1, 2, 4.2, height=3.0, squeeze=False)
    for ax, key, name in zip(axes[0], ("psnr", "ssim"), ("PSNR (dB)", "SSIM")):
        ax.plot(steps, [p[f"val_{key}"] for p in points], "o-", ms=3, color="C0", label="validation pairs")
        ax.plot(steps, [p[f"test_{key}"] for p in points], "s-", ms=3, color="C1", label="test split (eval15)")
        if reference and reference.get(key) is not None:
            ax.axhline(reference[key], color="0.3", ls="--", lw=1, label=f"{reference.get('label', 'reference')} (test)")
        if budget_step:
            ax.axvline(budget_step, color="0.5", ls=":", lw=1, label=f"`cpu` preset budget ({budget_step} steps)")
        ax.set_xlim(0, steps[-1] * 1.04)
        ax.set_xlabel("training steps (4 crops of 128² each)")
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
        per_step = minutes[-1] / steps[-1]  # the run's mean pace: the top axis is the bottom one rescaled
        top = ax.secondary_xaxis("top", functions=(lambda s: s * per_step, lambda m: m / per_step))
        top.set_xlabel("training minutes", fontsize=8)
        top.tick_params(labelsize=7)
    axes[0, 1].legend(fontsize=7, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_ladder(rungs: Sequence[tuple[float, Sequence[dict]]], variants: Sequence[str],
                columns: Sequence[str] = METRICS, title: str | None = None) -> Figure:
    """Each variant's test score against the training budget of the ladder (drbn.ladder):
    ``rungs`` is ``[(budget multiple, result rows), ...]``; a marker per rung at the mean
    over seeds with an error bar of one sample standard deviation (none for one seed)."""
    fig, axes = _figure(1, len(columns), 4.2, height=3.0, squeeze=False)
    for ax, column in zip(axes[0], columns):
        for i, name in enumerate(variants):
            xs, ys, errs = [], [], []
            for budget, rows in rungs:
                row = next((r for r in rows if r["variant"] == name and r.get(column) is not None), None)
                if row is not None:
                    xs.append(budget * (1 + 0.04 * (i - len(variants) / 2)))  # side by side, not on top
                    ys.append(float(row[column]))
                    errs.append(float(row.get(column + results.STD) or 0.0))
            if xs:
                ax.errorbar(xs, ys, yerr=errs, fmt="o-", ms=4, capsize=3, color=f"C{i}", label=name)
        ax.set_xscale("log")
        ax.minorticks_off()  # only the rungs are labelled
        budgets = [b for b, _ in rungs]
        ax.set_xticks(budgets, [f"{b:g}x" for b in budgets])
        ax.set_xlabel("budget (x the cpu-ablation steps)")
        ax.set_title(results.label(column), fontsize=9)
        ax.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


# ----------------------------------------------------------------------------- the semi-supervised picture
def plot_semi_supervised() -> Figure:
    """Which data each stage sees: **paired** LOL (a low-light y with its target x) trains
    stage 1 and gives stage 2 its fidelity terms (−SSIM and the perceptual loss against x);
    **unpaired** low-light photos (no target) and unpaired high-quality photos meet only in
    the adversarial term, through the quality discriminator D. Stage 1 is frozen in stage 2,
    so what the unpaired half can change is only how its three bands are weighted
    (x̂_F = w1 ⊙ Δ̂_s1 + w2 ⊙ Δ̂_s2 + w3 ⊙ Δ̂_s3): the **semi-supervised** bridge.

    Introduced in notebooks/03_band_recomposition.
    """
    fig = Figure(figsize=(9.5, 4.4), layout="constrained")
    ax = fig.subplots()
    ax.set_axis_off()
    ax.set_xlim(-0.2, 12.6)
    ax.set_ylim(-0.35, 5.75)
    paired, unpaired, model, loss = "#cfe2f3", "#fce5cd", "#d9ead3", "#f4cccc"
    _box(ax, 1.25, 4.3, 2.5, 1.0, "PAIRED: LOL\nlow-light y with its\nnormal-light target x", paired)
    _box(ax, 1.25, 2.3, 2.5, 1.0, "UNPAIRED low-light photos y′\n(no target; DICM, LIME:\ntrain part only)", unpaired)
    _box(ax, 1.25, 0.4, 2.5, 0.9, "UNPAIRED high-quality photos\n(Kodak24 for AVA; train part)", unpaired)
    _box(ax, 4.6, 4.3, 2.2, 1.0, "stage 1: DRBN\ntrained on pairs: −SSIM\n(frozen in stage 2)", model)
    _box(ax, 4.6, 2.3, 2.0, 0.8, "bands Δ̂_s1, Δ̂_s2, Δ̂_s3\n(fixed by stage 1)", "white")
    _box(ax, 7.6, 2.3, 2.3, 1.0, "recomposer (stage 2)\nx̂_F = Σ wᵢ ⊙ Δ̂ᵢ\nonly the weights learn", model)
    _box(ax, 7.6, 0.4, 2.3, 0.9, "quality discriminator D\nreal: x, HQ photos\nfake: x̂_F of y′", model)
    _box(ax, 11.0, 4.3, 2.8, 1.0, "fidelity (paired):\n−SSIM(x̂_F, x) + perceptual\nstage 1 alone: −SSIM(x̂, x)", loss)
    _box(ax, 11.0, 0.4, 2.8, 0.9, "quality (unpaired):\nλ_adv · (D(x̂_F of y′) − 1)²", loss)
    _arrow(ax, (2.5, 4.3), (3.5, 4.3), text="y")
    _arrow(ax, (2.5, 2.45), (3.5, 4.0), text="y′", ls="--", text_offset=(-0.15, 0.1))
    _arrow(ax, (4.6, 3.8), (4.6, 2.7))
    _arrow(ax, (5.6, 2.3), (6.45, 2.3))
    _arrow(ax, (8.75, 2.6), (9.6, 4.0), text="x̂_F of y", text_offset=(-0.35, 0.1))
    _arrow(ax, (1.25, 4.8), (11.0, 4.8), text="target x (paired only)", rad=-0.08, text_offset=(0.0, 0.42))
    _arrow(ax, (7.6, 1.8), (7.6, 0.85), text="x̂_F of y′", ls="--", text_offset=(0.5, 0.0))
    _arrow(ax, (2.5, 0.4), (6.45, 0.4), text="real", ls="--")
    _arrow(ax, (8.75, 0.4), (9.6, 0.4), ls="--")
    ax.text(6.0, -0.3, "solid: paired data (supervised)   dashed: unpaired data (adversarial)   "
            "semi-supervised = both", ha="center", va="center", fontsize=7, color="0.3")
    return fig
