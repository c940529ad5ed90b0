"""Honest evaluation: a forecaster's test metrics beside the baselines on the same rows.

Error metrics: RMSE, MAE, R2 of the predicted return; accuracy, F1, precision, recall of the
direction (-1/0/1, macro over the three classes, against the labels' `direction`);
`sign_accuracy` (signs of predicted and actual return agree; a zero forecast counts as a
coin flip); expected calibration error of the confidence on the traded rows.

Trading metrics come from `scoring` (one staggered book, fees on position changes for every
strategy and baseline alike, directional accuracy on traded rows beside the share traded,
block-bootstrap `interval_95` and the difference to each baseline).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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
from app.forecasters.targets import market_relative_return
from app.model_training.scoring import COMPARED, NEUTRAL_BASELINES, Bootstrap, strategy_table, summarize
from app.model_training.splits import candle_ms

if TYPE_CHECKING:
    from app.forecasters.base import Forecaster

_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
YEAR_MS = 365 * 86_400_000
MODEL = "model"


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


def persistence_return(frame: pd.DataFrame, history: pd.DataFrame | None, horizon: int, step_ms: int) -> np.ndarray:
    """The return of the horizon that just ended: the label of the row `horizon` candles earlier.

    That label (log close[t] - log close[t-h]) is known at t, so this is no look-ahead.
    """
    known = frame if history is None else pd.concat([history, frame], ignore_index=True)
    earlier = known[["symbol", "timestamp", TARGET]].drop_duplicates(["symbol", "timestamp"], keep="last")
    earlier = earlier.assign(timestamp=earlier["timestamp"] + horizon * step_ms)
    joined = frame[["symbol", "timestamp"]].merge(earlier, on=["symbol", "timestamp"], how="left")
    return np.nan_to_num(joined[TARGET].to_numpy(dtype=float))


def error_metrics(
    predicted: np.ndarray, direction: np.ndarray, confidence: np.ndarray, frame: pd.DataFrame
) -> dict[str, float]:
    """The forecast's errors against the labels of `frame` (no trading: see `scoring`)."""
    actual = frame[TARGET].to_numpy(dtype=float)
    labels = frame["direction"].to_numpy(dtype=int)
    moved = actual != 0
    traded = moved & (direction != 0)
    correct = direction_correct(predicted, actual)
    hit = (np.sign(direction) == np.sign(actual)).astype(float)
    classes = [-1, 0, 1]
    return {
        "rows": len(actual),
        "rmse": float(np.sqrt(mean_squared_error(actual, predicted))),
        "mae": float(mean_absolute_error(actual, predicted)),
        "r2": float(r2_score(actual, predicted)) if len(actual) > 1 else float("nan"),
        "accuracy": float(accuracy_score(labels, direction)),
        "f1": float(f1_score(labels, direction, labels=classes, average="macro", zero_division=0)),
        "precision": float(precision_score(labels, direction, labels=classes, average="macro", zero_division=0)),
        "recall": float(recall_score(labels, direction, labels=classes, average="macro", zero_division=0)),
        "sign_accuracy": float(correct[moved].mean()) if moved.any() else float("nan"),
        "calibration_error": expected_calibration_error(confidence[traded], hit[traded]),
    }


def dead_zone_direction(returns: np.ndarray, fee_pct: float) -> np.ndarray:
    """-1/0/1 outside the round-trip fee, as the labels' direction."""
    zone = math.log1p(2 * fee_pct / 100)
    return np.where(returns > zone, 1, np.where(returns < -zone, -1, 0))


def baseline_forecasts(
    frame: pd.DataFrame, history: pd.DataFrame | None, *, horizon: int, fee_pct: float, step_ms: int
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(predicted return, direction, confidence) of zero return, persistence and buy-and-hold per row."""
    n = len(frame)
    half = np.full(n, 0.5)  # the baselines claim no confidence: a coin flip
    zero = np.zeros(n)
    persisted = persistence_return(frame, history, horizon, step_ms)
    return {
        "zero_return": (zero, np.zeros(n, dtype=int), half),
        "persistence": (persisted, dead_zone_direction(persisted, fee_pct), half),
        # Always long; its return forecast is "no forecast" (zero).
        "buy_and_hold": (zero, np.ones(n, dtype=int), half),
    }


def neutral_baseline_forecasts(
    frame: pd.DataFrame, history: pd.DataFrame | None, *, horizon: int, fee_pct: float, step_ms: int
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The baselines of a market-neutral book (`scoring.NEUTRAL_BASELINES`), to be traded market-neutral:
    `market_neutral_persistence` forecasts each symbol's return relative to the cross-section by the
    relative return of the horizon that just ended (cross-sectional momentum), outside the dead zone."""
    persisted = persistence_return(frame, history, horizon, step_ms)
    relative = market_relative_return(frame.assign(_persisted=persisted), "_persisted")
    half = np.full(len(frame), 0.5)
    return {"market_neutral_persistence": (relative, dead_zone_direction(relative, fee_pct), half)}


@dataclass
class Scored:
    """One evaluated part: the strategy table (per timestamp, for pooling) and the error metrics."""

    table: pd.DataFrame
    errors: dict[str, dict[str, float]]
    exact_book: bool


def score_part(
    frame: pd.DataFrame,
    history: pd.DataFrame | None,
    forecasts: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    *,
    horizon: int,
    fee_pct: float,
    step_ms: int,
    neutral: tuple[str, ...] = (),
) -> Scored:
    """The strategies of `forecasts` (name -> arrays) and the baselines on the rows of `frame`;
    those named in `neutral` are traded as a market-neutral long/short book (`scoring.market_neutral`)."""
    every = forecasts | baseline_forecasts(frame, history, horizon=horizon, fee_pct=fee_pct, step_ms=step_ms)
    if neutral:  # a market-neutral book is compared with the market-neutral baselines too
        extra = neutral_baseline_forecasts(frame, history, horizon=horizon, fee_pct=fee_pct, step_ms=step_ms)
        every |= extra
        neutral = (*neutral, *extra)
    positions = {name: np.asarray(direction, dtype=float) for name, (_, direction, _) in every.items()}
    table, exact = strategy_table(frame, positions, horizon=horizon, fee_pct=fee_pct, step_ms=step_ms, neutral=neutral)
    errors = {name: error_metrics(*arrays, frame) for name, arrays in every.items()}
    return Scored(table, errors, exact)


def report(
    scored: list[Scored],
    *,
    horizon: int,
    step_ms: int,
    bootstrap: Bootstrap | None = None,
    compare_to: tuple[str, ...] = COMPARED,
) -> dict[str, Any]:
    """{"model": metrics, "baselines": {name: metrics}} of one or more (pooled) parts; each strategy's
    differences (`vs`) to those of `compare_to` in the parts, on paired bootstrap draws. The model's
    `market_neutral` says whether it was scored as a market-neutral book (its parts hold the
    market-neutral baselines, which `score_part` adds only for such a book)."""
    table = pd.concat([s.table for s in scored]).sort_index()
    table = table.groupby(level=0).sum()  # parts that touch (a book's tail) add up
    names = [c.removesuffix(":net") for c in table.columns if c.endswith(":net")]
    trading = summarize(
        table, names, horizon=horizon, periods_per_year=YEAR_MS / step_ms, bootstrap=bootstrap, compare_to=compare_to
    )
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        rows = sum(s.errors[name]["rows"] for s in scored)
        errors = {
            key: float(np.nansum([s.errors[name][key] * s.errors[name]["rows"] for s in scored]) / max(rows, 1))
            for key in scored[0].errors[name]
            if key != "rows"
        }
        out[name] = {
            "rows": rows,
            **errors,
            **trading[name],
            "book": "exact" if all(s.exact_book for s in scored) else "spread",
        }
    model = out.pop(MODEL, None)
    if model is not None:
        model["market_neutral"] = all(b in out for b in NEUTRAL_BASELINES)
    return {"model": model, "baselines": out}


def evaluate_model(
    model: Forecaster,
    test_data: pd.DataFrame,
    *,
    history: pd.DataFrame | None = None,
    fee_pct: float | None = None,
    timeframe: str | None = None,
    step_ms: int | None = None,
    bootstrap: Bootstrap | None = None,
) -> dict[str, Any]:
    """The model's test metrics and the baselines' on the same rows.

    `history` is the data before `test_data` (context for sequence models and for the
    persistence baseline); `fee_pct` defaults to the model's (Policy.labels.fee_pct); the
    candle length is `step_ms`, else `timeframe` ("5m"), else inferred from the timestamps.
    """
    scored, step_ms = score_model(
        model, test_data, history=history, fee_pct=fee_pct, timeframe=timeframe, step_ms=step_ms
    )
    return report([scored], horizon=model.spec.horizon, step_ms=step_ms, bootstrap=bootstrap)


def score_model(
    model: Forecaster,
    test_data: pd.DataFrame,
    *,
    history: pd.DataFrame | None = None,
    fee_pct: float | None = None,
    timeframe: str | None = None,
    step_ms: int | None = None,
) -> tuple[Scored, int]:
    """The model's predictions on `test_data` scored beside the baselines (not yet summarised)."""
    fee = model.spec.fee_pct if fee_pct is None else fee_pct
    step_ms = step_ms or (timeframe_ms(timeframe) if timeframe else candle_ms(test_data))
    predictions = model.predict(test_data, history=history)
    forecast = (
        predictions["predicted_return"].to_numpy(),
        predictions["direction"].to_numpy(),
        predictions["confidence"].to_numpy(),
    )
    # A forecast relative to the market is traded (and so scored) as a long/short book against it.
    neutral = (MODEL,) if model.spec.target == "market_relative" else ()
    scored = score_part(
        test_data, history, {MODEL: forecast}, horizon=model.spec.horizon, fee_pct=fee, step_ms=step_ms, neutral=neutral
    )
    return scored, step_ms
