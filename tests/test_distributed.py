"""Training over several processes (torchrun, DistributedDataParallel, gloo on the CPU):
N processes take the same steps as one, resume across world sizes, a failing process ends the run."""
import contextlib
import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from torch import nn

from drbn import distributed
from drbn.errors import DRBNError
from drbn.model import DRBN, DRBNConfig
from drbn.train import stage1_preset, stage2_preset, train_stage1, train_stage2
from drbn.weights import read_weights_file

SMOKE1 = stage1_preset("smoke", data="synthetic")
SMOKE2 = stage2_preset("smoke", data="synthetic")
TOLERANCE = 1e-4  # weights of N processes against one: float summation order only


@contextlib.contextmanager
def one_thread():
    """Run as torchrun's processes do here (OMP_NUM_THREADS=1): another thread count sums in
    another order, and four GAN steps amplify those 1e-7 differences to about 1e-4."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def one_process(monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)


def as_rank(monkeypatch, rank: int, size: int) -> None:
    """Environment of process ``rank`` of ``size`` as torchrun sets it (no process group)."""
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("LOCAL_RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", str(size))


# ----------------------------------------------------------------------------- without processes
def test_a_single_process_runs_as_before(one_process):
    device = distributed.setup(torch.device("cpu"))
    assert device == torch.device("cpu") and not torch.distributed.is_initialized()
    module = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    assert distributed.wrap(module) is module and type(module[1]) is nn.BatchNorm2d
    batch = torch.arange(6)
    assert distributed.shard(batch) is batch
    assert (distributed.world_size(), distributed.rank(), distributed.is_main()) == (1, 0, True)


def test_each_process_takes_its_consecutive_share_of_the_global_batch(monkeypatch):
    batch = torch.arange(12).view(6, 2)
    shares = []
    for rank in range(3):
        as_rank(monkeypatch, rank, 3)
        shares.append(distributed.shard(batch))
        assert distributed.is_main() == (rank == 0)
    assert [len(s) for s in shares] == [2, 2, 2]
    assert torch.equal(torch.cat(shares), batch)


def test_a_batch_that_does_not_divide_is_refused_before_any_step(monkeypatch, tmp_path):
    as_rank(monkeypatch, 0, 3)
    with pytest.raises(DRBNError, match="batch size 4 does not divide among 3 processes"):
        distributed.check_batch(4)
    # in training: the same error before a step is taken (setup would join torchrun's group)
    monkeypatch.setattr(distributed, "setup", lambda device: device)
    with pytest.raises(DRBNError, match="does not divide among 3 processes"):
        train_stage1(stage1_preset("smoke", batch_size=4, steps=1), tmp_path, progress=False, device="cpu")
    assert not (tmp_path / "stage1.pt").exists()
    with pytest.raises(DRBNError, match="does not divide among 3 processes"):
        train_stage2(stage2_preset("smoke", batch_size=2, steps=1), DRBN(DRBNConfig(recursions=1)), tmp_path,
                     progress=False, device="cpu")


def test_global_batchnorm_is_batchnorm_in_one_process(one_process):
    torch.manual_seed(0)
    plain = nn.BatchNorm2d(3)
    converted = distributed.sync_batchnorm(nn.Sequential(nn.BatchNorm2d(3)))[0]
    assert isinstance(converted, distributed.GlobalBatchNorm2d)
    assert converted.state_dict().keys() == plain.state_dict().keys()  # checkpoints load either way
    x = torch.rand(2, 3, 5, 5)
    assert torch.equal(converted(x), plain(x))
    assert torch.equal(converted.running_var, plain.running_var)


# ----------------------------------------------------------------------------- with processes (gloo)
def torchrun(args: list[str], cwd, nproc: int = 2, timeout: float = 600, env: dict | None = None):
    """``torchrun --standalone --nproc_per_node=nproc ARGS``; (completed process, seconds)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    started = time.monotonic()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return done, time.monotonic() - started


def succeeded(done) -> None:
    assert done.returncode == 0, f"torchrun failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def largest_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """Stage 1 in one process: the smoke run stopped at step 3 (half/), and finished (whole/)."""
    root = tmp_path_factory.mktemp("single")
    with one_thread():
        half = train_stage1(SMOKE1, root / "half", progress=False, device="cpu", stop_at=3)
        (root / "whole").mkdir()
        shutil.copy(half.checkpoint, root / "whole" / "stage1.pt")  # exact resume: tests/test_train.py
        train_stage1(SMOKE1, root / "whole", resume=root / "whole" / "stage1.pt", progress=False, device="cpu")
    return root


@pytest.mark.slow
def test_global_batchnorm_over_two_processes_equals_batchnorm_on_the_whole_batch(tmp_path):
    script = tmp_path / "bn.py"
    script.write_text(textwrap.dedent("""
        import sys, torch
        from torch import nn
        from drbn import distributed
        distributed.setup(torch.device("cpu"))
        torch.manual_seed(0)
        x, g = torch.randn(4, 3, 5, 5) * 3 + 1, torch.randn(4, 3, 5, 5)
        bn = nn.BatchNorm2d(3)
        with torch.no_grad():
            bn.weight.uniform_(0.5, 1.5), bn.bias.uniform_(-1, 1)
        net = distributed.wrap(nn.Sequential(bn))
        x = distributed.shard(x).requires_grad_()
        y = net(x)
        (y * distributed.shard(g)).mean().backward()
        module = net.module[0]
        torch.save({"y": y, "x_grad": x.grad, "weight_grad": module.weight.grad, "bias_grad": module.bias.grad,
                    "running_mean": module.running_mean, "running_var": module.running_var},
                   f"{sys.argv[1]}/rank{distributed.rank()}.pt")
    """))
    done, _ = torchrun([str(script), str(tmp_path)], cwd=tmp_path)
    succeeded(done)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]

    torch.manual_seed(0)
    x, g = torch.randn(4, 3, 5, 5) * 3 + 1, torch.randn(4, 3, 5, 5)
    bn = nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5), bn.bias.uniform_(-1, 1)
    x.requires_grad_()
    y = bn(x)
    (y * g).mean().backward()

    close = dict(rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.cat([r["y"] for r in ranks]), y.detach(), **close)
    # each process's input gradient is that of the sum of the processes' losses; DDP averages
    torch.testing.assert_close(torch.cat([r["x_grad"] for r in ranks]) / 2, x.grad, **close)
    for r in ranks:
        torch.testing.assert_close(r["weight_grad"], bn.weight.grad, **close)
        torch.testing.assert_close(r["bias_grad"], bn.bias.grad, **close)
        torch.testing.assert_close(r["running_mean"], bn.running_mean, **close)
        torch.testing.assert_close(r["running_var"], bn.running_var, **close)


@pytest.mark.slow
def test_two_processes_train_stage1_like_one(single, tmp_path):
    done, _ = torchrun(["-m", "drbn", "train-stage1", "--preset", "smoke", "--data", "synthetic",
                              "--out", str(tmp_path / "two"), "--device", "cpu"], cwd=tmp_path)
    succeeded(done)
    one = read_weights_file(single / "whole" / "stage1.pt")
    two = read_weights_file(tmp_path / "two" / "stage1.pt")
    assert (one["world_size"], two["world_size"], two["step"]) == (1, 2, SMOKE1.steps)
    assert largest_difference(one["model"], two["model"]) < TOLERANCE
    torch.testing.assert_close(two["history"]["loss"], one["history"]["loss"], rtol=0, atol=1e-5)
    assert two["history"]["eval_step"] == one["history"]["eval_step"]  # validated by rank 0


@pytest.mark.slow
def test_resume_with_another_number_of_processes(single, tmp_path):
    # stopped at step 3 by one process, finished by two: the same weights as one process throughout
    done, _ = torchrun(["-m", "drbn", "train-stage1", "--resume", str(single / "half" / "stage1.pt"),
                        "--out", str(tmp_path / "resumed"), "--device", "cpu"], cwd=tmp_path)
    succeeded(done)
    one = read_weights_file(single / "whole" / "stage1.pt")
    resumed = read_weights_file(tmp_path / "resumed" / "stage1.pt")
    assert (read_weights_file(single / "half" / "stage1.pt")["step"], resumed["step"], resumed["world_size"]) == (3, 6, 2)
    assert largest_difference(one["model"], resumed["model"]) < TOLERANCE
    assert largest_difference(one["optimizer"]["state"][0], resumed["optimizer"]["state"][0]) < TOLERANCE


@pytest.mark.slow
def test_two_processes_train_stage2_like_one(single, tmp_path):
    """The recomposer and the discriminator are wrapped; the discriminator's BatchNorm sees
    the global batch; stage 1 stays frozen and identical."""
    stage1_path = single / "whole" / "stage1.pt"
    for nproc, out in ((1, "one"), (2, "two")):  # torchrun with one process: no process group, as before
        done, _ = torchrun(["-m", "drbn", "train-stage2", "--stage1", str(stage1_path), "--preset", "smoke",
                            "--data", "synthetic", "--out", str(tmp_path / out), "--device", "cpu"],
                           cwd=tmp_path, nproc=nproc)
        succeeded(done)
    one, two = read_weights_file(tmp_path / "one" / "stage2.pt"), read_weights_file(tmp_path / "two" / "stage2.pt")
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert largest_difference(one["recomposer"], two["recomposer"]) < TOLERANCE
    assert largest_difference(one["discriminator"], two["discriminator"]) < TOLERANCE
    assert torch.equal(torch.cat([v.flatten() for v in one["stage1"].values()]),
                       torch.cat([v.flatten() for v in two["stage1"].values()]))
    for key in ("loss", "loss_d", "loss_adv", "loss_ssim"):
        # step 1 before any amplification: a per-process BatchNorm is 1e-3 off here
        assert abs(two["history"][key][0] - one["history"][key][0]) < 1e-5, key
        torch.testing.assert_close(two["history"][key], one["history"][key], rtol=0, atol=2e-5, msg=key)


@pytest.mark.slow
def test_a_failing_process_ends_the_run_with_its_error(tmp_path):
    # rank 1 fails at step 3 while rank 0 waits for it in the gradient all-reduce; the process
    # group's own timeout is set far away, so only torchrun's failure propagation can end it
    script = tmp_path / "fail.py"
    script.write_text(textwrap.dedent("""
        import sys
        from drbn import data, distributed, train
        from drbn.errors import DRBNError
        if distributed.rank() == 1:
            draw, calls = data.sample_pair_batch, []
            def failing(*args, **kwargs):
                calls.append(1)
                if len(calls) == 3:
                    raise DRBNError("rank 1 fails on purpose")
                return draw(*args, **kwargs)
            data.sample_pair_batch = failing
        train.train_stage1(train.stage1_preset("smoke", data="synthetic"), sys.argv[1], progress=False, device="cpu")
    """))
    done, seconds = torchrun([str(script), str(tmp_path / "run")], cwd=tmp_path, timeout=300,
                             env={"DRBN_DIST_TIMEOUT_MINUTES": "60"})
    assert done.returncode != 0
    assert "rank 1 fails on purpose" in done.stdout + done.stderr
    assert seconds < 240, f"the run took {seconds:.0f} s to end after a process failed"
