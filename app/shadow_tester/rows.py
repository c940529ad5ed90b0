"""Shadow rows: validation of the two predictions and the row built from them (COPY: `copy_writer`).

A prediction is a dict with `direction` (-1, 0, 1) or `action` (BUY/LONG, SELL/SHORT,
HOLD/FLAT), and optionally `confidence` in [0, 1] and `predicted_return`. The whole dict is
kept as JSON; direction and confidence are also written to their numeric columns so
evaluations read columns, not JSON.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, text
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.core.db.models import ModelRegistry

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


def as_item(item: ShadowPrediction | Mapping[str, Any], index: int) -> ShadowPrediction:
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
        rows.append(shadow_row(as_item(item, index), horizon, now, index, json_ready, checked))
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
