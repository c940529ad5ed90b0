"""A shadow test's pairs scored as books, by the project's one scoring module (`model_training.scoring`).

The promotion decision (`stats`) compares the models per pair, each pair a full round trip.
Beside it the report shows what each model's calls would have earned as a trading book,
scored exactly as training and the benches score every model and baseline:

- **The same pairs as the decision**: the first `decision_samples` closed pairs in time order.
- **One call per symbol and candle**: pairs are placed on the policy's candle grid (their
  time floored to the candle); where a symbol was predicted several times within one candle
  the first pair counts (later ones repeat the same window; `pairs` and `candles` say how many).
- **A staggered book** (`scoring.strategy_table`): each call opens a 1/horizon slice held for
  the horizon; a candle without a pair opens nothing (the grid between a symbol's first and last
  pair is filled with flat rows, so a gap is never read as consecutive candles). Without prices
  each slice's realised return is spread over its candles (`book: spread`).
- **Fees on position changes** (per side, `labels.fee_pct`), for both models alike.
- **Directional accuracy on traded rows** beside the share of pairs traded.
- **The difference shadow - active** of Sharpe, net PnL and directional accuracy with a
  circular block-bootstrap 95 % interval over time (blocks of at least twice the horizon, every
  symbol resampled together; the same draws for both models: paired).

Cost: one indexed read of at most `decision_samples` pairs (`clm_config.auto_promote_threshold
.max_samples` bounds it) and `replicates` bootstrap draws over the book's candles.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, select

from app.core.db.frames import rows_frame
from app.core.db.models import ShadowTestResult
from app.model_training.scoring import TARGET, YEAR_MS, Bootstrap, strategy_table, summarize

NAMES = ("shadow", "active")
STATS = ("sharpe", "annual_return", "directional_accuracy")
DEFAULT_REPLICATES = 500


_COPY_SQL = (
    "COPY (SELECT symbol, (extract(epoch FROM timestamp) * 1000)::bigint, COALESCE(active_direction, 0), "
    "COALESCE(shadow_direction, 0), realized_return FROM shadow_test_results "
    "WHERE shadow_model_id = %s AND realized_return IS NOT NULL ORDER BY timestamp, id LIMIT %s) "
    "TO STDOUT WITH (FORMAT csv)"
)
COLUMNS = ["symbol", "timestamp", "active", "shadow", TARGET]


def read_book_pairs(engine: Engine, shadow_model_id: str, n: int) -> pd.DataFrame:
    """The first `n` closed pairs of the test in time order (`idx_shadow_model`): symbol, timestamp
    (ms since the epoch), both directions (a missing one is flat) and the realised return.

    PostgreSQL: one CSV COPY, the time as epoch milliseconds computed by the server (a million
    pairs in about a second, where rows through SQLAlchemy took ten); SQLite: through SQLAlchemy."""
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            cursor: Any = raw.cursor()  # psycopg2's: mogrify, copy_expert
            buffer = io.BytesIO()
            cursor.copy_expert(cursor.mogrify(_COPY_SQL, (shadow_model_id, max(n, 0))).decode(), buffer)
            cursor.close()
            raw.commit()
        finally:
            raw.close()
        buffer.seek(0)
        dtypes = {"symbol": str, "timestamp": np.int64, "active": np.float64, "shadow": np.float64, TARGET: np.float64}
        return pd.read_csv(buffer, names=COLUMNS, dtype=dtypes, keep_default_na=False)
    query = (
        select(
            ShadowTestResult.symbol,
            ShadowTestResult.timestamp,
            func.coalesce(ShadowTestResult.active_direction, 0),
            func.coalesce(ShadowTestResult.shadow_direction, 0),
            ShadowTestResult.realized_return,
        )
        .where(ShadowTestResult.shadow_model_id == shadow_model_id, ShadowTestResult.realized_return.is_not(None))
        .order_by(ShadowTestResult.timestamp, ShadowTestResult.id)
        .limit(max(n, 0))
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    frame = rows_frame(rows, COLUMNS)
    stamps = pd.to_datetime(frame["timestamp"]).to_numpy(dtype="datetime64[ms]").astype(np.int64)
    return frame.assign(timestamp=stamps)


def book_report(
    pairs: pd.DataFrame,
    *,
    horizon: int,
    step_ms: int,
    fee_pct: float,
    replicates: int = DEFAULT_REPLICATES,
    seed: int = 0,
) -> dict[str, Any]:
    """The staggered-book figures of both models on `pairs` (columns of `read_book_pairs`, time
    order) and the difference shadow - active with its block-bootstrap interval (module doc)."""
    first = _one_per_candle(pairs, step_ms)
    out: dict[str, Any] = {
        "scoring": "app.model_training.scoring: staggered book, fees on position changes, block bootstrap",
        "pairs": len(pairs),
        "candles": len(first),
        "horizon": horizon,
        "fee_pct_per_side": fee_pct,
        "bootstrap_replicates": replicates,
    }
    if first.empty:
        return out | {"shadow": None, "active": None, "difference": None}
    table, exact = book_table(first, horizon=horizon, step_ms=step_ms, fee_pct=fee_pct)
    periods_per_year = YEAR_MS / step_ms
    bootstrap = Bootstrap(replicates=replicates, seed=seed)
    scores = summarize(
        table, list(NAMES), horizon=horizon, periods_per_year=periods_per_year, bootstrap=bootstrap,
        compare_to=("active",),
    )  # fmt: skip
    periods = len(table)
    for name in NAMES:
        metrics = scores[name]
        out[name] = {
            "net_pnl": float(table[f"{name}:net"].sum()),
            "total_return": metrics["total_return"],
            "sharpe": metrics["sharpe"],
            "directional_accuracy": metrics["directional_accuracy"],
            "traded_share": metrics["traded_share"],
            "traded_rows": int(table[f"{name}:traded"].sum()),
            "max_drawdown": metrics["max_drawdown"],
            "interval_95": metrics.get("interval_95", {}),
        }
    versus = scores["shadow"].get("vs", {}).get("active", {})
    intervals = versus.get("interval_95", {})
    # Net PnL is the sum of the book's net returns: its difference is the annual return's, rescaled.
    scale = periods / periods_per_year
    pnl_interval = intervals.get("annual_return_diff")
    out["difference"] = {
        "sharpe": versus.get("sharpe_diff"),
        "net_pnl": out["shadow"]["net_pnl"] - out["active"]["net_pnl"],
        "directional_accuracy": versus.get("directional_accuracy_diff"),
        "interval_95": {
            "sharpe": intervals.get("sharpe_diff"),
            "net_pnl": [pnl_interval[0] * scale, pnl_interval[1] * scale] if pnl_interval else None,
            "directional_accuracy": intervals.get("directional_accuracy_diff"),
        },
    }
    out["book"] = "exact" if exact else "spread"
    out["periods"] = periods
    return out


def book_table(first: pd.DataFrame, *, horizon: int, step_ms: int, fee_pct: float) -> tuple[pd.DataFrame, bool]:
    """`scoring.strategy_table` of both models on one pair per (symbol, candle) (`_one_per_candle`),
    the gaps between a symbol's pairs filled with flat rows; `rows` counts the pairs only."""
    frame, real_rows = _on_the_grid(first, step_ms)
    positions = {name: frame[name].to_numpy(dtype=float) for name in NAMES}
    table, exact = strategy_table(frame, positions, horizon=horizon, fee_pct=fee_pct, step_ms=step_ms)
    # Traded share over the pairs, not the flat rows that fill the grid's gaps.
    table["rows"] = real_rows.reindex(table.index, fill_value=0.0).to_numpy(dtype=float)
    return table, exact


def _one_per_candle(pairs: pd.DataFrame, step_ms: int) -> pd.DataFrame:
    """The first pair of each (symbol, candle), the time floored to the candle grid."""
    if pairs.empty:
        return pairs
    candle = pairs["timestamp"].to_numpy(dtype=np.int64) // step_ms * step_ms
    placed = pairs.assign(timestamp=candle)
    return placed.drop_duplicates(["symbol", "timestamp"], keep="first").reset_index(drop=True)


def _on_the_grid(first: pd.DataFrame, step_ms: int) -> tuple[pd.DataFrame, pd.Series]:
    """Every candle between each symbol's first and last pair: the pairs, and flat rows (no call,
    no return) where there was none; with the count of real pairs per timestamp."""
    parts = []
    for symbol, rows in first.groupby("symbol", sort=False):
        stamps = rows["timestamp"].to_numpy(dtype=np.int64)
        grid = np.arange(stamps.min(), stamps.max() + step_ms, step_ms, dtype=np.int64)
        filled = pd.DataFrame({"timestamp": grid}).merge(rows, on="timestamp", how="left")
        parts.append(filled.assign(symbol=symbol))
    frame = pd.concat(parts, ignore_index=True)
    frame[["active", "shadow", TARGET]] = frame[["active", "shadow", TARGET]].fillna(0.0)
    real_rows = first.groupby("timestamp").size().astype(float)
    return frame, real_rows
