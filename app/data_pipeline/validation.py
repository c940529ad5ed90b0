"""Candle validation, applied on every way in (exchange, files, synthetic, store writes).

Rules (each violation names the rule and the rows that break it):

- `columns`: timestamp, open, high, low, close, volume are present;
- `numeric`: every value is a number (no blanks, no text, no NaN or infinity);
- `milliseconds`: timestamps are integer milliseconds since the epoch (a value below
  1e11, i.e. before 1973, is taken for seconds and refused);
- `grid`: every timestamp is a multiple of the timeframe (a candle's open time);
- `conflicting_duplicate`: one timestamp with two different candles;
- `increasing`: timestamps strictly increase;
- `ohlc`: low <= open, close <= high;
- `price_positive`: open, high, low, close > 0;
- `volume_non_negative`: volume >= 0;
- `magnitude`: prices below 1e12 and volume below 1e18 (the API's bounds: larger values are
  corrupt data, and the features overflow on them).

The only repair: a row identical to another (same timestamp and values) is dropped and
counted. Gaps (missing grid points) are reported in the result, never filled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from app.data_pipeline.timeframes import grid_offset_ms, timeframe_ms

CANDLE_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")
MIN_TIMESTAMP_MS = 100_000_000_000  # 1973-03-03 in ms; as seconds it would be year 5138
MAX_PRICE = 1e12  # exclusive, as the API's candle schema
MAX_VOLUME = 1e18  # exclusive, as the API's candle schema
_SHOWN_ROWS = 10


@dataclass(frozen=True)
class Violation:
    rule: str
    rows: tuple[int, ...]  # row numbers as the caller counts them (see `first_row_number`)
    detail: str

    def message(self, row_word: str) -> str:
        shown = ", ".join(str(r) for r in self.rows[:_SHOWN_ROWS])
        more = f" and {len(self.rows) - _SHOWN_ROWS} more" if len(self.rows) > _SHOWN_ROWS else ""
        if not self.rows:
            return f"[{self.rule}] {self.detail}"
        plural = "s" if len(self.rows) > 1 else ""
        return f"[{self.rule}] {self.detail}: {row_word}{plural} {shown}{more}"


class CandleValidationError(ValueError):
    """Candles that break a rule; `violations` holds every rule broken and its rows."""

    def __init__(self, source: str, violations: list[Violation], row_word: str = "row") -> None:
        self.source = source
        self.violations = violations
        lines = "\n  ".join(v.message(row_word) for v in violations)
        super().__init__(f"invalid candles from {source}:\n  {lines}")

    @property
    def rules(self) -> set[str]:
        return {v.rule for v in self.violations}


@dataclass(frozen=True)
class Gap:
    first_missing_ms: int
    last_missing_ms: int
    missing: int  # candles


@dataclass
class ValidationReport:
    rows_in: int
    rows_out: int
    duplicates_dropped: int = 0
    gaps: list[Gap] = field(default_factory=list)

    @property
    def missing_candles(self) -> int:
        return sum(g.missing for g in self.gaps)

    def summary(self) -> dict[str, int]:
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "duplicates_dropped": self.duplicates_dropped,
            "gaps": len(self.gaps),
            "missing_candles": self.missing_candles,
        }


def find_gaps(timestamps: np.ndarray, step_ms: int) -> list[Gap]:
    """Missing grid points between consecutive (sorted) timestamps."""
    if len(timestamps) < 2:
        return []
    jumps = np.diff(timestamps)
    where = np.flatnonzero(jumps > step_ms)
    return [
        Gap(int(timestamps[i] + step_ms), int(timestamps[i + 1] - step_ms), int(jumps[i] // step_ms - 1)) for i in where
    ]


def _timestamps_ms(column: pd.Series) -> pd.Series:
    """Integer ms from ints, integral floats, datetimes or ISO strings (anything else: NaN)."""
    if pd.api.types.is_datetime64_any_dtype(column):
        stamps = pd.to_datetime(column, utc=True).dt.as_unit("ms")
        return stamps.astype("int64").astype("float64")
    numeric = pd.to_numeric(column, errors="coerce")
    if numeric.isna().any() and not pd.api.types.is_numeric_dtype(column):
        parsed = pd.to_datetime(column[numeric.isna()], utc=True, errors="coerce", format="ISO8601")
        numeric = numeric.astype("float64")
        ok = parsed.notna()
        numeric.loc[ok[ok].index] = parsed[ok].dt.as_unit("ms").astype("int64").astype("float64")
    return numeric.astype("float64")


def _timestamps_array(column: pd.Series) -> np.ndarray:
    """`_timestamps_ms` as float64 values; numbers skip the parsing."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    return _timestamps_ms(column).to_numpy(dtype=np.float64, na_value=np.nan)


def _numeric(column: pd.Series) -> np.ndarray:
    """float64 values; anything that is not a number becomes NaN."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def validate_candles(
    frame: pd.DataFrame,
    timeframe: str,
    *,
    source: str = "input",
    first_row_number: int = 0,
    row_word: str = "row",
) -> tuple[pd.DataFrame, ValidationReport]:
    """Check every rule; return clean candles (sorted as given, identical duplicates dropped).

    Raises `CandleValidationError` listing every rule broken and its rows, numbered from
    `first_row_number` (a CSV reader passes 2 and row_word "line": header is line 1).
    """
    step_ms = timeframe_ms(timeframe)
    missing = [c for c in CANDLE_COLUMNS if c not in frame.columns]
    if missing:
        raise CandleValidationError(source, [Violation("columns", (), f"missing columns {missing}")], row_word)
    numbers = np.arange(len(frame)) + first_row_number
    # Plain arrays (a DataFrame only when duplicates need hashing): a pandas operation costs about as
    # much as all the rules on a few rows, and the replay and the exchange refresh write one candle at a time.
    values = np.column_stack(
        [_timestamps_array(frame["timestamp"])] + [_numeric(frame[column]) for column in CANDLE_COLUMNS[1:]]
    ).reshape(len(frame), len(CANDLE_COLUMNS))

    violations: list[Violation] = []

    def check(rule: str, bad: np.ndarray, detail: str) -> None:
        if bad.any():
            violations.append(Violation(rule, tuple(int(n) for n in numbers[bad]), detail))

    not_numeric = ~np.isfinite(values).all(axis=1)
    check("numeric", not_numeric, "a value is missing or not a finite number")
    ts = values[:, 0]
    usable = ~not_numeric
    with np.errstate(invalid="ignore"):
        check("milliseconds", usable & ((ts < MIN_TIMESTAMP_MS) | (ts != np.round(ts))), "timestamp is not integer ms")
        off_grid = np.mod(ts - grid_offset_ms(timeframe), step_ms) != 0
        check("grid", usable & off_grid, f"timestamp is not on the {timeframe} grid")
        o, h, lo, c, v = (values[:, k] for k in range(1, len(CANDLE_COLUMNS)))
        check("price_positive", usable & ((o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0)), "a price is not > 0")
        check("ohlc", usable & ((lo > o) | (lo > c) | (h < o) | (h < c)), "low <= open, close <= high does not hold")
        check("volume_non_negative", usable & (v < 0), "volume is negative")
        too_large = (np.maximum.reduce([o, h, lo, c]) >= MAX_PRICE) | (v >= MAX_VOLUME)
        check("magnitude", usable & too_large, f"a price is not below {MAX_PRICE:g} or volume not below {MAX_VOLUME:g}")

    # Duplicates: identical rows are dropped (the documented repair); different ones are refused.
    identical = np.zeros(len(values), dtype=bool)
    conflict = np.zeros(len(values), dtype=bool)
    strictly_increasing = bool(usable.all()) and bool(np.all(ts[1:] > ts[:-1]))
    if not strictly_increasing:  # the usual clean input skips the row hashing below
        data = pd.DataFrame(values, columns=list(CANDLE_COLUMNS), index=frame.index)
        identical = data.duplicated(keep="first").to_numpy() & usable
        same_time = data["timestamp"].duplicated(keep=False).to_numpy() & usable
        conflicting_times = set(data["timestamp"][same_time & ~data.duplicated(keep=False).to_numpy()])
        conflict = same_time & data["timestamp"].isin(conflicting_times).to_numpy()
        check("conflicting_duplicate", conflict, "one timestamp holds different candles")
    kept = usable & ~identical & ~conflict
    kept_ts = ts[kept]
    order_bad = np.zeros(len(values), dtype=bool)
    if len(kept_ts) > 1:
        # a row whose timestamp is not above the previous kept row's breaks the order
        decreasing = np.r_[False, kept_ts[1:] < kept_ts[:-1]]
        order_bad[np.flatnonzero(kept)[decreasing]] = True
    check("increasing", order_bad, "timestamp is earlier than the row before it")

    if violations:
        raise CandleValidationError(source, violations, row_word)
    kept_values = values[~identical]
    stamps = kept_values[:, 0].astype(np.int64)
    clean = pd.DataFrame({"timestamp": stamps} | {c: kept_values[:, k] for k, c in enumerate(CANDLE_COLUMNS) if k})
    report = ValidationReport(
        rows_in=len(frame),
        rows_out=len(clean),
        duplicates_dropped=int(identical.sum()),
        gaps=find_gaps(stamps, step_ms),
    )
    return clean, report
