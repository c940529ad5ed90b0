"""The CLM control loop: drift -> exactly one retraining; event flow; storm guard on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from app.api.schemas import Job
from app.clm import ContinuousLearningManager
from app.clm.drift_check import run_drift_check
from app.clm.guard import request_retraining
from app.core.clock import Clock, SimulatedClock, use_clock
from app.core.db.models import DriftEvent, RetrainingJob
from app.core.system import trading_halt
from app.core.topics import DriftDetected, PerformanceDegraded
from app.model_registry import ModelRegistry
from app.retraining import RetrainingOrchestrator
from app.retraining.jobs import JobRecord
from app.simulation.counterfactual import live_against_frozen

pytestmark = pytest.mark.integration

START = datetime(2024, 1, 1)


@pytest.fixture
def simulated_clock():
    clock = SimulatedClock(START)
    use_clock(clock)
    yield clock
    use_clock(Clock())


def _eager(container) -> None:
    """Run canvases in-process (embedded mode: Celery's eager execution)."""
    from workers.celery_app import celery_app, configure
    from workers.celery_dispatcher import CeleryDispatcher

    configure(container.settings)  # eager: the settings are embedded
    container.dispatcher = CeleryDispatcher(celery_app)
    container.bus.scheduler = container.dispatcher


def _small_policy(container, model_types: list[str]) -> None:
    container.policy_store.update(
        {
            "data": {
                "exchange": "synthetic",
                "symbols": ["SYN/USDT", "ALT/USDT"],
                "timeframe": "5m",
                "lookback_days": 20,
            },
            "training": {"model_types": model_types, "cv_folds": 2, "xgboost": {"n_estimators": 20}},
            "clm_config": {
                "drift_detection": {"lookback_days": 7},
                "retraining_cooldown_hours": 6,
                # the CLM's reactions are under test, not the models' skill: the baseline gate is off
                "baseline_gate": {"enabled": False},
            },
        }
    )


def _store_candles(container, candles: dict[str, Any], until_ms: int, from_ms: int = 0) -> None:
    from app.data_pipeline import CandleStore

    store = CandleStore(container)
    for symbol, frame in candles.items():
        part = frame.loc[(frame["timestamp"] >= from_ms) & (frame["timestamp"] < until_ms)]
        store.write("synthetic", symbol, "5m", part.reset_index(drop=True))


def _ms(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1)).total_seconds() * 1000)


def test_injected_shift_is_found_and_starts_exactly_one_retraining(sqlite_container, simulated_clock) -> None:
    from app.data_pipeline import synthetic_market

    container = sqlite_container
    _eager(container)
    _small_policy(container, ["naive", "xgboost"])
    shift_at = START + timedelta(days=21)
    candles, info = synthetic_market(["SYN/USDT", "ALT/USDT"], START, 288 * 29, "5m", seed=7, shift_at=shift_at)
    assert info["shift_at_ms"] == _ms(shift_at)

    # Before the shift: history, a first retraining, models ACTIVE.
    _store_candles(container, candles, _ms(shift_at))
    simulated_clock.set(shift_at)
    clm = ContinuousLearningManager(container)
    first_job = clm.trigger_full_retraining(reason="initial")
    assert first_job is not None
    assert RetrainingOrchestrator(container).get_job(first_job).status == "completed"
    assert set(clm.get_status()["active_models"]) == {"naive", "xgboost"}

    # A check on pre-shift data finds nothing that would retrain.
    calm = run_drift_check(container)
    assert calm["xgboost"]["feature"]["severity"] in ("none", "low"), calm

    # A week after the shift (past the cooldown): drift, and one job for many events.
    _store_candles(container, candles, _ms(shift_at + timedelta(days=7)), from_ms=_ms(shift_at))
    simulated_clock.set(shift_at + timedelta(days=7))
    summary = run_drift_check(container)
    severities = {summary[m]["feature"]["severity"] for m in ("naive", "xgboost")}
    assert severities <= {"high", "critical"}, summary
    with container.session_factory() as session:
        drift_rows = session.scalar(
            select(func.count()).select_from(DriftEvent).where(DriftEvent.drift_type == "feature")
        )
        jobs = session.scalars(select(RetrainingJob).order_by(RetrainingJob.started_at)).all()
        actions = dict(
            session.execute(select(DriftEvent.action_taken, func.count()).group_by(DriftEvent.action_taken)).all()
        )
    assert drift_rows >= 5  # many drifted features, each an event
    assert len(jobs) == 2, [(j.job_id, j.trigger_reason) for j in jobs]
    assert jobs[1].trigger_reason.startswith("drift_") and jobs[1].status == "completed"
    # The drift chose the training window: it starts at the change point found in the drifted
    # features (within a day of the injected shift), recorded on the job and shown by the API.
    window = jobs[1].metadata_["training_window"]
    assert window["method"] == "change_point" and window["features"], window
    found = datetime.fromisoformat(window["change_point"])
    assert abs(found - shift_at) <= timedelta(days=1), (found, shift_at, window["reason"])
    assert window["start"] == window["change_point"]
    # The candles read begin a warm-up before it, so that the dataset's rows begin at the change point.
    assert jobs[1].metadata_["spec"]["start"] == window["read_from"] < window["start"]
    trained = [m for m in ModelRegistry(container).list_models(limit=20) if m.job_id == jobs[1].job_id]
    assert trained and all(
        m.training_data_range["train"]["start_ms"] == _ms(datetime.fromisoformat(window["start"])) for m in trained
    ), [(m.model_id, m.training_data_range) for m in trained]
    shown = Job.of(JobRecord.from_row(jobs[1])).model_dump(mode="json")
    assert shown["training_window"]["change_point"] == window["change_point"]
    # The main run's counterfactual on the same post-shift candles: the frozen book is the first
    # ACTIVE models', the live book the models ACTIVE at each candle (here the same: no promotion yet).
    books = live_against_frozen(container, shift_at)
    first = {m.model_type: m.model_id for m in ModelRegistry(container).list_models(limit=20) if m.version == "1"}
    assert {t: ids[0] for t, ids in books["frozen"]["models"].items()} == first
    assert books["live"]["rows"] == books["frozen"]["rows"] > 2 * 7 * 288 * 0.9  # two symbols, a week of 5m rows
    assert books["frozen"]["net_pnl"] >= -1.0 and 0.0 <= books["frozen"]["max_drawdown"] <= 1.0
    # Two checks (one per model type), one reaction each: the first starts the job, the storm
    # guard suppresses the second; the checks' other features are marked, not re-triggered.
    assert actions.get("retraining_triggered") == 1
    assert actions.get("suppressed", 0) == 1
    assert actions.get("same_check", 0) == drift_rows - 2
    suppressed = container.bus.recent("clm.retraining.suppressed", limit=500)
    assert len(suppressed) == 1
    # New versions were registered (SHADOW beside the ACTIVE ones).
    assert set(clm.get_status()["shadow_models"]) == {"naive", "xgboost"}


def test_a_drift_retraining_waits_for_the_new_market_when_the_policy_says_so(sqlite_container, simulated_clock) -> None:
    """drift_window.short_window "wait": a change point that leaves fewer days than the minimum starts
    no job (a suppressed event says until when, the drift events say "waiting"); once the minimum is
    there, the job trains on the new market alone."""
    from app.data_pipeline import synthetic_market

    container = sqlite_container
    _eager(container)
    _small_policy(container, ["naive"])
    container.policy_store.update({"clm_config": {"drift_window": {"short_window": "wait", "min_window_days": 10}}})
    shift_at = START + timedelta(days=21)
    candles, _ = synthetic_market(["SYN/USDT", "ALT/USDT"], START, 288 * 29, "5m", seed=7, shift_at=shift_at)
    _store_candles(container, candles, _ms(shift_at))
    simulated_clock.set(shift_at)
    assert ContinuousLearningManager(container).trigger_full_retraining(reason="initial") is not None
    _store_candles(container, candles, _ms(shift_at + timedelta(days=7)), from_ms=_ms(shift_at))
    simulated_clock.set(shift_at + timedelta(days=7))

    run_drift_check(container)
    with container.session_factory() as session:
        jobs = session.scalars(select(RetrainingJob)).all()
        actions = dict(
            session.execute(select(DriftEvent.action_taken, func.count()).group_by(DriftEvent.action_taken)).all()
        )
    assert len(jobs) == 1, [(j.job_id, j.trigger_reason) for j in jobs]  # the initial one only
    assert actions.get("waiting", 0) >= 1, actions
    waiting = [e for e in container.bus.recent("clm.retraining.suppressed", limit=50) if not e["payload"]["blocked_by"]]
    assert waiting, container.bus.recent("clm.retraining.suppressed", limit=50)
    reason = waiting[0]["payload"]["reason"]
    assert reason.startswith("waiting for the new market") and "waits until" in reason, reason

    container.policy_store.update({"clm_config": {"drift_window": {"min_window_days": 5}}})
    run_drift_check(container)
    with container.session_factory() as session:
        jobs = session.scalars(select(RetrainingJob).order_by(RetrainingJob.started_at)).all()
    assert len(jobs) == 2 and jobs[1].trigger_reason.startswith("drift_"), [j.trigger_reason for j in jobs]
    window = jobs[1].metadata_["training_window"]
    assert not window["deferred"] and not window["clipped"] and window["start"] == window["change_point"], window
    assert abs(datetime.fromisoformat(window["start"]) - shift_at) <= timedelta(days=1), window["reason"]

    # Its model is SHADOW now. After the cooldown the market still drifts from the ACTIVE model's,
    # but a drift retraining leaves the type alone while that young shadow's test runs
    # (clm_config.shadow_patience_days, 7 by default): the suppressed event names the shadow's job.
    shadow = [m for m in ModelRegistry(container).list_models(status="SHADOW") if m.job_id == jobs[1].job_id]
    assert [m.model_type for m in shadow] == ["naive"]
    simulated_clock.set(shift_at + timedelta(days=7, hours=7))
    run_drift_check(container)
    with container.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(RetrainingJob)) == 2
    held = [e["payload"] for e in container.bus.recent("clm.retraining.suppressed", limit=50)]
    assert {"naive": jobs[1].job_id} in [p["blocked_by"] for p in held], held
    # The weekly schedule waits for it too (an operator's request does not: request_manual_retraining).
    scheduled = request_retraining(container, None, "scheduled", automatic=True)
    assert not scheduled.started and scheduled.blocked_by == {"naive": jobs[1].job_id}, scheduled
    container.policy_store.update({"clm_config": {"shadow_patience_days": 0}})
    run_drift_check(container)
    with container.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(RetrainingJob)) == 3


def test_clm_event_flow(sqlite_container) -> None:
    """The specification's observability test: clm.* events around a full retraining."""
    from app.data_pipeline import synthetic_market

    container = sqlite_container
    _eager(container)
    _small_policy(container, ["naive"])
    candles, _ = synthetic_market(["SYN/USDT", "ALT/USDT"], START, 288 * 21, "5m", seed=3)
    _store_candles(container, candles, _ms(START + timedelta(days=21)))
    use_clock(SimulatedClock(START + timedelta(days=21)))
    try:
        event_log: list[dict[str, Any]] = []
        container.bus.subscribe("clm.*", event_log.append, name="test-clm-log")
        job_id = ContinuousLearningManager(container).trigger_full_retraining(reason="test")
    finally:
        use_clock(Clock())
    types = [e["type"] for e in event_log]
    assert "clm.retraining.started" in types and "clm.retraining.completed" in types
    assert types.index("clm.retraining.started") < types.index("clm.retraining.completed")
    completed = next(e for e in event_log if e["type"] == "clm.retraining.completed")
    assert completed["payload"]["job_id"] == job_id


def _drift(**fields: Any) -> dict[str, Any]:
    """A delivered `drift.detected` event's dict (the handler's argument) with these fields."""
    defaults = {"drift_type": "feature", "feature": "close_return", "p_value": 1e-4}
    return {"payload": DriftDetected(**(defaults | fields)).payload()}


def test_storm_of_concurrent_drift_events_starts_one_job_on_postgresql(pg_container) -> None:
    """Twenty HIGH drift events handled at once by twenty threads: one job, nineteen suppressed."""
    clm = ContinuousLearningManager(pg_container)
    barrier = threading.Barrier(20)
    errors: list[BaseException] = []

    def handle(i: int) -> None:
        try:
            barrier.wait()
            clm.handle_drift_event({"id": i, "topic": "drift.detected", **_drift(severity="HIGH")})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=handle, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with pg_container.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(RetrainingJob)) == 1
    assert len(pg_container.dispatcher.started) == 1  # the canvas was asked for once
    assert len(pg_container.bus.recent("clm.retraining.suppressed", limit=100)) == 19


def test_medium_drift_retrains_the_affected_model_and_critical_halts_trading(pg_container) -> None:
    clm = ContinuousLearningManager(pg_container)
    decision = clm.handle_drift_event(_drift(severity="MEDIUM", model_type="lightgbm"))
    assert decision is not None and decision.started and decision.model_types == ["lightgbm"]
    assert clm.handle_drift_event(_drift(severity="LOW")) is None
    assert not clm.trading_halted()
    critical = clm.handle_drift_event(_drift(severity="CRITICAL"))
    # lightgbm is running: the full retraining starts for the other types only.
    assert critical is not None and critical.started and "lightgbm" not in critical.model_types
    assert critical.blocked_by == {"lightgbm": decision.job_id}
    assert clm.trading_halted() and clm.get_status()["trading_halted"] is True
    assert [e["type"] for e in pg_container.bus.recent("clm.trading.*")] == ["clm.trading.halted"]
    with pg_container.session_factory() as session:  # the halt begins before the job the drift started:
        halt = trading_halt(session)  # its models count as retrained after it (app/clm/halt.py)
        assert halt is not None and halt.since is not None
        assert session.get(RetrainingJob, critical.job_id).started_at >= halt.since
        assert session.get(RetrainingJob, decision.job_id).started_at < halt.since
    alert = PerformanceDegraded(model_type="xgboost", model_id="x", metrics={}, recommendation="DEGRADED", reasons=[])
    degraded = clm.handle_performance_alert({"payload": alert.payload()})
    assert degraded is not None and not degraded.started  # xgboost is in the running full job


def test_stop_scheduler_really_stops_the_periodic_work(sqlite_container) -> None:
    from app.operations.schedule import periodic_jobs

    clm = ContinuousLearningManager(sqlite_container)
    assert periodic_jobs(sqlite_container.policy_store.get())
    clm.stop_scheduler()
    assert periodic_jobs(sqlite_container.policy_store.get()) == []
    clm.start_scheduler()
    assert {j.name for j in periodic_jobs(sqlite_container.policy_store.get())} >= {"drift-check", "full-retraining"}
