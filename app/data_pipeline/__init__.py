"""data_pipeline: candles (exchange, files, synthetic), validation, the candle store,
features, labels and datasets. The public API is re-exported here."""

from app.data_pipeline.features import (
    FEATURE_CODE_VERSION,
    engineer_features,
    feature_columns,
    feature_set_id,
    warmup_rows,
)
from app.data_pipeline.labels import LABEL_COLUMNS, REGIMES, dead_zone, generate_labels
from app.data_pipeline.synthetic import synthetic_market
from app.data_pipeline.timeframes import timeframe_ms
from app.policy import FeatureConfig, LabelConfig

__all__ = [
    "FEATURE_CODE_VERSION",
    "LABEL_COLUMNS",
    "REGIMES",
    "FeatureConfig",
    "LabelConfig",
    "dead_zone",
    "engineer_features",
    "feature_columns",
    "feature_set_id",
    "generate_labels",
    "synthetic_market",
    "timeframe_ms",
    "warmup_rows",
]
