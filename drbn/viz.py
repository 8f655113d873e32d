"""Figures: pure functions that take images or results and return a Figure; introduced in notebooks/01_low_light_data.

Each function builds a ``matplotlib.figure.Figure`` directly (no pyplot state, safe under
the Agg backend). A notebook calls it once, saves it with :func:`save_figure` under
``OUT/figures`` and shows it inline; ``ipywidgets.interact`` only ever wraps the same call.

Images may be given as torch tensors (3 x H x W or 1 x 3 x H x W) or numpy arrays
(H x W x 3, float in [0, 1] or uint8). Float images are clamped to [0, 1] for display only;
signed bands are drawn around mid-grey.

Band naming as in ``drbn.model``: ``full`` is the paper's x̂_s3, ``half`` x̂_s2, ``quarter``
x̂_s1; the Δ-bands of ``drbn.recompose`` are ``coarse`` (Δ̂_s1), ``middle`` (Δ̂_s2) and
``fine`` (Δ̂_s3).

Results rows are keyed by short names (``psnr``, ``ssim``, ...); a figure shows their
labels from ``drbn.results`` (``label``, ``format_value``) and never reads a label back.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.table import Table
from torchvision.utils import make_grid

from . import results
from .discriminator import sorted_channels
from .enhance import pad_to_multiple
from .images import to_image
from .metrics import psnr as metrics_psnr
from .recompose import decompose

DPI = 110
BAND_NAMES = ("coarse Δ̂_s1 = up4(x̂_s1)", "middle Δ̂_s2", "fine Δ̂_s3")


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
    fig = Figure(figsize=(size * ncols, (height or size) * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=squeeze, **kwargs)
    return fig, axes


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
    path = Path(out) / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


# ----------------------------------------------------------------------------- images
def show_images(images: Sequence, titles: Sequence[str] | None = None, ncols: int | None = None,
                size: float = 2.6, suptitle: str | None = None) -> Figure:
    """A row (or grid of ``ncols`` columns) of images, clamped to [0, 1]: y, x̂, x side by side.

    One axes per image; the grid's unused cells are removed. Used in every notebook.
    """
    images = list(images)
    if not images:
        raise ValueError("show_images needs at least one image.")
    ncols = min(ncols or len(images), len(images))
    nrows = math.ceil(len(images) / ncols)
    fig, axes = _figure(nrows, ncols, size)
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
    ax.margins(x=0.08, y=0.15)  # room for the labels
    ax.set_ylabel("PSNR (dB)")
    ax.set_title("validation PSNR (labels: SSIM)", fontsize=10)
    ax.grid(alpha=0.3)

    if stage2:
        ax = axes[2]
        for key in STAGE2_TERMS:
            values = history.get(key, [])
            if len(values):
                ax.plot(history["step"][: len(values)], values, lw=1, label=key.removeprefix("loss_"))
        ax.set_xlabel("step")
        ax.set_title("stage-2 loss terms", fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


# ----------------------------------------------------------------------------- low light
def plot_darkening_steps(darkening, original=None, stretch: bool = True) -> Figure:
    """The camera model of ``drbn.synthetic.darken_steps`` one step per column, from the
    normal-light x to the low-light input y (linear, exposed k·L, noisy, cast g_c, gamma,
    quantised). With ``stretch`` a second row shows each step brightened to full range, so
    the noise and the colour cast that the dark originals hide become visible.

    Introduced in notebooks/01_low_light_data.
    """
    steps = list(darkening.steps())
    if original is not None:
        steps = [("original x", original)] + steps
    nrows = 2 if stretch else 1
    fig, axes = _figure(nrows, len(steps), 2.3)
    for i, (name, image) in enumerate(steps):
        array = np.clip(to_image(image), 0, 1)
        label = {"exposed": f"exposed (k = {darkening.exposure:.3f})",
                 "noisy": f"noisy (p = {darkening.photons:.0f} e⁻, r = {darkening.read_noise:.1f} e⁻)",
                 "cast": "cast (g = " + ", ".join(f"{g:.2f}" for g in darkening.gains) + ")",
                 }.get(name, name)
        _image_axes(axes[0, i], array, f"{i}. {label}" if original is None or i else label)
        if stretch:
            top = float(np.percentile(array, 99.5)) or 1.0
            _image_axes(axes[1, i], array / top, f"× {1 / top:.1f} to see")
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


# ----------------------------------------------------------------------------- stage 1
def plot_recursions(outputs_per_t: Sequence, target=None, low=None) -> Figure:
    """The full-scale estimate x̂^t_s3 of every recursion t = 1..T (``DRBN.recursions``),
    optionally after the input y and before the target x, with the PSNR to x in the titles.
    Items may be ``BandOutputs`` (their ``full`` is shown) or images.

    Introduced in notebooks/02_recursive_band_learning.
    """
    images = [getattr(o, "full", o) for o in outputs_per_t]
    titles = []
    for t, image in enumerate(images, 1):
        title = f"t = {t}: x̂^{t}"
        if target is not None:
            title += f"\n{_psnr(image, target):.2f} dB"
        titles.append(title)
    if low is not None:
        images.insert(0, low)
        titles.insert(0, "input y" + (f"\n{_psnr(low, target):.2f} dB" if target is not None else ""))
    if target is not None:
        images.append(target)
        titles.append("target x")
    return show_images(images, titles, suptitle="one estimate per recursion")


def plot_bands(bands, output=None, gain: float | None = None) -> Figure:
    """The three Δ-bands of ``drbn.recompose.decompose`` and their sum.

    coarse Δ̂_s1 = up4(x̂_s1) is an image; middle Δ̂_s2 and fine Δ̂_s3 are signed details,
    drawn around mid-grey (grey = 0) with the gain in the title. The sum
    Δ̂_s1 + Δ̂_s2 + Δ̂_s3 is x̂_s3; with ``output`` (x̂_s3 itself) it is shown beside, with the
    largest difference.

    Introduced in notebooks/03_band_recomposition.
    """
    coarse, middle, fine = (to_image(b) for b in bands)
    total = coarse + middle + fine
    ncols = 5 if output is not None else 4
    fig, axes = _figure(1, ncols, 2.6)
    axes = axes[0]
    _image_axes(axes[0], coarse, BAND_NAMES[0])
    for ax, band, name in ((axes[1], middle, BAND_NAMES[1]), (axes[2], fine, BAND_NAMES[2])):
        shown, used = signed_for_display(band, gain)
        _image_axes(ax, shown, f"{name}\n(grey = 0, × {used:.1f})")
    _image_axes(axes[3], total, "sum Δ̂_s1 + Δ̂_s2 + Δ̂_s3")
    if output is not None:
        difference = float(np.abs(total - to_image(output)).max())
        _image_axes(axes[4], output, f"x̂_s3 (max |diff| {difference:.1e})")
    return fig


# ----------------------------------------------------------------------------- stage 2
def plot_weight_maps(w1, w2, w3, limit: float | None = None, title: str | None = None) -> Figure:
    """The recomposition weights w1, w2, w3 (x̂_F = w1 Δ̂_s1 + w2 Δ̂_s2 + w3 Δ̂_s3), averaged
    over RGB, on a diverging map centred at 1 (= keep the band as it is), and a histogram
    of all their values (per pixel and channel). Axes: three maps, a colour bar, the histogram.

    Introduced in notebooks/03_band_recomposition.
    """
    maps = [to_image(w) for w in (w1, w2, w3)]
    if limit is None:
        limit = max(float(np.percentile(np.abs(m - 1.0), 99.5)) for m in maps) or 0.1
    fig, axes = _figure(1, 4, 2.8, height=2.6)
    axes = axes[0]
    image = None
    for ax, m, name in zip(axes, maps, ("w1 (coarse)", "w2 (middle)", "w3 (fine)")):
        image = ax.imshow(m.mean(-1), cmap="RdBu_r", vmin=1 - limit, vmax=1 + limit)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{name}: mean {m.mean():.3f}", fontsize=9)
    fig.colorbar(image, ax=list(axes[:3]), shrink=0.8, label="weight (1 = unchanged)")
    ax = axes[3]
    low = min(float(m.min()) for m in maps)
    high = max(float(m.max()) for m in maps)
    if high - low < 1e-6:
        low, high = low - 0.05, high + 0.05
    for i, (m, name) in enumerate(zip(maps, ("w1", "w2", "w3"))):
        ax.hist(m.ravel(), bins=60, range=(low, high), histtype="step", color=f"C{i}", label=name,
                density=True)
    ax.axvline(1.0, color="0.5", lw=0.8, ls="--")
    ax.set_xlabel("weight")
    ax.set_title("all values", fontsize=9)
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
def _recursions(stage1, image) -> tuple[list, int, int]:
    """``stage1.recursions`` on one H x W x 3 image padded to a multiple of 4, with H and W
    to crop back to (the model's train/eval mode is left as it was)."""
    array = np.ascontiguousarray(to_image(image)[..., :3], dtype=np.float32)
    y = pad_to_multiple(torch.from_numpy(array).permute(2, 0, 1)[None])
    was_training = stage1.training
    stage1.eval()
    with torch.no_grad():
        outputs = stage1.recursions(y)
    stage1.train(was_training)
    return outputs, *array.shape[:2]


def explore(stage1, image, recursion: int | None = None,
            band_scales: tuple[float, float, float] = (1.0, 1.0, 1.0), target=None) -> Figure:
    """The explorer's view: the low-light y, the full-scale estimate x̂^t_s3 of recursion t
    (``None`` = the last, T), and the image recomposed from that recursion's bands with
    each band scaled by hand, s1 Δ̂_s1 + s2 Δ̂_s2 + s3 Δ̂_s3, the recomposer's job done
    by hand with one weight per band. With ``target`` x also shown, with PSNRs.

    Introduced in notebooks/06_explorer, which wraps it in ``ipywidgets.interact``.
    """
    outputs, h, w = _recursions(stage1, image)
    t = len(outputs) if recursion is None else int(recursion)
    if not 1 <= t <= len(outputs):
        raise ValueError(f"recursion must be in 1..{len(outputs)}, got {recursion}.")
    chosen = outputs[t - 1]
    bands = decompose(chosen)
    s1, s2, s3 = (float(s) for s in band_scales)
    recomposed = s1 * bands.coarse + s2 * bands.middle + s3 * bands.fine
    images = [image, chosen.full[..., :h, :w], recomposed[..., :h, :w]]
    titles = ["input y", f"x̂^{t}_s3 (recursion {t} of {len(outputs)})",
              f"{s1:g}·Δ̂_s1 + {s2:g}·Δ̂_s2 + {s3:g}·Δ̂_s3"]
    if target is not None:
        titles = [f"{title}\n{_psnr(im, target):.2f} dB" for title, im in zip(titles, images)]
        images.append(target)
        titles.append("target x")
    return show_images(images, titles, size=3.2)


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
