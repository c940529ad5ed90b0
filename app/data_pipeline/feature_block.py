"""The feature block under construction and the array helpers the features are made of.

Kept apart from `features.py` (what the features are) because this is how they are
written: straight into one float32 block, sparing temporaries and conversion passes.
"""

from __future__ import annotations

from math import isfinite

import numpy as np
import talib

_MAX, _MIN = np.maximum.reduce, np.minimum.reduce  # the bare reductions, without ndarray.max's wrapper

_TWO_PI = 2.0 * np.pi


def lag(values: np.ndarray, periods: int) -> np.ndarray:
    """values shifted forward by `periods` rows (row t holds row t - periods), NaN-padded."""
    out = np.empty_like(values)
    out[:periods] = np.nan
    out[periods:] = values[:-periods]
    return out


def diff(values: np.ndarray, periods: int) -> np.ndarray:
    """values[t] - values[t - periods], NaN for the first `periods` rows (one pass)."""
    out = np.empty_like(values)
    out[:periods] = np.nan
    np.subtract(values[periods:], values[:-periods], out=out[periods:])
    return out


# sin/cos of the minute of the day and of the weekday, looked up rather than computed per row
DAY_ANGLES = _TWO_PI * np.arange(1440) / 1440.0
WEEK_ANGLES = _TWO_PI * np.arange(7) / 7.0
SIN_DAY, COS_DAY = np.sin(DAY_ANGLES).astype(np.float32), np.cos(DAY_ANGLES).astype(np.float32)
SIN_WEEK, COS_WEEK = np.sin(WEEK_ANGLES).astype(np.float32), np.cos(WEEK_ANGLES).astype(np.float32)

# The same four values tabled by the minute of the week (Monday 00:00 UTC = 0), so that one
# index serves them all: the index costs two integer divisions by constants, where the minute
# of the day and the weekday apart cost a divmod and a remainder (numpy's slowest integer loops).
MINUTES_PER_WEEK = 7 * 1440
_WEEK_MINUTES = np.arange(MINUTES_PER_WEEK)
HOUR_SIN_BY_MINUTE, HOUR_COS_BY_MINUTE = SIN_DAY[_WEEK_MINUTES % 1440], COS_DAY[_WEEK_MINUTES % 1440]
DOW_SIN_BY_MINUTE, DOW_COS_BY_MINUTE = SIN_WEEK[_WEEK_MINUTES // 1440], COS_WEEK[_WEEK_MINUTES // 1440]
_FIRST_MONDAY_MS = 4 * 86_400_000  # 1970-01-05 00:00 UTC (1970-01-01 was a Thursday)


def minute_of_week(timestamp: np.ndarray) -> np.ndarray:
    """Minute of the week (Monday 00:00 UTC = 0, up to 10079) of epoch-millisecond times."""
    minute = np.subtract(timestamp, _FIRST_MONDAY_MS)
    np.floor_divide(minute, 60_000, out=minute)  # minutes since the first Monday (floored: exact below it too)
    weeks = np.floor_divide(minute, MINUTES_PER_WEEK)
    weeks *= MINUTES_PER_WEEK
    minute -= weeks
    return minute


def volume_mean(volume: np.ndarray, window: int) -> np.ndarray:
    """Rolling mean volume; NaN over windows of only zero-volume candles (exchange outages).

    TA-Lib's running sum leaves a round-off residue (~1e-13) after such a window instead
    of an exact zero, and dividing by that residue would make absurd ratios.
    """
    mean = talib.SMA(volume, window)
    mean[talib.MAX(volume, window) == 0] = np.nan
    return mean


class FeatureBlock:
    """The feature block under construction: one float32 row per feature, from row `skip` on.

    Each method writes its row straight into the block (a float64 result is rounded to float32
    on the way, in the loop's own buffer: no float64 temporary per feature and no conversion
    pass), then looks at it for values that are not finite while it is still in the cache.
    """

    def __init__(self, rows: int, skip: int, capacity: int) -> None:
        self.skip = skip
        self.block = np.empty((capacity, rows - skip), dtype=np.float32)
        self.names: list[str] = []
        self._scratch = np.empty(rows - skip, dtype=np.float64)  # float64 intermediates, reused
        self._suspect: list[int] = []  # rows that hold values that are not finite

    def _row(self, name: str) -> np.ndarray:
        self.names.append(name)
        return self.block[len(self.names) - 1]

    def _check(self, row: np.ndarray) -> None:
        """Note the row just written (the last) if it holds a value that is not finite: its max and
        min are finite exactly when all its values are (NaN propagates). Read while in the cache."""
        if row.size and not (isfinite(_MAX(row)) and isfinite(_MIN(row))):
            self._suspect.append(len(self.names) - 1)

    def zero_non_finite(self) -> None:
        """Set every value that is not finite to 0 (the features' after-warm-up rule)."""
        for i in self._suspect:
            row = self.block[i]
            np.copyto(row, 0.0, where=~np.isfinite(row))

    def put(self, name: str, values: np.ndarray) -> None:
        row = self._row(name)
        row[...] = values[self.skip :]
        self._check(row)

    def ratio(self, name: str, numerator: np.ndarray, denominator: np.ndarray) -> None:
        row = self._row(name)
        np.divide(numerator[self.skip :], denominator[self.skip :], out=row, casting="same_kind")
        self._check(row)

    def spread(self, name: str, minuend: np.ndarray, subtrahend: np.ndarray, denominator: np.ndarray) -> None:
        """(minuend - subtrahend) / denominator; the difference in float64 keeps small ratios exact."""
        k = self.skip
        difference = np.subtract(minuend[k:], subtrahend[k:], out=self._scratch)
        row = self._row(name)
        np.divide(difference, denominator[k:], out=row, casting="same_kind")
        self._check(row)

    def relative(self, name: str, value: np.ndarray, reference: np.ndarray) -> None:
        """(value - reference) / reference, computed as value / reference - 1.

        One division and a scalar subtraction instead of a subtraction and a division (the
        division is the costliest of these loops, and this way it reads each input once). The
        quotient's rounding leaves an absolute error under 1.2e-16 * |value / reference|: within
        one float32 ulp of the result wherever |result| >= ~2e-9 * |value / reference|.
        """
        k = self.skip
        quotient = np.divide(value[k:], reference[k:], out=self._scratch)
        row = self._row(name)
        np.subtract(quotient, 1.0, out=row, casting="same_kind")
        self._check(row)

    def subtract(self, name: str, minuend: np.ndarray, subtrahend: np.ndarray) -> None:
        row = self._row(name)
        np.subtract(minuend[self.skip :], subtrahend[self.skip :], out=row, casting="same_kind")
        self._check(row)

    def change(self, name: str, values: np.ndarray, periods: int, denominator: np.ndarray | None = None) -> None:
        """values[t] - values[t - periods], divided by denominator[t] if given (NaN where t < periods).

        The earlier values are read in place (no lagged copy of `values`).
        """
        row, start = self._row(name), max(self.skip, periods)
        row[: start - self.skip] = np.nan
        now, then, out = values[start:], values[start - periods : len(values) - periods], row[start - self.skip :]
        if denominator is None:
            np.subtract(now, then, out=out, casting="same_kind")
        else:
            difference = np.subtract(now, then, out=self._scratch[: len(out)])
            np.divide(difference, denominator[start:], out=out, casting="same_kind")
        self._check(row)

    def root(self, name: str, values: np.ndarray) -> None:
        row = self._row(name)
        np.sqrt(values[self.skip :], out=row, casting="same_kind")
        self._check(row)

    def lookup(self, name: str, table: np.ndarray, index: np.ndarray) -> None:
        """table[index], `index` given for the rows from `skip` on and within the table."""
        row = self._row(name)
        np.take(table, index, out=row, mode="clip")  # in range by the caller: no bounds pass
        self._check(row)
