"""The live path's SQL: one snapshot read per request, one statement writing its rows, candle reads."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, bindparam, func, insert, literal, or_, select
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.core.db.models import Candle, Event, PolicyVersion, PredictionLog, ShadowTestResult, SystemFlag
from app.core.db.models import ModelRegistry as ModelRow
from app.core.policy import Policy
from app.core.system import TradingHalt, halt_of
from app.data_pipeline import timeframe_ms, warmup_rows
from app.data_pipeline.timeframes import floor_to_grid, to_ms
from app.model_registry.records import ACTIVE, REJECTED, SHADOW
from app.prediction.types import Prediction

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


CANDLE_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
_EPOCH = datetime(1970, 1, 1)
MAX_WINDOWS = 1024  # symbols (or distinct request candle sets) whose window a process keeps
Db = Session | Connection  # the reads and writes here are Core statements: either runs them


def _dialect(db: Db) -> str:
    return db.dialect.name if isinstance(db, Connection) else db.get_bind().dialect.name


def live_model_ids(session: Session, model_type: str) -> tuple[str | None, str | None]:
    rows = session.execute(
        select(ModelRow.model_id, ModelRow.status).where(
            ModelRow.model_type == model_type, ModelRow.status.in_((ACTIVE, SHADOW))
        )
    ).all()
    by_status = {status: model_id for model_id, status in rows}
    return by_status.get(ACTIVE), by_status.get(SHADOW)


@dataclass(frozen=True)
class Snapshot:
    """What one request reads: the policy version, live models per type, the candle window's key."""

    policy_version: int
    live: dict[str, tuple[str | None, str | None]]  # model type -> (ACTIVE id, SHADOW id)
    last_open: int | None  # open time (ms) of the newest closed candle in the window
    candles: int
    drawn_ids: tuple[int, int, int] | None = None  # PostgreSQL: two prediction log ids, one shadow pair id
    halt: TradingHalt | None = None  # the trading halt, read in the same statement (every answer carries it)


def candle_window(policy: Policy, now: datetime) -> tuple[int, int]:
    """(first, last) open time (ms) of the closed candles the features need, on the candle grid."""
    step = timeframe_ms(policy.data.timeframe)
    last = floor_to_grid(to_ms(now), policy.data.timeframe) - step  # the newest candle that has closed
    wanted = warmup_rows(policy.features) + history_rows(policy) + 2
    return last - (wanted - 1) * step, last


def _window_filter(policy: Policy, symbol: str, bounds: tuple[int, int]) -> tuple[Any, ...]:
    return (
        Candle.exchange == policy.data.exchange,
        Candle.symbol == symbol,
        Candle.timeframe == policy.data.timeframe,
        Candle.open_time >= bounds[0],
        Candle.open_time <= bounds[1],
    )


@functools.cache
def _snapshot_statement(postgres: bool) -> Any:
    """`read_snapshot`'s statement, built once (bound parameters: exchange, symbol, timeframe,
    first, last), so a request neither rebuilds nor recompiles it."""
    window = (
        select(func.max(Candle.open_time).label("last_open"), func.count().label("candles"))
        .where(
            Candle.exchange == bindparam("exchange"),
            Candle.symbol == bindparam("symbol"),
            Candle.timeframe == bindparam("timeframe"),
            Candle.open_time >= bindparam("first"),
            Candle.open_time <= bindparam("last"),
        )
        .subquery()
    )  # one scan of the window's index entries for both values
    halted = (SystemFlag.name == "trading_halted", SystemFlag.enabled.is_(True))
    columns: list[Any] = [
        select(func.max(PolicyVersion.version)).scalar_subquery().label("policy_version"),
        window.c.last_open,
        window.c.candles,
        select(func.count()).select_from(SystemFlag).where(*halted).scalar_subquery().label("halted"),
        select(SystemFlag.value).where(*halted).scalar_subquery().label("halt_value"),
        select(SystemFlag.updated_at).where(*halted).scalar_subquery().label("halt_updated"),
    ]
    if postgres:
        # Ids for the rows this request will write, so the signal can carry them and the
        # writes go in one statement (an id left unused is a gap in the sequence, nothing more).
        columns.append(func.nextval("prediction_logs_id_seq").label("log_id_1"))
        columns.append(func.nextval("prediction_logs_id_seq").label("log_id_2"))
        columns.append(func.nextval("shadow_test_results_id_seq").label("pair_id"))
    head = select(*columns).select_from(window).subquery()
    return select(head, ModelRow.model_type, ModelRow.model_id, ModelRow.status).select_from(
        # Two comparisons, not IN: an IN list is expanded again on every execution.
        head.outerjoin(ModelRow, or_(ModelRow.status == ACTIVE, ModelRow.status == SHADOW))
    )


GATE_REJECTION = "REJECTED by the baseline gate"


def gate_rejection(db: Db, model_types: list[str]) -> tuple[str, str] | None:
    """(model type, reason) of the newest model of `model_types` that the baseline gate rejected, if any."""
    row = db.execute(
        select(ModelRow.model_type, ModelRow.notes)
        .where(
            ModelRow.model_type.in_(model_types),
            ModelRow.status == REJECTED,
            ModelRow.notes.like(f"{GATE_REJECTION}%"),
        )
        .order_by(ModelRow.created_at.desc())
        .limit(1)
    ).first()
    return (str(row.model_type), str(row.notes)) if row is not None else None


def read_snapshot(db: Db, policy: Policy, symbol: str, bounds: tuple[int, int]) -> Snapshot:
    """One round trip: policy version, every ACTIVE/SHADOW model, the window's newest candle and count
    (and on PostgreSQL the ids the request's rows will have)."""
    postgres = _dialect(db) == "postgresql"
    params = {"exchange": policy.data.exchange, "symbol": symbol, "timeframe": policy.data.timeframe}
    rows = db.execute(_snapshot_statement(postgres), params | {"first": bounds[0], "last": bounds[1]}).all()
    live: dict[str, tuple[str | None, str | None]] = {}
    for row in rows:
        if row.model_type is not None:
            active, shadow = live.get(row.model_type, (None, None))
            live[row.model_type] = (row.model_id, shadow) if row.status == ACTIVE else (active, row.model_id)
    first = rows[0]
    drawn = (int(first.log_id_1), int(first.log_id_2), int(first.pair_id)) if postgres else None
    halt = halt_of(first.halt_value, first.halt_updated) if first.halted else None
    return Snapshot(int(first.policy_version or 0), live, first.last_open, int(first.candles or 0), drawn, halt)


def write_prediction(
    db: Db,
    logs: list[dict[str, Any]],
    pair_row: dict[str, Any] | None,
    result: Prediction,
    event: dict[str, Any],
    drawn_ids: tuple[int, int, int] | None = None,
) -> tuple[int, int | None]:
    """Insert the prediction logs (ACTIVE first), the shadow pair and the `ai.signal.generated`
    event row (`event`: `EventBus.event_values` of `result`, its ids filled in here) in `db`'s
    transaction; returns (ACTIVE prediction id, shadow pair id).

    With `drawn_ids` (PostgreSQL, drawn by `read_snapshot`): one statement of data-modifying
    CTEs. Otherwise one INSERT per table.
    """
    if drawn_ids is None:
        ids = db.execute(insert(PredictionLog).returning(PredictionLog.id, sort_by_parameter_order=True), logs)
        prediction_id = int(ids.scalars().all()[0])
        shadow_test_id = None
        if pair_row is not None:
            pair_row = _with_prediction_id(pair_row, prediction_id)
            inserted = db.execute(insert(ShadowTestResult).returning(ShadowTestResult.id), pair_row)
            shadow_test_id = int(inserted.scalar_one())
        event["payload"] = event["payload"] | {"prediction_id": prediction_id, "shadow_test_id": shadow_test_id}
        db.execute(insert(Event), event)
        return prediction_id, shadow_test_id
    log_ids = list(drawn_ids[: len(logs)])
    shadow_test_id = drawn_ids[2] if pair_row is not None else None
    event["payload"] = event["payload"] | {"prediction_id": log_ids[0], "shadow_test_id": shadow_test_id}
    params: dict[str, Any] = {}
    for n, (row, log_id) in enumerate(zip(logs, log_ids, strict=True)):
        params |= {f"l{n}_{key}": value for key, value in (row | {"id": log_id}).items()}
    if pair_row is not None:
        pair_row = _with_prediction_id(pair_row, log_ids[0])
        params |= {f"s_{key}": value for key, value in (pair_row | {"id": shadow_test_id}).items()}
    params |= {f"e_{key}": value for key, value in event.items()}
    db.execute(_write_statement(len(logs), tuple(logs[0]), tuple(pair_row or ()), tuple(event)), params)
    return log_ids[0], shadow_test_id


def _with_prediction_id(pair_row: dict[str, Any], prediction_id: int) -> dict[str, Any]:
    """The pair keeps the served prediction's id: an outcome naming `prediction_id` closes this pair
    and no other pair of the same candle (`app.shadow_tester.targets`)."""
    return pair_row | {"active_prediction": pair_row["active_prediction"] | {"prediction_id": prediction_id}}


@functools.cache
def _write_statement(
    logs: int, log_keys: tuple[str, ...], pair_keys: tuple[str, ...], event_keys: tuple[str, ...]
) -> Any:
    """One statement inserting `logs` prediction logs, the shadow pair (if `pair_keys`) and the
    event, with bound parameters (`l0_model_id`, `s_symbol`, `e_topic`...): built once per shape,
    so SQLAlchemy compiles it once."""

    def values(model: Any, prefix: str, keys: tuple[str, ...]) -> dict[str, Any]:
        return {key: bindparam(f"{prefix}{key}", type_=model.__table__.c[key].type) for key in keys}

    # Single-row INSERTs: SQLAlchemy caches their compiled form (a multi-row VALUES it does not).
    statements = [insert(PredictionLog).values(values(PredictionLog, f"l{n}_", (*log_keys, "id"))) for n in range(logs)]
    if pair_keys:
        statements.append(insert(ShadowTestResult).values(values(ShadowTestResult, "s_", (*pair_keys, "id"))))
    statements.append(insert(Event).values(values(Event, "e_", event_keys)))
    ctes = [statement.returning(literal(1)).cte(f"w{n}") for n, statement in enumerate(statements)]
    return select(*[select(func.count()).select_from(cte).scalar_subquery() for cte in ctes])


def read_candles(db: Db, policy: Policy, symbol: str, bounds: tuple[int, int]) -> pd.DataFrame:
    """The closed candles of the window `bounds` from the candle store's table, read in `db`."""
    rows = db.execute(
        select(Candle.open_time, Candle.open, Candle.high, Candle.low, Candle.close, Candle.volume)
        .where(*_window_filter(policy, symbol, bounds))
        .order_by(Candle.open_time)
    ).all()
    frame = pd.DataFrame(
        np.array([tuple(r) for r in rows], dtype=np.float64).reshape(-1, 6), columns=list(CANDLE_COLUMNS)
    )
    frame["timestamp"] = frame["timestamp"].astype(np.int64)
    return frame


def recent_candles(db: Db, policy: Policy, symbol: str) -> pd.DataFrame:
    """The closed candles the features need now (the candle still forming is not used)."""
    return read_candles(db, policy, symbol, candle_window(policy, utcnow()))


def history_rows(policy: Policy) -> int:
    """Feature rows of context the sequence models read before the predicted row."""
    return max(policy.training.nhits.input_size, policy.training.patchtst.input_size)
