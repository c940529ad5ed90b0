"""Outcomes: the realized return of a prediction, from a closed trade or from candles.

From a trade (`execution.trade.closed`): `realized_return` when the event carries it (the
market's log return over the trade); otherwise `side * pnl_pct / 100`, where `pnl_pct` is
in percent (3.0 = +3 %, the specification's reward example) and `side` is the trade's
direction (`side`: LONG/BUY or SHORT/SELL, or `direction`: 1/-1), by default the active
model's call, which is what the trading engine traded.

From candles, once the horizon has passed: the log return between the price at the
prediction's time and the price at its horizon end, where the price at T is the close
of the candle that closed in (T - timeframe, T]. A candle missing there leaves the row
open (a later pass may find it); rows still open `EXPIRE_AFTER` past their horizon are
closed as `expired` without a return, so they never count in an evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.core.db.models import Candle
from app.data_pipeline.timeframes import to_ms
from app.shadow_tester.rows import InvalidPredictionError

EXPIRE_AFTER = timedelta(days=3)
_SIDES = {"LONG": 1, "BUY": 1, "SHORT": -1, "SELL": -1}


def realized_return_from_trade(outcome: Mapping[str, Any], default_side: int | None, where: str = "outcome") -> float:
    """The realized return a trade outcome implies (see module doc); clear error if none."""
    if not isinstance(outcome, Mapping):
        raise InvalidPredictionError(f"{where}: expected an object, got {type(outcome).__name__}")
    if outcome.get("realized_return") is not None:
        value = _finite(outcome["realized_return"], f"{where}.realized_return")
        return value
    if outcome.get("pnl_pct") is None:
        raise InvalidPredictionError(f"{where}: needs `realized_return` or `pnl_pct`")
    pnl_pct = _finite(outcome["pnl_pct"], f"{where}.pnl_pct")
    side = _side(outcome, where)
    if side is None:
        side = default_side
    if not side:
        raise InvalidPredictionError(
            f"{where}: `pnl_pct` needs the trade's side (`side` LONG/SHORT or `direction` 1/-1); "
            "the active model's call was flat"
        )
    return side * pnl_pct / 100.0


def _side(outcome: Mapping[str, Any], where: str) -> int | None:
    if outcome.get("side") is not None:
        side = _SIDES.get(str(outcome["side"]).upper())
        if side is None:
            raise InvalidPredictionError(f"{where}.side: {outcome['side']!r} is not LONG/BUY or SHORT/SELL")
        return side
    if outcome.get("direction") is not None:
        if outcome["direction"] not in (-1, 1):
            raise InvalidPredictionError(f"{where}.direction: {outcome['direction']!r} is not 1 or -1")
        return int(outcome["direction"])
    return None


def _finite(value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidPredictionError(f"{where}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise InvalidPredictionError(f"{where}: {value!r} is not finite")
    return number


def prices_at(
    open_time_ms: NDArray[np.int64], close: NDArray[np.float64], timeframe_ms: int, when_ms: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Close of the candle that closed in (T - timeframe, T] for each T; NaN where none did.

    `open_time_ms` must be sorted ascending (the candle store's order).
    """
    if open_time_ms.size == 0:
        return np.full(when_ms.shape, np.nan)
    close_time = open_time_ms + timeframe_ms
    index = np.searchsorted(close_time, when_ms, side="right") - 1
    valid = index >= 0
    safe = np.where(valid, index, 0)
    fresh = valid & (close_time[safe] > when_ms - timeframe_ms)
    return np.where(fresh, close[safe], np.nan)


def candle_returns(
    session: Session,
    exchange: str,
    timeframe: str,
    timeframe_ms: int,
    symbol: str,
    start: NDArray[np.int64],
    end: NDArray[np.int64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """(log return, entry price, exit price) per (start, end) pair of one symbol; NaN if unknown."""
    low, high = int(start.min()) - 2 * timeframe_ms, int(end.max())
    rows = session.execute(
        select(Candle.open_time, Candle.close)
        .where(
            Candle.exchange == exchange,
            Candle.symbol == symbol,
            Candle.timeframe == timeframe,
            Candle.open_time >= low,
            Candle.open_time <= high,
        )
        .order_by(Candle.open_time)
    ).all()
    open_time = np.array([r[0] for r in rows], dtype=np.int64)
    close = np.array([r[1] for r in rows], dtype=np.float64)
    entry = prices_at(open_time, close, timeframe_ms, start)
    exit_ = prices_at(open_time, close, timeframe_ms, end)
    with np.errstate(invalid="ignore", divide="ignore"):
        returns = np.log(exit_ / entry)
    return returns, entry, exit_


def resolve_frame(
    session: Session, frame: pd.DataFrame, exchange: str, timeframe: str, tf_ms: int, now: datetime
) -> list[dict[str, Any]]:
    """Update dicts (id, actual_outcome, realized_return, outcome_recorded_at) for open rows
    (`id, symbol, timestamp, horizon_end`) the candles can close, or that have expired."""
    updates: list[dict[str, Any]] = []
    recorded_at = utcnow()
    for symbol, group in frame.groupby("symbol"):
        start = np.array([to_ms(t) for t in group["timestamp"]], dtype=np.int64)
        end = np.array([to_ms(t) for t in group["horizon_end"]], dtype=np.int64)
        returns, entry, exit_ = candle_returns(session, exchange, timeframe, tf_ms, str(symbol), start, end)
        for i, (row_id, horizon_end) in enumerate(zip(group["id"], group["horizon_end"], strict=True)):
            if np.isfinite(returns[i]):
                outcome = {"source": "candles", "entry_price": float(entry[i]), "exit_price": float(exit_[i])}
                realized: float | None = float(returns[i])
            elif horizon_end + EXPIRE_AFTER <= now:
                outcome, realized = {"source": "expired", "reason": "no candles at entry or horizon end"}, None
            else:
                continue
            updates.append(
                {
                    "id": int(row_id),
                    "actual_outcome": outcome | {"realized_return": realized},
                    "realized_return": realized,
                    "outcome_recorded_at": recorded_at,
                }
            )
    return updates
