"""The system clock, replaceable by a simulated one for replays and the main run.

Everything that stamps a row or decides "is it time yet" asks `clock.now()`, so a
simulated clock makes "every 7 days" happen in accelerated time.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path


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


class FileClock(Clock):
    """Reads the time the driver wrote (ISO format), re-reading only when the file changed."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._now: datetime | None = None

    def now(self) -> datetime:
        stat = self.path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp or self._now is None:
            text = self.path.read_text().strip()
            if not text:  # caught between truncate and write: keep the last value
                if self._now is None:
                    raise RuntimeError(f"{self.path}: the simulated clock file is empty")
                return self._now
            self._now, self._stamp = datetime.fromisoformat(text), stamp
        return self._now


def install_clock(simulated_clock_file: str | None) -> None:
    """At a process's start: follow a replay's shared clock file when the settings name one."""
    if simulated_clock_file:
        use_clock(FileClock(simulated_clock_file))
