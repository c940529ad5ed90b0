"""A simulated clock installed for one test, and the previous clock put back after it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from app.core.clock import SimulatedClock, get_clock, use_clock


@contextmanager
def simulated_clock(start: datetime) -> Iterator[SimulatedClock]:
    previous = get_clock()
    simulated = SimulatedClock(start)
    use_clock(simulated)
    try:
        yield simulated
    finally:
        use_clock(previous)
