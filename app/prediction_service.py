"""Predictions for the AI Trading Engine: the ACTIVE model answers, the SHADOW model is recorded beside it.

`PredictionService(container).predict(symbol, candles=None)` engineers the features of the
recent closed candles (given, or read from the candle store), asks the ACTIVE model of the
type (default: the first of the policy's `training.model_types` that has an ACTIVE model),
and in one transaction logs the prediction with its latency (`prediction_logs`, both
models), records the SHADOW model's prediction beside it (`shadow_test_results`) and
publishes `ai.signal.generated`.

What a request costs: one query reads the policy version, the live models of every type and
the freshness of the symbol's candle window (its last open time and count); the three
inserts and the commit follow. Everything else is cached per process and keyed by what it
depends on, so nothing stale is served:

- the policy per version (versions are immutable rows);
- the loaded models per (ACTIVE id, SHADOW id) (`ModelCache`): a promotion changes the ids
  the next request reads, the cache loads what changed, reusing a promoted shadow's loaded
  model, and `model.promoted` refreshes it ahead of the next request where the event is
  delivered in this process. A swap replaces one immutable pair under a lock, so requests in
  flight finish on the pair they started with and none fails;
- a symbol's window (candles, features, each model's prediction) per (policy version, last
  closed candle, candle count), or per content hash for candles sent with the request. The
  features change once per candle, so at 200 requests/s nearly every request reuses them;
  a new candle, a filled gap or a new policy is a new key.

The window is aligned to the candle grid: the closed candles of the last
`warmup + history + 2` intervals, so requests within one interval see the same rows.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, bindparam, func, insert, literal, or_, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.data_pipeline import engineer_features, timeframe_ms, warmup_rows
from app.data_pipeline.timeframes import floor_to_grid, to_ms
from app.db.models import Candle, Event, PolicyVersion, PredictionLog, ShadowTestResult
from app.db.models import ModelRegistry as ModelRow
from app.model_registry import ModelRecord
from app.model_supervisor import prediction_log_values
from app.policy import Policy
from app.shadow_tester.records import ShadowPrediction, shadow_row
from app.topics import ModelPromoted, SignalGenerated

if TYPE_CHECKING:
    from app.bootstrap import Container
    from app.model_training import Forecaster

log = logging.getLogger(__name__)

CANDLE_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
_CACHE_KEY = "prediction_models"
_EPOCH = datetime(1970, 1, 1)
MAX_WINDOWS = 1024  # symbols (or distinct request candle sets) whose window a process keeps
Db = Session | Connection  # the reads and writes here are Core statements: either runs them


def _dialect(db: Db) -> str:
    return db.dialect.name if isinstance(db, Connection) else db.get_bind().dialect.name


class InsufficientHistoryError(ValueError):
    """Too few candles to compute the features: the message says how many are needed."""


class NoActiveModelError(LookupError):
    """No ACTIVE model to answer with."""


@dataclass
class LoadedModel:
    record: ModelRecord
    forecaster: Forecaster
    lock: threading.Lock = field(default_factory=threading.Lock)  # boosters are not all thread-safe

    def predict(self, frame: pd.DataFrame, history: pd.DataFrame) -> dict[str, Any]:
        with self.lock:
            predicted, direction, confidence = self.forecaster.predict_arrays(frame, history)
        return {
            "predicted_return": float(predicted[-1]),
            "direction": int(direction[-1]),
            "confidence": float(confidence[-1]),
        }


@dataclass(frozen=True)
class ModelPair:
    active: LoadedModel
    shadow: LoadedModel | None

    @property
    def ids(self) -> tuple[str, str | None]:
        return self.active.record.model_id, self.shadow.record.model_id if self.shadow else None


@dataclass
class Window:
    """One symbol's features (the last row, and the rows before it) and each model's prediction of the last row."""

    last: pd.DataFrame
    history: pd.DataFrame
    at: datetime  # close time of the last candle
    predictions: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def prediction(self, model: LoadedModel) -> dict[str, Any]:
        """The model's prediction of the last row: computed once per window and model."""
        model_id = model.record.model_id
        cached = self.predictions.get(model_id)
        if cached is None:
            with self.lock:
                cached = self.predictions.get(model_id)
                if cached is None:
                    cached = self.predictions[model_id] = model.predict(self.last, self.history)
        return dict(cached)


class ModelCache:
    """The process's live state: loaded models per type, the policy, symbol windows. Thread-safe."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self._pairs: dict[str, ModelPair] = {}
        self._lock = threading.Lock()
        self.policy: tuple[int, Policy] | None = None
        self._windows: OrderedDict[tuple[Any, ...], Window] = OrderedDict()
        self._windows_lock = threading.Lock()
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        """The live path's own pool (PostgreSQL): no pre-ping round trip on every checkout (a
        connection found dead is retried once by `PredictionService.predict` instead), and
        autocommit with asynchronous commit: the write is one statement, so it is its own
        transaction and needs no COMMIT round trip. Prediction logs, shadow rows and signals
        are telemetry: a crash may lose the last fraction of a second of them (never half a
        statement), and a request does not wait for the disk."""
        if self._engine is None:
            main = self.container.engine
            if main.dialect.name != "postgresql":
                return main
            from app.db.session import make_engine

            with self._lock:
                if self._engine is None:
                    self._engine = make_engine(
                        self.container.settings.database_url,
                        # a request holds one connection: gunicorn's 4 threads per worker, and as
                        # many again for bursts (not the default 5 + 10: PostgreSQL's connection
                        # limit is shared by every API and Celery worker)
                        pool_size=4,
                        max_overflow=4,
                        pool_pre_ping=False,
                        isolation_level="AUTOCOMMIT",
                        connect_args={"options": "-c synchronous_commit=off"},
                    )
        return self._engine

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def pair(self, model_type: str, active_id: str, shadow_id: str | None) -> ModelPair:
        """The loaded pair for these ids, loading (once, under the lock) what is not loaded yet."""
        current = self._pairs.get(model_type)
        if current is not None and current.ids == (active_id, shadow_id):
            return current
        with self._lock:
            current = self._pairs.get(model_type)
            if current is not None and current.ids == (active_id, shadow_id):
                return current
            loaded = {m.record.model_id: m for m in ([current.active, current.shadow] if current else []) if m}
            pair = ModelPair(
                active=loaded.get(active_id) or self._load(active_id),
                shadow=(loaded.get(shadow_id) or self._load(shadow_id)) if shadow_id else None,
            )
            self._pairs[model_type] = pair
            log.info("prediction models for %s: active %s, shadow %s", model_type, active_id, shadow_id)
            # Long-lived objects (libraries, models) out of the collector's way: a full collection
            # then scans what requests allocate, not the whole process (a p99 of tens of ms otherwise).
            gc.collect()
            gc.freeze()
            return pair

    def _load(self, model_id: str) -> LoadedModel:
        from app.model_registry import ModelRegistry
        from app.model_training import load_forecaster

        record = ModelRegistry(self.container).get_model(model_id)
        return LoadedModel(record, load_forecaster(self.container, record))

    def refresh(self, model_type: str) -> None:
        """Load the type's current ACTIVE and SHADOW models now (on `model.promoted`)."""
        with self.container.session() as session:
            ids = live_model_ids(session, model_type)
        if ids[0] is not None:
            self.pair(model_type, ids[0], ids[1])

    def window(self, key: tuple[Any, ...]) -> Window | None:
        with self._windows_lock:
            found = self._windows.get(key)
            if found is not None:
                self._windows.move_to_end(key)
            return found

    def clear_windows(self) -> None:
        """Forget every cached window (the benchmark's cold path; tests)."""
        with self._windows_lock:
            self._windows.clear()

    def keep_window(self, key: tuple[Any, ...], window: Window) -> Window:
        """Store `window` under `key` (or return the one another thread stored first)."""
        with self._windows_lock:
            kept = self._windows.setdefault(key, window)
            self._windows.move_to_end(key)
            # One window per symbol: a newer key of the same symbol replaces the older one.
            for old in [k for k in self._windows if k[:2] == key[:2] and k != key]:
                del self._windows[old]
            while len(self._windows) > MAX_WINDOWS:
                self._windows.popitem(last=False)
            return kept


def model_cache(container: Container) -> ModelCache:
    cache = container.extras.get(_CACHE_KEY)
    if cache is None:
        cache = container.extras.setdefault(_CACHE_KEY, ModelCache(container))
    return cache  # type: ignore[no-any-return]


def live_model_ids(session: Session, model_type: str) -> tuple[str | None, str | None]:
    rows = session.execute(
        select(ModelRow.model_id, ModelRow.status).where(
            ModelRow.model_type == model_type, ModelRow.status.in_(("ACTIVE", "SHADOW"))
        )
    ).all()
    by_status = {status: model_id for model_id, status in rows}
    return by_status.get("ACTIVE"), by_status.get("SHADOW")


@dataclass(frozen=True)
class Prediction:
    symbol: str
    model_id: str
    model_type: str
    predicted_return: float
    direction: int
    confidence: float
    timestamp: datetime  # close time of the last candle the prediction is based on
    horizon_end: datetime
    latency_ms: float
    prediction_id: int
    shadow: dict[str, Any] | None = None  # the SHADOW model's prediction (model_id, ...)
    shadow_test_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["timestamp"] = self.timestamp.isoformat()
        out["horizon_end"] = self.horizon_end.isoformat()
        return out


@dataclass(frozen=True)
class Snapshot:
    """What one request reads: the policy version, live models per type, the candle window's key."""

    policy_version: int
    live: dict[str, tuple[str | None, str | None]]  # model type -> (ACTIVE id, SHADOW id)
    last_open: int | None  # open time (ms) of the newest closed candle in the window
    candles: int
    drawn_ids: tuple[int, int, int] | None = None  # PostgreSQL: two prediction log ids, one shadow pair id


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
    columns: list[Any] = [
        select(func.max(PolicyVersion.version)).scalar_subquery().label("policy_version"),
        window.c.last_open,
        window.c.candles,
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
        head.outerjoin(ModelRow, or_(ModelRow.status == "ACTIVE", ModelRow.status == "SHADOW"))
    )


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
            live[row.model_type] = (row.model_id, shadow) if row.status == "ACTIVE" else (active, row.model_id)
    first = rows[0]
    drawn = (int(first.log_id_1), int(first.log_id_2), int(first.pair_id)) if postgres else None
    return Snapshot(int(first.policy_version or 0), live, first.last_open, int(first.candles or 0), drawn)


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
        params |= {f"s_{key}": value for key, value in (pair_row | {"id": shadow_test_id}).items()}
    params |= {f"e_{key}": value for key, value in event.items()}
    db.execute(_write_statement(len(logs), tuple(logs[0]), tuple(pair_row or ()), tuple(event)), params)
    return log_ids[0], shadow_test_id


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


class PredictionService:
    def __init__(self, container: Container, model_type: str | None = None) -> None:
        self.container = container
        self.model_type = model_type
        self.cache = model_cache(container)

    def predict(self, symbol: str, candles: pd.DataFrame | Sequence[Mapping[str, Any]] | None = None) -> Prediction:
        started = time.perf_counter()
        if not isinstance(symbol, str) or not symbol or len(symbol) > 20:
            raise ValueError(f"symbol: {symbol!r} must be a non-empty string of at most 20 characters")
        try:
            return self._predict(symbol, candles, started)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            # A pooled connection had died (database restarted): its transaction wrote nothing,
            # and the pool has dropped its other connections; once more on a fresh one.
            log.warning("prediction for %s: connection lost, retrying once: %s", symbol, exc.orig)
            return self._predict(symbol, candles, started)

    def _predict(
        self, symbol: str, candles: pd.DataFrame | Sequence[Mapping[str, Any]] | None, started: float
    ) -> Prediction:
        engine = self.cache.engine
        # PostgreSQL: the live pool autocommits (read, then one write statement); SQLite: a transaction.
        with engine.connect() if engine.dialect.name == "postgresql" else engine.begin() as db:
            policy, snapshot, bounds = self._snapshot(db, symbol)
            model_type, active_id, shadow_id = self._live_ids(snapshot, policy)
            pair = self.cache.pair(model_type, active_id, shadow_id)
            window = self._window(db, symbol, candles, policy, snapshot, bounds)
            active = window.prediction(pair.active)
            shadow = self._shadow_prediction(window, pair)
            latency_ms = (time.perf_counter() - started) * 1000.0
            at = window.at
            horizon = timedelta(milliseconds=timeframe_ms(policy.data.timeframe)) * policy.labels.horizon
            logs = [prediction_log_values(active_id, active, latency_ms, symbol=symbol, timestamp=at)]
            pair_row = None
            if shadow is not None and shadow_id is not None:
                logs.append(prediction_log_values(shadow_id, shadow, latency_ms, symbol=symbol, timestamp=at))
                item = ShadowPrediction(shadow_id, active_id, symbol, active, shadow, at)
                pair_row = shadow_row(item, horizon, utcnow())
                shadow = {"model_id": shadow_id} | shadow
            result = Prediction(
                symbol=symbol,
                model_id=active_id,
                model_type=model_type,
                timestamp=at,
                horizon_end=at + horizon,
                latency_ms=latency_ms,
                prediction_id=0,  # known once written
                shadow=shadow,
                **active,
            )
            event = self.container.bus.event_values(SignalGenerated(**result.to_dict()), record_only=True)
            prediction_id, shadow_test_id = write_prediction(db, logs, pair_row, result, event, snapshot.drawn_ids)
            result = replace(result, prediction_id=prediction_id, shadow_test_id=shadow_test_id)
        if event["status"] == "pending":  # a handler listens: deliver as after any commit
            self.container.bus.notify()
        return result

    def _snapshot(self, db: Db, symbol: str) -> tuple[Policy, Snapshot, tuple[int, int]]:
        """The request's snapshot, read with the policy it names (the cached one, unless it changed)."""
        cached = self.cache.policy
        policy = cached[1] if cached is not None else Policy()  # the first request: read again below
        for _ in range(3):
            bounds = candle_window(policy, utcnow())
            snapshot = read_snapshot(db, policy, symbol, bounds)
            if cached is not None and cached[0] == snapshot.policy_version:
                return policy, snapshot, bounds
            policy = self.container.policy_store.at_version(db, snapshot.policy_version)
            cached = self.cache.policy = (snapshot.policy_version, policy)
        raise RuntimeError("the policy changed three times while one request read it")

    def _live_ids(self, snapshot: Snapshot, policy: Policy) -> tuple[str, str, str | None]:
        types = [self.model_type] if self.model_type else list(policy.training.model_types)
        for model_type in types:
            active_id, shadow_id = snapshot.live.get(model_type, (None, None))
            if active_id is not None:
                return model_type, active_id, shadow_id
        raise NoActiveModelError(f"no ACTIVE model of type {' or '.join(types)} to predict with")

    def _shadow_prediction(self, window: Window, pair: ModelPair) -> dict[str, Any] | None:
        if pair.shadow is None:
            return None
        try:
            return window.prediction(pair.shadow)
        except Exception:  # a failing shadow must never fail the live answer
            log.exception("shadow model %s failed to predict", pair.shadow.record.model_id)
            return None

    def _window(
        self,
        db: Db,
        symbol: str,
        candles: pd.DataFrame | Sequence[Mapping[str, Any]] | None,
        policy: Policy,
        snapshot: Snapshot,
        bounds: tuple[int, int],
    ) -> Window:
        """The symbol's window: from the cache when its key is unchanged, otherwise computed now."""
        frame = None
        if candles is None:
            key: tuple[Any, ...] = ("store", symbol, snapshot.policy_version, snapshot.last_open, snapshot.candles)
        else:
            frame = _candle_frame(symbol, candles)
            key = ("request", symbol, snapshot.policy_version, _content_hash(frame))
        found = self.cache.window(key)
        if found is not None:
            return found
        if frame is None:
            frame = _candle_frame(symbol, read_candles(db, policy, symbol, bounds))
        features = engineer_features(frame, policy.features)
        if features.empty:
            need = warmup_rows(policy.features) + 1
            raise InsufficientHistoryError(
                f"{symbol}: {len(frame)} candles are too few for the features; at least {need} are needed"
            )
        if "symbol" not in features.columns:
            features.insert(0, "symbol", symbol)
        step = timedelta(milliseconds=timeframe_ms(policy.data.timeframe))
        at = _EPOCH + timedelta(milliseconds=int(features["timestamp"].iloc[-1])) + step
        return self.cache.keep_window(key, Window(features.iloc[[-1]], features.iloc[:-1], at))


def _candle_frame(symbol: str, candles: pd.DataFrame | Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    frame = candles if isinstance(candles, pd.DataFrame) else pd.DataFrame(list(candles))
    missing = [c for c in CANDLE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"candles for {symbol}: missing columns {missing}")
    return frame.reset_index(drop=True)


def _content_hash(frame: pd.DataFrame) -> str:
    """A digest of the candle values (request candles are keyed by what they contain)."""
    values = np.ascontiguousarray(frame[list(CANDLE_COLUMNS)].to_numpy(dtype=np.float64))
    return hashlib.blake2b(values.tobytes(), digest_size=16).hexdigest()


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


def on_model_promoted(container: Container, event: dict[str, Any]) -> None:
    """Handler of `model.promoted`: load the new pair before the next request needs it."""
    promoted = ModelPromoted.from_event(event)
    if _CACHE_KEY in container.extras and promoted.model_type:
        model_cache(container).refresh(promoted.model_type)
