"""ffcv 1.0.2's Loader, adapted: it iterates over an order we hand it, an error in its pipeline
thread reaches the consumer, and it leaves numba's types alone.

Each change works around a 1.0.2 bug or limit (git main fixes only the first): custom
``TraversalOrder`` classes are rejected; a failing pipeline thread leaves the consumer waiting
forever; ``OSCacheManager.state_type`` mutates numba's interned ``uint8[::1]`` type, which breaks
every later numba compile that involves that type (KeyError in the overload table).
"""

from __future__ import annotations

import threading
from queue import Full

import ffcv.loader.loader as ffcv_loader_module
import numba
import numpy as np
from ffcv.loader import Loader
from ffcv.loader.epoch_iterator import IS_CUDA, EpochIterator
from ffcv.memory_managers import OSCacheManager
from ffcv.pipeline.compiler import Compiler


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class _EpochIterator(EpochIterator):
    """ffcv's iterator, except that an error in its pipeline thread reaches the consumer
    (in 1.0.2 the thread dies and the consumer waits forever)."""

    def run(self) -> None:
        try:
            super().run()
        except BaseException as exc:  # noqa: BLE001 -- handed to the consuming thread
            while not self.terminate_event.is_set():
                try:
                    self.output_queue.put(_Failed(exc), timeout=0.5)
                    return
                except Full:
                    pass

    def __next__(self):
        item = self.output_queue.get()
        if isinstance(item, _Failed):
            self.close()
            raise RuntimeError(f"ffcv's loading thread failed: {item.exc!r}") from item.exc
        if item is None:
            self.close()
            raise StopIteration
        slot, result = item
        if IS_CUDA:  # wait for the slot's host-to-device copies, as ffcv's own __next__
            self.current_stream.wait_stream(self.cuda_streams[slot])
        return result


_READONLY_BYTES = numba.types.Array(numba.uint8, 1, "C", readonly=True)


class _OSCacheManager(OSCacheManager):
    """ffcv's page-cache memory manager with a state type built without mutating numba's
    interned ``uint8[::1]`` type (1.0.2 sets ``mutable = False`` on it, which corrupts every
    numba overload table keyed by that type: later compiles fail with a KeyError)."""

    @property
    def state_type(self):
        return numba.types.Tuple([_READONLY_BYTES, numba.uint64[::1], numba.uint64[::1]])

    def compile_reader(self):
        def read(address, mem_state):  # OSCacheManager's: the allocation starting at address
            size = mem_state[2][np.searchsorted(mem_state[1], address)]
            return mem_state[0][address : address + size]

        return Compiler.compile(read, _READONLY_BYTES(numba.uint64, self.state_type))


_PATCH_LOCK = threading.Lock()


class OrderedLoader(Loader):
    """ffcv's Loader iterating over an order we set (``set_order``) instead of its own."""

    def __init__(self, *args, **kwargs) -> None:
        self._order = np.zeros(0, np.uint64)
        with _PATCH_LOCK:  # Loader.__init__ names its manager class; lend it the fixed one
            ffcv_loader_module.OSCacheManager = _OSCacheManager
            try:
                super().__init__(*args, **kwargs)
            finally:
                ffcv_loader_module.OSCacheManager = OSCacheManager

    def set_order(self, order: np.ndarray) -> None:
        self._order = order

    def next_traversal_order(self) -> np.ndarray:
        return self._order

    def __len__(self) -> int:
        return len(self._order) // self.batch_size

    def __iter__(self) -> _EpochIterator:  # Loader.__iter__ with our iterator class
        Compiler.set_num_threads(self.num_workers)
        order = self.next_traversal_order()[: len(self) * self.batch_size]
        self.next_epoch += 1
        if self.code is None or self.recompile:
            self.generate_code()
        return _EpochIterator(self, order)
