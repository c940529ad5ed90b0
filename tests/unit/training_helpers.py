"""Small real datasets for the model-training tests: candles from tests/data/ohlcv -> features -> labels."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from app.core.container import Container
from app.core.policy import FeatureConfig, LabelConfig
from app.data_pipeline import engineer_features, feature_columns, generate_labels
from app.retraining import RetrainingOrchestrator
from workers.celery_app import celery_app, configure
from workers.celery_dispatcher import CeleryDispatcher

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "ohlcv"
HOURLY = ("binance_BTCUSDT_1h.csv", "binance_ETHUSDT_1h.csv")


def labelled_frame(
    files: tuple[str, ...] = HOURLY, horizon: int = 12, last_rows: int | None = None, fee_pct: float = 0.1
) -> tuple[pd.DataFrame, list[str]]:
    """The long-format dataset of the given candle files (symbol = file name) and its feature columns."""
    config = FeatureConfig()
    parts = []
    for name in files:
        candles = pd.read_csv(DATA_DIR / name)
        if last_rows is not None:
            candles = candles.tail(last_rows).reset_index(drop=True)
        candles["symbol"] = name.removesuffix(".csv")
        features = engineer_features(candles, config)
        parts.append(generate_labels(features, LabelConfig(horizon=horizon, fee_pct=fee_pct), close=candles["close"]))
    frame = pd.concat(parts, ignore_index=True).sort_values(["timestamp", "symbol"], kind="stable")
    return frame.reset_index(drop=True), feature_columns(config)


# Five weeks of real BTC candles from a file: the data of the eagerly run canvas tests.
BTC_FILES_SPEC = {
    "source": "files",
    "symbols": ["BTC/USDT"],
    "timeframe": "1h",
    "files": {"BTC/USDT": str(DATA_DIR / "binance_BTCUSDT_1h.csv")},
    "start": "2021-01-01T00:00:00",
    "end": "2021-02-05T00:00:00",
}


def eager_orchestrator(container: Container, cv_folds: int) -> RetrainingOrchestrator:
    """An orchestrator whose canvas runs eagerly in this process (call `celery_app.conf.task_always_eager
    = False` after). The canvas's mechanics are under test, not the models' quality: the baseline gate
    is off, explicitly (its own tests: test_training_gate.py)."""
    configure(container.settings)
    container.dispatcher = CeleryDispatcher(celery_app)
    container.policy_store.update(
        {"training": {"cv_folds": cv_folds}, "clm_config": {"baseline_gate": {"enabled": False}}}, author="test"
    )
    return RetrainingOrchestrator(container)
