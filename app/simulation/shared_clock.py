"""A simulated clock shared between processes through a file (the distributed end-to-end run).

The driver's `SharedSimulatedClock` writes its time to the file on every move; a worker
started with `CLM_SIMULATED_CLOCK_FILE` reads it (`app.core.clock.FileClock`, installed at
worker start from the settings), so the rows it stamps and
the windows it computes ("the last 7 days") follow the replay, not the wall clock. The
driver only moves the clock while the workers are idle.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from app.core.clock import SimulatedClock

ENV = "CLM_SIMULATED_CLOCK_FILE"


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
