"""The scoring that cannot flatter: staggered book, fees on changes, block-bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.model_training.evaluation import baseline_forecasts, report, score_part
from app.model_training.scoring import (
    Bootstrap,
    book_exposure,
    book_turnover,
    bootstrap_intervals,
    strategy_table,
    summarize,
    symbol_book,
)

HOUR = 3_600_000
FEE = 0.1  # percent per side


def market(closes: list[float] | np.ndarray, horizon: int, symbol: str = "A") -> pd.DataFrame:
    """Rows with close and the `horizon` label, the last `horizon` closes only as label ends."""
    close = np.asarray(closes, dtype=float)
    n = len(close) - horizon
    return pd.DataFrame(
        {
            "symbol": symbol,
            "timestamp": np.arange(n, dtype=np.int64) * HOUR,
            "close": close[:n],
            "future_return": np.log(close[horizon:] / close[:n]),
            "direction": 0,
        }
    )


def fees_paid(frame: pd.DataFrame, position: np.ndarray, horizon: int) -> float:
    gross, _ = symbol_book(frame, position, horizon, fee_pct=0.0)
    net, exact = symbol_book(frame, position, horizon, fee_pct=FEE)
    assert exact
    return float((gross - net).sum())


def test_the_book_holds_each_prediction_as_one_slice_for_the_horizon() -> None:
    assert book_exposure(np.array([1.0, 0, 0, 0]), 2).tolist() == [0.5, 0.5, 0, 0, 0]
    assert book_exposure(np.array([1.0, -1, 1]), 3).tolist() == pytest.approx([1 / 3, 0, 1 / 3, 0, 1 / 3])
    frame = market([100, 110, 121, 121, 121, 121], horizon=2)
    net, _ = symbol_book(frame, np.array([1.0, 0, 0, 0]), 2, fee_pct=0.0)
    # Half the capital rides the first two candles (+10 % each): the slice earns its label.
    assert net[:2] == pytest.approx([0.05, 0.05])
    assert net.sum() == pytest.approx(np.expm1(frame["future_return"].iloc[0]) / 2, rel=0.05)


def test_a_constant_position_pays_one_round_trip() -> None:
    frame = market(np.linspace(100, 120, 30), horizon=3)
    assert fees_paid(frame, np.ones(len(frame)), 3) == pytest.approx(2 * FEE / 100)
    assert fees_paid(frame, -np.ones(len(frame)), 3) == pytest.approx(2 * FEE / 100)


def test_alternating_positions_pay_at_every_change() -> None:
    frame = market(np.linspace(100, 120, 9), horizon=1)
    position = np.array([1.0, -1, 1, -1, 1, -1, 1, -1])
    # Entry 1, seven flips of 2, exit 1.
    assert book_turnover(book_exposure(position, 1)).sum() == pytest.approx(16)
    assert fees_paid(frame, position, 1) == pytest.approx(16 * FEE / 100)
    assert fees_paid(frame, np.zeros(len(frame)), 1) == 0.0


def test_buy_and_hold_pays_its_entry_like_any_long_strategy() -> None:
    frame = market(np.full(20, 100.0), horizon=4)
    forecasts = baseline_forecasts(frame, None, horizon=4, fee_pct=FEE, step_ms=HOUR)
    held = forecasts["buy_and_hold"][1].astype(float)
    positions = {"always_long": np.ones(len(frame)), "buy_and_hold": held, "zero_return": np.zeros(len(frame))}
    table, exact = strategy_table(frame, positions, horizon=4, fee_pct=FEE, step_ms=HOUR)
    assert exact
    # Flat prices: buy-and-hold loses exactly its entry and exit, as an always-long model does.
    assert table["buy_and_hold:net"].sum() == pytest.approx(-2 * FEE / 100)
    assert table["buy_and_hold:net"].tolist() == table["always_long:net"].tolist()
    assert table["zero_return:net"].abs().sum() == 0.0


def test_directional_accuracy_counts_traded_rows_beside_the_share_traded() -> None:
    frame = market([100, 101, 102, 101, 100, 101, 102], horizon=1)  # up, up, down, down, up, up
    position = np.array([1.0, 0, -1, 1, 0, 0])
    table, _ = strategy_table(frame, {"m": position}, horizon=1, fee_pct=FEE, step_ms=HOUR)
    got = summarize(table, ["m"], horizon=1, periods_per_year=8760, bootstrap=Bootstrap(replicates=0))["m"]
    assert got["directional_accuracy"] == pytest.approx(2 / 3)
    assert got["traded_share"] == pytest.approx(0.5)


def ar1(rng: np.random.Generator, n: int, phi: float, mean: float, sigma: float) -> np.ndarray:
    noise = rng.normal(0, sigma, n + 200)
    out = np.empty_like(noise)
    out[0] = noise[0]
    for t in range(1, len(noise)):
        out[t] = phi * out[t - 1] + noise[t]
    return mean + out[200:]


def coverage(block: int | None, trials: int = 150) -> tuple[float, float]:
    """How often the intervals of the mean and the Sharpe of AR(1) returns cover the true values."""
    rng = np.random.default_rng(7)
    phi, mean, sigma, n = 0.6, 0.05, 1.0, 1000
    true_sharpe = mean / (sigma / np.sqrt(1 - phi**2))
    covered_mean = covered_sharpe = 0
    for trial in range(trials):
        net = ar1(rng, n, phi, mean, sigma)
        table = pd.DataFrame({"s:net": net, "s:hits": 0.0, "s:traded": 0.0})
        found = bootstrap_intervals(
            table, ["s"], horizon=1, periods_per_year=1, bootstrap=Bootstrap(replicates=300, seed=trial, block=block)
        )
        low, high = found["s|annual_return"]
        covered_mean += low <= mean <= high
        low, high = found["s|sharpe"]
        covered_sharpe += low <= true_sharpe <= high
    return covered_mean / trials, covered_sharpe / trials


def test_block_bootstrap_covers_dependent_returns_at_about_the_nominal_rate() -> None:
    mean_rate, sharpe_rate = coverage(block=None)
    assert 0.86 <= mean_rate <= 0.99, mean_rate
    assert 0.86 <= sharpe_rate <= 0.99, sharpe_rate
    # Resampling single rows ignores the dependence and undercovers: the blocks matter.
    naive_rate, _ = coverage(block=1, trials=60)
    assert naive_rate < 0.8, naive_rate


def random_walk(rng: np.random.Generator, n: int, horizon: int, symbols: int = 2) -> pd.DataFrame:
    market_moves = rng.normal(0, 0.01, n + horizon)
    parts = []
    for k in range(symbols):
        moves = 0.8 * market_moves + 0.6 * rng.normal(0, 0.01, n + horizon)
        parts.append(market(100 * np.exp(np.cumsum(moves)), horizon, symbol=f"S{k}"))
    return pd.concat(parts, ignore_index=True).sort_values(["timestamp", "symbol"], ignore_index=True)


def test_overlapping_labels_give_a_wider_interval_than_the_binomial_one() -> None:
    rng = np.random.default_rng(3)
    horizon = 12
    frame = random_walk(rng, 3000, horizon)
    table, _ = strategy_table(frame, {"long": np.ones(len(frame))}, horizon=horizon, fee_pct=FEE, step_ms=HOUR)
    found = bootstrap_intervals(table, ["long"], horizon=horizon, periods_per_year=8760, bootstrap=Bootstrap())
    low, high = found["long|directional_accuracy"]
    moved = int((frame["future_return"] != 0).sum())
    p = float((frame["future_return"] > 0).mean())
    binomial_width = 2 * 1.96 * np.sqrt(p * (1 - p) / moved)
    assert high - low > 2 * binomial_width, (high - low, binomial_width)


def test_shuffled_labels_score_as_chance() -> None:
    rng = np.random.default_rng(11)
    horizon = 6
    frame = random_walk(rng, 4000, horizon)
    # A "model" whose positions are the labels of other rows: no information about its own rows.
    shuffled = np.sign(rng.permutation(frame["future_return"].to_numpy()))
    forecast = (shuffled * 0.01, shuffled.astype(int), np.full(len(frame), 0.5))
    scored = score_part(frame, None, {"model": forecast}, horizon=horizon, fee_pct=0.0, step_ms=HOUR)
    result = report([scored], horizon=horizon, step_ms=HOUR, bootstrap=Bootstrap(replicates=400))
    model = result["model"]
    low, high = model["interval_95"]["directional_accuracy"]
    assert low < 0.5 < high and abs(model["directional_accuracy"] - 0.5) < 0.03
    low, high = model["vs"]["zero_return"]["interval_95"]["sharpe_diff"]
    assert low < 0 < high
    assert model["book"] == "exact"
    assert set(result["baselines"]) == {"zero_return", "persistence", "buy_and_hold"}


def test_market_neutral_persistence_is_long_the_recent_winners_short_the_losers() -> None:
    from app.model_training.evaluation import neutral_baseline_forecasts

    # Over the last candle A rose most, B as the cross-section's mean, C fell: the directional
    # persistence baseline is long A and B, short C; the market-neutral one long A, flat B, short C.
    frame = pd.DataFrame(
        {
            "symbol": ["A", "B", "C"] * 2,
            "timestamp": np.repeat(np.arange(2, dtype=np.int64) * HOUR, 3),
            "future_return": [0.05, 0.02, -0.01, 0.0, 0.0, 0.0],
            "direction": 0,
        }
    )
    predicted, direction, _ = neutral_baseline_forecasts(frame, None, horizon=1, fee_pct=FEE, step_ms=HOUR)[
        "market_neutral_persistence"
    ]
    assert predicted[3:].tolist() == pytest.approx([0.03, 0.0, -0.03]) and direction[3:].tolist() == [1, 0, -1]
    assert baseline_forecasts(frame, None, horizon=1, fee_pct=FEE, step_ms=HOUR)["persistence"][1][3:].tolist() == [
        1,
        1,
        -1,
    ]
    scored = score_part(frame, None, {"model": (predicted, direction, predicted)}, horizon=1, fee_pct=0.0,
                        step_ms=HOUR, neutral=("model",))  # fmt: skip
    assert "market_neutral_persistence:net" in scored.table.columns
    plain = score_part(frame, None, {"model": (predicted, direction, predicted)}, horizon=1, fee_pct=0.0, step_ms=HOUR)
    assert "market_neutral_persistence:net" not in plain.table.columns


@pytest.mark.parametrize(("n", "block"), [(1000, 24), (997, 24), (50, 50), (30, 7)])
def test_the_bootstrap_from_block_sums_equals_the_resampled_series(n: int, block: int) -> None:
    from app.model_training.scoring import _statistics, block_indices

    rng = np.random.default_rng(n)
    table = pd.DataFrame(
        {
            "a:net": rng.normal(0.0002, 0.003, n),
            "a:hits": rng.integers(0, 3, n).astype(float),
            "a:traded": 2.0,
            "flat:net": 0.0,
            "flat:hits": 0.0,
            "flat:traded": 0.0,
            "const:net": 0.001,
            "const:hits": 1.0,
            "const:traded": 1.0,
        }
    )
    names = ["a", "flat", "const"]
    boot = Bootstrap(replicates=200, seed=4, block=block)
    found = bootstrap_intervals(table, names, horizon=1, periods_per_year=8760, bootstrap=boot, compare_to=("flat",))
    # The definition: materialise every resampled series (the same draws) and compute the statistics.
    index = block_indices(np.random.default_rng(4), n, boot.block_length(n, 1), 200)
    stats = _statistics({c: table[c].to_numpy()[index] for c in table.columns}, names, 8760)
    for key in ("a|sharpe", "a|annual_return", "a|directional_accuracy", "const|directional_accuracy"):
        expected = np.percentile(stats[key], [2.5, 97.5])
        assert found[key] == pytest.approx(tuple(expected), rel=1e-9, abs=1e-12), key
    assert found["const|sharpe"] == (0.0, 0.0) and found["flat|sharpe"] == (0.0, 0.0)  # no spread: 0, as before
    assert "flat|directional_accuracy" not in found  # never traded: no accuracy to bound
    diff = np.percentile(stats["a|sharpe"] - stats["flat|sharpe"], [2.5, 97.5])
    assert found["a-flat|sharpe"] == pytest.approx(tuple(diff), rel=1e-9)
