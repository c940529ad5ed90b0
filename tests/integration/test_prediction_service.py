"""The prediction service on PostgreSQL with real (small) XGBoost models."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.core.clock import Clock, SimulatedClock, use_clock
from app.core.db.models import Event, PredictionLog, ShadowTestResult
from app.core.topics import TradeClosed
from app.model_registry import ModelRegistry
from app.model_training.storage import load_forecaster
from app.prediction import (
    InsufficientHistoryError,
    NoActiveModelError,
    PredictionService,
    model_cache,
)
from tests.live_models import recent_candles, register_model

pytestmark = pytest.mark.integration


def count(container, table) -> int:
    with container.session() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def test_active_answers_and_shadow_is_recorded_beside_it(pg_container) -> None:
    active_id = register_model(pg_container, "xgboost", n_estimators=10)
    shadow_id = register_model(pg_container, "xgboost", n_estimators=20)
    service = PredictionService(pg_container)
    candles = recent_candles()
    result = service.predict("BTCUSDT", candles)
    assert result.model_id == active_id and result.model_type == "xgboost"
    assert result.direction in (-1, 0, 1) and 0.0 <= result.confidence <= 1.0
    assert result.shadow is not None and result.shadow["model_id"] == shadow_id
    # The answer is the ACTIVE model's own prediction of the last candle's features.
    from app.data_pipeline import engineer_features

    features = engineer_features(candles, pg_container.policy_store.get().features).assign(symbol="BTCUSDT")
    expected = load_forecaster(pg_container, ModelRegistry(pg_container).get_model(active_id)).predict(features)
    assert result.predicted_return == pytest.approx(float(expected["predicted_return"].iloc[-1]), rel=1e-6)
    assert result.timestamp == datetime(1970, 1, 1) + timedelta(milliseconds=int(candles["timestamp"].iloc[-1])) + (
        timedelta(minutes=5)
    )
    with pg_container.session() as session:
        pair = session.get(ShadowTestResult, result.shadow_test_id)
        assert (pair.active_model_id, pair.shadow_model_id) == (active_id, shadow_id)
        assert pair.active_direction == result.direction
        logs = session.scalars(select(PredictionLog)).all()
        assert {log.model_id for log in logs} == {active_id, shadow_id}
        assert all(log.latency_ms > 0 for log in logs)
        signal = session.scalars(select(Event).where(Event.topic == "ai.signal.generated")).one()
        assert signal.payload["prediction_id"] == result.prediction_id
    # The trade that followed the prediction (as the API's outcome carries it) closes the pair and the log.
    with pg_container.session() as session:
        trade = {"trade_id": "t-1", "prediction_id": result.prediction_id, "pnl_pct": 1.2, "side": "LONG"}
        pg_container.bus.publish(session, TradeClosed(**trade, duration_hours=2.0))
    pg_container.bus.deliver_pending()
    with pg_container.session() as session:
        assert session.get(ShadowTestResult, result.shadow_test_id).realized_return == pytest.approx(0.012)
        assert session.get(PredictionLog, result.prediction_id).realized_return == pytest.approx(0.012)


def test_clear_errors_for_missing_history_and_missing_models(pg_container) -> None:
    service = PredictionService(pg_container)
    with pytest.raises(NoActiveModelError, match="no ACTIVE model"):
        service.predict("BTCUSDT", recent_candles())
    register_model(pg_container, "xgboost")
    with pytest.raises(InsufficientHistoryError, match=r"BTCUSDT: 50 candles are too few.*at least \d+"):
        service.predict("BTCUSDT", recent_candles(50))
    with pytest.raises(ValueError, match="missing columns"):
        service.predict("BTCUSDT", recent_candles().drop(columns=["volume"]))
    assert count(pg_container, PredictionLog) == 0


def test_reads_closed_candles_from_the_store_when_none_are_given(pg_container) -> None:
    from app.data_pipeline.candle_store import CandleStore

    pg_container.policy_store.update({"data": {"timeframe": "1h"}})
    policy = pg_container.policy_store.get()
    register_model(pg_container, "xgboost")
    candles = recent_candles()
    CandleStore(pg_container).write(policy.data.exchange, "BTCUSDT", "1h", candles)
    last_open = datetime(1970, 1, 1) + timedelta(milliseconds=int(candles["timestamp"].iloc[-1]))
    use_clock(SimulatedClock(last_open + timedelta(minutes=30)))  # the last candle is still forming
    try:
        result = PredictionService(pg_container).predict("BTCUSDT")
    finally:
        use_clock(Clock())
    assert result.timestamp == last_open  # based on the previous, closed candle


def test_promotion_while_serving_fails_no_request(pg_container) -> None:
    old_active = register_model(pg_container, "xgboost", n_estimators=10)
    new_active = register_model(pg_container, "xgboost", n_estimators=20)
    service = PredictionService(pg_container)
    candles = recent_candles()
    service.predict("BTCUSDT", candles)  # load both models
    results: list[tuple[float, str]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                results.append((started, service.predict("BTCUSDT", candles).model_id))
            except BaseException as exc:  # every failure is a test failure
                errors.append(exc)

    threads = [threading.Thread(target=serve) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    ModelRegistry(pg_container).promote_shadow_to_active("xgboost")
    promoted_at = time.perf_counter()
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    before = [m for t, m in results if t < promoted_at]
    after = [m for t, m in results if t > promoted_at]
    assert before and after, (len(before), len(after))
    assert set(before) <= {old_active, new_active}
    assert set(after) == {new_active}
    # The promoted shadow's loaded model was reused, not loaded again.
    assert model_cache(pg_container).pair("xgboost", new_active, None).active.record.model_id == new_active


def test_model_promoted_event_swaps_the_cache_ahead_of_requests(sqlite_container) -> None:
    register_model(sqlite_container, "lightgbm", n_estimators=5)
    shadow_id = register_model(sqlite_container, "lightgbm", n_estimators=8)
    service = PredictionService(sqlite_container, model_type="lightgbm")
    service.predict("BTCUSDT", recent_candles())
    ModelRegistry(sqlite_container).promote_shadow_to_active("lightgbm")  # embedded: delivered at once
    pair = model_cache(sqlite_container)._pairs["lightgbm"]
    assert pair.ids == (shadow_id, None)


def test_cached_window_follows_new_candles_and_policy_versions(pg_container) -> None:
    """Features and model outputs are cached per candle; a new candle or a new policy is a new answer."""
    from app.data_pipeline.candle_store import CandleStore

    pg_container.policy_store.update({"data": {"timeframe": "1h"}})
    policy = pg_container.policy_store.get()
    active_id = register_model(pg_container, "xgboost")
    candles = recent_candles(301)
    store = CandleStore(pg_container)
    store.write(policy.data.exchange, "BTCUSDT", "1h", candles.iloc[:-1])
    last_open = datetime(1970, 1, 1) + timedelta(milliseconds=int(candles["timestamp"].iloc[-1]))
    service = PredictionService(pg_container)
    model = load_forecaster(pg_container, ModelRegistry(pg_container).get_model(active_id))

    def expected(frame) -> float:  # computed from scratch, no cache
        from app.data_pipeline import engineer_features

        features = engineer_features(frame, pg_container.policy_store.get().features).assign(symbol="BTCUSDT")
        return float(model.predict(features)["predicted_return"].iloc[-1])

    use_clock(SimulatedClock(last_open + timedelta(minutes=30)))  # the last stored candle closed 30 min ago
    try:
        first = service.predict("BTCUSDT")
        again = service.predict("BTCUSDT")
        assert first.timestamp == again.timestamp == last_open
        assert first.predicted_return == again.predicted_return
        assert first.prediction_id != again.prediction_id  # every request is logged
        assert first.predicted_return == pytest.approx(expected(candles.iloc[:-1].tail(first_window_rows(service))))
        # The next candle arrives and closes: the next request is based on it.
        store.write(policy.data.exchange, "BTCUSDT", "1h", candles.iloc[[-1]])
        use_clock(SimulatedClock(last_open + timedelta(minutes=90)))
        newer = service.predict("BTCUSDT")
        assert newer.timestamp == last_open + timedelta(hours=1)
        assert newer.predicted_return == pytest.approx(expected(candles.tail(first_window_rows(service))))
        # A new policy (another feature configuration) is a new window, not the cached one.
        pg_container.policy_store.update({"features": {"rsi_periods": [7, 14]}})
        with pytest.raises(Exception, match=r"lacks columns \[.rsi_21.\]"):  # trained on other features
            service.predict("BTCUSDT")
    finally:
        use_clock(Clock())
    with pg_container.session() as session:
        signals = session.scalars(select(Event).where(Event.topic == "ai.signal.generated")).all()
        # No handler listens to the signal: stored for the record, as delivered, nothing scheduled.
        assert len(signals) == 3 and {s.status for s in signals} == {"delivered"}


def first_window_rows(service: PredictionService) -> int:
    from app.prediction import candle_window

    policy = service.container.policy_store.get()
    first, last = candle_window(policy, datetime(2030, 1, 1))
    return (last - first) // (3600 * 1000) + 1


def test_a_dropped_connection_is_retried_once(pg_container, caplog) -> None:
    """The live path's pool has no pre-ping: a connection killed under it (database restart,
    idle timeout) fails its first statement, and the request is answered on a fresh one."""
    from sqlalchemy import text

    register_model(pg_container, "xgboost", n_estimators=10)
    service = PredictionService(pg_container)
    first = service.predict("BTCUSDT", recent_candles())
    with service.cache.engine.connect() as live:  # the live pool: telemetry, asynchronous commit
        assert live.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
    with pg_container.engine.connect() as admin:
        assert admin.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"  # everything else
        killed = admin.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar()
    assert killed >= 1  # the live pool's idle connection (at least)
    again = service.predict("BTCUSDT", recent_candles())
    assert "connection lost, retrying once" in caplog.text
    assert again.prediction_id > first.prediction_id
    assert count(pg_container, PredictionLog) == 2


@pytest.mark.parametrize("timeframe", ["5m", "1h", "1d", "1w"])
def test_the_candle_window_ends_at_the_newest_closed_candle_on_the_grid(timeframe) -> None:
    from app.core.policy import Policy
    from app.data_pipeline.timeframes import on_grid, timeframe_ms, to_ms
    from app.prediction import candle_window

    policy = Policy.model_validate({"data": {"timeframe": timeframe}})
    now = datetime(2026, 11, 26, 13, 37, 11)  # a Thursday
    first, last = candle_window(policy, now)
    step = timeframe_ms(timeframe)
    assert on_grid(first, timeframe) and on_grid(last, timeframe)  # weeks open on Mondays
    assert last + step <= to_ms(now) < last + 2 * step  # closed, and the newest that is
