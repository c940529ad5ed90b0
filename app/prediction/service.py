"""Predictions for the AI Trading Engine: the ACTIVE model answers, the SHADOW model is recorded beside it.

`PredictionService(container).predict(symbol, candles=None)` engineers the features of the
recent closed candles (given, or read from the candle store), asks the ACTIVE model of the
type (default: the first of the policy's `training.model_types` that has an ACTIVE model),
and in one transaction logs the prediction with its latency (`prediction_logs`, both
models), records the SHADOW model's prediction beside it (`shadow_test_results`) and
publishes `ai.signal.generated`. Time spent loading a model (a cold start) is not latency:
it is reported apart as `model_load_ms`, and `app.prediction.preload` loads them beforehand.

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

import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy.exc import DBAPIError

from app.core.clock import utcnow
from app.core.policy import Policy
from app.core.topics import ModelPromoted, SignalGenerated
from app.data_pipeline import engineer_features, timeframe_ms, warmup_rows
from app.model_supervisor.sql import prediction_log_values
from app.prediction.cache import _CACHE_KEY, ModelPair, Window, model_cache
from app.prediction.sql import (
    _EPOCH,
    CANDLE_COLUMNS,
    Db,
    Snapshot,
    candle_window,
    gate_rejection,
    read_candles,
    read_snapshot,
    write_prediction,
)
from app.prediction.types import InsufficientHistoryError, ModelIntegrityError, NoActiveModelError, Prediction
from app.shadow_tester.rows import ShadowPrediction, shadow_row

if TYPE_CHECKING:
    from app.core.container import Container

log = logging.getLogger(__name__)


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
            try:
                model_type, active_id, shadow_id = self._live_ids(snapshot, policy)
            except NoActiveModelError:
                abstention = self._abstention(db, symbol, policy, started)
                if abstention is None:
                    raise
                return replace(abstention, halt=snapshot.halt)
            loading = time.perf_counter()
            try:
                pair = self.cache.pair(model_type, active_id, shadow_id)
            except ModelIntegrityError:
                if not policy.clm_config.integrity_fallback:
                    raise
                # Served by an earlier intact version; no shadow pair (it compares with the ACTIVE model).
                pair = self.cache.fallback_pair(model_type, active_id)
                active_id, shadow_id = pair.active.record.model_id, None
            # Loading a model (or waiting for another thread's load) is a cold start, not the
            # model's latency: kept out of latency_ms, which the logs and the health figures use.
            load_seconds = time.perf_counter() - loading
            window = self._window(db, symbol, candles, policy, snapshot, bounds)
            active = window.prediction(pair.active)
            shadow = self._shadow_prediction(window, pair)
            latency_ms = (time.perf_counter() - started - load_seconds) * 1000.0
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
                halt=snapshot.halt,
                model_load_ms=load_seconds * 1000.0,
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

    def _abstention(self, db: Db, symbol: str, policy: Policy, started: float) -> Prediction | None:
        """No ACTIVE model because none passed the baseline gate: an explicit abstention, never a guess."""
        types = [self.model_type] if self.model_type else list(policy.training.model_types)
        rejected = gate_rejection(db, types)
        if rejected is None:
            return None
        model_type, reason = rejected
        now = utcnow()
        horizon = timedelta(milliseconds=timeframe_ms(policy.data.timeframe)) * policy.labels.horizon
        return Prediction(
            symbol=symbol,
            model_id="",
            model_type=model_type,
            predicted_return=0.0,
            direction=0,
            confidence=0.0,
            timestamp=now,
            horizon_end=now + horizon,
            latency_ms=(time.perf_counter() - started) * 1000.0,
            prediction_id=0,
            abstained=True,
            abstain_reason=f"no {model_type} model passed the baseline gate; the last: {reason}",
        )

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


def on_model_promoted(container: Container, event: dict[str, Any]) -> None:
    """Handler of `model.promoted`: load the new pair before the next request needs it."""
    promoted = ModelPromoted.from_event(event)
    if _CACHE_KEY in container.extras and promoted.model_type:
        model_cache(container).refresh(promoted.model_type)
