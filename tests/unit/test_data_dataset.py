"""Datasets: same spec -> same dataset, manifest contents, hash check on load, clear errors."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from app.bootstrap import Container
from app.core.artifacts import ArtifactIntegrityError
from app.core.db.models import Dataset
from app.core.policy import FeatureConfig, LabelConfig, Policy
from app.data_pipeline import (
    DatasetSpec,
    build_dataset,
    feature_columns,
    feature_set_id,
    import_candle_file,
    load_dataset,
)

SYNTHETIC = DatasetSpec(
    symbols=("BTC/USDT", "ETH/USDT"),
    timeframe="1h",
    start=datetime(2024, 1, 1),
    end=datetime(2024, 3, 1),
    source="synthetic",
    seed=9,
    shift_at=datetime(2024, 2, 15),
)


def test_same_spec_gives_the_same_dataset(sqlite_container: Container) -> None:
    first = build_dataset(sqlite_container, SYNTHETIC)
    again = build_dataset(sqlite_container, SYNTHETIC.model_copy())
    assert again.reused and not first.reused
    assert (again.dataset_id, again.sha256, again.rows) == (first.dataset_id, first.sha256, first.rows)
    with sqlite_container.session() as session:
        assert session.scalar(select(func.count()).select_from(Dataset)) == 1
    # built afresh elsewhere (another store), the bytes are the same
    other = SYNTHETIC.model_copy(update={"seed": 10})
    assert build_dataset(sqlite_container, other).dataset_id != first.dataset_id


def test_rows_columns_and_manifest(sqlite_container: Container) -> None:
    info = build_dataset(sqlite_container, SYNTHETIC)
    frame, manifest = load_dataset(sqlite_container, info.dataset_id)
    names = feature_columns(SYNTHETIC.features)
    assert list(frame.columns) == ["timestamp", "symbol", "close", *names, "future_return", "direction", "regime"]
    assert len(frame) == info.rows == manifest["rows"]
    assert frame.groupby("symbol").size().to_dict() == {s: v["rows"] for s, v in manifest["per_symbol"].items()}
    assert frame["timestamp"].is_monotonic_increasing
    assert not frame.duplicated(["symbol", "timestamp"]).any()
    assert np.isfinite(frame[names].to_numpy()).all()
    assert manifest["feature_set_id"] == info.feature_set_id == feature_set_id(SYNTHETIC.features)
    assert manifest["feature_columns"] == names
    assert manifest["labels"]["horizon"] == 12 and manifest["labels"]["dead_zone"] > 0
    assert manifest["source"]["shift_at_ms"] == pd.Timestamp("2024-02-15").value // 1_000_000
    assert manifest["source"]["shift_index"] == (datetime(2024, 2, 15) - datetime(2024, 1, 1)).days * 24
    assert manifest["sha256"] == info.sha256 and manifest["symbols"] == ["BTC/USDT", "ETH/USDT"]
    assert sqlite_container.artifacts.exists(f"datasets/{info.dataset_id}/manifest.json")
    # labels are the candles' own: future_return is log(close[t+12] / close[t]) per symbol
    btc = frame[frame.symbol == "BTC/USDT"].set_index("timestamp")
    step = 3_600_000
    later = btc["close"].reindex(btc.index + 12 * step).to_numpy()
    known = ~np.isnan(later)
    np.testing.assert_allclose(
        btc["future_return"].to_numpy()[known], np.log(later[known] / btc["close"].to_numpy()[known])
    )


def test_a_tampered_file_is_refused(sqlite_container: Container) -> None:
    info = build_dataset(sqlite_container, SYNTHETIC)
    path = sqlite_container.artifacts.local_path(info.file_path)
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ArtifactIntegrityError):
        load_dataset(sqlite_container, info.dataset_id)
    with pytest.raises(KeyError, match="unknown dataset"):
        load_dataset(sqlite_container, "ds-nope")


def test_store_and_file_sources(sqlite_container: Container, data_dir: Path) -> None:
    path = data_dir / "binance_SOLUSDT_1h.csv"
    window = {"start": datetime(2021, 1, 1), "end": datetime(2021, 3, 1), "timeframe": "1h"}
    from_files = build_dataset(
        sqlite_container, DatasetSpec(symbols=("SOL/USDT",), source="files", files={"SOL/USDT": str(path)}, **window)
    )
    with pytest.raises(ValueError, match="SOL/USDT 1h has 0 candles"):
        build_dataset(sqlite_container, DatasetSpec(symbols=("SOL/USDT",), source="store", **window))
    import_candle_file(sqlite_container, path, symbol="SOL/USDT", timeframe="1h", exchange="binance")
    from_store = build_dataset(sqlite_container, DatasetSpec(symbols=("SOL/USDT",), source="store", **window))
    a, _ = load_dataset(sqlite_container, from_files.dataset_id)
    b, _ = load_dataset(sqlite_container, from_store.dataset_id)
    assert a.equals(b)
    assert a["timestamp"].min() >= pd.Timestamp("2021-01-01").value // 1_000_000


def test_spec_validation_and_policy_defaults() -> None:
    with pytest.raises(ValueError, match="end"):
        DatasetSpec(symbols=("A/B",), start=datetime(2024, 2, 1), end=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="needs a file"):
        DatasetSpec(symbols=("A/B",), start=datetime(2024, 1, 1), end=datetime(2024, 2, 1), source="files")
    with pytest.raises(ValueError, match="timeframe"):
        DatasetSpec(symbols=("A/B",), timeframe="5 min", start=datetime(2024, 1, 1), end=datetime(2024, 2, 1))
    policy = Policy(features=FeatureConfig(rsi_periods=[9]), labels=LabelConfig(horizon=6))
    spec = DatasetSpec.from_policy(policy, end=datetime(2024, 7, 1), source="synthetic")
    assert spec.symbols == ("BTC/USDT", "ETH/USDT") and spec.timeframe == "5m"
    assert spec.start == datetime(2024, 1, 3) and spec.labels.horizon == 6
    assert (
        spec.dataset_id()
        != DatasetSpec.from_policy(Policy(), end=datetime(2024, 7, 1), source="synthetic").dataset_id()
    )


def test_a_synthetic_origin_makes_one_world_for_every_window(sqlite_container: Container) -> None:
    world = {"source": "synthetic", "timeframe": "1h", "seed": 4, "synthetic_origin": datetime(2024, 1, 1)}
    early = build_dataset(
        sqlite_container,
        DatasetSpec(symbols=("X/USDT",), start=datetime(2024, 1, 1), end=datetime(2024, 2, 1), **world),
    )
    late = build_dataset(
        sqlite_container,
        DatasetSpec(symbols=("X/USDT",), start=datetime(2024, 1, 10), end=datetime(2024, 2, 10), **world),
    )
    a = load_dataset(sqlite_container, early.dataset_id)[0].set_index("timestamp")
    b = load_dataset(sqlite_container, late.dataset_id)[0].set_index("timestamp")
    common = a.index.intersection(b.index)
    assert len(common) > 300
    np.testing.assert_array_equal(a.loc[common, "close"], b.loc[common, "close"])
    assert b.index.min() >= pd.Timestamp("2024-01-10").value // 1_000_000


def test_a_reader_of_the_rows_before_a_time_gets_exactly_them_and_skips_later_row_groups(
    sqlite_container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.parquet as pq

    from app.data_pipeline import dataset as dataset_module

    monkeypatch.setattr(dataset_module, "ROW_GROUP_ROWS", 500)  # many row groups on a small dataset
    info = build_dataset(sqlite_container, SYNTHETIC)
    whole, _ = load_dataset(sqlite_container, info.dataset_id)
    path = sqlite_container.artifacts.local_path(info.file_path)
    groups = pq.ParquetFile(path).metadata.num_row_groups
    assert groups > 3 and whole["regime"].dtype == "category"
    assert {str(whole[c].dtype) for c in feature_columns(SYNTHETIC.features)} == {"float32"}

    cut = int(whole["timestamp"].iloc[len(whole) // 3])
    head, _ = load_dataset(sqlite_container, info.dataset_id, before_ms=cut)
    pd.testing.assert_frame_equal(head, whole[whole["timestamp"] < cut].reset_index(drop=True))
    axis, _ = load_dataset(sqlite_container, info.dataset_id, columns=["timestamp", "symbol"], before_ms=cut)
    assert list(axis.columns) == ["timestamp", "symbol"] and len(axis) == len(head)
    # The statistics let a reader skip every row group that starts at or after the cut.
    later = [g for g in range(groups) if pq.ParquetFile(path).metadata.row_group(g).column(0).statistics.min >= cut]
    assert later, "the cut should leave whole row groups after it"
