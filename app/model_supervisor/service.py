"""Model supervisor (specification `model_supervisor.py`): the health of the models in production.

Every served prediction is a `prediction_logs` row (`log_prediction`); its outcome comes
from a closed trade (`log_outcome`, `execution.trade.closed`) or from the candles once the
horizon has passed. `get_model_health` measures, over a lookback window:

- winrate: share of non-flat predictions with an outcome whose PnL is positive (PnL as in
  `app.shadow_tester.stats.per_sample_pnl`: direction x realized return - round-trip fee);
- calibration error: expected calibration error over 10 confidence bins, confidence being
  the forecaster's P(direction right) (`app.forecasters.base`);
- long/short ratio: long calls / short calls (inf when there are longs and no shorts);
- latency p50/p95/p99 and mean, in milliseconds;
- coverage: share of the policy's symbols with at least one prediction of confidence
  >= `CONFIDENT` in the window.

Status by `Policy.supervisor`: each threshold crossed is DEGRADED; crossed far (winrate 10
points under, calibration error twice the limit, median latency over the limit, the ratio
beyond twice its bound) is CRITICAL. Winrate and calibration need `min_outcomes` outcomes,
the ratio `min_outcomes` directional calls. `check_all_models` (hourly on beat) writes a
`model_performance_logs` row per ACTIVE model and publishes `model.performance.degraded`
for every model that is not HEALTHY; it first lifts a trading halt older than the policy's
`clm_config.trading_halt.max_hours` (`app.clm.halt.lift_stale_halt`: one flag read when set).

On PostgreSQL the metrics are aggregated where the rows are (`health_metrics_postgres`,
two statements over the (model_id, timestamp) index): a day at 200 predictions/s is 17
million logs per model. SQLite (embedded) reads the window into a frame (`health_metrics`),
which is also the oracle the PostgreSQL aggregation is tested against.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.clm.halt import lift_stale_halt
from app.core.clock import utcnow
from app.core.db.frames import rows_frame
from app.core.db.models import ModelPerformanceLog, PredictionLog
from app.core.db.models import ModelRegistry as ModelRow
from app.core.topics import PerformanceDegraded, TradeClosed
from app.data_pipeline.timeframes import timeframe_ms
from app.model_registry.records import ACTIVE
from app.shadow_tester import outcomes
from app.shadow_tester.outcomes import resolve_frame
from app.shadow_tester.rows import telemetry_commit
from app.shadow_tester.service import horizon_of
from app.shadow_tester.stats import round_trip_fee

if TYPE_CHECKING:
    from app.core.container import Container

from app.model_supervisor.health import ModelHealth, classify, health_metrics
from app.model_supervisor.sql import health_metrics_postgres, prediction_frame, prediction_log_row

log = logging.getLogger(__name__)


class ModelSupervisor:
    def __init__(self, container: Container) -> None:
        self.container = container

    def log_prediction(
        self,
        model_id: str,
        prediction: Mapping[str, Any],
        latency_ms: float,
        *,
        symbol: str,
        timestamp: datetime | None = None,
        session: Session | None = None,
    ) -> int:
        """Log one served prediction; returns its id. With `session`, joins the caller's transaction."""
        row = prediction_log_row(model_id, prediction, latency_ms, symbol=symbol, timestamp=timestamp)
        if session is not None:
            session.add(row)
            session.flush()
            return int(row.id)
        with self.container.session() as own:
            telemetry_commit(own)
            own.add(row)
            own.flush()
            return int(row.id)

    def log_outcome(self, prediction_id: int, outcome: Mapping[str, Any]) -> bool:
        """Record a prediction's outcome ({pnl_pct, side, ...} or {realized_return}); False if already known."""
        with self.container.session() as session:
            row = session.get(PredictionLog, prediction_id, with_for_update=True)
            if row is None:
                raise LookupError(f"no prediction log with id {prediction_id}")
            if row.outcome is not None:
                return False
            where = f"outcome of prediction {prediction_id}"
            row.realized_return = outcomes.realized_return_from_trade(outcome, row.direction, where)
            row.outcome = dict(outcome)
            row.outcome_recorded_at = utcnow()
            return True

    def resolve_outcomes(self, now: datetime | None = None, limit: int = 200_000) -> int:
        """Close the logged predictions whose horizon has passed from the candles."""
        policy = self.container.policy_store.get()
        now = now or utcnow()
        horizon = horizon_of(policy)
        with self.container.session() as session:
            rows = session.execute(
                select(PredictionLog.id, PredictionLog.symbol, PredictionLog.timestamp)
                .where(PredictionLog.outcome.is_(None), PredictionLog.timestamp <= now - horizon)
                .order_by(PredictionLog.id)
                .limit(limit)
            ).all()
            frame = rows_frame(rows, ["id", "symbol", "timestamp"])
            frame["horizon_end"] = frame["timestamp"] + horizon
            tf = policy.data.timeframe
            updates = resolve_frame(session, frame, policy.data.exchange, tf, timeframe_ms(tf), now)
            if updates:
                values = [
                    {
                        "id": u["id"],
                        "outcome": u["actual_outcome"],
                        "realized_return": u["realized_return"],
                        "outcome_recorded_at": u["outcome_recorded_at"],
                    }
                    for u in updates
                ]
                session.execute(update(PredictionLog), values)
        return len(updates)

    def get_model_health(self, model_id: str, lookback_hours: float = 24) -> ModelHealth:
        policy = self.container.policy_store.get()
        since = utcnow() - timedelta(hours=lookback_hours)
        fee = round_trip_fee(policy.labels.fee_pct)
        with self.container.session() as session:
            if self.container.engine.dialect.name == "postgresql":
                metrics = health_metrics_postgres(session, model_id, since, fee, policy.data.symbols)
            else:
                metrics = health_metrics(prediction_frame(session, model_id, since), fee, policy.data.symbols)
        status, reasons = classify(metrics, policy.supervisor)
        metrics.pop("directional")
        return ModelHealth(model_id=model_id, lookback_hours=lookback_hours, status=status, reasons=reasons, **metrics)

    def check_all_models(self, lookback_hours: float = 24) -> list[ModelHealth]:
        """Health of every ACTIVE model: a performance log row each; an event for the unhealthy.
        A trading halt older than the policy's `trading_halt.max_hours` is lifted first."""
        lift_stale_halt(self.container)
        self.resolve_outcomes()
        with self.container.session() as session:
            models = session.execute(select(ModelRow.model_id, ModelRow.model_type).where(ModelRow.status == ACTIVE))
            active = list(models.all())
        report = []
        for model_id, model_type in active:
            health = self.get_model_health(model_id, lookback_hours)
            summary = health.to_dict()
            with self.container.session() as session:
                session.add(
                    ModelPerformanceLog(
                        model_id=model_id,
                        timestamp=utcnow(),
                        winrate=summary["winrate"],
                        total_trades=health.outcomes,
                        avg_confidence=health.avg_confidence,
                        calibration_error=health.calibration_error,
                        long_short_ratio=summary["long_short_ratio"],
                        avg_latency_ms=health.avg_latency_ms,
                        total_predictions=health.total_predictions,
                        metadata_=summary,
                        created_at=utcnow(),
                    )
                )
                if health.status != "HEALTHY":
                    self.container.bus.publish(
                        session,
                        PerformanceDegraded(
                            model_id=model_id,
                            model_type=model_type,
                            metrics=summary,
                            recommendation=health.status,
                            reasons=health.reasons,
                        ),
                    )
            report.append(health)
        return report

    def close_from_trade(self, payload: Mapping[str, Any]) -> int:
        """Outcomes of the predictions a closed trade names (`prediction_id` / `prediction_ids`)."""
        ids = payload.get("prediction_ids") or ([payload["prediction_id"]] if payload.get("prediction_id") else [])
        closed = 0
        for prediction_id in ids:
            try:
                closed += self.log_outcome(int(prediction_id), payload)
            except (LookupError, ValueError) as exc:  # a bad reference is logged, not retried forever
                log.warning("trade %s cannot close prediction %s: %s", payload.get("trade_id"), prediction_id, exc)
        return closed


def on_trade_closed(container: Container, event: dict[str, Any]) -> None:
    """Handler of `execution.trade.closed`."""
    ModelSupervisor(container).close_from_trade(TradeClosed.from_event(event).payload())
