"""The system clock, replaceable by a simulated one for replays and the main run.

Everything that stamps a row or decides "is it time yet" asks `clock.now()`, so a
simulated clock makes "every 7 days" happen in accelerated time.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Clock:
    """Wall-clock time, naive UTC."""

    def now(self) -> datetime:
        return _utcnow()


class SimulatedClock(Clock):
    """A clock that only moves when told to (thread-safe)."""

    def __init__(self, start: datetime) -> None:
        self._now = start.replace(tzinfo=None)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when.replace(tzinfo=None)

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now


_current: Clock = Clock()


def use_clock(clock: Clock) -> None:
    """Install the process-wide clock (bootstrap and the simulation call this)."""
    global _current
    _current = clock


def get_clock() -> Clock:
    return _current


def utcnow() -> datetime:
    """Now, naive UTC, from the installed clock."""
    return _current.now()
