"""The story's milestones, checked from the database: did each step of scenarios 1 and 2 happen?

Read from the `events`, `model_registry`, `retraining_jobs`, `rl_versions` and `rl_decisions` tables only
(never from printed text), so the end-to-end test asserts the same facts the report shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, select

from app.core.db.models import Event, ModelRegistry, ModelStatusHistory, RetrainingJob, RLDecision, RLVersion
from app.model_registry.records import ACTIVE, REJECTED, SHADOW
from app.retraining.jobs import REGISTERED, TRAINED
from app.simulation.counterfactual import live_against_frozen

if TYPE_CHECKING:
    from app.core.container import Container

SHIFT_SEEN = timedelta(days=1)


@dataclass
class Story:
    initial_active: dict[str, str]  # model type -> model id of its first ACTIVE version
    first_drift_at: datetime | None
    drift_before_shift: list[dict[str, Any]]  # (time, worst severity) of checks with findings before it
    drift_after_shift_at: datetime | None
    retraining_after_drift: dict[str, Any] | None  # the first job triggered by drift after the shift
    shadow_tests_started: list[str]  # shadow model ids
    promoted: list[str]  # model ids promoted from SHADOW
    rejected: list[str]
    regime_changes: list[dict[str, Any]]
    rl_resets: list[dict[str, Any]]
    archived_rl_versions: list[dict[str, Any]]
    jobs: list[dict[str, Any]] = field(default_factory=list)
    # rl_decisions (served over the API): rl_type -> (decided, applied by a trade, halted, halted yet allowed)
    rl_decisions: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    # Issue 17: models promoted from SHADOW after the first post-shift drift, and the live
    # models' book against the frozen first models' on the same post-shift candles.
    promoted_after_drift: list[str] = field(default_factory=list)
    post_shift: dict[str, Any] | None = None

    def checks(self) -> list[tuple[str, bool, str]]:
        """(step, happened, detail) for each step of the two scenarios."""
        job = self.retraining_after_drift
        trained = [m for m, e in (job or {}).get("models", {}).items() if e.get("status") in (TRAINED, REGISTERED)]
        return [
            (
                "initial training: every model type has an ACTIVE first version",
                len(self.initial_active) >= 4,
                ", ".join(f"{m} {i}" for m, i in sorted(self.initial_active.items())),
            ),
            (
                "drift found after the injected shift (a day or more of shifted candles in the window)",
                self.drift_after_shift_at is not None,
                (f"first at {self.drift_after_shift_at}" if self.drift_after_shift_at else "none")
                + f"; before the shift {len(self.drift_before_shift)} check(s) found drift"
                + (
                    f" (worst {max((d['severity'] for d in self.drift_before_shift), key=_severity_rank)})"
                    if self.drift_before_shift
                    else ""
                ),
            ),
            (
                "a retraining job started by the drift",
                job is not None,
                f"{job['job_id']} ({job['reason']}, {job['status']}; trained {', '.join(trained) or 'none'})"
                if job
                else "none",
            ),
            (
                "new models shadow-tested",
                bool(self.shadow_tests_started),
                f"{len(self.shadow_tests_started)} shadow test(s)",
            ),
            (
                "shadow decision by the policy (promoted or rejected)",
                bool(self.promoted or self.rejected),
                f"promoted {self.promoted or 'none'}, rejected {self.rejected or 'none'}",
            ),
            (
                "a model retrained after the drift was promoted",
                bool(self.promoted_after_drift),
                ", ".join(self.promoted_after_drift) or "none promoted after the drift",
            ),
            (
                "after the shift the live models beat the frozen first models on the same candles (Sharpe after fees)",
                self._recovered(),
                self._post_shift_detail(),
            ),
            (
                "regime change detected",
                bool(self.regime_changes),
                "; ".join(f"{r['time']:%m-%d %H:%M} {r['old']}->{r['new']}" for r in self.regime_changes) or "none",
            ),
            (
                "RL decisions served over the API, each applied once by the trade that followed it",
                all(self.rl_decisions.get(t, (0, 0, 0, 0))[1] > 0 for t in ("meta_strategy", "position_sizing")),
                "; ".join(f"{t} {d} decided, {a} applied" for t, (d, a, _, _) in sorted(self.rl_decisions.items()))
                or "none",
            ),
            (
                "no sizing decision allowed a trade while trading was halted",
                self.rl_decisions.get("position_sizing", (0, 0, 0, 0))[3] == 0,
                f"{self.rl_decisions.get('position_sizing', (0, 0, 0, 0))[2]} sizing decision(s) refused while halted"
                + ("" if self.rl_decisions.get("position_sizing", (0, 0, 0, 0))[2] else " (no halt in this run)"),
            ),
            (
                "RL agents reset with their old tables archived",
                bool(self.rl_resets) and bool(self.archived_rl_versions),
                f"{len(self.rl_resets)} reset event(s), {len(self.archived_rl_versions)} archived table(s)",
            ),
        ]

    def _recovered(self) -> bool:
        figures = self.post_shift or {}
        live, frozen = figures.get("live"), figures.get("frozen")
        return bool(live and frozen and live["sharpe"] > frozen["sharpe"])

    def _post_shift_detail(self) -> str:
        figures = self.post_shift or {}
        if "live" not in figures:
            return str(figures.get("reason") or "no shift in this run")
        return (
            "; ".join(
                f"{name} Sharpe {figures[name]['sharpe']:+.2f}, net {100 * figures[name]['net_pnl']:+.2f} %, "
                f"hit rate {figures[name]['hit_rate']:.3f}"
                for name in ("live", "frozen")
            )
            + f" (from {figures['since']}, {figures['live']['rows']} rows)"
        )


def read_story(container: Container, shift_at: datetime | None) -> Story:
    with container.session_factory() as session:
        events = session.execute(
            select(Event.topic, Event.created_at, Event.payload)
            .where(Event.topic.in_(("drift.detected", "regime.changed", "rl.meta.reset", "rl.sizing.reset")))
            .order_by(Event.id)
        ).all()
        models = session.scalars(select(ModelRegistry).order_by(ModelRegistry.created_at, ModelRegistry.model_id)).all()
        jobs = session.scalars(select(RetrainingJob).order_by(RetrainingJob.started_at, RetrainingJob.job_id)).all()
        archived = session.scalars(select(RLVersion).where(RLVersion.archived_at.is_not(None))).all()
        shadow_started = session.scalars(
            select(Event.payload).where(Event.topic == "shadow.testing.started").order_by(Event.id)
        ).all()
        history = _status_history(session)
        activated = session.execute(
            select(ModelStatusHistory.model_id, ModelStatusHistory.changed_at).where(
                ModelStatusHistory.new_status == ACTIVE
            )
        ).all()
        decisions = session.execute(
            select(
                RLDecision.rl_type,
                func.count(),
                func.count(RLDecision.trade_id),
                func.sum(case((RLDecision.halted, 1), else_=0)),
                func.sum(case((RLDecision.halted & RLDecision.allowed, 1), else_=0)),
            ).group_by(RLDecision.rl_type)
        ).all()
    drift_times = [at for topic, at, _ in events if topic == "drift.detected"]
    # A check right after the shift sees almost none of it: count the ones with a day of it.
    after = [at for at in drift_times if shift_at is None or at >= shift_at + SHIFT_SEEN]
    before: dict[datetime, str] = {}
    for topic, at, payload in events:
        if topic == "drift.detected" and shift_at is not None and at < shift_at:
            severity = str((payload or {}).get("severity", "LOW")).upper()
            before[at] = max(before.get(at, "LOW"), severity, key=_severity_rank)
    job_rows = [_job_dict(j) for j in jobs if j.job_type != "rl_maintenance"]
    drift_jobs = [
        j for j in job_rows if str(j["reason"]).startswith("drift") and (not after or j["started_at"] >= after[0])
    ]
    promoted = [m for m, s in history if s == ACTIVE and _was_shadow(history, m)]
    first_drift = after[0] if after else None
    promoted_after_drift = [m for m, at in activated if m in promoted and first_drift is not None and at >= first_drift]
    initial: dict[str, str] = {}
    for row in models:
        if row.model_type not in initial and any(h == (row.model_id, ACTIVE) for h in history):
            initial[row.model_type] = row.model_id
    return Story(
        initial_active=initial,
        first_drift_at=drift_times[0] if drift_times else None,
        drift_before_shift=[{"at": at, "severity": sev} for at, sev in sorted(before.items())],
        drift_after_shift_at=after[0] if after else None,
        retraining_after_drift=drift_jobs[0] if drift_jobs else None,
        shadow_tests_started=[str(p.get("shadow_model_id")) for p in shadow_started],
        promoted=promoted,
        rejected=[m for m, s in history if s == REJECTED],
        regime_changes=[{**(p or {}), "time": at} for topic, at, p in events if topic == "regime.changed"],
        rl_resets=[{**(p or {}), "topic": topic, "time": at} for topic, at, p in events if topic.startswith("rl.")],
        archived_rl_versions=[
            {"rl_type": v.rl_type, "version": v.version, "archived_at": v.archived_at, "file": v.q_table_file}
            for v in archived
        ],
        jobs=job_rows,
        rl_decisions={t: (int(n), int(a), int(h or 0), int(ha or 0)) for t, n, a, h, ha in decisions},
        promoted_after_drift=promoted_after_drift,
        post_shift=live_against_frozen(container, shift_at) if shift_at is not None else None,
    )


def _severity_rank(severity: str) -> int:
    order = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
    return order.index(severity) if severity in order else -1


def _status_history(session: Any) -> list[tuple[str, str]]:
    rows = session.execute(
        select(ModelStatusHistory.model_id, ModelStatusHistory.new_status).order_by(ModelStatusHistory.id)
    ).all()
    return [(m, s) for m, s in rows]


def _was_shadow(history: list[tuple[str, str]], model_id: str) -> bool:
    return (model_id, SHADOW) in history


def _job_dict(job: RetrainingJob) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "job_type": job.job_type,
        "reason": job.trigger_reason,
        "status": job.status,
        "started_at": job.started_at,
        "completed_at": job.completed_at,
        "models": dict(job.models_trained or {}),
        "error": job.error_message,
    }
