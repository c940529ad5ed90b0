"""HistoricalDataFetcher: candles from any ccxt exchange (async API), cached in the store.

Only the parts of [start, end) not yet covered for a series are asked for (the store's
`candle_coverage` remembers what was fetched, outage holes included), so a second fetch
of the same range makes no request and a wider one asks only for the missing parts.
Requests are paginated by `since`/`limit`, throttled by ccxt's own rate limiter
(`enableRateLimit`), and retried with exponential backoff on network errors. Symbols and
timeframes are checked against the exchange's markets and timeframes first. Only closed
candles are stored (the current candle is still changing).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import ccxt
import ccxt.async_support as ccxt_async
import pandas as pd

from app.core.topics import DataFetchCompleted, DataFetchStarted, TopicEvent
from app.data_pipeline.candle_store import CandleStore, Range
from app.data_pipeline.timeframes import ceil_to_grid, floor_to_grid, timeframe_ms, to_ms
from app.data_pipeline.validation import CANDLE_COLUMNS

if TYPE_CHECKING:
    from app.core.container import Container

log = logging.getLogger(__name__)

ExchangeFactory = Callable[[str], Any]  # exchange id -> a ccxt.async_support exchange
DEFAULT_PAGE_LIMIT = 500
MAX_RETRIES = 5
BACKOFF_SECONDS = 0.5


class ExchangeDataError(ValueError):
    """A request the exchange cannot answer: unknown exchange, symbol or timeframe."""


def default_exchange(exchange_id: str) -> Any:
    exchange_class = getattr(ccxt_async, exchange_id, None)
    if exchange_class is None or exchange_id not in ccxt.exchanges:
        raise ExchangeDataError(f"ccxt has no exchange {exchange_id!r} (see ccxt.exchanges)")
    return exchange_class({"enableRateLimit": True, "timeout": 30_000})


@dataclass
class FetchResult:
    candles: dict[str, pd.DataFrame]
    requests: int = 0
    rows_fetched: int = 0
    ranges_fetched: dict[str, list[Range]] = field(default_factory=dict)


class HistoricalDataFetcher:
    def __init__(
        self,
        container: Container,
        exchange_id: str | None = None,
        exchange_factory: ExchangeFactory | None = None,
        *,
        max_retries: int = MAX_RETRIES,
        backoff_seconds: float = BACKOFF_SECONDS,
    ) -> None:
        self.container = container
        self.exchange_id = exchange_id or container.settings.exchange_id
        self.exchange_factory = exchange_factory or default_exchange
        self.store = CandleStore(container)
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds

    async def fetch(
        self, symbols: list[str], start: datetime | int, end: datetime | int, timeframe: str = "5m"
    ) -> FetchResult:
        """Make sure [start, end) is stored for every symbol; return the stored candles."""
        start_ms = ceil_to_grid(to_ms(start), timeframe)
        closed_end = floor_to_grid(int(time.time() * 1000), timeframe)  # the still-open candle's open time
        end_ms = min(to_ms(end), closed_end)
        if end_ms <= start_ms:
            raise ExchangeDataError(f"empty range: start {start} is not before end {end} (or the last closed candle)")
        missing = {s: self.store.missing_ranges(self.exchange_id, s, timeframe, start_ms, end_ms) for s in symbols}
        started = time.monotonic()
        result = FetchResult(candles={}, ranges_fetched={s: r for s, r in missing.items() if r})
        self._publish(
            DataFetchStarted(
                exchange=self.exchange_id,
                symbols=symbols,
                timeframe=timeframe,
                start_date=datetime.fromtimestamp(start_ms / 1000, UTC),
                end_date=datetime.fromtimestamp(end_ms / 1000, UTC),
                start_ms=start_ms,
                end_ms=end_ms,
                missing_ranges={s: [list(r) for r in rs] for s, rs in result.ranges_fetched.items()},
            )
        )
        if result.ranges_fetched:
            exchange = self.exchange_factory(self.exchange_id)
            try:
                await self._check(exchange, symbols, timeframe)
                counts = await asyncio.gather(
                    *(self._fetch_symbol(exchange, s, timeframe, rs, result) for s, rs in result.ranges_fetched.items())
                )
                result.rows_fetched = sum(counts)
            finally:
                await exchange.close()
        for symbol in symbols:
            result.candles[symbol] = self.store.read(self.exchange_id, symbol, timeframe, start_ms, end_ms)
        self._publish(
            DataFetchCompleted(
                exchange=self.exchange_id,
                symbols=symbols,
                timeframe=timeframe,
                rows=sum(len(f) for f in result.candles.values()),
                features=[c for c in CANDLE_COLUMNS if c != "timestamp"],
                rows_fetched=result.rows_fetched,
                requests=result.requests,
                duration_sec=round(time.monotonic() - started, 3),
            )
        )
        return result

    async def _check(self, exchange: Any, symbols: list[str], timeframe: str) -> None:
        markets = await self._retry(exchange.load_markets, f"{self.exchange_id} markets")
        if not exchange.has.get("fetchOHLCV"):
            raise ExchangeDataError(f"exchange {self.exchange_id!r} does not serve candles (fetchOHLCV)")
        unknown = [s for s in symbols if s not in markets]
        if unknown:
            raise ExchangeDataError(
                f"exchange {self.exchange_id!r} has no market {unknown} "
                f"({len(markets)} markets, e.g. {sorted(markets)[:5]})"
            )
        if exchange.timeframes and timeframe not in exchange.timeframes:
            raise ExchangeDataError(
                f"exchange {self.exchange_id!r} has no timeframe {timeframe!r}; it has {list(exchange.timeframes)}"
            )

    async def _fetch_symbol(
        self, exchange: Any, symbol: str, timeframe: str, ranges: list[Range], result: FetchResult
    ) -> int:
        step = timeframe_ms(timeframe)
        limit = self._page_limit(exchange)
        fetched = 0
        for range_start, range_end in ranges:
            rows: list[list[float]] = []
            since = range_start
            while since < range_end:
                result.requests += 1
                page = await self._retry(
                    functools.partial(exchange.fetch_ohlcv, symbol, timeframe, since, limit),
                    f"{self.exchange_id} {symbol} {timeframe} candles from {since}",
                )
                page = [row for row in page if since <= row[0] < range_end]
                if not page:
                    break  # nothing more in this range (e.g. it ends inside an outage)
                rows.extend(page)
                since = int(page[-1][0]) + step
            frame = pd.DataFrame(rows, columns=list(CANDLE_COLUMNS))
            # The store validates (identical repeats dropped, conflicting ones refused) in the
            # same transaction that records the coverage.
            self.store.write(
                self.exchange_id,
                symbol,
                timeframe,
                frame,
                covered=(range_start, range_end),
                source=f"{self.exchange_id} {symbol} {timeframe}",
            )
            fetched += len(frame)
        return fetched

    @staticmethod
    def _page_limit(exchange: Any) -> int:
        try:
            limit = exchange.features["spot"]["fetchOHLCV"]["limit"]
        except (KeyError, TypeError, AttributeError):
            limit = None
        return int(limit) if limit else DEFAULT_PAGE_LIMIT

    async def _retry(self, call: Callable[[], Any], what: str) -> Any:
        for attempt in range(self.max_retries + 1):
            try:
                return await call()
            except ccxt.NetworkError as exc:  # timeouts, 5xx, DDoS protection: worth another try
                if attempt == self.max_retries:
                    raise ExchangeDataError(f"{what}: gave up after {attempt + 1} attempts: {exc}") from exc
                delay = self.backoff_seconds * 2**attempt
                log.warning("%s failed (%s); retrying in %.1f s", what, type(exc).__name__, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _publish(self, event: TopicEvent) -> None:
        with self.container.session() as session:
            self.container.bus.publish(session, event)


async def afetch_historical_data(
    symbols: list[str],
    start: datetime | int,
    end: datetime | int,
    timeframe: str = "5m",
    *,
    container: Container | None = None,
    exchange_id: str | None = None,
    exchange_factory: ExchangeFactory | None = None,
) -> dict[str, pd.DataFrame]:
    if container is None:
        raise TypeError("fetch_historical_data needs the container (bootstrap's), to reach the candle store")
    fetcher = HistoricalDataFetcher(container, exchange_id, exchange_factory)
    return (await fetcher.fetch(symbols, start, end, timeframe)).candles


def fetch_historical_data(
    symbols: list[str],
    start: datetime | int,
    end: datetime | int,
    timeframe: str = "5m",
    *,
    container: Container | None = None,
    exchange_id: str | None = None,
    exchange_factory: ExchangeFactory | None = None,
) -> dict[str, pd.DataFrame]:
    """Candles in [start, end) per symbol, fetching only what the store lacks (blocking)."""
    return asyncio.run(
        afetch_historical_data(
            symbols,
            start,
            end,
            timeframe,
            container=container,
            exchange_id=exchange_id,
            exchange_factory=exchange_factory,
        )
    )
