"""Small real gradient-boosted models, stored and registered, for the live-path tests and bench."""

from __future__ import annotations

from functools import cache

import pandas as pd

from app.bootstrap import Container
from app.core.policy import FeatureConfig
from app.data_pipeline import feature_set_id
from app.forecasters import MODEL_TYPES, ForecastSpec
from app.model_registry import ModelRegistry
from app.model_training.service import store_forecaster
from app.model_training.splits import chronological_split
from tests.unit.training_helpers import DATA_DIR, labelled_frame

CANDLE_FILE = "binance_BTCUSDT_1h.csv"


@cache
def _training_data() -> tuple[pd.DataFrame, tuple[str, ...]]:
    frame, features = labelled_frame(horizon=12, last_rows=600)
    return frame, tuple(features)


def register_model(container: Container, model_type: str = "xgboost", n_estimators: int = 10, seed: int = 0) -> str:
    """Fit a small model of `model_type` on real candles, store it and register it; returns its id."""
    frame, features = _training_data()
    split = chronological_split(frame, 0.8, 0.1, purge=12)
    model = MODEL_TYPES[model_type](ForecastSpec(list(features), 12, {"n_estimators": n_estimators}, seed=seed))
    model.fit(frame.iloc[split.train], frame.iloc[split.valid])
    directory = f"models/{model_type}/test-{n_estimators}-{seed}"
    artifact, manifest = store_forecaster(container, model, directory, {"feature_columns": list(features)})
    return ModelRegistry(container).register_model(
        {
            "model_type": model_type,
            "file_path": artifact.path,
            "sha256": artifact.sha256,
            "manifest": manifest,
            "feature_set_id": feature_set_id(FeatureConfig()),
            "feature_count": len(features),
        }
    )


def recent_candles(rows: int = 300) -> pd.DataFrame:
    """The last `rows` hourly BTC candles of the test data."""
    return pd.read_csv(DATA_DIR / CANDLE_FILE).tail(rows).reset_index(drop=True)
