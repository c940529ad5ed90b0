"""Keep the candle store current for the policy's symbols (the `tasks.data.refresh_candles` job)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from app.core.clock import utcnow
from app.data_pipeline.fetcher import ExchangeFactory, HistoricalDataFetcher

if TYPE_CHECKING:
    from app.core.container import Container

log = logging.getLogger(__name__)


def refresh_candles(container: Container, exchange_factory: ExchangeFactory | None = None) -> dict[str, Any]:
    """Fetch what the store lacks of the policy's lookback window, up to the last closed candle."""
    data = container.policy_store.get().data
    if data.source_mode == "stored":
        # Offline: no exchange call, no traceback, no slot held; say so once per run at debug level.
        log.debug("candle refresh skipped: policy data.source_mode is 'stored'")
        return {"skipped": "policy data.source_mode is 'stored': only imported candles are used"}
    end = utcnow()
    start = end - timedelta(days=data.lookback_days)
    fetcher = HistoricalDataFetcher(container, data.exchange, exchange_factory)
    result = asyncio.run(fetcher.fetch(list(data.symbols), start, end, data.timeframe))
    return {
        "exchange": data.exchange,
        "timeframe": data.timeframe,
        "symbols": list(data.symbols),
        "rows": {symbol: len(frame) for symbol, frame in result.candles.items()},
        "rows_fetched": result.rows_fetched,
        "requests": result.requests,
    }
