"""The live models against the frozen counterfactual, on the same candles (issue 17).

For every stored candle of the policy's symbols in a span, the model of each type that was
ACTIVE at the candle's close (from `model_status_history`) predicts it; the frozen
counterfactual is the first ACTIVE model of each type predicting the same rows. A book's
position is the mean of its types' directions, scored by `app/model_training/scoring.py`
(staggered book, fees on position changes). Only the tree and naive types are replayed: the
neural forecasters need each row's history as a sequence, and their inference is the run's
slow part.

A CRITICAL drift halts trading until it is resumed (`clm.trading.halted` / `clm.trading.resumed`):
the engine opens nothing then. `halted_mask` marks the rows whose close fell in a halt, so that a
book "as traded" is flat there (the models' book is not).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from app.core.db.models import Event, ModelStatusHistory
from app.data_pipeline import CandleStore, engineer_features, timeframe_ms
from app.data_pipeline.labels import generate_labels
from app.data_pipeline.timeframes import to_ms
from app.forecasters import forecaster_class
from app.model_registry import ModelRegistry
from app.model_training.scoring import YEAR_MS, Bootstrap, strategy_table, summarize
from app.model_training.storage import load_forecaster

if TYPE_CHECKING:
    from app.core.container import Container

WARMUP_CANDLES = 300


def candle_rows(container: Container, start: datetime, end: datetime | None = None) -> pd.DataFrame:
    """Features and labels (timestamp, symbol, close, future_return, features) of the stored candles
    in [start, end) of the policy's symbols, in (timestamp, symbol) order."""
    policy = container.policy_store.get()
    step = timeframe_ms(policy.data.timeframe)
    end_ms = to_ms(end) if end is not None else to_ms(datetime(2100, 1, 1))
    store = CandleStore(container)
    frames = []
    for symbol in policy.data.symbols:
        candles = store.read(
            policy.data.exchange, symbol, policy.data.timeframe, to_ms(start) - WARMUP_CANDLES * step, end_ms
        )
        candles = candles[["timestamp", "open", "high", "low", "close", "volume"]].reset_index(drop=True)
        if candles.empty:
            continue
        features = engineer_features(candles, policy.features)
        labels = generate_labels(candles[["timestamp", "close"]], policy.labels)
        rows = features.join(labels[["close", "future_return"]], how="inner")
        rows.insert(1, "symbol", symbol)
        frames.append(rows.loc[rows["timestamp"] >= to_ms(start)])
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True).sort_values(["timestamp", "symbol"], ignore_index=True)


def book_position(container: Container, rows: pd.DataFrame, *, frozen: bool) -> tuple[np.ndarray, dict[str, list[str]]]:
    """Per row, the mean direction of each type's ACTIVE model at the candle's close (`frozen`: the
    first ACTIVE model of each type); and the models used per type."""
    policy = container.policy_store.get()
    step = timeframe_ms(policy.data.timeframe)
    with container.session_factory() as session:
        history = session.execute(
            select(ModelStatusHistory.model_type, ModelStatusHistory.model_id, ModelStatusHistory.changed_at)
            .where(ModelStatusHistory.new_status == "ACTIVE")
            .order_by(ModelStatusHistory.changed_at, ModelStatusHistory.id)
        ).all()
    registry = ModelRegistry(container)
    close_ms = rows["timestamp"].to_numpy(dtype=np.int64) + step
    directions: list[np.ndarray] = []
    used: dict[str, list[str]] = {}
    for model_type in policy.training.model_types:
        if forecaster_class(model_type).NEEDS_GPU:
            continue
        spells = [(model_id, to_ms(at)) for kind, model_id, at in history if kind == model_type]
        spells = spells[:1] if frozen else spells
        if not spells:
            continue
        direction = np.zeros(len(rows))
        used[model_type] = []
        for k, (model_id, since) in enumerate(spells):
            until = spells[k + 1][1] if k + 1 < len(spells) else np.iinfo(np.int64).max
            mask = (close_ms >= (since if k else np.iinfo(np.int64).min)) & (close_ms < until)
            if mask.any():
                forecaster = load_forecaster(container, registry.get_model(model_id))
                direction[mask] = forecaster.predict(rows.loc[mask]).direction.to_numpy(dtype=float)
                used[model_type].append(model_id)
        directions.append(direction)
    return (np.mean(directions, axis=0) if directions else np.zeros(len(rows))), used


HALTED, RESUMED = "clm.trading.halted", "clm.trading.resumed"


def halted_mask(container: Container, rows: pd.DataFrame) -> np.ndarray:
    """Per row, whether trading was halted at the candle's close: from the first halt after the last
    resume (or the start) until the next resume, by the events' times (the simulated clock in a replay)."""
    step = timeframe_ms(container.policy_store.get().data.timeframe)
    close_ms = rows["timestamp"].to_numpy(dtype=np.int64) + step
    with container.session_factory() as session:
        events = session.execute(
            select(Event.topic, Event.created_at)
            .where(Event.topic.in_((HALTED, RESUMED)))
            .order_by(Event.created_at, Event.id)
        ).all()
    mask = np.zeros(len(rows), dtype=bool)
    since: int | None = None
    for topic, at in events:
        if topic == HALTED and since is None:
            since = to_ms(at)
        elif topic == RESUMED and since is not None:
            mask |= (close_ms >= since) & (close_ms < to_ms(at))
            since = None
    if since is not None:
        mask |= close_ms >= since
    return mask


def book_figures(container: Container, rows: pd.DataFrame, position: np.ndarray) -> dict[str, float]:
    """Net PnL (compounded), hit rate on traded rows, max drawdown and Sharpe (annualised) of a book."""
    policy = container.policy_store.get()
    step = timeframe_ms(policy.data.timeframe)
    horizon, fee = policy.labels.horizon, policy.labels.fee_pct
    table, _ = strategy_table(rows, {"book": position}, horizon=horizon, fee_pct=fee, step_ms=step)
    figures = summarize(
        table,
        ["book"],
        horizon=horizon,
        periods_per_year=YEAR_MS / step,
        bootstrap=Bootstrap(replicates=50),
        compare_to=(),
    )["book"]
    traded = float(table["book:traded"].sum())
    return {
        "net_pnl": figures["total_return"],
        "hit_rate": float(table["book:hits"].sum() / traded) if traded else float("nan"),
        "max_drawdown": figures["max_drawdown"],
        "sharpe": figures["sharpe"],
        "traded_share": figures["traded_share"],
        "rows": len(rows),
    }


def live_against_frozen(container: Container, since: datetime, until: datetime | None = None) -> dict[str, Any]:
    """The live and the frozen books' figures on the stored candles in [since, until)."""
    rows = candle_rows(container, since, until)
    if rows.empty:
        return {"rows": 0, "reason": f"no stored candles from {since:%Y-%m-%d %H:%M}"}
    live, live_models = book_position(container, rows, frozen=False)
    frozen, frozen_models = book_position(container, rows, frozen=True)
    return {
        "since": since.isoformat(),
        "live": book_figures(container, rows, live) | {"models": live_models},
        "frozen": book_figures(container, rows, frozen) | {"models": frozen_models},
    }
