"""Performance drift, pure: a window of closed predictions against the model's own baseline.

A trade is a prediction with a non-zero direction and a realized return; it wins when
direction * realized_return > 0 and its PnL is direction * realized_return.

Baselines come from the model's registry metrics: winrate = `winrate`, else the pooled
walk-forward hit rate on traded rows (`cross_validation.pooled.model.directional_accuracy`),
else `directional_accuracy` (the single test part's). The walk-forward figure first: it pools
every fold's test rows, where the single test part is the last tenth of the window (hours of
15m candles in a 3-day drift window) and read 0.78 where the folds read 0.59 in the main run,
so live trades "dropped" far below a baseline that was luck; average PnL per trade = `avg_pnl` if the
training recorded it, else 0 (break-even). Tests, one-sided at level `alpha`: the winrate below
its baseline, and the PnL per trade below its baseline.

The trades are not independent: a prediction's label spans `horizon` candles, so one symbol's
trades overlap in time, and the symbols move together. With the trades' timestamps and a block
length (`PerformanceWindow.timestamp_us`, `block_us`: the shadow test's blocks of two label
horizons) both tests are the shadow test's block-robust t-test (`TimeBlocks`: the per-trade
win - baseline, or PnL - baseline, summed per time block over all symbols, cluster-robust
variance with a Newey-West term, blocks - 1 degrees of freedom). Counting each trade as new
evidence (the binomial test and the t-test over trades, still reported as `*_p_value_iid`)
calls a model degraded on hours of correlated losses. Without timestamps they decide, as before.

Severity (first matching row; drop = baseline winrate - observed winrate):

=========  ======================================================================
CRITICAL   winrate significantly low, drop >= 0.15, and PnL significantly low
HIGH       winrate significantly low and drop >= 0.10
MEDIUM     winrate significantly low and drop >= 0.05, or PnL significantly low
LOW        winrate significantly low, drop < 0.05
NONE       neither test significant
=========  ======================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats as scipy_stats

from app.drift_detector.stats import Severity
from app.shadow_tester.stats import blocked_pvalues


@dataclass(frozen=True)
class PerformanceWindow:
    direction: NDArray[np.float64]
    realized_return: NDArray[np.float64]
    timestamp_us: NDArray[np.float64] | None = None  # each prediction's candle time, in time order
    block_us: float = 0.0  # the block-robust tests' time block (0: trades taken as independent)


@dataclass
class PerformanceOutcome:
    checked: bool
    severity: Severity = Severity.NONE
    reason: str = ""
    failing: list[tuple[str, float]] = field(default_factory=list)  # (metric, p-value)
    summary: dict[str, Any] = field(default_factory=dict)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def baseline_from_metrics(metrics: dict[str, Any]) -> tuple[float | None, float, str | None]:
    """(baseline winrate or None, baseline average PnL per trade, which metric gave the winrate)."""
    pooled = ((metrics.get("cross_validation") or {}).get("pooled") or {}).get("model") or {}
    winrate, source = None, None
    for name, value in (
        ("winrate", metrics.get("winrate")),
        ("cross_validation.pooled.model.directional_accuracy", pooled.get("directional_accuracy")),
        ("directional_accuracy", metrics.get("directional_accuracy")),
    ):
        winrate = _number(value)
        if winrate is not None:
            source = name
            break
    pnl = _number(metrics.get("avg_pnl"))
    return winrate, pnl if pnl is not None else 0.0, source


def evaluate_performance(
    window: PerformanceWindow, metrics: dict[str, Any], alpha: float, min_outcomes: int
) -> PerformanceOutcome:
    traded = (window.direction != 0) & np.isfinite(window.realized_return)
    pnl = np.sign(window.direction[traded]) * window.realized_return[traded]
    times = window.timestamp_us[traded] if window.timestamp_us is not None and window.block_us > 0 else None
    trades = len(pnl)
    baseline_winrate, baseline_pnl, baseline_source = baseline_from_metrics(metrics)
    if trades < min_outcomes:
        return PerformanceOutcome(False, reason=f"{trades} closed trades, the policy wants {min_outcomes}")
    if baseline_winrate is None:
        return PerformanceOutcome(False, reason="the model's metrics hold no winrate or directional_accuracy baseline")
    wins = int((pnl > 0).sum())
    winrate = wins / trades
    winrate_p_iid = float(scipy_stats.binomtest(wins, trades, baseline_winrate, alternative="less").pvalue)
    pnl_p_iid = 1.0
    if trades > 1 and float(np.std(pnl)) > 0:
        pnl_p_iid = float(scipy_stats.ttest_1samp(pnl, baseline_pnl, alternative="less").pvalue)
    winrate_p, pnl_p, blocks = winrate_p_iid, pnl_p_iid, None
    if times is not None:
        order = np.argsort(times, kind="stable")  # the blocks are summed in time order
        won, ordered_pnl, times = (pnl > 0)[order], pnl[order], times[order]
        _, winrate_p, blocks = blocked_pvalues(won - baseline_winrate, times, window.block_us)
        _, pnl_p, _ = blocked_pvalues(ordered_pnl - baseline_pnl, times, window.block_us)
    winrate_low, pnl_low = winrate_p < alpha, pnl_p < alpha
    drop = baseline_winrate - winrate
    if winrate_low and drop >= 0.15 and pnl_low:
        severity = Severity.CRITICAL
    elif winrate_low and drop >= 0.10:
        severity = Severity.HIGH
    elif (winrate_low and drop >= 0.05) or pnl_low:
        severity = Severity.MEDIUM
    elif winrate_low:
        severity = Severity.LOW
    else:
        severity = Severity.NONE
    failing = [(name, p) for name, p, low in (("winrate", winrate_p, winrate_low), ("avg_pnl", pnl_p, pnl_low)) if low]
    summary = {
        "trades": trades,
        "winrate": winrate,
        "baseline_winrate": baseline_winrate,
        "baseline_source": baseline_source,
        "winrate_p_value": winrate_p,
        "avg_pnl": float(pnl.mean()),
        "baseline_avg_pnl": baseline_pnl,
        "avg_pnl_p_value": pnl_p,
        "winrate_p_value_iid": winrate_p_iid,
        "avg_pnl_p_value_iid": pnl_p_iid,
        "test_blocks": blocks,
        "block_hours": window.block_us / 3.6e9 if times is not None else None,
    }
    return PerformanceOutcome(True, severity, failing=failing, summary=summary)
