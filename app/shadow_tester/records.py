"""Writing shadow rows: validation of the two predictions, single and batched inserts.

A prediction is a dict with `direction` (-1, 0, 1) or `action` (BUY/LONG, SELL/SHORT,
HOLD/FLAT), and optionally `confidence` in [0, 1] and `predicted_return`. The whole dict is
kept as JSON; direction and confidence are also written to their numeric columns so
evaluations read columns, not JSON.

Batched inserts use PostgreSQL's COPY (about 3x `execute_values` here); SQLite gets one
executemany.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, text
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.db.models import ShadowTestResult

_ACTIONS = {"BUY": 1, "LONG": 1, "SELL": -1, "SHORT": -1, "HOLD": 0, "FLAT": 0}


class InvalidPredictionError(ValueError):
    """A prediction or outcome that cannot be recorded; the message names the field."""


def prediction_fields(prediction: Mapping[str, Any], where: str) -> tuple[int, float | None]:
    """(direction, confidence) of a prediction dict; `where` names it in errors."""
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


def shadow_row(item: ShadowPrediction, horizon: timedelta, now: datetime, index: int | None = None) -> dict[str, Any]:
    """The column values of one shadow row, validated."""
    where = "prediction" if index is None else f"predictions[{index}]"
    for name in ("shadow_model_id", "active_model_id", "symbol"):
        value = getattr(item, name)
        if not isinstance(value, str) or not value:
            raise InvalidPredictionError(f"{where}.{name}: must be a non-empty string, got {value!r}")
    if len(item.symbol) > 20:
        raise InvalidPredictionError(f"{where}.symbol: {item.symbol!r} is longer than 20 characters")
    active_direction, active_confidence = prediction_fields(item.active_pred, f"{where}.active_pred")
    shadow_direction, shadow_confidence = prediction_fields(item.shadow_pred, f"{where}.shadow_pred")
    timestamp = item.timestamp or now
    return {
        "shadow_model_id": item.shadow_model_id,
        "active_model_id": item.active_model_id,
        "symbol": item.symbol,
        "timestamp": timestamp,
        "active_prediction": _json_ready(item.active_pred),
        "shadow_prediction": _json_ready(item.shadow_pred),
        "active_direction": active_direction,
        "shadow_direction": shadow_direction,
        "active_confidence": active_confidence,
        "shadow_confidence": shadow_confidence,
        "horizon_end": timestamp + horizon,
        "trade_id": item.trade_id,
        "created_at": now,
    }


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


def _copy_tuples(rows: list[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    """Rows in `_COPY_COLUMNS` order as CSV-ready values (the hot loop of a batch: no per-column checks)."""
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    stamps: dict[datetime, str] = {}  # a batch shares few distinct times (created_at: one)

    def stamp(moment: datetime) -> str:
        text = stamps.get(moment)
        if text is None:
            text = stamps[moment] = moment.isoformat(sep=" ")
        return text

    for row in rows:
        yield (
            row["shadow_model_id"],
            row["active_model_id"],
            row["symbol"],
            stamp(row["timestamp"]),
            dumps(row["active_prediction"]),
            dumps(row["shadow_prediction"]),
            row["active_direction"],
            row["shadow_direction"],
            row["active_confidence"],
            row["shadow_confidence"],
            stamp(row["horizon_end"]),
            row["trade_id"],
            stamp(row["created_at"]),
        )


def insert_rows(engine: Engine, rows: list[dict[str, Any]]) -> int:
    """Insert validated shadow rows in one transaction (COPY on PostgreSQL)."""
    if not rows:
        return 0
    if engine.dialect.name != "postgresql":
        with engine.begin() as conn:
            conn.execute(insert(ShadowTestResult), rows)
        return len(rows)
    buffer = io.StringIO()
    csv.writer(buffer).writerows(_copy_tuples(rows))
    buffer.seek(0)
    raw = engine.raw_connection()
    try:
        cursor: Any = raw.cursor()  # psycopg2's cursor: copy_expert
        # csv.writer writes None as an empty unquoted field, which COPY reads as NULL.
        cursor.copy_expert(
            f"COPY shadow_test_results ({', '.join(_COPY_COLUMNS)}) FROM STDIN WITH (FORMAT csv)", buffer
        )
        cursor.close()
        raw.commit()
    except Exception:
        raw.rollback()
        raise
    finally:
        raw.close()
    return len(rows)


def build_rows(items: Iterable[ShadowPrediction | Mapping[str, Any]], horizon: timedelta) -> list[dict[str, Any]]:
    """Validate every item first: one bad item refuses the batch, naming its index."""
    now = utcnow()
    rows = []
    for index, item in enumerate(items):
        if isinstance(item, Mapping):
            try:
                item = ShadowPrediction(**item)
            except TypeError as exc:
                raise InvalidPredictionError(f"predictions[{index}]: {exc}") from None
        rows.append(shadow_row(item, horizon, now, index))
    return rows


def telemetry_commit(session: Session) -> None:
    """Do not wait for the WAL flush when this transaction commits (PostgreSQL).

    Prediction logs, shadow rows and signals are telemetry: a crash may lose the last
    fraction of a second of them (never half of a transaction), and a request does not wait
    for the disk. Everything that decides (promotions, registry changes) stays durable.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))
