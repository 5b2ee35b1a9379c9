"""Batches fetched and copied to the training device one step ahead, off the training thread.

Why: the trainer reads its loss once per step (one host sync). After that read the device has
only the optimizer step queued, and everything the host does before queuing the next forward
(taking the next batch from the loader, copying its clips to the device) is time the device
idles. A batch of 512 VideoMAE clips is 1.2 GB of uint8: its host-to-device copy takes tens of
milliseconds, and queued on the compute stream it holds back every kernel behind it.

:class:`DeviceFeed` runs a thread that takes each batch from the loader and, on a CUDA device,
queues its copy on a side stream, so both happen while the current step computes. The step
waits on the copy's event (on the device, not the host) and marks the tensors as used by its
stream, so the caching allocator does not hand their memory to the next copy too early. Batches
and their order are exactly the loader's. An error in the thread is raised in the training
thread at the batch where it happened.
"""

from __future__ import annotations

import inspect
import queue
import threading
from collections.abc import Iterator

import torch

from vssl_core.interfaces import Batch

_DONE = object()


class DeviceFeed:
    """An iterator over ``batches``, each already on ``device`` (CUDA: copied on a side stream;
    CPU: fetched ahead only), at most ``ahead`` batches in flight."""

    def __init__(self, batches: Iterator[Batch], device: torch.device, ahead: int = 1) -> None:
        if ahead < 1:
            raise ValueError(f"DeviceFeed ahead must be >= 1, got {ahead}")
        self._cuda = device.type == "cuda"
        if self._cuda and device.index is None:  # the thread sets the device by its index
            device = torch.device("cuda", torch.cuda.current_device())
        self.device = device
        self._source = batches
        self._stream = torch.cuda.Stream(device) if self._cuda else None
        self._queue: queue.Queue = queue.Queue(maxsize=ahead)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vssl-device-feed", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        """Queue ``item`` unless the feed is closed meanwhile (never blocks forever)."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            if self._cuda:
                torch.cuda.set_device(self.device)
            for batch in self._source:
                if self._stop.is_set():
                    return
                event = None
                if self._cuda:
                    with torch.cuda.stream(self._stream):
                        batch = batch.to(self.device, non_blocking=True)
                        event = torch.cuda.Event()
                        event.record(self._stream)
                if not self._put((batch, event)):
                    return
            self._put(_DONE)
        except BaseException as exc:  # raised again in the training thread
            self._put(exc)
        finally:
            if self._stop.is_set() and inspect.isgenerator(self._source):
                # closed early: end the loader's generator (ffcv's decoding thread with it)
                # here, in the thread that ran it
                self._source.close()

    def __iter__(self) -> DeviceFeed:
        return self

    def __next__(self) -> Batch:
        item = self._queue.get()
        if item is _DONE:
            self._queue.put(_DONE)  # a later next() stops again instead of waiting forever
            raise StopIteration
        if isinstance(item, BaseException):
            raise item
        batch, event = item
        if event is not None:
            stream = torch.cuda.current_stream(self.device)
            stream.wait_event(event)  # the device waits for the copy; the host does not
            for tensor in _tensors(batch):
                tensor.record_stream(stream)
        return batch

    def close(self, timeout: float = 10.0) -> None:
        """Stop fetching. Call before the loader's workers are shut down or right after: the
        thread leaves at its next batch or when its loader fails."""
        self._stop.set()
        while True:  # free the queue so a blocked put returns
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout)


def _tensors(batch: Batch) -> list[torch.Tensor]:
    found = [*batch.clips, batch.label, batch.index, batch.keys, *batch.extra.values()]
    return [t for t in found if torch.is_tensor(t) and t.device.type == "cuda"]


def wants_device_feed(setting: bool | None, device: torch.device) -> bool:
    """``data.device_feed``: None (the default) turns it on for a GPU."""
    return device.type == "cuda" if setting is None else bool(setting)
