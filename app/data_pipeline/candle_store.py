"""The candle store: the `candles` table and the ranges already covered (`candle_coverage`).

Every write validates first and runs in one transaction: a rejected write (invalid
candles, or candles that contradict stored ones under `on_conflict="reject"`) changes
nothing. Bulk writes use COPY into a temporary table on PostgreSQL and executemany on
SQLite, then one INSERT ... ON CONFLICT.

Ranges are half-open [start_ms, end_ms) in milliseconds of candle open time.
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from sqlalchemy import Row, delete, select, text
from sqlalchemy.orm import Session

from app.core.db.models import CandleCoverage
from app.data_pipeline.validation import CANDLE_COLUMNS, ValidationReport, validate_candles

if TYPE_CHECKING:
    from app.core.container import Container

OnConflict = Literal["reject", "replace", "keep"]
Range = tuple[int, int]
_VALUE_COLUMNS = ("open", "high", "low", "close", "volume")


class CandleConflictError(ValueError):
    """Incoming candles differ from stored ones at the same open times."""

    def __init__(self, series: str, timestamps: list[int]) -> None:
        self.timestamps = timestamps
        shown = ", ".join(str(t) for t in timestamps[:10])
        more = f" and {len(timestamps) - 10} more" if len(timestamps) > 10 else ""
        super().__init__(
            f"[stored_conflict] {series}: {len(timestamps)} candles differ from the stored ones "
            f"at open times {shown}{more}; nothing was written (use on_conflict='replace' to overwrite)"
        )


@dataclass(frozen=True)
class WriteResult:
    inserted: int
    replaced: int
    unchanged: int
    report: ValidationReport


def merge_ranges(ranges: list[Range]) -> list[Range]:
    """Union of half-open ranges; touching ranges become one."""
    merged: list[list[int]] = []
    for start, end in sorted(r for r in ranges if r[1] > r[0]):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def subtract_ranges(wanted: Range, covered: list[Range]) -> list[Range]:
    """Parts of `wanted` outside every covered range."""
    start, end = wanted
    missing: list[Range] = []
    cursor = start
    for a, b in merge_ranges(covered):
        if b <= cursor or a >= end:
            continue
        if a > cursor:
            missing.append((cursor, min(a, end)))
        cursor = max(cursor, b)
        if cursor >= end:
            break
    if cursor < end:
        missing.append((cursor, end))
    return missing


class CandleStore:
    def __init__(self, container: Container) -> None:
        self.container = container
        self._is_postgres = container.engine.dialect.name == "postgresql"

    # ------------------------------------------------------------------ reading

    def read(
        self,
        exchange: str,
        symbol: str,
        timeframe: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
        session: Session | None = None,
    ) -> pd.DataFrame:
        """Stored candles in [start_ms, end_ms), in time order, in the standard columns.

        `session`: read in the caller's transaction (several series and what is made of them at once)."""
        query = (
            "SELECT open_time, open, high, low, close, volume FROM candles "
            "WHERE exchange = :exchange AND symbol = :symbol AND timeframe = :timeframe"
        )
        params: dict[str, object] = {"exchange": exchange, "symbol": symbol, "timeframe": timeframe}
        if start_ms is not None:
            query += " AND open_time >= :start_ms"
            params["start_ms"] = int(start_ms)
        if end_ms is not None:
            query += " AND open_time < :end_ms"
            params["end_ms"] = int(end_ms)
        if session is not None:
            return _select(session, query + " ORDER BY open_time", params)
        with self.container.session() as own:
            return _select(own, query + " ORDER BY open_time", params)

    def read_closes(
        self, exchange: str, symbol: str, timeframe: str, start_ms: int, end_ms: int, session: Session
    ) -> pd.DataFrame:
        """`read`'s `timestamp` and `close` columns only (regime detection reads hundreds of rows per candle)."""
        rows = _fetch(
            session,
            "SELECT open_time, close FROM candles WHERE exchange = :exchange AND symbol = :symbol AND "
            "timeframe = :timeframe AND open_time >= :start_ms AND open_time < :end_ms ORDER BY open_time",
            {
                "exchange": exchange,
                "symbol": symbol,
                "timeframe": timeframe,
                "start_ms": int(start_ms),
                "end_ms": int(end_ms),
            },
        )
        array = np.array(_plain(rows), dtype=np.float64).reshape(-1, 2)
        return pd.DataFrame({"timestamp": array[:, 0].astype(np.int64), "close": array[:, 1]})

    def coverage(self, exchange: str, symbol: str, timeframe: str) -> list[Range]:
        with self.container.session() as session:
            return self._coverage(session, exchange, symbol, timeframe)

    def missing_ranges(self, exchange: str, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> list[Range]:
        """Parts of [start_ms, end_ms) never fetched or imported for this series."""
        return subtract_ranges((int(start_ms), int(end_ms)), self.coverage(exchange, symbol, timeframe))

    def series(self) -> list[dict[str, object]]:
        """Every stored series with its row count and first and last open time."""
        query = text(
            "SELECT exchange, symbol, timeframe, COUNT(*), MIN(open_time), MAX(open_time) FROM candles "
            "GROUP BY exchange, symbol, timeframe ORDER BY exchange, symbol, timeframe"
        )
        with self.container.session() as session:
            rows = session.execute(query).all()
        keys = ("exchange", "symbol", "timeframe", "rows", "first_ms", "last_ms")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    # ------------------------------------------------------------------ writing

    def write(
        self,
        exchange: str,
        symbol: str,
        timeframe: str,
        candles: pd.DataFrame,
        *,
        on_conflict: OnConflict = "reject",
        covered: Range | None = None,
        source: str | None = None,
    ) -> WriteResult:
        """Validate and store candles in one transaction; record `covered` as fetched.

        `on_conflict`: what to do with a candle that differs from the stored one at the
        same open time: "reject" (raise, write nothing), "replace", or "keep" the stored one.
        """
        series = f"{exchange} {symbol} {timeframe}"
        clean, report = validate_candles(candles, timeframe, source=source or series)
        with self.container.session() as session:
            if self._is_postgres:
                key = zlib.crc32(series.encode())
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
            inserted, replaced, unchanged = len(clean), 0, 0
            if len(clean):
                stamps = clean["timestamp"].to_numpy()
                lo, hi = int(stamps[0]), int(stamps[-1]) + 1
                stored = _fetch(
                    session,
                    "SELECT open_time, open, high, low, close, volume FROM candles WHERE exchange = :e "
                    "AND symbol = :s AND timeframe = :t AND open_time >= :lo AND open_time < :hi",
                    {"e": exchange, "s": symbol, "t": timeframe, "lo": lo, "hi": hi},
                )
                if stored:  # none stored (a new candle, the usual write): every row is inserted, no frame needed
                    clean, inserted, replaced, unchanged = _against_stored(clean, _frame(stored), series, on_conflict)
                if len(clean):
                    self._upsert(session, exchange, symbol, timeframe, clean)
            if covered is not None:
                self._add_coverage(session, exchange, symbol, timeframe, covered)
        return WriteResult(inserted, replaced, unchanged, report)

    # ------------------------------------------------------------------ internals

    def _coverage(self, session: Session, exchange: str, symbol: str, timeframe: str) -> list[Range]:
        rows = session.execute(
            select(CandleCoverage.start_ms, CandleCoverage.end_ms).where(
                CandleCoverage.exchange == exchange,
                CandleCoverage.symbol == symbol,
                CandleCoverage.timeframe == timeframe,
            )
        ).all()
        return merge_ranges([(int(a), int(b)) for a, b in rows])

    def _add_coverage(self, session: Session, exchange: str, symbol: str, timeframe: str, covered: Range) -> None:
        merged = merge_ranges(
            [*self._coverage(session, exchange, symbol, timeframe), (int(covered[0]), int(covered[1]))]
        )
        session.execute(
            delete(CandleCoverage).where(
                CandleCoverage.exchange == exchange,
                CandleCoverage.symbol == symbol,
                CandleCoverage.timeframe == timeframe,
            )
        )
        session.add_all(
            CandleCoverage(exchange=exchange, symbol=symbol, timeframe=timeframe, start_ms=a, end_ms=b)
            for a, b in merged
        )
        session.flush()

    def _upsert(self, session: Session, exchange: str, symbol: str, timeframe: str, clean: pd.DataFrame) -> None:
        update = ", ".join(f"{c} = excluded.{c}" for c in _VALUE_COLUMNS)
        conflict = "ON CONFLICT (exchange, symbol, timeframe, open_time) DO UPDATE SET " + update
        if self._is_postgres:
            _copy_upsert(session, exchange, symbol, timeframe, clean, conflict)
            return
        # From the columns' arrays (a column selection and itertuples cost more than the insert of a candle)
        columns = [clean[c].to_numpy().tolist() for c in CANDLE_COLUMNS]
        rows = [(exchange, symbol, timeframe, int(ts), *vals) for ts, *vals in zip(*columns, strict=True)]
        cursor = session.connection().connection.cursor()
        try:
            cursor.executemany(
                "INSERT INTO candles (exchange, symbol, timeframe, open_time, open, high, low, close, volume) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) " + conflict,
                rows,
            )
        finally:
            cursor.close()


def _copy_upsert(
    session: Session, exchange: str, symbol: str, timeframe: str, clean: pd.DataFrame, conflict: str
) -> None:
    buffer = io.StringIO()
    values = clean[list(_VALUE_COLUMNS)].to_numpy(dtype=np.float64)
    stamps = clean["timestamp"].to_numpy(dtype=np.int64)
    for ts, row in zip(stamps, values, strict=True):
        buffer.write(f"{ts}\t" + "\t".join(repr(float(v)) for v in row) + "\n")
    buffer.seek(0)
    cursor = session.connection().connection.cursor()
    try:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS candles_incoming (open_time BIGINT, open DOUBLE PRECISION, "
            "high DOUBLE PRECISION, low DOUBLE PRECISION, close DOUBLE PRECISION, volume DOUBLE PRECISION) "
            "ON COMMIT DELETE ROWS"
        )
        cursor.copy_expert("COPY candles_incoming FROM STDIN", buffer)
        cursor.execute(
            "INSERT INTO candles (exchange, symbol, timeframe, open_time, open, high, low, close, volume) "
            "SELECT %s, %s, %s, open_time, open, high, low, close, volume FROM candles_incoming " + conflict,
            (exchange, symbol, timeframe),
        )
        cursor.execute("TRUNCATE candles_incoming")
    finally:
        cursor.close()


_NAMED = re.compile(r":(\w+)")


def _select(session: Session, query: str, params: dict[str, object]) -> pd.DataFrame:
    """Candle rows of `query` (named `:params`) as a frame, through the driver's own cursor in the session's
    transaction: SQLAlchemy's Row objects cost as much as the query on the hundreds of rows a beat job reads."""
    return _frame(_fetch(session, query, params))


def _fetch(session: Session, query: str, params: dict[str, object]) -> list[tuple[Any, ...]]:
    """The rows of `query` (named `:params`) from the driver's own cursor in the session's transaction."""
    connection = session.connection()
    args: list[object] | dict[str, object]
    if connection.dialect.name == "sqlite":
        sql, args = _NAMED.sub("?", query), [params[name] for name in _NAMED.findall(query)]
    else:  # psycopg2 (and most drivers): %(name)s
        sql, args = _NAMED.sub(r"%(\1)s", query), params
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql, args)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _plain(rows: Sequence[Row[Any]] | Sequence[tuple[Any, ...]]) -> Sequence[tuple[Any, ...]]:
    """Plain tuples: numpy converts a list of SQLAlchemy Rows seventy times slower."""
    return rows if not rows or type(rows[0]) is tuple else [tuple(r) for r in rows]  # type: ignore[return-value]


def _frame(rows: Sequence[Row[Any]] | Sequence[tuple[Any, ...]]) -> pd.DataFrame:
    array = np.array(_plain(rows), dtype=np.float64).reshape(-1, 6)
    frame = {column: array[:, k] for k, column in enumerate(CANDLE_COLUMNS)}
    frame["timestamp"] = array[:, 0].astype(np.int64)
    return pd.DataFrame(frame)


def _against_stored(
    clean: pd.DataFrame, stored: pd.DataFrame, series: str, on_conflict: OnConflict
) -> tuple[pd.DataFrame, int, int, int]:
    """Rows to write, and the counts (inserted, replaced, unchanged) under `on_conflict`."""
    if stored.empty:
        return clean, len(clean), 0, 0
    joined = clean.merge(stored, on="timestamp", how="left", suffixes=("", "_stored"), indicator=True)
    present = (joined["_merge"] == "both").to_numpy()
    incoming = joined[list(_VALUE_COLUMNS)].to_numpy()
    existing = joined[[f"{c}_stored" for c in _VALUE_COLUMNS]].to_numpy()
    same = present & np.isclose(incoming, existing, rtol=1e-12, atol=0.0).all(axis=1)
    differ = present & ~same
    if differ.any() and on_conflict == "reject":
        raise CandleConflictError(series, [int(t) for t in joined["timestamp"].to_numpy()[differ]])
    write = ~present | (differ if on_conflict == "replace" else np.zeros_like(differ))
    replaced = int(differ.sum()) if on_conflict == "replace" else 0
    unchanged = int(present.sum()) - replaced
    return clean.loc[write].reset_index(drop=True), int((~present).sum()), replaced, unchanged
