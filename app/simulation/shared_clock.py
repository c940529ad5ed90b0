"""A simulated clock shared between processes through a file (the distributed end-to-end run).

The driver's `SharedSimulatedClock` writes its time to the file on every move; a worker
started with `CLM_SIMULATED_CLOCK_FILE` reads it (`FileClock`), so the rows it stamps and
the windows it computes ("the last 7 days") follow the replay, not the wall clock. The
driver only moves the clock while the workers are idle.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from app.clock import Clock, SimulatedClock, use_clock

ENV = "CLM_SIMULATED_CLOCK_FILE"


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


class SharedSimulatedClock(SimulatedClock):
    def __init__(self, start: datetime, path: str | Path) -> None:
        self.path = Path(path)
        super().__init__(start)
        self._write()

    def set(self, when: datetime) -> None:
        super().set(when)
        self._write()

    def advance(self, delta: timedelta) -> datetime:
        now = super().advance(delta)
        self._write()
        return now

    def _write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(self.now().isoformat())
        os.replace(tmp, self.path)  # atomic: a reader sees the old time or the new one


def install_from_env() -> None:
    """Use the shared simulated clock when `CLM_SIMULATED_CLOCK_FILE` names one (worker start-up)."""
    path = os.environ.get(ENV)
    if path:
        use_clock(FileClock(path))
