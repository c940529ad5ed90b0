"""Events through PostgreSQL and real Celery worker processes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from app.core.db.models import Event, SystemFlag
from app.core.system import get_flag
from app.core.topics import DriftDetected, SystemPing
from tests.services import celery_worker
from tests.topic_helpers import make_event

pytestmark = pytest.mark.integration


def _wait_for(predicate, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    return None


def test_worker_delivers_a_committed_event(pg_container, worker_env, tmp_path) -> None:
    from workers.celery_app import celery_app, configure
    from workers.celery_dispatcher import CeleryDispatcher

    configure(pg_container.settings)
    pg_container.bus.scheduler = CeleryDispatcher(celery_app)
    with celery_worker(worker_env, queues="default", log_path=tmp_path / "worker.log"):
        with pg_container.session() as session:
            pg_container.bus.publish(session, SystemPing(hello="worker"))

        def delivered() -> SystemFlag | None:
            with pg_container.session_factory() as session:
                return get_flag(session, "last_ping")

        flag = _wait_for(delivered)
        assert flag is not None, (tmp_path / "worker.log").read_text()[-2000:]
        assert flag.value["payload"] == {"hello": "worker"}
        with pg_container.session_factory() as session:
            assert session.scalars(select(Event.status)).all() == ["delivered"]


def test_event_abandoned_mid_delivery_is_delivered_again(pg_container) -> None:
    """A worker that claimed an event and died: once its lease runs out, the event goes out."""
    seen: list[dict[str, Any]] = []
    pg_container.bus.subscribe("test.*", seen.append, name="test-seen")
    pg_container.bus.inline_delivery = False  # publish without delivering, like a crash
    with pg_container.session() as session:
        pg_container.bus.publish(session, make_event("test.promoted", model_id="m1"))
    claimed = pg_container.bus._claim(10, force=False)  # the "dead worker" takes it
    assert len(claimed) == 1
    assert pg_container.bus.deliver_pending().delivered == 0  # leased: not delivered twice
    with pg_container.session() as session:  # the lease runs out
        past = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=1)
        session.execute(update(Event).values(next_attempt_at=past))
    assert pg_container.bus.deliver_pending().delivered == 1
    assert [e["payload"] for e in seen] == [{"model_id": "m1"}]


def test_rolled_back_event_is_never_delivered_on_postgresql(pg_container) -> None:
    seen: list[dict[str, Any]] = []
    pg_container.bus.subscribe("*", seen.append, name="test-all")
    with pytest.raises(ZeroDivisionError), pg_container.session() as session:
        pg_container.bus.publish(
            session, DriftDetected(drift_type="feature", feature="x", p_value=0.0, severity="HIGH")
        )
        _ = 1 / 0
    pg_container.bus.deliver_pending(force=True)
    assert seen == []
