"""Timeframe strings ("1m", "5m", "1h", "1d", "1w") and the grid their candles open on."""

from __future__ import annotations

import re
from datetime import datetime

import numpy as np
import pandas as pd

_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_PATTERN = re.compile(r"^(\d+)([smhdw])$")
# Weekly candles open on Mondays (as on Binance and most exchanges); 1970-01-01 was a Thursday.
_WEEK_OFFSET_MS = 4 * 86_400_000


def timeframe_ms(timeframe: str) -> int:
    """Length of one candle; a clear error for anything that is not <count><unit>."""
    match = _PATTERN.match(timeframe.strip())
    if not match or int(match.group(1)) <= 0:
        raise ValueError(
            f"unknown timeframe {timeframe!r}: expected <count><unit> with unit s, m, h, d or w (e.g. '5m')"
        )
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def grid_offset_ms(timeframe: str) -> int:
    """Open times are offset + k x timeframe_ms: 0, except Monday-aligned weeks."""
    return _WEEK_OFFSET_MS if timeframe.strip().endswith("w") else 0


def on_grid(timestamp_ms: int, timeframe: str) -> bool:
    return (timestamp_ms - grid_offset_ms(timeframe)) % timeframe_ms(timeframe) == 0


def ceil_to_grid(timestamp_ms: int, timeframe: str) -> int:
    """The first open time at or after `timestamp_ms`."""
    step, offset = timeframe_ms(timeframe), grid_offset_ms(timeframe)
    return -(-(timestamp_ms - offset) // step) * step + offset


def floor_to_grid(timestamp_ms: int, timeframe: str) -> int:
    """The last open time at or before `timestamp_ms`."""
    return ceil_to_grid(timestamp_ms - timeframe_ms(timeframe) + 1, timeframe)


def to_ms(moment: datetime | pd.Timestamp | int) -> int:
    """Milliseconds since the epoch (candle open times); a naive datetime is taken as UTC."""
    if isinstance(moment, int | np.integer):
        return int(moment)
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return int(stamp.value // 1_000_000)
