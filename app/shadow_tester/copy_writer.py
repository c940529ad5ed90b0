"""Batched shadow rows into PostgreSQL: validated, encoded and streamed through COPY in one pass."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, insert

from app.core.clock import utcnow
from app.core.db.models import ShadowTestResult
from app.shadow_tester.rows import InvalidPredictionError, ShadowPrediction, as_item, require_known_models, shadow_row

_COPY_COLUMNS = (
    "shadow_model_id",
    "active_model_id",
    "symbol",
    "timestamp",
    "active_prediction",
    "shadow_prediction",
    "active_direction",
    "shadow_direction",
    "active_confidence",
    "shadow_confidence",
    "horizon_end",
    "trade_id",
    "created_at",
)


class _StreamedLines:
    """A file-like view of generated COPY lines: psycopg2 pulls chunks while PostgreSQL parses
    the previous ones, so encoding here and inserting there overlap (two cores, both busy).
    An exception raised while generating is kept, so the caller re-raises it as it was."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self._pending = ""
        self.error: BaseException | None = None

    def read(self, size: int = -1) -> str:
        parts, length = [self._pending], len(self._pending)
        try:
            for line in self._lines:
                parts.append(line)
                length += len(line)
                if 0 <= size <= length:
                    break
        except BaseException as exc:
            self.error = exc
            raise
        data = "".join(parts)
        if size < 0:
            self._pending = ""
            return data
        self._pending = data[size:]
        return data[:size]


def _escaped(value: str) -> str:
    """A value in COPY's text format (backslash, tab, newline and carriage return escaped)."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


class _CopyEncoder:
    """Shadow rows as lines of COPY's text format, in `_COPY_COLUMNS` order.

    The prediction documents are encoded by orjson: NaN and infinities become null (JSONB
    refuses them), numpy scalars become numbers. Names and times repeat within a batch and
    are encoded once."""

    _OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS

    def __init__(self) -> None:
        self._stamps: dict[datetime, str] = {}
        self._names: dict[tuple[str, str, str], str] = {}

    def _stamp(self, moment: datetime) -> str:
        text = self._stamps.get(moment)
        if text is None:
            text = self._stamps[moment] = moment.isoformat(sep=" ")
        return text

    def _document(self, value: Any, index: int) -> str:
        try:
            encoded = orjson.dumps(value, option=self._OPTIONS).decode()
        except TypeError as exc:
            raise InvalidPredictionError(
                f"predictions[{index}]: a prediction is not JSON-serialisable: {exc}"
            ) from None
        return encoded.replace("\\", "\\\\") if "\\" in encoded else encoded

    def line(self, row: Mapping[str, Any], index: int) -> str:
        key = (row["shadow_model_id"], row["active_model_id"], row["symbol"])
        names = self._names.get(key)
        if names is None:
            names = self._names[key] = "\t".join(_escaped(v) for v in key)
        confidences = [row["active_confidence"], row["shadow_confidence"]]
        active_confidence, shadow_confidence = ("\\N" if c is None else repr(float(c)) for c in confidences)
        trade_id = "\\N" if row["trade_id"] is None else _escaped(str(row["trade_id"]))
        return (
            f"{names}\t{self._stamp(row['timestamp'])}\t{self._document(row['active_prediction'], index)}\t"
            f"{self._document(row['shadow_prediction'], index)}\t{row['active_direction']}\t"
            f"{row['shadow_direction']}\t{active_confidence}\t{shadow_confidence}\t"
            f"{self._stamp(row['horizon_end'])}\t{trade_id}\t{self._stamp(row['created_at'])}\n"
        )


def _copy(engine: Engine, lines: Iterator[str], model_ids: Callable[[], set[str]]) -> None:
    """COPY the lines into shadow_test_results and check the model ids, in one transaction."""
    reader = _StreamedLines(lines)
    raw = engine.raw_connection()
    try:
        cursor: Any = raw.cursor()  # psycopg2's cursor: copy_expert
        cursor.execute("SET LOCAL synchronous_commit TO OFF")  # telemetry (see telemetry_commit)
        try:
            cursor.copy_expert(f"COPY shadow_test_results ({', '.join(_COPY_COLUMNS)}) FROM STDIN", reader)
        except Exception:
            if reader.error is not None:
                raise reader.error from None  # a bad item: its own error, not the aborted COPY's
            raise
        with engine.connect() as conn:  # registry rows are never deleted: any connection sees them
            require_known_models(conn, model_ids())
        cursor.close()
        raw.commit()
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()


def insert_rows(engine: Engine, rows: list[dict[str, Any]]) -> int:
    """Insert validated shadow rows in one transaction (COPY on PostgreSQL).

    Rows for SQLite must have been built JSON-ready (`build_rows(..., json_ready=True)`)."""
    if not rows:
        return 0
    if engine.dialect.name != "postgresql":
        with engine.begin() as conn:
            conn.execute(insert(ShadowTestResult), rows)
        return len(rows)
    encoder = _CopyEncoder()
    ids = {row["shadow_model_id"] for row in rows} | {row["active_model_id"] for row in rows}
    _copy(engine, (encoder.line(row, index) for index, row in enumerate(rows)), lambda: ids)
    return len(rows)


def copy_predictions(engine: Engine, items: Iterable[ShadowPrediction | Mapping[str, Any]], horizon: timedelta) -> int:
    """Validate, encode and COPY a batch in one pass (PostgreSQL): PostgreSQL inserts while
    the next rows are encoded. One bad item or unknown model id refuses the whole batch."""
    now, checked, count = utcnow(), set[tuple[str, str, str]](), 0
    encoder = _CopyEncoder()

    def lines() -> Iterator[str]:
        nonlocal count
        for index, item in enumerate(items):
            row = shadow_row(as_item(item, index), horizon, now, index, json_ready=False, checked=checked)
            count += 1
            yield encoder.line(row, index)

    _copy(engine, lines(), lambda: {name for names in checked for name in names[:2]})
    return count
