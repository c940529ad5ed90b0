"""Running statistics of a shadow test against one pass of `evaluate_pairs` over the same pairs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from app.shadow_tester.running import RunningStats, evaluate_running
from app.shadow_tester.stats import ShadowEvaluationResult, Thresholds, evaluate_pairs, round_trip_fee
from tests.unit.test_shadow_stats import simulate

FEE = round_trip_fee(0.1)


def pairs(seed: int, n: int, active_rate: float = 0.55, shadow_rate: float = 0.6):
    active, shadow, realized = simulate(seed, active_rate, shadow_rate, n)
    rng = np.random.default_rng(seed + 100)
    active = np.where(rng.random(n) < 0.2, 0.0, active)  # some flat calls
    a_conf, s_conf = rng.uniform(0.5, 1.0, n), rng.uniform(0.5, 1.0, n)
    a_conf[rng.random(n) < 0.1] = np.nan  # unknown confidences
    return active, shadow, realized, a_conf, s_conf


def full(columns, total: int, thresholds: Thresholds) -> ShadowEvaluationResult:
    a, s, r, ac, sc = columns
    return evaluate_pairs(a, s, r, fee=FEE, thresholds=thresholds, active_confidence=ac, shadow_confidence=sc,
                          total_samples=total)  # fmt: skip


def in_steps(columns, cuts: list[int]) -> RunningStats:
    running = RunningStats(FEE)
    for lo, hi in zip([0, *cuts], [*cuts, columns[0].size], strict=True):
        running = running.extended(*(c[lo:hi] for c in columns))
        running = RunningStats.from_json(running.to_json())  # as kept in the database between steps
    return running


def figures(result: ShadowEvaluationResult) -> list[float]:
    out = [result.improvement_pct, result.pnl_difference, result.p_value_better, result.p_value_worse]
    for metrics in (result.active_metrics, result.shadow_metrics):
        out += [float(v) for v in dataclasses.astuple(metrics)]
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_one_block_is_bit_identical_to_evaluate_pairs(seed: int) -> None:
    columns = pairs(seed, 3000)
    thresholds = Thresholds(min_samples=1000)  # looks 1000, 2000: the decision on the first 2000
    expected = full(columns, 3000, thresholds)
    running = RunningStats(FEE).extended(*(c[:2000] for c in columns))
    assert evaluate_running(running, 3000, thresholds) == expected


@pytest.mark.parametrize("seed", [4, 5, 6, 7])
def test_extended_in_steps_equals_one_pass_up_to_rounding(seed: int) -> None:
    n = 8000
    columns = pairs(seed, n, 0.55, 0.55 + 0.02 * (seed - 4))
    thresholds = Thresholds(min_samples=n)
    expected = full(columns, n, thresholds)
    got = evaluate_running(in_steps(columns, [1, 999, 1000, 4321, 7999]), n, thresholds)
    assert got.recommendation == expected.recommendation and got.reasons == expected.reasons
    assert (got.active_metrics.samples, got.active_metrics.trades) == (n, expected.active_metrics.trades)
    # Counts and the drawdown (a sum continued one term after the other) are exact; sums grouped otherwise.
    assert got.shadow_metrics.max_drawdown_pct == expected.shadow_metrics.max_drawdown_pct
    assert got.active_metrics.hit_rate == expected.active_metrics.hit_rate
    assert figures(got) == pytest.approx(figures(expected), rel=1e-12, abs=1e-15)


def test_a_promotion_and_a_rejection_are_decided_alike() -> None:
    thresholds = Thresholds(min_samples=1000)
    for rates, decision in (((0.5, 0.62), "PROMOTE"), ((0.62, 0.5), "REJECT")):
        columns = pairs(11, 1000, *rates)
        expected = full(columns, 1000, thresholds)
        assert expected.recommendation == decision
        assert evaluate_running(in_steps(columns, [10, 500]), 1000, thresholds).recommendation == decision


def test_the_state_reads_back_exactly() -> None:
    running = in_steps(pairs(8, 500), [100])
    again = RunningStats.from_json(running.to_json())
    assert again == running and again.pairs == 500


def test_bad_pairs_are_refused_and_change_nothing() -> None:
    a, s, r, ac, sc = pairs(9, 10)
    running = RunningStats(FEE).extended(a, s, r, ac, sc)
    with pytest.raises(ValueError, match="active_direction holds values other than -1, 0, 1"):
        running.extended(a * 2, s, r, ac, sc)
    with pytest.raises(ValueError, match="realized_return holds 1 non-finite"):
        running.extended(a, s, np.where(np.arange(10) == 3, np.inf, r), ac, sc)
    with pytest.raises(ValueError, match="one length"):
        running.extended(a[:5], s, r, ac, sc)
    assert running.pairs == 10


def test_no_pairs_yet_is_continue_testing() -> None:
    result = evaluate_running(RunningStats(FEE), 0, Thresholds())
    assert result.recommendation == "CONTINUE_TESTING" and result.decision_samples == 0
    assert result == full((np.empty(0),) * 5, 0, Thresholds())


def test_block_robust_statistics_in_steps_equal_one_pass_and_read_back() -> None:
    # As the service keeps them: 2-hour blocks of pairs asked hourly; the steps cut inside blocks.
    from tests.unit.test_shadow_stats import HOUR_US, hourly_us

    n, block = 4000, 2 * HOUR_US
    columns = pairs(12, n, 0.55, 0.58)
    stamps = hourly_us(n)
    thresholds = Thresholds(min_samples=n)
    a, s, r, ac, sc = columns
    expected = evaluate_pairs(a, s, r, fee=FEE, thresholds=thresholds, active_confidence=ac, shadow_confidence=sc,
                              timestamp_us=stamps, block_us=block)  # fmt: skip
    running = RunningStats(FEE, block_us=block)
    for lo, hi in zip([0, 1, 999, 2500], [1, 999, 2500, n], strict=True):
        running = running.extended(*(c[lo:hi] for c in columns), stamps[lo:hi])
        running = RunningStats.from_json(running.to_json())
    got = evaluate_running(running, n, thresholds)
    assert got.test_blocks == expected.test_blocks == 2000 and got.block_hours == 2.0
    assert got.recommendation == expected.recommendation
    assert got.p_value_better == pytest.approx(expected.p_value_better, rel=1e-9)
    # Independent pairs in blocks of two: the same evidence as the t-test over pairs, give or take.
    assert got.p_value_better == pytest.approx(full(columns, n, thresholds).p_value_better, rel=0.5)
    with pytest.raises(ValueError, match="needs every pair's timestamp_us"):
        running.extended(*(c[:3] for c in columns))
