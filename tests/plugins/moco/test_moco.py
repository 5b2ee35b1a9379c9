"""Video MoCo objective: key encoder, queue, loss, views, trainer runs, 1 rank == 2 ranks.

Shape legend: B batch, C channels, T frames, H height, W width, D embedding width, K queue size.
"""

import math
import subprocess
import sys

import pytest
import torch
import yaml
from kit import faults
from kit.runs import cli_env, read_metrics
from vssl_backbones.cnn3d import cnn3d_small
from vssl_moco.loss import moco_loss
from vssl_moco.objective import MoCo

from vssl_core.config import load_config
from vssl_core.engine.checkpoint import load_checkpoint
from vssl_core.engine.optim import param_groups
from vssl_core.engine.trainer import train
from vssl_core.interfaces import Batch
from vssl_core.nn import info_nce
from vssl_core.plugins import load_plugins
from vssl_core.random import sample_key

B = 4


def tiny(**kw) -> MoCo:
    torch.manual_seed(0)
    backbone = cnn3d_small(img_size=16, num_frames=4, width=4)
    return MoCo(backbone, **{"dim": 8, "queue_size": 16, **kw})


def batch_of(b: int = B, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    clips = [torch.randn(b, 3, 4, 16, 16, generator=g) for _ in range(2)]
    keys = torch.tensor([sample_key(seed, 0, i) for i in range(b)], dtype=torch.int64)
    return Batch(clips=clips, label=torch.zeros(b), index=torch.arange(b), keys=keys)


def test_the_key_encoder_starts_equal_and_gets_no_gradient():
    model = tiny()
    for q, k in [(model.backbone, model.key_backbone), (model.projector, model.key_projector)]:
        for (name, p), (_, p_k) in zip(q.named_parameters(), k.named_parameters(), strict=True):
            assert torch.equal(p, p_k) and p_k is not p, name
            assert not p_k.requires_grad
    model(batch_of()).loss.backward()
    trainable = {n for n, p in model.named_parameters() if p.grad is not None}
    assert trainable == {n for n, p in model.named_parameters() if p.requires_grad}
    assert not any(n.startswith("key_") for n in trainable)
    in_optimizer = {id(p) for g in param_groups(model, 1e-4) for p in g["params"]}
    assert not any(id(p) in in_optimizer for p in model.key_backbone.parameters())


def test_one_step_enqueues_the_keys_and_moves_the_key_encoder():
    model = tiny(momentum=0.5)
    before = model.queue.queue.clone()
    out = model(batch_of())
    assert torch.equal(model.queue.queue, before)  # enqueued only after the step
    out.loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p.sub_(0.1 * p.grad)
        k_BD = model.key_embedding(
            batch_of().clips[1]
        )  # same BN groups as the forward (one, no shuffle)
    model.after_step(1)
    assert int(model.queue.ptr) == B
    torch.testing.assert_close(model.queue.queue[:B], k_BD)
    assert torch.equal(model.queue.queue[B:], before[B:])
    w_q, w_k = model.backbone.stages[0][0].weight, model.key_backbone.stages[0][0].weight
    assert not torch.equal(w_q, w_k)  # moved half way towards the updated query encoder


def test_the_state_dict_carries_key_encoder_and_queue():
    keys = set(tiny().state_dict())
    assert {"queue.queue", "queue.ptr"} <= keys
    assert any(k.startswith("key_backbone.") for k in keys)
    assert any(k.startswith("key_projector.") for k in keys)


@pytest.mark.parametrize("shuffle_bn, bn_groups", [(True, None), (True, 2), (False, 2)])
def test_forward_gives_a_finite_loss_and_metrics(shuffle_bn, bn_groups):
    out = tiny(shuffle_bn=shuffle_bn, bn_groups=bn_groups)(batch_of())
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert set(out.metrics) == {"acc", "pos_sim", "neg_sim"}
    assert all(torch.isfinite(v) and not v.requires_grad for v in out.metrics.values())
    assert 0.0 <= float(out.metrics["acc"]) <= 1.0


def test_moco_loss_is_the_core_info_nce_and_acc_counts_top_positives():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    k = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    queue = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    loss, metrics = moco_loss(q, k, queue, 0.2)
    torch.testing.assert_close(loss, info_nce(q, k, queue, 0.2))
    assert float(metrics["acc"]) == 0.5  # row 0: positive wins; row 1: the queue's (0, 1) wins
    assert float(metrics["pos_sim"]) == 0.5


@pytest.mark.parametrize(
    "positive, temporal, shared",
    [("two_clips", "independent", False), ("two_augmentations", "shared", False)],
)
def test_views_ask_for_two_clips(positive, temporal, shared):
    views = tiny(positive=positive, stride=2).views()
    assert (views.num_clips, views.frames, views.crop_size, views.stride) == (2, 4, 16, 2)
    assert views.temporal == temporal and views.shared_augmentation is shared
    assert views.augmentation == "random_resized_crop" and views.flip


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"momentum": 1.5}, "momentum=1.5"),
        ({"temperature": 0.0}, "temperature=0.0"),
        ({"bn_groups": 0}, "bn_groups=0"),
        ({"dim": 0}, "dim=0"),
    ],
)
def test_bad_arguments_are_named(kw, match):
    with pytest.raises(ValueError, match=match):
        tiny(**kw)


def test_eval_mode_ignores_bn_groups_and_queues_nothing():
    model = tiny(bn_groups=2).eval()
    out = model(batch_of(1))  # one sample: no 2 BN groups, but eval BN uses running statistics
    assert torch.isfinite(out.loss)
    model.after_step(1)
    assert int(model.queue.ptr) == 0


def test_a_queue_that_the_batch_does_not_divide_fails_with_the_fix():
    model = tiny(queue_size=10)
    model(batch_of())
    with pytest.raises(ValueError, match="queue size 10 is not divisible by the global batch 4"):
        model.after_step(1)


def test_bn_groups_must_divide_the_batch():
    with pytest.raises(ValueError, match="cannot be split into 3 equal BN groups"):
        tiny(bn_groups=3)(batch_of())


@pytest.mark.parametrize("shuffle_bn", [False, True])
def test_bn_groups_run_each_group_as_its_own_batch(shuffle_bn):
    """bn_groups=2 on a batch of 4: queries in BN batches {0,1}, {2,3} (per-GPU BN emulated);
    keys in the same groups, or, with shuffle-BN, in groups of a keyed permutation."""
    model = tiny(shuffle_bn=shuffle_bn, bn_groups=2)
    batch = batch_of(seed=2)  # its keys permute to [0, 2, 1, 3]: groups {0, 2}, {1, 3}
    clip_q, clip_k = batch.clips
    with torch.no_grad():
        q_BD = torch.cat([model.query_embedding(clip_q[:2]), model.query_embedding(clip_q[2:])])
        order = shuffled_order(batch.keys) if shuffle_bn else torch.arange(B)
        assert order.tolist() == ([0, 2, 1, 3] if shuffle_bn else [0, 1, 2, 3])
        k_BD = torch.empty_like(q_BD)
        for group in order.chunk(2):
            k_BD[group] = model.key_embedding(clip_k[group])
        expected, _ = moco_loss(q_BD, k_BD, model.queue.negatives(), model.temperature)
        out = model(batch)
    torch.testing.assert_close(out.loss, expected)
    whole, _ = moco_loss(
        model.query_embedding(clip_q), model.key_embedding(clip_k), model.queue.negatives(), 0.2
    )
    assert not torch.allclose(out.loss, whole)  # the groups change the BN statistics


def shuffled_order(keys_B: torch.Tensor) -> torch.Tensor:
    from vssl_core.nn.contrastive import SHUFFLE_STREAM
    from vssl_core.random import keyed_uniform

    return torch.sort(keyed_uniform(keys_B, 1, SHUFFLE_STREAM)[:, 0], stable=True).indices


# ------------------------------------------------------------------------------ trainer runs
RECIPE = {
    "run": {"name": "moco", "seed": 0},
    "data": {
        "dataset": {
            "name": "moving_shapes",
            "num_samples": 32,
            "num_classes": 4,
            "num_frames": 8,
            "size": 32,
        },
        "num_workers": 0,
    },
    "backbone": {"name": "cnn3d_small", "img_size": 32, "num_frames": 4, "width": 4},
    "objective": {"name": "moco", "dim": 16, "queue_size": 32, "momentum": 0.9, "bn_groups": 2},
    "batch": {"global_size": 8},
    "optim": {"name": "sgd", "lr": 0.05, "lr_scaling": "none", "weight_decay": 1e-4},
    "train": {"max_steps": 2},
    "checkpoint": {"every_steps": 100},
    "log": {"every_steps": 1, "progress_bar": False, "tensorboard": False},
}


@pytest.fixture
def moco_recipe(tmp_path):
    path = tmp_path / "moco.yaml"
    recipe = {**RECIPE, "run": {**RECIPE["run"], "output_root": str(tmp_path / "runs")}}
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def test_a_two_step_trainer_run_fills_the_queue_and_saves_it(moco_recipe):
    host = load_plugins()
    result = train(load_config(moco_recipe, [], host), host)
    assert result.status == "completed" and result.step == 2
    rows = read_metrics(result.run_dir)
    assert [r["step"] for r in rows] == [1, 2]
    assert all(math.isfinite(r["loss"]) and {"acc", "pos_sim"} <= set(r) for r in rows)
    state = load_checkpoint(result.run_dir / "checkpoints" / "last.pt")["model"]
    assert int(state["queue.ptr"]) == 16  # 2 steps x global batch 8
    assert not torch.equal(
        state["backbone.stages.0.0.weight"], state["key_backbone.stages.0.0.weight"]
    )


def test_resume_continues_the_queue_and_key_encoder_exactly(moco_recipe):
    host = load_plugins()
    full = train(load_config(moco_recipe, ["run.name=full", "train.max_steps=4"], host), host)
    host = load_plugins(extra=[("sigterm", faults.SigtermAt(1))])
    split = train(load_config(moco_recipe, ["run.name=split", "train.max_steps=4"], host), host)
    assert split.status == "preempted" and split.step == 2
    host = load_plugins()
    resumed = train(
        load_config(moco_recipe, ["run.name=split", "train.max_steps=4", "resume=true"], host),
        host,
    )
    assert resumed.status == "completed" and resumed.step == 4
    a = load_checkpoint(full.run_dir / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(resumed.run_dir / "checkpoints" / "last.pt")["model"]
    assert a.keys() == b.keys() and int(a["queue.ptr"]) == 0  # 4 x 8 = 32: wrapped around
    for k in a:
        assert torch.equal(a[k], b[k]), k
    losses = [[r["loss"] for r in read_metrics(r.run_dir)] for r in (full, resumed)]
    assert losses[0] == losses[1]


def _cli(cwd, recipe, nproc, name, *overrides):
    cmd = [sys.executable, "-m", "vssl_core.cli"]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", "-m", "vssl_core.cli"]  # fmt: skip
    cmd += ["train", str(recipe), f"run.name={name}", *overrides]
    out = subprocess.run(cmd, capture_output=True, text=True, env=cli_env(), cwd=cwd, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return [r["loss"] for r in read_metrics(cwd / "runs" / name)]


@pytest.mark.slow
def test_two_ranks_match_one_rank_with_the_same_global_batch(moco_recipe, tmp_path):
    """All-gather, queue, shuffle-BN and the gradient under DDP: with bn_groups=2 one process
    computes what two do (BN groups = ranks), so the loss curves agree."""
    steps = ["train.max_steps=6"]
    one = _cli(tmp_path, moco_recipe, 1, "one", "batch.per_rank=8", *steps)
    two = _cli(tmp_path, moco_recipe, 2, "two", "batch.per_rank=4", *steps)
    assert len(one) == len(two) == 6
    assert two == pytest.approx(one, rel=1e-4)
    assert (
        int(load_checkpoint(tmp_path / "runs/two/checkpoints/last.pt")["model"]["queue.ptr"]) == 16
    )


def _after_steps(model: MoCo, steps: int) -> dict[str, torch.Tensor]:
    """Key-encoder weights after ``steps`` momentum updates towards a moved query encoder."""
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(0.1)
    for step in range(1, steps + 1):
        model.after_step(step)
    return {k: v.clone() for k, v in model.key_backbone.state_dict().items()}


def test_the_constant_momentum_schedule_keeps_the_numbers_with_or_without_a_run():
    from vssl_core.interfaces import RunInfo
    from vssl_core.nn import momentum_update_

    plain = tiny(momentum=0.9)
    with_run = tiny(momentum=0.9, momentum_schedule="constant")
    with_run.begin_run(RunInfo(total_steps=3, steps_per_epoch=1))
    reference = tiny(momentum=0.9)
    with torch.no_grad():
        for p in reference.backbone.parameters():
            p.add_(0.1)
    for _ in range(3):  # what after_step did before schedules existed
        momentum_update_(reference.key_backbone, reference.backbone, 0.9)
    a, b = _after_steps(plain, 3), _after_steps(with_run, 3)
    for k, v in reference.key_backbone.state_dict().items():
        assert torch.equal(a[k], v) and torch.equal(b[k], v), k


def test_the_cosine_momentum_schedule_rises_to_one_over_the_run():
    from vssl_core.interfaces import RunInfo

    model = tiny(momentum=0.99, momentum_schedule="cosine")
    with pytest.raises(RuntimeError, match="needs the run's length"):
        model.momentum_at(1)
    model.begin_run(RunInfo(total_steps=4, steps_per_epoch=2))
    got = [model.momentum_at(k) for k in range(5)]
    assert got == pytest.approx([1 - 0.01 * (math.cos(math.pi * k / 4) + 1) / 2 for k in range(5)])
    assert got[0] == pytest.approx(0.99) and got[-1] == 1.0
    with pytest.raises(ValueError, match="momentum_schedule='step'"):
        tiny(momentum_schedule="step")
