"""EventBus: a transactional outbox with wildcard subscriptions and at-least-once delivery.

`publish(session, event)` adds an `events` row inside the caller's transaction (`event`: a
typed event of `app/core/topics/`, stored as its topic and its JSON payload),
so an event exists if and only if the state change it reports was committed. After the
commit the bus is notified: in the embedded mode it delivers in-process at once; in the
distributed mode it asks the dispatcher to run the delivery task on a worker.

Delivery claims due events with a lease (a worker that dies mid-delivery lets the lease
run out and the event is delivered again), calls each matching handler that has not yet
taken the event, and records every success and failure in `event_deliveries`. A failed
handler is retried with exponential backoff; after `max_attempts` the event is marked
`dead`, still stored with its errors, and can be re-queued by the operator.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, func, insert, or_, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session, sessionmaker

from app.core.clock import utcnow
from app.core.db.models import Event, EventDelivery
from app.core.topics import TopicEvent

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], None]


# The delivery's statements, built once (bound per event): a drift check alone publishes an event per
# drifted feature, and building a statement costs more than running it on SQLite.
_EVENT_AND_TAKERS = (  # the event and the handlers that have taken it (one row per such handler)
    select(Event.id, Event.topic, Event.payload, Event.created_at, Event.status, EventDelivery.handler)
    .outerjoin(EventDelivery, (EventDelivery.event_id == Event.id) & (EventDelivery.status == "delivered"))
    .where(Event.id == bindparam("event_id"))
)
_LEASE = (
    update(Event)
    .where(Event.id.in_(bindparam("ids", expanding=True)))
    .values(next_attempt_at=bindparam("until", type_=Event.__table__.c.next_attempt_at.type))
    .execution_options(synchronize_session=False)  # sessions of their own, holding no Event objects
)
_INSERT_DELIVERIES = insert(cast(Table, EventDelivery.__table__))  # Core: no ORM bulk bookkeeping for two rows
_TRIED = select(EventDelivery.handler, EventDelivery.attempts).where(EventDelivery.event_id == bindparam("event_id"))
_DELIVERED = (  # the count goes up in the statement: no read of it first
    update(Event)
    .where(Event.id == bindparam("event_id"))
    .values(
        attempts=func.coalesce(Event.attempts, 0) + 1,
        status="delivered",
        delivered_at=bindparam("now", type_=Event.__table__.c.delivered_at.type),
        next_attempt_at=None,
    )
    .execution_options(synchronize_session=False)
)


def _wallclock() -> datetime:
    # Leases and backoff use real time even when the domain clock is simulated.
    return datetime.now(UTC).replace(tzinfo=None)


class DeliveryScheduler(Protocol):
    def deliver_events(self) -> None: ...


@dataclass
class Subscription:
    pattern: str
    handler: Handler
    name: str

    def matches(self, topic: str) -> bool:
        return fnmatch.fnmatchcase(topic, self.pattern)


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)


def event_dict(row: Event | Row[Any]) -> dict[str, Any]:
    """The shape handlers receive: `type` (the topic, as the specification's tests read it)."""
    return {
        "id": row.id,
        "type": row.topic,
        "topic": row.topic,
        "payload": row.payload,
        "created_at": row.created_at.isoformat(),
    }


class EventBus:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        inline_delivery: bool = True,
        scheduler: DeliveryScheduler | None = None,
        max_attempts: int = 8,
        lease_seconds: float = 300.0,
        backoff_seconds: float = 2.0,
        is_postgres: bool = False,
    ) -> None:
        self._session_factory = session_factory
        self._subscriptions: list[Subscription] = []
        self.inline_delivery = inline_delivery
        self.scheduler = scheduler
        self.max_attempts = max_attempts
        self.lease_seconds = lease_seconds
        self.backoff_seconds = backoff_seconds
        self._is_postgres = is_postgres
        self._local = threading.local()
        self._claim_queries: dict[tuple[int, bool], Any] = {}
        self._lock = threading.Lock()
        sa_event.listen(session_factory, "after_commit", self._after_commit)
        sa_event.listen(session_factory, "after_rollback", self._after_rollback)

    # ----------------------------------------------------------------- subscribe / publish

    def subscribe(self, pattern: str, handler: Handler, name: str | None = None) -> Subscription:
        """Call `handler(event)` for every event whose topic matches `pattern` (`clm.*`)."""
        handler_name = (
            name or f"{getattr(handler, '__module__', '?')}.{getattr(handler, '__qualname__', repr(handler))}"
        )
        sub = Subscription(pattern, handler, handler_name)
        with self._lock:
            self._subscriptions.append(sub)
        return sub

    def subscriptions(self) -> list[Subscription]:
        with self._lock:
            return list(self._subscriptions)

    def publish(self, session: Session, event: TopicEvent, record_only: bool = False) -> Event:
        """Add the event to `session`'s transaction; it is delivered after that commits.

        `record_only`: a signal published for the record and for outside readers (the
        prediction service's `ai.signal.generated`, 200 a second): when no handler is
        subscribed to its topic it is stored as delivered, and no delivery is scheduled.
        """
        row = Event(**self.event_values(event, record_only))
        session.add(row)
        if row.status == "pending":
            session.info["clm_events_published"] = True
        return row

    def inserted(self, session: Session, values: dict[str, Any]) -> None:
        """A row of `event_values` was inserted with Core in `session`: a pending one is delivered
        after that transaction commits, as `publish` would."""
        if values["status"] == "pending":
            session.info["clm_events_published"] = True

    def event_values(self, event: TopicEvent, record_only: bool = False) -> dict[str, Any]:
        """The `events` row `publish` adds, for a caller that inserts it with Core in its own
        transaction; when its status is "pending", that caller calls `notify()` after the commit."""
        topic, payload = event.topic, event.payload()
        now = utcnow()
        if record_only and not any(sub.matches(topic) for sub in self.subscriptions()):
            return {"topic": topic, "payload": payload, "created_at": now, "status": "delivered", "attempts": 0,
                    "delivered_at": now}  # fmt: skip
        return {"topic": topic, "payload": payload, "created_at": now, "status": "pending", "attempts": 0}

    # ----------------------------------------------------------------- after commit

    def _after_commit(self, session: Session) -> None:
        if session.info.pop("clm_events_published", False):
            self.notify()

    def _after_rollback(self, session: Session) -> None:
        session.info.pop("clm_events_published", None)

    def notify(self) -> None:
        """New events were committed: deliver them now (inline) or ask a worker to."""
        if self.inline_delivery:
            if getattr(self._local, "delivering", False):
                return  # the running delivery loop picks them up
            self.deliver_pending()
        elif self.scheduler is not None:
            try:
                self.scheduler.deliver_events()
            except Exception:  # the periodic redelivery picks the events up later
                log.exception("could not schedule event delivery; the periodic sweep will")

    # ----------------------------------------------------------------- delivery

    def deliver_pending(self, limit: int = 200, force: bool = False) -> DeliveryReport:
        """Deliver due events (all pending ones when `force`), until none are left."""
        report = DeliveryReport()
        self._local.delivering = True
        try:
            # Events that handlers publish are due at once, so the loop picks them up;
            # failed ones are pushed back by their backoff and wait for a later call.
            while ids := self._claim(limit, force):
                for event_id in ids:
                    self._deliver_one(event_id, report)
                force = False
        finally:
            self._local.delivering = False
        return report

    def _due_filter(self, now: Any, force: bool) -> Any:
        if force:
            return Event.status == "pending"
        return (Event.status == "pending") & or_(Event.next_attempt_at.is_(None), Event.next_attempt_at <= now)

    def _claim(self, limit: int, force: bool) -> list[int]:
        now = _wallclock()
        with self._session_factory() as session, session.begin():
            ids = list(session.scalars(self._claim_query(limit, force), {"now": now}))
            if ids:
                session.execute(_LEASE, {"ids": ids, "until": now + timedelta(seconds=self.lease_seconds)})
        return ids

    def _claim_query(self, limit: int, force: bool) -> Any:
        """The due events' ids, oldest first (bound to `now`): built once per (limit, force), as a claim
        follows every commit that publishes."""
        key = (limit, force)
        query = self._claim_queries.get(key)
        if query is None:
            now = bindparam("now", type_=Event.__table__.c.next_attempt_at.type)
            query = select(Event.id).where(self._due_filter(now, force)).order_by(Event.id).limit(limit)
            if self._is_postgres:
                query = query.with_for_update(skip_locked=True)
            self._claim_queries[key] = query
        return query

    def _deliver_one(self, event_id: int, report: DeliveryReport) -> None:
        # Core statements, not ORM objects: a drift check alone publishes an event per drifted feature,
        # and the ORM's bookkeeping of three rows cost more than the handlers of most of them.
        with self._session_factory() as session:
            found = session.execute(_EVENT_AND_TAKERS, {"event_id": event_id}).all()
        if not found or found[0].status != "pending":
            return
        payload = event_dict(found[0])
        done = {r.handler for r in found if r.handler is not None}
        errors: list[str] = []
        outcomes: list[tuple[str, str | None]] = []
        for sub in self.subscriptions():
            if sub.name in done or not sub.matches(payload["topic"]):
                continue
            try:
                sub.handler(payload)
                outcomes.append((sub.name, None))
            except Exception as exc:  # recorded, retried later; never dropped
                message = f"{sub.name}: {type(exc).__name__}: {exc}"
                log.warning("event %s (%s) handler failed: %s", event_id, payload["topic"], message)
                log.debug("%s", traceback.format_exc())
                errors.append(message)
                outcomes.append((sub.name, message))
        now = _wallclock()
        with self._session_factory() as session, session.begin():
            tried: dict[str, int | None] = {}
            if outcomes:  # an event no handler listens to has no deliveries to read
                tried = {handler: attempts for handler, attempts in session.execute(_TRIED, {"event_id": event_id})}
            new: list[dict[str, Any]] = []
            for handler_name, error in outcomes:
                values = {"status": "failed" if error else "delivered", "last_error": error, "updated_at": now}
                if handler_name in tried:
                    session.execute(
                        update(EventDelivery)
                        .where(EventDelivery.event_id == event_id, EventDelivery.handler == handler_name)
                        .values(attempts=(tried[handler_name] or 0) + 1, **values)
                    )
                else:
                    new.append({"event_id": event_id, "handler": handler_name, "attempts": 1, **values})
            if new:
                session.execute(_INSERT_DELIVERIES, new)
            if not errors:
                session.execute(_DELIVERED, {"event_id": event_id, "now": now})
                report.delivered += 1
                return
            attempts = (session.execute(select(Event.attempts).where(Event.id == event_id)).scalar_one() or 0) + 1
            changes: dict[str, Any] = {"attempts": attempts}
            report.failed += 1
            report.errors.extend(errors)
            changes["last_error"] = "\n".join(errors)[:4000]
            if attempts >= self.max_attempts:
                changes["status"] = "dead"
                report.dead += 1
            else:
                backoff = self.backoff_seconds * (2 ** (attempts - 1))
                changes["next_attempt_at"] = now + timedelta(seconds=min(backoff, 3600))
            session.execute(update(Event).where(Event.id == event_id).values(**changes))

    def requeue_dead(self) -> int:
        """Give dead events another round of attempts (operator command)."""
        with self._session_factory() as session, session.begin():
            result = session.execute(
                update(Event).where(Event.status == "dead").values(status="pending", attempts=0, next_attempt_at=None)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def recent(self, pattern: str = "*", limit: int = 100) -> list[dict[str, Any]]:
        """The latest stored events whose topic matches `pattern`, newest first."""
        with self._session_factory() as session:
            rows = session.scalars(select(Event).order_by(Event.id.desc()).limit(limit * 5)).all()
            return [event_dict(r) | {"status": r.status} for r in rows if fnmatch.fnmatchcase(r.topic, pattern)][:limit]
