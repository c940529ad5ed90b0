"""ContinuousLearningManager: the specification's API and reaction table.

| event | reaction |
|---|---|
| `drift.detected` LOW | alert only (the alert module shows it) |
| `drift.detected` MEDIUM | partial retraining of the affected model type (all, if the finding names none) |
| `drift.detected` HIGH | full retraining |
| `drift.detected` CRITICAL | full retraining and trading halted (`trading_halted` flag, `clm.trading.halted`) |
| `model.promoted` | `clm.model.promoted`; lifts a halt the model was retrained after (`app.clm.halt`) |
| `model.performance.degraded` | partial retraining of that model type |
| `regime.changed` of the market index | RL agents reset when `rl_maintenance.reset_on_regime_change` |
| `shadow.promotion.recommended` | nothing: it reports a decision already carried out (`app.shadow_tester.promotion`) |

Every retraining goes through the storm guard (`app.clm.guard`): while a job for a model
type runs, or within `retraining_cooldown_hours`, further triggers are recorded and start nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from app.clm import halt
from app.clm.guard import TriggerDecision, request_retraining
from app.core.clock import utcnow
from app.core.db.models import DriftEvent, ModelRegistry, RetrainingJob
from app.core.system import get_flag
from app.core.topics import (
    ClmModelPromoted,
    ClmRLReset,
    DriftDetected,
    ModelPromoted,
    PerformanceDegraded,
    RegimeChanged,
    TopicEvent,
)
from app.drift_detector.service import follows_lead
from app.model_registry.records import ACTIVE, SHADOW
from app.regime_detector.market import MARKET
from app.retraining import RetrainingOrchestrator
from app.retraining.jobs import COMPLETED, PARTIAL, RUNNING
from app.rl.meta_strategy import RLMetaStrategy
from app.rl.position_sizing import RLPositionSizing

if TYPE_CHECKING:
    from app.core.container import Container

log = logging.getLogger(__name__)

SEVERITY_ACTION = {
    "LOW": "alert_sent",
    "MEDIUM": "partial_retraining",
    "HIGH": "full_retraining",
    "CRITICAL": "full_retraining",
}


class ContinuousLearningManager:
    def __init__(self, container: Container) -> None:
        self.container = container

    # ----------------------------------------------------------------- scheduler

    def start_scheduler(self) -> None:
        """Enable the CLM's periodic work; beat (and the simulated beat) follow the policy."""
        self.container.policy_store.update({"clm_config": {"enabled": True}}, author="clm", comment="start_scheduler")

    def stop_scheduler(self) -> None:
        """Disable the CLM's periodic work: beat drops the entries at its next policy sync."""
        self.container.policy_store.update({"clm_config": {"enabled": False}}, author="clm", comment="stop_scheduler")

    # ----------------------------------------------------------------- triggers

    def trigger_full_retraining(self, reason: str = "manual") -> str | None:
        """Start a full retraining; returns its job id, or None when the storm guard refused."""
        return request_retraining(self.container, None, reason).job_id

    def trigger_partial_retraining(self, model_types: list[str], reason: str = "manual") -> str | None:
        return request_retraining(self.container, list(model_types), reason).job_id

    # ----------------------------------------------------------------- reactions

    def handle_drift_event(self, event: dict[str, Any]) -> TriggerDecision | None:
        """React to a drift check: once, on its lead event (`check_lead_event_id`). A check
        publishes one event per drifted feature, all with the check's severity and model type;
        the lead marks the others `same_check` instead of each asking the storm guard again."""

        payload = DriftDetected.from_event(event)
        if follows_lead(payload):
            return None
        # A CRITICAL drift's halt begins before the retraining it starts, so that the job counts as
        # retrained after the halt (its promotion may lift it: `app.clm.halt`).
        received = utcnow()
        others = [i for i in payload.check_event_ids or [] if i != payload.drift_event_id]
        if others:
            self._mark_same_check(others)
        severity = payload.severity.upper()
        if severity not in SEVERITY_ACTION:
            log.warning("drift event with unknown severity %r ignored", severity)
            return None
        decision: TriggerDecision | None = None
        if severity == "MEDIUM":
            types = [payload.model_type] if payload.model_type else None
            decision = request_retraining(
                self.container, types, "drift_medium", _trigger(event, payload), automatic=True
            )
        elif severity in ("HIGH", "CRITICAL"):
            decision = request_retraining(
                self.container, None, f"drift_{severity.lower()}", _trigger(event, payload), automatic=True
            )
        if severity == "CRITICAL":
            self.halt_trading(f"CRITICAL {payload.drift_type} drift", payload.payload(), at=received)
        self._record_action(payload.drift_event_id, severity, decision)
        return decision

    def handle_performance_alert(self, event: dict[str, Any]) -> TriggerDecision | None:
        payload = PerformanceDegraded.from_event(event)
        model_type = payload.model_type
        if not model_type and payload.model_id:
            with self.container.session_factory() as session:
                model_type = session.scalar(
                    select(ModelRegistry.model_type).where(ModelRegistry.model_id == payload.model_id)
                )
        if not model_type:
            log.warning("performance alert without a model type ignored: %s", payload)
            return None
        return request_retraining(
            self.container, [model_type], "performance_degradation", _trigger(event, payload), automatic=True
        )

    def handle_regime_change(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """Reset both RL agents (old tables archived) when the policy says so.

        Only the market index's regime resets them: it is the regime in the agents' states;
        a single symbol's change is reported (status, metrics) but starts no new tables."""

        payload = RegimeChanged.from_event(event)
        if payload.symbol != MARKET:
            return None
        if not self.container.policy_store.get().clm_config.rl_maintenance.reset_on_regime_change:
            return None
        reason = f"regime_change:{payload.old}->{payload.new}"
        results = {}
        for name, agent in (("meta", RLMetaStrategy(self.container)), ("sizing", RLPositionSizing(self.container))):
            reset = agent.reset_on_regime_shift(reason=reason)
            results[name] = (
                None if reset is None else {"old_version": reset.old_version, "new_version": reset.new_version}
            )
        with self.container.session() as session:
            self.container.bus.publish(session, ClmRLReset(reason=reason, agents=results))
        return results

    def on_model_promoted(self, event: dict[str, Any]) -> None:
        promoted = ModelPromoted.from_event(event)
        with self.container.session() as session:
            self.container.bus.publish(session, ClmModelPromoted(**promoted.model_dump()))
        halt.resume_after_promotion(self.container, event)

    # ----------------------------------------------------------------- trading halt

    def halt_trading(self, reason: str, details: dict[str, Any] | None = None, at: datetime | None = None) -> None:
        """Halt trading (`at`: when the halt began, default now; a halt in force keeps its start)."""
        halt.halt_trading(self.container, reason, details, at)

    def resume_trading(self, reason: str = "operator") -> None:
        halt.resume_trading(self.container, reason)

    def trading_halted(self) -> bool:
        with self.container.session_factory() as session:
            flag = get_flag(session, "trading_halted")
            return bool(flag and flag.enabled)

    # ----------------------------------------------------------------- status

    def get_status(self) -> dict[str, Any]:
        """Current jobs, last retraining, next scheduled, active and shadow models, RL versions."""

        policy = self.container.policy_store.get()
        with self.container.session_factory() as session:
            running = session.scalars(select(RetrainingJob).where(RetrainingJob.status == RUNNING)).all()
            last = session.scalars(
                select(RetrainingJob)
                .where(RetrainingJob.status.in_((COMPLETED, PARTIAL)), RetrainingJob.job_type != "rl_maintenance")
                .order_by(RetrainingJob.completed_at.desc())
                .limit(1)
            ).first()
            last_full = session.scalars(
                select(RetrainingJob)
                .where(RetrainingJob.job_type == "full")
                .order_by(RetrainingJob.started_at.desc())
                .limit(1)
            ).first()
            models = session.scalars(select(ModelRegistry).where(ModelRegistry.status.in_((ACTIVE, SHADOW)))).all()
            halted = get_flag(session, "trading_halted")
            last_check = get_flag(session, "last_drift_check")
        interval = timedelta(days=policy.clm_config.schedule_interval_days)
        rl_versions = {}
        for name, agent in (("meta", RLMetaStrategy(self.container)), ("sizing", RLPositionSizing(self.container))):
            try:
                rl_versions[name] = agent.status().get("version")
            except Exception as exc:  # an agent never used has no state yet
                rl_versions[name] = None
                log.debug("RL status of %s unavailable: %s", name, exc)
        return {
            "scheduler_enabled": policy.clm_config.enabled,
            "current_jobs": [{"job_id": j.job_id, "stage": j.stage, "progress_pct": j.progress_pct} for j in running],
            "last_retraining": last.completed_at.isoformat() if last and last.completed_at else None,
            "next_scheduled": (last_full.started_at + interval).isoformat() if last_full else None,
            "active_models": {m.model_type: f"v{m.version}" for m in models if m.status == ACTIVE},
            "shadow_models": {m.model_type: f"v{m.version}" for m in models if m.status == SHADOW},
            "rl_versions": rl_versions,
            "trading_halted": bool(halted and halted.enabled),
            "last_drift_check": (last_check.value or {}).get("at") if last_check else None,
        }

    def get_retraining_history(self, limit: int = 20) -> list[dict[str, Any]]:
        return [job.to_dict() for job in RetrainingOrchestrator(self.container).list_jobs(limit=limit)]

    # ----------------------------------------------------------------- bookkeeping

    def _mark_same_check(self, drift_event_ids: list[int]) -> None:
        with self.container.session() as session:
            session.execute(
                update(DriftEvent)
                .where(DriftEvent.id.in_([int(i) for i in drift_event_ids]), DriftEvent.action_taken.is_(None))
                .values(action_taken="same_check")
            )

    def _record_action(self, drift_event_id: Any, severity: str, decision: TriggerDecision | None) -> None:
        if not drift_event_id:
            return
        if decision is None:
            action, job_id = SEVERITY_ACTION[severity], None
        elif decision.started:
            action, job_id = "retraining_triggered", decision.job_id
        elif decision.blocked_by:
            action, job_id = "suppressed", next(iter(decision.blocked_by.values()), None)
        else:  # a drift-started retraining waiting for rows after the change point
            action, job_id = "waiting", None
        with self.container.session() as session:
            row = session.get(DriftEvent, int(drift_event_id))
            if row is not None:
                row.action_taken = action
                row.retraining_job_id = job_id


def _trigger(event: dict[str, Any], payload: TopicEvent) -> dict[str, Any]:
    fields = type(payload).model_fields
    return {
        "event_id": event.get("id"),
        "topic": event.get("topic"),
        **{k: getattr(payload, k) for k in ("severity", "model_type", "drift_type") if k in fields},
        # A drift check's findings: the training window is searched on the features they name.
        **{k: getattr(payload, k) for k in ("drift_event_id", "check_event_ids") if k in fields},
    }


# Handler-table entry points: (container, event).
def on_drift_detected(container: Container, event: dict[str, Any]) -> None:
    ContinuousLearningManager(container).handle_drift_event(event)


def on_performance_degraded(container: Container, event: dict[str, Any]) -> None:
    ContinuousLearningManager(container).handle_performance_alert(event)


def on_regime_changed(container: Container, event: dict[str, Any]) -> None:
    ContinuousLearningManager(container).handle_regime_change(event)


def on_model_promoted(container: Container, event: dict[str, Any]) -> None:
    ContinuousLearningManager(container).on_model_promoted(event)
