"""Training over several processes (torchrun, DistributedDataParallel, gloo on the CPU):
N processes take the same steps as one, resume across world sizes, a failing process ends the run."""
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from drbn import distributed
from drbn.errors import DRBNError
from drbn.discriminator import QualityDiscriminator
from drbn.model import DRBN, DRBNConfig
from drbn.recompose import Recomposer
from drbn.train import stage1_preset, stage2_preset, train_stage1, train_stage2
from drbn.weights import read_weights_file

REPO = Path(__file__).resolve().parents[1]
SMOKE1 = stage1_preset("smoke", data="synthetic")
SMOKE2 = stage2_preset("smoke", data="synthetic")


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
    # this checkout's drbn, whatever the folder the processes start in (an installed one otherwise)
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "PYTHONPATH": path, **(env or {})}
    started = time.monotonic()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return done, time.monotonic() - started


def succeeded(done) -> None:
    assert done.returncode == 0, f"torchrun failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


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


# ----------------------------------------------------------------------------- N processes take one's steps
# What must hold whatever the CPU: DDP's averaged gradient of the global batch equals one
# process's gradient of that batch up to float32 rounding, and nothing else. Adam cannot show
# that: it divides each update by the gradient's own size, so a sum in place of a mean does not
# change its steps, and a weight whose gradient is rounding noise moves by about lr either way
# (two Adam runs 1.96e-4 apart on one CPU, under 1e-4 on another). These runs train with plain
# SGD with momentum instead, whose state and steps are linear in the averaged gradients:
#   buffer_k = MOMENTUM * buffer_(k-1) + g_k,   w_k = w_(k-1) - lr_k * buffer_k.
# Float32 rounding: a weight's gradient at the smoke crop sums about 2 x 32 x 32 = 2048
# products per step (more for the discriminator's 2 x 2 batches); the worst case of such a
# sum is N u = 2048 x 2^-24 = 1.2e-4 of the sum of magnitudes, the typical sqrt(N) u = 3e-6
# (measured on an AVX-512 Xeon: 9e-7 for the worst tensor's buffer, 1.4e-7 over all of them).
# A wrong averaging changes them far more (measured on the same machine, stage-1 smoke run,
# the buffers after six steps): gradients summed instead of averaged, 63-116% per tensor;
# each process stepping on its own share only, 2.2-30% per tensor (11% over all of them).
# RELATIVE = 1e-3 lies 8x above the worst case of rounding (1000x above what was measured)
# and 20x below the smallest wrong averaging.
# The weights are float32 too: w_k - w_0 carries a rounding of u |w| per step on top of that,
# so a weight's update is compared with RELATIVE x its size plus 2 x steps x u x |w|.
MOMENTUM = 0.9
RELATIVE = 1e-3
UNIT_ROUNDOFF = 2.0 ** -24  # float32
SGD_TRAIN = textwrap.dedent(f"""
    # python sgd_train.py STOP_AT drbn-command ...: the command with SGD (momentum {MOMENTUM})
    # in place of Adam, stopped after step STOP_AT (0: run to the end)
    import functools, sys, torch
    from drbn import cli, train

    class SGD(torch.optim.SGD):
        def __init__(self, params, lr, **adam_only):  # betas: Adam's alone
            super().__init__(params, lr=lr, momentum={MOMENTUM})

    torch.optim.Adam = SGD
    stop_at = int(sys.argv[1]) or None
    cli.train_stage1 = functools.partial(train.train_stage1, stop_at=stop_at)
    cli.train_stage2 = functools.partial(train.train_stage2, stop_at=stop_at)
    sys.exit(cli.main(sys.argv[2:]))
""")


def sgd_torchrun(root, command: list[str], nproc: int, stop_at: int = 0):
    """``torchrun --nproc_per_node=nproc -m drbn COMMAND`` training with SGD (see above)."""
    script = root / "sgd_train.py"
    if not script.exists():
        script.write_text(SGD_TRAIN)
    done, _ = torchrun([str(script), str(stop_at), *command, "--device", "cpu"], cwd=root, nproc=nproc)
    succeeded(done)


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / a.double().norm()).item()


def before_batchnorm(module: nn.Module) -> list[str]:
    """Names of the conv biases that a BatchNorm follows. Their exact gradient is zero (the
    BatchNorm subtracts the batch mean, so a constant shift changes nothing): what is computed
    is float32 rounding of terms that cancel, with no size to be relative to."""
    names = []
    for name, child in module.named_modules():
        layers = list(child.children()) if isinstance(child, nn.Sequential) else []
        for i, (layer, after) in enumerate(zip(layers, layers[1:])):
            if isinstance(layer, nn.Conv2d) and layer.bias is not None and isinstance(after, nn.BatchNorm2d):
                names.append(f"{name}.{i}.bias" if name else f"{i}.bias")
    return names


def assert_same_steps(one: dict, two: dict, initial: dict, steps: int) -> None:
    """Every float tensor of state dict ``two`` moved from ``initial`` as in ``one``: up to
    RELATIVE of the move plus the float32 rounding of the stored weights (see above)."""
    assert one.keys() == two.keys() == initial.keys()
    moved = False
    for key, start in initial.items():
        if not start.is_floating_point():  # e.g. BatchNorm's step counter
            assert torch.equal(one[key], two[key]), key
            continue
        moved_one, moved_two = one[key].double() - start.double(), two[key].double() - start.double()
        moved = moved or bool(moved_one.norm() > 0)  # an update under half a float32 step leaves w as it is
        bound = RELATIVE * moved_one.norm() + 2 * steps * UNIT_ROUNDOFF * one[key].double().norm()
        assert (moved_two - moved_one).norm() <= bound, \
            f"{key}: {relative_difference(moved_one, moved_two):.2e} of its update apart"
    assert moved, "no weight moved: nothing was compared"


def assert_same_momentum(one: dict, two: dict, names: list[str] | None = None, vanishing: tuple = ()) -> None:
    """The SGD momentum buffers (sums of the averaged gradients) agree up to RELATIVE. Those of
    ``vanishing`` parameters (``names`` in optimizer order) are rounding noise in both runs:
    each must be under RELATIVE x the buffer of the weight before it (its layer's conv)."""
    assert one["state"].keys() == two["state"].keys() and one["state"]
    for index, state in one["state"].items():
        if names is not None and names[index] in vanishing:
            scale = one["state"][index - 1]["momentum_buffer"].double().norm()
            for run in (one, two):
                assert run["state"][index]["momentum_buffer"].double().norm() <= RELATIVE * scale, names[index]
            continue
        difference = relative_difference(state["momentum_buffer"], two["state"][index]["momentum_buffer"])
        assert difference <= RELATIVE, f"parameter {index}: averaged gradients {difference:.2e} apart"


def initial_stage1() -> dict:
    torch.manual_seed(SMOKE1.seed)  # as train_stage1 builds it
    return DRBN(SMOKE1.model).state_dict()


def initial_stage2() -> tuple[dict, dict]:
    torch.manual_seed(SMOKE2.seed)  # as train_stage2 builds them, in this order
    return Recomposer(SMOKE2.recomposer).state_dict(), QualityDiscriminator().state_dict()


STAGE1_SMOKE = ["train-stage1", "--preset", "smoke", "--data", "synthetic"]


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """Stage 1 with SGD in one process: the smoke run finished (whole/), and stopped at step 3 (half/)."""
    root = tmp_path_factory.mktemp("single")
    sgd_torchrun(root, [*STAGE1_SMOKE, "--out", str(root / "whole")], nproc=1)
    sgd_torchrun(root, [*STAGE1_SMOKE, "--out", str(root / "half")], nproc=1, stop_at=3)
    return root


@pytest.mark.slow
def test_two_processes_train_stage1_like_one(single, tmp_path):
    """Six SGD steps on two processes move every weight as one process does (bounds above)."""
    sgd_torchrun(tmp_path, [*STAGE1_SMOKE, "--out", str(tmp_path / "two")], nproc=2)
    one = read_weights_file(single / "whole" / "stage1.pt")
    two = read_weights_file(tmp_path / "two" / "stage1.pt")
    assert (one["world_size"], two["world_size"], two["step"]) == (1, 2, SMOKE1.steps)
    assert_same_momentum(one["optimizer"], two["optimizer"])
    assert_same_steps(one["model"], two["model"], initial_stage1(), SMOKE1.steps)
    # losses: means of float32 maps (|loss| <= 1) by pairwise summation, whose rounding is
    # about log2(N) u = 1e-6 for N = 2 x 3 x 32 x 32; a per-process mean is 1e-3 off
    torch.testing.assert_close(two["history"]["loss"], one["history"]["loss"], rtol=0, atol=1e-5)
    assert two["history"]["eval_step"] == one["history"]["eval_step"]  # validated by rank 0


@pytest.mark.slow
def test_resume_with_another_number_of_processes(single, tmp_path):
    """Stopped at step 3 by one process, finished by two: the momentum saved at step 3 and the
    weights carry over, so the run ends where one process's uninterrupted run ends."""
    sgd_torchrun(tmp_path, ["train-stage1", "--resume", str(single / "half" / "stage1.pt"),
                            "--out", str(tmp_path / "resumed")], nproc=2)
    one = read_weights_file(single / "whole" / "stage1.pt")
    resumed = read_weights_file(tmp_path / "resumed" / "stage1.pt")
    assert (read_weights_file(single / "half" / "stage1.pt")["step"], resumed["step"], resumed["world_size"]) == (3, 6, 2)
    assert_same_momentum(one["optimizer"], resumed["optimizer"])
    assert_same_steps(one["model"], resumed["model"], initial_stage1(), SMOKE1.steps)


@pytest.mark.slow
def test_two_processes_train_stage2_like_one(single, tmp_path):
    """The recomposer and the discriminator are wrapped; the discriminator's BatchNorm sees
    the global batch (its running statistics are compared too); stage 1 stays frozen and
    identical. SGD steps, bounds as above."""
    command = ["train-stage2", "--stage1", str(single / "whole" / "stage1.pt"), "--preset", "smoke",
               "--data", "synthetic"]
    for nproc, out in ((1, "one"), (2, "two")):  # torchrun with one process: no process group, as before
        sgd_torchrun(tmp_path, [*command, "--out", str(tmp_path / out)], nproc=nproc)
    one, two = read_weights_file(tmp_path / "one" / "stage2.pt"), read_weights_file(tmp_path / "two" / "stage2.pt")
    assert (one["world_size"], two["world_size"]) == (1, 2)
    recomposer, discriminator = initial_stage2()
    assert_same_momentum(one["optimizer"], two["optimizer"])
    vanishing = tuple(before_batchnorm(QualityDiscriminator()))
    assert vanishing  # seven conv biases, each before a BatchNorm
    names = [name for name, _ in QualityDiscriminator().named_parameters()]
    assert_same_momentum(one["optimizer_discriminator"], two["optimizer_discriminator"], names, vanishing)
    assert_same_steps(one["recomposer"], two["recomposer"], recomposer, SMOKE2.steps)
    assert_same_steps(one["discriminator"], two["discriminator"], discriminator, SMOKE2.steps)
    assert torch.equal(torch.cat([v.flatten() for v in one["stage1"].values()]),
                       torch.cat([v.flatten() for v in two["stage1"].values()]))
    for key in ("loss", "loss_d", "loss_adv", "loss_ssim"):  # as in stage 1; BatchNorm per process: 1e-3 off
        torch.testing.assert_close(two["history"][key], one["history"][key], rtol=0, atol=1e-5, msg=key)


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
