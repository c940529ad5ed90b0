"""Regime detection on the candle store (beat, once per candle of the policy's timeframe)."""

from __future__ import annotations

from typing import Any

from app.bootstrap import get_container
from app.regime_detector.market import detect_regimes as detect
from workers.celery_app import celery_app


@celery_app.task(name="tasks.regime.detect_regimes")
def detect_regimes() -> dict[str, Any]:
    """Each symbol's and the market index's regime; a switch publishes `regime.changed`."""
    return detect(get_container())
