"""The teaching figures of notebook 02: the architecture diagram, the negated optimum of
-SSIM, and the training curves' step and minute axes."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from drbn import viz
from drbn.losses import ssim
from drbn.model import DRBNConfig


def texts(fig) -> str:
    return "\n".join(t.get_text() for ax in fig.axes for t in ax.texts + [ax.title])


def test_architecture_follows_the_configuration(tmp_path):
    released = viz.plot_architecture()
    drawn = texts(released)
    assert "T = 4 recursions" in drawn and r"cat($\hat{x}^{t-1}_{\mathrm{full}}$, y)" in drawn
    assert "$f^{t-1}" in drawn and "RDB(16,8)" in drawn and "2 × RDB(32,16)" in drawn
    assert all(rf"$\hat{{x}}_{{\mathrm{{{scale}}}}}$" in drawn for scale in ("full", "half", "quarter"))
    assert drawn.count("up2") == 2  # coarse-to-fine: quarter -> half -> full

    # RBL-v3-like: no feature residuals and no recursive input; long chains are shortened
    bare = texts(viz.plot_architecture(DRBNConfig(recursions=7, feature_residuals=False, recursive_input=False,
                                                  width=8, growth=4)))
    assert "f^{t-1}" not in bare and "f^t" not in bare
    assert r"cat($\hat{x}^{t-1}$, $\hat{x}^{t-1}$)" in bare and "T = 7 recursions" in bare and "…" in bare
    assert "RDB(8,4)" in bare and "unit t = 7" in bare and "unit t = 4" not in bare

    path = viz.save_figure(released, tmp_path, "architecture")
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) > 300
    from IPython.core.pylabtools import print_figure  # as the notebook shows it: a column wide

    with Image.open(io.BytesIO(print_figure(released, "png"))) as shown:
        assert shown.size[0] <= 960, shown.size


def test_negated_optimum_curves_are_ssim_along_the_line():
    """The curves use μ_a = tμ, σ_a² = t²σ², σ_ab = tσ² instead of filtering every t·x:
    they must equal drbn.losses.ssim(t·x_c, x_c)."""
    rng = np.random.default_rng(0)
    target = (rng.random((24, 20, 3)) * np.linspace(0.2, 1.0, 20)[None, :, None]).astype(np.float32)
    amplitudes = [-1.5, -1.0, -0.3, 0.0, 0.5, 1.0]
    fig = viz.plot_negated_optimum(target, amplitudes)
    curves = [line for line in fig.axes[0].lines if len(line.get_xdata()) == len(amplitudes)]
    assert len(curves) == 3
    x = torch.from_numpy(target.astype(np.float64)).permute(2, 0, 1)[None]
    for c, line in enumerate(curves):
        expected = [ssim(t * x[:, c : c + 1], x[:, c : c + 1]).item() for t in amplitudes]
        np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-9, atol=1e-12)
    assert np.allclose([line.get_ydata()[amplitudes.index(1.0)] for line in curves], 1.0)
    # at t = -1 the three maps: luminance, contrast-structure and their product (SSIM map)
    maps = [ax.images[0].get_array() for ax in fig.axes[1:4]]
    np.testing.assert_allclose(maps[0] * maps[1], maps[2], rtol=1e-12)
    green = x[:, 1:2]
    assert float(np.mean(maps[2])) == pytest.approx(ssim(-green, green).item(), rel=1e-9)


def test_training_curves_have_integer_steps_and_minutes():
    history = {"step": [1, 2, 3], "loss": [-1.0, -1.5, -1.7], "seconds": [30.0, 60.0, 90.0],
               "eval_step": [2, 3], "psnr": [10.0, 11.0], "ssim": [0.3, 0.4]}
    fig = viz.plot_history(history)
    FigureCanvasAgg(fig).draw()
    for ax in fig.axes[:2]:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    minutes = [child for ax in fig.axes for child in ax.child_axes if child.get_xlabel() == "minutes of training"]
    assert len(minutes) == 1
    # the top axis reads the run's own timing: step 2 was reached after 60 s, step 3 after 90 s
    validation = fig.axes[1]
    np.testing.assert_allclose(minutes[0].get_xlim(), np.interp(validation.get_xlim(), [1, 2, 3], [0.5, 1.0, 1.5]))


def test_brightness_histograms_one_per_set():
    groups = {"low": [0.02, 0.05, 0.08], "normal": [0.3, 0.5, 0.45, 0.7], "empty": []}
    fig = viz.plot_brightness(groups, bins=20)
    ax = fig.axes[0]
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["low (3, median 0.05)", "normal (4, median 0.47)"]
    heights = [patch.get_data().values for patch in ax.patches]
    assert len(heights) == 2 and all(np.isclose(h.sum(), 1.0) for h in heights)
    assert heights[0][:2] == pytest.approx([1 / 3, 2 / 3])  # 0.02 in [0, 0.05), 0.05 and 0.08 in [0.05, 0.1)


def test_record_prints_nothing_as_a_cells_last_line(tmp_path):
    """record(...) ends every notebook: it returns None (a path would be printed to the
    student) and merges the values into OUT/records/<notebook>.json."""
    import json

    from drbn.reproduce import record

    assert record(tmp_path, "06_explorer", {"psnr": 18.5}) is None
    assert record(tmp_path, "06_explorer", {"image": "1"}) is None
    assert json.loads((tmp_path / "records" / "06_explorer.json").read_text()) == {"psnr": 18.5, "image": "1"}
