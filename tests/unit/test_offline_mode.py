"""Offline operation (issue 19, item 6): stored candles only, a fixed data end, errors that say how to import."""

from __future__ import annotations

from datetime import datetime

import pytest

from app.clm.drift_check import no_candles_reason
from app.data_pipeline.dataset import DatasetSpec, build_dataset
from app.data_pipeline.refresh import refresh_candles
from app.retraining.spec import RetrainingSpec


def _no_exchange(exchange_id: str) -> object:
    raise AssertionError(f"the stored mode must not reach the exchange ({exchange_id})")


def test_the_stored_mode_skips_the_candle_refresh_without_calling_the_exchange(sqlite_container) -> None:
    sqlite_container.policy_store.update({"data": {"source_mode": "stored"}}, author="test")
    result = refresh_candles(sqlite_container, exchange_factory=_no_exchange)
    assert "stored" in result["skipped"]


def test_a_fixed_data_end_is_the_end_of_every_retraining_window(sqlite_container) -> None:
    _, policy = sqlite_container.policy_store.update({"data": {"end": "2021-01-29T00:00:00"}}, author="test")
    assert policy.data.end == datetime(2021, 1, 29)
    spec = RetrainingSpec.create(policy, ["naive"], now=datetime(2026, 12, 5, 4, 30))
    assert spec.data.end == datetime(2021, 1, 29)


def test_no_candles_names_symbol_timeframe_window_and_how_to_import(sqlite_container) -> None:
    spec = DatasetSpec(
        source="store", symbols=["BTC/USDT"], timeframe="1h", start=datetime(2021, 1, 1), end=datetime(2021, 1, 29)
    )
    with pytest.raises(ValueError) as error:
        build_dataset(sqlite_container, spec)
    message = str(error.value)
    assert "BTC/USDT 1h has 0 candles in [2021-01-01 00:00:00, 2021-01-29 00:00:00)" in message
    assert "workers.cli data import FILE --symbol BTC/USDT --timeframe 1h" in message
    policy = sqlite_container.policy_store.get()
    reason = no_candles_reason(sqlite_container, datetime(2026, 12, 5))
    assert f"{policy.data.timeframe} in [" in reason and "data import" in reason and "BTC/USDT" in reason
