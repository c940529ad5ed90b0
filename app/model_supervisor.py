"""Model supervisor (specification `model_supervisor.py`): the health of the models in production.

Every served prediction is a `prediction_logs` row (`log_prediction`); its outcome comes
from a closed trade (`log_outcome`, `execution.trade.closed`) or from the candles once the
horizon has passed. `get_model_health` measures, over a lookback window:

- winrate: share of non-flat predictions with an outcome whose PnL is positive (PnL as in
  `app.shadow_tester.stats.per_sample_pnl`: direction x realized return - round-trip fee);
- calibration error: expected calibration error over 10 confidence bins, confidence being
  the forecaster's P(direction right) (`app.model_training.base`);
- long/short ratio: long calls / short calls (inf when there are longs and no shorts);
- latency p50/p95/p99 and mean, in milliseconds;
- coverage: share of the policy's symbols with at least one prediction of confidence
  >= `CONFIDENT` in the window.

Status by `Policy.supervisor`: each threshold crossed is DEGRADED; crossed far (winrate 10
points under, calibration error twice the limit, median latency over the limit, the ratio
beyond twice its bound) is CRITICAL. Winrate and calibration need `min_outcomes` outcomes,
the ratio `min_outcomes` directional calls. `check_all_models` (hourly on beat) writes a
`model_performance_logs` row per ACTIVE model and publishes `model.performance.degraded`
for every model that is not HEALTHY.

On PostgreSQL the metrics are aggregated where the rows are (`health_metrics_postgres`,
two statements over the (model_id, timestamp) index): a day at 200 predictions/s is 17
million logs per model. SQLite (embedded) reads the window into a frame (`health_metrics`),
which is also the oracle the PostgreSQL aggregation is tested against.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.data_pipeline.timeframes import timeframe_ms
from app.db.models import ModelPerformanceLog, PredictionLog
from app.db.models import ModelRegistry as ModelRow
from app.policy import SupervisorConfig
from app.shadow_tester import outcomes
from app.shadow_tester.outcomes import resolve_frame
from app.shadow_tester.records import prediction_fields, telemetry_commit
from app.shadow_tester.service import horizon_of
from app.shadow_tester.stats import per_sample_pnl, round_trip_fee
from app.topics import PerformanceDegraded, TradeClosed

if TYPE_CHECKING:
    from app.bootstrap import Container

log = logging.getLogger(__name__)

CONFIDENT = 0.6
CALIBRATION_BINS = 10
_LEVEL = {"HEALTHY": 0, "DEGRADED": 1, "CRITICAL": 2}


@dataclass(frozen=True)
class ModelHealth:
    model_id: str
    lookback_hours: float
    total_predictions: int
    outcomes: int
    winrate: float | None
    avg_confidence: float | None
    calibration_error: float | None
    long_short_ratio: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    avg_latency_ms: float | None
    coverage: float | None
    status: str  # HEALTHY, DEGRADED, CRITICAL
    reasons: list[str] = field(default_factory=list)

    @property
    def recommendation(self) -> str:
        """The specification's name for the status."""
        return self.status

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (an infinite long/short ratio becomes None, noted in `reasons`)."""
        return {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in asdict(self).items()}


def health_metrics(frame: pd.DataFrame, fee: float, symbols: list[str]) -> dict[str, Any]:
    """Metrics of prediction rows (`symbol, direction, confidence, latency_ms, realized_return`)."""
    direction = frame["direction"].fillna(0).to_numpy(dtype=np.float64)
    confidence = frame["confidence"].to_numpy(dtype=np.float64)
    latency = frame["latency_ms"].dropna().to_numpy(dtype=np.float64)
    realized = frame["realized_return"].to_numpy(dtype=np.float64)
    judged = np.isfinite(realized) & (direction != 0)
    pnl = per_sample_pnl(direction[judged], realized[judged], fee)
    longs, shorts = int((direction > 0).sum()), int((direction < 0).sum())
    out: dict[str, Any] = {
        "total_predictions": len(frame),
        "outcomes": int(judged.sum()),
        "directional": longs + shorts,
        "winrate": float((pnl > 0).mean()) if pnl.size else None,
        "avg_confidence": float(np.nanmean(confidence)) if np.isfinite(confidence).any() else None,
        "calibration_error": calibration_error(confidence[judged], direction[judged], realized[judged]),
        "long_short_ratio": longs / shorts if shorts else (math.inf if longs else None),
        "avg_latency_ms": float(latency.mean()) if latency.size else None,
    }
    for q in (50, 95, 99):
        out[f"latency_p{q}_ms"] = float(np.percentile(latency, q)) if latency.size else None
    wanted = {s.replace("/", "").upper() for s in symbols}
    confident = frame.loc[frame["confidence"] >= CONFIDENT, "symbol"].astype(str).str.replace("/", "").str.upper()
    out["coverage"] = len(wanted & set(confident)) / len(wanted) if wanted else None
    return out


# PostgreSQL computes the same metrics where the rows are: a day of logs at 200 predictions/s
# is 17 million rows per model, which `health_metrics` would need as a frame in memory.
_JUDGED = (
    "COALESCE(direction, 0) <> 0 AND realized_return IS NOT NULL"
    " AND realized_return NOT IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)"
)
_KNOWN = "confidence IS NOT NULL AND confidence NOT IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)"
_BIN = f"LEAST(FLOOR(confidence * {CALIBRATION_BINS})::int, {CALIBRATION_BINS - 1})"
_CORRECT = "(SIGN(direction::float8) = SIGN(realized_return))::int"
_PNL = "direction * realized_return - abs(direction) * CAST(:fee AS float8)"  # per_sample_pnl


_WINDOW = "FROM prediction_logs WHERE model_id = :model_id AND timestamp >= :since"
# Two statements, not one: the calibration bins as 30 FILTER clauses re-evaluate their
# conditions on every row (several times slower); grouped by bin, each row is judged once.
_SUMMARY = text(
    "SELECT count(*), "
    f"count(*) FILTER (WHERE {_JUDGED}), "
    "count(*) FILTER (WHERE direction > 0), "
    "count(*) FILTER (WHERE direction < 0), "
    f"count(*) FILTER (WHERE {_JUDGED} AND {_PNL} > 0), "
    f"avg(confidence) FILTER (WHERE {_KNOWN}), "
    "avg(latency_ms), "
    "percentile_cont(ARRAY[0.5, 0.95, 0.99]::float8[]) WITHIN GROUP (ORDER BY latency_ms), "
    "array_agg(DISTINCT symbol) FILTER (WHERE confidence >= CAST(:confident AS float8)) "
    f"{_WINDOW}"
)
_CALIBRATION = text(
    f"SELECT {_BIN}, count(*), sum({_CORRECT}), sum(confidence) {_WINDOW} AND {_JUDGED} AND {_KNOWN} GROUP BY 1"
)


def health_metrics_postgres(
    session: Session, model_id: str, since: datetime, fee: float, symbols: list[str]
) -> dict[str, Any]:
    """`health_metrics` of the model's logs since `since`, aggregated by PostgreSQL."""
    params = {"model_id": model_id, "since": since, "fee": fee, "confident": CONFIDENT}
    total, judged, longs, shorts, wins, avg_confidence, avg_latency, quantiles, confident = session.execute(
        _SUMMARY, params
    ).one()
    bins = session.execute(_CALIBRATION, params).all()
    counts = sum(int(n) for _, n, _, _ in bins)
    gaps = sum(abs(float(correct) - float(confidence)) for _, _, correct, confidence in bins)
    out: dict[str, Any] = {
        "total_predictions": int(total),
        "outcomes": int(judged),
        "directional": int(longs) + int(shorts),
        "winrate": int(wins) / int(judged) if judged else None,
        "avg_confidence": float(avg_confidence) if avg_confidence is not None else None,
        "calibration_error": gaps / counts if counts else None,
        "long_short_ratio": longs / shorts if shorts else (math.inf if longs else None),
        "avg_latency_ms": float(avg_latency) if avg_latency is not None else None,
    }
    for q, value in zip((50, 95, 99), quantiles or (None, None, None), strict=True):
        out[f"latency_p{q}_ms"] = float(value) if value is not None else None
    wanted = {s.replace("/", "").upper() for s in symbols}
    seen = {str(s).replace("/", "").upper() for s in confident or ()}
    out["coverage"] = len(wanted & seen) / len(wanted) if wanted else None
    return out


def calibration_error(confidence: np.ndarray, direction: np.ndarray, realized: np.ndarray) -> float | None:
    """Expected calibration error: sum over bins of share x |accuracy - mean confidence|."""
    known = np.isfinite(confidence)
    if not known.any():
        return None
    confidence, correct = confidence[known], (np.sign(direction[known]) == np.sign(realized[known])).astype(float)
    bins = np.minimum((confidence * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    counts = np.bincount(bins, minlength=CALIBRATION_BINS)
    gap = np.abs(np.bincount(bins, correct, CALIBRATION_BINS) - np.bincount(bins, confidence, CALIBRATION_BINS))
    return float(gap.sum() / counts.sum())


def classify(metrics: Mapping[str, Any], limits: SupervisorConfig) -> tuple[str, list[str]]:
    """HEALTHY / DEGRADED / CRITICAL and the reasons (see module doc)."""
    found: list[tuple[str, str]] = []
    enough_outcomes = metrics["outcomes"] >= limits.min_outcomes
    winrate, calibration = metrics["winrate"], metrics["calibration_error"]
    if enough_outcomes and winrate is not None and winrate < limits.min_winrate:
        level = "CRITICAL" if winrate < limits.min_winrate - 0.10 else "DEGRADED"
        found.append((level, f"winrate {winrate:.3f} < {limits.min_winrate}"))
    if enough_outcomes and calibration is not None and calibration > limits.max_calibration_error:
        level = "CRITICAL" if calibration > 2 * limits.max_calibration_error else "DEGRADED"
        found.append((level, f"calibration error {calibration:.3f} > {limits.max_calibration_error}"))
    p50, p95 = metrics["latency_p50_ms"], metrics["latency_p95_ms"]
    if p95 is not None and p95 > limits.max_latency_ms:
        level = "CRITICAL" if p50 > limits.max_latency_ms else "DEGRADED"
        found.append((level, f"latency p95 {p95:.1f} ms > {limits.max_latency_ms} ms"))
    ratio = metrics["long_short_ratio"]
    if metrics["directional"] >= limits.min_outcomes and ratio is not None:
        low, high = limits.min_long_short_ratio, limits.max_long_short_ratio
        if not (low <= ratio <= high):
            level = "CRITICAL" if ratio > 2 * high or ratio < low / 2 else "DEGRADED"
            found.append((level, f"long/short ratio {ratio:.2f} outside {low}..{high}"))
    if not found:
        return "HEALTHY", []
    status = max((level for level, _ in found), key=_LEVEL.__getitem__)
    return status, [reason for _, reason in found]


def prediction_log_values(
    model_id: str, prediction: Mapping[str, Any], latency_ms: float, *, symbol: str, timestamp: datetime | None = None
) -> dict[str, Any]:
    """The validated column values of a `prediction_logs` row (callers batch several into one INSERT)."""
    direction, confidence = prediction_fields(prediction, "prediction")
    if not (isinstance(latency_ms, int | float) and math.isfinite(latency_ms) and latency_ms >= 0):
        raise ValueError(f"latency_ms: {latency_ms!r} is not a non-negative number")
    predicted = prediction.get("predicted_return")
    now = utcnow()
    return {
        "model_id": model_id,
        "symbol": symbol,
        "timestamp": timestamp or now,
        "predicted_return": float(predicted) if predicted is not None else None,
        "direction": direction,
        "confidence": confidence,
        "latency_ms": float(latency_ms),
        "created_at": now,
    }


def prediction_log_row(
    model_id: str, prediction: Mapping[str, Any], latency_ms: float, *, symbol: str, timestamp: datetime | None = None
) -> PredictionLog:
    """A validated, unsaved `prediction_logs` row."""
    return PredictionLog(**prediction_log_values(model_id, prediction, latency_ms, symbol=symbol, timestamp=timestamp))


def prediction_frame(session: Session, model_id: str, since: datetime) -> pd.DataFrame:
    """The model's logs since `since` as the frame `health_metrics` reads."""
    columns = ["symbol", "direction", "confidence", "latency_ms", "realized_return"]
    rows = session.execute(
        select(*(getattr(PredictionLog, c) for c in columns)).where(
            PredictionLog.model_id == model_id, PredictionLog.timestamp >= since
        )
    ).all()
    frame = pd.DataFrame(rows, columns=columns)
    for column in columns[1:]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame


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
            frame = pd.DataFrame(rows, columns=["id", "symbol", "timestamp"])
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
        """Health of every ACTIVE model: a performance log row each; an event for the unhealthy."""
        self.resolve_outcomes()
        with self.container.session() as session:
            models = session.execute(select(ModelRow.model_id, ModelRow.model_type).where(ModelRow.status == "ACTIVE"))
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
