"""Small real datasets for the model-training tests: candles from tests/data/ohlcv -> features -> labels."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from app.core.policy import FeatureConfig, LabelConfig
from app.data_pipeline import engineer_features, feature_columns, generate_labels

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
