"""The performance drift check's tests are block-robust: a live model's trades overlap in time and
its symbols move together, so counting each trade as new evidence calls a sound model degraded."""

from __future__ import annotations

import numpy as np
import pytest

from app.drift_detector.performance import PerformanceWindow, evaluate_performance
from app.drift_detector.stats import Severity
from tests.unit.test_shadow_stats import HOUR_US, dependent_pairs


def _window(seed: int, skill: float = 0.0, blocked: bool = True) -> PerformanceWindow:
    """A live model's closed trades: hourly calls on 8 correlated symbols, 3-hour labels, persistent calls;
    `skill`: the share of calls replaced by the label's sign."""
    _, shadow, realized, stamps = dependent_pairs(seed, skill=skill)
    return PerformanceWindow(shadow, realized, stamps if blocked else None, 6 * HOUR_US if blocked else 0.0)


def _won(window: PerformanceWindow) -> float:
    return float((np.sign(window.direction) * window.realized_return > 0).mean())


def test_a_model_trading_at_its_baseline_is_not_called_degraded_by_correlated_losses() -> None:
    # 200 markets where the model wins exactly as often as its baseline says it should (a coin): the
    # binomial test and the t-test over trades, which take 4,800 overlapping trades on correlated
    # symbols as independent, call it degraded in far more than 5 % of them; the block tests do not.
    metrics = {"directional_accuracy": 0.5, "avg_pnl": 0.0}
    naive = sum(evaluate_performance(_window(s, blocked=False), metrics, 0.05, 30).severity is not Severity.NONE
                for s in range(200))  # fmt: skip
    robust = [evaluate_performance(_window(s), metrics, 0.05, 30) for s in range(200)]
    assert naive >= 45, naive  # 54 measured
    assert sum(o.severity is not Severity.NONE for o in robust) <= 25  # 19: two tests at 5 % each
    first = robust[0].summary
    assert first["test_blocks"] == 100 and first["block_hours"] == 6.0
    assert 0 <= first["winrate_p_value"] <= 1 and 0 <= first["winrate_p_value_iid"] <= 1


def test_a_real_drop_is_still_found() -> None:
    # The baseline is the winrate of a model that knew 40 % of the labels; the live model knows 15 %
    # of them (a drop of about 0.13 in winrate): the block tests find it in (nearly) every market.
    found = 0
    for seed in range(50):
        promised = _won(_window(seed, skill=0.4))
        outcome = evaluate_performance(_window(seed, skill=0.15), {"directional_accuracy": promised}, 0.05, 30)
        found += outcome.severity in (Severity.HIGH, Severity.CRITICAL)
    assert found >= 45


def test_the_trades_order_does_not_matter() -> None:
    # Closed predictions come back from the store in any order: the blocks are summed in time order.
    window = _window(4, skill=0.1)
    shuffled = np.random.default_rng(0).permutation(len(window.direction))
    assert window.timestamp_us is not None
    mixed = PerformanceWindow(
        window.direction[shuffled], window.realized_return[shuffled], window.timestamp_us[shuffled], window.block_us
    )
    metrics = {"directional_accuracy": 0.6}
    one, other = evaluate_performance(window, metrics, 0.05, 30), evaluate_performance(mixed, metrics, 0.05, 30)
    # (equal up to the order of additions inside a block)
    assert one.summary["winrate_p_value"] == pytest.approx(other.summary["winrate_p_value"], rel=1e-9)
    assert one.summary["avg_pnl_p_value"] == pytest.approx(other.summary["avg_pnl_p_value"], rel=1e-9)
    assert one.summary["winrate_p_value"] < 0.05
    assert one.severity is other.severity


def test_the_baseline_is_the_walk_forward_hit_rate_before_the_single_test_part() -> None:
    # The main run's first xgboost: its last-tenth test part read 0.78, its walk-forward folds 0.59.
    # Live trades at 0.60 are a drop from the first and none from the second.
    metrics = {
        "directional_accuracy": 0.78,
        "cross_validation": {"pooled": {"model": {"directional_accuracy": 0.59}}},
    }
    window = _window(4, skill=0.2)
    live = _won(window)
    assert 0.58 < live < 0.62
    outcome = evaluate_performance(window, metrics, 0.05, 30)
    assert outcome.summary["baseline_winrate"] == 0.59
    assert outcome.summary["baseline_source"] == "cross_validation.pooled.model.directional_accuracy"
    assert outcome.severity is Severity.NONE
    single = evaluate_performance(window, {"directional_accuracy": 0.78}, 0.05, 30)
    assert single.summary["baseline_source"] == "directional_accuracy" and single.severity is Severity.HIGH
    assert evaluate_performance(window, {**metrics, "winrate": 0.7}, 0.05, 30).summary["baseline_winrate"] == 0.7
