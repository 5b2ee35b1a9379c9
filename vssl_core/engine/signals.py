"""SIGTERM and SIGINT: a stop request the trainer honours after the step in flight.

A cluster pre-empting a job sends SIGTERM; Ctrl-C sends SIGINT. Both now mean "finish this step,
save a checkpoint, exit with 128 + the signal" (143, 130), so `vssl train ... && vssl eval ...`
never takes a stopped run for a finished one. Before the first step (building the dataset and
model, loading a checkpoint) there is nothing to save: the signal stops the start-up at once, with
a message. A second Ctrl-C during training stops without saving.
"""

from __future__ import annotations

import contextlib
import signal

from vssl_core.engine.errors import TrainingError

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StartupInterrupted(TrainingError):
    """A stop signal arrived before training began; nothing was written since the last
    checkpoint."""

    def __init__(self, signum: int):
        self.signum = signum
        name = signal.Signals(signum).name
        super().__init__(
            f"{name} during start-up, before the first step: stopped; no checkpoint was written "
            "and the last one (if any) is intact. Run the same command again to start (with "
            "resume=auto it continues from a checkpoint when there is one)"
        )

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StopRequest:
    """Installs the handlers (main thread only) for as long as the ``with`` block runs."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.training = False
        self.honoured = False  # the trainer stopped for it (saved and returned "preempted")
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.training and self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else "stop"

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGTERM)

    def start_training(self) -> None:
        """From now on a signal is a request checked after each step."""
        self.training = True

    def __enter__(self) -> StopRequest:
        for signum in STOP_SIGNALS:
            with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if not self.training:
            self.signum = signum
            raise StartupInterrupted(signum)
        if self.signum == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now, without saving
        self.signum = self.signum or signum

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        # a request that came after the last step's check (the run ends anyway): an outer stop
        # request (`vssl severe` between its settings) still hears of it
        outer = self._previous.get(self.signum) if self.signum and not self.honoured else None
        if self.training and isinstance(getattr(outer, "__self__", None), StopRequest):
            outer(self.signum, None)
