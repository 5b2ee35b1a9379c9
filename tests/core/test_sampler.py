import pytest

from vssl_core.data.sampler import BatchLayout, StepBatchSampler


def global_batches(num_samples, global_size, per_rank, world, steps, start=0):
    """The set of samples each optimizer step sees, gathered over ranks and micro-batches."""
    layout = BatchLayout.from_recipe(global_size, per_rank, world)
    per_step = [set() for _ in range(steps - start)]
    for rank in range(world):
        micro = list(
            StepBatchSampler(num_samples, layout, rank, seed=3, start_step=start, end_step=steps)
        )
        assert len(micro) == (steps - start) * layout.accum_steps
        assert all(len(m) == layout.per_rank for m in micro)
        for i, m in enumerate(micro):
            per_step[i // layout.accum_steps] |= set(m)
    return per_step


def test_layout_derives_accumulation_and_rejects_bad_splits():
    assert BatchLayout.from_recipe(16, 4, 2).accum_steps == 2
    assert BatchLayout.from_recipe(16, None, 2).per_rank == 8
    with pytest.raises(ValueError, match="multiple of batch.per_rank"):
        BatchLayout.from_recipe(16, 3, 2)


def test_global_batches_do_not_depend_on_world_size_or_accumulation():
    one = global_batches(40, 8, 8, 1, steps=10)
    assert one == global_batches(40, 8, 4, 1, steps=10)
    assert one == global_batches(40, 8, 4, 2, steps=10)
    assert one == global_batches(40, 8, 1, 4, steps=10)


def test_each_epoch_visits_distinct_samples_and_reshuffles():
    steps = global_batches(40, 8, 8, 1, steps=10)
    epoch0 = set().union(*steps[:5])
    assert len(epoch0) == 40  # 5 steps x 8, no repeats
    assert {e for e, _ in steps[0]} == {0} and {e for e, _ in steps[5]} == {1}
    assert [sorted(i for _, i in s) for s in steps[:5]] != [
        sorted(i for _, i in s) for s in steps[5:]
    ]


def test_resuming_mid_epoch_continues_the_same_sequence():
    full = global_batches(40, 8, 4, 2, steps=10)
    assert global_batches(40, 8, 4, 2, steps=10, start=7) == full[7:]


def test_too_few_samples_for_a_global_batch():
    with pytest.raises(ValueError, match="fewer than one global batch"):
        StepBatchSampler(4, BatchLayout.from_recipe(8, None, 1), 0, 0, 0, 1)
