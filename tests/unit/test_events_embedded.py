"""EventBus semantics on the embedded (SQLite, inline delivery) container."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.core.db.models import Event, EventDelivery
from tests.topic_helpers import make_event


def test_wildcard_subscription_and_delivery_after_commit(sqlite_container) -> None:
    bus = sqlite_container.bus
    seen: list[dict[str, Any]] = []
    bus.subscribe("clm.*", seen.append, name="test-clm")
    with sqlite_container.session() as session:
        bus.publish(session, make_event("clm.retraining.started", job_id="RTN-1"))
        bus.publish(session, make_event("test.promoted", model_id="m"))
        assert seen == []  # nothing is delivered before the commit
    assert [e["type"] for e in seen] == ["clm.retraining.started"]
    assert seen[0]["payload"] == {"job_id": "RTN-1"}


def test_event_in_rolled_back_transaction_is_never_delivered(sqlite_container) -> None:
    bus = sqlite_container.bus
    seen: list[dict[str, Any]] = []
    bus.subscribe("*", seen.append, name="test-all")
    with pytest.raises(RuntimeError), sqlite_container.session() as session:
        bus.publish(session, make_event("test.promoted", model_id="m"))
        raise RuntimeError("the state change failed")
    bus.deliver_pending(force=True)
    assert seen == []
    with sqlite_container.session_factory() as session:
        assert session.scalars(select(Event)).all() == []


def test_failing_handler_is_retried_and_others_are_not_called_twice(sqlite_container) -> None:
    bus = sqlite_container.bus
    calls = {"flaky": 0, "steady": 0}

    def flaky(event: dict[str, Any]) -> None:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise ConnectionError("downstream unavailable")

    def steady(event: dict[str, Any]) -> None:
        calls["steady"] += 1

    bus.subscribe("test.detected", flaky, name="flaky")
    bus.subscribe("test.*", steady, name="steady")
    with sqlite_container.session() as session:
        bus.publish(session, make_event("test.detected", severity="HIGH"))
    assert calls == {"flaky": 1, "steady": 1}
    with sqlite_container.session_factory() as session:
        event = session.scalars(select(Event)).one()
        assert event.status == "pending" and "downstream unavailable" in (event.last_error or "")
        failed = session.get(EventDelivery, (event.id, "flaky"))
        assert failed is not None and failed.status == "failed"

    # Not due yet (backoff): an ordinary sweep leaves it; a later one delivers it.
    assert bus.deliver_pending().delivered == 0
    report = bus.deliver_pending(force=True)
    assert report.delivered == 1
    assert calls == {"flaky": 2, "steady": 1}
    with sqlite_container.session_factory() as session:
        event = session.scalars(select(Event)).one()
        assert event.status == "delivered" and event.attempts == 2 and event.delivered_at is not None
        assert event.next_attempt_at is None and "downstream unavailable" in (event.last_error or "")  # kept
        rows = {d.handler: d for d in session.scalars(select(EventDelivery))}
        assert (rows["flaky"].status, rows["flaky"].attempts, rows["flaky"].last_error) == ("delivered", 2, None)
        assert (rows["steady"].status, rows["steady"].attempts) == ("delivered", 1)


def test_handler_that_always_fails_ends_dead_but_kept(sqlite_container) -> None:
    bus = sqlite_container.bus
    bus.max_attempts = 3

    def broken(event: dict[str, Any]) -> None:
        raise ValueError("bad payload")

    bus.subscribe("x.*", broken, name="broken")
    with sqlite_container.session() as session:
        bus.publish(session, make_event("x.y"))
    for _ in range(3):
        bus.deliver_pending(force=True)
    with sqlite_container.session_factory() as session:
        event = session.scalars(select(Event)).one()
        assert event.status == "dead" and event.attempts == 3
        assert "bad payload" in (event.last_error or "")
    assert bus.requeue_dead() == 1


def test_handlers_publishing_events_are_delivered_in_the_same_sweep(sqlite_container) -> None:
    bus = sqlite_container.bus
    seen: list[str] = []

    def chain(event: dict[str, Any]) -> None:
        seen.append(event["type"])
        if event["type"] == "a.first":
            with sqlite_container.session() as session:
                bus.publish(session, make_event("a.second"))

    bus.subscribe("a.*", chain, name="chain")
    with sqlite_container.session() as session:
        bus.publish(session, make_event("a.first"))
    assert seen == ["a.first", "a.second"]
