"""A linear probe on a fixed random network learns a linearly separable synthetic task, and
only the head moves."""

import torch

from vssl_core.engine.optim import build_optimizer
from vssl_core.interfaces import Batch
from vssl_core.schema import OptimSection

MEANS = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [-1.0, -1.0, -1.0]])  # per class


def colour_clips(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips whose class is their mean colour, under noise of half their strength."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 4
    clips = MEANS[labels].view(n, 3, 1, 1, 1) + 0.5 * torch.randn(n, 3, 4, 16, 16, generator=g)
    return clips, labels


def test_linear_probe_on_random_features_reaches_high_accuracy(host):
    torch.manual_seed(0)
    backbone = host.registry.get("backbone", "cnn3d_small").factory(
        img_size=16, num_frames=4, width=8
    )
    model = host.registry.get("objective", "supervised").factory(
        backbone=backbone, num_classes=4, task="classification", freeze_backbone=True
    )
    frozen = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    opt = build_optimizer(model, OptimSection(lr=0.05, weight_decay=0.0), 0.05, torch.device("cpu"))
    model.train()
    for step in range(20):
        clips, labels = colour_clips(32, seed=step)
        out = model(Batch([clips], labels, torch.arange(32), torch.arange(32)))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    model.eval()
    clips, labels = colour_clips(200, seed=1000)
    with torch.no_grad():
        accuracy = (model.predict(clips).argmax(1) == labels).float().mean().item()
    assert accuracy >= 0.9, accuracy  # chance is 0.25
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, frozen[k]), f"{k} changed in a frozen backbone"
