"""The CLM's periodic work, as data: which task runs how often, all intervals from the policy.

Celery beat (`workers/beat.py`) and the simulated beat of replays (`SimulatedBeat`) both
read this table, so a schedule change in the policy reaches both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app.core.policy import Policy
from app.data_pipeline import timeframe_ms


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    task: str  # Celery task name (routed in workers/routing.py)
    interval: timedelta


def periodic_jobs(policy: Policy) -> list[PeriodicJob]:
    """The CLM's periodic jobs for `policy`; empty when the CLM is disabled (stopped)."""
    clm = policy.clm_config
    if not clm.enabled:
        return []
    jobs = [
        PeriodicJob(
            "full-retraining", "tasks.retraining.scheduled_full_retraining", timedelta(days=clm.schedule_interval_days)
        ),
        PeriodicJob(
            "health-check", "tasks.supervisor.check_all_models", timedelta(hours=clm.health_check_interval_hours)
        ),
        PeriodicJob(
            "shadow-evaluation",
            "tasks.shadow.evaluate_all_shadows",
            timedelta(hours=clm.shadow_evaluation_interval_hours),
        ),
        PeriodicJob(
            "rl-maintenance",
            "tasks.rl.run_rl_maintenance",
            timedelta(hours=clm.rl_maintenance.maintenance_interval_hours),
        ),
        # the market regime of each symbol and of the index, once per closed candle (regime.changed)
        PeriodicJob(
            "regime-detection",
            "tasks.regime.detect_regimes",
            timedelta(milliseconds=timeframe_ms(policy.data.timeframe)),
        ),
        # every minute: a training task lost with its worker shows within task_heartbeat_minutes + 1
        PeriodicJob("stale-job-sweep", "tasks.retraining.close_stale_jobs", timedelta(minutes=1)),
        PeriodicJob("candle-refresh", "tasks.data.refresh_candles", timedelta(minutes=5)),
        # close shadow pairs and prediction logs whose horizon has passed, so progress shows between evaluations
        PeriodicJob("outcome-resolution", "tasks.shadow.resolve_outcomes", timedelta(minutes=15)),
        # alerts no event announces (a shadow test without samples for 24 h): app/operations/alerts.py
        PeriodicJob("alert-check", "tasks.alerts.check_alerts", timedelta(minutes=15)),
    ]
    if clm.retention.enabled:
        # delivered events, old prediction logs, finished shadow tests' pairs (app/operations/telemetry_retention.py)
        jobs.append(
            PeriodicJob(
                "data-retention", "tasks.maintenance.apply_retention", timedelta(hours=clm.retention.interval_hours)
            )
        )
    if clm.drift_detection.enabled:
        jobs.insert(
            1,
            PeriodicJob(
                "drift-check", "tasks.drift.run_drift_check", timedelta(hours=clm.drift_detection.check_interval_hours)
            ),
        )
    return jobs


@dataclass
class SimulatedBeat:
    """Beat for a simulated clock: `tick(now)` runs every job that has come due.

    The first tick only arms the schedule (like beat, nothing runs at start-up); each job
    then runs once per interval of simulated time.
    """

    run: Callable[[PeriodicJob, datetime], None]
    only: set[str] | None = None  # names of jobs to drive; None: all
    last_run: dict[str, datetime] = field(default_factory=dict)

    def tick(self, policy: Policy, now: datetime) -> list[str]:
        ran: list[str] = []
        for job in periodic_jobs(policy):
            if self.only is not None and job.name not in self.only:
                continue
            last = self.last_run.get(job.name)
            if last is None:
                self.last_run[job.name] = now
                continue
            if now - last >= job.interval:
                self.last_run[job.name] = now
                self.run(job, now)
                ran.append(job.name)
        return ran


BEAT_FLAG = "beat_schedule"  # system flag the beat process writes (workers/beat.py)
BEAT_SILENT_AFTER = timedelta(minutes=3)  # beat records every 30 s; silence this long means it is not running


def schedule_view(policy: Policy, beat: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
    """Each periodic job with its interval and, as beat last reported, its last and next run.

    Without a report from beat (embedded mode, beat not started) or with a stale one, the times
    are absent and `beat` says why: the schedule is then what the policy asks for, not what runs."""
    entries = (beat or {}).get("entries") or {}
    seen_at = datetime.fromisoformat(beat["at"]) if beat and beat.get("at") else None
    beat_state: dict[str, Any]
    if seen_at is None:
        beat_state = {"running": False, "seen_at": None, "reason": "beat has not reported (not started, or embedded)"}
    elif now - seen_at > BEAT_SILENT_AFTER:
        beat_state = {"running": False, "seen_at": seen_at, "reason": f"beat silent since {seen_at.isoformat()}"}
    else:
        beat_state = {"running": True, "seen_at": seen_at, "reason": None}
    names = [job.name for job in periodic_jobs(policy)]
    rows = []
    for job in periodic_jobs(policy):
        entry = entries.get(job.name) or {}
        rows.append(
            {
                "name": job.name,
                "task": job.task,
                "interval_seconds": job.interval.total_seconds(),
                "last_run_at": _time(entry.get("last_run_at")),
                "next_run_at": _time(entry.get("next_run_at")) if beat_state["running"] else None,
            }
        )
    rows += [  # beat's own entries that are not the CLM's (the event sweep)
        {"name": name, "task": e.get("task"), "interval_seconds": e.get("interval_seconds")}
        | {"last_run_at": _time(e.get("last_run_at"))}
        | {"next_run_at": _time(e.get("next_run_at")) if beat_state["running"] else None}
        for name, e in sorted(entries.items())
        if name not in names
    ]
    return {"enabled": policy.clm_config.enabled, "beat": beat_state, "entries": rows}


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
