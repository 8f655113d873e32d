"""The CUDA paths on a GPU: training under torchrun, stage 2, DistributedDataParallel with nccl,
tiled enhancement and the released weights' outputs. Skipped where PyTorch sees no CUDA GPU
(the CPU paths are tested everywhere else)."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from drbn.enhance import OVERLAP, enhance
from drbn.model import DRBN
from drbn.weights import load_checkpoint, load_stage1, STAGE1, STAGE2

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; PyTorch sees none here")]

LEVEL = 1 / 255


def run(args, cwd, timeout=600):
    done = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def gpu_stage1(tmp_path_factory):
    """A smoke stage-1 run on the GPU under torchrun with one process."""
    out = tmp_path_factory.mktemp("gpu") / "stage1"
    run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", "-m", "drbn", "train-stage1",
         "--preset", "smoke", "--data", "synthetic", "--device", "cuda", "--out", str(out)], cwd=out.parent)
    return out / "stage1.pt"


def test_stage1_trains_on_the_gpu_under_torchrun(gpu_stage1):
    payload = load_checkpoint(gpu_stage1, STAGE1)  # weights_only, onto the CPU
    assert payload["world_size"] == 1
    assert all(t.device.type == "cpu" for t in payload["model"].values())
    assert np.isfinite(payload["history"]["loss"]).all()


def test_stage2_trains_on_the_gpu(gpu_stage1, tmp_path):
    run(["-m", "drbn", "train-stage2", "--stage1", str(gpu_stage1), "--preset", "smoke",
         "--device", "cuda", "--out", str(tmp_path)], cwd=tmp_path)
    payload = load_checkpoint(tmp_path / "stage2.pt", STAGE2)
    assert np.isfinite(payload["history"]["loss"]).all()


def test_nccl_data_parallel_takes_the_plain_step(tmp_path):
    """DistributedDataParallel over nccl (a group of one process: one GPU) wrapping the
    stage-1 network in channels_last gives the gradients of the bare network."""
    script = tmp_path / "ddp.py"
    script.write_text(
        "import torch, torch.distributed as dist\n"
        "from torch.nn.parallel import DistributedDataParallel\n"
        "from drbn.model import DRBN\nfrom drbn.losses import BandLoss\n"
        "dist.init_process_group('nccl')\n"
        "torch.backends.cudnn.allow_tf32 = False\n"
        "torch.manual_seed(0)\n"
        "plain = DRBN().cuda().for_training()\n"
        "wrapped = DistributedDataParallel(DRBN().cuda().for_training(), device_ids=[0])\n"
        "wrapped.module.load_state_dict(plain.state_dict())\n"
        "y = (0.3 * torch.rand(2, 3, 64, 64, device='cuda')).contiguous(memory_format=torch.channels_last)\n"
        "x = torch.rand(2, 3, 64, 64, device='cuda')\n"
        "for net in (plain, wrapped):\n"
        "    BandLoss()(net(y), x).backward()\n"
        "worst = max((a.grad - b.grad).abs().max().item() / (a.grad.abs().max().item() + 1e-12)\n"
        "            for a, b in zip(plain.parameters(), wrapped.module.parameters()))\n"
        "print('relative gradient difference', worst)\n"
        "assert worst < 1e-4, worst\n"
        "dist.destroy_process_group()\n"
    )
    run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", str(script)], cwd=tmp_path)


def test_tiled_equals_whole_on_the_gpu():
    torch.manual_seed(0)
    model = DRBN().cuda().for_inference()
    rng = np.random.default_rng(0)
    image = np.clip(0.25 * rng.random((900, 1200, 3)) ** 2 + 0.02, 0, 1).astype(np.float32)
    whole = np.clip(enhance(model, image, tile=None).output, 0, 1)
    tiled = np.clip(enhance(model, image, tile=768, overlap=OVERLAP).output, 0, 1)
    assert np.abs(tiled - whole).max() <= LEVEL


@pytest.mark.parametrize("tf32", [False, True])
def test_released_weights_on_the_gpu_match_the_authors_outputs(reference, released_stage1_path, tf32, monkeypatch):
    """In float32 the GPU matches the authors' outputs as the CPU does (1e-4); with cuDNN's
    default TF32 convolutions (Ampere and later) within half an 8-bit level."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", tf32)
    model = load_stage1(released_stage1_path).cuda().for_inference()
    low = torch.from_numpy(reference["low"]).permute(2, 0, 1)[None].float().cuda() / 255
    with torch.inference_mode():
        out = model(low)
    error = float(np.abs(out.full[0].cpu().numpy() - reference["x1"]).max())
    print(f"TF32 {tf32}: max abs error {error:.2e}")
    assert error <= (0.5 * LEVEL if tf32 else 1e-4)


def test_enhance_command_on_the_gpu(released_stage1_path, tmp_path):
    from PIL import Image

    photo = tmp_path / "dark.png"
    Image.fromarray((40 * np.random.default_rng(0).random((300, 400, 3))).astype(np.uint8)).save(photo)
    run(["-m", "drbn", "enhance", str(photo), "-o", str(tmp_path / "out"), "--weights", str(released_stage1_path),
         "--device", "cuda"], cwd=tmp_path)
    assert (tmp_path / "out" / "dark.png").exists()
