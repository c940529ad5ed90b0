"""A stalled candle feed is an alert, not silence."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from app.data_pipeline import CandleStore
from app.operations.alerts import current_alerts


def _candles(start: datetime, count: int) -> pd.DataFrame:
    first = int((start - datetime(1970, 1, 1)).total_seconds() * 1000)
    return pd.DataFrame(
        {
            "timestamp": [first + i * 300_000 for i in range(count)],
            "open": 100.0,
            "high": 101.0,
            "low": 99.0,
            "close": 100.5,
            "volume": 10.0,
        }
    )


def test_feed_stall_alert_after_the_policys_intervals(sqlite_container) -> None:
    sqlite_container.policy_store.update({"data": {"symbols": ["BTC/USDT"], "timeframe": "5m", "exchange": "binance"}})
    start = datetime(2024, 3, 1)
    CandleStore(sqlite_container).write("binance", "BTC/USDT", "5m", _candles(start, 12))
    last_open = start + timedelta(minutes=55)
    with sqlite_container.session_factory() as session:
        # One interval after the newest open is the normal state; three more are tolerated.
        fresh = current_alerts(session, now=last_open + timedelta(minutes=20))
        stalled = current_alerts(session, now=last_open + timedelta(minutes=21))
    assert not [a for a in fresh if a.name == "feed_stalled"]
    names = [a for a in stalled if a.name == "feed_stalled"]
    assert len(names) == 1 and "BTC/USDT" in names[0].message and names[0].severity == "critical"
