"""Activation checkpointing of the video ViT (``grad_checkpointing: true``, the memory knob for
large ViTs): the whole VideoMAE objective gets the same loss and gradients, stochastic depth
included (the recomputation must replay the same drop masks)."""

import pytest
import torch

from vssl_core.build import build_objective
from vssl_core.interfaces import Batch


def objective(host, checkpointing: bool):
    torch.manual_seed(0)
    recipe = {
        "backbone": {"name": "vit_tiny", "img_size": 32, "num_frames": 4, "patch_size": 8,
                     "depth": 2, "drop_path_rate": 0.3, "grad_checkpointing": checkpointing},
        "objective": {"name": "videomae", "mask_ratio": 0.75, "decoder_depth": 1},
    }  # fmt: skip
    return build_objective(host.registry, recipe).train()


@pytest.mark.parametrize("seed", [0, 1])
def test_checkpointed_encoder_gives_identical_loss_and_gradients(host, seed):
    clip_BCTHW = torch.randn(4, 3, 4, 32, 32, generator=torch.Generator().manual_seed(seed))
    keys_B = torch.arange(4)
    batch = Batch(clips=[clip_BCTHW], label=keys_B, index=keys_B, keys=keys_B)
    grads, losses = [], []
    for checkpointing in (False, True):
        model = objective(host, checkpointing)
        torch.manual_seed(seed)  # the same drop-path draws in both forwards
        loss = model(batch).loss
        loss.backward()
        losses.append(loss.detach())
        grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    assert torch.equal(losses[0], losses[1])
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 10
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=0, atol=0, msg=name)
