"""Prometheus metrics computed from the database at scrape time.

Jobs, models, predictions, shadow tests, RL agents and drift are written by the API and
the workers into PostgreSQL; a custom collector reads them when Prometheus scrapes
`/metrics`. So every gunicorn worker and every Celery process reports the same numbers
and no multiprocess registry is needed. Time values are seconds (Prometheus convention).
Nothing here scans a table that grows with the request rate (prediction logs, shadow pairs,
delivered events): the latency of served predictions is the API's own histogram
(`app/api/request_metrics.py`), and the outbox gauge counts only pending and dead events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app.core.db.models import (
    DriftEvent,
    Event,
    ModelPerformanceLog,
    ModelRegistry,
    ModelStatusHistory,
    RetrainingJob,
    RLAgentState,
    RLAppliedUpdate,
    RLQValue,
    RLVersion,
    ShadowTestResult,
)
from app.model_registry.records import ACTIVE, SHADOW
from app.operations.alerts import current_alerts

if TYPE_CHECKING:
    from app.core.container import Container

log = logging.getLogger(__name__)

JOB_DURATION_BUCKETS = (60, 300, 600, 1800, 3600, 7200, 14400, 28800)
PVALUE_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0)
MODELS_PER_JOB_BUCKETS = (0, 1, 2, 3, 4, 6, 8)


def _histogram(
    session: Session, column: Any, buckets: Sequence[float], where: Any, scale: float = 1.0
) -> tuple[list[tuple[str, float]], float]:
    """Cumulative bucket counts and the sum of `column`, computed by one SQL query."""
    cols = [func.sum(case((column <= b, 1), else_=0)) for b in buckets]
    row = session.execute(select(func.count(column), func.sum(column), *cols).where(where)).one()
    count, total = int(row[0] or 0), float(row[1] or 0.0)
    pairs = [(_le(b * scale), float(n or 0)) for b, n in zip(buckets, row[2:], strict=True)]
    return [*pairs, ("+Inf", float(count))], total * scale


def _le(bound: float) -> str:
    return f"{bound:g}"


class ClmCollector(Collector):
    """Reads the CLM's state from the database on every scrape."""

    def __init__(self, container: Container) -> None:
        self.container = container

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        up = GaugeMetricFamily("clm_database_up", "1 if the metrics query reached the database")
        try:
            with self.container.session_factory() as session:
                metrics = list(self._collect(session))
            up.add_metric([], 1.0)
        except Exception:
            log.exception("metrics collection failed")
            metrics = []
            up.add_metric([], 0.0)
        yield from metrics
        yield up
        took = GaugeMetricFamily("clm_metrics_scrape_seconds", "time spent reading the metrics from the database")
        took.add_metric([], time.perf_counter() - started)
        yield took

    def _collect(self, session: Session) -> Iterable[Metric]:
        yield from self._jobs(session)
        yield from self._models(session)
        yield from self._shadow(session)
        yield from self._rl(session)
        yield from self._drift(session)
        yield from self._alerts_and_events(session)

    # ----------------------------------------------------------------- retraining

    def _jobs(self, session: Session) -> Iterable[Metric]:
        jobs = CounterMetricFamily(
            "clm_retraining_jobs", "retraining jobs by type and status", labels=["job_type", "status"]
        )
        for job_type, status, n in session.execute(
            select(RetrainingJob.job_type, RetrainingJob.status, func.count()).group_by(
                RetrainingJob.job_type, RetrainingJob.status
            )
        ):
            jobs.add_metric([job_type, status], float(n))
        yield jobs
        buckets, total = _histogram(
            session, RetrainingJob.duration_seconds, JOB_DURATION_BUCKETS, RetrainingJob.duration_seconds.is_not(None)
        )
        duration = HistogramMetricFamily("clm_retraining_job_duration_seconds", "duration of finished jobs")
        duration.add_metric([], buckets, total)
        yield duration
        per_job = HistogramMetricFamily("clm_models_trained_per_job", "models trained successfully per finished job")
        counts = []
        for (trained,) in session.execute(
            select(RetrainingJob.models_trained).where(RetrainingJob.completed_at.is_not(None))
        ):
            counts.append(sum(1 for v in (trained or {}).values() if not (isinstance(v, dict) and v.get("error"))))
        per_job.add_metric(
            [],
            [(_le(b), float(sum(1 for c in counts if c <= b))) for b in MODELS_PER_JOB_BUCKETS]
            + [("+Inf", float(len(counts)))],
            float(sum(counts)),
        )
        yield per_job
        last = GaugeMetricFamily("clm_last_retraining_timestamp_seconds", "end of the last finished retraining job")
        finished = session.scalar(select(func.max(RetrainingJob.completed_at)))
        if finished is not None:
            last.add_metric([], _epoch(finished))
        yield last

    # ----------------------------------------------------------------- models and predictions

    def _models(self, session: Session) -> Iterable[Metric]:
        by_status = GaugeMetricFamily(
            "clm_models", "registered models by type and status", labels=["model_type", "status"]
        )
        for model_type, status, n in session.execute(
            select(ModelRegistry.model_type, ModelRegistry.status, func.count()).group_by(
                ModelRegistry.model_type, ModelRegistry.status
            )
        ):
            by_status.add_metric([model_type, status], float(n))
        yield by_status
        winrate = GaugeMetricFamily(
            "clm_model_winrate", "latest winrate of each live model", labels=["model_type", "status", "version"]
        )
        calibration = GaugeMetricFamily(
            "clm_model_calibration_error",
            "latest calibration error of each live model",
            labels=["model_type", "status", "version"],
        )
        latest = (
            select(ModelPerformanceLog.model_id, func.max(ModelPerformanceLog.id).label("last_id"))
            .group_by(ModelPerformanceLog.model_id)
            .subquery()
        )
        rows = session.execute(
            select(ModelRegistry.model_type, ModelRegistry.status, ModelRegistry.version, ModelPerformanceLog)
            .join(latest, latest.c.model_id == ModelRegistry.model_id)
            .join(ModelPerformanceLog, ModelPerformanceLog.id == latest.c.last_id)
            .where(ModelRegistry.status.in_((ACTIVE, SHADOW)))
        )
        for model_type, status, version, log_row in rows:
            if log_row.winrate is not None:
                winrate.add_metric([model_type, status, version], log_row.winrate)
            if log_row.calibration_error is not None:
                calibration.add_metric([model_type, status, version], log_row.calibration_error)
        yield winrate
        yield calibration
        # Prediction latency is observed by the API that serves the predictions (app/api/request_metrics.py).

    # ----------------------------------------------------------------- shadow testing

    def _shadow(self, session: Session) -> Iterable[Metric]:
        testing = GaugeMetricFamily("clm_shadow_models_testing", "models in shadow test")
        testing.add_metric([], float(session.scalar(select(func.count()).where(ModelRegistry.status == SHADOW)) or 0))
        yield testing
        samples = GaugeMetricFamily(
            "clm_shadow_samples",
            "paired predictions of each running shadow test",
            labels=["model_type", "version", "kind"],
        )
        rows = session.execute(
            select(
                ModelRegistry.model_type,
                ModelRegistry.version,
                func.count(ShadowTestResult.id),
                func.count(ShadowTestResult.realized_return),
            )
            .join(ShadowTestResult, ShadowTestResult.shadow_model_id == ModelRegistry.model_id, isouter=True)
            .where(ModelRegistry.status == SHADOW)
            .group_by(ModelRegistry.model_type, ModelRegistry.version)
        )
        for model_type, version, predictions, closed in rows:
            samples.add_metric([model_type, version, "predictions"], float(predictions))
            samples.add_metric([model_type, version, "with_outcome"], float(closed))
        yield samples
        # A shadow test ends in promotion (SHADOW -> ACTIVE) or not (SHADOW -> RETIRED/REJECTED).
        ends = session.execute(
            select(ModelStatusHistory.new_status, func.count())
            .where(ModelStatusHistory.old_status == SHADOW)
            .group_by(ModelStatusHistory.new_status)
        ).all()
        outcomes = CounterMetricFamily(
            "clm_shadow_tests_finished", "finished shadow tests by outcome", labels=["outcome"]
        )
        for new_status, n in ends:
            outcomes.add_metric(["promoted" if new_status == ACTIVE else new_status.lower()], float(n))
        yield outcomes
        finished = sum(n for _, n in ends)
        promoted = sum(n for s, n in ends if s == ACTIVE)
        rate = GaugeMetricFamily("clm_promotion_rate", "share of finished shadow tests that ended in promotion")
        if finished:
            rate.add_metric([], promoted / finished)
        yield rate
        to_promotion = GaugeMetricFamily(
            "clm_time_to_promotion_seconds_avg", "mean time from registration to promotion of promoted shadows"
        )
        spans = session.execute(
            select(ModelRegistry.created_at, ModelRegistry.promoted_at).where(
                ModelRegistry.promoted_at.is_not(None), ModelRegistry.promoted_at > ModelRegistry.created_at
            )
        ).all()
        if spans:
            total = sum(((p - c).total_seconds() for c, p in spans if p is not None), 0.0)
            to_promotion.add_metric([], total / len(spans))
        yield to_promotion

    # ----------------------------------------------------------------- RL

    def _rl(self, session: Session) -> Iterable[Metric]:
        states = GaugeMetricFamily("clm_rl_q_table_states", "states in the current Q-table", labels=["rl_type"])
        updates = CounterMetricFamily("clm_rl_updates", "Q-table updates applied", labels=["rl_type"])
        epsilon = GaugeMetricFamily("clm_rl_epsilon", "current exploration rate", labels=["rl_type"])
        version = GaugeMetricFamily("clm_rl_version", "current Q-table version", labels=["rl_type"])
        winrate = GaugeMetricFamily(
            "clm_rl_winrate", "share of applied trades with a positive reward", labels=["rl_type"]
        )
        baseline = GaugeMetricFamily(
            "clm_rl_random_baseline_winrate", "winrate a random policy reaches on the same trades", labels=["rl_type"]
        )
        version_winrate = GaugeMetricFamily(
            "clm_rl_version_winrate",
            "agent's winrate on the trades its newest saved version learned from (clm_rl_random_baseline_winrate's)",
            labels=["rl_type"],
        )
        for agent in session.scalars(select(RLAgentState)):
            n_states = session.scalar(
                select(func.count(func.distinct(RLQValue.state_key))).where(
                    RLQValue.rl_type == agent.rl_type, RLQValue.version == agent.version
                )
            )
            states.add_metric([agent.rl_type], float(n_states or 0))
            updates.add_metric([agent.rl_type], float(agent.total_updates or 0))
            epsilon.add_metric([agent.rl_type], float(agent.epsilon))
            version.add_metric([agent.rl_type], float(agent.version))
            wins, total = session.execute(
                select(
                    func.sum(case((RLAppliedUpdate.reward > 0, 1), else_=0)), func.count(RLAppliedUpdate.reward)
                ).where(RLAppliedUpdate.rl_type == agent.rl_type)
            ).one()
            if total:
                winrate.add_metric([agent.rl_type], float(wins or 0) / total)
            # Recorded by app.rl.store when a version is saved (app.rl.baseline), never assumed here; a version
            # saved with no trade behind it records none, so the newest of the last few that has one counts.
            for saved in session.scalars(
                select(RLVersion).where(RLVersion.rl_type == agent.rl_type).order_by(RLVersion.version.desc()).limit(5)
            ):
                recorded = saved.metadata_ or {}
                agent_rate, random_rate = recorded.get("winrate"), recorded.get("random_baseline_winrate")
                if isinstance(agent_rate, int | float) and isinstance(random_rate, int | float):
                    version_winrate.add_metric([agent.rl_type], float(agent_rate))
                    baseline.add_metric([agent.rl_type], float(random_rate))
                    break
        yield from (states, updates, epsilon, version, winrate, baseline, version_winrate)

    # ----------------------------------------------------------------- drift

    def _drift(self, session: Session) -> Iterable[Metric]:
        events = CounterMetricFamily(
            "clm_drift_events", "drift events by severity and type", labels=["severity", "drift_type"]
        )
        for severity, drift_type, n in session.execute(
            select(DriftEvent.severity, DriftEvent.drift_type, func.count()).group_by(
                DriftEvent.severity, DriftEvent.drift_type
            )
        ):
            events.add_metric([severity, drift_type], float(n))
        yield events
        buckets, total = _histogram(session, DriftEvent.p_value, PVALUE_BUCKETS, DriftEvent.p_value.is_not(None))
        pvalues = HistogramMetricFamily("clm_drift_p_value", "p-values of recorded drift events")
        pvalues.add_metric([], buckets, total)
        yield pvalues
        delays = session.execute(
            select(DriftEvent.detected_at, RetrainingJob.started_at).join(
                RetrainingJob, RetrainingJob.job_id == DriftEvent.retraining_job_id
            )
        ).all()
        to_retrain = GaugeMetricFamily(
            "clm_drift_to_retraining_seconds_avg", "mean time from a drift event to the retraining it started"
        )
        if delays:
            to_retrain.add_metric([], sum(max(0.0, (s - d).total_seconds()) for d, s in delays) / len(delays))
        yield to_retrain

    # ----------------------------------------------------------------- alerts, outbox

    def _alerts_and_events(self, session: Session) -> Iterable[Metric]:
        active = GaugeMetricFamily("clm_alerts_active", "alert conditions holding now", labels=["name", "severity"])
        counts: dict[tuple[str, str], int] = {}
        for alert in current_alerts(session):
            counts[(alert.name, alert.severity)] = counts.get((alert.name, alert.severity), 0) + 1
        for (name, severity), n in sorted(counts.items()):
            active.add_metric([name, severity], float(n))
        yield active
        outbox = GaugeMetricFamily(
            "clm_events", "events waiting in the outbox (pending) or given up (dead)", labels=["status"]
        )
        # Not the delivered ones: they are the bulk (a signal per prediction), and counting them
        # would scan the table at every scrape; pending and dead come from idx_events_pending.
        waiting = dict.fromkeys(("pending", "dead"), 0)
        counted = select(Event.status, func.count()).where(Event.status.in_(tuple(waiting))).group_by(Event.status)
        for status, n in session.execute(counted):
            waiting[status] = n
        for status, n in waiting.items():
            outbox.add_metric([status], float(n))
        yield outbox


def _epoch(value: Any) -> float:
    return float(value.replace(tzinfo=UTC).timestamp())


def render_metrics(container: Container) -> bytes:
    """The Prometheus text exposition of the CLM's metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ClmCollector(container))
    return generate_latest(registry)
