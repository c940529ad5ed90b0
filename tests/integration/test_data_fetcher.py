"""ccxt fetching against recorded Binance responses served over HTTP on 127.0.0.1.

ccxt's own Binance class builds the requests, parses the answers and rate-limits; only
the exchange's HTTP is replaced (tests/data/ccxt/README.md). Candles land in the real
PostgreSQL store.
"""

from __future__ import annotations

import asyncio
import csv
import json
import re
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt_async
import pandas as pd
import pytest
from aiohttp import web
from sqlalchemy import select

from app.bootstrap import Container
from app.core.db.models import Event
from app.data_pipeline.candle_store import CandleStore
from app.data_pipeline.fetcher import ExchangeDataError, HistoricalDataFetcher, fetch_historical_data
from app.data_pipeline.validation import CandleValidationError

RECORDED = Path(__file__).resolve().parents[1] / "data" / "ccxt" / "binance"
OHLCV = Path(__file__).resolve().parents[1] / "data" / "ohlcv"
STEP = {"5m": 300_000, "1h": 3_600_000}
DEC_1, DEC_29 = 1606780800000, 1609200000000  # 2020-12-01, 2020-12-29 (UTC)
OUTAGE_FIRST_MISSING = 1608559800000  # BTCUSDT 5m: 46 candles missing from here


class RecordedBinance:
    """Answers ccxt's Binance requests from recorded JSON and the real candle files."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.kline_calls: list[dict[str, str]] = []
        self.fail_klines = 0  # answer this many kline requests with HTTP 503 first
        self.klines: dict[tuple[str, str], list[list[Any]]] = {}
        for path in OHLCV.glob("binance_*USDT_*.csv"):
            market, interval = path.stem.split("_")[1:3]
            self.klines[(market, interval)] = self._rows(path, STEP[interval])
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @staticmethod
    def _rows(path: Path, step: int) -> list[list[Any]]:
        with path.open() as handle:
            reader = csv.reader(handle)
            next(reader)
            return [[int(t), o, h, lo, c, v, int(t) + step - 1, "0", 0, "0", "0", "0"] for t, o, h, lo, c, v in reader]

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        self.requests[path] += 1
        if path == "api.binance.com/api/v3/exchangeInfo":
            return web.json_response(json.loads((RECORDED / "spot_exchangeInfo.json").read_text()))
        if path in ("fapi.binance.com/fapi/v1/exchangeInfo", "dapi.binance.com/dapi/v1/exchangeInfo"):
            return web.json_response(json.loads((RECORDED / "futures_exchangeInfo_empty.json").read_text()))
        if path == "api.binance.com/api/v3/klines":
            query = dict(request.query)
            self.kline_calls.append(query)
            if self.fail_klines > 0:
                self.fail_klines -= 1
                return web.Response(status=503, text="Service Unavailable")
            rows = self.klines.get((query["symbol"], query["interval"]))
            if rows is None:
                return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
            start = int(query.get("startTime", 0))
            end = int(query.get("endTime", 2**62))
            limit = min(int(query.get("limit", 500)), 1000)
            return web.json_response([r for r in rows if start <= r[0] <= end][:limit])
        return web.json_response({"code": -1, "msg": f"not recorded: {path}"}, status=404)

    def start(self) -> None:
        ready = threading.Event()

        async def serve() -> None:
            app = web.Application()
            app.router.add_get("/{path:.*}", self._handle)
            self._runner = web.AppRunner(app)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()

        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(serve(), self._loop)
        assert ready.wait(10), "recorded exchange did not start"

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    def exchange(self, exchange_id: str) -> Any:
        """ccxt's real Binance class, its API hosts pointed at this server."""
        assert exchange_id == "binance"
        exchange = ccxt_async.binance({"enableRateLimit": True})
        for key, url in exchange.urls["api"].items():
            exchange.urls["api"][key] = re.sub(r"^https://", f"http://127.0.0.1:{self.port}/", url)
        return exchange

    @property
    def kline_requests(self) -> int:
        return self.requests["api.binance.com/api/v3/klines"]


@pytest.fixture
def binance() -> Iterator[RecordedBinance]:
    server = RecordedBinance()
    server.start()
    yield server
    server.stop()


def _fetch(container: Container, server: RecordedBinance, symbols: list[str], start: int, end: int, tf: str = "5m"):
    return fetch_historical_data(symbols, start, end, tf, container=container, exchange_factory=server.exchange)


def _csv(name: str) -> pd.DataFrame:
    return pd.read_csv(OHLCV / name)


def test_fetch_paginates_parses_and_stores(pg_container: Container, binance: RecordedBinance) -> None:
    candles = _fetch(pg_container, binance, ["BTC/USDT", "ETH/USDT"], DEC_1, DEC_29)
    for symbol, name in (("BTC/USDT", "BTCUSDT"), ("ETH/USDT", "ETHUSDT")):
        expected = _csv(f"binance_{name}_5m_4w.csv")
        expected = expected[expected["timestamp"] < DEC_29].reset_index(drop=True)
        pd.testing.assert_frame_equal(candles[symbol], expected, check_dtype=False)
        stored = CandleStore(pg_container).read("binance", symbol, "5m")
        pd.testing.assert_frame_equal(stored, expected, check_dtype=False)
    # 8,064 five-minute slots per symbol (the outage's are empty) in pages of 1,000: 9 each
    assert binance.kline_requests == 18
    assert all(int(call["limit"]) == 1000 for call in binance.kline_calls)
    with pg_container.session() as session:
        events = session.scalars(select(Event).order_by(Event.id)).all()
        topics = [e.topic for e in events]
        completed = events[-1].payload
    assert topics == ["data.fetch.started", "data.fetch.completed"]
    assert completed["rows"] == 2 * 8006 and completed["requests"] == 18 and completed["duration_sec"] >= 0


def test_second_fetch_asks_nothing_and_wider_fetch_asks_only_the_missing_part(
    pg_container: Container, binance: RecordedBinance
) -> None:
    day = 86_400_000
    middle = (DEC_1 + 10 * day, DEC_1 + 20 * day)  # includes the outage of Dec 21? no: ends before it
    first = _fetch(pg_container, binance, ["BTC/USDT"], *middle)["BTC/USDT"]
    assert len(first) == 10 * 288
    used = binance.kline_requests
    assert used == 3
    again = _fetch(pg_container, binance, ["BTC/USDT"], *middle)["BTC/USDT"]
    pd.testing.assert_frame_equal(again, first)
    assert binance.kline_requests == used  # the cache answered
    assert binance.requests["api.binance.com/api/v3/exchangeInfo"] == 1  # not even the markets

    calls_before = len(binance.kline_calls)
    wider = _fetch(pg_container, binance, ["BTC/USDT"], DEC_1 + 5 * day, DEC_1 + 25 * day)["BTC/USDT"]
    new_calls = binance.kline_calls[calls_before:]
    starts = [int(c["startTime"]) for c in new_calls]
    # only [Dec 6, Dec 11) and [Dec 21, Dec 26) were asked for
    assert starts[0] == DEC_1 + 5 * day
    assert all(s < middle[0] or s >= middle[1] for s in starts)
    assert len(new_calls) == 4  # two ranges of five days: 1,440 candles, two pages each
    expected = _csv("binance_BTCUSDT_5m_4w.csv")
    expected = expected[(expected.timestamp >= DEC_1 + 5 * day) & (expected.timestamp < DEC_1 + 25 * day)]
    assert len(wider) == len(expected)  # includes the real outage gap, not filled


def test_an_outage_hole_is_remembered_as_fetched(pg_container: Container, binance: RecordedBinance) -> None:
    start = OUTAGE_FIRST_MISSING - 12 * STEP["5m"]
    end = OUTAGE_FIRST_MISSING + 20 * STEP["5m"]  # ends inside the 46-candle outage
    candles = _fetch(pg_container, binance, ["BTC/USDT"], start, end)["BTC/USDT"]
    assert len(candles) == 12
    used = binance.kline_requests
    _fetch(pg_container, binance, ["BTC/USDT"], start, end)
    assert binance.kline_requests == used
    assert CandleStore(pg_container).coverage("binance", "BTC/USDT", "5m") == [(start, end)]


def test_hourly_candles(pg_container: Container, binance: RecordedBinance) -> None:
    candles = _fetch(pg_container, binance, ["SOL/USDT"], DEC_1, DEC_29, "1h")["SOL/USDT"]
    expected = _csv("binance_SOLUSDT_1h.csv")
    expected = expected[expected.timestamp < DEC_29].reset_index(drop=True)
    pd.testing.assert_frame_equal(candles, expected, check_dtype=False)


def test_unknown_symbol_or_timeframe_is_a_clear_error(pg_container: Container, binance: RecordedBinance) -> None:
    with pytest.raises(ExchangeDataError, match=r"no market \['DOGE/USDT'\]"):
        _fetch(pg_container, binance, ["BTC/USDT", "DOGE/USDT"], DEC_1, DEC_29)
    with pytest.raises(ExchangeDataError, match="no timeframe '7m'"):
        _fetch(pg_container, binance, ["BTC/USDT"], DEC_1, DEC_29, "7m")
    with pytest.raises(ExchangeDataError, match="no exchange 'nosuchexchange'"):
        fetch_historical_data(["BTC/USDT"], DEC_1, DEC_29, container=pg_container, exchange_id="nosuchexchange")
    assert binance.kline_requests == 0
    assert CandleStore(pg_container).series() == []


def test_network_errors_are_retried_with_backoff(pg_container: Container, binance: RecordedBinance) -> None:
    binance.fail_klines = 2
    fetcher = HistoricalDataFetcher(pg_container, "binance", binance.exchange, backoff_seconds=0.01)
    result = asyncio.run(fetcher.fetch(["ADA/USDT"], DEC_1, DEC_1 + 86_400_000, "5m"))
    assert len(result.candles["ADA/USDT"]) == 288
    assert binance.kline_requests == 3  # two 503s, then the answer


def test_persistent_network_failure_gives_up_and_stores_nothing(
    pg_container: Container, binance: RecordedBinance
) -> None:
    binance.fail_klines = 10
    fetcher = HistoricalDataFetcher(pg_container, "binance", binance.exchange, max_retries=2, backoff_seconds=0.01)
    with pytest.raises(ExchangeDataError, match="gave up after 3 attempts"):
        asyncio.run(fetcher.fetch(["ADA/USDT"], DEC_1, DEC_1 + 86_400_000, "5m"))
    store = CandleStore(pg_container)
    assert store.series() == [] and store.coverage("binance", "ADA/USDT", "5m") == []


def test_invalid_candles_from_the_exchange_are_refused(pg_container: Container, binance: RecordedBinance) -> None:
    rows = binance.klines[("ETHUSDT", "5m")]
    rows[10] = [rows[10][0], rows[10][1], "1.0", *rows[10][3:]]  # high below open and close
    with pytest.raises(CandleValidationError, match=r"\[ohlc\]"):
        _fetch(pg_container, binance, ["ETH/USDT"], DEC_1, DEC_1 + 86_400_000)
    assert CandleStore(pg_container).series() == []


def test_refresh_keeps_the_policy_symbols_current(pg_container: Container, binance: RecordedBinance) -> None:
    from datetime import datetime, timedelta

    from app.core.clock import Clock, SimulatedClock, use_clock
    from app.data_pipeline.refresh import refresh_candles

    pg_container.policy_store.update({"data": {"symbols": ["BTC/USDT", "ETH/USDT"], "lookback_days": 7}})
    clock = SimulatedClock(datetime(2020, 12, 20))
    use_clock(clock)
    try:
        first = refresh_candles(pg_container, binance.exchange)
        assert first["rows"] == {"BTC/USDT": 7 * 288, "ETH/USDT": 7 * 288}
        assert first["requests"] == 2 * 3  # 2,016 slots each: three pages of 1,000
        clock.advance(timedelta(hours=6))
        second = refresh_candles(pg_container, binance.exchange)
        assert second["requests"] == 2 and second["rows_fetched"] == 2 * 72  # only the new six hours
    finally:
        use_clock(Clock())
