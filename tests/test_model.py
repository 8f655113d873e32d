import pytest
import torch

from drbn.errors import DRBNError
from drbn.model import DRBN, BandLearningUnit, DRBNConfig, ResidualDenseBlock, count_parameters


def test_parameter_counts_match_the_released_model():
    assert count_parameters(ResidualDenseBlock(16, 8)) == 8_880
    assert count_parameters(ResidualDenseBlock(32, 16)) == 35_424
    assert count_parameters(BandLearningUnit()) == 139_417
    assert count_parameters(DRBN()) == 557_668


@pytest.mark.parametrize("recursions", [1, 2, 3])
def test_parameters_scale_with_recursions(recursions):
    assert count_parameters(DRBN(DRBNConfig(recursions=recursions))) == recursions * 139_417


def test_output_shapes_and_recursions():
    model = DRBN(DRBNConfig(recursions=2))
    y = torch.rand(2, 3, 32, 48)
    outputs = model.recursions(y)
    assert len(outputs) == 2
    full, half, quarter = outputs[-1]
    assert full.shape == (2, 3, 32, 48)
    assert half.shape == (2, 3, 16, 24)
    assert quarter.shape == (2, 3, 8, 12)
    torch.testing.assert_close(model(y).full, full)


def test_feature_residuals_and_recursive_input_change_the_output():
    torch.manual_seed(0)
    base = DRBN(DRBNConfig(recursions=2))
    y = torch.rand(1, 3, 16, 16)
    reference = base(y).full
    for knob in ("feature_residuals", "recursive_input"):
        variant = DRBN(DRBNConfig(recursions=2, **{knob: False}))
        variant.load_state_dict(base.state_dict())
        assert not torch.allclose(variant(y).full, reference), knob


def test_without_recursive_input_later_recursions_see_only_the_previous_estimate():
    torch.manual_seed(0)
    model = DRBN(DRBNConfig(recursions=2, recursive_input=False, feature_residuals=False))
    y = torch.rand(1, 3, 16, 16)
    first, second = model.recursions(y)
    estimate = first.full
    expected, _ = model.units[1](torch.cat((estimate, estimate), 1))
    torch.testing.assert_close(second.full, expected.full)


def test_inference_path_matches_the_training_path():
    torch.manual_seed(0)
    model = DRBN(DRBNConfig(recursions=2))
    y = torch.rand(2, 3, 32, 48)
    training_path = model(y).full  # gradients on: the concatenating blocks
    with torch.inference_mode():
        fast = model.for_inference()(y.contiguous(memory_format=torch.channels_last)).full
    torch.testing.assert_close(fast, training_path.detach(), atol=1e-5, rtol=0)


def test_first_recursion_does_not_depend_on_later_units():
    torch.manual_seed(0)
    model = DRBN(DRBNConfig(recursions=3))
    y = torch.rand(1, 3, 16, 16)
    first = model.recursions(y)[0].full
    with torch.no_grad():
        for p in model.units[2].parameters():
            p.add_(1.0)
    torch.testing.assert_close(model.recursions(y)[0].full, first)


@pytest.mark.parametrize("shape", [(1, 3, 30, 32), (1, 3, 32, 33), (1, 1, 32, 32), (3, 32, 32)])
def test_bare_module_rejects_sizes_it_cannot_take(shape):
    with pytest.raises(DRBNError, match="multiples of 4|RGB"):
        DRBN(DRBNConfig(recursions=1))(torch.rand(*shape))


def test_zero_recursions_is_a_clear_error():
    with pytest.raises(DRBNError, match="at least 1"):
        DRBN(DRBNConfig(recursions=0))


def parameter_gradients(model, y, x):
    from drbn.losses import BandLoss

    model.zero_grad(set_to_none=True)
    BandLoss()(model(y), x).backward()
    return {name: p.grad.clone() for name, p in model.named_parameters()}


def test_training_fast_path_has_the_gradients_of_the_plain_model():
    torch.manual_seed(0)
    plain = DRBN(DRBNConfig(recursions=2)).train()
    fast = DRBN(DRBNConfig(recursions=2))
    fast.load_state_dict(plain.state_dict())
    fast.for_training()
    y, x = 0.3 * torch.rand(2, 3, 32, 48), torch.rand(2, 3, 32, 48)
    expected = parameter_gradients(plain, y, x)
    cl = torch.channels_last
    got = parameter_gradients(fast, y.contiguous(memory_format=cl), x.contiguous(memory_format=cl))
    for name, grad in expected.items():
        torch.testing.assert_close(got[name], grad, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_summed_dense_block_has_the_gradients_of_the_concatenating_one(layout):
    torch.manual_seed(0)
    block = ResidualDenseBlock(16, 8).to(memory_format=layout)
    x = torch.randn(2, 16, 20, 24).contiguous(memory_format=layout)
    weight = torch.randn(2, 16, 20, 24)
    grads = []
    for forward in (block.forward, block.forward_summed):
        block.zero_grad(set_to_none=True)
        (forward(x) * weight).sum().backward()
        grads.append([p.grad.clone() for p in block.parameters()])
    for got, expected in zip(*grads[::-1]):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
