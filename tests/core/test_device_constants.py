"""device_constant: a step's small constants are copied to the device once, not every step
(on a GPU each copy of host data waits for the queued kernels)."""

import torch

from vssl_core import device_constants
from vssl_core.device_constants import device_constant


def test_the_same_values_device_and_dtype_give_the_same_tensor():
    first = device_constant((0.45, 0.45, 0.45), torch.device("cpu"))
    assert device_constant([0.45, 0.45, 0.45], "cpu") is first  # a list, a device name: same key
    torch.testing.assert_close(first, torch.tensor((0.45, 0.45, 0.45)), rtol=0, atol=0)
    wide = device_constant((0.45, 0.45, 0.45), "cpu", torch.float64)
    assert wide is not first and wide.dtype == torch.float64


def test_values_that_compare_equal_but_build_different_tensors_are_kept_apart():
    assert device_constant((1, 2), "cpu").dtype == torch.int64  # inferred as torch.tensor does
    assert device_constant((1.0, 2.0), "cpu").dtype == torch.float32
    assert device_constant((True, False), "cpu").dtype == torch.bool
    assert torch.signbit(device_constant((-0.0,), "cpu")).item()
    assert not torch.signbit(device_constant((0.0,), "cpu")).item()


def test_a_constant_first_built_under_inference_mode_still_serves_autograd():
    with torch.inference_mode():
        device_constant((0.125, 0.375), "cpu")
    w = torch.ones(2, requires_grad=True)
    (w * device_constant((0.125, 0.375), "cpu")).sum().backward()
    torch.testing.assert_close(w.grad, torch.tensor((0.125, 0.375)))


def test_inside_torch_compile_the_constant_is_a_graph_constant_and_not_cached():
    def scale(x):
        return x * device_constant((2.5, 3.5), x.device)

    compiled = torch.compile(scale, fullgraph=True, backend="eager")
    before = dict(device_constants._CACHE)
    x = torch.ones(4, 2)
    torch.testing.assert_close(compiled(x), x * torch.tensor((2.5, 3.5)))
    assert device_constants._CACHE == before  # tracing stored nothing (no fake tensors)
