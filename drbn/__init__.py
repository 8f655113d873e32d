"""drbn: the deep recursive band network for low-light enhancement (Yang et al., CVPR 2020).

The main pieces, one file each: ``model`` (stage 1), ``recompose`` (stage 2),
``discriminator``, ``losses``, ``metrics``, ``data``/``synthetic``, ``train``, ``enhance``,
``released`` (the authors' weights), ``baselines`` (HE, CLAHE, gamma), ``experiments``
(ablations side by side), ``viz`` (figures), ``reproduce`` (the notebook runner).
"""
from .errors import DRBNError
from .model import DRBN, BandOutputs, DRBNConfig
from .recompose import Bands, Recomposer, RecomposerConfig, decompose

__version__ = "0.1.0"
__all__ = ["DRBN", "DRBNConfig", "BandOutputs", "Bands", "Recomposer", "RecomposerConfig",
           "decompose", "DRBNError", "__version__"]
