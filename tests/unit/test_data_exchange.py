"""The default ccxt exchange: async API, ccxt's own rate limiter on, clear error for an unknown id."""

from __future__ import annotations

import asyncio

import ccxt.async_support as ccxt_async
import pytest

from app.data_pipeline.fetcher import ExchangeDataError, HistoricalDataFetcher, default_exchange


def test_default_exchange_is_async_and_rate_limited() -> None:
    exchange = default_exchange("binance")
    try:
        assert isinstance(exchange, ccxt_async.Exchange)
        assert exchange.enableRateLimit is True and exchange.rateLimit > 0
        assert HistoricalDataFetcher._page_limit(exchange) == 1000  # Binance spot's page size
    finally:
        asyncio.run(exchange.close())
    kraken = default_exchange("kraken")  # any ccxt exchange id works
    asyncio.run(kraken.close())


def test_unknown_exchange_is_refused() -> None:
    with pytest.raises(ExchangeDataError, match="no exchange 'binanse'"):
        default_exchange("binanse")
