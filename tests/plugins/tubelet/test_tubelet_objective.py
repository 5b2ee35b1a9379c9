"""Tubelet-contrast objective: pairs, key encoder, queue, loss, views, recipes, a trainer run.

Shape legend: B batch, C channels, T frames, H height, W width, D embedding width, K queue size.
"""

from pathlib import Path

import pytest
import torch
import yaml
from vssl_tubelet.loss import nce_loss
from vssl_tubelet.objective import TubeletContrast
from vssl_tubelet.tubelets import render, sample_tubelets

from vssl_core.config import load_config
from vssl_core.engine.optim import param_groups
from vssl_core.engine.trainer import train
from vssl_core.interfaces import Backbone, Batch
from vssl_core.nn import info_nce
from vssl_core.plugins import load_plugins
from vssl_core.random import sample_key

ROOT = Path(__file__).resolve().parents[3]
PLUGIN_RECIPES = ROOT / "plugins" / "vssl_tubelet" / "recipes"
B, T, S = 4, 4, 32


class StandIn(Backbone):
    """A tiny Conv3d-BN-ReLU-pool backbone (BN makes shuffle-BN meaningful)."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.num_features, self.input_size = width, (T, S, S)
        self.net = torch.nn.Sequential(
            torch.nn.Conv3d(3, width, 3, 2, 1, bias=False),
            torch.nn.BatchNorm3d(width),
            torch.nn.ReLU(),
        )

    def forward_features(self, clip_BCTHW: torch.Tensor) -> torch.Tensor:
        return self.net(clip_BCTHW)

    def forward(self, clip_BCTHW: torch.Tensor) -> torch.Tensor:
        return self.forward_features(clip_BCTHW).mean(dim=(2, 3, 4))


def tiny(**kw) -> TubeletContrast:
    torch.manual_seed(0)
    return TubeletContrast(StandIn(), **{"dim": 8, "queue_size": 16, **kw})


def batch_of(b: int = B, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    clips = [torch.randn(b, 3, T, S, S, generator=g) for _ in range(2)]
    keys = torch.tensor([sample_key(seed, 0, i) for i in range(b)], dtype=torch.int64)
    return Batch(clips=clips, label=torch.zeros(b), index=torch.arange(b), keys=keys)


# ------------------------------------------------------------------------------ pairs


def test_the_key_clip_is_the_neighbours_second_clip_with_the_same_tubelets():
    model = tiny(color_jitter=False)
    batch = batch_of()
    query, key = model.make_pair(batch)
    tub = sample_tubelets(batch.keys, model.tubelets, T, S, S)
    _, alpha_BNTHW = render(batch.clips[0], tub)
    bare = (alpha_BNTHW == 0).all(1, keepdim=True).expand_as(query)
    assert bare.any() and (~bare).any()
    assert torch.equal(query[bare], batch.clips[0][bare])  # video i where no tubelet is
    assert torch.equal(key[bare], batch.clips[1].roll(-1, 0)[bare])  # video i+1, its 2nd clip
    same_bg = Batch(**{**batch.__dict__, "clips": [batch.clips[0], batch.clips[0].roll(1, 0)]})
    q_same, k_same = model.make_pair(same_bg)  # key background = query background
    assert torch.equal(q_same, k_same)


def test_colour_jitter_keeps_identical_pixels_identical():
    batch = batch_of(b=16)
    same_bg = Batch(**{**batch.__dict__, "clips": [batch.clips[0], batch.clips[0].roll(1, 0)]})
    query, key = tiny(color_jitter=True).make_pair(same_bg)
    assert torch.equal(query, key)
    plain, _ = tiny(color_jitter=False).make_pair(same_bg)
    assert not torch.equal(query, plain)  # about half the samples draw a jitter


def test_a_batch_of_one_cannot_pair_and_says_why():
    with pytest.raises(ValueError, match="batch of 1"):
        tiny()(batch_of(b=1))


# ------------------------------------------------------------------------------ MoCo


def test_one_step_gives_a_finite_loss_and_no_gradient_to_the_key_encoder():
    model = tiny()
    model.train()
    out = model(batch_of())
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert set(out.metrics) == {"acc", "batch_acc", "pos_sim", "neg_sim"}
    assert all(torch.isfinite(v) and not v.requires_grad for v in out.metrics.values())
    out.loss.backward()
    for name, p in model.named_parameters():
        if name.startswith(("key_encoder.", "key_fc.")):
            assert p.grad is None and not p.requires_grad, name
        else:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    in_optimizer = {id(p) for g in param_groups(model, 1e-4) for p in g["params"]}
    assert not any(id(p) in in_optimizer for p in model.key_encoder.parameters())


def test_after_step_enqueues_the_keys_and_moves_the_key_encoder():
    model = tiny(momentum=0.5, shuffle_bn=False)
    before = model.queue.queue.clone()
    batch = batch_of()
    model(batch).loss.backward()
    assert torch.equal(model.queue.queue, before)  # enqueued only after the step
    with torch.no_grad():
        _, key_BCTHW = model.make_pair(batch)
        k_BD = model.key_embedding(key_BCTHW)
        for p in model.parameters():
            if p.grad is not None:
                p.sub_(0.1 * p.grad)
        expected = {
            n: 0.5 * p + 0.5 * model.backbone.get_parameter(n)
            for n, p in model.key_encoder.named_parameters()
        }
    model.after_step(1)
    assert int(model.queue.ptr) == B
    assert torch.allclose(model.queue.queue[:B], k_BD, atol=1e-6)
    for name, p in model.key_encoder.named_parameters():
        assert torch.allclose(p, expected[name], atol=1e-6), name


def test_the_loss_is_one_directional_info_nce_against_the_queue():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    k = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    queue = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    loss, metrics = nce_loss(q, k, queue, 0.2)
    assert torch.allclose(loss, info_nce(q, k, queue, 0.2))
    assert float(metrics["acc"]) == 0.5 and float(metrics["pos_sim"]) == 0.5
    assert float(metrics["batch_acc"]) == 0.5  # both keys are (1, 0): row 1 picks key 0


def test_the_state_dict_uses_the_official_module_names():
    keys = set(tiny().state_dict())
    assert {"queue.queue", "queue.ptr"} <= keys
    for prefix in ("backbone.", "fc.", "key_encoder.", "key_fc."):
        assert any(k.startswith(prefix) for k in keys), prefix


@pytest.mark.parametrize("mlp, layers", [(True, 3), (False, 1)])
def test_the_projection_head(mlp, layers):
    fc = tiny(mlp=mlp).fc
    assert len(list(fc.modules())) - (1 if mlp else 0) == layers


def test_views_ask_for_two_independent_clips():
    views = tiny(stride=3).views()
    assert (views.num_clips, views.frames, views.crop_size, views.stride) == (2, T, S, 3)
    assert views.temporal == "independent" and not views.shared_augmentation
    assert views.augmentation == "multiscale_crop" and views.flip


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"momentum": 1.5}, "momentum=1.5"),
        ({"temperature": 0.0}, "temperature=0.0"),
        ({"num_tubelets": 0}, "num_tubelets=0"),
        ({"bn_groups": 0}, "bn_groups=0"),
        ({"dim": 0}, "dim=0"),
    ],
)
def test_bad_arguments_are_named(kw, match):
    with pytest.raises(ValueError, match=match):
        tiny(**kw)


# ------------------------------------------------------------------------------ recipes


def test_the_recipes_validate_and_take_the_papers_settings():
    host = load_plugins()
    cfg = load_config(ROOT / "recipes" / "tubelet.yaml", [], host).data
    obj = cfg["objective"]
    assert obj["name"] == "tubelet" and obj["transformation"] == "rotation"
    assert obj["motion"] == "nonlinear" and obj["momentum"] == 0.999
    assert obj["num_tubelets"] == 8  # the CPU recipe's change; the fragment keeps the paper's 2
    fragment = yaml.safe_load((PLUGIN_RECIPES / "tubelet" / "pretrain.yaml").read_text())
    assert fragment["objective"]["num_tubelets"] == 2
    assert cfg["backbone"]["name"] == "cnn3d_small"
    assert cfg["optim"]["name"] == "sgd" and cfg["optim"]["lr_base_batch"] == 32
    assert cfg["train"]["grad_clip"] == 40
    assert (obj["queue_size"] % cfg["batch"]["global_size"]) == 0


def test_a_bad_choice_in_a_recipe_names_the_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "defaults": [str(ROOT / "recipes" / "tubelet.yaml")],
                "objective": {"transformation": "flip"},
            }
        )
    )
    with pytest.raises(Exception, match="objective.transformation"):
        load_config(path, [], load_plugins())


@pytest.mark.slow
def test_the_cpu_recipe_trains_a_few_steps(tmp_path):
    host = load_plugins()
    overrides = [
        f"run.output_root={tmp_path}",
        "train.max_steps=3",
        "data.dataset.num_samples=48",
        "objective.bn_groups=null",
        "objective.queue_size=32",
        "log.every_steps=1",
        "log.progress_bar=false",
        "log.tensorboard=false",
    ]
    result = train(load_config(ROOT / "recipes" / "tubelet.yaml", overrides, host), host)
    assert result.status == "completed" and result.step == 3
    assert result.last_loss is not None and torch.isfinite(torch.tensor(result.last_loss))
