"""Predictions for the AI Trading Engine (the live path).

`service` answers a request; `cache` keeps loaded models and symbol windows per process;
`sql` holds the request's two statements; `pool` its own connection pool; `types` the answer.
"""

from app.prediction.cache import model_cache
from app.prediction.service import PredictionService
from app.prediction.sql import CANDLE_COLUMNS, candle_window, live_model_ids, recent_candles
from app.prediction.types import InsufficientHistoryError, ModelIntegrityError, NoActiveModelError, Prediction

__all__ = [
    "CANDLE_COLUMNS",
    "InsufficientHistoryError",
    "ModelIntegrityError",
    "NoActiveModelError",
    "Prediction",
    "PredictionService",
    "candle_window",
    "live_model_ids",
    "model_cache",
    "recent_candles",
]
