"""Timeframe strings ("1m", "5m", "1h", "1d", "1w") and their length in milliseconds."""

from __future__ import annotations

import re

_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_PATTERN = re.compile(r"^(\d+)([smhdw])$")


def timeframe_ms(timeframe: str) -> int:
    """Length of one candle; a clear error for anything that is not <count><unit>."""
    match = _PATTERN.match(timeframe.strip())
    if not match or int(match.group(1)) <= 0:
        raise ValueError(
            f"unknown timeframe {timeframe!r}: expected <count><unit> with unit s, m, h, d or w (e.g. '5m')"
        )
    return int(match.group(1)) * _UNIT_MS[match.group(2)]
