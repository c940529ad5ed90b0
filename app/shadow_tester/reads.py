"""Reading a shadow test's closed pairs as numpy columns, fast enough for a million rows.

A decision only ever looks at the first n closed pairs in time order, n being the latest
look (`Thresholds.decision_samples`), so the read counts the closed pairs first and then
reads only those n: a test of a million pairs under the default policy (last look 8000)
reads 8000 rows, in index order. Both queries see one snapshot (REPEATABLE READ).

On PostgreSQL the rows leave the server as one binary COPY whose every tuple has the same
layout (NULLs are coalesced in the query: a flat call is 0, an unknown confidence NaN), so
numpy reads the whole buffer with one structured dtype: no text formatting on the server,
no parsing on the client. When every closed pair is needed the server does not sort (a
plain scan); numpy puts the rows in (timestamp, id) order. SQLite (the embedded mode) reads
through SQLAlchemy.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, select

from app.core.db.models import ShadowTestResult

EVAL_COLUMNS = ("active_direction", "shadow_direction", "realized_return", "active_confidence", "shadow_confidence")
# The pairs' prediction times, microseconds since 2000-01-01 (PostgreSQL's own epoch), as float64.
TIMESTAMP_COLUMN = "timestamp_us"

_CLOSED = "FROM shadow_test_results WHERE shadow_model_id = %s AND realized_return IS NOT NULL"
_COUNT_SQL = f"SELECT count(*) {_CLOSED}"
_COPY_SQL = (
    "SELECT COALESCE(active_direction, 0::smallint), COALESCE(shadow_direction, 0::smallint), realized_return, "
    f"COALESCE(active_confidence, 'NaN'::float8), COALESCE(shadow_confidence, 'NaN'::float8), timestamp, id {_CLOSED}"
)
# PostgreSQL's binary COPY: a 19-byte header, then per tuple a field count and per field a length and
# the value (big-endian), then a 2-byte trailer.
_HEADER = b"PGCOPY\n\xff\r\n\x00"
_HEADER_BYTES = 19
_TUPLE = np.dtype(
    [
        ("fields", ">i2"),
        ("n1", ">i4"), ("active_direction", ">i2"),
        ("n2", ">i4"), ("shadow_direction", ">i2"),
        ("n3", ">i4"), ("realized_return", ">f8"),
        ("n4", ">i4"), ("active_confidence", ">f8"),
        ("n5", ">i4"), ("shadow_confidence", ">f8"),
        ("n6", ">i4"), ("timestamp", ">i8"),  # microseconds since 2000-01-01
        ("n7", ">i4"), ("id", ">i8"),
    ]
)  # fmt: skip


@dataclass(frozen=True)
class ClosedPairs:
    total: int  # every closed pair of the test
    columns: dict[str, np.ndarray]  # EVAL_COLUMNS and TIMESTAMP_COLUMN (float64) of the first pairs in time order
    last: tuple[datetime, int] | None = None  # (timestamp, id) of the last pair read
    id_sum: int = 0  # of the pairs read

    @property
    def read(self) -> int:
        return int(self.columns["realized_return"].size)


def pair_columns() -> tuple[Any, ...]:
    """A closed pair's columns as every evaluation reads them (a missing direction reads 0), in the
    order `pairs_of_rows` takes them."""
    return (
        func.coalesce(ShadowTestResult.active_direction, 0),
        func.coalesce(ShadowTestResult.shadow_direction, 0),
        ShadowTestResult.realized_return,
        ShadowTestResult.active_confidence,
        ShadowTestResult.shadow_confidence,
        ShadowTestResult.timestamp,
        ShadowTestResult.id,
    )


def _everything(total: int) -> int:
    return total


def closed_pairs(engine: Engine, shadow_model_id: str, needed: Callable[[int], int] = _everything) -> ClosedPairs:
    """Count the test's closed pairs, then read the first `needed(total)` of them in time order
    (all of them by default), both in one snapshot."""
    if engine.dialect.name == "postgresql":
        return _closed_pairs_postgres(engine, shadow_model_id, needed)
    closed = (ShadowTestResult.shadow_model_id == shadow_model_id, ShadowTestResult.realized_return.is_not(None))
    query = select(*pair_columns()).where(*closed).order_by(ShadowTestResult.timestamp, ShadowTestResult.id)
    with engine.begin() as conn:  # SQLite: one transaction is one snapshot
        total = int(conn.execute(select(func.count()).select_from(ShadowTestResult).where(*closed)).scalar_one())
        rows = conn.execute(query.limit(_checked(needed(total), total))).all()
    return pairs_of_rows(total, rows)


def pairs_of_rows(total: int, rows: Sequence[Any]) -> ClosedPairs:
    """ClosedPairs of rows (EVAL_COLUMNS, then timestamp and id) read in time order."""
    width = len(EVAL_COLUMNS)
    table = np.array([tuple(r)[:width] for r in rows], dtype=np.float64).reshape(-1, width)  # None -> nan
    columns = {name: table[:, i].copy() for i, name in enumerate(EVAL_COLUMNS)}
    columns[TIMESTAMP_COLUMN] = np.array([(r[width] - _PG_EPOCH) // _MICROSECOND for r in rows], dtype=np.float64)
    if not rows:
        return ClosedPairs(total, columns)
    return ClosedPairs(
        total, columns, (rows[-1][width], int(rows[-1][width + 1])), sum(int(r[width + 1]) for r in rows)
    )


def _checked(n: int, total: int) -> int:
    if not 0 <= n <= total:
        raise ValueError(f"asked for the first {n} of {total} closed pairs")
    return n


def _closed_pairs_postgres(engine: Engine, shadow_model_id: str, needed: Callable[[int], int]) -> ClosedPairs:
    raw = engine.raw_connection()
    try:
        cursor: Any = raw.cursor()  # psycopg2's cursor: mogrify, copy_expert
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute(_COUNT_SQL, (shadow_model_id,))
        total = int(cursor.fetchone()[0])
        n = _checked(needed(total), total)
        sql = cursor.mogrify(_COPY_SQL, (shadow_model_id,)).decode()
        if n < total:  # the first n in index order (idx_shadow_model), sorted on the server
            sql += f" ORDER BY timestamp, id LIMIT {n}"
        buffer = io.BytesIO()
        cursor.copy_expert(f"COPY ({sql}) TO STDOUT WITH (FORMAT binary)", buffer)
        cursor.close()
        raw.commit()
    finally:
        raw.close()
    data = buffer.getbuffer()
    if bytes(data[: len(_HEADER)]) != _HEADER:
        raise RuntimeError("unexpected COPY BINARY header from PostgreSQL")
    count, rest = divmod(len(data) - _HEADER_BYTES - 2, _TUPLE.itemsize)
    if rest or count != n:
        raise RuntimeError(f"COPY BINARY body of {len(data)} bytes is not {n} whole tuples")
    tuples = np.frombuffer(data, dtype=_TUPLE, count=count, offset=_HEADER_BYTES)
    id_sum = int(tuples["id"].sum()) if count else 0
    if n < total:
        columns = {name: tuples[name].astype(np.float64) for name in EVAL_COLUMNS}
        columns[TIMESTAMP_COLUMN] = tuples["timestamp"].astype(np.float64)
        last = count - 1
    else:
        order = np.lexsort((tuples["id"], tuples["timestamp"]))
        columns = {name: tuples[name][order].astype(np.float64) for name in EVAL_COLUMNS}
        columns[TIMESTAMP_COLUMN] = tuples["timestamp"][order].astype(np.float64)
        last = int(order[-1]) if count else 0
    if not count:
        return ClosedPairs(total, columns)
    stamp = _PG_EPOCH + timedelta(microseconds=int(tuples["timestamp"][last]))
    return ClosedPairs(total, columns, (stamp, int(tuples["id"][last])), id_sum)


_PG_EPOCH = datetime(2000, 1, 1)
_MICROSECOND = timedelta(microseconds=1)
