"""Regime detection as a beat job: the candle store's symbols and market index, regime.changed, the CLM's reset."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from app.api import create_app
from app.core.clock import SimulatedClock
from app.core.db.models import Event, RLVersion, SystemFlag
from app.data_pipeline import CandleStore
from app.operations.schedule import periodic_jobs
from app.regime_detector.market import MARKET, detect_regimes, market_index, thresholds_for
from tests.clocks import simulated_clock

HOUR_MS = 3_600_000
START = datetime(2026, 1, 1)
SYMBOLS = ["BTC/USDT", "ETH/USDT"]


def _candles(returns: np.ndarray, first_ms: int) -> pd.DataFrame:
    close = 100 * np.exp(np.cumsum(returns))
    return pd.DataFrame(
        {
            "timestamp": first_ms + HOUR_MS * np.arange(len(close)),
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "volume": np.full(len(close), 10.0),
        }
    )


@pytest.fixture
def clock() -> Iterator[SimulatedClock]:
    with simulated_clock(START) as simulated:
        yield simulated


@pytest.fixture
def market(sqlite_container, clock):
    """1h candles: 400 quiet hours, then 150 trending ones, for both symbols."""
    sqlite_container.policy_store.ensure_default()
    sqlite_container.policy_store.update({"data": {"timeframe": "1h", "symbols": SYMBOLS}}, author="test")
    rng = np.random.default_rng(7)
    first_ms = int((START - datetime(1970, 1, 1)).total_seconds() * 1000)
    frames = {}
    for i, symbol in enumerate(SYMBOLS):
        returns = np.concatenate([rng.normal(0, 0.002, 400), rng.normal(0.003 + 0.001 * i, 0.001, 150)])
        frames[symbol] = _candles(returns, first_ms)
    return frames, first_ms


def _feed(container, clock, frames, first_ms: int, upto: int) -> None:
    store = CandleStore(container)
    for symbol, frame in frames.items():
        store.write("binance", symbol, "1h", frame.iloc[:upto], on_conflict="replace")
    clock.set(datetime(1970, 1, 1) + timedelta(milliseconds=first_ms + upto * HOUR_MS))


def _topics(container, topic: str) -> list[dict]:
    with container.session() as session:
        return [e.payload for e in session.scalars(select(Event).where(Event.topic == topic).order_by(Event.id))]


def test_the_job_runs_once_per_candle_of_the_policy_timeframe(sqlite_container) -> None:
    sqlite_container.policy_store.ensure_default()
    jobs = {job.name: job for job in periodic_jobs(sqlite_container.policy_store.get())}
    assert jobs["regime-detection"].task == "tasks.regime.detect_regimes"
    assert jobs["regime-detection"].interval == timedelta(minutes=5)  # the default policy's timeframe
    assert thresholds_for("1h").window == 48 and thresholds_for("1h").persist_bars == 12


def test_index_is_invariant_to_where_it_starts() -> None:
    a = pd.DataFrame({"timestamp": [1, 2, 3, 4], "close": [1.0, 2.0, 4.0, 2.0]})
    b = pd.DataFrame({"timestamp": [2, 3, 4, 5], "close": [3.0, 3.0, 6.0, 6.0]})
    index = market_index({"A": a, "B": b})
    assert list(index["timestamp"]) == [2, 3, 4]
    assert np.allclose(np.diff(np.log(index["close"])), [0.5 * np.log(2), 0.5 * (np.log(0.5) + np.log(2))])


def test_a_regime_shift_resets_both_agents_through_the_clm(sqlite_container, clock, market) -> None:
    frames, first_ms = market
    _feed(sqlite_container, clock, frames, first_ms, 400)
    first = detect_regimes(sqlite_container)
    assert first[MARKET]["regime"] in ("RANGING", "CHOPPY") and set(first) == {*SYMBOLS, MARKET}
    before = len(_topics(sqlite_container, "clm.rl.reset"))
    for upto in range(410, 551, 10):  # the beat, hour after hour (here ten at a time)
        _feed(sqlite_container, clock, frames, first_ms, upto)
        detect_regimes(sqlite_container)
    changed = _topics(sqlite_container, "regime.changed")
    shift_ms = first_ms + 400 * HOUR_MS
    assert any(p["symbol"] == MARKET and p["new"] == "TRENDING" and p["at"] > shift_ms for p in changed), changed
    resets = _topics(sqlite_container, "clm.rl.reset")
    market_changes = [p for p in changed if p["symbol"] == MARKET]
    assert len(resets) == len(market_changes) > before  # symbols' own changes reset nothing
    assert resets[-1]["reason"] == f"regime_change:{market_changes[-1]['old']}->TRENDING"
    with sqlite_container.session() as session:
        archived = session.scalars(select(RLVersion).where(RLVersion.archived_at.is_not(None))).all()
        assert {v.rl_type for v in archived} == {"meta_strategy", "position_sizing"}
    assert detect_regimes(sqlite_container)[MARKET]["changes"] == []  # nothing new: nothing fed twice

    client = create_app(sqlite_container).test_client()
    status = client.get("/api/clm/status").get_json()
    assert status["regimes"][MARKET]["regime"] == "TRENDING" and set(status["regimes"]) == {*SYMBOLS, MARKET}
    assert 'data-regime="MARKET"' in client.get("/").get_data(as_text=True)
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))}
    samples = {(s.labels["symbol"], s.labels["regime"]) for s in families["clm_market_regime"].samples}
    assert (MARKET, "TRENDING") in samples


def test_with_the_policy_switch_off_nothing_is_reset(sqlite_container, clock, market) -> None:
    frames, first_ms = market
    sqlite_container.policy_store.update(
        {"clm_config": {"rl_maintenance": {"reset_on_regime_change": False}}}, author="test"
    )
    for upto in range(400, 551, 10):
        _feed(sqlite_container, clock, frames, first_ms, upto)
        detect_regimes(sqlite_container)
    assert any(p["symbol"] == MARKET for p in _topics(sqlite_container, "regime.changed"))
    assert _topics(sqlite_container, "clm.rl.reset") == []
    with sqlite_container.session() as session:
        assert session.scalars(select(RLVersion)).all() == []


def test_index_equals_the_inner_join_it_replaced_bit_for_bit() -> None:
    """The numpy index is the pandas inner join's (concat, sort, log-mean), exactly: same regimes."""
    rng = np.random.default_rng(4)
    frames = {}
    for k, symbol in enumerate(["A", "B", "C", "D"]):
        stamps = np.sort(rng.choice(np.arange(2_000), size=1_500 + 50 * k, replace=False)) * 900_000
        close = np.exp(np.cumsum(rng.normal(0, 0.01, len(stamps)))) * (10.0 + k)
        frames[symbol] = pd.DataFrame({"timestamp": stamps, "close": close})
    closes = [f.set_index("timestamp")["close"].astype("float64") for f in frames.values()]
    joined = pd.concat(closes, axis=1, join="inner").sort_index()
    expected = np.exp(np.log(joined.to_numpy() / joined.to_numpy()[0]).mean(axis=1))
    index = market_index(frames)
    np.testing.assert_array_equal(index["timestamp"].to_numpy(), joined.index.to_numpy())
    np.testing.assert_array_equal(index["close"].to_numpy(), expected)


def _per_series(container, now_ms: int) -> dict:
    """The job as it was: each series read and fed in its own transactions (the oracle of the one-transaction job)."""
    from app.regime_detector.detector import LONG_WINDOW_FACTOR, RegimeService

    thresholds = thresholds_for("1h")
    service, store = RegimeService(container, thresholds), CandleStore(container)
    long_window = LONG_WINDOW_FACTOR * thresholds.window
    frames, result = {}, {}
    for series in [*SYMBOLS, MARKET]:
        with container.session() as session:
            flag = session.get(SystemFlag, f"regime:{series}")
            last = flag.value.get("last_timestamp") if flag is not None else None
        start = (last if last is not None else now_ms - 2 * HOUR_MS) - long_window * HOUR_MS
        if series == MARKET:
            candles = market_index({s: f.loc[f["timestamp"] >= start] for s, f in frames.items()})
        else:
            candles = frames[series] = store.read("binance", series, "1h", start_ms=start, end_ms=now_ms - HOUR_MS + 1)
        changes = service.update(series, candles[["timestamp", "close"]]) if len(candles) > long_window else []
        current = service.current(series)
        result[series] = {
            "regime": current.value if current is not None else None,
            "changes": [{"old": c.old and c.old.value, "new": c.new.value, "at": c.at} for c in changes],
        }
    return result


def test_one_transaction_for_every_series_decides_as_one_per_series(sqlite_container, clock, market, tmp_path) -> None:
    """All series read, fed and stored in one transaction: the same regimes, changes, events and
    RL resets as each series in its own (with holes in one symbol's candles, so that some steps
    have too few candles for a series and feed it nothing)."""
    from app.bootstrap import bootstrap
    from app.core.dispatch import InlineDispatcher
    from app.core.settings import Mode, Settings

    frames, first_ms = market
    frames = dict(frames)
    frames["ETH/USDT"] = frames["ETH/USDT"].drop(index=[430, 431, 432, 480, 481, 482, 483]).reset_index(drop=True)
    settings = Settings(
        CLM_MODE=Mode.EMBEDDED,
        DATABASE_URL=f"sqlite:///{tmp_path / 'oracle.sqlite'}",
        ARTIFACT_ROOT=str(tmp_path / "oracle-artifacts"),
        CLM_API_TOKEN="test-token-not-a-secret",
    )
    oracle = bootstrap(settings, InlineDispatcher(), migrate=True)
    try:
        oracle.policy_store.ensure_default()
        oracle.policy_store.update({"data": {"timeframe": "1h", "symbols": SYMBOLS}}, author="test")
        for upto in [400, *range(401, 551, 3)]:
            _feed(sqlite_container, clock, frames, first_ms, upto)
            _feed(oracle, clock, frames, first_ms, upto)
            assert detect_regimes(sqlite_container) == _per_series(oracle, first_ms + upto * HOUR_MS), upto
        for topic in ("regime.changed", "clm.rl.reset"):
            assert _topics(sqlite_container, topic) == _topics(oracle, topic) != []
        with sqlite_container.session() as a, oracle.session() as b:
            for series in [*SYMBOLS, MARKET]:
                assert a.get(SystemFlag, f"regime:{series}").value == b.get(SystemFlag, f"regime:{series}").value
    finally:
        oracle.dispose()


def test_candles_out_of_order_are_sorted_first(sqlite_container) -> None:
    from app.regime_detector.detector import RegimeService

    rng = np.random.default_rng(3)
    candles = _candles(np.concatenate([rng.normal(0, 0.002, 300), rng.normal(0.004, 0.001, 100)]), 0)
    shuffled = candles.sample(frac=1.0, random_state=1)
    in_order = RegimeService(sqlite_container).update("A", candles[["timestamp", "close"]])
    shuffled_changes = RegimeService(sqlite_container).update("B", shuffled[["timestamp", "close"]])
    assert [(c.old, c.new, c.at) for c in in_order] == [(c.old, c.new, c.at) for c in shuffled_changes] != []


def test_read_closes_is_reads_timestamp_and_close(sqlite_container, market) -> None:
    frames, first_ms = market
    store = CandleStore(sqlite_container)
    store.write("binance", "BTC/USDT", "1h", frames["BTC/USDT"], on_conflict="replace")
    start, end = first_ms + 10 * HOUR_MS, first_ms + 300 * HOUR_MS
    full = store.read("binance", "BTC/USDT", "1h", start_ms=start, end_ms=end)
    with sqlite_container.session() as session:
        closes = store.read_closes("binance", "BTC/USDT", "1h", start, end, session)
        empty = store.read_closes("binance", "BTC/USDT", "1h", end + HOUR_MS * 10**4, end + HOUR_MS * 10**5, session)
    pd.testing.assert_frame_equal(closes, full[["timestamp", "close"]])
    assert len(closes) == 290 and list(empty.columns) == ["timestamp", "close"] and empty.empty
