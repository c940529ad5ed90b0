"""Scoring that cannot flatter: one staggered book, one fee rule, block-bootstrap intervals.

Every strategy (a model and each baseline) is scored the same way on the same rows:

- **Staggered book.** Each row's position (-1..1) opens a slice of 1/horizon of the symbol's
  capital, held for `horizon` candles: the book's exposure at a candle is the mean of the
  last `horizon` positions, so every prediction counts and no phase is chosen. Its one-candle
  return is the exposure times the candle's return (from `close`; without prices, each
  slice's label is spread evenly over its candles, an approximation marked `book: spread`).
  Symbols share the capital equally, a symbol absent at a time contributes nothing.
- **Fees on position changes.** A fee of `fee_pct` percent is paid on every change of the
  book's exposure, including the entry and the closing of the book at the end: a constant
  position pays one round trip, buy-and-hold pays its entry (and its exit), a flat strategy
  pays nothing.
- **Directional accuracy on traded rows**, beside the share of rows traded: a row is traded
  when its direction is not 0, and counts when the label moved.
- **Market-neutral strategies** (`neutral`: a forecast of the return relative to the market):
  what is traded is a long/short book, each symbol's direction less the mean direction of
  every symbol at that time (long the symbol, short the equal-weighted market), so the
  positions netted per symbol are what the book holds and pays fees on; a row counts as traded
  when its netted position is not 0, and is right when that sign matches the symbol's return
  relative to the cross-section's mean (what a zero-sum book earns).
- **Intervals from a circular block bootstrap over time**: blocks of at least twice the
  horizon (overlapping labels, persistent positions), all symbols resampled together (the
  per-timestamp table is resampled, never a row), the same draws for every strategy, so
  the difference to each baseline is paired.

Pure: arrays and frames in, numbers out (López de Prado, AFML ch. 7; Politis & Romano 1994).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

TARGET = "future_return"
YEAR_MS = 365 * 86_400_000
BASELINES = ("zero_return", "persistence", "buy_and_hold")
GATE_BASELINES = ("zero_return", "buy_and_hold")
# A market-neutral book (a forecast of the return relative to the market, traded long/short) is
# compared with the books of its own kind: flat, and persistence of the relative return traded
# market-neutral (cross-sectional momentum: long the recent winners, short the recent losers).
# Buy-and-hold carries the market's beta, which such a book hedges away: not a baseline of it.
NEUTRAL_BASELINES = ("market_neutral_persistence",)
NEUTRAL_GATE_BASELINES = ("zero_return", "market_neutral_persistence")
COMPARED = BASELINES + NEUTRAL_BASELINES  # every baseline a strategy is compared with, where present
_MAX_DRAW_CELLS = 4_000_000  # rows x replicates resampled at once


@dataclass(frozen=True)
class Bootstrap:
    """How intervals are drawn: `replicates` circular block resamples, blocks of >= `block` timestamps."""

    replicates: int = 1000
    level: float = 0.95
    seed: int = 0
    block: int | None = None  # default: max(2 x horizon, n^(1/3))

    def block_length(self, n: int, horizon: int) -> int:
        if self.block is not None:
            return max(1, min(n, max(self.block, horizon)))
        return max(1, min(n, max(2 * horizon, math.ceil(n ** (1 / 3)))))


def book_exposure(position: np.ndarray, horizon: int) -> np.ndarray:
    """Exposure of the staggered book per candle step: len(position) + horizon - 1 steps."""
    position = np.asarray(position, dtype=float)
    if len(position) == 0:
        return np.zeros(0)
    return np.convolve(position, np.ones(horizon))[: len(position) + horizon - 1] / horizon


def book_turnover(exposure: np.ndarray) -> np.ndarray:
    """|change of exposure| per step, the entry included; the last step also closes the book."""
    turnover = np.abs(np.diff(exposure, prepend=0.0))
    if len(turnover):
        turnover[-1] += abs(exposure[-1])
    return turnover


def _step_returns(sub: pd.DataFrame, horizon: int) -> np.ndarray | None:
    """One-candle log returns of a symbol's rows and the `horizon - 1` candles after the last row.

    The prices after the last row are its labels' ends: log close[i + h] = log close[i] + label[i].
    None without prices, or when the rows are fewer than the horizon.
    """
    n = len(sub)
    if "close" not in sub.columns or n < horizon:
        return None
    log_close = np.log(sub["close"].to_numpy(dtype=float))
    label = sub[TARGET].to_numpy(dtype=float)
    tail = log_close[n - horizon :] + label[n - horizon :]  # prices at rows n .. n + h - 1
    prices = np.concatenate([log_close, tail])
    return np.diff(prices)[: n + horizon - 1]


def symbol_book(sub: pd.DataFrame, position: np.ndarray, horizon: int, fee_pct: float) -> tuple[np.ndarray, bool]:
    """Net one-candle returns of one symbol's staggered book (rows in time order), and whether exact."""
    exposure = book_exposure(position, horizon)
    returns = _step_returns(sub, horizon)
    if returns is not None:
        gross = exposure * np.expm1(returns)
    else:
        # No prices: each slice earns its label spread evenly over its candles.
        per_slice = np.asarray(position, dtype=float) * np.expm1(sub[TARGET].to_numpy(dtype=float)) / horizon
        gross = np.convolve(per_slice, np.ones(horizon))[: len(exposure)] / horizon
    return gross - book_turnover(exposure) * fee_pct / 100.0, returns is not None


def strategy_table(
    frame: pd.DataFrame,
    positions: Mapping[str, np.ndarray],
    *,
    horizon: int,
    fee_pct: float,
    step_ms: int,
    neutral: Collection[str] = (),
) -> tuple[pd.DataFrame, bool]:
    """Per timestamp: each strategy's portfolio net return (`<name>:net`), its traded rows with a
    moved label (`<name>:traded`) and the right ones (`<name>:hits`), and the row count (`rows`).

    `positions` hold one value per row of `frame` (-1..1; the sign is the direction); those of
    the strategies named in `neutral` are traded market-neutral (`market_neutral`). Returns
    the table and whether every book had prices (exact).
    """
    symbols = frame["symbol"].to_numpy()
    stamps = frame["timestamp"].to_numpy(dtype=np.int64)
    actual = frame[TARGET].to_numpy(dtype=float)
    positions = {
        name: market_neutral(np.asarray(p, dtype=float), stamps) if name in neutral else np.asarray(p, dtype=float)
        for name, p in positions.items()
    }
    relative = actual - pd.Series(actual).groupby(stamps).transform("mean").to_numpy() if neutral else actual
    order = np.lexsort((stamps, symbols))
    names = list(positions)
    unique_symbols = pd.unique(symbols[order])
    columns: dict[str, pd.Series] = {}
    exact = True
    nets: dict[str, list[pd.Series]] = {name: [] for name in names}
    for symbol in unique_symbols:
        rows = order[symbols[order] == symbol]
        sub = frame.iloc[rows]
        times = stamps[rows]
        tail = times[-1] + step_ms * np.arange(1, horizon)
        step_times = np.concatenate([times, tail])
        for name in names:
            net, had_prices = symbol_book(sub, np.asarray(positions[name], dtype=float)[rows], horizon, fee_pct)
            exact &= had_prices
            nets[name].append(pd.Series(net, index=step_times[: len(net)]))
    n_symbols = max(len(unique_symbols), 1)
    for name in names:
        joined = pd.concat(nets[name]) if nets[name] else pd.Series(dtype=float)
        columns[f"{name}:net"] = joined.groupby(level=0).sum() / n_symbols
    for name in names:
        earned = relative if name in neutral else actual
        direction = np.sign(np.asarray(positions[name], dtype=float))
        traded = (direction != 0) & (earned != 0)
        hits = traded & (direction == np.sign(earned))
        columns[f"{name}:traded"] = pd.Series(traded.astype(float)).groupby(stamps).sum()
        columns[f"{name}:hits"] = pd.Series(hits.astype(float)).groupby(stamps).sum()
        columns[f"{name}:positioned"] = pd.Series((direction != 0).astype(float)).groupby(stamps).sum()
    columns["rows"] = pd.Series(np.ones(len(stamps))).groupby(stamps).sum()
    table = pd.DataFrame(columns).sort_index().fillna(0.0)
    table.index.name = "timestamp"
    return table, exact


def market_neutral(position: np.ndarray, stamps: np.ndarray) -> np.ndarray:
    """Each row's position less the mean position of the rows at its timestamp: the netted long/short
    book of "long this symbol, short the equal-weighted market" (sums to 0 at every time)."""
    position = np.asarray(position, dtype=float)
    if len(position) == 0:
        return position
    return position - pd.Series(position).groupby(np.asarray(stamps)).transform("mean").to_numpy()


def _sharpe(net: np.ndarray, periods_per_year: float) -> np.ndarray:
    """Annualised Sharpe along the last axis (0 where the returns do not vary)."""
    mean = net.mean(axis=-1)
    std = net.std(axis=-1, ddof=1) if net.shape[-1] > 1 else np.zeros_like(mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(std > 1e-15, mean / std * np.sqrt(periods_per_year), 0.0)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.maximum(denominator, 1e-300), np.nan)


def _statistics(table: dict[str, np.ndarray], names: list[str], periods_per_year: float) -> dict[str, np.ndarray]:
    """The bootstrapped statistics of arrays shaped (..., timestamps)."""
    out: dict[str, np.ndarray] = {}
    for name in names:
        net = table[f"{name}:net"]
        out[f"{name}|sharpe"] = _sharpe(net, periods_per_year)
        out[f"{name}|annual_return"] = net.mean(axis=-1) * periods_per_year
        out[f"{name}|directional_accuracy"] = _ratio(table[f"{name}:hits"].sum(-1), table[f"{name}:traded"].sum(-1))
    return out


def block_starts(rng: np.random.Generator, n: int, block: int, replicates: int) -> np.ndarray:
    """Circular block bootstrap: (replicates, ceil(n / block)) start indices of the blocks."""
    return rng.integers(0, n, size=(replicates, math.ceil(n / block)))


def block_indices(rng: np.random.Generator, n: int, block: int, replicates: int) -> np.ndarray:
    """Circular block bootstrap: (replicates, n) indices made of runs of `block` consecutive ones."""
    starts = block_starts(rng, n, block, replicates)
    return ((starts[:, :, None] + np.arange(block)) % n).reshape(replicates, starts.shape[1] * block)[:, :n]


def _window_sums(values: np.ndarray, length: int) -> np.ndarray:
    """Per index, the sum of the `length` values starting there, wrapping around (circular)."""
    n = len(values)
    prefix = np.concatenate(([0.0], np.cumsum(np.concatenate((values, values[:length])))))
    return prefix[length : length + n] - prefix[:n]


def _resampled_sums(values: np.ndarray, starts: np.ndarray, block: int) -> np.ndarray:
    """Per replicate, the sum of the series that `block_indices` would draw from these starts (every
    block whole, the last cut to make n values), from window sums: no (replicates, n) array."""
    n = len(values)
    last = n - (starts.shape[1] - 1) * block
    total = _window_sums(values, last)[starts[:, -1]]
    if starts.shape[1] > 1:
        total = total + _window_sums(values, block)[starts[:, :-1]].sum(axis=1)
    return total


def _resampled_statistics(
    arrays: Mapping[str, np.ndarray], names: list[str], starts: np.ndarray, block: int, periods_per_year: float
) -> dict[str, np.ndarray]:
    """`_statistics` of each replicate drawn by `starts`, from sums over its blocks: the mean and the
    sample standard deviation from the sums of x and x^2 (a spread below 1e-6 of the returns' root
    mean square is rounding: 0, as for a constant series), the accuracy from hits and traded rows."""
    n = len(next(iter(arrays.values())))
    out: dict[str, np.ndarray] = {}
    for name in names:
        net = arrays[f"{name}:net"]
        s1, s2 = _resampled_sums(net, starts, block), _resampled_sums(net * net, starts, block)
        mean = s1 / n
        var = np.maximum(s2 - s1 * mean, 0.0) / (n - 1)
        var = np.where(var > 1e-12 * s2 / n, var, 0.0)
        std = np.sqrt(var)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"{name}|sharpe"] = np.where(std > 1e-15, mean / std * np.sqrt(periods_per_year), 0.0)
        out[f"{name}|annual_return"] = mean * periods_per_year
        hits = _resampled_sums(arrays[f"{name}:hits"], starts, block)
        traded = _resampled_sums(arrays[f"{name}:traded"], starts, block)
        out[f"{name}|directional_accuracy"] = _ratio(hits, traded)  # counts: their sums are exact
    return out


def bootstrap_intervals(
    table: pd.DataFrame,
    names: list[str],
    *,
    horizon: int,
    periods_per_year: float,
    bootstrap: Bootstrap,
    compare_to: tuple[str, ...] = BASELINES,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of each strategy's Sharpe, annual return and directional accuracy, and of
    the differences (`<name>-<other>|<stat>`) to each of `compare_to`, on shared draws (paired)."""
    n = len(table)
    if n < 2 or bootstrap.replicates < 1:
        return {}
    arrays = {c: table[c].to_numpy(dtype=float) for c in table.columns}
    block = bootstrap.block_length(n, horizon)
    rng = np.random.default_rng(bootstrap.seed)
    draws: dict[str, list[np.ndarray]] = {}
    chunk = max(1, _MAX_DRAW_CELLS // n)  # the draws in the chunks `block_indices` was called with
    left = bootstrap.replicates
    while left > 0:
        size = min(chunk, left)
        left -= size
        starts = block_starts(rng, n, block, size)
        stats = _resampled_statistics(arrays, names, starts, block, periods_per_year)
        for key, values in stats.items():
            draws.setdefault(key, []).append(values)
        for name in names:
            for other in compare_to:
                if other != name and other in names:
                    for stat in ("sharpe", "annual_return", "directional_accuracy"):
                        diff = stats[f"{name}|{stat}"] - stats[f"{other}|{stat}"]
                        draws.setdefault(f"{name}-{other}|{stat}", []).append(diff)
    tail = (1 - bootstrap.level) / 2 * 100
    out = {}
    for key, parts in draws.items():
        values = np.concatenate(parts)
        values = values[np.isfinite(values)]
        if len(values):
            low, high = np.percentile(values, [tail, 100 - tail])
            out[key] = (float(low), float(high))
    return out


def _drawdown(net: np.ndarray) -> tuple[float, float]:
    """(max drawdown, total return) of compounding `net`."""
    if len(net) == 0:
        return 0.0, 0.0
    equity = np.cumprod(1 + net)
    peak = np.maximum.accumulate(np.maximum(equity, 1.0))
    return float(max((1 - equity / peak).max(), 0.0)), float(equity[-1] - 1)


def summarize(
    table: pd.DataFrame,
    names: list[str],
    *,
    horizon: int,
    periods_per_year: float,
    bootstrap: Bootstrap | None = None,
    compare_to: tuple[str, ...] = BASELINES,
) -> dict[str, dict[str, Any]]:
    """Each strategy's figures from a strategy table, with `interval_95` per metric and, against
    each of `compare_to` present in the table, the difference and its interval (`vs`)."""
    bootstrap = bootstrap or Bootstrap()
    arrays = {c: table[c].to_numpy(dtype=float) for c in table.columns}
    point = _statistics(arrays, names, periods_per_year)
    intervals = bootstrap_intervals(
        table, names, horizon=horizon, periods_per_year=periods_per_year, bootstrap=bootstrap, compare_to=compare_to
    )
    rows = float(arrays["rows"].sum()) if "rows" in arrays else 0.0
    level_key = f"interval_{round(bootstrap.level * 100)}"
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        net = arrays[f"{name}:net"]
        drawdown, total = _drawdown(net)
        metrics: dict[str, Any] = {
            "sharpe": float(point[f"{name}|sharpe"]),
            "annual_return": float(point[f"{name}|annual_return"]),
            "total_return": total,
            "max_drawdown": drawdown,
            "directional_accuracy": float(point[f"{name}|directional_accuracy"]),
            "traded_share": float(arrays[f"{name}:positioned"].sum() / rows) if rows else 0.0,
            "trades": int(arrays[f"{name}:positioned"].sum()),
            "periods": len(net),
        }
        metrics[level_key] = {
            stat: list(intervals[f"{name}|{stat}"])
            for stat in ("sharpe", "annual_return", "directional_accuracy")
            if f"{name}|{stat}" in intervals
        }
        versus: dict[str, dict[str, Any]] = {}
        for other in compare_to:
            if other == name or other not in names:
                continue
            versus[other] = {
                f"{stat}_diff": float(point[f"{name}|{stat}"] - point[f"{other}|{stat}"])
                for stat in ("sharpe", "annual_return", "directional_accuracy")
            }
            versus[other][level_key] = {
                f"{stat}_diff": list(intervals[f"{name}-{other}|{stat}"])
                for stat in ("sharpe", "annual_return", "directional_accuracy")
                if f"{name}-{other}|{stat}" in intervals
            }
        if versus:
            metrics["vs"] = versus
        out[name] = metrics
    return out


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    reason: str
    figures: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "reason": self.reason, "figures": self.figures}


def baseline_gate(
    scores: Mapping[str, Any],
    *,
    margin: float,
    against: tuple[str, ...] = GATE_BASELINES,
    name: str = "model",
    note: str = "",
) -> GateVerdict:
    """Pass when the model's Sharpe beats each baseline's by `margin` and the lower end of the
    bootstrap interval of the difference is above zero; the reason names the baselines (and
    `note`, why those) and gives the figures either way."""
    model = scores.get(name) or {}
    figures: dict[str, Any] = {}
    failures, passes = [], []
    for baseline in against:
        versus = (model.get("vs") or {}).get(baseline)
        if versus is None:
            failures.append(f"no comparison with {baseline}")
            continue
        diff = float(versus["sharpe_diff"])
        interval = versus.get("interval_95", {}).get("sharpe_diff")
        low = float(interval[0]) if interval else float("nan")
        figures[baseline] = {"sharpe_diff": diff, "interval_95": interval}
        text = f"Sharpe {diff:+.2f} vs {baseline} (95% interval {_fmt_interval(interval)})"
        if diff >= margin and low > 0:
            passes.append(text)
        else:
            need = f"needs >= {margin:+.2f} with the interval above 0"
            failures.append(f"{text}; {need}")
    figures["sharpe"] = model.get("sharpe")
    figures["directional_accuracy"] = model.get("directional_accuracy")
    figures["traded_share"] = model.get("traded_share")
    figures["baselines"] = list(against)
    used = f"baselines {', '.join(against)}" + (f" ({note})" if note else "")
    if failures:
        return GateVerdict(False, f"fails the baseline gate after fees [{used}]: " + "; ".join(failures), figures)
    return GateVerdict(True, f"beats the baselines after fees [{used}]: " + "; ".join(passes), figures)


def gate_baselines(market_neutral_book: bool) -> tuple[str, ...]:
    """The baselines a model is gated against: its own kind of book's (see NEUTRAL_GATE_BASELINES)."""
    return NEUTRAL_GATE_BASELINES if market_neutral_book else GATE_BASELINES


def _fmt_interval(interval: Any) -> str:
    if not interval:
        return "n/a"
    return f"[{interval[0]:+.2f}, {interval[1]:+.2f}]"


__all__ = [
    "BASELINES",
    "COMPARED",
    "GATE_BASELINES",
    "NEUTRAL_BASELINES",
    "NEUTRAL_GATE_BASELINES",
    "Bootstrap",
    "GateVerdict",
    "baseline_gate",
    "block_indices",
    "block_starts",
    "book_exposure",
    "book_turnover",
    "bootstrap_intervals",
    "gate_baselines",
    "market_neutral",
    "strategy_table",
    "summarize",
    "symbol_book",
]
