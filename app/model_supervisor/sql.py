"""The supervisor's storage: prediction log rows, and health aggregated in PostgreSQL where the rows are."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.core.db.frames import rows_frame
from app.core.db.models import PredictionLog
from app.model_supervisor.health import CALIBRATION_BINS, CONFIDENT
from app.shadow_tester.rows import prediction_fields

log = logging.getLogger(__name__)

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
    frame = rows_frame(rows, columns)
    for column in columns[1:]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame
