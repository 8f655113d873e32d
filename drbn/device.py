"""Where the networks run: the CPU of a laptop or a GPU, chosen once by name; introduced in notebooks/00_setup_check."""
from __future__ import annotations

import torch

from .errors import DRBNError

DEVICE_HELP = "auto (a CUDA GPU if PyTorch sees one, else the CPU), cpu, cuda or cuda:N"


def pick_device(name: str | torch.device = "auto") -> torch.device:
    """``"auto"``: the first CUDA GPU if PyTorch sees one, else the CPU; or an explicit
    ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, checked to exist."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise DRBNError(f"unknown device {name!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DRBNError(f"device {name!r} asked for, but PyTorch sees no CUDA GPU here; use 'cpu' or 'auto'.")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise DRBNError(f"device {name!r} asked for, but PyTorch sees {torch.cuda.device_count()} GPU(s).")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DRBNError(f"device {name!r} asked for, but the Apple GPU (MPS) is not available here; use 'cpu'.")
    return device


def device_of(module: torch.nn.Module) -> torch.device:
    """The device a module's parameters live on."""
    return next(module.parameters()).device


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that a wall-clock time measures the computation."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
