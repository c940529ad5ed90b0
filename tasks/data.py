"""Market data upkeep."""

from __future__ import annotations

from typing import Any

from app.bootstrap import get_container
from app.data_pipeline.refresh import refresh_candles as refresh
from workers.celery_app import celery_app


@celery_app.task(name="tasks.data.refresh_candles")
def refresh_candles() -> dict[str, Any]:
    """Fetch the candles the store lacks for the policy's symbols, timeframe and lookback."""

    return refresh(get_container())
