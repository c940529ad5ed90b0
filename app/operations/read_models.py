"""Read-only queries behind the status endpoints and the dashboard (plain dicts out)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.core.db.models import (
    DriftEvent,
    Event,
    ModelRegistry,
    PolicyVersion,
    RetrainingJob,
    RLAgentState,
    RLQValue,
    ShadowTestResult,
    SystemFlag,
)
from app.core.policy import Policy
from app.model_registry.records import ACTIVE, SHADOW, ModelRecord
from app.operations.formatting import duration_axis
from app.operations.schedule import BEAT_FLAG, schedule_view
from app.retraining.jobs import PENDING, RUNNING, JobRecord

RUNNING_STATUSES = (PENDING, RUNNING)
KEY_METRICS = ("directional_accuracy", "accuracy", "f1", "sharpe", "rmse", "calibration_error")
SEVERITY_RANK = {"low": 1, "medium": 2, "high": 3, "critical": 4}


def drift_dict(row: DriftEvent) -> dict[str, Any]:
    return {
        "id": row.id,
        "detected_at": row.detected_at,
        "drift_type": row.drift_type,
        "model_type": row.model_type,
        "feature_name": row.feature_name,
        "p_value": row.p_value,
        "threshold": row.threshold,
        "severity": row.severity,
        "action_taken": row.action_taken,
        "retraining_job_id": row.retraining_job_id,
        "metadata": row.metadata_,
    }


def list_jobs(session: Session, status: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    query = select(RetrainingJob).order_by(RetrainingJob.started_at.desc(), RetrainingJob.job_id.desc())
    if status:
        query = query.where(RetrainingJob.status == status)
    return [JobRecord.from_row(r).public_dict() for r in session.scalars(query.limit(limit))]


def list_models(
    session: Session, model_type: str | None = None, status: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    query = select(ModelRegistry).order_by(ModelRegistry.created_at.desc(), ModelRegistry.model_id)
    if model_type:
        query = query.where(ModelRegistry.model_type == model_type)
    if status:
        query = query.where(ModelRegistry.status == status)
    return [ModelRecord.from_row(r).public_dict() for r in session.scalars(query.limit(limit))]


def list_drift_events(
    session: Session, severity: str | None = None, model_type: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    query = select(DriftEvent).order_by(DriftEvent.detected_at.desc(), DriftEvent.id.desc())
    if severity:
        query = query.where(DriftEvent.severity == severity)
    if model_type:
        query = query.where(DriftEvent.model_type == model_type)
    return [drift_dict(r) for r in session.scalars(query.limit(limit))]


def key_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The few metrics worth a glance; training metrics may nest them under `test`."""
    nested = metrics.get("test")
    source: dict[str, Any] = nested if isinstance(nested, dict) else metrics
    return {k: source[k] for k in KEY_METRICS if isinstance(source.get(k), int | float)}


# --------------------------------------------------------------------------- shadow


def shadow_progress(session: Session, shadow: ModelRegistry, min_samples: int) -> dict[str, Any]:
    """Samples collected and each side's winrate on the closed pairs of one shadow test (one SQL pass)."""
    result = ShadowTestResult
    closed = result.realized_return.is_not(None)

    def taken(direction: Any) -> Any:
        return func.sum(case((closed & (direction != 0), 1), else_=0))

    def won(direction: Any) -> Any:
        return func.sum(case((closed & (direction * result.realized_return > 0), 1), else_=0))

    row = session.execute(
        select(
            func.count(),
            func.count(result.realized_return),
            taken(result.shadow_direction),
            won(result.shadow_direction),
            taken(result.active_direction),
            won(result.active_direction),
            func.max(result.created_at),
        ).where(result.shadow_model_id == shadow.model_id)
    ).one()
    predictions, samples, shadow_taken, shadow_won, active_taken, active_won, last_sample = row
    return {
        "model_id": shadow.model_id,
        "model_type": shadow.model_type,
        "version": shadow.version,
        "started_at": shadow.created_at,
        "predictions": int(predictions),
        "samples": int(samples),
        "target_samples": min_samples,
        "progress_pct": round(100.0 * min(1.0, int(samples) / max(1, min_samples)), 1),
        "shadow_winrate": int(shadow_won) / int(shadow_taken) if shadow_taken else None,
        "active_winrate": int(active_won) / int(active_taken) if active_taken else None,
        "last_sample_at": last_sample,
    }


def shadow_pnl_series(session: Session, max_points: int = 400) -> list[dict[str, Any]]:
    """Cumulative PnL (direction x realized return) of shadow and active in the newest shadow test.

    Summed by the database (window functions) and thinned to at most `max_points` points.
    """
    shadow_id = session.scalar(
        select(ShadowTestResult.shadow_model_id)
        .where(ShadowTestResult.realized_return.is_not(None))
        .order_by(ShadowTestResult.id.desc())
        .limit(1)
    )
    if shadow_id is None:
        return []
    result = ShadowTestResult
    order = (result.timestamp, result.id)
    running = (
        select(
            result.timestamp.label("t"),
            func.sum(func.coalesce(result.active_direction, 0) * result.realized_return)
            .over(order_by=order)
            .label("a"),
            func.sum(func.coalesce(result.shadow_direction, 0) * result.realized_return)
            .over(order_by=order)
            .label("s"),
            func.row_number().over(order_by=order).label("n"),
        )
        .where(result.shadow_model_id == shadow_id, result.realized_return.is_not(None))
        .subquery()
    )
    total = session.scalar(select(func.count()).select_from(running)) or 0
    step = max(1, -(-total // max_points))
    rows = session.execute(
        select(running.c.t, running.c.a, running.c.s)
        .where(((running.c.n - 1) % step == 0) | (running.c.n == total))
        .order_by(running.c.n)
    ).all()
    points = [{"t": t.isoformat(), "active": round(a, 6), "shadow": round(s_, 6)} for t, a, s_ in rows]
    return [{"shadow_model_id": shadow_id, "points": points}]


# --------------------------------------------------------------------------- RL, drift, schedule


def rl_agents(session: Session) -> list[dict[str, Any]]:
    agents = []
    for state in session.scalars(select(RLAgentState).order_by(RLAgentState.rl_type)):
        table_states = session.scalar(
            select(func.count(func.distinct(RLQValue.state_key))).where(
                RLQValue.rl_type == state.rl_type, RLQValue.version == state.version
            )
        )
        agents.append(
            {
                "rl_type": state.rl_type,
                "version": state.version,
                "states": int(table_states or 0),
                "total_updates": state.total_updates,
                "epsilon": state.epsilon,
                "updated_at": state.updated_at,
            }
        )
    return agents


def schedule_status(session: Session, policy: Policy) -> dict[str, Any]:
    """The beat schedule: each entry's interval, last and next run as beat last reported them."""
    flag = session.get(SystemFlag, BEAT_FLAG)
    return schedule_view(policy, flag.value if flag is not None else None, utcnow())


def drift_status(session: Session, lookback: timedelta) -> dict[str, Any]:
    now = utcnow()
    # The newest 200 events' times and severities (no JSON metadata: the status is read once an hour
    # by the engine and at every dashboard refresh), and the newest one in full.
    recent = session.execute(
        select(DriftEvent.detected_at, DriftEvent.severity)
        .order_by(DriftEvent.detected_at.desc(), DriftEvent.id.desc())
        .limit(200)
    ).all()
    window = [severity for detected_at, severity in recent if detected_at >= now - lookback]
    worst = max(window, key=lambda s: SEVERITY_RANK.get(s, 0), default=None)
    flag = session.get(SystemFlag, "last_drift_check")  # written by app/clm/drift_check.py
    last_check = _flag_time(flag) if flag is not None else None
    if last_check is None:
        last_check = session.scalar(select(func.max(Event.created_at)).where(Event.topic.like("drift.check%")))
    record = (flag.value or {}) if flag is not None else {}
    checked, not_checked = record.get("checked"), record.get("not_checked") or {}
    if worst is not None:
        status = f"{worst.upper()} DRIFT"
    elif last_check is None:
        status = "NOT CHECKED YET"
    elif checked == []:  # the last check ran but looked at nothing (older records lack the key)
        status = "NOTHING CHECKED"
    else:
        status = "NO DRIFT DETECTED"
    return {
        "status": status,
        "worst_severity": worst,
        "events_in_window": len(window),
        "last_check": last_check,
        "checked": checked,
        "not_checked": not_checked,
        "reason": record.get("reason") if last_check is not None else "no drift check has run",
        "last_event": list_drift_events(session, limit=1)[0] if recent else None,
    }


def _flag_time(flag: SystemFlag) -> datetime | None:
    value = (flag.value or {}).get("at")
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return flag.updated_at
    return flag.updated_at


def retraining_status(session: Session, policy: Policy) -> dict[str, Any]:
    running = session.scalars(
        select(RetrainingJob)
        .where(RetrainingJob.status.in_(RUNNING_STATUSES))
        .order_by(RetrainingJob.started_at.desc())
        .limit(5)
    ).all()
    last_done = session.scalars(
        select(RetrainingJob)
        .where(RetrainingJob.status.not_in(RUNNING_STATUSES), RetrainingJob.job_type != "rl_maintenance")
        .order_by(RetrainingJob.completed_at.desc().nulls_last(), RetrainingJob.started_at.desc())
        .limit(1)
    ).first()
    last_full_start = session.scalar(select(func.max(RetrainingJob.started_at)).where(RetrainingJob.job_type == "full"))
    clm = policy.clm_config
    if not clm.enabled:
        next_at: datetime | None = None
    elif last_full_start is None:
        next_at = None  # never retrained: due at the next beat tick
    else:
        next_at = last_full_start + timedelta(days=clm.schedule_interval_days)
    return {
        "state": "RUNNING" if running else "IDLE",
        "running_jobs": [JobRecord.from_row(r).public_dict() for r in running],
        "last": JobRecord.from_row(last_done).public_dict() if last_done else None,
        "next_scheduled": next_at,
        "due_now": clm.enabled and (next_at is None or next_at <= utcnow()),
        "schedule_enabled": clm.enabled,
        "interval_days": clm.schedule_interval_days,
    }


def market_regimes(session: Session) -> dict[str, dict[str, Any]]:
    """The regime of each symbol and of the market index (`MARKET`), as the regime detection beat task left it."""
    flags = session.scalars(select(SystemFlag).where(SystemFlag.name.like("regime:%")).order_by(SystemFlag.name))
    return {
        flag.name.removeprefix("regime:"): {
            "regime": (flag.value or {}).get("current"),
            "candidate": (flag.value or {}).get("candidate"),
            "updated_at": flag.updated_at.isoformat() if flag.updated_at else None,
        }
        for flag in flags
    }


def clm_status(session: Session, policy: Policy) -> dict[str, Any]:
    """What the CLM dashboard shows, read straight from the tables."""
    models: dict[str, dict[str, Any]] = {}
    live = session.scalars(
        select(ModelRegistry).where(ModelRegistry.status.in_((ACTIVE, SHADOW))).order_by(ModelRegistry.model_type)
    ).all()
    for row in live:
        entry = models.setdefault(row.model_type, {"active": None, "shadow": None})
        record = ModelRecord.from_row(row)
        entry[row.status.lower()] = record.public_dict() | {"key_metrics": key_metrics(record.metrics)}
    min_samples = policy.clm_config.auto_promote_threshold.min_samples
    shadows = [shadow_progress(session, r, min_samples) for r in live if r.status == SHADOW]
    lookback = timedelta(hours=policy.clm_config.drift_detection.check_interval_hours * 4)
    halted = session.get(SystemFlag, "trading_halted")
    return {
        "trading_halted": {"halted": bool(halted and halted.enabled), **((halted.value or {}) if halted else {})},
        "retraining": retraining_status(session, policy),
        "models": models,
        "shadow_tests": shadows,
        "rl_agents": rl_agents(session),
        "regimes": market_regimes(session),
        "drift": drift_status(session, lookback),
        "schedule": schedule_status(session, policy),
        "recent_jobs": list_jobs(session, limit=10),
        "policy_version": session.scalar(select(func.max(PolicyVersion.version))) or 0,
    }


def chart_data(session: Session) -> dict[str, Any]:
    """Series for the dashboard's charts."""
    drift = session.execute(
        select(DriftEvent.detected_at, DriftEvent.p_value, DriftEvent.severity, DriftEvent.feature_name)
        .where(DriftEvent.p_value.is_not(None))
        .order_by(DriftEvent.detected_at.desc())
        .limit(500)
    ).all()
    jobs = session.scalars(
        select(RetrainingJob)
        .where(RetrainingJob.duration_seconds.is_not(None))
        .order_by(RetrainingJob.started_at.desc())
        .limit(30)
    ).all()
    durations = [{"job_id": j.job_id, "seconds": j.duration_seconds, "status": j.status} for j in reversed(jobs)]
    return {
        "shadow_pnl": shadow_pnl_series(session),
        "drift_pvalues": [{"t": t.isoformat(), "p": p, "severity": s, "feature": f} for t, p, s, f in reversed(drift)],
        "job_durations": durations,
        "job_duration_axis": duration_axis(max((j.duration_seconds or 0 for j in jobs), default=0)),
    }
