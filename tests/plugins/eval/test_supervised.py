"""The ``supervised`` objective: heads from the registry, losses per task, mixup/cutmix, frozen
backbones, layer-wise lr decay and pretrained weights."""

import pytest
import torch
from vssl_eval.mixup import MixSettings, draw_mix, mix_batch, smooth_one_hot

from vssl_core.engine.checkpoint import CheckpointError
from vssl_core.engine.optim import build_optimizer
from vssl_core.interfaces import Batch
from vssl_core.schema import OptimSection


@pytest.fixture
def build(host):
    def make(backbone=None, **kwargs):
        reg = host.registry
        backbone = backbone or reg.get("backbone", "cnn3d_small").factory(
            img_size=16, num_frames=4, width=4
        )
        kwargs.setdefault("num_classes", 4)
        kwargs.setdefault("task", "classification")
        return reg.get("objective", "supervised").factory(backbone=backbone, **kwargs)

    return make


def batch(label, B=4, size=16):
    clip = torch.randn(B, 3, 4, size, size)
    return Batch(clips=[clip], label=label, index=torch.arange(B), keys=torch.arange(B) + 7)


def tiny_vit(host, depth=3):
    return host.registry.get("backbone", "vit_tiny").factory(
        img_size=16, num_frames=4, patch_size=8, depth=depth
    )


@pytest.mark.parametrize(
    "task, label",
    [
        ("classification", torch.tensor([0, 1, 2, 3])),
        ("multilabel", torch.tensor([[1.0, 0, 0, 1]] * 4)),
        ("counting", torch.tensor([2.0, 3.0, 5.0, 7.0])),
    ],
)
def test_each_task_gives_a_finite_loss_and_gradients_to_every_trainable_parameter(
    build, task, label
):
    model = build(task=task)
    out = model(batch(label))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    scores = model.predict(torch.randn(2, 3, 4, 16, 16))
    assert scores.shape == ((2, 1) if task == "counting" else (2, 4))
    if task == "classification":
        assert torch.allclose(scores.sum(1), torch.ones(2))


def test_labels_that_do_not_fit_the_task_are_a_clear_error(build):
    with pytest.raises(ValueError, match="do not fit the task"):
        build(task="counting")(batch(torch.tensor([0, 1, 2, 3])))


def test_unset_classes_and_foreign_head_arguments_are_named(build):
    with pytest.raises(ValueError, match="`vssl eval` fills them"):
        build(num_classes=None)
    with pytest.raises(
        ValueError, match="objective.head.dropuot: unknown key; did you mean 'dropout'"
    ):
        build(head={"name": "linear_head", "dropuot": 0.5})
    with pytest.raises(ValueError, match="classification only"):
        build(task="multilabel", label_smoothing=0.1)


def test_smoothing_and_mixup_targets_are_soft_distributions_drawn_from_the_batch_key():
    t = smooth_one_hot(torch.tensor([1, 0]), 4, 0.1)
    assert torch.allclose(t[0], torch.tensor([0.025, 0.925, 0.025, 0.025]))
    s = MixSettings(mixup_alpha=0.8, cutmix_alpha=1.0, smoothing=0.1)
    clip = torch.randn(4, 3, 2, 8, 8)
    labels = torch.tensor([0, 1, 2, 3])
    a = mix_batch(clip, labels, 4, key=5, s=s)
    b = mix_batch(clip, labels, 4, key=5, s=s)
    assert torch.equal(a[0], b[0]) and a[2] == b[2]  # a resumed step mixes the same way
    assert torch.allclose(a[1].sum(1), torch.ones(4))
    lam = a[2]
    assert torch.allclose(
        a[1][0],
        smooth_one_hot(labels, 4, 0.1)[0] * lam + smooth_one_hot(labels, 4, 0.1)[3] * (1 - lam),
    )


def test_cutmix_lam_is_the_share_of_pixels_kept():
    s = MixSettings(cutmix_alpha=1.0)
    for key in range(20):
        lam, box = draw_mix(key, s, 8, 8)
        top, bottom, left, right = box
        assert lam == pytest.approx(1 - (bottom - top) * (right - left) / 64)


def test_a_frozen_backbone_stays_in_eval_mode_and_is_left_out_of_the_optimizer(build):
    model = build(freeze_backbone=True).train()
    assert model.training and not model.backbone.training and model.head.training
    opt = build_optimizer(model, OptimSection(), 0.1, torch.device("cpu"))
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    assert in_opt == {id(p) for p in model.head.parameters()}


def test_layer_decay_gives_each_block_its_lr(host, build):
    model = build(backbone=tiny_vit(host, depth=3), layer_decay=0.5)
    opt = build_optimizer(model, OptimSection(), 1.0, torch.device("cpu"))
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    names = dict(model.named_parameters())
    expected = {  # depth L = 3: layer id i gets 0.5 ** (L + 1 - i)
        "backbone.patch_embed.proj.weight": 0.5**4,
        "backbone.blocks.0.attn.qkv.weight": 0.5**3,
        "backbone.blocks.1.mlp.fc1.bias": 0.5**2,
        "backbone.blocks.2.norm1.weight": 0.5,
        "backbone.norm.weight": 1.0,
        "head.fc.weight": 1.0,
    }
    for name, lr in expected.items():
        assert lr_of[id(names[name])] == pytest.approx(lr), name
    assert opt.param_groups[0]["lr"] == 1.0  # the group the trainer logs
    with pytest.raises(ValueError, match="layer_decay needs a transformer backbone"):
        build(layer_decay=0.75)


def test_pretrained_backbone_loads_strictly_from_a_vssl_checkpoint(host, build, tmp_path):
    source = build()
    path = tmp_path / "pre.pt"
    torch.save({"format": "vssl", "version": 1, "step": 3, "model": source.state_dict()}, path)
    model = build(backbone_checkpoint=str(path))
    for k, v in source.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[k], v)
    wider = host.registry.get("backbone", "cnn3d_small").factory(img_size=16, num_frames=4, width=8)
    with pytest.raises(CheckpointError, match="does not fit the backbone"):
        build(backbone=wider, backbone_checkpoint=str(path), checkpoint_format="vssl")
