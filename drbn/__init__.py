"""drbn: the deep recursive band network for low-light enhancement (Yang et al., CVPR 2020); introduced in notebooks/00_setup_check.

What a user calls::

    import drbn
    stage1 = drbn.load_stage1("model_s1.pt")          # the authors' file or a kit checkpoint
    recomposer = drbn.load_recomposer("model_R_s2.pt")
    result = drbn.enhance(stage1, image, recomposer)  # any H x W x 3 image in [0, 1]
    rows = drbn.evaluate(stage1, drbn.load_pairs("auto", "test"), recomposer)
    drbn.train_stage1(drbn.stage1_preset("cpu"), "runs/stage1")

One file per concept: ``model`` (stage 1), ``recompose`` (stage 2), ``discriminator``,
``losses``, ``metrics``, ``images``, ``synthetic`` (the camera model), ``data`` (every data
set), ``weights`` (checkpoints and the authors' files), ``train``, ``enhance``, ``evaluate``,
``results``, ``baselines``, ``experiments`` (ablations), ``viz`` (figures), ``cli`` (the
command line), ``reproduce`` (the notebook runner).
"""
from .data import load_pairs
from .enhance import enhance
from .errors import DRBNError
from .evaluate import evaluate
from .model import DRBN, BandOutputs, DRBNConfig
from .recompose import Bands, Recomposer, RecomposerConfig, decompose
from .train import (
    STAGE1_PRESETS, STAGE2_PRESETS, Stage1Config, Stage2Config, stage1_preset, stage2_preset,
    train_stage1, train_stage2,
)
from .weights import load_recomposer, load_stage1

__version__ = "0.1.0"
__all__ = [
    "load_stage1", "load_recomposer", "enhance", "evaluate", "load_pairs",
    "Stage1Config", "Stage2Config", "STAGE1_PRESETS", "STAGE2_PRESETS", "stage1_preset", "stage2_preset",
    "train_stage1", "train_stage2",
    "DRBN", "DRBNConfig", "BandOutputs", "Bands", "Recomposer", "RecomposerConfig", "decompose",
    "DRBNError", "__version__",
]
