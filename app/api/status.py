"""CLM status and alerts (read from the tables; the CLM service adds its own view when present)."""

from __future__ import annotations

from flask import Blueprint

from app.api.common import container
from app.api.errors import ApiError
from app.api.openapi import operation
from app.api.schemas import AcknowledgeAnswer, AcknowledgeRequest, Alert, AlertList, ClmStatus, ResumeRequest, Schedule
from app.clm.manager import ContinuousLearningManager
from app.operations.alerts import UnknownAlert, acknowledge, current_alerts
from app.operations.read_models import clm_status, schedule_status

bp = Blueprint("clm", __name__, url_prefix="/api")


def _alerts(session, policy=None) -> list[Alert]:  # type: ignore[no-untyped-def]
    return [Alert.model_validate(a.view()) for a in current_alerts(session, policy=policy)]


@operation(
    bp,
    "/clm/status",
    summary="CLM status: retraining, models, shadow tests, RL, drift, jobs, alerts",
    tag="clm",
    response=ClmStatus,
)
def get_clm_status() -> ClmStatus:
    c = container()
    with c.session() as session:
        policy = c.policy_store.get(session)
        status = clm_status(session, policy)
        alerts = _alerts(session, policy)
    manager = ContinuousLearningManager(c).get_status()
    return ClmStatus.model_validate(status | {"alerts": alerts, "manager": manager})


@operation(
    bp, "/schedule", summary="The beat schedule: each entry, its last and next run", tag="clm", response=Schedule
)
def get_schedule() -> Schedule:
    """Read from what beat last reported (every 30 s); without a live beat the times are absent and `beat` says why."""
    c = container()
    with c.session() as session:
        return Schedule.model_validate(schedule_status(session, c.policy_store.get(session)))


@operation(bp, "/alerts", summary="Alert conditions holding now, critical first", tag="clm", response=AlertList)
def get_alerts() -> AlertList:
    with container().session() as session:
        return AlertList(alerts=_alerts(session))


@operation(
    bp, "/alerts/<alert_id>/ack", "POST", summary="Acknowledge an alert (who and when are recorded)", tag="clm",
    body=AcknowledgeRequest, response=AcknowledgeAnswer, auth=True,
)  # fmt: skip
def post_acknowledge_alert(alert_id: str, body: AcknowledgeRequest) -> AcknowledgeAnswer:
    """Acknowledge the alert occurrence `alert_id` (the `id` of `GET /api/alerts`). Idempotent:
    a repeat answers the first acknowledgement (`recorded` false), also once the condition has
    ended. 404 for an id that no current alert has and that was never acknowledged."""
    try:
        result = acknowledge(container(), alert_id, body.by, body.note)
    except UnknownAlert as exc:
        raise ApiError(404, str(exc)) from None
    return AcknowledgeAnswer.model_validate(result.view())


@operation(
    bp, "/clm/resume-trading", "POST", summary="Lift the trading halt the CLM set after CRITICAL drift", tag="clm",
    body=ResumeRequest, response=ClmStatus, auth=True,
)  # fmt: skip
def post_resume_trading(body: ResumeRequest) -> ClmStatus:
    ContinuousLearningManager(container()).resume_trading(body.reason)
    return get_clm_status.__wrapped__()  # type: ignore[attr-defined]
