"""data_pipeline: candles (exchange, files, synthetic), validation, the candle store,
features, labels and datasets. The public API is re-exported here."""

from typing import Any

from app.core.policy import FeatureConfig, LabelConfig
from app.data_pipeline import fetcher
from app.data_pipeline.candle_store import CandleConflictError, CandleStore, WriteResult
from app.data_pipeline.dataset import DatasetInfo, DatasetSpec, build_dataset, load_dataset
from app.data_pipeline.features import (
    FEATURE_CODE_VERSION,
    engineer_features,
    feature_columns,
    feature_set_id,
    warmup_rows,
)
from app.data_pipeline.files import import_candle_file, read_candle_file
from app.data_pipeline.labels import (
    LABEL_COLUMNS,
    REGIMES,
    dead_zone,
    generate_labels,
    market_relative_return,
    net_of_fee_class,
)
from app.data_pipeline.synthetic import synthetic_market
from app.data_pipeline.timeframes import timeframe_ms
from app.data_pipeline.validation import CandleValidationError, Gap, ValidationReport, validate_candles

# The exchange client (ccxt, about a second to import) loads on first use, so the API,
# beat and the CLI start without it.
_FETCHER_NAMES = (
    "ExchangeDataError",
    "FetchResult",
    "HistoricalDataFetcher",
    "afetch_historical_data",
    "fetch_historical_data",
)


def __getattr__(name: str) -> Any:
    if name in _FETCHER_NAMES:
        return getattr(fetcher, name)
    raise AttributeError(f"module 'app.data_pipeline' has no attribute {name!r}")


__all__ = [
    "FEATURE_CODE_VERSION",
    "LABEL_COLUMNS",
    "REGIMES",
    "CandleConflictError",
    "CandleStore",
    "CandleValidationError",
    "DatasetInfo",
    "DatasetSpec",
    "ExchangeDataError",
    "FeatureConfig",
    "FetchResult",
    "Gap",
    "HistoricalDataFetcher",
    "LabelConfig",
    "ValidationReport",
    "WriteResult",
    "afetch_historical_data",
    "build_dataset",
    "dead_zone",
    "engineer_features",
    "feature_columns",
    "feature_set_id",
    "fetch_historical_data",
    "generate_labels",
    "import_candle_file",
    "load_dataset",
    "market_relative_return",
    "net_of_fee_class",
    "read_candle_file",
    "synthetic_market",
    "timeframe_ms",
    "validate_candles",
    "warmup_rows",
]
