"""A stalled or dead rank ends a DDP job with a message naming it, within the timeout.

Why: without a timeout, a rank that stops (killed, out of memory, stuck loading data, frozen)
left the others blocked in a collective with no word (> 180 s seen; gloo's default is 30 min).
Two mechanisms, one key (``train.collective_timeout_s``):

- every rank publishes what it is doing (step, phase, a heartbeat counter) to the job's
  key-value store, within 0.2 s of a change and at least once a second, from a thread;
- a rank that spends longer than the timeout inside one training step ends itself, after
  reading the others' records: a rank whose heartbeat stopped is dead or frozen, a rank still
  in an earlier step is stuck. Steps are the armed phase; set-up, the first step (which may
  compile for minutes), logging, evaluation hooks and checkpoint saves are covered by the process
  group's own per-collective timeout, set a little longer, whose error (and any other
  collective failure, such as a peer's connection closing) is turned into the same message.

On a GPU, NCCL's own watchdog enforces the process group's timeout by ending the process; the
thread here fires first in training steps, which is where stalls happen.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import time
from datetime import timedelta

from vssl_core.engine.errors import TrainingError

EXIT_STALLED = 75  # EX_TEMPFAIL: the job failed for now; resume it once the cause is fixed
PUBLISH_S = 1.0  # a rank publishes its progress at least this often (a heartbeat)...
POLL_S = 0.2  # ...and within this long of a change of step or phase
CONFIRM_S = 2.5  # how long a firing rank watches the others' heartbeats before naming one dead
ARMED = ("data", "compute")  # phases the thread times; the others rely on the group's timeout
_KEY = "vssl/progress/{}"
_COLLECTIVE_FAILURE = re.compile(
    r"gloo|nccl|Connection (closed|reset) by peer|Timed out waiting|Socket Timeout", re.I
)

log = logging.getLogger("vssl.train")


def backend_timeout(timeout_s: float) -> timedelta:
    """The process group's per-collective timeout: a little longer than the step timeout, so
    that in a step the watchdog's message (which names the rank) comes first."""
    return timedelta(seconds=timeout_s + min(60.0, timeout_s))


class RankFailure(TrainingError):
    """A collective failed or timed out because another rank stopped."""

    exit_code = EXIT_STALLED


class NoWatch:
    """One process: nothing to watch."""

    def enter(self, phase: str, step: int) -> None:
        pass

    def failure(self, exc: BaseException) -> RankFailure | None:
        return None

    def stop(self) -> None:
        pass


class RankWatch(NoWatch):
    """The progress of this rank, published; the watchdog thread; the failure message."""

    def __init__(self, rank: int, world_size: int, timeout_s: float, store):
        self.rank, self.world_size, self.timeout_s, self.store = rank, world_size, timeout_s, store
        self.state = ("start-up", 0, time.monotonic())  # (phase, completed steps, since)
        self.beat = 0
        self.failing = False  # the main thread is reporting a failure: publish, do not fire
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vssl-rank-watch", daemon=True)
        self._thread.start()

    # -------------------------------------------------------------------- the trainer's side
    def enter(self, phase: str, step: int) -> None:
        self.state = (phase, step, time.monotonic())  # one assignment: the thread reads it whole

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def failure(self, exc: BaseException) -> RankFailure | None:
        """The message for a collective that failed in this rank (None: ``exc`` is another
        kind of error)."""
        if not _COLLECTIVE_FAILURE.search(f"{type(exc).__name__} {exc}"):
            return None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        first = re.sub(r"^\[[^\]]*\] ", "", first)  # gloo's source location
        first = first.split(". ")[0][:200]  # its first sentence
        self.failing = True
        return RankFailure(self.explain(f"a collective failed ({first})"))

    # -------------------------------------------------------------------- the thread
    def _run(self) -> None:
        published, last = None, 0.0
        while True:
            state, now = self.state, time.monotonic()
            if state != published or now - last >= PUBLISH_S:
                self._publish(state)
                published, last = state, now
            phase, _, since = state
            if phase in ARMED and not self.failing and now - since > self.timeout_s:
                self._fire(now - since)
            if self._stopped.wait(POLL_S):
                return

    def _publish(self, state: tuple) -> None:
        phase, step, since = state
        self.beat += 1
        record = {"step": step, "phase": phase, "in_phase_s": time.monotonic() - since}
        try:
            self.store.set(_KEY.format(self.rank), json.dumps({**record, "beat": self.beat}))
        except Exception:  # the store went away with the job; the timeout still applies
            pass

    def _fire(self, waited: float) -> None:
        try:
            text = self.explain(
                f"no progress for {waited:.0f} s (train.collective_timeout_s={self.timeout_s:g})"
            )
            print(f"error: {text}", file=sys.stderr, flush=True)
            if self.rank == 0:
                log.error("%s", text)  # also in train.log (which may be on a full disk)
        finally:
            os._exit(EXIT_STALLED)  # whatever happened above, this rank must end

    # -------------------------------------------------------------------- the message
    def _read_all(self) -> dict[int, dict] | None:
        """The other ranks' last records (a rank that never published has none); None when
        the store cannot be read."""
        records = {}
        for rank in range(self.world_size):
            if rank == self.rank:
                continue
            key = _KEY.format(rank)
            try:
                if self.store.check([key]):
                    records[rank] = json.loads(self.store.get(key))
            except Exception:
                return None
        return records

    def explain(self, what: str) -> str:
        """``rank R (doing): WHAT. <which rank stalled, and where>. <what to do>``."""
        before = self._read_all()
        end = time.monotonic() + CONFIRM_S
        while time.monotonic() < end:  # a live rank publishes meanwhile (so does this one)
            self._publish(self.state)
            time.sleep(PUBLISH_S / 2)
        after = self._read_all()
        phase, step, since = self.state
        own = {"phase": phase, "step": step, "in_phase_s": time.monotonic() - since}
        return (
            f"rank {self.rank} ({_doing(phase, step)}): {what}. "
            + _capital(_culprits(self.rank, own, before, after, self.world_size))
            + ". Ending this rank; the last checkpoint is intact: fix the cause, then run the "
            "same command with resume=true (or resume=auto)"
        )


_ORDER = {"after step": 0, "first step": 1, "data": 1, "compute": 2}


def _position(record: dict) -> tuple[int, int]:
    """How far a rank got: after step s < loading step s + 1's data < computing step s + 1."""
    phase, step = record.get("phase"), int(record.get("step", 0))
    if phase not in _ORDER:
        return (-1, 0)  # start-up
    return (step, _ORDER[phase])


def _culprits(me: int, own: dict, before: dict | None, after: dict | None, world_size: int) -> str:
    """Who stalled: ranks whose heartbeat stopped, else ranks behind the others."""
    if before is None or after is None:
        return "the other ranks' progress could not be read (the job's store is gone)"
    dead = [r for r in sorted(after) if before.get(r, {}).get("beat") == after[r].get("beat")]
    records = {**after, me: own}
    top = max(_position(rec) for rec in records.values())
    behind = [r for r in sorted(records) if r not in dead and _position(records[r]) < top]
    silent = [r for r in range(world_size) if r not in records]
    notes = [
        f"rank {r} stopped responding (last heard from "
        f"{_doing(after[r]['phase'], int(after[r]['step']))}; "
        "killed, out of memory or frozen: see its output)"
        for r in dead
    ]
    notes += [
        f"{'this rank' if r == me else f'rank {r}'} is alive but still "
        f"{_doing(records[r]['phase'], int(records[r]['step']))} "
        f"({records[r].get('in_phase_s', 0):.0f} s)"
        for r in behind
    ]
    notes += [f"rank {r} never reported its progress (did it start?)" for r in silent]
    if not notes:
        return f"every rank is {_doing(own['phase'], own['step'])}; none completes it (a backend or network hang)"
    return "; ".join(notes)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _doing(phase: str, step: int) -> str:
    if phase == "first step":
        return f"in step {step + 1}"
    if phase == "data":
        return f"loading the data of step {step + 1}"
    if phase == "compute":
        return f"in step {step + 1} (forward, backward, gradient sync)"
    if phase == "after step":
        return f"logging and saving after step {step}"
    return phase


def watch_ranks(info, timeout_s: float) -> NoWatch:
    """The watch for this rank (a no-op for one process)."""
    if not info.distributed:
        return NoWatch()
    import torch.distributed.distributed_c10d as c10d

    return RankWatch(info.rank, info.world_size, timeout_s, c10d._get_default_store())
