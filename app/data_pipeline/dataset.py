"""Datasets: candles -> features -> labels for many symbols, one Parquet file and a manifest.

Long format: one row per (symbol, timestamp), sorted by timestamp, then symbol in the
spec's order, with the columns `timestamp`, `symbol`, `close` (for models that forecast a
price series; it is not a feature), the feature columns (listed in the manifest), then
`future_return`, `direction`, `regime`. Rows cover candles in [start, end) minus each symbol's feature
warm-up, label warm-up and last `horizon` candles.

The dataset id is a hash of the spec: building the same spec again returns the dataset
already built (its file is checked against the stored sha256) instead of a new one.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.exc import IntegrityError

from app.core.artifacts import ArtifactIntegrityError
from app.core.clock import utcnow
from app.core.db.models import Dataset
from app.core.policy import FeatureConfig, LabelConfig, Policy
from app.data_pipeline.candle_store import CandleStore
from app.data_pipeline.features import engineer_features, feature_columns, feature_set_id
from app.data_pipeline.fetcher import fetch_historical_data
from app.data_pipeline.files import read_candle_file
from app.data_pipeline.labels import LABEL_COLUMNS, REGIMES, dead_zone, generate_labels
from app.data_pipeline.synthetic import synthetic_market
from app.data_pipeline.timeframes import ceil_to_grid, timeframe_ms, to_ms
from app.data_pipeline.validation import validate_candles

if TYPE_CHECKING:
    from app.core.container import Container

DATASET_FORMAT_VERSION = 2
ROW_GROUP_ROWS = 131_072


class DatasetSpec(BaseModel):
    """What a dataset is made of; equal specs give the same dataset."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbols: tuple[str, ...] = Field(min_length=1)
    timeframe: str = "5m"
    start: datetime  # naive UTC, inclusive
    end: datetime  # naive UTC, exclusive
    source: Literal["store", "exchange", "synthetic", "files"] = "store"
    exchange: str = "binance"
    files: dict[str, str] = Field(default_factory=dict)  # symbol -> path, for source="files"
    seed: int = 42  # synthetic only
    shift_at: datetime | None = None  # synthetic only
    # synthetic only: where the synthetic world begins. Datasets with the same origin and
    # seed see the same candle at the same time, whatever their window (default: start).
    synthetic_origin: datetime | None = None
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    labels: LabelConfig = Field(default_factory=LabelConfig)

    @model_validator(mode="after")
    def _consistent(self) -> DatasetSpec:
        timeframe_ms(self.timeframe)
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        if self.synthetic_origin is not None and self.synthetic_origin > self.start:
            raise ValueError(f"synthetic_origin ({self.synthetic_origin}) must not be after start ({self.start})")
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError(f"symbols repeat: {list(self.symbols)}")
        if self.source == "files":
            absent = [s for s in self.symbols if s not in self.files]
            if absent:
                raise ValueError(f"source 'files' needs a file for every symbol; none for {absent}")
        return self

    @classmethod
    def from_policy(cls, policy: Policy, end: datetime, **overrides: Any) -> DatasetSpec:
        """The policy's symbols, timeframe, lookback and feature/label settings, ending at `end`."""
        values: dict[str, Any] = {
            "symbols": tuple(policy.data.symbols),
            "timeframe": policy.data.timeframe,
            "start": end - timedelta(days=policy.data.lookback_days),
            "end": end,
            "exchange": policy.data.exchange,
            "features": policy.features,
            "labels": policy.labels,
        }
        values.update(overrides)
        return cls(**values)

    def dataset_id(self) -> str:
        document = {"format": DATASET_FORMAT_VERSION, "spec": self.model_dump(mode="json")}
        return "ds-" + hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class DatasetInfo:
    dataset_id: str
    file_path: str
    sha256: str
    rows: int
    feature_set_id: str
    manifest: dict[str, Any]
    reused: bool = False


def _candles(container: Container, spec: DatasetSpec) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    start_ms, end_ms = to_ms(spec.start), to_ms(spec.end)
    step = timeframe_ms(spec.timeframe)
    if spec.source == "synthetic":
        origin_ms = to_ms(spec.synthetic_origin or spec.start)
        first = ceil_to_grid(origin_ms, spec.timeframe)
        periods = (end_ms - first + step - 1) // step
        shift = None if spec.shift_at is None else to_ms(spec.shift_at)
        candles, info = synthetic_market(list(spec.symbols), first, periods, spec.timeframe, spec.seed, shift)
        for symbol, frame in candles.items():
            in_window = frame.loc[frame["timestamp"] >= start_ms].reset_index(drop=True)
            candles[symbol], _ = validate_candles(in_window, spec.timeframe, source=f"synthetic {symbol}")
        return candles, info
    if spec.source == "files":
        out = {}
        for symbol in spec.symbols:
            frame, _ = read_candle_file(spec.files[symbol], spec.timeframe)
            stamps = frame["timestamp"]
            out[symbol] = frame.loc[(stamps >= start_ms) & (stamps < end_ms)].reset_index(drop=True)
        return out, {"source": "files", "files": dict(spec.files)}
    if spec.source == "exchange":
        fetch_historical_data(
            list(spec.symbols), spec.start, spec.end, spec.timeframe, container=container, exchange_id=spec.exchange
        )
    store = CandleStore(container)
    out = {s: store.read(spec.exchange, s, spec.timeframe, start_ms, end_ms) for s in spec.symbols}
    return out, {"source": spec.source, "exchange": spec.exchange}


def _symbol_rows(symbol: str, candles: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """Features and labels of one symbol, on the candle rows that have both."""
    candles = candles[["timestamp", "open", "high", "low", "close", "volume"]].reset_index(drop=True)
    features = engineer_features(candles, spec.features)
    labels = generate_labels(candles[["timestamp", "close"]], spec.labels)
    # Both keep one contiguous run of candle rows, so the rows with both are a slice
    # (no join, no copy of the feature block).
    first = max(int(features.index[0]), int(labels.index[0])) if len(features) and len(labels) else 0
    last = min(int(features.index[-1]), int(labels.index[-1])) + 1 if len(features) and len(labels) else 0
    rows = features.loc[first : last - 1] if last > first else features.iloc[:0]
    rows.insert(1, "symbol", symbol)
    rows.insert(2, "close", labels["close"].loc[rows.index].to_numpy())
    rows["future_return"] = labels["future_return"].loc[rows.index].to_numpy()
    rows["direction"] = labels["direction"].loc[rows.index].to_numpy()
    rows["regime"] = pd.Categorical(labels["regime"].loc[rows.index].to_numpy(), categories=list(REGIMES))
    return rows


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = io.BytesIO()
    # Dictionary encoding only where values repeat: tried on float features it costs 5x the time.
    # Row groups of 128 Ki rows: a reader of the rows before a time skips the groups after it.
    pq.write_table(table, sink, compression="zstd", use_dictionary=["symbol", "regime"], row_group_size=ROW_GROUP_ROWS)
    return sink.getvalue()


def symbol_frame(
    container: Container, spec: DatasetSpec, symbols: tuple[str, ...] | None = None
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, Any]]:
    """The dataset rows of `symbols` (default: all the spec's), time-major, with per-symbol counts and the source."""
    symbols = spec.symbols if symbols is None else symbols
    candles, source_info = _candles(
        container, spec if symbols == spec.symbols else spec.model_copy(update={"symbols": symbols})
    )
    parts, per_symbol = [], {}
    for symbol in symbols:
        rows = _symbol_rows(symbol, candles[symbol], spec)
        if rows.empty:
            hint = (
                f"; import them with `python -m workers.cli data import FILE --symbol {symbol} "
                f"--timeframe {spec.timeframe}`, or set policy data.end to where the stored candles end"
                if spec.source == "store"
                else ""
            )
            raise ValueError(
                f"dataset {spec.dataset_id()}: {symbol} {spec.timeframe} has {len(candles[symbol])} candles in "
                f"[{spec.start}, {spec.end}) from {spec.source}, too few for the feature and label windows{hint}"
            )
        parts.append(rows)
        per_symbol[symbol] = {
            "candles": len(candles[symbol]),
            "rows": len(rows),
            "first_ms": int(rows["timestamp"].iloc[0]),
            "last_ms": int(rows["timestamp"].iloc[-1]),
        }
        del candles[symbol]
    return time_major(parts), per_symbol, source_info


def time_major(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Symbols' rows (in the spec's order) joined and sorted by time, the spec's order kept within a time."""
    frame = pd.concat(parts, ignore_index=True)
    parts.clear()
    # A stable sort on the int64 timestamps keeps the spec's symbol order within a time.
    order = np.argsort(frame["timestamp"].to_numpy(), kind="stable")
    frame = frame.take(order).reset_index(drop=True)
    if not isinstance(frame["regime"].dtype, pd.CategoricalDtype):  # pieces read back from Parquet
        frame["regime"] = pd.Categorical(frame["regime"], categories=list(REGIMES))
    return frame


def build_dataset(container: Container, spec: DatasetSpec) -> DatasetInfo:
    """Build (or find already built) the dataset of `spec`; Parquet + manifest + `datasets` row."""
    existing = _existing(container, spec.dataset_id())
    if existing is not None:
        return existing
    frame, per_symbol, source_info = symbol_frame(container, spec)
    return store_dataset(container, spec, frame, per_symbol, source_info)


def store_dataset(
    container: Container,
    spec: DatasetSpec,
    frame: pd.DataFrame,
    per_symbol: dict[str, Any],
    source_info: dict[str, Any],
) -> DatasetInfo:
    """Write a built frame as the dataset of `spec` (Parquet, manifest, `datasets` row); a dataset
    already registered under its id (built concurrently) is returned instead."""
    dataset_id = spec.dataset_id()
    data = parquet_bytes(frame)
    stored = container.artifacts.put_bytes(f"datasets/{dataset_id}/data.parquet", data)
    manifest: dict[str, Any] = {
        "dataset_id": dataset_id,
        "format_version": DATASET_FORMAT_VERSION,
        "spec": spec.model_dump(mode="json"),
        "symbols": list(spec.symbols),
        "timeframe": spec.timeframe,
        "start_ms": to_ms(spec.start),
        "end_ms": to_ms(spec.end),
        "rows": len(frame),
        "per_symbol": per_symbol,
        "feature_set_id": feature_set_id(spec.features),
        "feature_columns": feature_columns(spec.features),
        "label_columns": list(LABEL_COLUMNS),
        "labels": {**spec.labels.model_dump(mode="json"), "dead_zone": dead_zone(spec.labels)},
        "source": source_info,
        "file_path": stored.path,
        "sha256": stored.sha256,
        "size_bytes": stored.size_bytes,
    }
    container.artifacts.put_bytes(f"datasets/{dataset_id}/manifest.json", json.dumps(manifest, indent=2).encode())
    try:
        with container.session() as session:
            session.add(
                Dataset(
                    dataset_id=dataset_id,
                    file_path=stored.path,
                    sha256=stored.sha256,
                    rows=len(frame),
                    feature_set_id=manifest["feature_set_id"],
                    manifest=manifest,
                    created_at=utcnow(),
                )
            )
    except IntegrityError:
        # Another worker built the same spec at the same time: the bytes are the same.
        found = _existing(container, dataset_id)
        if found is not None:
            return found
        raise
    return DatasetInfo(dataset_id, stored.path, stored.sha256, len(frame), manifest["feature_set_id"], manifest)


def existing_dataset(container: Container, dataset_id: str) -> DatasetInfo | None:
    """The registered dataset `dataset_id` (its file checked present), or None."""
    return _existing(container, dataset_id)


def _existing(container: Container, dataset_id: str) -> DatasetInfo | None:
    with container.session() as session:
        row = session.get(Dataset, dataset_id)
        if row is None:
            return None
        info = DatasetInfo(row.dataset_id, row.file_path, row.sha256, row.rows, row.feature_set_id, row.manifest, True)
    if not container.artifacts.exists(info.file_path):
        raise FileNotFoundError(f"dataset {dataset_id} is registered but its file {info.file_path} is gone")
    return info


def load_dataset(
    container: Container, dataset_id: str, *, columns: list[str] | None = None, before_ms: int | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The dataset's rows and manifest; refuses a file whose sha256 differs from the registered one.

    `columns` reads only those columns, `before_ms` only the rows before that time (whole row
    groups are skipped: the file is time-major). From a local store the file is hashed as a
    stream and read by Parquet directly, so no copy of its bytes is held beside the frame.
    """
    with container.session() as session:
        row = session.get(Dataset, dataset_id)
        if row is None:
            raise KeyError(f"unknown dataset {dataset_id!r}")
        path, sha256, manifest = row.file_path, row.sha256, dict(row.manifest)
    filters = [("timestamp", "<", int(before_ms))] if before_ms is not None else None
    source: Any
    if container.artifacts.is_local and container.artifacts.exists(path):
        source = container.artifacts.local_path(path)
        _check_file_sha256(source, sha256, path)
    else:
        source = io.BytesIO(container.artifacts.get_bytes(path, expected_sha256=sha256))
    table = pq.read_table(source, columns=columns, filters=filters)
    # self_destruct: each column's Arrow memory is released as it is converted (one copy at a time).
    return table.to_pandas(self_destruct=True, split_blocks=True), manifest


def _check_file_sha256(file: Any, expected: str, name: str) -> None:
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        for chunk in iter(lambda: handle.read(8 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        raise ArtifactIntegrityError(f"{name}: sha256 {digest.hexdigest()} differs from the recorded {expected}")
