"""The health of a model as numbers (pure): winrate, calibration, long/short balance, PnL; and its verdict."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from app.core.policy import SupervisorConfig
from app.shadow_tester.stats import per_sample_pnl

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
