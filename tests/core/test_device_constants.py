"""device_constant: a step's small constants are copied to the device once, not every step
(on a GPU each copy of host data waits for the queued kernels)."""

import torch

from vssl_core.device_constants import device_constant


def test_the_same_values_device_and_dtype_give_the_same_tensor():
    first = device_constant((0.45, 0.45, 0.45), torch.device("cpu"))
    assert device_constant([0.45, 0.45, 0.45], "cpu") is first  # a list, a device name: same key
    torch.testing.assert_close(first, torch.tensor((0.45, 0.45, 0.45)), rtol=0, atol=0)
    wide = device_constant((0.45, 0.45, 0.45), "cpu", torch.float64)
    assert wide is not first and wide.dtype == torch.float64
    assert device_constant((1, 2), "cpu").dtype == torch.int64  # inferred as torch.tensor does


def test_inside_torch_compile_the_constant_is_part_of_the_graph():
    def scale(x):
        return x * device_constant((2.0, 3.0), x.device)

    compiled = torch.compile(scale, fullgraph=True, backend="eager")
    x = torch.ones(4, 2)
    torch.testing.assert_close(compiled(x), scale(x))
