"""`tasks.data.refresh_candles` on a real worker that consumes only the `cpu` queue."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import select

from app.bootstrap import Container
from app.core.clock import utcnow
from app.core.db.models import Event
from app.data_pipeline import CandleStore, synthetic_market
from app.data_pipeline.timeframes import floor_to_grid
from tests.services import celery_worker


def test_refresh_task_runs_on_the_cpu_queue(
    pg_container: Container, worker_env: dict[str, str], tmp_path: Path
) -> None:
    from tasks.data import refresh_candles
    from workers.celery_app import configure

    configure(pg_container.settings)
    pg_container.policy_store.update({"data": {"symbols": ["BTC/USDT"], "timeframe": "5m", "lookback_days": 1}})
    # The store already covers the policy's window, so the worker asks the exchange nothing
    # (this machine has no network): it must find that out from the coverage table.
    now_ms = floor_to_grid(pd.Timestamp(utcnow()).value // 1_000_000, "5m")
    start_ms = now_ms - 2 * 288 * 300_000
    candles, _ = synthetic_market(["BTC/USDT"], start_ms, 3 * 288, "5m", seed=1)
    store = CandleStore(pg_container)
    store.write("binance", "BTC/USDT", "5m", candles["BTC/USDT"], covered=(start_ms, start_ms + 3 * 288 * 300_000))

    with celery_worker(worker_env, queues="cpu", name="data-cpu@%h", log_path=tmp_path / "worker.log"):
        result = refresh_candles.delay().get(timeout=120)

    assert result["requests"] == 0 and result["rows_fetched"] == 0
    assert 287 <= result["rows"]["BTC/USDT"] <= 289  # one day of closed 5m candles
    with pg_container.session() as session:
        topics = session.scalars(select(Event.topic).order_by(Event.id)).all()
    assert topics == ["data.fetch.started", "data.fetch.completed"]
