"""Predictions for the AI Trading Engine: the ACTIVE model answers, the SHADOW model is recorded beside it.

`PredictionService(container).predict(symbol, candles=None)` engineers the features of the
recent candles (given, or read from the candle store), asks the ACTIVE model of the type
(default: the first of the policy's `training.model_types` that has an ACTIVE model), and
in one transaction logs the prediction with its latency (`prediction_logs`, both models),
records the SHADOW model's prediction beside it (`shadow_test_results`) and publishes
`ai.signal.generated`.

Models are loaded once per process (`ModelCache` in `container.extras`) and swapped without
a restart: each request reads which models are ACTIVE and SHADOW (one indexed query in the
request's transaction) and the cache loads what changed, reusing a promoted shadow's loaded
model; `model.promoted` also refreshes the cache ahead of the next request where the event
is delivered in this process. A swap replaces one immutable pair under a lock, so requests
in flight finish on the pair they started with and none fails.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.data_pipeline import engineer_features, timeframe_ms, warmup_rows
from app.db.models import Candle, ShadowTestResult
from app.db.models import ModelRegistry as ModelRow
from app.model_registry import ModelRecord
from app.model_supervisor import prediction_log_row
from app.policy import Policy
from app.shadow_tester.records import ShadowPrediction, shadow_row, telemetry_commit

if TYPE_CHECKING:
    from app.bootstrap import Container
    from app.model_training import Forecaster

log = logging.getLogger(__name__)

CANDLE_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
_CACHE_KEY = "prediction_models"


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
            row = self.forecaster.predict(frame, history).iloc[-1]
        return {
            "predicted_return": float(row["predicted_return"]),
            "direction": int(row["direction"]),
            "confidence": float(row["confidence"]),
        }


@dataclass(frozen=True)
class ModelPair:
    active: LoadedModel
    shadow: LoadedModel | None

    @property
    def ids(self) -> tuple[str, str | None]:
        return self.active.record.model_id, self.shadow.record.model_id if self.shadow else None


class ModelCache:
    """The process's loaded models per type; thread-safe, swapped whole."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self._pairs: dict[str, ModelPair] = {}
        self._lock = threading.Lock()

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


class PredictionService:
    def __init__(self, container: Container, model_type: str | None = None) -> None:
        self.container = container
        self.model_type = model_type
        self.cache = model_cache(container)

    def predict(self, symbol: str, candles: pd.DataFrame | Sequence[Mapping[str, Any]] | None = None) -> Prediction:
        started = time.perf_counter()
        if not isinstance(symbol, str) or not symbol or len(symbol) > 20:
            raise ValueError(f"symbol: {symbol!r} must be a non-empty string of at most 20 characters")
        with self.container.session() as session:
            telemetry_commit(session)
            policy = self.container.policy_store.get(session)
            frame = self._candles(session, symbol, candles, policy)
            model_type, active_id, shadow_id = self._live_ids(session, policy)
            pair = self.cache.pair(model_type, active_id, shadow_id)
            features = engineer_features(frame, policy.features)
            if features.empty:
                need = warmup_rows(policy.features) + 1
                raise InsufficientHistoryError(
                    f"{symbol}: {len(frame)} candles are too few for the features; at least {need} are needed"
                )
            if "symbol" not in features.columns:
                features.insert(0, "symbol", symbol)
            last, history = features.iloc[[-1]], features.iloc[:-1]
            active = pair.active.predict(last, history)
            shadow = self._shadow_prediction(pair, last, history)
            latency_ms = (time.perf_counter() - started) * 1000.0
            step = timedelta(milliseconds=timeframe_ms(policy.data.timeframe))
            at = datetime(1970, 1, 1) + timedelta(milliseconds=int(last["timestamp"].iloc[0])) + step
            # All rows in one flush: one INSERT per table, not one round trip per row.
            logs = [prediction_log_row(active_id, active, latency_ms, symbol=symbol, timestamp=at)]
            pair_row = None
            if shadow is not None and shadow_id is not None:
                logs.append(prediction_log_row(shadow_id, shadow, latency_ms, symbol=symbol, timestamp=at))
                item = ShadowPrediction(shadow_id, active_id, symbol, active, shadow, at)
                pair_row = ShadowTestResult(**shadow_row(item, step * policy.labels.horizon, utcnow()))
                shadow = {"model_id": shadow_id} | shadow
            session.add_all([*logs, *([pair_row] if pair_row is not None else [])])
            session.flush()
            prediction_id, shadow_test_id = int(logs[0].id), (int(pair_row.id) if pair_row is not None else None)
            result = Prediction(
                symbol=symbol,
                model_id=active_id,
                model_type=model_type,
                timestamp=at,
                horizon_end=at + step * policy.labels.horizon,
                latency_ms=latency_ms,
                prediction_id=prediction_id,
                shadow=shadow,
                shadow_test_id=shadow_test_id,
                **active,
            )
            self.container.bus.publish(session, "ai.signal.generated", result.to_dict())
        return result

    def _live_ids(self, session: Session, policy: Policy) -> tuple[str, str, str | None]:
        types = [self.model_type] if self.model_type else list(policy.training.model_types)
        for model_type in types:
            active_id, shadow_id = live_model_ids(session, model_type)
            if active_id is not None:
                return model_type, active_id, shadow_id
        raise NoActiveModelError(f"no ACTIVE model of type {' or '.join(types)} to predict with")

    def _shadow_prediction(self, pair: ModelPair, last: pd.DataFrame, history: pd.DataFrame) -> dict[str, Any] | None:
        if pair.shadow is None:
            return None
        try:
            return pair.shadow.predict(last, history)
        except Exception:  # a failing shadow must never fail the live answer
            log.exception("shadow model %s failed to predict", pair.shadow.record.model_id)
            return None

    def _candles(
        self,
        session: Session,
        symbol: str,
        candles: pd.DataFrame | Sequence[Mapping[str, Any]] | None,
        policy: Policy,
    ) -> pd.DataFrame:
        if candles is None:
            frame = recent_candles(session, policy, symbol)
        else:
            frame = candles if isinstance(candles, pd.DataFrame) else pd.DataFrame(list(candles))
        missing = [c for c in CANDLE_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"candles for {symbol}: missing columns {missing}")
        return frame.reset_index(drop=True)


def recent_candles(session: Session, policy: Policy, symbol: str) -> pd.DataFrame:
    """The closed candles the features need, from the candle store's table, read in `session`
    (the request's transaction: no second connection). The candle still forming is not used."""
    step = timeframe_ms(policy.data.timeframe)
    wanted = warmup_rows(policy.features) + history_rows(policy) + 2
    now_ms = int((utcnow() - datetime(1970, 1, 1)) / timedelta(milliseconds=1))
    rows = session.execute(
        select(Candle.open_time, Candle.open, Candle.high, Candle.low, Candle.close, Candle.volume)
        .where(
            Candle.exchange == policy.data.exchange,
            Candle.symbol == symbol,
            Candle.timeframe == policy.data.timeframe,
            Candle.open_time >= now_ms - wanted * step,
            Candle.open_time <= now_ms - step,
        )
        .order_by(Candle.open_time)
    ).all()
    frame = pd.DataFrame(
        np.array([tuple(r) for r in rows], dtype=np.float64).reshape(-1, 6), columns=list(CANDLE_COLUMNS)
    )
    frame["timestamp"] = frame["timestamp"].astype(np.int64)
    return frame


def history_rows(policy: Policy) -> int:
    """Feature rows of context the sequence models read before the predicted row."""
    return max(policy.training.nhits.input_size, policy.training.patchtst.input_size)


def on_model_promoted(container: Container, event: dict[str, Any]) -> None:
    """Handler of `model.promoted`: load the new pair before the next request needs it."""
    if _CACHE_KEY in container.extras and event["payload"].get("model_type"):
        model_cache(container).refresh(event["payload"]["model_type"])
