"""The book as traded (bench/clm_value.py): flat while a CRITICAL drift's halt lasts, by the events' times."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from app.clm.manager import ContinuousLearningManager
from app.core.clock import Clock, SimulatedClock, use_clock
from app.data_pipeline.timeframes import timeframe_ms, to_ms
from app.simulation.counterfactual import halted_mask

START = datetime(2025, 1, 1)


def test_rows_are_halted_from_the_first_halt_until_the_resume(sqlite_container) -> None:
    manager = ContinuousLearningManager(sqlite_container)
    clock = SimulatedClock(START + timedelta(hours=6))
    use_clock(clock)
    try:
        manager.halt_trading("CRITICAL feature drift")
        clock.set(START + timedelta(hours=12))
        manager.halt_trading("CRITICAL feature drift")  # halted again: the halt still started at 06:00
        clock.set(START + timedelta(hours=18))
        manager.resume_trading("operator")
        clock.set(START + timedelta(hours=27))
        manager.halt_trading("CRITICAL performance drift")  # never resumed
    finally:
        use_clock(Clock())
    stamps = to_ms(START) + np.arange(0, 30 * 60, 60, dtype=np.int64) * 60_000  # hourly rows over 30 hours
    rows = pd.DataFrame({"timestamp": stamps, "symbol": "BTC/USDT"})
    mask = halted_mask(sqlite_container, rows)
    close_hours = (stamps + timeframe_ms(sqlite_container.policy_store.get().data.timeframe) - to_ms(START)) / 3.6e6
    expected = ((close_hours >= 6) & (close_hours < 18)) | (close_hours >= 27)
    assert mask.tolist() == expected.tolist()
    assert 0 < mask.sum() < len(mask)


def test_no_halt_leaves_every_row_traded(sqlite_container) -> None:
    rows = pd.DataFrame({"timestamp": to_ms(START) + np.arange(10, dtype=np.int64) * 300_000, "symbol": "X"})
    assert not halted_mask(sqlite_container, rows).any()
