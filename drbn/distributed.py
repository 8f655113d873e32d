"""Training on several processes or GPUs with torchrun; the one-process loop it spreads out is introduced in notebooks/02_recursive_band_learning.

``torchrun --nproc_per_node=N -m drbn train-stage1 ...`` starts N copies of the command
with ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` set; :func:`setup` joins them into one
process group (gloo on the CPU, nccl on CUDA GPUs, one GPU per process). Without torchrun,
or with one process, nothing here does anything: no process group, no wrapper.

Every process draws the same global batch of step k from the seeded generator and keeps
its share (:func:`shard`); ``DistributedDataParallel`` averages the gradients, and the
losses are means over the batch, so N processes take the same steps as one.
"""
from __future__ import annotations

import atexit
import os
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .errors import DRBNError

# How long a process waits in a collective before it gives up with an error. torchrun ends
# the other processes as soon as one fails; this bounds the wait when it cannot (a process
# started by hand, a frozen machine). Rank 0 validates while the others wait: keep it long.
TIMEOUT = timedelta(minutes=float(os.environ.get("DRBN_DIST_TIMEOUT_MINUTES", 15)))


# ----------------------------------------------------------------------------- who am I
def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise DRBNError(f"{name}={value!r} is not a number; start the run with torchrun, which sets it.") from None


def joined() -> bool:
    """True once this process is in a process group (PyTorch builds without torch.distributed: never)."""
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """How many processes train together (1 without torchrun)."""
    return dist.get_world_size() if joined() else _env_int("WORLD_SIZE", 1)


def rank() -> int:
    """This process's place among them, 0 ... world_size() - 1."""
    return dist.get_rank() if joined() else _env_int("RANK", 0)


def local_rank() -> int:
    """This process's place on its own machine: the GPU it uses."""
    return _env_int("LOCAL_RANK", 0)


def is_main() -> bool:
    """True in the one process that writes checkpoints, histories, figures and progress bars."""
    return rank() == 0


def active() -> bool:
    """True when gradients are averaged over several processes."""
    return joined() and dist.get_world_size() > 1


# ----------------------------------------------------------------------------- setup and teardown
def setup(device: torch.device) -> torch.device:
    """Join the process group torchrun described in the environment (once per process) and
    return the device this process trains on: under torchrun with CUDA, ``cuda:LOCAL_RANK``.

    The backend follows the device: nccl for CUDA, gloo for the CPU. With ``WORLD_SIZE``
    absent or 1 this returns ``device`` unchanged and starts nothing.
    """
    if world_size() == 1:
        return device
    if not dist.is_available():
        raise DRBNError("this PyTorch build has no torch.distributed; run one process (without torchrun).")
    if device.type not in ("cpu", "cuda"):
        raise DRBNError(f"distributed training runs on the CPU or CUDA GPUs, not {device.type!r}; pass --device cpu or cuda.")
    if device.type == "cuda":
        if local_rank() >= torch.cuda.device_count():
            raise DRBNError(
                f"process {local_rank()} of this machine has no GPU of its own ({torch.cuda.device_count()} seen); "
                "start at most one process per GPU (torchrun --nproc_per_node)."
            )
        device = torch.device("cuda", local_rank())
        torch.cuda.set_device(device)
    if not joined():
        # init_method env://: MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE come from torchrun
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
        atexit.register(teardown)
    return device


def teardown() -> None:
    """Leave the process group (at exit; idempotent)."""
    if joined():
        dist.destroy_process_group()


def check_batch(batch_size: int, what: str = "batch size") -> int:
    """This process's share of a global batch; a DRBNError, before any step, if it does not divide."""
    n = world_size()
    if batch_size % n:
        raise DRBNError(
            f"the {what} {batch_size} does not divide among {n} processes; run a number of "
            f"processes that divides it (torchrun --nproc_per_node) or change the batch size."
        )
    return batch_size // n


# ----------------------------------------------------------------------------- the training step
def shard(batch: torch.Tensor) -> torch.Tensor:
    """This process's consecutive share of a global batch (all of it in a single process)."""
    if world_size() == 1:
        return batch
    share = check_batch(len(batch))
    return batch[rank() * share:(rank() + 1) * share]


def wrap(module: nn.Module) -> nn.Module:
    """``module`` in DistributedDataParallel when several processes train, else ``module``.

    Keep the bare module for saving and validation: its state dict has no ``module.``
    prefix, so checkpoints load whatever the world size. BatchNorm layers are made to use
    the statistics of the global batch, as in one process.
    """
    if not active():
        return module
    module = sync_batchnorm(module)
    device = next(module.parameters()).device
    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


def mean(value: torch.Tensor) -> torch.Tensor:
    """The mean of a (loss) value over the processes: the value of the global batch."""
    if not active():
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / dist.get_world_size()


def barrier() -> None:
    """Wait for every process (e.g. until rank 0 has written the last checkpoint)."""
    if active():  # nccl: on this process's GPU, not the first one
        dist.barrier(device_ids=[torch.cuda.current_device()] if dist.get_backend() == "nccl" else None)


# ----------------------------------------------------------------------------- BatchNorm over the global batch
class _SumOverProcesses(torch.autograd.Function):
    """A sum over the processes whose backward sums the gradients over them likewise."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the batch of all processes.

    PyTorch's SyncBatchNorm does this on GPUs only; here the per-channel sums go through a
    differentiable all-reduce (its backward sums the gradients likewise), so gloo on the
    CPU gives what one process gives on the whole batch.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and active()):
            return super().forward(x)
        dims, c = (0, 2, 3), x.shape[1]
        count = torch.tensor([x.numel() // c], dtype=torch.float64, device=x.device)
        sums = torch.cat((x.sum(dims, dtype=torch.float64), (x * x).sum(dims, dtype=torch.float64), count))
        sums = _SumOverProcesses.apply(sums)
        n = sums[-1]
        mu = sums[:c] / n
        var = (sums[c:2 * c] / n - mu * mu).clamp_min(0)  # biased, as BatchNorm normalises with
        running_mean, running_var, batches = self.running_mean, self.running_var, self.num_batches_tracked
        if running_mean is not None and running_var is not None and batches is not None:  # tracked
            with torch.no_grad():
                batches.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(batches)
                running_mean.lerp_(mu.to(x.dtype), m)
                running_var.lerp_((var * n / (n - 1)).to(x.dtype), m)  # unbiased, as BatchNorm keeps
        scale = torch.rsqrt(var + self.eps).to(x.dtype)
        y = (x - mu.to(x.dtype).view(1, c, 1, 1)) * scale.view(1, c, 1, 1)
        return y * self.weight.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1) if self.affine else y


def sync_batchnorm(module: nn.Module) -> nn.Module:
    """``module`` with its BatchNorm2d layers computing global-batch statistics (in place):
    PyTorch's SyncBatchNorm on CUDA, :class:`GlobalBatchNorm2d` on the CPU."""
    for name, child in module.named_children():
        if type(child) is not nn.BatchNorm2d:
            sync_batchnorm(child)
        elif any(t.is_cuda for t in child.state_dict().values()):
            setattr(module, name, nn.SyncBatchNorm.convert_sync_batchnorm(child))
        else:
            new = GlobalBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                    child.track_running_stats)
            # the very parameters and buffers, as convert_sync_batchnorm keeps them: an optimizer
            # built over the module before this call must still step them
            for key, value in (*child.named_parameters(recurse=False), *child.named_buffers(recurse=False)):
                setattr(new, key, value)
            setattr(module, name, new.train(child.training))
    return module
