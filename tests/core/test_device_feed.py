"""The device feed: the loader's batches in order, fetched (and on a GPU copied) one step ahead
by a thread; errors surface in the training thread; closing stops the thread and the loader's
generator; training with it logs the same losses as without."""

import threading
import time

import pytest
import torch
from kit.runs import read_metrics

from vssl_core.config import load_config
from vssl_core.data.device_feed import DeviceFeed, wants_device_feed
from vssl_core.engine.trainer import train
from vssl_core.interfaces import Batch
from vssl_core.plugins import load_plugins

CPU = torch.device("cpu")


def batch(i: int, device=CPU) -> Batch:
    ids = torch.tensor([2 * i, 2 * i + 1], device=device)
    clip = torch.full((2, 3, 2, 4, 4), i, dtype=torch.uint8, device=device)
    return Batch(clips=[clip], label=ids, index=ids, keys=ids, extra={"decode_failures": i})


def test_the_feed_gives_the_loaders_batches_in_order_then_stops():
    feed = DeviceFeed(iter([batch(i) for i in range(5)]), CPU)
    got = list(feed)
    assert [b.extra["decode_failures"] for b in got] == [0, 1, 2, 3, 4]
    assert all(int(b.clips[0][0, 0, 0, 0, 0]) == i for i, b in enumerate(got))
    with pytest.raises(StopIteration):  # and again: no wait on an empty queue
        next(feed)
    feed.close()


def test_a_loader_error_is_raised_in_the_training_thread_where_it_happened():
    def source():
        yield batch(0)
        yield batch(1)
        raise RuntimeError("video 7 is corrupt")

    feed = DeviceFeed(source(), CPU)
    assert next(feed).extra["decode_failures"] == 0
    assert next(feed).extra["decode_failures"] == 1
    with pytest.raises(RuntimeError, match="video 7 is corrupt"):
        next(feed)
    feed.close()


def test_closing_stops_the_thread_and_ends_the_loaders_generator():
    ended = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield batch(i)
                i += 1
        finally:
            ended.set()  # what ends ffcv's epoch iterator

    feed = DeviceFeed(endless(), CPU, ahead=2)
    next(feed)
    time.sleep(0.05)  # the thread fills the queue and blocks on it
    feed.close(timeout=5)
    assert not feed._thread.is_alive() and ended.is_set()


def test_device_feed_defaults_to_on_for_a_gpu_only():
    assert wants_device_feed(None, torch.device("cuda")) is True
    assert wants_device_feed(None, CPU) is False
    assert wants_device_feed(True, CPU) is True and wants_device_feed(False, torch.device("cuda")) is False  # fmt: skip
    with pytest.raises(ValueError, match="ahead must be >= 1"):
        DeviceFeed(iter([]), CPU, ahead=0)


def train_losses(recipe, *overrides):
    host = load_plugins()
    result = train(load_config(recipe, list(overrides), host), host)
    assert result.status == "completed" and result.step == 8
    return [r["loss"] for r in read_metrics(result.run_dir)]


@pytest.mark.parametrize("workers", [0, 1])
def test_training_through_the_feed_logs_the_same_losses(tiny_recipe, workers):
    """On a CPU the feed only fetches ahead (with 0 workers the thread runs the dataset itself,
    beside the step): the batches, and so the losses, are exactly those without it."""
    w = f"data.num_workers={workers}"
    without = train_losses(tiny_recipe, w, "run.name=plain", "data.device_feed=false")
    assert train_losses(tiny_recipe, w, "run.name=fed", "data.device_feed=true") == without


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_feed_copies_on_a_side_stream_and_trains_the_same(tiny_recipe):
    cuda = torch.device("cuda")
    source = [batch(i) for i in range(4)]
    for i, b in enumerate(DeviceFeed(iter([s.to(CPU) for s in source]), cuda)):
        assert b.clips[0].device.type == "cuda" and int(b.clips[0][1, 2, 1, 3, 3]) == i
        assert b.keys.tolist() == [2 * i, 2 * i + 1]
    on_gpu = ("train.device=cuda", "data.num_workers=1")
    without = train_losses(tiny_recipe, *on_gpu, "run.name=plain", "data.device_feed=false")
    fed = train_losses(tiny_recipe, *on_gpu, "run.name=fed")  # the default on a GPU
    assert fed == pytest.approx(without, rel=1e-5)
