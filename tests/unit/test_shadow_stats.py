"""Shadow-test statistics: the specification's simulation and the guards against noise."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from app.shadow_tester.stats import (
    Thresholds,
    TimeBlocks,
    book_drawdown_pct,
    evaluate_pairs,
    max_drawdown_pct,
    pair_concurrency,
    paired_t_pvalues,
    per_sample_pnl,
    round_trip_fee,
)

FEE = round_trip_fee(0.1)  # the default policy: 0.1 % per side


def simulate(seed: int, active_winrate: float, shadow_winrate: float, n: int = 1000):
    """Two independent mock models calling the sign of a random return right with a given rate."""
    rng = np.random.default_rng(seed)
    realized = rng.normal(0.0, 0.015, n)
    truth = np.sign(realized)
    active = np.where(rng.random(n) < active_winrate, truth, -truth)
    shadow = np.where(rng.random(n) < shadow_winrate, truth, -truth)
    return active, shadow, realized


def evaluate(active, shadow, realized, **limits):
    return evaluate_pairs(active, shadow, realized, fee=FEE, thresholds=Thresholds(**limits))


HOUR_US = 3_600_000_000.0
START_US = 757_382_400_000_000.0  # 2024-01-01 in microseconds since 2000-01-01, as the reads give it


def hourly_us(n: int) -> np.ndarray:
    """Timestamps (microseconds since 2000-01-01) of n pairs asked hourly from 2024-01-01."""
    return START_US + HOUR_US * np.arange(n)


def evaluate_blocked(active, shadow, realized, block_us: float = 2 * HOUR_US, **limits):
    """`evaluate` as the service runs it: hourly pairs, the block-robust test (blocks of 2 h: 12 5m candles x 2)."""
    return evaluate_pairs(active, shadow, realized, fee=FEE, thresholds=Thresholds(**limits),
                          timestamp_us=hourly_us(len(realized)), block_us=block_us)  # fmt: skip


def test_specification_simulation_promotes_the_better_shadow() -> None:
    result = evaluate(*simulate(1, 0.55, 0.62))
    assert result.recommendation == "PROMOTE", result.reasons
    assert result.total_samples == 1000
    assert result.shadow_metrics.hit_rate > result.active_metrics.hit_rate
    assert result.shadow_metrics.avg_pnl > result.active_metrics.avg_pnl
    assert result.p_value_better < 0.05


def test_the_test_has_power() -> None:
    # 0.55 vs 0.62 is detected most of the time at the first look (1000 pairs, level 0.025: about
    # 70 % here), and nearly always by the second (2000 pairs), not by luck.
    first = sum(evaluate(*simulate(seed, 0.55, 0.62)).recommendation == "PROMOTE" for seed in range(100))
    assert first >= 60
    by_second = sum(
        any(evaluate(*simulate(seed, 0.55, 0.62, n=n)).recommendation == "PROMOTE" for n in (1000, 2000))
        for seed in range(100)
    )
    assert by_second >= 90


def test_equally_good_models_are_promoted_in_at_most_5_of_100_runs() -> None:
    promoted = sum(evaluate(*simulate(seed, 0.55, 0.55)).recommendation == "PROMOTE" for seed in range(100))
    assert promoted <= 5


def test_evaluating_after_every_sample_does_not_promote_noise() -> None:
    """Optional stopping: a test re-run as samples arrive, stopped at its first "better", promotes
    equally good models far more often than its level. Decisions at fixed looks do not."""
    runs, naive, looked = 100, 0, 0
    for seed in range(runs):
        active, shadow, realized = simulate(seed, 0.55, 0.55, n=8000)
        # Every 100 new pairs from 1000 on, as an hourly evaluation would see them.
        checks = range(1000, 8001, 100)
        difference = per_sample_pnl(shadow, realized, FEE) - per_sample_pnl(active, realized, FEE)
        naive += any(paired_t_pvalues(difference[:n])[0] < 0.05 for n in checks)
        looked += any(evaluate(active[:n], shadow[:n], realized[:n]).recommendation == "PROMOTE" for n in checks)
    assert naive > 10  # what a test at every evaluation would do
    assert looked <= 5


def test_looks_levels_and_the_end_of_a_test() -> None:
    limits = Thresholds(min_samples=1000, max_samples=8000, significance_level=0.05)
    assert limits.looks() == [1000, 2000, 4000, 8000]
    assert [limits.level(k) for k in range(4)] == pytest.approx([0.025, 0.05 / 6, 0.05 / 6, 0.05 / 6])
    active, shadow, realized = simulate(5, 0.55, 0.55, n=9000)
    between = evaluate(active[:3000], shadow[:3000], realized[:3000])
    assert (between.decision_samples, between.next_look_samples) == (2000, 4000)
    assert between.active_metrics.samples == 2000 and between.total_samples == 3000
    over = evaluate(active, shadow, realized)  # past the last look without a promotion
    assert over.recommendation == "REJECT" and over.next_look_samples is None
    assert "last look (8000 pairs" in over.reasons[0]


def test_worse_shadow_is_rejected() -> None:
    result = evaluate(*simulate(3, 0.58, 0.50))
    assert result.recommendation == "REJECT", result.reasons


def test_too_few_samples_continue_testing() -> None:
    result = evaluate(*simulate(7, 0.55, 0.70, n=500))
    assert result.recommendation == "CONTINUE_TESTING"
    assert "500 resolved samples" in result.reasons[0]


def test_improvement_below_the_margin_is_not_promoted() -> None:
    active, shadow, realized = simulate(11, 0.55, 0.62, n=8000)
    result = evaluate(active[:4000], shadow[:4000], realized[:4000], min_improvement_pct=30.0)
    assert result.recommendation == "CONTINUE_TESTING"
    assert any("hit-rate improvement" in r for r in result.reasons)
    assert result.p_value_better < 1e-6  # significant, but not by the margin asked for
    ended = evaluate(active, shadow, realized, min_improvement_pct=30.0)
    assert ended.recommendation == "REJECT" and any("hit-rate improvement" in r for r in ended.reasons)


def test_drawdown_limit_blocks_a_riskier_shadow() -> None:
    # The active stays flat; the shadow is long and right every time but rides one crash.
    n = 2000
    realized = np.full(n, 0.01)
    realized[1000] = -0.30
    active = np.zeros(n)
    shadow = np.ones(n)
    result = evaluate_pairs(active, shadow, realized, fee=0.0, thresholds=Thresholds(max_drawdown_pct=3.0))
    assert result.p_value_better < 0.05
    assert result.shadow_metrics.max_drawdown_pct > 3.0 + result.active_metrics.max_drawdown_pct
    assert result.recommendation == "CONTINUE_TESTING"
    assert any("drawdown" in r for r in result.reasons)
    relaxed = evaluate_pairs(active, shadow, realized, fee=0.0, thresholds=Thresholds(max_drawdown_pct=30.0))
    assert relaxed.recommendation == "PROMOTE"


def test_pnl_definition_and_drawdown() -> None:
    pnl = per_sample_pnl([1, -1, 0, 1], [0.02, 0.01, 0.05, -0.01], 0.002)
    assert pnl == pytest.approx([0.018, -0.012, 0.0, -0.012])
    # Up 10 % then down to 0.9 of the peak: a 10 % drawdown.
    assert max_drawdown_pct(np.log(np.array([1.1, 0.9]))) == pytest.approx(10.0)
    assert max_drawdown_pct(np.array([0.01, 0.02])) == 0.0


def test_bad_input_is_refused_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="shadow_direction"):
        evaluate(np.ones(3), np.array([1, 2, 0]), np.zeros(3))
    with pytest.raises(ValueError, match="one length"):
        evaluate(np.ones(3), np.ones(2), np.zeros(3))
    with pytest.raises(ValueError, match="non-finite"):
        evaluate(np.ones(2), np.ones(2), np.array([0.1, np.nan]))


def test_the_decision_reads_only_the_latest_looks_pairs() -> None:
    # A test of many closed pairs is decided on the first `decision_samples` of them: evaluating
    # that prefix with the total count gives the same result as evaluating every pair.
    limits = Thresholds(min_samples=1000, max_samples=8000)
    assert [limits.decision_samples(n) for n in (10, 999, 1000, 3999, 4000, 10**6)] == [10, 999, 1000, 2000, 4000, 8000]
    active, shadow, realized = simulate(11, 0.55, 0.58, n=30_000)
    full = evaluate_pairs(active, shadow, realized, fee=FEE, thresholds=limits)
    prefix = evaluate_pairs(
        active[:8000], shadow[:8000], realized[:8000], fee=FEE, thresholds=limits, total_samples=30_000
    )
    assert prefix == full and full.decision_samples == 8000 and full.total_samples == 30_000
    early = evaluate_pairs(
        active[:2000], shadow[:2000], realized[:2000], fee=FEE, thresholds=limits, total_samples=3500
    )
    assert early == evaluate(active[:3500], shadow[:3500], realized[:3500], min_samples=1000, max_samples=8000)
    assert early.next_look_samples == 4000
    with pytest.raises(ValueError, match="needs the first 2000"):
        evaluate_pairs(active[:1500], shadow[:1500], realized[:1500], fee=FEE, thresholds=limits, total_samples=3500)


def dependent_pairs(seed: int, symbols: int = 8, hours: int = 600, horizon: int = 3, skill: float = 0.0):
    """Pairs as a live shadow test gets them: every hour, on correlated symbols (half of each move is
    the market's), labels spanning the next `horizon` hours (overlapping), and two models whose calls
    persist for hours and lean on a common view. `skill`: the share of the shadow's calls replaced by
    the label's sign. Returns (active, shadow, realized, timestamp_us) in time order."""
    rng = np.random.default_rng(seed)
    market, own = rng.normal(size=hours + horizon), rng.normal(size=(hours + horizon, symbols))
    step = 0.01 * (np.sqrt(0.5) * market[:, None] + np.sqrt(0.5) * own)
    label = sum(step[k : k + hours] for k in range(horizon))

    def persistent_calls() -> np.ndarray:
        common, single = np.zeros(hours), np.zeros((hours, symbols))
        shocks_common, shocks_single = rng.normal(size=hours), rng.normal(size=(hours, symbols))
        for t in range(1, hours):
            common[t] = 0.9 * common[t - 1] + shocks_common[t]
            single[t] = 0.9 * single[t - 1] + shocks_single[t]
        return np.where(0.8 * common[:, None] + 0.6 * single >= 0, 1.0, -1.0)

    active, shadow = persistent_calls(), persistent_calls()
    if skill:
        shadow = np.where(rng.random((hours, symbols)) < skill, np.sign(label), shadow)
    stamps = np.repeat(START_US + HOUR_US * np.arange(hours), symbols)
    return active.ravel(), shadow.ravel(), label.ravel(), stamps


def _difference(active, shadow, realized):
    return per_sample_pnl(shadow, realized, FEE) - per_sample_pnl(active, realized, FEE)


def test_overlapping_correlated_pairs_fool_the_t_test_not_the_block_test() -> None:
    # Two models of no skill, 200 markets, one-sided level 2.5 %: the t-test over pairs takes the
    # 4,800 overlapping, correlated pairs of each as independent and "proves" the shadow better in
    # about a quarter of them; the block-robust test (6-hour blocks: twice the 3-hour label) stays
    # near its level.
    naive = blocked = 0
    for seed in range(200):
        active, shadow, realized, stamps = dependent_pairs(seed)
        difference = _difference(active, shadow, realized)
        naive += paired_t_pvalues(difference)[0] < 0.025
        blocked += TimeBlocks(6 * HOUR_US).extended(difference, stamps).p_values()[0] < 0.025
    assert naive >= 25
    assert blocked <= 10


def test_the_block_test_still_finds_a_real_edge() -> None:
    found = 0
    for seed in range(100):
        active, shadow, realized, stamps = dependent_pairs(seed, skill=0.2)
        found += TimeBlocks(6 * HOUR_US).extended(_difference(active, shadow, realized), stamps).p_values()[0] < 0.025
    assert found >= 80


def test_the_block_test_is_the_cluster_robust_formula() -> None:
    # Against the formula written out with pandas: blocks of 6 h, all symbols together, one
    # Newey-West (Bartlett) lag between neighbouring blocks; a 2-day gap breaks the neighbourhood.
    import pandas as pd
    from scipy import stats as scipy_stats

    active, shadow, realized, stamps = dependent_pairs(3, hours=120)
    stamps = np.where(stamps >= START_US + 60 * HOUR_US, stamps + 48 * HOUR_US, stamps)
    difference = _difference(active, shadow, realized)
    ids = np.floor(stamps / (6 * HOUR_US)).astype(np.int64)
    frame = pd.DataFrame({"d": difference, "b": ids}).groupby("b")["d"].agg(["sum", "count"])
    m = frame["sum"].sum() / frame["count"].sum()
    e = (frame["sum"] - m * frame["count"]).to_numpy()
    near = np.diff(frame.index.to_numpy()) == 1
    b = len(e)
    variance = (np.sum(e * e) + np.sum((e[1:] * e[:-1])[near])) * b / (b - 1) / frame["count"].sum() ** 2
    expected = scipy_stats.t.sf(m / np.sqrt(variance), b - 1)
    better, worse, blocks = TimeBlocks(6 * HOUR_US).extended(difference, stamps).p_values()
    assert blocks == b == 20
    assert better == pytest.approx(expected, rel=1e-9) and worse == pytest.approx(1 - expected, rel=1e-9)


def test_blocks_extended_in_steps_equal_one_pass() -> None:
    active, shadow, realized, stamps = dependent_pairs(4, hours=200)
    difference = _difference(active, shadow, realized)
    whole = TimeBlocks(6 * HOUR_US).extended(difference, stamps)
    stepped = TimeBlocks(6 * HOUR_US)
    cuts = [0, 1, 7, 8, 50, 51, 333, 900, 901, difference.size]  # inside blocks and at their borders
    for lo, hi in itertools.pairwise(cuts):
        stepped = stepped.extended(difference[lo:hi], stamps[lo:hi])
    assert stepped.p_values() == pytest.approx(whole.p_values(), rel=1e-9)
    assert stepped.finished().blocks == whole.finished().blocks == 34


def test_pairs_out_of_time_order_are_refused() -> None:
    stamps = START_US + HOUR_US * np.array([0.0, 10.0, 3.0])
    with pytest.raises(ValueError, match="time order"):
        TimeBlocks(2 * HOUR_US).extended(np.zeros(3), stamps)
    later = TimeBlocks(2 * HOUR_US).extended(np.zeros(2), START_US + HOUR_US * np.array([8.0, 9.0]))
    with pytest.raises(ValueError, match="time order"):
        later.extended(np.zeros(1), np.array([START_US]))


def test_the_drawdown_limit_compares_books_not_the_pairs_levered_equity() -> None:
    # 3-hour labels asked hourly on 4 symbols: 24 pairs in each 6-hour block, 12 open at once.
    assert pair_concurrency(960, 40) == pytest.approx(12.0)
    assert pair_concurrency(960, None) == 1.0 and pair_concurrency(10, 40) == 1.0
    # A log drawdown of 0.6 over pairs held whole is 0.05 for a book holding each at 1/12.
    assert book_drawdown_pct(-np.expm1(-0.6) * 100, 12.0) == pytest.approx(-np.expm1(-0.05) * 100)
    assert book_drawdown_pct(20.0, 1.0) == 20.0
    # Two models as good as each other on 3-hour labels asked hourly on 4 symbols: the shadow's pairs'
    # equity falls more than 3 points deeper than the active's from the leverage alone; the books'
    # drawdowns do not, and only the test over independent pairs (concurrency 1) blocks on it. A
    # crash the shadow alone rides still blocks it in book terms.
    hours, symbols = 240, 4
    for seed in range(50):
        rng = np.random.default_rng(seed)
        step = rng.normal(0.0, 0.004, (hours + 3, 1)) + rng.normal(0.0, 0.002, (hours + 3, symbols))
        realized = np.lib.stride_tricks.sliding_window_view(step, 3, axis=0).sum(axis=-1)[:hours].reshape(-1)
        truth = np.sign(realized)
        active = np.where(rng.random(realized.size) < 0.56, truth, -truth)
        shadow = np.where(rng.random(realized.size) < 0.56, truth, -truth)
        iid = evaluate_pairs(active, shadow, realized, fee=FEE, thresholds=Thresholds(min_samples=960))
        if iid.shadow_metrics.max_drawdown_pct - iid.active_metrics.max_drawdown_pct > 3.0:
            break
    else:
        raise AssertionError("no market where the pairs' equity drawdowns differ by 3 points")
    stamps = np.repeat(np.arange(hours) * HOUR_US, symbols)
    blocked = evaluate_pairs(active, shadow, realized, fee=FEE, thresholds=Thresholds(min_samples=960),
                             timestamp_us=stamps, block_us=6 * HOUR_US)  # fmt: skip
    assert blocked.pair_concurrency == pytest.approx(12.0) and iid.pair_concurrency == 1.0
    assert any(r.startswith("book max drawdown") for r in iid.reasons), iid.reasons
    assert not any("drawdown" in r for r in blocked.reasons), blocked.reasons
    crashed = realized.copy()
    crashed[480:488] = -0.4 * shadow[480:488]  # two hours on every symbol, the shadow on the wrong side
    result = evaluate_pairs(active, shadow, crashed, fee=FEE, thresholds=Thresholds(min_samples=960),
                            timestamp_us=stamps, block_us=6 * HOUR_US)  # fmt: skip
    assert any(r.startswith("book max drawdown") for r in result.reasons), result.reasons
