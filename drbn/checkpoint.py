"""Old home of the checkpoint helpers, re-exported from drbn.weights; introduced in notebooks/02_recursive_band_learning.

# temporary: removed when every importer has moved
"""
from .weights import (  # noqa: F401
    STAGE1, STAGE2, check_kind, is_kit_checkpoint, load_checkpoint, load_state_strict,
    read_weights_file, save_checkpoint,
)
from .weights import load_stage1 as load_stage1_any  # noqa: F401
