"""The figure functions of drbn.viz on tiny inputs: each returns a Figure with the expected
panels, and save_figure writes a PNG that reads back."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from drbn import viz
from drbn.results import label
from drbn.model import DRBN, DRBNConfig
from drbn.recompose import decompose
from drbn.synthetic import darken_steps
from drbn.train import new_history


@pytest.fixture(scope="module")
def tiny_model() -> DRBN:
    torch.manual_seed(0)
    return DRBN(DRBNConfig(recursions=2, width=4, growth=2)).eval()


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).random((16, 20, 3), dtype=np.float32)


def n_axes(fig: Figure) -> int:
    assert isinstance(fig, Figure)
    return len(fig.axes)


def test_show_images_one_axes_per_image(image):
    assert n_axes(viz.show_images([image, image * 2, torch.rand(3, 8, 8)], ["a", "b", "c"])) == 3
    assert n_axes(viz.show_images([image] * 5, ncols=2)) == 5  # empty grid cells are removed


def test_show_images_clamps_for_display(image):
    fig = viz.show_images([image * 3 - 1])
    shown = fig.axes[0].images[0].get_array()
    assert shown.min() >= 0 and shown.max() <= 1


def test_plot_batch():
    assert n_axes(viz.plot_batch(torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8))) == 2


def test_plot_history_stage1_and_stage2():
    history = new_history()
    history.update(step=[1, 2, 3, 4], loss=[-1.0, -1.5, -1.8, -2.0], eval_step=[2, 4],
                   psnr=[10.0, 12.0], ssim=[0.3, 0.4])
    assert n_axes(viz.plot_history(history, "stage 1")) == 2
    history.update(loss_d=[0.5] * 4, loss_adv=[0.4] * 4, loss_perceptual=[0.0] * 4, loss_ssim=[-0.5] * 4)
    assert n_axes(viz.plot_history(history)) == 3
    assert n_axes(viz.plot_history(new_history())) == 2  # an empty run still draws


def panels(fig: Figure) -> int:
    """Axes that show an image."""
    return sum(bool(ax.images) for ax in fig.axes)


def test_plot_darkening_steps(image):
    darkening = darken_steps(image, np.random.default_rng(0))
    fig = viz.plot_darkening_steps(darkening)
    assert panels(fig) == 12  # six steps, each with its box zoomed and brightened below it
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "1. linear $L = I^{2.2}$" and titles[4].startswith("box, ×")
    assert panels(viz.plot_darkening_steps(darkening, original=image, stretch=False)) == 7


def test_plot_histograms_and_noise_model(image):
    assert n_axes(viz.plot_histograms(image * 0.1, image)) == 2
    big = np.random.default_rng(1).random((64, 64, 3), dtype=np.float32)
    assert n_axes(viz.plot_noise_model(darken_steps(big, np.random.default_rng(0)))) == 2


def test_plot_bands_sum_and_output(tiny_model):
    outputs = tiny_model(torch.rand(1, 3, 16, 16))
    bands = decompose(outputs)
    assert n_axes(viz.plot_bands(bands)) == 5  # three bands, their sum, the fine band zoomed
    fig = viz.plot_bands(bands, output=outputs.full)
    assert n_axes(fig) == 6
    assert "e-0" in fig.axes[4].get_title() or "0.0e+00" in fig.axes[4].get_title()


def test_signed_bands_are_centred_on_grey():
    shown, gain = viz.signed_for_display(np.zeros((4, 4, 3)))
    np.testing.assert_allclose(shown, 0.5)
    shown, gain = viz.signed_for_display(np.full((4, 4, 3), -0.1), gain=2.0)
    np.testing.assert_allclose(shown, 0.3)


def test_plot_recursions(tiny_model):
    y = torch.rand(1, 3, 16, 16)
    outputs = tiny_model.recursions(y)
    assert n_axes(viz.plot_recursions(outputs)) == 2
    fig = viz.plot_recursions(outputs, target=torch.rand(1, 3, 16, 16), low=y)
    assert n_axes(fig) == 4
    assert fig.axes[2].get_title().startswith(r"$\hat{x}^{(2)}_{\mathrm{full}}$: recursion 2 of 2")


def test_plot_weight_maps():
    w = [torch.rand(1, 3, 8, 8) + 0.5 for _ in range(3)]
    assert n_axes(viz.plot_weight_maps(*w)) == 5  # three maps, a colour bar, a histogram
    assert n_axes(viz.plot_weight_maps(*[torch.ones(1, 3, 8, 8)] * 3, title="flat")) == 5


def test_plot_sorted_channels(image):
    fig = viz.plot_sorted_channels(image)
    assert n_axes(fig) == 4
    lo, med, hi = (ax.images[0].get_array() for ax in fig.axes[1:])
    assert np.all(lo <= med) and np.all(med <= hi)


def test_explore(tiny_model, image):
    # top: y, the estimate, the recomposed image; bottom: the zoomed box (target or a note, estimate, recomposed)
    assert n_axes(viz.explore(tiny_model, image)) == 6  # 16 x 20 is padded and cropped back
    fig = viz.explore(tiny_model, image[:15, :18], recursion=1, band_scales=(1, 0, 2), target=image[:15, :18])
    assert n_axes(fig) == 6
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[2].startswith(r"$1\,\hat{\Delta}_{\mathrm{coarse}} + 0\,\hat{\Delta}_{\mathrm{middle}}")
    assert all("dB to x" in title for title in titles[:3]) and titles[3] == "target x, zoomed"
    assert not any("s1" in title or "s3" in title for title in titles)
    with pytest.raises(ValueError, match="recursion"):
        viz.explore(tiny_model, image, recursion=3)


def test_explore_unit_scales_give_the_recursion_output(tiny_model, image):
    fig = viz.explore(tiny_model, image, recursion=2)
    estimate, recomposed = (ax.images[0].get_array() for ax in fig.axes[1:3])
    np.testing.assert_allclose(recomposed, estimate, atol=1e-5)
    with torch.no_grad():
        expected = tiny_model.recursions(torch.from_numpy(image).permute(2, 0, 1)[None])[1].full
    np.testing.assert_allclose(estimate, np.clip(expected[0].permute(1, 2, 0).numpy(), 0, 1), atol=1e-6)


def test_explore_runs_the_network_once_per_image_and_weights(image):
    """A band scale or another recursion is taken from the cache; a new image or new weights are not."""
    torch.manual_seed(0)
    model = DRBN(DRBNConfig(recursions=2, width=4, growth=2)).eval()
    calls = []
    recursions = model.recursions
    model.recursions = lambda y: calls.append(y.shape) or recursions(y)
    viz.explore(model, image)
    for scales in ((1, 0, 2), (0.5, 1.5, 0.0)):
        viz.explore(model, image, recursion=1, band_scales=scales, target=image)
    assert len(calls) == 1
    viz.explore(model, image[:12])
    assert len(calls) == 2
    viz.explore(model, image.copy())  # equal contents: the same entry
    assert len(calls) == 2
    with torch.no_grad():
        next(model.parameters()).add_(0.1)  # a training step changes the weights in place
    viz.explore(model, image)
    assert len(calls) == 3
    assert model.training is False
    for i in range(viz.EXPLORER_CACHE_SIZE + 1):  # bounded: the oldest image is dropped
        viz.explore(model, image + i / 100)
    assert len(viz._explored[model]) == viz.EXPLORER_CACHE_SIZE


def test_explore_is_one_size_for_every_image(tiny_model, image):
    """As the notebook shows it (bbox_inches="tight"): paired or not, landscape or portrait."""
    from IPython.core.pylabtools import print_figure

    sizes = set()
    for low, target in ((image, image), (image, None), (image[:, :12], None), (np.ones((16, 16, 3)) * 0.5, None)):
        png = print_figure(viz.explore(tiny_model, low, target=target), "png")
        with Image.open(io.BytesIO(png)) as shown:
            sizes.add(shown.size)
    assert len(sizes) == 1
    width = sizes.pop()[0]
    assert width <= 960, width  # JupyterLab's column at 100% zoom


def test_figures_fit_a_notebook_column(tiny_model, image):
    """Shown as the notebook shows them (bbox_inches="tight"), the figures are at most about
    950 pixels wide (JupyterLab's column at 100% zoom), and no title numbers the bands s1..s3."""
    from IPython.core.pylabtools import print_figure

    outputs = tiny_model(torch.rand(1, 3, 16, 20))
    history = new_history()
    history.update(step=[1, 2], loss=[-1.0, -1.5], eval_step=[2], psnr=[10.0], ssim=[0.3], loss_d=[0.5, 0.4])
    figures = {
        "show_images": viz.show_images([image] * 5),
        "darkening": viz.plot_darkening_steps(darken_steps(image, np.random.default_rng(0)), original=image),
        "recursions": viz.plot_recursions(tiny_model.recursions(torch.rand(1, 3, 16, 20)), target=image, low=image),
        "bands": viz.plot_bands(decompose(outputs), output=outputs.full),
        "weights": viz.plot_weight_maps(*[torch.rand(1, 3, 16, 20) + 0.5] * 3),
        "sorted": viz.plot_sorted_channels(image),
        "history": viz.plot_history(history),
        "explore": viz.explore(tiny_model, image, target=image),
        "metric_lines": viz.plot_metric_lines(result_rows()[1:3], [1, 4], "T"),
        "comparison": viz.plot_comparison({"a": [image], "b": [image], "c": [image], "ground truth": [image]},
                                          ["one"], ncols=6),
        "teaser": viz.plot_teaser({f"m{i}": image for i in range(6)} | {"ground truth": image}, ncols=7),
    }
    for name, fig in figures.items():
        with Image.open(io.BytesIO(print_figure(fig, "png"))) as shown:
            assert shown.size[0] <= 960, (name, shown.size)
        titles = " ".join(ax.get_title() for ax in fig.axes)
        assert not any(old in titles for old in ("_s1", "_s2", "_s3", "s1 ", "s3 ")), (name, titles)


def test_explorer_widget_redraws_without_the_network(image):
    """viz.Explorer: a band slider changes the recomposed panels only, from the cache."""
    pytest.importorskip("ipywidgets")
    torch.manual_seed(0)
    model = DRBN(DRBNConfig(recursions=2, width=4, growth=2)).eval()
    calls = []
    recursions = model.recursions
    model.recursions = lambda y: calls.append(y.shape) or recursions(y)
    explorer = viz.Explorer(model, {"pair": (image, image * 0.9), "photo": (image[:12], None)})
    assert len(calls) == 1 and explorer.recursion.value == 2
    before = [panel.value for panel in explorer.panels]
    explorer.scales[2].value = 0.0  # the fine band off
    after = [panel.value for panel in explorer.panels]
    assert [i for i in range(6) if after[i] != before[i]] == [2, 5] and len(calls) == 1
    shown = explorer.view()
    bands = viz.explored(model, image).bands[1]
    np.testing.assert_allclose(shown["images"][2], bands.coarse + bands.middle, atol=1e-6)
    assert "0&middot;&Delta;&#770;<sub>fine</sub>" in explorer.titles[2].value and "dB to x" in explorer.titles[2].value
    explorer.recursion.value = 1
    assert len(calls) == 1  # another recursion of the same image: cached
    explorer.image.value = "photo"
    assert len(calls) == 2 and "no target" in explorer.titles[0].value
    assert {(p.layout.width, p.layout.height) for p in explorer.panels[:3]} == {("300px", "200px")}


def test_save_figure_writes_png(tmp_path, image):
    path = viz.save_figure(viz.show_images([image]), tmp_path, "tiny")
    assert path == tmp_path / "figures" / "tiny.png"
    with Image.open(path) as png:
        assert png.format == "PNG" and png.size[0] > 10 and png.size[1] > 10


# ----------------------------------------------------------------------------- ablation figures
def result_rows():
    """Rows shaped as drbn.experiments.run_experiments returns them: short keys."""

    def row(name, group, psnr, ssim, params, history=None, **extra):
        return {"variant": name, "group": group, "psnr": psnr, "ssim": ssim, "psnr_shave10": psnr + 0.1,
                "parameters": params, "train_seconds": 1.5, "inference_ms": 10.0 * params / 1000,
                "history": history, **extra}

    history = {"step": [1, 2, 3, 4], "loss": [-0.9, -1.2, -1.5, -1.8]}
    return [
        row("HE", "baseline", 14.0, 0.50, 0),
        row("RBL-v1", "stage 1", 15.0, 0.55, 139_417, history, settings={"loss_weights": [1, 0, 0]}),
        row("DRBN T=4", "stage 1", 16.5, 0.61, 557_668, {**history, "loss": [-2.7, -2.8, -2.9, -2.95]},
            settings={"loss_weights": [1, 1, 1]}),
        row("recomposed", "stage 2", float("nan"), 0.60, 576_829),
    ]


def test_plot_metrics_marks_the_best_bar():
    rows = result_rows()
    fig = viz.plot_metrics(rows, title="t")
    assert n_axes(fig) == 2
    psnr_axes = fig.axes[0]
    outlined = [bar for bar in psnr_axes.patches if bar.get_linewidth() == 1.5]
    assert len(outlined) == 1 and outlined[0].get_width() == 16.5  # DRBN T=4, the NaN row skipped
    assert [ax.get_title() for ax in fig.axes[:2]] == [label("psnr"), label("ssim")]  # labels, not keys
    with pytest.raises(ValueError, match="at least one"):
        viz.plot_metrics([])


def test_plot_metric_lines_one_point_per_row():
    rows = result_rows()[1:3]
    fig = viz.plot_metric_lines(rows, [1, 4], "recursions T")
    assert n_axes(fig) == 4  # PSNR, SSIM, parameters, inference ms
    np.testing.assert_array_equal(fig.axes[2].lines[0].get_ydata(), [139_417, 557_668])
    with pytest.raises(ValueError, match="one x per row"):
        viz.plot_metric_lines(rows, [1], "T")


def test_plot_training_curves_per_scale():
    fig = viz.plot_training_curves(result_rows())
    lines = fig.axes[0].lines
    assert [line.get_label() for line in lines] == ["RBL-v1", "DRBN T=4"]  # rows without history left out
    # the three-scale loss is divided by 3, the single-scale one is not
    assert lines[0].get_ydata()[-1] == pytest.approx(-1.8)
    assert lines[1].get_ydata()[-1] == pytest.approx(-2.95 / 3)


def test_plot_comparison_titles_carry_psnr(image):
    columns = {"input": [image * 0.2, image * 0.2], "method": [image * 0.9, image], "ground truth": [image, image]}
    fig = viz.plot_comparison(columns, ["a", "b"], ncols=3)
    assert n_axes(fig) == 6
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("a: input") and "dB" in titles[1] and "dB" not in titles[2]
    assert "inf dB" in titles[4]  # identical to the ground truth
    with pytest.raises(ValueError, match="has 1 images for 2 names"):
        viz.plot_comparison({"x": [image]}, ["a", "b"])


def test_plot_gamma_fit_and_results_table():
    fig = viz.plot_gamma_fit([0.3, 0.5, 0.7], [10.0, 12.0, 11.0], chosen=0.5)
    assert fig.axes[0].get_legend().get_texts()[0].get_text() == "chosen gamma = 0.5"
    rows = result_rows()
    fig = viz.plot_results_table(rows, header=["Data: toy."])
    table = fig.axes[0].tables[0]
    cells = table.get_celld()
    assert cells[(0, 0)].get_text().get_text() == label("variant")
    assert cells[(0, 1)].get_text().get_text() == label("psnr")
    assert cells[(3, 0)].get_text().get_horizontalalignment() == "left"
    assert cells[(3, 1)].get_text().get_horizontalalignment() == "right"
    assert cells[(3, 0)].get_text().get_text() == "DRBN T=4"
    assert cells[(4, 1)].get_text().get_text() == "—"  # NaN PSNR
    assert "Data: toy." in [t.get_text() for t in fig.texts]
