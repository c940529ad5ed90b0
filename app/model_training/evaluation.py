"""Honest evaluation: a forecaster's test metrics beside the baselines on the same rows.

Metrics: RMSE, MAE, R2 of the predicted return; accuracy, F1, precision, recall of the
direction (-1/0/1, macro over the three classes, against the labels' `direction`);
directional accuracy (signs agree; a zero forecast counts as a coin flip, so the zero-return
baseline scores exactly 0.5); Sharpe and max drawdown of a simulated PnL after fees;
expected calibration error of the confidence.

The PnL takes one position per symbol every `horizon` candles (non-overlapping holding
periods, the direction as the position, the round-trip fee paid per trade), averages the
symbols per period, and annualises by the number of such periods in a year.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    r2_score,
    recall_score,
)

from app.forecasters.base import TARGET, direction_correct
from app.model_training.splits import candle_ms

if TYPE_CHECKING:
    from app.forecasters.base import Forecaster

_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
YEAR_MS = 365 * 86_400_000
BASELINES = ("zero_return", "persistence", "buy_and_hold")


def timeframe_ms(timeframe: str) -> int:
    """'5m' -> 300000. Raises a clear error for anything else."""
    try:
        return int(timeframe[:-1]) * _UNIT_MS[timeframe[-1]]
    except (KeyError, ValueError, IndexError):
        raise ValueError(f"timeframe {timeframe!r} is not like '5m', '1h', '1d'") from None


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Mean |confidence - hit rate| over equal-width confidence bins, weighted by bin size."""
    if len(confidence) == 0:
        return float("nan")
    index = np.minimum((np.clip(confidence, 0, 1) * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            error += members.mean() * abs(confidence[members].mean() - correct[members].mean())
    return float(error)


def simulate_pnl(
    position: np.ndarray, frame: pd.DataFrame, horizon: int, fee_pct: float, periods_per_year: float
) -> dict[str, float]:
    """Sharpe, max drawdown, total return and trades of holding `position` for `horizon` candles."""
    trades = pd.DataFrame(
        {"symbol": frame["symbol"].to_numpy(), "timestamp": frame["timestamp"].to_numpy(), "position": position}
    )
    trades["gross"] = position * np.expm1(frame[TARGET].to_numpy(dtype=float))
    trades = trades.sort_values(["symbol", "timestamp"], kind="stable")
    # Every horizon-th row of each symbol: positions that do not overlap in time.
    trades = trades[trades.groupby("symbol").cumcount() % horizon == 0]
    trades["net"] = trades["gross"] - np.abs(trades["position"]) * 2 * fee_pct / 100
    period = trades.groupby("timestamp")["net"].mean().sort_index().to_numpy()
    if len(period) == 0:
        return {"sharpe": 0.0, "max_drawdown": 0.0, "total_return": 0.0, "trades": 0}
    std = period.std(ddof=1) if len(period) > 1 else 0.0
    sharpe = float(period.mean() / std * np.sqrt(periods_per_year / horizon)) if std > 0 else 0.0
    equity = np.cumprod(1 + period)
    drawdown = 1 - equity / np.maximum.accumulate(np.maximum(equity, 1.0))
    return {
        "sharpe": sharpe,
        "max_drawdown": float(max(drawdown.max(), 0.0)),
        "total_return": float(equity[-1] - 1),
        "trades": int((trades["position"] != 0).sum()),
    }


def prediction_metrics(
    predicted: np.ndarray,
    direction: np.ndarray,
    confidence: np.ndarray,
    frame: pd.DataFrame,
    *,
    horizon: int,
    fee_pct: float,
    periods_per_year: float,
    pnl_fee_pct: float | None = None,
) -> dict[str, float]:
    """Every metric of one set of predictions against the labels of `frame`."""
    actual = frame[TARGET].to_numpy(dtype=float)
    labels = frame["direction"].to_numpy(dtype=int)
    moved = actual != 0
    correct = direction_correct(predicted, actual)
    classes = [-1, 0, 1]
    metrics = {
        "rows": len(actual),
        "rmse": float(np.sqrt(mean_squared_error(actual, predicted))),
        "mae": float(mean_absolute_error(actual, predicted)),
        "r2": float(r2_score(actual, predicted)) if len(actual) > 1 else float("nan"),
        "accuracy": float(accuracy_score(labels, direction)),
        "f1": float(f1_score(labels, direction, labels=classes, average="macro", zero_division=0)),
        "precision": float(precision_score(labels, direction, labels=classes, average="macro", zero_division=0)),
        "recall": float(recall_score(labels, direction, labels=classes, average="macro", zero_division=0)),
        "directional_accuracy": float(correct[moved].mean()) if moved.any() else float("nan"),
        "calibration_error": expected_calibration_error(confidence[moved], correct[moved]),
    }
    fee = fee_pct if pnl_fee_pct is None else pnl_fee_pct
    metrics.update(simulate_pnl(direction.astype(float), frame, horizon, fee, periods_per_year))
    return metrics


def persistence_return(frame: pd.DataFrame, history: pd.DataFrame | None, horizon: int, step_ms: int) -> np.ndarray:
    """The return of the horizon that just ended: the label of the row `horizon` candles earlier.

    That label (log close[t] - log close[t-h]) is known at t, so this is no look-ahead.
    """
    known = frame if history is None else pd.concat([history, frame], ignore_index=True)
    earlier = known[["symbol", "timestamp", TARGET]].drop_duplicates(["symbol", "timestamp"], keep="last")
    earlier = earlier.assign(timestamp=earlier["timestamp"] + horizon * step_ms)
    joined = frame[["symbol", "timestamp"]].merge(earlier, on=["symbol", "timestamp"], how="left")
    return np.nan_to_num(joined[TARGET].to_numpy(dtype=float))


def baseline_metrics(
    frame: pd.DataFrame,
    history: pd.DataFrame | None,
    *,
    horizon: int,
    fee_pct: float,
    step_ms: int,
) -> dict[str, dict[str, float]]:
    """Zero return, persistence and buy-and-hold on exactly the rows of `frame`."""
    per_year = YEAR_MS / step_ms
    dead_zone = math.log1p(2 * fee_pct / 100)  # as the labels' direction
    n = len(frame)
    half = np.full(n, 0.5)  # the baselines claim no confidence: a coin flip
    zero = np.zeros(n)
    persisted = persistence_return(frame, history, horizon, step_ms)
    persisted_direction = np.where(persisted > dead_zone, 1, np.where(persisted < -dead_zone, -1, 0))

    def score(predicted: np.ndarray, direction: np.ndarray, pnl_fee_pct: float | None = None) -> dict[str, float]:
        return prediction_metrics(
            predicted,
            direction,
            half,
            frame,
            horizon=horizon,
            fee_pct=fee_pct,
            periods_per_year=per_year,
            pnl_fee_pct=pnl_fee_pct,
        )

    # Bought once and held: one round trip over the whole period, negligible per period.
    # Its return forecast is "no forecast" (zero); its direction is always up.
    held = score(zero, np.ones(n, dtype=int), pnl_fee_pct=0.0)
    actual = frame[TARGET].to_numpy(dtype=float)
    moved = actual != 0
    held["directional_accuracy"] = float((actual[moved] > 0).mean()) if moved.any() else float("nan")
    return {
        "zero_return": score(zero, zero.astype(int)),
        "persistence": score(persisted, persisted_direction),
        "buy_and_hold": held,
    }


def evaluate_model(
    model: Forecaster,
    test_data: pd.DataFrame,
    *,
    history: pd.DataFrame | None = None,
    fee_pct: float | None = None,
    timeframe: str | None = None,
    step_ms: int | None = None,
) -> dict[str, Any]:
    """The model's test metrics and the baselines' on the same rows.

    `history` is the data before `test_data` (context for sequence models and for the
    persistence baseline); `fee_pct` defaults to the model's (Policy.labels.fee_pct); the
    candle length is `step_ms`, else `timeframe` ("5m"), else inferred from the timestamps.
    """
    horizon = model.spec.horizon
    fee = model.spec.fee_pct if fee_pct is None else fee_pct
    step_ms = step_ms or (timeframe_ms(timeframe) if timeframe else candle_ms(test_data))
    predictions = model.predict(test_data, history=history)
    metrics = prediction_metrics(
        predictions["predicted_return"].to_numpy(),
        predictions["direction"].to_numpy(),
        predictions["confidence"].to_numpy(),
        test_data,
        horizon=horizon,
        fee_pct=fee,
        periods_per_year=YEAR_MS / step_ms,
    )
    baselines = baseline_metrics(test_data, history, horizon=horizon, fee_pct=fee, step_ms=step_ms)
    return {"model": metrics, "baselines": baselines}
