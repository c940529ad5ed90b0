"""Reading a shadow test's closed pairs as numpy columns, fast enough for a million rows.

On PostgreSQL the rows leave the server as one binary COPY whose every tuple has the same
layout (NULLs are coalesced in the query: a flat call is 0, an unknown confidence NaN), so
numpy reads the whole buffer with one structured dtype: no text formatting on the server,
no parsing on the client. The server does not sort either (a plain scan); numpy puts the
rows in (timestamp, id) order. SQLite (the embedded mode) reads through SQLAlchemy.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, select

from app.db.models import ShadowTestResult

EVAL_COLUMNS = ("active_direction", "shadow_direction", "realized_return", "active_confidence", "shadow_confidence")

_COPY_SQL = (
    "SELECT COALESCE(active_direction, 0::smallint), COALESCE(shadow_direction, 0::smallint), realized_return, "
    "COALESCE(active_confidence, 'NaN'::float8), COALESCE(shadow_confidence, 'NaN'::float8), timestamp, id "
    "FROM shadow_test_results WHERE shadow_model_id = %s AND realized_return IS NOT NULL"
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


def closed_pairs(engine: Engine, shadow_model_id: str) -> dict[str, np.ndarray]:
    """The closed pairs' numeric columns (float64) in time order."""
    if engine.dialect.name == "postgresql":
        return _closed_pairs_postgres(engine, shadow_model_id)
    query = (
        select(
            func.coalesce(ShadowTestResult.active_direction, 0),
            func.coalesce(ShadowTestResult.shadow_direction, 0),
            ShadowTestResult.realized_return,
            ShadowTestResult.active_confidence,
            ShadowTestResult.shadow_confidence,
        )
        .where(ShadowTestResult.shadow_model_id == shadow_model_id, ShadowTestResult.realized_return.is_not(None))
        .order_by(ShadowTestResult.timestamp, ShadowTestResult.id)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    table = np.array([tuple(r) for r in rows], dtype=np.float64).reshape(-1, len(EVAL_COLUMNS))  # None -> nan
    return {name: table[:, i].copy() for i, name in enumerate(EVAL_COLUMNS)}


def _closed_pairs_postgres(engine: Engine, shadow_model_id: str) -> dict[str, np.ndarray]:
    raw = engine.raw_connection()
    try:
        cursor: Any = raw.cursor()  # psycopg2's cursor: mogrify, copy_expert
        sql = cursor.mogrify(_COPY_SQL, (shadow_model_id,)).decode()
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
    if rest:
        raise RuntimeError(f"COPY BINARY body of {len(data)} bytes is not a whole number of tuples")
    tuples = np.frombuffer(data, dtype=_TUPLE, count=count, offset=_HEADER_BYTES)
    order = np.lexsort((tuples["id"], tuples["timestamp"]))
    return {name: tuples[name][order].astype(np.float64) for name in EVAL_COLUMNS}
