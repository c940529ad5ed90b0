"""The trading halt: set by a CRITICAL drift, lifted by an operator or, as the policy's
`clm_config.trading_halt` allows, by itself once its reason is gone.

- `resume_on_promotion`: a model promoted to ACTIVE whose retraining job started at or after
  the halt began was trained on the market the halt was about; its promotion lifts the halt.
  A model trained before the halt (a shadow test that ends during it) does not.
- `max_hours`: the hourly health check (`ModelSupervisor.check_all_models`) lifts a halt this
  old; None: never by age.

The halt begins at its first `halt_trading` since the last resume: a CRITICAL drift while
halted updates the reason, not the start (`at`; the latest is `last_at`), as
`app.simulation.counterfactual.halted_mask` counts it. Every resume, the operator's and the
automatic ones, sets the same flag and publishes the same `clm.trading.resumed`, its reason
saying who or why ("auto: ...").
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.core.db.models import ModelRegistry, RetrainingJob, SystemFlag
from app.core.system import TradingHalt, halt_of, set_flag
from app.core.topics import ModelPromoted, TradingHalted, TradingResumed
from app.model_registry.records import ACTIVE

if TYPE_CHECKING:
    from app.core.container import Container

log = logging.getLogger(__name__)

HALT_FLAG = "trading_halted"


def halt_trading(
    container: Container, reason: str, details: dict[str, Any] | None = None, at: datetime | None = None
) -> None:
    """Set the halt (`at`: when it began, default now; a halt in force keeps its start)."""
    now = utcnow()
    with container.session() as session:
        current = _locked_halt(session)
        since = current.since if current is not None and current.since is not None else (at or now)
        value = {**(details or {}), "reason": reason, "at": since.isoformat(), "last_at": now.isoformat()}
        set_flag(session, HALT_FLAG, True, value)
        container.bus.publish(session, TradingHalted(reason=reason))


def resume_trading(container: Container, reason: str = "operator") -> None:
    """Lift the halt (the operator's: always; resuming twice is resuming once, with two events)."""
    with container.session() as session:
        _resume(container, session, reason)


def resume_after_promotion(container: Container, event: dict[str, Any]) -> str | None:
    """Handler side of `model.promoted`: lift the halt when the promoted model was retrained after it
    began (policy `resume_on_promotion`). Returns the resume's reason, or None when nothing was lifted."""
    if not container.policy_store.get().clm_config.trading_halt.resume_on_promotion:
        return None
    promoted = ModelPromoted.from_event(event)
    if promoted.new_status != ACTIVE:
        return None
    with container.session() as session:
        halt = _locked_halt(session)
        if halt is None or halt.since is None:
            return None
        job_id = promoted.job_id or session.scalar(
            select(ModelRegistry.job_id).where(ModelRegistry.model_id == promoted.model_id)
        )
        started = (
            session.scalar(select(RetrainingJob.started_at).where(RetrainingJob.job_id == job_id)) if job_id else None
        )
        if started is None or started < halt.since:
            log.info(
                "%s promoted during the trading halt but trained before it (job %s, started %s; halt since %s): "
                "the halt stays",
                promoted.model_id,
                job_id,
                started,
                halt.since,
            )
            return None
        reason = (
            f"auto: {promoted.model_type} v{promoted.version}, retrained after the halt "
            f"(job {job_id}, started {started.isoformat(timespec='minutes')}; "
            f"halt since {halt.since.isoformat(timespec='minutes')}), promoted"
        )
        _resume(container, session, reason)
    return reason


def lift_stale_halt(container: Container, now: datetime | None = None) -> str | None:
    """The hourly check of policy `max_hours`: lift a halt that old. None (the default) reads nothing;
    otherwise one flag read. Returns the resume's reason, or None when nothing was lifted."""
    max_hours = container.policy_store.get().clm_config.trading_halt.max_hours
    if max_hours is None:
        return None
    now = now or utcnow()
    with container.session() as session:
        halt = _locked_halt(session)
        if halt is None or halt.since is None or now - halt.since < timedelta(hours=max_hours):
            return None
        reason = f"auto: halt older than {max_hours:g} h (policy max_hours)"
        _resume(container, session, reason)
    return reason


def _locked_halt(session: Session) -> TradingHalt | None:
    """The halt in force, its flag row locked until the transaction ends (PostgreSQL; SQLite serialises writers)."""
    flag = session.get(SystemFlag, HALT_FLAG, with_for_update=True)
    if flag is None or not flag.enabled:
        return None
    return halt_of(flag.value, flag.updated_at)


def _resume(container: Container, session: Session, reason: str) -> None:
    set_flag(session, HALT_FLAG, False, {"resumed_by": reason, "at": utcnow().isoformat()})
    container.bus.publish(session, TradingResumed(reason=reason))
    log.info("trading resumed: %s", reason)
