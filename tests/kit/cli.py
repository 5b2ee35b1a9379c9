"""Run the `vssl` command line in this process, with a guard that turns a hang into a failure."""

from __future__ import annotations

import signal
from collections.abc import Sequence

HANG_S = 30  # far above any legitimate in-process command of the fault tests


class Hang(Exception):
    pass


def run_cli(argv: Sequence[str], hang_s: int = HANG_S) -> int:
    """``vssl ARGV`` in-process; raises :class:`Hang` after ``hang_s`` seconds."""
    from vssl_core.cli.main import main

    def _hang(signum, frame):
        raise Hang(f"vssl {' '.join(argv)[:200]} did not finish in {hang_s} s")

    previous = signal.signal(signal.SIGALRM, _hang)
    signal.alarm(hang_s)
    try:
        return main(list(argv))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
