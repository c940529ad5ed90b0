"""The specification's alerts, derived from stored state, raised once as events, sent to a webhook.

`current_alerts` reads the tables and says which alert conditions hold now (the dashboard
and `/metrics` show them). `raise_new_alerts` publishes an `alert.critical` or
`alert.warning` event for each condition not raised before (keyed, so one failure is
one alert); `deliver_webhook`, the handler of `alert.*`, POSTs the alert to
`CLM_ALERT_WEBHOOK_URL` and raises on failure so the event outbox retries it.

Critical: a retraining job failed, CRITICAL drift, every active model degraded, a shadow
test without a new sample for 24 hours. Warning: HIGH drift, one model degraded, an RL
agent reset, a shadow promotion recommended for manual review.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.core.db.models import Candle, DriftEvent, Event, ModelRegistry, RetrainingJob, ShadowTestResult
from app.core.policy import load_policy
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


@dataclass(frozen=True)
class Alert:
    key: str  # identifies one occurrence: raised once
    name: str
    severity: str  # critical | warning
    message: str
    since: datetime | None

    def as_payload(self) -> dict[str, Any]:
        return asdict(self) | {"since": self.since.isoformat() if self.since else None}


def _recent_events(session: Session, topics: tuple[str, ...], since: datetime) -> list[Event]:
    return list(
        session.scalars(
            select(Event).where(Event.topic.in_(topics), Event.created_at >= since).order_by(Event.id.desc())
        )
    )


def _job_alerts(session: Session, since: datetime) -> list[Alert]:
    failed = session.scalars(
        select(RetrainingJob).where(RetrainingJob.status == FAILED, RetrainingJob.started_at >= since)
    )
    return [
        Alert(
            key=f"retraining_failed:{job.job_id}",
            name="retraining_failed",
            severity="critical",
            message=f"retraining job {job.job_id} failed: {(job.error_message or 'no error recorded')[:200]}",
            since=job.completed_at or job.started_at,
        )
        for job in failed
    ]


def _drift_alerts(session: Session, since: datetime) -> list[Alert]:
    alerts = []
    for severity, level in (("critical", "critical"), ("high", "warning")):
        rows = session.scalars(
            select(DriftEvent)
            .where(DriftEvent.severity == severity, DriftEvent.detected_at >= since)
            .order_by(DriftEvent.id.desc())
        ).all()
        if rows:
            latest = rows[0]
            what = latest.feature_name or latest.model_type or latest.drift_type
            alerts.append(
                Alert(
                    key=f"drift_{severity}:{latest.id}",
                    name=f"drift_{severity}",
                    severity=level,
                    message=f"{len(rows)} {severity.upper()} drift event(s) in 24 h; latest: {latest.drift_type} "
                    f"drift on {what} (p={latest.p_value})",
                    since=latest.detected_at,
                )
            )
    return alerts


def _degradation_alerts(session: Session, since: datetime) -> list[Alert]:
    active = {m.model_id: m for m in session.scalars(select(ModelRegistry).where(ModelRegistry.status == ACTIVE))}
    degraded: dict[str, Event] = {}
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
    for shadow in session.scalars(select(ModelRegistry).where(ModelRegistry.status == SHADOW)):
        # The newest pair's prediction time, from idx_shadow_model (shadow_model_id, timestamp):
        # the write time is in no index, and this runs at every /metrics scrape, so ordering by
        # it read every pair of a test (millions at the live rate).
        last = session.scalar(
            select(ShadowTestResult.timestamp)
            .where(ShadowTestResult.shadow_model_id == shadow.model_id)
            .order_by(ShadowTestResult.timestamp.desc())
            .limit(1)
        )
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


def _feed_stall_alerts(session: Session, now: datetime) -> list[Alert]:
    """A symbol of the policy whose newest stored candle is `stalled_feed_intervals` old."""
    data = load_policy(session).data
    step = timedelta(milliseconds=timeframe_ms(data.timeframe))
    alerts = []
    for symbol in data.symbols:
        newest = session.scalar(
            select(func.max(Candle.open_time)).where(
                Candle.exchange == data.exchange, Candle.symbol == symbol, Candle.timeframe == data.timeframe
            )
        )
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


def current_alerts(session: Session, now: datetime | None = None) -> list[Alert]:
    """Every alert condition that holds now, critical first."""
    now = now or utcnow()
    since = now - WINDOW
    alerts = (
        _job_alerts(session, since)
        + _drift_alerts(session, since)
        + _degradation_alerts(session, since)
        + _shadow_stall_alerts(session, now)
        + _feed_stall_alerts(session, now)
        + _event_alerts(session, since)
    )
    return sorted(alerts, key=lambda a: (a.severity != "critical", -(a.since or now).timestamp()))


def raise_new_alerts(container: Container) -> list[Alert]:
    """Publish an `alert.<severity>` event for each alert not raised before; returns those."""
    with container.session() as session:
        now = utcnow()
        raised = {
            (e.payload or {}).get("key")
            for e in session.scalars(
                select(Event).where(
                    or_(Event.topic == "alert.critical", Event.topic == "alert.warning"),
                    Event.created_at >= now - 3 * WINDOW,
                )
            )
        }
        new = [a for a in current_alerts(session, now) if a.key not in raised]
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
