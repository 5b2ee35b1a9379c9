"""The trainer's error type, in a module of its own so that every engine module can raise it."""

from __future__ import annotations


class TrainingError(RuntimeError):
    """A run cannot start or go on; the message says why and what to do."""
