"""Writing shadow rows: validation of the two predictions, single and batched inserts.

A prediction is a dict with `direction` (-1, 0, 1) or `action` (BUY/LONG, SELL/SHORT,
HOLD/FLAT), and optionally `confidence` in [0, 1] and `predicted_return`. The whole dict is
kept as JSON; direction and confidence are also written to their numeric columns so
evaluations read columns, not JSON.

Batched inserts use PostgreSQL's COPY (about 3x `execute_values` here); SQLite gets one
executemany.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, insert, select, text
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.core.db.models import ModelRegistry, ShadowTestResult

_ACTIONS = {"BUY": 1, "LONG": 1, "SELL": -1, "SHORT": -1, "HOLD": 0, "FLAT": 0}


class InvalidPredictionError(ValueError):
    """A prediction or outcome that cannot be recorded; the message names the field."""


def prediction_fields(prediction: Mapping[str, Any], where: str) -> tuple[int, float | None]:
    """(direction, confidence) of a prediction dict; `where` names it in errors."""
    if type(prediction) is dict:  # the common, already clean case: no conversions
        direction, confidence = prediction.get("direction"), prediction.get("confidence")
        clean_confidence = confidence is None or (type(confidence) is float and 0.0 <= confidence <= 1.0)
        if type(direction) is int and -1 <= direction <= 1 and clean_confidence:
            return direction, confidence
    if not isinstance(prediction, Mapping):
        raise InvalidPredictionError(f"{where}: expected an object, got {type(prediction).__name__}")
    if prediction.get("direction") is not None:
        raw = prediction["direction"]
        try:
            direction = int(raw)
        except (TypeError, ValueError):
            raise InvalidPredictionError(f"{where}.direction: {raw!r} is not -1, 0 or 1") from None
        if direction not in (-1, 0, 1) or direction != raw:
            raise InvalidPredictionError(f"{where}.direction: {raw!r} is not -1, 0 or 1")
    elif prediction.get("action") is not None:
        action = str(prediction["action"]).upper()
        if action not in _ACTIONS:
            raise InvalidPredictionError(f"{where}.action: {prediction['action']!r} is not one of {sorted(_ACTIONS)}")
        direction = _ACTIONS[action]
    else:
        raise InvalidPredictionError(f"{where}: needs `direction` (-1, 0, 1) or `action` (BUY, SELL, HOLD)")
    confidence = prediction.get("confidence")
    if confidence is not None:
        try:
            confidence = float(confidence)
        except (TypeError, ValueError):
            raise InvalidPredictionError(f"{where}.confidence: {confidence!r} is not a number") from None
        if not (0.0 <= confidence <= 1.0):
            raise InvalidPredictionError(f"{where}.confidence: {confidence} is outside [0, 1]")
    return direction, confidence


@dataclass
class ShadowPrediction:
    """One paired prediction to record (the batched form of `record_shadow_prediction`)."""

    shadow_model_id: str
    active_model_id: str
    symbol: str
    active_pred: Mapping[str, Any]
    shadow_pred: Mapping[str, Any]
    timestamp: datetime | None = None
    trade_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def shadow_row(
    item: ShadowPrediction,
    horizon: timedelta,
    now: datetime,
    index: int | None = None,
    json_ready: bool = True,
    checked: set[tuple[str, str, str]] | None = None,
) -> dict[str, Any]:
    """The column values of one shadow row, validated.

    `json_ready=False` keeps the two prediction dicts as given (the COPY path encodes them
    with orjson, which writes NaN as null and numpy scalars as numbers); `checked` remembers
    the (shadow, active, symbol) triples already validated in a batch.
    """
    where = "prediction" if index is None else f"predictions[{index}]"
    names = (item.shadow_model_id, item.active_model_id, item.symbol)
    plain = type(names[0]) is str and type(names[1]) is str and type(names[2]) is str
    if checked is None or not plain or names not in checked:
        _check_names(item, where)
        if checked is not None:
            checked.add(names)
    active_direction, active_confidence = prediction_fields(item.active_pred, f"{where}.active_pred")
    shadow_direction, shadow_confidence = prediction_fields(item.shadow_pred, f"{where}.shadow_pred")
    timestamp = item.timestamp or now
    return {
        "shadow_model_id": item.shadow_model_id,
        "active_model_id": item.active_model_id,
        "symbol": item.symbol,
        "timestamp": timestamp,
        "active_prediction": _json_ready(item.active_pred) if json_ready else item.active_pred,
        "shadow_prediction": _json_ready(item.shadow_pred) if json_ready else item.shadow_pred,
        "active_direction": active_direction,
        "shadow_direction": shadow_direction,
        "active_confidence": active_confidence,
        "shadow_confidence": shadow_confidence,
        "horizon_end": timestamp + horizon,
        "trade_id": item.trade_id,
        "created_at": now,
    }


def _check_names(item: ShadowPrediction, where: str) -> None:
    for name in ("shadow_model_id", "active_model_id", "symbol"):
        value = getattr(item, name)
        if not isinstance(value, str) or not value:
            raise InvalidPredictionError(f"{where}.{name}: must be a non-empty string, got {value!r}")
    if len(item.symbol) > 20:
        raise InvalidPredictionError(f"{where}.symbol: {item.symbol!r} is longer than 20 characters")


def _json_ready(prediction: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in prediction.items():
        if isinstance(value, float) and not math.isfinite(value):
            value = None  # JSONB refuses NaN/Infinity
        elif hasattr(value, "item"):  # numpy scalar
            value = value.item()
        out[str(key)] = value
    return out


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
            row = shadow_row(_item(item, index), horizon, now, index, json_ready=False, checked=checked)
            count += 1
            yield encoder.line(row, index)

    _copy(engine, lines(), lambda: {name for names in checked for name in names[:2]})
    return count


def _item(item: ShadowPrediction | Mapping[str, Any], index: int) -> ShadowPrediction:
    if isinstance(item, ShadowPrediction):
        return item
    try:
        return ShadowPrediction(**item)
    except TypeError as exc:
        raise InvalidPredictionError(f"predictions[{index}]: {exc}") from None


def build_rows(
    items: Iterable[ShadowPrediction | Mapping[str, Any]], horizon: timedelta, json_ready: bool = True
) -> list[dict[str, Any]]:
    """Validate every item first: one bad item refuses the batch, naming its index.

    `json_ready=False` for rows bound for `insert_rows` on PostgreSQL (encoded there)."""
    now = utcnow()
    rows = []
    checked: set[tuple[str, str, str]] = set()
    for index, item in enumerate(items):
        rows.append(shadow_row(_item(item, index), horizon, now, index, json_ready, checked))
    return rows


def check_model_ids(session: Session, rows: Iterable[Mapping[str, Any]]) -> None:
    """Refuse rows naming a model the registry does not know (one query for the whole batch)."""
    require_known_models(session, {row["shadow_model_id"] for row in rows} | {row["active_model_id"] for row in rows})


def require_known_models(db: Session | Connection, wanted: set[str]) -> None:
    known = set(db.execute(select(ModelRegistry.model_id).where(ModelRegistry.model_id.in_(sorted(wanted)))).scalars())
    unknown = sorted(wanted - known)
    if unknown:
        raise InvalidPredictionError(f"unknown model ids {unknown}: no such model in the registry; nothing recorded")


def telemetry_commit(session: Session) -> None:
    """Do not wait for the WAL flush when this transaction commits (PostgreSQL).

    Prediction logs, shadow rows and signals are telemetry: a crash may lose the last
    fraction of a second of them (never half of a transaction), and a request does not wait
    for the disk. Everything that decides (promotions, registry changes) stays durable.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))
