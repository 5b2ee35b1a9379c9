"""The shared MoCo machinery: queue arithmetic, momentum update, InfoNCE, shuffle-BN, and
1 process == 2 processes (gloo) for the queue, the gradient and shuffle-BN."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vssl_core.nn import (
    KeyQueue,
    batch_shuffle,
    batch_unshuffle,
    concat_all_gather,
    forward_in_groups,
    info_nce,
    info_nce_logits,
    momentum_update_,
    shuffled_forward,
)


def test_a_new_queue_holds_unit_rows_and_starts_at_zero():
    q = KeyQueue(dim=4, size=8)
    assert q.queue.shape == (8, 4) and int(q.ptr) == 0
    torch.testing.assert_close(q.queue.norm(dim=1), torch.ones(8))
    assert {"queue", "ptr"} <= set(q.state_dict())


def test_enqueue_is_fifo_and_wraps_around():
    q = KeyQueue(dim=2, size=6)
    blocks = [torch.full((2, 2), float(i)) for i in range(4)]
    for i, block in enumerate(blocks[:3]):
        q.enqueue(block)
        assert int(q.ptr) == (2 * (i + 1)) % 6
    assert q.queue[:, 0].tolist() == [0, 0, 1, 1, 2, 2]
    q.enqueue(blocks[3])  # wrapped: the oldest block (0) is overwritten
    assert int(q.ptr) == 2
    assert q.queue[:, 0].tolist() == [3, 3, 1, 1, 2, 2]


def test_a_loaded_queue_continues_at_its_loaded_pointer():
    saved = KeyQueue(dim=2, size=6)
    saved.enqueue(torch.full((2, 2), 1.0))  # ptr 2
    other = KeyQueue(dim=2, size=6)
    for _ in range(2):
        other.enqueue(torch.full((2, 2), 9.0))  # ptr 4 (also in its host copy)
    other.load_state_dict(saved.state_dict())
    other.enqueue(torch.full((2, 2), 5.0))
    assert other.queue[:, 0].tolist()[:4] == [1, 1, 5, 5] and int(other.ptr) == 4


@pytest.mark.parametrize("global_batch", [4, 7, 12])
def test_enqueue_rejects_a_batch_that_does_not_divide_the_queue(global_batch):
    q = KeyQueue(dim=2, size=6)
    with pytest.raises(
        ValueError, match=f"queue size 6 is not divisible by the global batch {global_batch}"
    ):
        q.enqueue(torch.ones(global_batch, 2))


def test_negatives_is_a_copy_that_survives_a_later_enqueue():
    q = KeyQueue(dim=3, size=4)
    w = torch.randn(2, 3, requires_grad=True)
    loss = info_nce(w, torch.randn(2, 3), q.negatives(), 0.2)
    q.enqueue(torch.randn(4, 3))  # in place, before backward
    loss.backward()  # would fail "modified by an inplace operation" without the copy
    assert w.grad is not None


def _tiny():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


def test_momentum_update_follows_the_formula_and_leaves_buffers_alone():
    target, source = _tiny(), _tiny()
    for p in source.parameters():
        p.data.add_(1.0)
    source[1].running_mean.fill_(5.0)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    m = 0.9
    momentum_update_(target, source, m)
    src = dict(source.named_parameters())
    for name, p in target.named_parameters():
        torch.testing.assert_close(p, m * before[name] + (1 - m) * src[name], rtol=0, atol=1e-7)
    for name, b in target.named_buffers():
        assert torch.equal(b, before[name]), name


def test_momentum_update_rejects_a_mismatched_pair():
    with pytest.raises(ValueError, match="different parameters"):
        momentum_update_(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2)), 0.99)


def test_info_nce_equals_a_hand_computed_value():
    q = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # normalized inside: rows (1,0), (0,1)
    k = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    queue = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, -3.0]])
    tau = 0.5
    s = 1 / math.sqrt(2)
    # row 0: q=(1,0): pos s, negatives 1, -1, 0;  row 1: q=(0,1): pos 1, negatives 0, 0, -1
    rows = [[s, 1.0, -1.0, 0.0], [1.0, 0.0, 0.0, -1.0]]
    expected = sum(-r[0] / tau + math.log(sum(math.exp(v / tau) for v in r)) for r in rows) / len(
        rows
    )
    torch.testing.assert_close(info_nce(q, k, queue, tau), torch.tensor(expected))
    logits = info_nce_logits(q, k, queue, tau)
    torch.testing.assert_close(logits, torch.tensor(rows) / tau)


@pytest.mark.parametrize(
    "q_shape, k_shape, queue_shape",
    [((2, 3), (2, 4), (5, 3)), ((2, 3), (2, 3), (5, 4)), ((6,), (6,), (5, 6))],
)
def test_info_nce_checks_shapes(q_shape, k_shape, queue_shape):
    with pytest.raises(ValueError, match="must be"):
        info_nce(torch.ones(q_shape), torch.ones(k_shape), torch.ones(queue_shape), 0.2)


@pytest.mark.parametrize("with_keys", [True, False])
def test_shuffle_then_unshuffle_is_the_identity(with_keys):
    x = torch.arange(12.0).reshape(6, 2)
    keys = torch.arange(100, 106) if with_keys else None
    shuffled, restore = batch_shuffle(x, keys)
    assert sorted(shuffled[:, 0].tolist()) == x[:, 0].tolist()
    assert torch.equal(batch_unshuffle(shuffled, restore), x)
    if with_keys:  # the permutation is a function of the keys: no global RNG involved
        assert torch.equal(batch_shuffle(x, keys)[0], shuffled)
        assert not torch.equal(shuffled, x)


def test_shuffled_forward_gives_bn_groups_other_samples():
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(3)
    x = torch.randn(8, 3)
    keys = torch.arange(8)
    plain = forward_in_groups(bn, x, 2)
    shuffled = shuffled_forward(bn, x, keys, groups=2)
    assert not torch.allclose(plain, shuffled)  # other group members, other statistics
    torch.testing.assert_close(shuffled_forward(bn, x, keys, groups=1), bn(x))  # skipped
    with pytest.raises(ValueError, match="cannot be split into 3 equal BN groups"):
        forward_in_groups(bn, x, 3)


def test_concat_all_gather_is_the_identity_on_one_process():
    x = torch.randn(3, 2)
    assert concat_all_gather(x) is x


# ------------------------------------------------------------------------ 2 processes (gloo)
B, D, K = 4, 3, 16


def _data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2 * B, 5, generator=g)
    k = F.normalize(torch.randn(2 * B, D, generator=g), dim=1)
    queue = torch.randn(K, D, generator=g)
    return x, k, queue, torch.arange(2 * B) * 7919


def _net():
    torch.manual_seed(3)
    return nn.Linear(5, D)


def _encoder():
    torch.manual_seed(4)
    return nn.Sequential(nn.Linear(5, D), nn.BatchNorm1d(D))


def _rank_main(rank, world, init_file, out_dir):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        x, k, queue_init, keys = _data()
        mine = slice(rank * B, (rank + 1) * B)
        queue = KeyQueue(D, K)
        queue.queue.copy_(queue_init)
        queue.enqueue(concat_all_gather(k[mine]))
        model = DistributedDataParallel(_net())
        info_nce(model(x[mine]), k[mine], queue_init, 0.2).backward()
        shuffled, restore = batch_shuffle(x[mine], keys[mine])
        out = {
            "queue": queue.queue.clone(),
            "ptr": queue.ptr.clone(),
            "grad": model.module.weight.grad.clone(),
            "roundtrip": batch_unshuffle(shuffled, restore),
            "shuffled_bn": shuffled_forward(_encoder(), x[mine], keys[mine], groups=1),
        }
        torch.save(out, f"{out_dir}/rank{rank}.pt")
        # gloo aborts a rank (SIGABRT) that tears its group down while a peer still reads
        # from it: leave together
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_match_one_process_on_the_concatenated_batch(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_rank_main, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    x, k, queue_init, keys = _data()

    queue = KeyQueue(D, K)
    queue.queue.copy_(queue_init)
    queue.enqueue(k)
    net = _net()
    info_nce(net(x), k, queue_init, 0.2).backward()
    grouped = shuffled_forward(_encoder(), x, keys, groups=2)  # 2 BN groups emulate 2 GPUs

    for r, out in enumerate(ranks):
        mine = slice(r * B, (r + 1) * B)
        assert torch.equal(out["queue"], queue.queue) and int(out["ptr"]) == 2 * B
        # DDP averages the per-rank means: the gradient of the global mean, not x2 or /2
        torch.testing.assert_close(out["grad"], net.weight.grad, rtol=1e-5, atol=1e-7)
        assert torch.equal(out["roundtrip"], x[mine])
        torch.testing.assert_close(out["shuffled_bn"], grouped[mine], rtol=1e-5, atol=1e-6)
