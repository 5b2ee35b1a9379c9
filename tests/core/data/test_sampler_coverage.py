"""StepBatchSampler under DDP: every sample once per epoch across ranks (the remainder of a
dataset that the global batch does not divide is left out of that epoch, a different remainder
each epoch), and resuming mid-epoch continues exactly."""

from collections import Counter

import pytest

from vssl_core.data.sampler import BatchLayout, StepBatchSampler


def _epoch_draws(num_samples, global_size, per_rank, world, epochs=2, start=0):
    """Per rank, the (epoch, index) pairs it loads, micro-batch by micro-batch."""
    layout = BatchLayout.from_recipe(global_size, per_rank, world)
    steps = epochs * (num_samples // global_size)
    return [
        list(StepBatchSampler(num_samples, layout, rank, seed=11, start_step=start, end_step=steps))
        for rank in range(world)
    ]


@pytest.mark.parametrize(
    ("world", "global_size", "per_rank"),
    [(1, 8, 8), (1, 8, 2), (2, 8, 4), (2, 8, 2), (3, 6, 2), (3, 12, 2)],
)
@pytest.mark.parametrize("num_samples", [48, 50])  # 50: a remainder for every layout
def test_every_sample_once_per_epoch_across_ranks(world, global_size, per_rank, num_samples):
    per_rank_batches = _epoch_draws(num_samples, global_size, per_rank, world)
    counts = Counter(pair for batches in per_rank_batches for b in batches for pair in b)
    assert max(counts.values()) == 1  # no sample twice in an epoch, on any rank
    covered = num_samples // global_size * global_size
    left_out = []
    for epoch in (0, 1):
        seen = {i for (e, i) in counts if e == epoch}
        assert len(seen) == covered
        left_out.append(set(range(num_samples)) - seen)
        assert len(left_out[-1]) == num_samples % global_size
    if num_samples % global_size:
        assert left_out[0] != left_out[1]  # the remainder changes with the reshuffle
    lengths = {len(b) for batches in per_rank_batches for b in batches}
    assert lengths == {per_rank}  # equal micro-batches on every rank: no uneven last batch


def test_ranks_see_the_same_number_of_micro_batches():
    draws = _epoch_draws(50, 12, 2, 3)
    assert len({len(d) for d in draws}) == 1


@pytest.mark.parametrize(("world", "per_rank"), [(1, 6), (2, 3), (3, 2), (3, 1)])
def test_resuming_mid_epoch_continues_exactly(world, per_rank):
    full = _epoch_draws(50, 6, per_rank, world, epochs=3)
    accum = 6 // (per_rank * world)
    for start in (1, 8, 9):  # inside epoch 0, at the first step of epoch 1, inside epoch 1
        resumed = _epoch_draws(50, 6, per_rank, world, epochs=3, start=start)
        assert resumed == [d[start * accum :] for d in full]


@pytest.mark.parametrize(
    ("world", "global_size", "per_rank", "repeats"), [(1, 8, 4, 2), (2, 8, 4, 4)]
)
def test_repeats_cover_every_video_once_per_epoch_with_more_steps(
    world, global_size, per_rank, repeats
):
    """Each video gives `repeats` clips: a micro-batch names per_rank / repeats videos and an
    epoch, still every video once, has `repeats` times the steps."""
    num_samples = 48
    layout = BatchLayout.from_recipe(global_size, per_rank, world)
    steps_per_epoch = num_samples * repeats // global_size
    samplers = [
        StepBatchSampler(num_samples, layout, r, seed=11, start_step=0,
                         end_step=2 * steps_per_epoch, repeats=repeats)
        for r in range(world)
    ]  # fmt: skip
    assert samplers[0].steps_per_epoch == steps_per_epoch
    counts = Counter(pair for s in samplers for b in s for pair in b)
    assert max(counts.values()) == 1 and len(counts) == 2 * num_samples
    assert {len(b) for s in samplers for b in s} == {per_rank // repeats}


def test_repeats_that_do_not_divide_the_batch_are_refused():
    layout = BatchLayout.from_recipe(8, 4, 1)
    with pytest.raises(ValueError, match="data.repeats=3 must be >= 1 and divide batch.global"):
        StepBatchSampler(48, layout, 0, seed=1, start_step=0, end_step=4, repeats=3)
