"""Retention of the telemetry tables, on the real PostgreSQL and on the embedded SQLite."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select

from app.core.clock import utcnow
from app.core.db.models import Event, EventDelivery, PredictionLog, RLDecision, ShadowTestResult
from app.core.policy import PolicyValidationError
from app.operations.schedule import periodic_jobs
from app.operations.telemetry_retention import apply_retention
from tests.integration.test_shadow_tester import add_model

pytestmark = pytest.mark.integration

OLD, RECENT = timedelta(days=200), timedelta(days=1)
MIDDLE = timedelta(days=45)  # past the unapplied RL decisions' 30 days, inside the others' 90
# (age, applied by an outcome, allowed a trade) of the RL decisions written for each n
DECISIONS = (
    (OLD, True, True), (OLD, False, False), (OLD, False, True),  # all three past their age
    (MIDDLE, True, True), (MIDDLE, False, True),  # only the unapplied one is past its age
    (RECENT, False, True),
)  # fmt: skip


def _fill(container, now) -> None:
    add_model(container, "ret_active", "ACTIVE")
    add_model(container, "ret_running", "SHADOW")
    add_model(container, "ret_rejected", "REJECTED")
    events, deliveries, logs, pairs, decisions = [], [], [], [], []
    for n in range(25):
        for k, (age, applied, allowed) in enumerate(DECISIONS):
            decisions.append(
                dict(
                    decision_id=f"ret-{n}-{k}", rl_type=("meta_strategy", "position_sizing")[k % 2], version=1,
                    decided_at=now - age, state={}, state_key="s", action="a", halted=not allowed, allowed=allowed,
                    detail={}, trade_id=f"T-{n}-{k}" if applied else None, applied_at=now - age if applied else None,
                )
            )  # fmt: skip
        for age, status in ((OLD, "delivered"), (RECENT, "delivered"), (OLD, "pending"), (OLD, "dead")):
            events.append(
                dict(
                    topic=f"test.retention.{n % 3}", payload={"n": n}, created_at=now - age, status=status,
                    attempts=1, next_attempt_at=None,
                )
            )  # fmt: skip
        for age in (OLD, RECENT):
            logs.append(dict(model_id="ret_active", symbol="BTCUSDT", timestamp=now - age, created_at=now - age))
            for shadow in ("ret_running", "ret_rejected"):
                pairs.append(
                    dict(
                        shadow_model_id=shadow, active_model_id="ret_active", symbol="BTCUSDT",
                        timestamp=now - age, active_prediction={}, shadow_prediction={}, created_at=now - age,
                    )
                )  # fmt: skip
    with container.session() as session:
        session.execute(insert(Event), events)
        session.execute(insert(PredictionLog), logs)
        session.execute(insert(ShadowTestResult), pairs)
        session.execute(insert(RLDecision), decisions)
    with container.session() as session:
        for event_id in session.scalars(select(Event.id).where(Event.topic.like("test.retention.%"))):
            deliveries.append(dict(event_id=event_id, handler="test.handler", status="delivered", updated_at=now))
        session.execute(insert(EventDelivery), deliveries)


def _count(container, query) -> int:
    with container.session() as session:
        return int(session.scalar(query))


@pytest.mark.parametrize("backend", ["pg_container", "sqlite_container"])
def test_retention_deletes_only_what_the_policy_no_longer_keeps(backend, request) -> None:
    container = request.getfixturevalue(backend)
    container.policy_store.update({"clm_config": {"retention": {"batch_rows": 100}}})
    now = utcnow()
    _fill(container, now)
    # smaller batches than rows, so the loop runs several batches per key
    result = apply_retention(container, now=now)
    assert result.complete
    assert result.deleted == {
        "events": 25, "event_deliveries": 25, "prediction_logs": 25, "shadow_test_results": 25, "rl_decisions": 100,
    }  # fmt: skip
    assert set(result.cutoffs) == {
        "events", "prediction_logs", "shadow_test_results", "rl_decisions", "rl_decisions_unapplied",
    }  # fmt: skip
    ours = Event.topic.like("test.retention.%")
    kept = select(Event.status, func.count()).where(ours).group_by(Event.status)
    with container.session() as session:
        by_status = dict(session.execute(kept).all())
        oldest_delivered = session.scalar(select(func.min(Event.created_at)).where(ours, Event.status == "delivered"))
        pairs = dict(
            session.execute(
                select(ShadowTestResult.shadow_model_id, func.count()).group_by(ShadowTestResult.shadow_model_id)
            ).all()
        )
    assert by_status == {"delivered": 25, "pending": 25, "dead": 25}  # pending and dead kept, however old
    assert oldest_delivered == now - RECENT
    assert _count(container, select(func.count()).select_from(EventDelivery)) == 75
    assert _count(container, select(func.count()).select_from(PredictionLog)) == 25
    with container.session() as session:
        assert session.scalar(select(func.min(PredictionLog.timestamp))) == now - RECENT
    # the running test keeps every pair; the finished one only its recent ones
    assert pairs == {"ret_running": 50, "ret_rejected": 25}
    # RL decisions: an applied one is kept its 90 days, one an outcome may still name only 30
    with container.session() as session:
        left = session.execute(select(RLDecision.decided_at, RLDecision.trade_id.is_not(None), RLDecision.allowed))
        assert sorted(((now - at).days, bool(a), bool(ok)) for at, a, ok in left) == sorted(
            25 * [(45, True, True), (1, False, True)]
        )
    again = apply_retention(container, now=now)
    assert again.complete and sum(again.deleted.values()) == 0


def test_retention_stops_at_its_time_budget_and_goes_on_next_run(pg_container) -> None:
    now = utcnow()
    _fill(pg_container, now)
    pg_container.policy_store.update({"clm_config": {"retention": {"max_seconds": 1e-9, "batch_rows": 100}}})
    stopped = apply_retention(pg_container, now=now)
    assert not stopped.complete and sum(stopped.deleted.values()) == 0
    pg_container.policy_store.update({"clm_config": {"retention": {"max_seconds": 300}}})
    finished = apply_retention(pg_container, now=now)
    assert finished.complete and finished.deleted["prediction_logs"] == 25


def test_retention_disabled_deletes_nothing(sqlite_container) -> None:
    now = utcnow()
    _fill(sqlite_container, now)
    sqlite_container.policy_store.update({"clm_config": {"retention": {"enabled": False}}})
    assert sum(apply_retention(sqlite_container, now=now).deleted.values()) == 0
    assert _count(sqlite_container, select(func.count()).select_from(PredictionLog)) == 50
    assert "data-retention" not in {job.name for job in periodic_jobs(sqlite_container.policy_store.get())}


def test_prediction_logs_must_outlive_the_prediction_drift_window(sqlite_container) -> None:
    with pytest.raises(PolicyValidationError, match="prediction_logs_days"):
        sqlite_container.policy_store.update({"clm_config": {"retention": {"prediction_logs_days": 45}}})
    with pytest.raises(PolicyValidationError, match="rl_unapplied_decisions_days"):  # an open trade needs them
        sqlite_container.policy_store.update({"clm_config": {"retention": {"rl_unapplied_decisions_days": 0.5}}})
    with pytest.raises(PolicyValidationError, match="batch_rows"):
        sqlite_container.policy_store.update({"clm_config": {"retention": {"batch_rows": 10}}})
    _, policy = sqlite_container.policy_store.update(
        {"clm_config": {"retention": {"prediction_logs_days": 60, "interval_hours": 2}}}
    )
    assert policy.clm_config.retention.prediction_logs_days == 60
    jobs = {job.name: job for job in periodic_jobs(policy)}
    assert jobs["data-retention"].interval == timedelta(hours=2)
    assert jobs["data-retention"].task == "tasks.maintenance.apply_retention"
