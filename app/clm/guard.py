"""No storms: one retraining per model type at a time, and none within the cooldown; and an
automatic one (scheduled, drift, performance) leaves a model type alone while its young SHADOW
model is being tested (`clm_config.shadow_patience_days`), so that the test can decide.

Every trigger goes through `request_retraining`, which holds a lock (a PostgreSQL
advisory lock across processes, a thread lock in the process) while it looks for running
or recent jobs of the requested model types and starts a job for the rest. A trigger that
starts nothing is recorded as a `clm.retraining.suppressed` event naming the job that
blocked it.

An operator's request (`POST /api/jobs/retraining`) goes through `request_manual_retraining`:
the same lock and the same blocking jobs, but all or nothing: while any requested type is
blocked nothing starts (the API answers 409 naming the jobs), unless the request says
`force: true`, which is recorded on the job it starts (`metadata.forced_over`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text

from app.core.clock import utcnow
from app.core.db.models import ModelRegistry as ModelRow
from app.core.db.models import RetrainingJob
from app.core.topics import RetrainingSuppressed
from app.model_registry import SHADOW
from app.retraining import RetrainingOrchestrator
from app.retraining.jobs import CANCELLED, RUNNING
from app.retraining.spec import RetrainingSpec
from app.retraining.window import choose_window

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from app.core.container import Container

_ADVISORY_KEY = 0x514C4D01  # "QLM\x01": the CLM's trigger lock
_thread_lock = threading.RLock()


@dataclass(frozen=True)
class TriggerDecision:
    job_id: str | None  # the job started, or None when suppressed
    started: bool
    model_types: list[str]  # what the started job trains
    blocked_by: dict[str, str] = field(default_factory=dict)  # model type -> blocking job id
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "started": self.started,
            "model_types": self.model_types,
            "blocked_by": self.blocked_by,
            "reason": self.reason,
        }


@contextmanager
def trigger_lock(container: Container) -> Iterator[None]:
    with _thread_lock:
        if container.engine.dialect.name != "postgresql":
            yield
            return
        with container.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _ADVISORY_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _ADVISORY_KEY})
                conn.commit()


def blocking_jobs(container: Container, model_types: list[str], cooldown: timedelta) -> dict[str, str]:
    """Model type -> id of a job that is running, or started within `cooldown`, for it."""
    since = utcnow() - cooldown
    query = select(RetrainingJob).where(
        RetrainingJob.job_type.in_(("full", "partial")),
        RetrainingJob.status != CANCELLED,
        (RetrainingJob.status == RUNNING) | (RetrainingJob.started_at >= since),
    )
    blocked: dict[str, str] = {}
    with container.session_factory() as session:
        for job in session.scalars(query.order_by(RetrainingJob.started_at.desc())):
            for model_type in job.model_types or []:
                if model_type in model_types:
                    blocked.setdefault(model_type, job.job_id)
    return blocked


def shadows_under_test(container: Container, model_types: list[str], patience: timedelta) -> dict[str, str]:
    """Model type -> the job whose model of that type is SHADOW and was registered within `patience`."""
    since = utcnow() - patience
    query = (
        select(ModelRow.model_type, ModelRow.job_id, ModelRow.model_id)
        .where(ModelRow.status == SHADOW, ModelRow.created_at >= since, ModelRow.model_type.in_(model_types))
        .order_by(ModelRow.created_at.desc())
    )
    out: dict[str, str] = {}
    with container.session_factory() as session:
        for model_type, job_id, model_id in session.execute(query):
            out.setdefault(model_type, job_id or model_id)
    return out


def request_retraining(
    container: Container,
    model_types: list[str] | None,
    reason: str,
    trigger: dict[str, Any] | None = None,
    *,
    automatic: bool = False,
) -> TriggerDecision:
    """Start a retraining of `model_types` (None: a full one) unless a storm guard says no;
    `automatic` (the schedule, a drift or performance reaction) also waits for young shadow tests."""

    policy = container.policy_store.get()
    full = model_types is None
    wanted = list(policy.training.model_types) if model_types is None else list(dict.fromkeys(model_types))
    cooldown = timedelta(hours=policy.clm_config.retraining_cooldown_hours)
    orchestrator = RetrainingOrchestrator(container)
    patience = timedelta(days=policy.clm_config.shadow_patience_days)
    with trigger_lock(container):
        blocked = blocking_jobs(container, wanted, cooldown)
        if automatic and patience > timedelta(0):
            testing = shadows_under_test(container, [m for m in wanted if m not in blocked], patience)
            if testing:
                log.info("%s: leaving %s alone, their shadow tests run (jobs %s)", reason, sorted(testing), testing)
            blocked |= testing
        remaining = [m for m in wanted if m not in blocked]
        if not remaining:
            with container.session() as session:
                container.bus.publish(
                    session,
                    RetrainingSuppressed(reason=reason, model_types=wanted, blocked_by=blocked, trigger=trigger or {}),
                )
            return TriggerDecision(
                None, False, [], blocked, "a job for these models is running or in cooldown, or their shadow test runs"
            )
        spec = RetrainingSpec.create(policy, None if full and not blocked else remaining, reason)
        if trigger and trigger.get("drift_type"):
            spec = drift_window_spec(container, spec, trigger)
            if spec.window is not None and spec.window.deferred:
                waiting = f"waiting for the new market: {spec.window.reason}"
                with container.session() as session:
                    container.bus.publish(
                        session,
                        RetrainingSuppressed(reason=waiting, model_types=wanted, blocked_by={}, trigger=trigger),
                    )
                log.info("%s retraining not started: %s", reason, spec.window.reason)
                return TriggerDecision(None, False, [], {}, waiting)
        job_id = orchestrator.start(spec)
    return TriggerDecision(job_id, True, remaining, blocked, reason)


def drift_window_spec(container: Container, spec: RetrainingSpec, trigger: dict[str, Any]) -> RetrainingSpec:
    """`spec` with the training window a drift chose (`app/retraining/window.py`), recorded on it."""
    policy = container.policy_store.get()
    end = spec.data.end or utcnow()
    findings = trigger.get("check_event_ids") or [trigger.get("drift_event_id")]
    window = choose_window(container, policy, end, [int(i) for i in findings if i is not None])
    data = spec.data.stored() | ({"start": window.read_from or window.start} if window.start is not None else {})
    types = None if spec.job_type == "full" else spec.model_types
    return RetrainingSpec.create(policy, types, spec.reason, data, window=window)


def request_manual_retraining(container: Container, spec: RetrainingSpec, *, force: bool = False) -> TriggerDecision:
    """An operator's retraining (a spec validated at the edge): started only when none of its
    model types is blocked (running or in cooldown), or with `force`, which records the jobs
    it overrode on the new job (`forced_over`)."""
    policy = container.policy_store.get()
    wanted = list(spec.model_types)
    cooldown = timedelta(hours=policy.clm_config.retraining_cooldown_hours)
    with trigger_lock(container):
        blocked = blocking_jobs(container, wanted, cooldown)
        if blocked and not force:
            return TriggerDecision(None, False, [], blocked, "a job for these models is running or in cooldown")
        job_id = RetrainingOrchestrator(container).start(spec, forced_over=blocked if force else None)
    return TriggerDecision(job_id, True, wanted, blocked, spec.reason)
