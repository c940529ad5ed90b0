"""The specification's alerts, derived from stored state, raised once as events, sent to a webhook.

`current_alerts` reads the tables and says which alert conditions hold now (the dashboard
and `/metrics` show them). `raise_new_alerts` publishes an `alert.critical` or
`alert.warning` event for each condition not raised before (keyed, so one failure is
one alert); `deliver_webhook`, the handler of `alert.*`, POSTs the alert to
`CLM_ALERT_WEBHOOK_URL` and raises on failure so the event outbox retries it.

Critical: a retraining job failed, CRITICAL drift, every active model degraded, a shadow
test without a new sample for 24 hours, events that went dead (their handlers gave up: an
outcome the agents never learned from), a model type of the policy without an ACTIVE model
(its predictions are refused). Warning: HIGH drift, one model degraded, an RL
agent reset, a shadow promotion recommended for manual review.

Messages are whole (a failed job's whole error, a dead event's whole last error); readers
wrap them. Each occurrence has a short `id` (a hash of its key); `acknowledge` records who
acknowledged it and when (`alert_acknowledgements`), and `current_alerts` says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import urllib.request
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import DateTime, bindparam, func, or_, select
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.core.db.models import (
    AlertAcknowledgement,
    Candle,
    DriftEvent,
    Event,
    ModelRegistry,
    ModelStatusHistory,
    RetrainingJob,
    ShadowTestResult,
)
from app.core.policy import Policy, load_policy
from app.core.topics import TOPICS, AlertCritical, AlertWarning, DriftDetected
from app.data_pipeline.timeframes import timeframe_ms
from app.drift_detector.service import follows_lead
from app.model_registry.records import ACTIVE, SHADOW
from app.retraining.jobs import FAILED

if TYPE_CHECKING:
    from app.core.container import Container

log = logging.getLogger(__name__)

WINDOW = timedelta(hours=24)
SHADOW_STALL = timedelta(hours=24)
DEGRADED_TOPIC = "model.performance.degraded"
RL_RESET_TOPICS = ("rl.meta.reset", "rl.sizing.reset")
RECOMMENDED_TOPIC = "shadow.promotion.recommended"


# The alert check's statements, built once and bound per call: the check runs at every event that can
# start an alert and at every status read, and building a statement costs more than running it on SQLite.
_SINCE = bindparam("since", type_=DateTime())
_FAILED_JOBS = select(RetrainingJob).where(RetrainingJob.status == FAILED, RetrainingJob.started_at >= _SINCE)
_DRIFT_WINDOW = (DriftEvent.severity == bindparam("severity"), DriftEvent.detected_at >= _SINCE)
_DRIFT_COUNT = select(func.count()).select_from(DriftEvent).where(*_DRIFT_WINDOW)
_DRIFT_NEWEST = (
    select(
        DriftEvent.id, DriftEvent.feature_name, DriftEvent.model_type, DriftEvent.drift_type, DriftEvent.p_value,
        DriftEvent.detected_at,
    )
    .where(*_DRIFT_WINDOW)
    .order_by(DriftEvent.id.desc())
    .limit(1)
)  # fmt: skip
_RECENT_EVENTS = (
    select(Event.id, Event.topic, Event.payload, Event.created_at)
    .where(Event.topic.in_(bindparam("topics", expanding=True)), Event.created_at >= _SINCE)
    .order_by(Event.id.desc())
)
_ACTIVE_MODELS = select(ModelRegistry.model_id, ModelRegistry.model_type, ModelRegistry.version).where(
    ModelRegistry.status == ACTIVE
)
_SHADOW_MODELS = select(
    ModelRegistry.model_id, ModelRegistry.model_type, ModelRegistry.version, ModelRegistry.created_at
).where(ModelRegistry.status == SHADOW)
# The newest pair's prediction time, from idx_shadow_model (shadow_model_id, timestamp): the write time
# is in no index, and this runs at every /metrics scrape, so ordering by it read every pair of a test
# (millions at the live rate).
_NEWEST_PAIR = (
    select(ShadowTestResult.timestamp)
    .where(ShadowTestResult.shadow_model_id == bindparam("model_id"))
    .order_by(ShadowTestResult.timestamp.desc())
    .limit(1)
)
_NEWEST_CANDLE = select(func.max(Candle.open_time)).where(
    Candle.exchange == bindparam("exchange"), Candle.symbol == bindparam("symbol"), Candle.timeframe == bindparam("tf")
)
_DEAD_EVENTS = (
    select(Event.id, Event.topic, Event.created_at, Event.last_error)
    .where(Event.status == "dead", Event.topic.not_like("alert.%"))
    .order_by(Event.id.desc())
)
_ACTIVE_TYPES = select(ModelRegistry.model_type).where(ModelRegistry.status == "ACTIVE")
_LAST_ACTIVE = (
    select(ModelStatusHistory.model_type, func.max(ModelStatusHistory.changed_at))
    .where(ModelStatusHistory.old_status == "ACTIVE")
    .group_by(ModelStatusHistory.model_type)
)
_ACKNOWLEDGEMENTS = select(AlertAcknowledgement).where(
    AlertAcknowledgement.alert_id.in_(bindparam("ids", expanding=True))
)
_RAISED = select(Event.payload).where(
    or_(Event.topic == "alert.critical", Event.topic == "alert.warning"), Event.created_at >= _SINCE
)


def alert_id(key: str) -> str:
    """The short id of an alert occurrence (what `POST /api/alerts/<id>/ack` names): its key's hash."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Acknowledgement:
    by: str
    at: datetime
    note: str | None

    def view(self) -> dict[str, Any]:
        return {"by": self.by, "at": self.at.isoformat(), "note": self.note}


@dataclass(frozen=True)
class Alert:
    key: str  # identifies one occurrence: raised once
    name: str
    severity: str  # critical | warning
    message: str
    since: datetime | None
    acknowledgement: Acknowledgement | None = None

    @property
    def id(self) -> str:
        return alert_id(self.key)

    def as_payload(self) -> dict[str, Any]:
        """The fields of the `alert.<severity>` event."""
        since = self.since.isoformat() if self.since else None
        return {"key": self.key, "name": self.name, "severity": self.severity, "message": self.message, "since": since}

    def view(self) -> dict[str, Any]:
        """What the API and the CLI show: the event's fields, the id and the acknowledgement."""
        ack = self.acknowledgement.view() if self.acknowledgement else None
        return {"id": self.id, **self.as_payload(), "acknowledged": ack}


def _recent_events(session: Session, topics: tuple[str, ...], since: datetime) -> list[Row[Any]]:
    """(id, topic, payload, created_at) of the events of `topics` since `since`, newest first (columns,
    not ORM rows: this runs at every alert check)."""
    return list(session.execute(_RECENT_EVENTS, {"topics": list(topics), "since": since}))


def _job_alerts(session: Session, since: datetime) -> list[Alert]:
    failed = session.scalars(_FAILED_JOBS, {"since": since})
    return [
        Alert(
            key=f"retraining_failed:{job.job_id}",
            name="retraining_failed",
            severity="critical",
            message=f"retraining job {job.job_id} failed: {job.error_message or 'no error recorded'}",
            since=job.completed_at or job.started_at,
        )
        for job in failed
    ]


def _drift_alerts(session: Session, since: datetime) -> list[Alert]:
    alerts = []
    for severity, level in (("critical", "critical"), ("high", "warning")):
        # How many, counted in the database, and the newest row only: a drift check writes dozens of rows
        # a day, each with its JSON metadata, and this runs at every alert check. (The newest by id: SQLite
        # walks the table backwards from the end, where the window's rows are.)
        window = {"severity": severity, "since": since}
        count = session.scalar(_DRIFT_COUNT, window) or 0
        rows = session.execute(_DRIFT_NEWEST, window).all() if count else []  # none: no walk through the table
        if rows:
            latest = rows[0]
            what = latest.feature_name or latest.model_type or latest.drift_type
            alerts.append(
                Alert(
                    key=f"drift_{severity}:{latest.id}",
                    name=f"drift_{severity}",
                    severity=level,
                    message=f"{count} {severity.upper()} drift event(s) in 24 h; latest: {latest.drift_type} "
                    f"drift on {what} (p={latest.p_value})",
                    since=latest.detected_at,
                )
            )
    return alerts


def _degradation_alerts(session: Session, since: datetime) -> list[Alert]:
    active = {m.model_id: m for m in session.execute(_ACTIVE_MODELS)}
    degraded: dict[str, Row[Any]] = {}
    for event in _recent_events(session, (DEGRADED_TOPIC,), since):
        model_id = str((event.payload or {}).get("model_id", ""))
        if model_id in active and model_id not in degraded:
            degraded[model_id] = event
    if not degraded:
        return []
    if len(degraded) == len(active):
        newest = max(e.id for e in degraded.values())
        return [
            Alert(
                key=f"all_models_degraded:{newest}",
                name="all_models_degraded",
                severity="critical",
                message=f"every active model is degraded: {', '.join(sorted(active[m].model_type for m in degraded))}",
                since=max(e.created_at for e in degraded.values()),
            )
        ]
    return [
        Alert(
            key=f"model_degraded:{event.id}",
            name="model_degraded",
            severity="warning",
            message=f"{active[model_id].model_type} {active[model_id].version} degraded: "
            f"{(event.payload or {}).get('recommendation', 'DEGRADED')}",
            since=event.created_at,
        )
        for model_id, event in degraded.items()
    ]


def _shadow_stall_alerts(session: Session, now: datetime) -> list[Alert]:
    alerts = []
    for shadow in session.execute(_SHADOW_MODELS):
        last = session.scalar(_NEWEST_PAIR, {"model_id": shadow.model_id})
        reference = last or shadow.created_at
        if now - reference > SHADOW_STALL:
            alerts.append(
                Alert(
                    key=f"shadow_stuck:{shadow.model_id}:{reference.isoformat()}",
                    name="shadow_stuck",
                    severity="critical",
                    message=f"shadow test of {shadow.model_type} {shadow.version} has had no new sample since "
                    f"{reference:%Y-%m-%d %H:%M} UTC",
                    since=reference,
                )
            )
    return alerts


def _feed_stall_alerts(session: Session, now: datetime, policy: Policy | None) -> list[Alert]:
    """A symbol of the policy whose newest stored candle is `stalled_feed_intervals` old."""
    data = (policy or load_policy(session)).data
    step = timedelta(milliseconds=timeframe_ms(data.timeframe))
    alerts = []
    for symbol in data.symbols:
        newest = session.scalar(_NEWEST_CANDLE, {"exchange": data.exchange, "symbol": symbol, "tf": data.timeframe})
        if newest is None:
            continue  # nothing stored yet: no feed to call stalled
        last_open = datetime(1970, 1, 1) + timedelta(milliseconds=int(newest))
        # The newest closed candle opened one interval ago; more than N intervals beyond that is a stall.
        if now - last_open > step * (data.stalled_feed_intervals + 1):
            alerts.append(
                Alert(
                    key=f"feed_stalled:{data.exchange}:{symbol}:{newest}",
                    name="feed_stalled",
                    severity="critical",
                    message=f"no new {data.timeframe} candle of {symbol} on {data.exchange} since "
                    f"{last_open:%Y-%m-%d %H:%M} UTC",
                    since=last_open,
                )
            )
    return alerts


def _dead_event_alerts(session: Session) -> list[Alert]:
    """Events whose handlers gave up (idx_events_pending leads with status). Alerts themselves
    are left out: a webhook that is down would otherwise raise an alert per dead alert."""
    dead = session.execute(_DEAD_EVENTS).all()
    if not dead:
        return []
    newest = dead[0]
    error = (newest.last_error or "no error recorded").strip()
    return [
        Alert(
            key=f"events_dead:{newest.id}",
            name="events_dead",
            severity="critical",
            message=f"{len(dead)} event(s) dead after every retry (`clm events requeue-dead` re-queues them); "
            f"newest: {newest.topic} #{newest.id}: {error}",
            since=newest.created_at,
        )
    ]


def _no_active_model_alerts(session: Session) -> list[Alert]:
    """A model type that had an ACTIVE model and has none now (retired, rejected): its predictions
    are refused. A type still training its first model is not an alert."""
    active = set(session.scalars(_ACTIVE_TYPES))
    last_active = session.execute(_LAST_ACTIVE).all()
    return [
        Alert(
            key=f"no_active_model:{model_type}:{last.isoformat()}",
            name="no_active_model",
            severity="critical",
            message=f"model type {model_type} has no ACTIVE model since {last:%Y-%m-%d %H:%M} UTC: its "
            "predictions are refused (promote or roll back a version)",
            since=last,
        )
        for model_type, last in sorted(last_active)
        if model_type not in active
    ]


def _event_alerts(session: Session, since: datetime) -> list[Alert]:
    alerts = []
    for event in _recent_events(session, (*RL_RESET_TOPICS, RECOMMENDED_TOPIC), since):
        payload = event.payload or {}
        if event.topic == RECOMMENDED_TOPIC:
            name, message = "promotion_review", f"shadow promotion recommended for {payload.get('model_id')}: review"
        else:
            name = "rl_reset"
            message = (
                f"{event.topic.split('.')[1]} agent reset v{payload.get('old_version')} -> "
                f"v{payload.get('new_version')} ({payload.get('reason', 'no reason given')})"
            )
        alerts.append(Alert(f"{name}:{event.id}", name, "warning", message, event.created_at))
    return alerts


def current_alerts(session: Session, now: datetime | None = None, policy: Policy | None = None) -> list[Alert]:
    """Every alert condition that holds now, critical first, each with its acknowledgement if any.

    `policy`: the one in force, when the caller has it (`PolicyStore.get`, cached); else it is read here."""
    now = now or utcnow()
    since = now - WINDOW
    alerts = (
        _job_alerts(session, since)
        + _drift_alerts(session, since)
        + _degradation_alerts(session, since)
        + _shadow_stall_alerts(session, now)
        + _feed_stall_alerts(session, now, policy)
        + _event_alerts(session, since)
        + _dead_event_alerts(session)
        + _no_active_model_alerts(session)
    )
    alerts = _with_acknowledgements(session, alerts)
    return sorted(alerts, key=lambda a: (a.severity != "critical", -(a.since or now).timestamp()))


def _with_acknowledgements(session: Session, alerts: list[Alert]) -> list[Alert]:
    if not alerts:
        return alerts
    rows = session.scalars(_ACKNOWLEDGEMENTS, {"ids": list({a.id for a in alerts})})
    acks = {row.alert_id: _acknowledgement(row) for row in rows}
    return [replace(a, acknowledgement=acks[a.id]) if a.id in acks else a for a in alerts]


def _acknowledgement(row: AlertAcknowledgement) -> Acknowledgement:
    return Acknowledgement(by=row.acknowledged_by, at=row.acknowledged_at, note=row.note)


class UnknownAlert(LookupError):
    """No alert with this id holds now, and none was acknowledged."""


@dataclass(frozen=True)
class AcknowledgeResult:
    alert_id: str
    key: str
    name: str
    acknowledgement: Acknowledgement
    recorded: bool  # False: it was acknowledged before (the first acknowledgement stands)
    holds: bool  # the alert's condition still holds

    def view(self) -> dict[str, Any]:
        return {
            "id": self.alert_id,
            "key": self.key,
            "name": self.name,
            "acknowledged": self.acknowledgement.view(),
            "recorded": self.recorded,
            "holds": self.holds,
        }


def acknowledge(
    container: Container, wanted: str, by: str, note: str | None = None, now: datetime | None = None
) -> AcknowledgeResult:
    """Acknowledge the alert occurrence whose `Alert.id` is `wanted`, recorded as by `by` now.

    Idempotent: an occurrence already acknowledged keeps its first acknowledgement (who, when,
    note), also after its condition ended. Raises `UnknownAlert` for an id that is neither a
    current alert nor acknowledged before; changes nothing then."""
    now = now or utcnow()
    try:
        with container.session() as session:
            current = next((a for a in current_alerts(session, now) if a.id == wanted), None)
            existing = session.get(AlertAcknowledgement, wanted)
            if existing is not None:
                return _result(existing, recorded=False, holds=current is not None)
            if current is None:
                raise UnknownAlert(
                    f"alert {wanted!r} not found: no alert with this id holds now, and none was acknowledged "
                    "(GET /api/alerts or `clm alerts list` shows the ids)"
                )
            row = AlertAcknowledgement(
                alert_id=wanted, alert_key=current.key, name=current.name, acknowledged_at=now, acknowledged_by=by,
                note=note,
            )  # fmt: skip
            session.add(row)
            session.flush()
            result = _result(row, recorded=True, holds=True)
    except IntegrityError:
        # Acknowledged at the same moment by another caller: theirs came first and stands.
        with container.session() as session:
            first = session.get(AlertAcknowledgement, wanted)
            if first is None:
                raise
            return _result(first, recorded=False, holds=True)
    log.info("alert %s (%s) acknowledged by %s", wanted, result.key, by)
    return result


def _result(row: AlertAcknowledgement, *, recorded: bool, holds: bool) -> AcknowledgeResult:
    return AcknowledgeResult(row.alert_id, row.alert_key, row.name, _acknowledgement(row), recorded, holds)


def raise_new_alerts(container: Container) -> list[Alert]:
    """Publish an `alert.<severity>` event for each alert not raised before; returns those."""
    with container.session() as session:
        now = utcnow()
        raised = {(payload or {}).get("key") for payload in session.scalars(_RAISED, {"since": now - 3 * WINDOW})}
        policy = container.policy_store.get(session)
        new = [a for a in current_alerts(session, now, policy) if a.key not in raised]
        for alert in new:
            event_type = AlertCritical if alert.severity == "critical" else AlertWarning
            container.bus.publish(session, event_type(**alert.as_payload()))
    for alert in new:
        log.warning("ALERT %s: %s", alert.severity.upper(), alert.message)
    return new


def check_on_event(container: Container, event: dict[str, Any]) -> None:
    """Handler of the topics that can start an alert (drift, degradation, job end, RL reset, ...).

    A drift check's events are checked once, on its lead event (see app.clm.manager)."""

    if event["topic"] == DriftDetected.topic and follows_lead(DriftDetected.from_event(event)):
        return
    raise_new_alerts(container)


def deliver_webhook(container: Container, event: dict[str, Any]) -> None:
    """Handler of `alert.*`: POST the alert as JSON; an error makes the outbox retry it."""
    url = container.settings.alert_webhook_url
    if not url:
        return
    alert = TOPICS[event["topic"]].from_event(event)  # alert.critical or alert.warning
    body = json.dumps({"topic": event["topic"], "event_id": event["id"], **alert.payload()}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status >= 300:
            raise RuntimeError(f"alert webhook answered {response.status}")
